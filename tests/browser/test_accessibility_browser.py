"""Issue 8 in a real browser: the menu from the keyboard on a phone, one line of navigation at
1280 px in English, no favicon 404, the docs lead back, the projects table fits, the reports page
asks before excluding and offers Undo, and axe-core (axe-playwright-python, pinned in
requirements-dev.txt) finds no WCAG 2.1 A/AA violation on the platform's pages."""
from __future__ import annotations

import os
import re

import pytest
from django.urls import reverse

from tests.browser.conftest import SCREENSHOTS
from tests.conftest import make_photo

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def world(users, source, tmp_path):
    """Three photos, a project with a published guideline, a reported photo and a training run."""
    from datasets import services as datasets
    from datasets.models import ImportItem, ImportJob
    from labeling import services
    from labeling.snapshots import freeze_snapshot
    from tests.factories import texts

    images = [datasets.ingest_one(make_photo(320, 240, seed=1700 + i), source=source, category="food").image
              for i in range(3)]
    job = ImportJob.objects.create(source=source, kind="upload", status="done", total=1, processed=1, accepted=1)
    ImportItem.objects.create(job=job, position=0, name="a.jpg", outcome="accepted", image=images[0])
    project = services.create_project("접근성 Accessibility", created_by=users["planner"],
                                      description="라벨러 홈에 보이는 설명")
    services.sync_project_images(project)
    services.add_member(project, users["labeler"], cap_override=10)
    services.save_example(project, images[0], note="짧게", comments=[
        {"comment_type": "reaction", "text": "와 맛있겠다", "verdict": "good", "why": "자연스러워요"},
    ])
    services.publish_guideline(project, "# 가이드\n\n- **친구에게 말하듯**\n", published_by=users["planner"])
    reported = services.report(services.next_assignment(project, users["labeler"]), users["labeler"], "broken",
                               "반쯤 잘렸어요")
    services.submit(services.next_assignment(project, users["labeler"]), users["labeler"], texts(1))
    v1 = freeze_snapshot("접근성", projects=[project], min_sets=1)
    services.submit(services.next_assignment(project, users["labeler"]), users["labeler"], texts(2))
    v2 = freeze_snapshot("접근성", projects=[project], min_sets=1, keep_splits_from=v1)
    from curation import services as curation
    from labeling.models import Comment

    curation.record_flags("phash", "1", [{"kind": "near_duplicate_photo", "image": images[2], "keeper": images[1],
                                          "score": 4, "group_key": "g", "evidence": {"distance": 4}}])
    curation.record_flags("tmpl", "1", [{"kind": "template_comment", "comment": Comment.objects.first(), "score": 0.4,
                                         "evidence": {"count": 12, "share": 0.4, "examples": ["와 맛있겠다"]}}])
    curation.record_flags("quality", "1", [{"kind": "quality_dark", "image": images[0], "score": 0.05,
                                            "evidence": {"value": 0.05, "threshold": 0.1}}])
    from curation.models import Flag

    curation.decide([Flag.objects.get(kind="quality_dark")], "keep", users["planner"], "밤 사진")
    from curation import runs

    done = runs.run_here(runs.start_run(project, ["text"], user=users["planner"], enqueue=False))
    services.send_labeler_message(project, users["labeler"], "사진에 보이는 것을 더 구체적으로 써 주세요",
                                  sent_by=users["planner"])
    from datasets.runs.services import register_run
    from tests.runfolders import write_run

    run, _ = register_run(str(write_run(tmp_path, snapshot=("접근성", 2))), trusted=True)
    register_run(str(write_run(tmp_path, "generative-a11y", kind="generative", snapshot=("접근성", 2))), trusted=True)
    return {"project": project, "images": images, "job": job, "reported": reported, "snapshot": v2, "run": run,
            "curation_run": done}


def _english(page):
    page.click("button.lang[value=en]")
    page.wait_for_load_state()


# ---------------------------------------------------------------- the menu on a phone


def test_keyboard_opens_the_menu_on_a_phone(new_page, users, login, shot):
    page = new_page(viewport=(375, 740))
    login(page, "planner1")
    toggle = page.locator("button.nav-toggle")
    nav = page.locator("#main-nav")
    assert toggle.is_visible() and not nav.is_visible()
    assert toggle.get_attribute("aria-expanded") == "false"
    # From the top of the page: the brand, then the menu button.
    page.locator("body").focus()
    for _ in range(4):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.classList.contains('nav-toggle')"):
            break
    assert page.evaluate("document.activeElement.classList.contains('nav-toggle')")
    page.keyboard.press("Enter")
    assert nav.is_visible() and toggle.get_attribute("aria-expanded") == "true"
    shot(page, "a11y-menu-open-phone")
    # The next Tab reaches the first link of the menu.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.closest('#main-nav') !== null")
    page.keyboard.press("Escape")
    assert not nav.is_visible() and toggle.get_attribute("aria-expanded") == "false"
    assert page.evaluate("document.activeElement.classList.contains('nav-toggle')")
    page.keyboard.press("Space")
    assert nav.is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375


