"""The platform in a real browser: login, upload with its report, the quota dashboard, the
labeler's phone page, categories, sources and API tokens. Each test saves screenshots."""
from __future__ import annotations

import io
import re
import zipfile

import pytest

from tests.conftest import make_photo

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def test_login_wrong_then_right_password_then_logout(page, users, shot):
    page.goto("/")
    assert "/accounts/login/" in page.url
    page.fill("input[name=username]", "planner1")
    page.fill("input[name=password]", "not-the-password")
    page.click("button[type=submit].btn-primary")
    error = page.locator(".alert-error")
    assert "아이디 또는 비밀번호가 틀렸습니다" in error.inner_text()
    shot(page, "login-wrong-password")
    page.fill("input[name=password]", "correct-horse-battery")
    page.click("button[type=submit].btn-primary")
    page.wait_for_url(re.compile(r"/datasets/quotas/$"))
    assert page.locator("h1").inner_text() == "목표 현황판"
    assert "planner1" in page.locator(".whoami").inner_text()
    page.click(".logout-form button")
    page.wait_for_url(re.compile(r"/accounts/login/"))
    page.goto("/datasets/quotas/")
    assert "/accounts/login/" in page.url


def test_planner_uploads_photos_and_zip_sees_report_and_dashboard(page, users, source, login, shot, tmp_path):
    login(page, "planner1")
    files = []
    for n in range(3):
        p = tmp_path / f"photo-{n}.jpg"
        p.write_bytes(make_photo(seed=100 + n))
        files.append(p)
    (tmp_path / "photo-0-copy.jpg").write_bytes(make_photo(seed=100))  # a duplicate of photo-0
    files.append(tmp_path / "photo-0-copy.jpg")
    (tmp_path / "broken.jpg").write_bytes(b"not a picture at all")
    files.append(tmp_path / "broken.jpg")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("album/z1.jpg", make_photo(seed=110))
        zf.writestr("album/z2.png", make_photo(seed=111, fmt="PNG"))
    (tmp_path / "album.zip").write_bytes(buf.getvalue())
    files.append(tmp_path / "album.zip")

    page.goto("/datasets/imports/new/")
    page.select_option("#id_source", label=source.name)
    page.select_option("#id_category", label="Food / 음식")
    # Only food's subcategories remain choosable.
    enabled = page.locator("#id_subcategory option:not([disabled])").all_inner_texts()
    assert "Korean food / 한식" in enabled and "Selfie / 셀카" not in enabled
    page.select_option("#id_subcategory", label="Korean food / 한식")
    page.set_input_files("#id_files", [str(f) for f in files])
    assert "6" in page.locator("#file-summary").inner_text()
    shot(page, "import-new")
    page.click("#import-submit")
    page.wait_for_url(re.compile(r"/datasets/imports/\d+/$"))
    page.wait_for_selector(".status-done")

    def count(name):
        return page.locator(f'[data-count="{name}"]').inner_text()

    assert (count("accepted"), count("duplicate"), count("refused")) == ("5", "1", "1")
    rows = page.locator("#report-rows tr")
    assert rows.count() == 7
    assert page.locator("#report-rows tr.item-duplicate").inner_text().count("photo-0-copy.jpg") == 1
    assert page.locator("#report-rows tr.item-duplicate a.thumb-link").count() == 1
    assert "broken.jpg" in page.locator("#report-rows tr.item-refused").inner_text()
    assert page.locator("#report-rows tr.item-accepted img.thumb-sm").count() == 5
    shot(page, "import-report")

    page.click(".filters a.chip >> nth=3")  # refused only
    page.wait_for_url(re.compile(r"outcome=refused"))
    assert page.locator("#report-rows tr").count() == 1

    page.goto("/datasets/quotas/")
    korean = page.locator('tr[data-subcategory="korean"]')
    assert korean.locator("a.count-link").inner_text() == "5"
    food = page.locator('tr[data-category="food"]')
    assert food.locator("a.count-link").inner_text() == "5"
    width = korean.locator(".bar > span").evaluate("e => e.style.width")
    assert width == "0%"  # 5 of 5,000 rounds to 0 %
    shot(page, "quota-dashboard-after-upload")
    korean.locator("a.count-link").click()
    page.wait_for_url(re.compile(r"/datasets/images/\?category=food&subcategory=korean"))
    assert page.locator(".image-grid li").count() == 5
    shot(page, "image-list")
    page.locator(".image-grid a").first.click()
    page.wait_for_url(re.compile(r"/datasets/images/[0-9a-f-]{36}/$"))
    assert "CC BY 4.0" in page.locator(".attribution").inner_text()
    assert page.locator(".image-figure img").evaluate("i => i.naturalWidth") > 0
    shot(page, "image-detail")


