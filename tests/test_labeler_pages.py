"""Labeler pages with Django's test client: who may open them, what they show, how they query.

/label/ (my projects), /label/<pk>/ (the labeling page's shell), /label/<pk>/history/ and
/label/<pk>/guide/. Labelers must be active members of the project; admins may look at every
project's pages; planners and engineers get 403 (their pages are under /projects/).
"""
from __future__ import annotations

import json
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import translation

from accounts import services as accounts
from datasets import services as datasets
from labeling import services
from labeling.models import AssignmentStatus, ProjectMember
from labeling.text import MESSAGES
from tests.conftest import PASSWORD, make_photo
from tests.factories import fake_images, texts

pytestmark = pytest.mark.django_db

PAGES = ("label", "label-history", "label-guide")



@pytest.fixture
def photos(source):
    return [datasets.ingest_one(make_photo(320, 240, seed=500 + i), source=source, category="food").image
            for i in range(3)]


@pytest.fixture
def project(users, photos):
    project = services.create_project("Food comments", created_by=users["planner"], description="Photos of food.")
    services.sync_project_images(project)
    services.add_member(project, users["labeler"], cap_override=5)
    return project


def label_n(project, labeler, n: int, start: int = 0):
    """Submit n comment sets for `labeler`."""
    for i in range(n):
        a = services.next_assignment(project, labeler)
        services.submit(a, labeler, texts(start + i))


def labeler(username: str):
    return accounts.create_user(username, PASSWORD, "labeler")


# ---------------------------------------------------------------- access


@pytest.mark.parametrize("name", PAGES)
@pytest.mark.parametrize("who,status", [
    ("anonymous", 302), ("member", 200), ("outsider", 403), ("planner", 403), ("engineer", 403), ("admin", 200),
])
def test_who_may_open_the_labeler_pages(client, users, project, name, who, status):
    if who == "member":
        client.force_login(users["labeler"])
    elif who == "outsider":
        client.force_login(labeler("stranger"))
    elif who != "anonymous":
        client.force_login(users[who])
    response = client.get(reverse(name, args=[project.pk]))
    assert response.status_code == status
    if status == 302:
        assert response["Location"].startswith(reverse("login"))


def test_a_deactivated_member_is_refused(client, users, project):
    services.deactivate_member(project, users["labeler"])
    client.force_login(users["labeler"])
    for name in PAGES:
        assert client.get(reverse(name, args=[project.pk])).status_code == 403


def test_unknown_project_is_404(client, users):
    client.force_login(users["labeler"])
    assert client.get(reverse("label", args=[999999])).status_code == 404


# ---------------------------------------------------------------- home


def test_home_lists_my_open_projects_with_done_and_cap(client, users, project):
    label_n(project, users["labeler"], 2)
    closed = services.create_project("Closed one")
    services.add_member(closed, users["labeler"])
    closed.is_active = False
    closed.save()
    left = services.create_project("Left one")
    services.add_member(left, users["labeler"])
    services.deactivate_member(left, users["labeler"])
    services.add_member(services.create_project("Someone else's"), labeler("other"))

    client.force_login(users["labeler"])
    html = client.get(reverse("labeler-home")).content.decode()
    cards = re.findall(r'data-project="(\d+)"', html)
    assert cards == [str(project.pk)]
    assert 'data-done="2" data-cap="5"' in html
    assert 'aria-valuenow="2"' in html and "width: 40%" in html
    assert reverse("label", args=[project.pk]) in html
    assert reverse("label-guide", args=[project.pk]) in html
    client.post("/i18n/setlang/", {"language": "en"})
    html = client.get(reverse("labeler-home")).content.decode()
    assert "Continue" in html and "Food comments" in html


def test_home_says_when_the_goal_is_reached(client, users, project):
    ProjectMember.objects.filter(project=project, user=users["labeler"]).update(cap_override=1)
    label_n(project, users["labeler"], 1)
    client.force_login(users["labeler"])
    client.post("/i18n/setlang/", {"language": "en"})
    html = client.get(reverse("labeler-home")).content.decode()
    assert "is-finished" in html and "Goal reached" in html
    assert f'href="{reverse("label", args=[project.pk])}"' not in html  # no start button past the cap
    assert reverse("label-history", args=[project.pk]) in html


