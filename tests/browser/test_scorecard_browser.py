"""The labeler quality scorecard in a real browser: a planner sorts it, sends a labeler a message
and lowers a cap; the labeler sees the message on a phone, dismisses it, and it stays gone.
Screenshots: scorecard-desktop, scorecard-message-sent, labeler-message-phone, labeler-message-label-phone."""
from __future__ import annotations

import re

import pytest

from tests.conftest import make_photo
from tests.factories import make_labelers

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

SAME = {"reaction": "와 진짜 맛있겠다", "specific": "족발 윤기가 장난 아니네요 쫀득해 보여요"}
OTHER = {"reaction": "호호 흐흐 히히", "specific": "후후후 흑흑흑 훗훗훗 휴휴휴"}


@pytest.fixture
def project(db, source, users):
    """Six photos labeled by lab0 and lab1 (the same texts on three), lab0 with two self-copy
    flags, and the matrix labeler (labeler1) a member with nothing done yet."""
    from curation import services as curation
    from datasets import services as datasets
    from labeling import services
    from labeling.models import Comment

    for i in range(6):
        datasets.ingest_one(make_photo(seed=2600 + i, width=320, height=240), source=source, category="food")
    lab0, lab1 = make_labelers(2)
    project = services.create_project("품질 Scorecard", reject_own_repeats=False, overlap=3)
    services.sync_project_images(project)
    for user in (lab0, lab1, users["labeler"]):
        services.add_member(project, user)
    same = set()
    for i in range(6):
        a = services.next_assignment(project, lab0)
        services.submit(a, lab0, SAME)
        if i < 3:
            same.add(a.image_id)
    for _i in range(6):
        a = services.next_assignment(project, lab1)
        services.submit(a, lab1, SAME if a.image_id in same else OTHER)
    copies = Comment.objects.filter(assignment__labeler=lab0).order_by("pk")[:2]
    curation.record_flags("copies", "1", [{"kind": "self_copy_comment", "comment": c, "score": 1} for c in copies])
    return project


def test_planner_sorts_and_sends_a_message(page, users, project, login, shot):
    from labeling.models import LabelerMessage, ProjectMember

    page.set_viewport_size({"width": 1400, "height": 900})
    login(page, "planner1")
    page.goto(f"/projects/{project.pk}/labelers/quality/")
    page.click("button.lang[value=en]")
    page.wait_for_load_state()
    assert page.locator("#no-scores").is_visible()  # no comment scores: the page says why
    # Sort by self-copies, most first: lab0 leads; again: fewest first.
    page.click("a[data-sort=self_copy_share]")
    page.wait_for_url(re.compile(r"sort=-self_copy_share"))
    labelers = page.locator("tbody tr").evaluate_all("rows => rows.map(r => r.dataset.labeler)")
    assert labelers[0] == "lab0"
    th = page.locator("th", has=page.locator("a[data-sort=self_copy_share]"))
    assert th.get_attribute("aria-sort") == "descending"
    page.click("a[data-sort=self_copy_share]")
    page.wait_for_url(re.compile(r"sort=self_copy_share"))
    assert page.locator("tbody tr").first.get_attribute("data-labeler") != "lab0"
    assert th.get_attribute("aria-sort") == "ascending"
    row = page.locator("tr[data-labeler=lab0]")
    assert row.locator("[data-col=agreement]").inner_text().startswith("0.50")
    shot(page, "scorecard-desktop")

    # Send lab0 a message.
    row.locator("summary").click()
    row.locator("textarea[name=body]").fill("특정한 내용을 더 써 주세요. 같은 문장을 반복하지 마세요.")
    row.locator(".message-form button[type=submit]").click()
    page.wait_for_load_state()
    assert "Message sent to lab0" in page.locator(".messages, .msg").first.inner_text()
    row = page.locator("tr[data-labeler=lab0]")
    assert "1 unread" in row.locator("[data-col=messages]").inner_text()
    message = LabelerMessage.objects.get()
    assert message.labeler.username == "lab0" and message.read_at is None

    # Lower labeler1's cap.
    row = page.locator("tr[data-labeler=labeler1]")
    row.locator("summary").click()
    row.locator("input[name=cap_override]").fill("7")
    row.locator(".cap-form button[type=submit]").click()
    page.wait_for_load_state()
    assert ProjectMember.objects.get(project=project, user=users["labeler"]).cap_override == 7
    assert "/ 7" in page.locator("tr[data-labeler=labeler1] [data-col=cap]").inner_text()
    shot(page, "scorecard-message-sent")


def test_labeler_sees_the_message_on_a_phone_once(new_page, users, project, login, shot):
    from labeling import services
    from labeling.models import LabelerMessage

    message = services.send_labeler_message(project, users["labeler"], "사진에 실제로 보이는 것을 구체적으로 써 주세요. "
                                            "'맛있겠다'만 쓰지 마세요.", sent_by=users["planner"])
    page = new_page(viewport=(390, 844))
    login(page, "labeler1")
    page.goto("/label/")
    card = page.locator(f".labeler-message[data-message='{message.pk}']")
    assert card.is_visible()
    assert "구체적으로" in card.inner_text()
    box = card.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390  # fits the phone's width
    button = card.locator("button")
    assert button.bounding_box()["height"] >= 44  # a thumb-sized target
    shot(page, "labeler-message-phone")
    # The labeling page shows it too (the project's messages).
    page.goto(f"/label/{project.pk}/")
    assert page.locator(f".labeler-message[data-message='{message.pk}']").is_visible()
    shot(page, "labeler-message-label-phone")
    page.locator(f".labeler-message[data-message='{message.pk}'] button").click()
    page.wait_for_selector("#labeler-messages", state="detached")
    assert page.url.endswith(f"/label/{project.pk}/")  # dismissed in place: the page stayed
    message.refresh_from_db()
    assert message.read_at is not None
    page.goto("/label/")
    assert page.locator(".labeler-message").count() == 0
    assert LabelerMessage.objects.filter(read_at__isnull=True).count() == 0