def test_quota_dashboard_bars_full_and_over(page, users, source, login, shot):
    from datasets import services
    from datasets.models import Subcategory

    Subcategory.objects.filter(slug="pet").update(quota=2)
    Subcategory.objects.filter(slug="selfie").update(quota=2)
    for seed, (cat, sub) in enumerate([("animals", "pet"), ("animals", "pet"), ("people", "selfie"),
                                       ("people", "selfie"), ("people", "selfie"), ("places", "landmark")], start=200):
        services.ingest_one(make_photo(seed=seed, width=320, height=240), source=source, category=cat, subcategory=sub)
    login(page, "engineer1")
    page.goto("/datasets/quotas/")
    pet = page.locator('tr[data-subcategory="pet"]')
    selfie = page.locator('tr[data-subcategory="selfie"]')
    assert pet.locator(".bar").get_attribute("class") == "bar bar-full"
    assert selfie.locator(".bar").get_attribute("class") == "bar bar-over"
    assert pet.locator(".bar > span").evaluate("e => getComputedStyle(e).width") != "0px"
    assert page.locator("tfoot a.count-link").inner_text() == "6"
    assert page.locator('tr[data-category="people"] td.num').nth(2).inner_text() == "0"  # labeled: no comments yet
    # Engineers read the dashboard but get no category editing in the menu.
    assert page.locator("nav.nav a", has_text="카테고리").count() == 0
    shot(page, "quota-dashboard-full-over")


def test_labeler_home_on_a_phone_in_korean(new_page, users, login, shot):
    page = new_page(viewport=(390, 844))
    login(page, "labeler1")
    page.wait_for_url(re.compile(r"/label/$"))
    text = page.locator("main").inner_text()
    assert "labeler1님, 안녕하세요!" in text
    assert "아직 배정된 라벨링 프로젝트가 없습니다" in text
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "labeler-home-phone")
    # The menu folds behind a button on a phone.
    assert not page.locator("nav.nav").is_visible()
    page.click(".nav-toggle")
    assert page.locator("nav.nav").is_visible()
    shot(page, "labeler-home-phone-menu")
    # Switch to English and back.
    page.click("button.lang[value=en]")
    assert "No labeling project has been assigned to you yet" in page.locator("main").inner_text()
    page.click("button.lang[value=ko]")
    assert "아직 배정된" in page.locator("main").inner_text()
    page.goto("/datasets/quotas/")
    assert "이 페이지는 내 역할로 볼 수 없습니다" in page.locator("main").inner_text()


def test_login_page_on_a_phone(new_page, users, shot):
    page = new_page(viewport=(390, 844))
    page.goto("/accounts/login/")
    assert page.locator("h1").inner_text() == "로그인"
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "login-phone")


def test_planner_edits_categories_and_creates_a_source(page, users, licence, login, shot):
    login(page, "planner1")
    page.goto("/datasets/categories/")
    page.fill("#id_new-name", "Drinks / 음료")
    page.fill("#id_new-slug", "drinks")
    page.fill("#id_new-quota", "-3")
    page.click("text=카테고리 추가 >> nth=-1")
    assert page.locator("#id_new-quota ~ .field-error").count() == 1
    shot(page, "categories-error")
    page.fill("#id_new-quota", "3000")
    page.click("button:has-text('카테고리 추가')")
    page.wait_for_url(re.compile(r"/datasets/categories/\d+/$"))
    page.fill("#id_newsub-name", "Coffee / 커피")
    page.fill("#id_newsub-slug", "coffee")
    page.fill("#id_newsub-quota", "1000")
    page.click("button:has-text('하위 카테고리 추가')")
    assert page.locator(".msg-success").count() == 1
    assert page.locator("input[value=coffee]").count() == 1
    shot(page, "category-edit")
    page.click("button:has-text('카테고리 사용 중지')")
    assert page.locator("h1 .badge").inner_text() == "사용 중지"

    page.goto("/datasets/sources/")
    page.fill("#id_name", "Team phones")
    page.select_option("#id_kind", "upload")
    page.select_option("#id_default_licence", label="CC0 1.0")
    page.click("button:has-text('출처 만들기')")
    assert page.locator("table >> text=Team phones").count() == 1
    assert "켜져 있습니다" in page.locator(".policy").inner_text()
    shot(page, "sources")


