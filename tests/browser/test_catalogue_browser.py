"""The catalogue in a real browser (issue 8): a planner picks photos on the image grid (one by
one, or every photo on the page), retires them with a reason, finds them under their status,
restores them, and acts on one photo from its own page; the project's queue follows."""
from __future__ import annotations

import re

import pytest

from tests.conftest import make_photo

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def photos(source):
    from datasets import services as datasets
    from datasets.models import Category
    from labeling import services

    food = Category.objects.get(slug="food")
    images = [datasets.ingest_one(make_photo(480, 360, seed=4100 + i), source=source, category="food").image
              for i in range(4)]
    project = services.create_project("Catalogue queue", categories=[food])
    services.sync_project_images(project)
    return images, project


def test_planner_selects_photos_on_the_grid_and_retires_then_restores_them(page, users, photos, login, shot):
    from datasets.models import Image
    from labeling.models import ProjectImage

    images, project = photos
    login(page, "planner1")
    page.goto("/datasets/images/")
    boxes = page.locator('input[name="ids"][form="bulk-form"]')
    assert boxes.count() == 4
    submit = page.locator("[data-bulk-submit]")
    assert submit.is_disabled()  # nothing chosen yet
    select_all = page.locator("[data-select-all]")
    select_all.check()
    assert all(boxes.nth(i).is_checked() for i in range(4))
    assert "4" in page.locator("[data-selected-count]").inner_text()
    boxes.nth(0).uncheck()  # keep the newest photo
    assert page.evaluate("document.querySelector('[data-select-all]').indeterminate")
    assert page.locator(".image-grid li.picked").count() == 3
    # The target field shows only for "move"; the reason for retire and exclude.
    page.select_option('select[name="action"]', "move")
    assert page.locator('select[name="target"]').is_visible() and not page.locator('input[name="reason"]').is_visible()
    page.select_option('select[name="action"]', "retire")
    assert page.locator('input[name="reason"]').is_visible() and not page.locator('select[name="target"]').is_visible()
    page.fill('input[name="reason"]', "흐릿함")
    shot(page, "catalogue-grid-selected")
    submit.click()
    page.wait_for_load_state()
    assert page.locator(".msg-success").count() == 1
    assert page.locator('input[name="ids"][form="bulk-form"]').count() == 1
    assert Image.objects.filter(status="retired", status_reason="흐릿함").count() == 3
    assert ProjectImage.objects.filter(project=project).count() == 1
    shot(page, "catalogue-grid-after-retire")

    page.select_option("#f-status", "retired")
    page.click(".filter-bar button[type=submit]")
    page.wait_for_url(re.compile(r"status=retired"))
    assert page.locator(".image-grid li.withdrawn").count() == 3
    page.locator("[data-select-all]").check()
    page.select_option('select[name="action"]', "restore")
    shot(page, "catalogue-grid-retired")
    page.locator("[data-bulk-submit]").click()
    page.wait_for_load_state()
    assert re.search(r"status=retired", page.url)  # back where it was, now empty
    assert page.locator(".image-grid").count() == 0
    assert Image.objects.filter(status="active").count() == 4
    assert ProjectImage.objects.filter(project=project).count() == 4


def test_planner_excludes_one_photo_from_its_page(page, users, photos, login, shot):
    from datasets.models import Image

    images, _project = photos
    login(page, "planner1")
    page.goto(f"/datasets/images/{images[1].pk}/")
    actions = page.locator("[data-image-actions]")
    assert actions.is_visible()
    actions.locator('input[name="reason"]').fill("얼굴이 보임")
    actions.locator('button[value="exclude"]').click()
    page.wait_for_load_state()
    assert page.url.endswith(f"/datasets/images/{images[1].pk}/")
    assert page.locator('[data-status="excluded"]').is_visible()
    assert page.locator('[data-image-actions] button[value="restore"]').is_visible()
    shot(page, "catalogue-image-excluded")
    assert Image.objects.get(pk=images[1].pk).status == "excluded"
    # Moving it from the same page.
    page.select_option('[data-image-actions] select[name="target"]', "people")
    page.locator('[data-image-actions] button[value="move"]').click()
    page.wait_for_load_state()
    assert Image.objects.get(pk=images[1].pk).category.slug == "people"


def test_planner_watches_an_imports_photos_join_the_open_project(page, users, photos, source, login, shot, settings):
    """The issue's loop: the project page is open, an import finishes, and the live dashboard shows
    the new photos in the queue and says how many joined and when."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from datasets import services as datasets

    settings.PLANNER_DASHBOARD_REFRESH_SECONDS = 1
    _images, project = photos
    login(page, "planner1")
    page.goto(f"/projects/{project.pk}/")
    assert page.locator('[data-total="photos"]').inner_text() == "4"
    assert page.locator("[data-joined]").count() == 0
    files = [SimpleUploadedFile(f"new-{i}.jpg", make_photo(400, 300, seed=4200 + i)) for i in range(3)]
    job = datasets.create_import(source=source, files=files, category="food", enqueue=False)
    datasets.run_import(job.pk)  # committed at once (transactional test): the join task runs eagerly
    page.wait_for_selector('[data-joined="3"]', timeout=10_000)
    assert page.locator('[data-total="photos"]').inner_text() == "7"
    shot(page, "catalogue-project-photos-joined")
    # The option on the settings page: follow new photos (the default) or freeze the photo set.
    page.goto(f"/projects/{project.pk}/edit/")
    assert page.locator('input[name="photo_set"][value="follow"]').is_checked()
    page.locator('input[name="photo_set"][value="frozen"]').check()
    shot(page, "catalogue-project-photo-set")
