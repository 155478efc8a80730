"""Faces and licence plates on the review page in a real browser: the photo_pii step runs over a
food photo with a drawn face and a photo with a drawn plate; the planner sees each box drawn
over its photo where the detector found it. Screenshots in test-artifacts/screenshots/."""
from __future__ import annotations

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]
pytest.importorskip("cv2")


@pytest.fixture
def flagged(users, source):
    from curation import runs
    from curation import synthetic as S
    from datasets import services as datasets

    face = datasets.ingest_one(S.jpeg(S.face_photo(0)[0], 92), source=source, category="food",
                               original_name="lunch.jpg").image
    plate = datasets.ingest_one(S.jpeg(S.plate_photo(1)[0], 92), source=source, category="places",
                                original_name="street.jpg").image
    run = runs.run_here(runs.start_run(None, ["photo_pii"], enqueue=False))
    assert run.status == "done", run.error
    return {"face": face, "plate": plate}


def _inside(inner: dict, outer: dict, slack: float = 2) -> bool:
    return (inner["x"] >= outer["x"] - slack and inner["y"] >= outer["y"] - slack
            and inner["x"] + inner["width"] <= outer["x"] + outer["width"] + slack
            and inner["y"] + inner["height"] <= outer["y"] + outer["height"] + slack)


@pytest.mark.parametrize("kind, name", [("face", "face"), ("licence_plate", "plate")])
def test_the_boxes_are_drawn_over_the_flagged_photo(page, login, shot, flagged, kind, name):
    from curation.models import Flag

    flag = Flag.objects.get(kind=kind)
    violations = []
    page.on("console", lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None)
    login(page, "planner1")
    page.goto(f"/curation/review/?kind={kind}")
    card = page.locator(f"article[data-flag='{flag.pk}']")
    img = card.locator("img.cmp-img.is-boxed")
    img.wait_for()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=img.element_handle())
    rect = card.locator(f"rect.pii-box.pii-{name}")
    assert rect.count() == 1
    shown, photo = rect.bounding_box(), img.bounding_box()
    assert _inside(shown, photo)
    # Where the detector put it, in the photo's own proportions.
    x, y, w, h, _hits = flag.evidence["boxes"][0]
    assert abs(shown["x"] - (photo["x"] + x * photo["width"])) < 4
    assert abs(shown["y"] - (photo["y"] + y * photo["height"])) < 4
    assert abs(shown["width"] - w * photo["width"]) < 5
    stroke = rect.evaluate("r => getComputedStyle(r).stroke")
    assert stroke not in ("", "none")
    assert violations == []  # the SVG and its classes pass the policy
    shot(page, f"curation-review-{name}-boxes")