def test_without_script_the_menu_shows_open_on_a_phone(browser, live_server, users):
    ctx = browser.new_context(viewport={"width": 375, "height": 740}, java_script_enabled=False,
                              base_url=live_server.url)
    try:
        page = ctx.new_page()
        page.goto("/accounts/login/")
        page.fill("input[name=username]", "planner1")
        page.fill("input[name=password]", "correct-horse-battery")
        page.click("button[type=submit].btn-primary")
        page.wait_for_load_state()
        assert page.locator("#main-nav").is_visible() and not page.locator("button.nav-toggle").is_visible()
    finally:
        ctx.close()


# ---------------------------------------------------------------- the top bar and the projects table


@pytest.mark.parametrize("role", ["planner", "engineer", "admin"])
def test_navigation_keeps_to_one_line_at_1280_in_english(new_page, users, login, shot, role):
    page = new_page(viewport=(1280, 800), locale="en-US")
    login(page, f"{role}1")
    _english(page)
    page.goto("/projects/")
    links = page.locator("#main-nav a")
    assert links.count() >= 7
    tops = {round(b["y"]) for b in (links.nth(i).bounding_box() for i in range(links.count()))}
    assert len(tops) == 1, f"links on {len(tops)} lines"
    nav = page.locator("#main-nav").bounding_box()
    link = links.first.bounding_box()
    assert nav["height"] < 1.5 * link["height"]
    # Nothing else in the bar wraps either: one row, as tall as its tallest item.
    assert page.locator(".topbar").bounding_box()["height"] < 60
    shot(page, f"a11y-topbar-1280-en-{role}")


def test_projects_table_fits_at_1280(new_page, users, world, login, shot):
    page = new_page(viewport=(1280, 800), locale="en-US")
    login(page, "planner1")
    _english(page)
    page.goto("/projects/")
    wrap = page.locator(".table-wrap")
    assert wrap.evaluate("w => w.scrollWidth <= w.clientWidth")
    assert page.locator(".projects-table th").last.is_visible()
    shot(page, "a11y-projects-1280-en")
    # On a phone the table scrolls inside its card, the page itself does not.
    phone = new_page(viewport=(375, 740))
    login(phone, "planner1")
    phone.goto("/projects/")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 375


# ---------------------------------------------------------------- favicon and the docs


def test_no_page_asks_for_a_missing_favicon(new_page, users, login):
    page = new_page()
    missing: list[str] = []
    page.on("response", lambda r: r.status == 404 and missing.append(r.url))
    page.goto("/accounts/login/")
    page.goto("/admin/login/")
    login(page, "admin1")
    for url in ("/projects/", "/admin/", reverse("api-docs"), reverse("api-redoc")):
        page.goto(url, wait_until="networkidle")
    assert missing == []
    response = page.goto("/favicon.ico")
    assert response.status == 200 and response.headers["content-type"].startswith("image/svg+xml")
    assert response.request.redirected_from is not None


@pytest.mark.parametrize("name,drawn", [("api-docs", ".swagger-ui .opblock"), ("api-redoc", ".api-content h1")])
def test_api_docs_have_a_way_back(new_page, users, login, name, drawn):
    page = new_page()
    login(page, "planner1")
    page.goto(reverse(name))
    page.wait_for_selector(drawn)
    back = page.locator(".docs-bar a.docs-back")
    assert back.is_visible()
    assert page.locator("html").get_attribute("lang") == "ko"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"a11y-{name}-back.png"))  # the top only: the docs are long
    back.click()
    page.wait_for_url(re.compile(r"/datasets/quotas/$"))  # a planner's home


# ---------------------------------------------------------------- reports: confirm and undo


def test_exclude_asks_and_undo_puts_the_photo_back(new_page, users, world, login, shot):
    from labeling.models import Assignment, ProjectImage

    project, reported = world["project"], world["reported"]
    page = new_page(locale="en-US")
    login(page, "planner1")
    _english(page)
    page.goto(reverse("project-reports", args=[project.pk]))
    row = page.locator(f'tr[data-report="{reported.pk}"]')
    assert row.locator("img").get_attribute("alt").startswith("Photo ")
    # Cancelled: nothing happens.
    page.once("dialog", lambda d: d.dismiss())
    row.locator("button[value=excluded]").click()
    page.wait_for_timeout(300)
    assert Assignment.objects.get(pk=reported.pk).report_resolution == ""
    # Accepted: excluded at once, and the page offers Undo.
    questions = []
    page.once("dialog", lambda d: (questions.append(d.message), d.accept()))
    row.locator("button[value=excluded]").click()
    page.wait_for_selector(".undo-bar")
    assert "Nobody gets it again" in questions[0]
    assert ProjectImage.objects.get(project=project, image_id=reported.image_id).excluded
    shot(page, "a11y-reports-undo")
    page.click(".undo-bar button")
    page.wait_for_selector(".msg-success")
    assert "back in the project's queue" in page.locator(".messages").inner_text()
    assert Assignment.objects.get(pk=reported.pk).report_resolution == ""
    assert not ProjectImage.objects.get(project=project, image_id=reported.image_id).excluded
    assert page.locator(f'tr[data-report="{reported.pk}"]').is_visible()  # open again


