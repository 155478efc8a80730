"""Importing comments made elsewhere, in a real browser: a planner opens a project's "Import
comments" tab, uploads a CSV of photos and comments, and reads the report (an imported set, a
refused one with its reason), then finds the imported comments in the comment browser under the
external source's name. Screenshots of the form and the report, on a desktop and on a phone."""
from __future__ import annotations

import re

import pytest

from tests.conftest import make_photo

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def world(users, source, tmp_path, settings):
    from labeling import services

    folder = tmp_path / "vendor"
    folder.mkdir()
    for n in range(2):
        (folder / f"p{n}.jpg").write_bytes(make_photo(480, 360, seed=4200 + n))
    settings.INGEST = {**settings.INGEST, "ALLOWED_ROOTS": [str(tmp_path)]}
    project = services.create_project("가져오기", created_by=users["planner"])
    csv_file = tmp_path / "comments.csv"
    csv_file.write_text("path,licence,set_id,comment_type,text\n"
                        "p0.jpg,cc-by-4.0,a,reaction,와 진짜 맛있겠다\n"
                        "p0.jpg,cc-by-4.0,a,specific,떡볶이 국물이 진하고 쫀득해 보여요\n"
                        "p1.jpg,,,mood,없는 댓글 유형\n", encoding="utf-8")
    return {"project": project, "folder": folder, "csv": csv_file, "source": source}


def test_planner_imports_a_csv_and_reads_the_report(page, new_page, world, login, shot):
    project = world["project"]
    login(page, "planner1")
    page.goto(f"/projects/{project.pk}/")
    page.click(f"nav.subnav a[href='/projects/{project.pk}/comment-imports/']")
    page.wait_for_url(re.compile(r"/comment-imports/$"))
    page.set_input_files("#id_file", str(world["csv"]))
    page.select_option("#id_format", "csv")
    page.fill("#id_source_name", "Vendor A")
    page.select_option("#id_photo_source", str(world["source"].pk))
    page.fill("#id_images_dir", str(world["folder"]))
    shot(page, "comment-import-form")
    page.click("#start-comment-import")
    page.wait_for_url(re.compile(r"/comment-imports/\d+/$"))
    assert page.locator("[data-count=imported]").inner_text() == "1"
    assert page.locator("[data-count=refused]").inner_text() == "1"
    assert page.locator("[data-count=comments]").inner_text() == "2"
    assert page.locator("#comment-import-rows tr[data-outcome=refused] td.reason").inner_text().count("mood") == 1
    assert page.locator("#comment-import-rows tr[data-outcome=imported] img").count() == 1
    shot(page, "comment-import-report")

    # The imported comments are in the comment browser under the source's name.
    page.click(f"nav.subnav a[href='/projects/{project.pk}/comments/']")
    page.wait_for_url(re.compile(r"/comments/$"))
    assert page.locator("tr[data-comment]").count() == 2
    assert "Vendor A" in page.locator("tr[data-comment]").first.inner_text()

    phone = new_page(viewport=(390, 844))
    login(phone, "planner1")
    phone.goto(page.url.replace("/comments/", "/comment-imports/"))
    shot(phone, "comment-imports-phone")
