"""The comment browser in a real browser: a planner opens a project's Comments tab, searches in
Korean, narrows to one labeler from the labelers page, downloads the CSV, and follows a row to
its photo, whose page lists the comment sets. Screenshots at a desktop size and on a phone."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import make_photo

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def world(users, source):
    from accounts import services as accounts
    from datasets import services as datasets
    from labeling import services

    for i, cat in enumerate(["food", "food", "people"]):
        datasets.ingest_one(make_photo(seed=900 + i, width=480, height=360), source=source, category=cat)
    project = services.create_project("댓글 보기", created_by=users["planner"])
    services.sync_project_images(project)
    labelers = [accounts.create_user(n, "pw-long-enough-1", "labeler") for n in ("minji", "junho")]
    sets = [("minji", "고양이 너무 귀엽다", "창가에 앉은 고양이 표정이 진짜 웃겨요"),
            ("minji", "와 맛있겠다", "국물이 진하고 면발이 쫄깃해 보여요"),
            ("junho", "대박 사진이다", "배경에 보이는 바다 색이 정말 예뻐요"),
            ("junho", "=1+1 고양이?", "고양이가 상자 안에 들어가 있는 모습이 귀여워요")]
    by_name = {u.username: u for u in labelers}
    for user in labelers:
        services.add_member(project, user)
    for name, reaction, specific in sets:
        a = services.next_assignment(project, by_name[name])
        services.submit(a, by_name[name], {"reaction": reaction, "specific": specific})
    return project


def test_planner_searches_reads_and_downloads_comments(page, new_page, world, login, shot):
    project = world
    login(page, "planner1")
    page.goto(f"/projects/{project.pk}/")
    page.click(f"nav.subnav a[href='/projects/{project.pk}/comments/']")
    page.wait_for_url(re.compile(r"/comments/$"))
    assert page.locator("tr[data-comment]").count() == 8
    assert page.locator("nav.subnav a.active").get_attribute("href").endswith("/comments/")

    # A Korean substring search.
    page.fill("#id_q", "고양이")
    page.click("#comment-filters button[type=submit]")
    page.wait_for_url(re.compile(r"q=%EA%B3%A0%EC%96%91%EC%9D%B4"))
    texts = page.locator("td.comment-text").all_inner_texts()
    assert len(texts) == 4 and all("고양이" in t for t in texts)
    shot(page, "comment-browser-search")

    # The CSV download of what is shown: the same four, formulas neutralised.
    with page.expect_download() as info:
        page.click("#download-csv")
    body = Path(info.value.path()).read_text(encoding="utf-8-sig")
    assert body.count("\n") == 5 and "'=1+1 고양이?" in body

    # One labeler's comments from the labelers page.
    page.goto(f"/projects/{project.pk}/labelers/")
    page.click("tr[data-member='junho'] a[href*='labeler=junho']")
    page.wait_for_url(re.compile(r"labeler=junho"))
    assert page.locator("tr[data-comment]").count() == 4
    assert set(page.locator("tr[data-comment] td:nth-child(4)").all_inner_texts()) == {"junho"}

    # A row's photo, whose page lists every comment set on it.
    page.locator("tr[data-comment] a.thumb-link").first.click()
    page.wait_for_url(re.compile(r"/datasets/images/"))
    panel = page.locator("#image-comments")
    assert panel.is_visible() and "junho" in panel.inner_text()
    shot(page, "comment-browser-photo")

    # Engineers read it too; the page fits a phone.
    phone = new_page(viewport=(375, 812))
    login(phone, "engineer1")
    phone.goto(f"/projects/{project.pk}/comments/?labeler=minji")
    assert phone.locator("tr[data-comment]").count() == 4
    shot(phone, "comment-browser-phone")


def test_labelers_cannot_open_it(page, world, login):
    login(page, "minji", "pw-long-enough-1")
    resp = page.goto(f"/projects/{world.pk}/comments/")
    assert resp.status == 403
