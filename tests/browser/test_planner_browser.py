"""The planner pages in a real browser: create a project, write the guideline with its live
preview, pick an example photo and write good and bad comments, publish, import labelers from
CSV, watch the dashboard fill in as labelers submit, and resolve a report. Screenshots at a
desktop size, and the dashboard on a phone."""
from __future__ import annotations

import re

import pytest

from tests.conftest import make_photo
from tests.factories import texts

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

CSV = "username,password,name,email,cap\nminji,first-pass-123,김민지,minji@example.com,\njunho,second-pass-456,박준호,,150\n"
BAD_CSV = "username,password,name\nsora,short,소라\n,long-enough-1,\n"


@pytest.fixture
def photos(db, source):
    from datasets import services

    cats = ["food", "food", "food", "people", "people", "places"]
    return [services.ingest_one(make_photo(seed=700 + i, width=480, height=360), source=source, category=cat,
                                original_name=f"photo-{i}.jpg").image for i, cat in enumerate(cats)]



def test_planner_builds_a_project_and_watches_it_fill_in(page, new_page, users, photos, login, shot, settings,
                                                         tmp_path):
    from datasets.models import Category
    from labeling import services
    from labeling.models import Assignment, GuidelineExample, Project

    settings.PLANNER_DASHBOARD_REFRESH_SECONDS = 1
    login(page, "planner1")
    page.click("nav.nav a[href='/projects/']")
    page.wait_for_url(re.compile(r"/projects/$"))
    assert page.locator("nav.nav a.active").get_attribute("href") == "/projects/"
    page.click("a[href='/projects/new/']")

    # --- New project: the defaults are filled in; an error first, then the real thing.
    assert page.locator("#id_overlap").input_value() == "2"
    assert page.locator("#id_cap_per_labeler").input_value() == "300"
    assert page.locator("#id_types-0-slug").input_value() == "reaction"
    assert page.locator("#id_types-1-min_length").input_value() == "10"
    page.fill("#id_name", "Food & people")
    page.fill("#id_overlap", "0")
    page.click("[data-add-row]")
    page.fill("#id_types-2-name", "Question")
    page.fill("#id_types-2-slug", "question")
    page.fill("#id_types-2-min_length", "20")
    page.fill("#id_types-2-max_length", "5")
    page.click("#save-project")
    assert page.locator("#form-errors").is_visible()
    assert page.locator("#id_overlap ~ .field-error").count() == 1
    assert page.locator("#id_types-2-max_length ~ .field-error").count() == 1
    assert not Project.objects.exists()
    shot(page, "planner-project-errors")
    page.fill("#id_overlap", "2")
    page.check("#id_types-2-DELETE")
    for slug in ("food", "people"):
        page.check(f"#id_categories input[value='{Category.objects.get(slug=slug).pk}']")
    shot(page, "planner-project-new")
    page.click("#save-project")
    page.wait_for_url(re.compile(r"/projects/\d+/$"))
    project = Project.objects.get()
    assert list(project.comment_types.values_list("slug", flat=True)) == ["reaction", "specific"]
    assert page.locator('[data-total="photos"]').inner_text() == "5"
    assert page.locator(".msg-info").count() == 1

    # --- Guideline: live preview (sanitised), save, then examples and publish.
    page.click(f"a[href='/projects/{project.pk}/guideline/']")
    page.wait_for_url(re.compile(r"/guideline/$"))
    page.wait_for_load_state()  # the preview script is in place before typing
    page.fill("textarea[name=body]", "# 가이드라인\n\n- 사진에 **실제로 있는 것**만 말해요\n- 캡션 말고 대화처럼\n\n<script>window.hacked=1</script>")
    page.wait_for_selector("#guideline-preview h1:has-text('가이드라인')")
    assert page.locator("#guideline-preview strong").inner_text() == "실제로 있는 것"
    assert page.locator("#guideline-preview script").count() == 0
    assert page.evaluate("window.hacked") is None
    page.click("#save-draft")
    page.wait_for_selector(".msg-success")
    project.refresh_from_db()
    assert "캡션 말고" in project.guideline_draft and project.guideline_version == 0

    page.click("a[href$='/examples/pick/']")
    page.click(".pick-filters a.chip:has-text('Food / 음식')")
    page.wait_for_url(re.compile(r"category="))
    assert page.locator(".pick-grid li").count() == 3
    shot(page, "planner-example-pick")
    page.locator(".pick-grid a").first.click()
    page.wait_for_url(re.compile(r"/examples/new/\?image="))
    assert page.locator("#example-photo").evaluate("i => i.naturalWidth") > 0
    page.fill("#id_note", "대화처럼, 사진에 있는 것만")
    page.select_option("#id_c-0-comment_type", "reaction")
    page.fill("#id_c-0-text", "와.. 족발 폼 미쳤다!")
    page.fill("#id_c-0-why", "자연스러운 첫 반응")
    page.select_option("#id_c-1-comment_type", "specific")
    page.fill("#id_c-1-text", "테이블 위에 음식들이 놓여있습니다")
    page.fill("#id_c-1-why", "캡션이지 대화가 아님")
    page.click("[data-add-row]")
    page.check("#id_c-2-verdict_1")  # bad
    page.fill("#id_c-2-text", "ㅋㅋㅋ")
    page.fill("#id_c-2-why", "자모만")
    shot(page, "planner-example-form")
    page.click("#save-example")
    page.wait_for_url(re.compile(r"/guideline/"))
    example = GuidelineExample.objects.get()
    assert list(example.comments.values_list("verdict", flat=True)) == ["good", "bad", "bad"]
    item = page.locator(f'[data-example="{example.pk}"]')
    assert item.locator(".badge-ok").count() == 1 and item.locator(".badge-bad").count() == 2
    assert item.locator(".example-thumb img").evaluate("i => i.naturalWidth") > 0

    page.once("dialog", lambda d: d.accept())
    page.click("#publish")
    page.wait_for_selector("#versions [data-version='1']")
    project.refresh_from_db()
    assert project.guideline_version == 1
    assert page.locator("#publish").inner_text().strip().endswith("2")
    shot(page, "planner-guideline")
    page.click("#versions a:has-text('v1')")
    assert page.locator("#version-body h1").inner_text() == "가이드라인"
    assert page.locator(".ex-comment").count() == 3

    # --- Labelers: a malformed CSV is refused with its lines, then a good one is imported.
    page.click(f"a[href='/projects/{project.pk}/labelers/']")
    bad = tmp_path / "bad.csv"
    bad.write_text(BAD_CSV, encoding="utf-8")
    page.set_input_files("#id_csv-file", str(bad))
    page.click("#import-labelers button[type=submit]")
    errors = page.locator("#csv-errors").inner_text()
    assert "2" in errors and "3" in errors
    shot(page, "planner-labelers-csv-error")
    good = tmp_path / "good.csv"
    good.write_text(CSV, encoding="utf-8")
    page.set_input_files("#id_csv-file", str(good))
    page.click("#import-labelers button[type=submit]")
    page.wait_for_selector(".msg-success")
    assert page.locator("tr[data-member]").count() == 2
    page.fill("tr[data-member='minji'] input[name=cap_override]", "3")
    page.click("tr[data-member='minji'] .cap-form button")
    page.wait_for_selector(".msg-success")
    assert page.locator("tr[data-member='minji'] input[name=cap_override]").input_value() == "3"
    shot(page, "planner-labelers")

    # --- Dashboard: submissions arrive while the planner watches.
    page.click(f"a[href='/projects/{project.pk}/']")
    assert page.locator('[data-total="sets"]').inner_text() == "0"
    minji = project.members.get(user__username="minji").user
    junho = project.members.get(user__username="junho").user
    for n, user in enumerate([minji, junho, minji]):
        a = services.next_assignment(project, user)
        services.submit(a, user, texts(n))
    page.wait_for_selector('[data-total="sets"]:text-is("3")')
    assert page.locator('[data-total="done"]').inner_text() == "1"
    assert page.locator("tr[data-labeler='minji'] [data-count]").inner_text() == "2"
    services.next_assignment(project, junho)
    page.wait_for_selector('[data-total="open_leases"]:text-is("1")')
    shot(page, "planner-dashboard")

    phone = new_page(viewport=(390, 844))
    login(phone, "planner1")
    phone.goto(f"/projects/{project.pk}/")
    assert phone.locator('[data-total="sets"]').inner_text() == "3"
    shot(phone, "planner-dashboard-phone")
    # The page itself fits the phone (wide tables scroll inside their own box).
    assert phone.evaluate("document.querySelector('main').scrollWidth") <= 390
    assert phone.locator(".progress-table .stack-nums").first.is_visible()

    # --- Reports: a labeler reports a photo; the planner excludes it.
    lease = Assignment.objects.get(labeler=junho, status="leased")
    services.report(lease, junho, "personal_info", "얼굴이 크게 나와요")
    page.click(f"a[href='/projects/{project.pk}/reports/']")
    assert page.locator(".subnav .count-badge").inner_text() == "1"
    row = page.locator(f"tr[data-report='{lease.pk}']")
    assert "얼굴이 크게 나와요" in row.inner_text()
    assert row.locator("img").evaluate("i => i.naturalWidth") > 0
    shot(page, "planner-reports")
    page.once("dialog", lambda d: d.accept())  # Exclude asks first, then offers Undo
    row.locator("button[value=excluded]").click()
    page.wait_for_selector(".undo-bar")
    assert page.locator(f"tr[data-report='{lease.pk}']").count() == 0  # open reports only
    page.click(".filters a.chip[href='?state=resolved']")
    assert page.locator(f"tr[data-report='{lease.pk}'] [data-resolution]").inner_text().strip() != ""
    assert project.queue.get(image_id=lease.image_id).excluded

    # --- The project list sums it up.
    page.click("nav.nav a[href='/projects/']")
    assert page.locator(f"tr[data-project='{project.pk}'] [data-photos]").inner_text() == "5"
    shot(page, "planner-projects")


def test_engineer_reads_projects_dashboard_and_comments_only(page, users, photos, login, shot):
    from labeling import services

    project = services.create_project("Read only")
    services.sync_project_images(project)
    login(page, "engineer1")
    page.goto("/projects/")
    assert page.locator("a[href='/projects/new/']").count() == 0
    page.click(f"a[href='/projects/{project.pk}/']")
    # The dashboard, the comment browser and the comment imports' reports (to read: only planners
    # import); no settings, guideline, labelers or reports.
    assert page.locator(".subnav a").evaluate_all("links => links.map(a => a.getAttribute('href'))") == [
        f"/projects/{project.pk}/", f"/projects/{project.pk}/comments/", f"/projects/{project.pk}/comment-imports/",
        f"/curation/projects/{project.pk}/specificity/", f"/projects/{project.pk}/labelers/quality/"]
    assert page.locator('[data-total="photos"]').inner_text() == "6"
    page.goto(f"/projects/{project.pk}/edit/")
    assert page.locator("h1").count() == 1 and page.locator("#project-form").count() == 0
