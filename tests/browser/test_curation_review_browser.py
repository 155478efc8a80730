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
    dup = page.locator(".flag-card[data-shape='group']")
    # One card for the group: the copy and the original side by side, the keeper marked, both
    # hashes, the distance.
    assert dup.locator(".cmp-photo").count() == 2
    assert dup.locator(".cmp-photo.is-keeper").count() == 1
    assert dup.locator(".mono").count() >= 2
    assert dup.locator(".group-member p").last.inner_text().strip().endswith("2")  # the copy's distance
    comment_cards = page.locator(".flag-card[data-shape='comment']")
    assert comment_cards.count() == 2 and SAME in comment_cards.first.inner_text()
    assert "50.0%" in comment_cards.first.inner_text()
    # The cluster once, with its size, above its comments.
    assert page.locator(".cluster-head").count() == 1 and "2" in page.locator(".cluster-head").inner_text()
    # Every thumbnail loaded.
    assert page.evaluate("Array.from(document.querySelectorAll('.flag-card img')).every(i => i.naturalWidth > 0)")
    shot(page, "curation-review-queue")

    # The first card (the duplicate group) is current: D marks the copy a duplicate of the keeper.
    assert "is-current" in (dup.get_attribute("class") or "")
    page.keyboard.press("d")
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


@pytest.fixture
def bulk_queue(users, source):
    """A group of three near-duplicate photos (all flagged, the first the keeper) and three
    toxicity flags on comments of three submitted sets, two of them above 0.9."""
    from curation import services as curation
    from datasets import services as datasets
    from labeling import services
    from labeling.models import Assignment

    original = make_photo(640, 480, seed=4300)
    images = [datasets.ingest_one(original, source=source, category="food", original_name="naengmyeon.jpg").image,
              datasets.ingest_one(_resized(original), source=source, category="food",
                                  original_name="naengmyeon-small.jpg").image,
              datasets.ingest_one(_resized(original, 0.7), source=source, category="food",
                                  original_name="naengmyeon-medium.jpg").image]
    curation.record_flags("perceptual", "1", [
        {"kind": "near_duplicate_photo", "image": img, "keeper": images[0], "score": 0.95, "group_key": "near:x",
         "evidence": {"distance": d}} for img, d in zip(images, (0, 2, 3))])
    project = services.create_project("일괄 결정", created_by=users["planner"], overlap=1)
    services.sync_project_images(project)
    labelers = make_labelers(3, prefix="bulk")
    sets = []
    for user in labelers:
        services.add_member(project, user)
        a = services.next_assignment(project, user)
        services.submit(a, user, {"reaction": f"반응 {user.username}", "specific": f"구체적인 설명 {user.username}"})
        sets.append(a)
    comments = [Assignment.objects.get(pk=a.pk).comments.first() for a in sets]
    curation.record_flags("toxicity", "v1", [
        {"kind": "toxicity", "comment": c, "score": s, "evidence": {"label": "offensive"}}
        for c, s in zip(comments, (0.98, 0.93, 0.4))])
    return {"images": images, "sets": sets}


def test_one_card_per_group_and_a_decision_by_threshold(page, login, shot, bulk_queue):
    from curation.models import Flag
    from datasets.models import Image, ImageStatus
    from labeling.models import Assignment, AssignmentStatus

    login(page, "planner1")
    page.goto("/curation/review/?kind=near_duplicate_photo")
    assert "1" in page.locator("a.chip[data-kind='near_duplicate_photo'] .muted").inner_text()  # one group
    cards = page.locator(".flag-card")
    assert cards.count() == 1
    card = cards.first
    assert card.locator(".cmp-photo").count() == 3 and card.locator(".cmp-photo.is-keeper").count() == 1
    assert card.locator(".keep-instead").count() == 2
    assert page.evaluate("Array.from(document.querySelectorAll('.flag-card img')).every(i => i.naturalWidth > 0)")
    shot(page, "curation-review-group-card")
    page.keyboard.press("d")
    page.wait_for_load_state()
    page.locator(".empty-state").wait_for()
    keeper, *copies = bulk_queue["images"]
    assert Image.objects.get(pk=keeper.pk).status == ImageStatus.ACTIVE
    assert all(Image.objects.get(pk=c.pk).status == ImageStatus.EXCLUDED for c in copies)
    assert Flag.objects.get(image=keeper).status == "kept"

    # Reject every comment with toxicity >= 0.9: the preview says 2, the planner confirms.
    page.goto("/curation/review/?kind=toxicity&score_min=0.9")
    panel = page.locator("#decide-matching")
    assert "2" in panel.locator("h2").inner_text()
    assert panel.locator("input[name=expect]").get_attribute("value") == "2"
    page.select_option("#matching-action", "reject_comment")
    panel.locator("input[name=reason]").fill("욕설")
    shot(page, "curation-review-decide-matching")
    page.once("dialog", lambda dialog: dialog.accept())
    panel.locator("[data-decide-matching]").click()
    page.wait_for_load_state()
    page.locator("[data-undo-batch]").wait_for()
    statuses = [Assignment.objects.get(pk=a.pk).status for a in bulk_queue["sets"]]
    assert statuses == [AssignmentStatus.REJECTED, AssignmentStatus.REJECTED, AssignmentStatus.SUBMITTED]
    shot(page, "curation-review-decided-matching")
    page.locator("[data-undo-batch]").click()
    page.wait_for_load_state()
    statuses = [Assignment.objects.get(pk=a.pk).status for a in bulk_queue["sets"]]
    assert statuses == [AssignmentStatus.SUBMITTED] * 3
