"""The review queue in a real browser: a planner opens it from the menu, sees a photo and its
resized copy side by side with their hashes and the suggested keeper, and a comment that several
labelers wrote on different photos with its cluster; excludes the copy with X and rejects the
comment set with R; the photo goes back to the labelers. Screenshots in test-artifacts/screenshots/."""
from __future__ import annotations

import io
import re

import pytest
from PIL import Image as PILImage

from tests.conftest import make_photo
from tests.factories import make_labelers

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

SAME = "와 진짜 맛있겠다 대박"


def _resized(data: bytes, scale: float = 0.5) -> bytes:
    img = PILImage.open(io.BytesIO(data))
    out = io.BytesIO()
    img.resize((int(img.width * scale), int(img.height * scale))).save(out, "JPEG", quality=70)
    return out.getvalue()


@pytest.fixture
def queue(users, source):
    """Four food photos and a half-size re-encoded copy of the first, a project with
    overlap 1 labeled by two labelers who wrote the same reaction on two photos, and the flags a
    detector would raise: the copy (keeper: the original) and the repeated comment."""
    from curation import services as curation
    from datasets import services as datasets
    from labeling import services
    from labeling.models import Assignment

    original = make_photo(640, 480, seed=4200)
    images = [datasets.ingest_one(original, source=source, category="food", original_name="bibimbap.jpg").image]
    images += [datasets.ingest_one(make_photo(640, 480, seed=4201 + i), source=source, category="food",
                                   original_name=f"plate-{i}.jpg").image for i in range(3)]
    # The copy came from another source's "people" folder: it is in no project here.
    copy = datasets.ingest_one(_resized(original), source=source, category="people",
                               original_name="bibimbap-small.jpg").image
    from datasets.models import Category

    project = services.create_project("큐레이션 Review", created_by=users["planner"], overlap=1,
                                      categories=[Category.objects.get(slug="food")])
    services.sync_project_images(project)
    labelers = make_labelers(3, prefix="cur")
    for user in labelers:
        services.add_member(project, user)
    sets = []
    for n, user in enumerate(labelers[:2]):
        for k in range(2):
            a = services.next_assignment(project, user)
            text = SAME if k == 0 else f"접시 색이 예뻐요 {n}{k}"
            services.submit(a, user, {"reaction": text, "specific": f"사진 속 음식이 정말 먹음직스러워요 {n}{k}번"})
            sets.append(a)
    repeated = [c for a in Assignment.objects.filter(pk__in=[s.pk for s in sets]) for c in a.comments.all()
                if c.text == SAME]
    curation.record_flags("phash", "1", [
        {"kind": "near_duplicate_photo", "image": copy, "keeper": images[0], "score": 2, "group_key": "phash:1",
         "evidence": {"distance": 2}},
    ])
    curation.record_flags("comment-dup", "1", [
        {"kind": "template_comment", "comment": c, "score": 0.5, "group_key": "text:1",
         "evidence": {"text": SAME, "count": len(repeated), "share": 0.5, "examples": [SAME]}} for c in repeated
    ])
    return {"project": project, "copy": copy, "original": images[0], "labelers": labelers, "repeated": repeated}


def test_planner_excludes_and_rejects_with_keystrokes(page, login, shot, queue, users):
    from datasets.models import Image, ImageStatus
    from labeling import services
    from labeling.models import Assignment, AssignmentStatus

    login(page, "planner1")
    page.click("nav.nav a[href='/curation/review/']")
    page.wait_for_url(re.compile(r"/curation/review/$"))
    cards = page.locator(".flag-card")
    assert cards.count() == 3
    dup = page.locator(".flag-card[data-shape='duplicate']")
    # Side by side: the copy and the original, the keeper marked, both hashes, the distance.
    assert dup.locator(".cmp-photo").count() == 2
    assert dup.locator(".cmp-photo.is-keeper").count() == 1
    assert dup.locator(".mono").count() >= 2
    assert "2" in dup.locator(".evidence").inner_text()
    comment_cards = page.locator(".flag-card[data-shape='comment']")
    assert comment_cards.count() == 2 and SAME in comment_cards.first.inner_text()
    assert "50.0%" in comment_cards.first.inner_text()
    # The cluster once, with its size, above its comments.
    assert page.locator(".cluster-head").count() == 1 and "2" in page.locator(".cluster-head").inner_text()
    # Every thumbnail loaded.
    assert page.evaluate("Array.from(document.querySelectorAll('.flag-card img')).every(i => i.naturalWidth > 0)")
    shot(page, "curation-review-queue")

    # The first card (the duplicate pair) is current: X excludes the copy.
    assert "is-current" in (dup.get_attribute("class") or "")
    page.keyboard.press("x")
    page.wait_for_load_state()
    page.locator(".undo-bar").wait_for()
    assert Image.objects.get(pk=queue["copy"].pk).status == ImageStatus.EXCLUDED
    assert Image.objects.get(pk=queue["original"].pk).status == ImageStatus.ACTIVE
    assert page.locator(".flag-card").count() == 2

    # ? shows the shortcuts; R rejects the current comment's set.
    page.keyboard.press("?")
    assert page.locator("#shortcut-help").is_visible()
    shot(page, "curation-review-help")
    page.keyboard.press("?")
    flag_id = int(page.locator(".flag-card.is-current").get_attribute("data-flag"))
    page.keyboard.press("r")
    page.wait_for_load_state()
    page.locator(".undo-bar").wait_for()
    from curation.models import Flag

    rejected = Assignment.objects.get(pk=Flag.objects.get(pk=flag_id).comment.assignment_id)
    assert rejected.status == AssignmentStatus.REJECTED
    # The photo goes back to the labelers: the third labeler gets it, its author does not.
    lease = services.next_assignment(queue["project"], queue["labelers"][2])
    assert lease.image_id == rejected.image_id
    assert page.locator(".flag-card").count() == 1

    # Bulk: select the last flag with Space and keep it with E.
    page.keyboard.press("j")
    page.keyboard.press(" ")
    assert "1" in page.locator("#selected-count").inner_text()
    page.keyboard.press("e")
    page.wait_for_load_state()
    page.locator(".empty-state").wait_for()

    # The history: three decisions, who and what they changed; the last can be undone.
    page.click("a[href='/curation/decisions/']")
    rows = page.locator("tr[data-decision]")
    assert rows.count() == 3
    text = page.locator(".decisions-table").inner_text()
    assert "planner1" in text and "excluded" in text and "rejected" in text
    shot(page, "curation-decisions")


def test_engineer_reads_the_queue_without_buttons(page, login, shot, queue):
    login(page, "engineer1")
    page.goto("/curation/review/")
    assert page.locator(".flag-card").count() == 3
    assert page.locator(".flag-actions").count() == 0 and page.locator("#bulk-bar").count() == 0
    page.keyboard.press("x")  # no buttons: nothing happens
    assert page.locator(".flag-card").count() == 3
