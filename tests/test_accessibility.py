"""Issue 8, item 14: what the pages give assistive technology and the browser (served HTML)."""
from __future__ import annotations

import re

import pytest
from django.urls import reverse
from django.utils import translation

from labeling.forms import ProjectForm
from tests.conftest import make_photo


@pytest.fixture(autouse=True)
def english(settings):
    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield


def test_menu_is_a_button_that_says_what_it_opens(client, users):
    client.force_login(users["planner"])
    html = client.get(reverse("projects")).content.decode()
    button = re.search(r'<button type="button" class="nav-toggle"[^>]*>', html).group(0)
    assert 'aria-expanded="false"' in button and 'aria-controls="main-nav"' in button and 'aria-label="Menu"' in button
    assert '<nav class="nav" id="main-nav"' in html
    assert 'type="checkbox" id="nav-toggle"' not in html  # the old checkbox nobody could reach by Tab
    assert "js/nav.js" in html
    assert "css/noscript.css" in html  # without script the menu shows open


def test_favicon_is_linked_and_served(client, users):
    client.force_login(users["planner"])
    html = client.get(reverse("projects")).content.decode()
    assert re.search(r'<link rel="icon" href="/static/favicon.svg" type="image/svg\+xml">', html)
    response = client.get("/favicon.ico")
    assert response.status_code == 302 and response["Location"] == "/static/favicon.svg"
    # Anonymous browsers ask too (the sign-in page, the admin's).
    client.logout()
    assert client.get("/favicon.ico").status_code == 302


def test_new_token_field_has_a_label(client, users):
    client.force_login(users["engineer"])
    response = client.post(reverse("tokens"), {"name": "trainer", "expires_in_days": 30}, follow=True)
    html = response.content.decode()
    assert 'id="new-key"' in html
    assert '<label for="new-key" class="sr-only">Your new token</label>' in html


@pytest.mark.parametrize("name", ["api-docs", "api-redoc"])
def test_api_docs_lead_back_to_the_app(client, users, name):
    client.force_login(users["planner"])
    html = client.get(reverse(name)).content.decode()
    assert f'<a href="{reverse("home")}" class="docs-back">← Back to the app</a>' in html


def test_thumbnail_links_have_a_name(client, users, source):
    from datasets import services as datasets

    image = datasets.ingest_one(make_photo(seed=880, width=160, height=120), source=source).image
    assert not image.title and not image.original_name
    client.force_login(users["planner"])
    html = client.get(reverse("images")).content.decode()
    assert re.search(r'<img src="[^"]+" alt="Photo" loading="lazy">', html)
    assert 'alt=""' not in html


def test_project_description_help_says_labelers_see_it(db):
    help_text = str(ProjectForm().fields["description"].help_text)
    assert "Labelers see it on their home page" in help_text
    assert "not this" not in help_text
