"""The import page refuses an upload over UPLOAD_MAX_BYTES (issue 9, finding 5): before sending
anything when its script can tell, and on the server's 413 when it cannot."""
from __future__ import annotations

import os

import pytest

from datasets.models import ImportJob

sync_api = pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_import_page_refuses_an_upload_over_the_limit(new_page, users, source, login, shot, settings, tmp_path):
    settings.UPLOAD_MAX_BYTES = 300_000
    page = new_page(locale="en-US")  # the English messages, whatever the Korean catalogue says
    files = []
    for n in range(3):
        p = tmp_path / f"big-{n}.jpg"
        p.write_bytes(os.urandom(120_000))
        files.append(str(p))
    posts = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    login(page, "planner1")
    posts.clear()
    page.goto("/datasets/imports/new/")
    page.select_option("#id_source", label=source.name)
    page.set_input_files("#id_files", files)
    page.click("#import-submit")
    alert = page.locator("#upload-too-large")
    alert.wait_for(state="visible")
    assert "at most 293.0\xa0KB in one request" in alert.inner_text()
    assert posts == []  # refused before a byte was sent
    shot(page, "import-too-large")

    # A script that cannot tell (the limit unknown to it) meets the server's 413 on the same page.
    page.evaluate("document.getElementById('import-form').removeAttribute('data-max-bytes')")
    page.click("#import-submit")
    sync_api.expect(page.locator("#import-submit")).to_be_enabled()  # the answer came
    alert.wait_for(state="visible")
    assert "at most 293.0\xa0KB in one request" in alert.inner_text()
    assert len(posts) == 1 and "/datasets/imports/new/" in posts[0]
    assert page.url.endswith("/datasets/imports/new/")
    assert not ImportJob.objects.exists()