def test_engineer_creates_copies_and_revokes_a_token(page, users, login, shot):
    login(page, "engineer1")
    page.goto("/accounts/tokens/")
    page.fill("#id_name", "trainer box")
    page.click("button:has-text('토큰 만들기')")
    key = page.locator("#new-key").input_value()
    assert key.startswith("icp_")
    shot(page, "tokens-created")
    page.reload()
    assert page.locator("#new-key").count() == 0
    page.once("dialog", lambda d: d.accept())
    page.click("button:has-text('폐기')")
    assert page.locator(".badge-muted").count() == 1
    shot(page, "tokens-revoked")


def test_import_page_follows_a_running_import(page, users, source, login, shot):
    from django.db.models import F

    from datasets import services
    from datasets.models import ImportItem, ImportJob

    first = services.ingest_one(make_photo(seed=300, width=320, height=240), source=source).image
    job = ImportJob.objects.create(source=source, kind="upload", status="running", total=2, processed=1, accepted=1)
    ImportItem.objects.create(job=job, position=0, name="first.jpg", outcome="accepted", image=first)
    login(page, "planner1")
    page.goto(f"/datasets/imports/{job.pk}/")
    assert page.locator("#job-progress-text").inner_text() == "1 / 2 (50%)"
    assert page.locator(".status-running").count() == 1
    shot(page, "import-running")
    # The worker reports the second file and finishes; the page catches up by polling.
    ImportItem.objects.create(job=job, position=1, name="second.jpg", outcome="refused", reason="Too small.")
    ImportJob.objects.filter(pk=job.pk).update(processed=F("processed") + 1, refused=1, status="done")
    page.wait_for_selector("#job-status.status-done")
    page.wait_for_selector("#report-rows tr.item-refused")
    assert page.locator('[data-count="refused"]').inner_text() == "1"
    assert page.locator("#report-rows tr").count() == 2


def test_an_empty_file_in_the_upload_selection_is_refused_on_its_own_line(page, users, source, login, shot, tmp_path):
    login(page, "planner1")
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "good.jpg").write_bytes(make_photo(seed=400))
    page.goto("/datasets/imports/new/")
    page.select_option("#id_source", label=source.name)
    page.set_input_files("#id_files", [str(tmp_path / "empty.jpg"), str(tmp_path / "good.jpg")])
    page.click("#import-submit")
    page.wait_for_url(re.compile(r"/datasets/imports/\d+/$"))
    page.wait_for_selector(".status-done")
    assert page.locator('[data-count="accepted"]').inner_text() == "1"
    refused = page.locator("#report-rows tr.item-refused")
    assert refused.count() == 1 and "empty.jpg" in refused.inner_text()
    shot(page, "import-empty-file")


def test_a_planner_resumes_an_interrupted_import_from_its_page(page, users, source, login, shot):
    from datetime import timedelta

    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.utils import timezone

    from datasets import services
    from datasets.models import ImportJob

    services._last_stall_sweep = None  # the pages sweep at most once a minute per process
    job = services.create_import(source=source, enqueue=False, files=[
        SimpleUploadedFile("a.jpg", make_photo(seed=401)), SimpleUploadedFile("b.jpg", make_photo(seed=402))])
    # Its worker was killed an hour ago: running, with no sign of life since.
    ImportJob.objects.filter(pk=job.pk).update(status="running", started_at=timezone.now() - timedelta(hours=1),
                                               heartbeat_at=timezone.now() - timedelta(hours=1))
    login(page, "planner1")
    page.goto(f"/datasets/imports/{job.pk}/")
    assert page.locator("#job-status.status-interrupted").inner_text() == "중단됨"
    assert page.locator("#job-error").is_visible()
    shot(page, "import-interrupted")
    page.click("#resume-import")
    page.wait_for_selector("#job-status.status-done")
    assert page.locator('[data-count="accepted"]').inner_text() == "2"
    assert page.locator("#resume-import").count() == 0
    shot(page, "import-resumed")