def test_exclude_without_script_asks_on_a_page(browser, live_server, users, world, shot):
    from labeling.models import ProjectImage

    project, reported = world["project"], world["reported"]
    ctx = browser.new_context(viewport={"width": 1280, "height": 800}, java_script_enabled=False,
                              base_url=live_server.url)
    try:
        page = ctx.new_page()
        page.goto("/accounts/login/")
        page.fill("input[name=username]", "planner1")
        page.fill("input[name=password]", "correct-horse-battery")
        page.click("button[type=submit].btn-primary")
        page.goto(reverse("project-reports", args=[project.pk]))
        page.locator(f'tr[data-report="{reported.pk}"] button[value=excluded]').click()
        page.wait_for_url(re.compile(r"/exclude/"))
        assert not ProjectImage.objects.get(project=project, image_id=reported.image_id).excluded
        assert "반쯤 잘렸어요" in page.locator(".confirm-card").inner_text()
        shot(page, "a11y-report-exclude-confirm")
        page.click(".confirm-card button[value=excluded]")
        page.wait_for_selector(".undo-bar")
        assert ProjectImage.objects.get(project=project, image_id=reported.image_id).excluded
    finally:
        ctx.close()


# ---------------------------------------------------------------- axe-core


def _axe():
    try:
        from axe_playwright_python.sync_playwright import Axe
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("axe-playwright-python is not installed (requirements-dev.txt)")
        pytest.skip("axe-playwright-python is not installed (requirements-dev.txt)")
    return Axe()


AA = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}


def _check(axe, page, url, found, context=None):
    page.goto(url, wait_until="networkidle")
    results = axe.run(page, context=context, options=AA)
    if results.violations_count:
        found.append(f"{url}\n{results.generate_report()}")


# once: the markup and styles axe judges are the same on either database (two minutes a run)
@pytest.mark.once
def test_axe_finds_no_wcag_aa_violation(new_page, users, world, login):
    axe = _axe()
    project, images, job = world["project"], world["images"], world["job"]
    found: list[str] = []

    page = new_page()
    _check(axe, page, reverse("login"), found)

    page = new_page()
    login(page, "planner1")
    for name, args in [
        ("quota-dashboard", []), ("projects", []), ("project-detail", [project.pk]),
        ("project-edit", [project.pk]), ("project-guideline", [project.pk]),
        ("project-labelers", [project.pk]), ("project-labeler-quality", [project.pk]),
        ("project-reports", [project.pk]), ("project-report-exclude", [project.pk, world["reported"].pk]),
        ("project-example-pick", [project.pk]), ("images", []), ("image-detail", [images[0].pk]),
        ("imports", []), ("import-new", []), ("import-detail", [job.pk]), ("sources", []),
        ("categories", []), ("api-redoc", []), ("snapshots", []), ("snapshot-new", []),
        ("snapshot-page", [world["snapshot"].pk]), ("snapshot-page-diff", [world["snapshot"].pk]),
        ("curation-review", []), ("curation-decisions", []), ("curation-runs", []),
        ("curation-run", [world["curation_run"].pk]), ("curation-specificity", [project.pk]),
    ]:
        _check(axe, page, reverse(name, args=args), found)
    # The review queue of one kind: the "Decide all N matching" panel; and a duplicate group's card.
    _check(axe, page, reverse("curation-review") + "?kind=template_comment", found)
    _check(axe, page, reverse("curation-review") + "?kind=near_duplicate_photo", found)
    # Swagger UI's own widgets are its authors' (nested buttons, grey version chips): our bar only.
    _check(axe, page, reverse("api-docs"), found, context={"exclude": [["#swagger-ui"]]})

    page = new_page()
    login(page, "engineer1")
    _check(axe, page, reverse("tokens"), found)
    _check(axe, page, reverse("runs"), found)
    _check(axe, page, reverse("run-detail", args=[world["run"].pk]), found)

    page = new_page(viewport=(375, 740))
    login(page, "labeler1")
    for name, args in [("labeler-home", []), ("label", [project.pk]), ("label-history", [project.pk]),
                       ("label-guide", [project.pk])]:
        _check(axe, page, reverse(name, args=args), found)
    assert not found, "\n\n".join(found)
