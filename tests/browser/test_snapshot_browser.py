"""The snapshot pages in a real browser: an engineer freezes v1 of a small project through the
form while the live count follows the fields, reads the detail page's charts and card, freezes
the next version from it, compares the two on the diff page, and the pages on a phone. A labeler
sees no link and gets 403. Screenshots in test-artifacts/screenshots/snapshot-*.png."""
from __future__ import annotations

import re

import pytest

from tests.test_snapshots import label_all

sync_api = pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def projects(make_project, labelers, food, people):
    """Two projects: 'Food talk' (4 food photos, 2 sets each: 16 comments) and 'People' (2 people
    photos, 2 sets each: 8 comments)."""
    food_project = make_project(4, category=food, members=labelers[:2], name="Food talk", categories=[food])
    label_all(food_project, labelers[:2])
    people_project = make_project(2, category=people, members=labelers[2:4], name="People", categories=[people])
    label_all(people_project, labelers[2:4])
    return food_project, people_project


def _english(page):
    page.click("button.lang[value=en]")
    page.wait_for_load_state()


def _photos(page, n: str):
    """Wait until the live count says `n` photos (page.wait_for_function would need eval: CSP)."""
    sync_api.expect(page.locator("#live-count")).to_have_attribute("data-photos", n)


def _count(page) -> str:
    return page.locator("#live-count").inner_text()


def test_engineer_freezes_v1_on_the_page_and_reads_it(new_page, users, projects, login, shot):
    from datasets.models import Snapshot

    food_project, people_project = projects
    page = new_page(viewport=(1280, 900), locale="en-US")
    login(page, "engineer1")
    _english(page)
    page.click("nav.nav a[href='/snapshots/']")
    page.wait_for_url(re.compile(r"/snapshots/$"))
    assert page.locator("nav.nav a.active").get_attribute("href") == "/snapshots/"
    page.click("a[href='/snapshots/new/']")

    # The live count follows the fields: one project, then both, then a category filter.
    assert "Press Count" in _count(page)
    page.fill("#id_name", "demo")
    page.check(f"input[name=projects][value='{food_project.pk}']")
    _photos(page, "4")
    assert "4 photos, 16 comments" in _count(page)
    page.check(f"input[name=projects][value='{people_project.pk}']")
    _photos(page, "6")
    page.check("input[name=categories][value='food']")
    _photos(page, "4")
    # One comment type of two: half the comments, the same photos.
    page.check("input[name=comment_types][value=reaction]")
    sync_api.expect(page.locator("#live-count")).to_have_attribute("data-comments", "8")
    page.uncheck("input[name=comment_types][value=reaction]")
    sync_api.expect(page.locator("#live-count")).to_have_attribute("data-comments", "16")
    page.fill("#id_min_sets", "3")
    _photos(page, "0")
    page.fill("#id_min_sets", "")
    _photos(page, "4")
    # Counts instead of ratios: only the chosen mode's fields show.
    assert page.locator("#id_val_count").is_hidden()
    page.check("input[name=split_mode][value=counts]")
    assert page.locator("#id_val_count").is_visible() and page.locator("#id_train").is_hidden()
    page.fill("#id_val_count", "1")
    page.fill("#id_test_count", "1")
    assert page.get_by_text("about 13 seconds for 50,000 photos").is_visible()
    shot(page, "snapshot-new-live-count")

    page.click("#freeze")
    page.wait_for_url(re.compile(r"/snapshots/\d+/$"))
    snapshot = Snapshot.objects.get()
    assert (snapshot.label, snapshot.image_count, snapshot.comment_count, snapshot.counts) == (
        "demo v1", 4, 16, {"val": 1, "test": 1})
    assert "demo v1 frozen: 4 photos, 16 comments." in page.locator(".messages").inner_text()

    # The detail page: parameters, the table, the charts drawn with widths, the card.
    assert "1 val and 1 test photos" in page.locator("#parameters").inner_text()
    for chart in ("#chart-categories", "#chart-types", "#chart-labelers"):
        assert page.locator(f"{chart} .hbar > span").first.bounding_box()["width"] > 50
    assert page.locator("#lengths .length-chart").count() == 2
    assert "4 photos with 16 comments by 2 labelers." in page.locator("#dataset-card").inner_text()
    assert page.locator("#snapshot-exports").is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    shot(page, "snapshot-detail-1280")

    # The next version from the detail page: the form comes prefilled and keeps val and test.
    page.click("#new-version")
    page.wait_for_url(re.compile(r"/snapshots/new/\?from="))
    assert page.locator("#id_name").input_value() == "demo"
    assert page.locator("#id_keep_splits_from option:checked").inner_text() == "Keep val and test photos of demo v1"
    _photos(page, "4")
    page.uncheck("input[name=categories][value='food']")
    _photos(page, "6")
    page.click("#freeze")
    page.wait_for_url(re.compile(r"/snapshots/\d+/$"))
    assert page.locator("h1").inner_text().startswith("demo v2")

    # The diff against v1: two people photos and eight comments added.
    page.click("#diff-link")
    page.wait_for_url(re.compile(r"/diff/"))
    assert page.locator("h1").inner_text() == "From demo v1 to demo v2"
    summary = page.locator(".diff-summary").inner_text()
    assert "+2" in summary and "+8" in summary
    assert page.locator("tr[data-category=people]").count() >= 1
    shot(page, "snapshot-diff-1280")

    # Archive v1 after the browser's confirm.
    page.goto(f"/snapshots/{snapshot.pk}/")
    page.once("dialog", lambda d: d.accept())
    page.click("#archive")
    page.wait_for_load_state()
    assert page.locator("[data-status=archived]").is_visible()
    page.goto("/snapshots/")
    shot(page, "snapshot-list-1280")


def test_pages_fit_a_phone(new_page, users, projects, login, shot):
    from labeling.snapshots import freeze_snapshot

    v1 = freeze_snapshot("phone", projects=[projects[0]])
    v2 = freeze_snapshot("phone", projects=list(projects), keep_splits_from=v1)
    page = new_page(viewport=(375, 740))
    login(page, "planner1")
    for url, name in [("/snapshots/", "list"), ("/snapshots/new/", "new"), (f"/snapshots/{v2.pk}/", "detail"),
                      (f"/snapshots/{v2.pk}/diff/", "diff")]:
        page.goto(url, wait_until="networkidle")
        assert page.evaluate("document.documentElement.scrollWidth") <= 375, url
        shot(page, f"snapshot-{name}-phone")
    # The bars keep a readable width on a phone.
    page.goto(f"/snapshots/{v2.pk}/")
    assert page.locator("#chart-categories .hbar").first.bounding_box()["width"] > 80


def test_labeler_sees_no_snapshots(page, users, login):
    login(page, "labeler1")
    assert page.locator("nav.nav a[href='/snapshots/']").count() == 0
    response = page.goto("/snapshots/")
    assert response.status == 403