def test_home_without_projects_keeps_the_friendly_card(client, users):
    client.force_login(users["labeler"])
    html = client.get(reverse("labeler-home")).content.decode()
    assert "아직 배정된 라벨링 프로젝트가 없습니다" in html
    assert "data-project=" not in html


# ---------------------------------------------------------------- the labeling page


def page_config(html: str) -> dict:
    match = re.search(r'<script id="label-config" type="application/json">(.*?)</script>', html, re.S)
    assert match, "the page embeds its configuration"
    return json.loads(match.group(1))


def test_label_page_embeds_types_rules_messages_and_examples(client, users, project, photos):
    services.save_example(project, photos[0], note="Say what you see", comments=[
        {"comment_type": "reaction", "text": "와 떡볶이 색 미쳤다", "verdict": "good", "why": "A real first reaction."},
        {"comment_type": "specific", "text": "맛있어 보이는 음식입니다", "verdict": "bad", "why": "A caption, not a comment."},
    ])
    services.publish_guideline(project, "# Rules\n\nBe natural.", published_by=users["planner"])
    project.max_repeat_run = 4
    project.reject_urls = False
    project.save()
    label_n(project, users["labeler"], 1)

    client.force_login(users["labeler"])
    response = client.get(reverse("label", args=[project.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    cfg = page_config(html)
    assert [ct["slug"] for ct in cfg["comment_types"]] == ["reaction", "specific"]
    assert [(ct["min_length"], ct["max_length"]) for ct in cfg["comment_types"]] == [(3, 100), (10, 300)]
    assert cfg["rules"]["max_repeat_run"] == 4 and cfg["rules"]["reject_urls"] is False
    assert cfg["example_texts"] == ["와 떡볶이 색 미쳤다", "맛있어 보이는 음식입니다"]
    assert (cfg["done"], cfg["cap"], cfg["member"], cfg["active"]) == (1, 5, True, True)
    assert cfg["urls"]["next"] == f"/api/projects/{project.pk}/next/"
    assert cfg["urls"]["assignment"] == "/api/assignments/{id}/"
    with translation.override("ko"):
        assert cfg["messages"] == {code: str(m) for code, m in MESSAGES.items()}  # in the page's language
    assert set(cfg["strings"]) >= {"counter_min", "counter_ok", "network", "saved"}
    # One labelled text box per comment type, the examples one tap away, the guideline version.
    for slug in ("reaction", "specific"):
        assert f'<label for="ct-{slug}">' in html and f'<textarea id="ct-{slug}"' in html
    assert 'id="examples-dialog"' in html and "와 떡볶이 색 미쳤다" in html and "A caption, not a comment." in html
    assert "verdict-good" in html and "verdict-bad" in html
    assert "v1" in html
    for reason in ("inappropriate", "broken", "personal_info"):
        assert f'value="{reason}"' in html
    assert "js/textrules.js" in html and "js/label.js" in html and "css/label.css" in html


def test_label_page_in_english_has_english_messages(client, users, project):
    client.force_login(users["labeler"])
    client.post("/i18n/setlang/", {"language": "en"})
    cfg = page_config(client.get(reverse("label", args=[project.pk])).content.decode())
    assert cfg["messages"]["too_short"] == "Too short: at least %(min)d characters (now %(n)d)."
    assert cfg["strings"]["counter_min"] == "%(n)s / min. %(min)s"


def test_label_page_of_a_closed_project_says_so(client, users, project):
    project.is_active = False
    project.save()
    client.force_login(users["labeler"])
    client.post("/i18n/setlang/", {"language": "en"})
    response = client.get(reverse("label", args=[project.pk]))
    assert response.status_code == 200
    assert page_config(response.content.decode())["active"] is False
    assert "This project is not open for labeling." in response.content.decode()


def test_admin_who_is_not_a_member_gets_a_preview(client, users, project):
    client.force_login(users["admin"])
    cfg = page_config(client.get(reverse("label", args=[project.pk])).content.decode())
    assert cfg["member"] is False


# ---------------------------------------------------------------- history


def test_history_shows_only_my_sets_newest_first(client, users, project):
    other = labeler("labeler2")
    services.add_member(project, other)
    label_n(project, users["labeler"], 2)
    a = services.next_assignment(project, other)
    services.submit(a, other, {"reaction": "남의 코멘트예요", "specific": "다른 사람이 쓴 구체적인 코멘트"})
    skipped = services.next_assignment(project, users["labeler"])
    services.skip(skipped, users["labeler"])

    client.force_login(users["labeler"])
    html = client.get(reverse("label-history", args=[project.pk])).content.decode()
    assert "남의 코멘트예요" not in html
    assert html.count('class="card history-item"') == 2
    assert html.index(texts(1)["reaction"]) < html.index(texts(0)["reaction"])  # newest first
    assert texts(0)["specific"] in html
    assert str(skipped.pk) not in re.findall(r'data-assignment="(\d+)"', html)


def test_history_records_the_guideline_version(client, users, project):
    services.publish_guideline(project, "Be natural.")
    label_n(project, users["labeler"], 1)
    client.force_login(users["labeler"])
    client.post("/i18n/setlang/", {"language": "en"})
    html = client.get(reverse("label-history", args=[project.pk])).content.decode()
    assert "guideline v1" in html


def test_history_is_paginated_and_its_queries_do_not_grow(client, users, source):
    project = services.create_project("Many photos")
    fake_images(source, 25)
    services.sync_project_images(project)
    services.add_member(project, users["labeler"])
    client.force_login(users["labeler"])
    url = reverse("label-history", args=[project.pk])

    label_n(project, users["labeler"], 2)
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    label_n(project, users["labeler"], 20, start=2)
    with CaptureQueriesContext(connection) as many:
        html = client.get(url).content.decode()
    assert len(many) <= len(few) + 1  # + the paginator's count once there are more pages
    assert html.count('class="card history-item"') == 20
    assert "?page=2" in html
    page2 = client.get(url, {"page": 2}).content.decode()
    assert page2.count('class="card history-item"') == 2
    assert texts(0)["reaction"] in page2  # the oldest last
    assert project.assignments.filter(status=AssignmentStatus.SUBMITTED).count() == 22


# ---------------------------------------------------------------- guideline


def test_guide_renders_sanitised_markdown_and_every_example(client, users, project, photos):
    services.save_example(project, photos[1], note="Good and bad", comments=[
        {"comment_type": "reaction", "text": "김치찌개 국물 진하다!", "verdict": "good", "why": "Specific and natural."},
        {"comment_type": None, "text": "음식 사진", "verdict": "bad", "why": "Too plain."},
    ])
    body = "# 가이드\n\n**짧게** 쓰세요.\n\n<script>alert('x')</script>\n\n<img src=x onerror=alert(1)>"
    services.publish_guideline(project, body)
    client.force_login(users["labeler"])
    html = client.get(reverse("label-guide", args=[project.pk])).content.decode()
    article = html[html.index('id="guide-body"'):html.index('id="guide-examples"')]
    assert "<h1>가이드</h1>" in article and "<strong>짧게</strong>" in article
    assert "<script" not in article and "alert('x')" not in article and "onerror" not in article
    assert "김치찌개 국물 진하다!" in html and "Specific and natural." in html and "Too plain." in html
    assert html.count("verdict-good") == 1 and html.count("verdict-bad") == 1
    assert "✓" in html and "✗" in html


def test_guide_says_when_nothing_is_published(client, users, project):
    client.force_login(users["labeler"])
    html = client.get(reverse("label-guide", args=[project.pk])).content.decode()
    assert 'id="no-guideline"' in html
    assert 'id="guide-body"' not in html


def test_guide_shows_the_current_version_only(client, users, project):
    services.publish_guideline(project, "Old rule")
    services.publish_guideline(project, "New rule")
    client.force_login(users["labeler"])
    html = client.get(reverse("label-guide", args=[project.pk])).content.decode()
    assert "New rule" in html and "Old rule" not in html
