"""Curation runs in a real browser: a planner opens the runs page from the review queue, starts a
run of the photo steps, and its page shows each step's progress and counts; a run the workers are
still on is followed by the page itself (its script polls the API) until it is done. On the review
page, "Keep this one instead" makes a copy the keeper of its group. Screenshots in
test-artifacts/screenshots/."""
from __future__ import annotations

import re

import numpy as np
import pytest

from curation import synthetic

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def photos(users, source):
    """Five photos and two planted copies (a half-size one, a 8 % crop)."""
    from datasets import services as datasets

    originals = [synthetic.photo(700 + i, 480, 360) for i in range(5)]
    for i, img in enumerate(originals):
        datasets.ingest_one(synthetic.jpeg(img, 92), source=source, category="food", original_name=f"dish-{i}.jpg")
    datasets.ingest_one(synthetic.jpeg(synthetic.resize(originals[0], 0.5), 92), source=source, category="food",
                        original_name="dish-0-small.jpg")
    datasets.ingest_one(synthetic.jpeg(synthetic.crop(originals[1], 0.08, np.random.default_rng(1)), 92),
                        source=source, category="people", original_name="dish-1-cropped.jpg")


def test_planner_starts_a_run_and_follows_it(page, login, shot, photos, users):
    from curation import runs
    from curation.models import CurationRun, Flag

    page.set_viewport_size({"width": 1280, "height": 900})
    login(page, "planner1")
    page.click("button.lang[value=en]")
    page.wait_for_load_state()
    page.goto("/curation/review/")
    page.click("a[href='/curation/runs/']")
    page.wait_for_url(re.compile(r"/curation/runs/$"))
    # Every step offered, the window hashes left to the step that needs them.
    from curation import steps as registry

    assert page.locator("input[name=steps]").count() == len(registry.STEPS) == 11
    assert not page.locator("input[name=steps][value=signatures]").is_checked()
    for name in ("text", "pii", "toxicity", "embed_images", "embed_comments", "semantic", "scores"):
        page.uncheck(f"input[name=steps][value={name}]")  # the photo steps only
    shot(page, "curation-runs-start")
    page.click("form.run-form button[type=submit]")
    page.wait_for_url(re.compile(r"/curation/runs/\d+/$"))
    run = CurationRun.objects.get()
    # Tasks run eagerly in the test server: the run is done when its page opens.
    assert run.status == "done", run.error
    steps = page.locator(".run-step")
    assert steps.count() == 4  # quality, signatures, perceptual, photo_pii
    assert "7 / 7" in steps.nth(0).inner_text()
    assert "duplicate groups 2" in page.locator("[data-step=perceptual]").inner_text()
    shot(page, "curation-run-done")

    # A run still queued on the workers: its page follows it without a reload by hand.
    queued = runs.start_run(None, ["quality"], user=users["planner"], enqueue=False)
    page.goto(f"/curation/runs/{queued.pk}/")
    assert page.locator("#run[data-active='1']").count() == 1
    assert "Queued" in page.locator("#run-status").inner_text()
    shot(page, "curation-run-queued")
    runs.run_here(queued)  # a worker does the work
    page.locator("#run[data-active='0']").wait_for(timeout=15_000)
    assert "Done" in page.locator("#run-status").inner_text()
    assert "7 / 7" in page.locator("[data-step=quality]").inner_text()

    # The review queue: keep the crop instead of the suggested original.
    crop = Flag.objects.get(image__original_name="dish-1-cropped.jpg")
    page.goto("/curation/review/?kind=near_duplicate_photo")
    # One card for the group, the crop and its original side by side, the original the keeper.
    card = page.locator(f".group-card:has([data-member-flag='{crop.pk}'])")
    assert card.count() == 1 and card.locator(".cmp-photo.is-keeper").count() == 1
    assert card.locator(f"[data-member-flag='{crop.pk}'] .cmp-photo.is-keeper").count() == 0
    shot(page, "curation-review-keep-instead")
    card.locator(f"button[data-keep-instead='{crop.pk}']").click()
    page.wait_for_load_state()
    card = page.locator(f".group-card:has([data-member-flag='{crop.pk}'])")
    assert card.locator(f"[data-member-flag='{crop.pk}'] .cmp-photo.is-keeper").count() == 1  # the crop itself
    assert card.locator(".cmp-photo.is-keeper").count() == 1
    assert str(Flag.objects.get(pk=crop.pk).keeper_id) == str(crop.image_id)
    assert page.locator(".msg-success").count() == 1
    page.goto("/curation/decisions/")
    assert "Keep this one instead" in page.locator(".decisions-table").inner_text()


def test_engineers_read_runs_without_the_start_form(page, login, photos, users):
    from curation import runs

    run = runs.start_run(None, ["quality"], user=users["planner"], enqueue=False)
    login(page, "engineer1")
    page.goto("/curation/runs/")
    assert page.locator("form.run-form").count() == 0
    assert page.locator(f"tr[data-run='{run.pk}']").count() == 1
    page.goto(f"/curation/runs/{run.pk}/")
    assert page.locator("button.btn-danger").count() == 0  # no cancel for readers
