"""The review queue (issue 11, item 5): flags recorded by detectors, planners' decisions and what
they do to labeling queues and snapshots; the API and its permissions."""
from __future__ import annotations

import itertools

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import translation

from curation import services as curation
from curation.models import Decision, Flag, FlagStatus
from datasets.models import Image, ImageStatus
from labeling import services
from labeling.models import Assignment, AssignmentStatus, Comment, ProjectImage, ProjectMember
from labeling.selectors import snapshot_candidates
from tests.factories import texts

_numbers = itertools.count(500)


def label_all(project, labelers):
    for user in labelers:
        while True:
            try:
                a = services.next_assignment(project, user)
            except (services.NoWorkLeft, services.CapReached):
                break
            services.submit(a, user, texts(next(_numbers)))


@pytest.fixture
def labeled(make_project, labelers, food):
    """3 food photos, overlap 2, labeled by lab0 and lab1; lab2 and lab3 are members with nothing to do."""
    project = make_project(3, category=food, members=labelers)
    label_all(project, labelers[:2])
    return project


def photo_ids(project):
    return list(ProjectImage.objects.filter(project=project).order_by("image_id").values_list("image_id", flat=True))


def in_snapshot(project):
    c = snapshot_candidates([project])
    return set(c.images.values_list("pk", flat=True)), set(c.comments.values_list("pk", flat=True))


# ---------------------------------------------------------------- record_flags


def test_record_flags_is_idempotent_and_keeps_decisions(labeled, users):
    a, b, c = photo_ids(labeled)
    flags = [
        {"kind": "near_duplicate_photo", "image": b, "score": 4, "evidence": {"distance": 4}, "group_key": "g1",
         "keeper": a},
        {"kind": "quality_dark", "image": c, "score": 0.05, "evidence": {"value": 0.05, "threshold": 0.1}},
    ]
    assert curation.record_flags("phash", "1", flags) == {"created": 2, "updated": 0, "reopened": 0, "unchanged": 0}
    assert curation.record_flags("phash", "1", flags) == {"created": 0, "updated": 0, "reopened": 0, "unchanged": 2}
    assert Flag.objects.count() == 2
    dup = Flag.objects.get(kind="near_duplicate_photo")
    assert (dup.image_id, dup.keeper_id, dup.group_key, dup.project_id) == (b, a, "g1", None)

    # An open flag follows the detector; a decided one keeps its decision for the same evidence...
    flags[1]["score"] = 0.04
    assert curation.record_flags("phash", "2", flags)["updated"] == 2
    curation.decide([dup], "keep", users["planner"], "a different plate")
    assert curation.record_flags("phash", "3", flags)["unchanged"] == 1
    assert Flag.objects.get(pk=dup.pk).status == FlagStatus.KEPT
    # ... and is reopened when the evidence changed (a decision on other evidence).
    flags[0]["evidence"] = {"distance": 2}
    assert curation.record_flags("phash", "3", flags)["reopened"] == 1
    assert Flag.objects.get(pk=dup.pk).status == FlagStatus.OPEN


def test_record_flags_takes_ids_in_any_spelling_and_one_flag_per_subject(labeled):
    a, b, _ = photo_ids(labeled)
    first = [{"kind": "quality_tiny", "image": a, "score": 1}, {"kind": "quality_tiny", "image": a, "score": 2}]
    assert curation.record_flags("q", "1", first)["created"] == 1
    assert Flag.objects.get().score == 2  # the later item for the same photo wins
    again = [{"kind": "quality_tiny", "image": str(a).upper().replace("-", ""), "score": 2}]
    assert curation.record_flags("q", "1", again) == {"created": 0, "updated": 0, "reopened": 0, "unchanged": 1}
    with pytest.raises(ValidationError):
        curation.record_flags("q", "1", [{"kind": "quality_tiny", "image": "not-a-uuid"}])


def test_record_flags_refuses_bad_input_and_writes_nothing(labeled):
    a, b, _ = photo_ids(labeled)
    comment = Comment.objects.first()
    good = {"kind": "quality_tiny", "image": a, "score": 1}
    for bad in (
        {"kind": "nonsense", "image": a},
        {"kind": "quality_tiny"},  # no subject
        {"kind": "quality_tiny", "image": a, "comment": comment.pk},  # two subjects
        {"kind": "quality_tiny", "comment": comment.pk},  # a photo kind on a comment
        {"kind": "template_comment", "image": b},  # a comment kind on a photo
        {"kind": "quality_tiny", "image": "00000000-0000-0000-0000-000000000000"},
        {"kind": "quality_tiny", "image": a, "score": "high"},
        {"kind": "quality_tiny", "image": a, "colour": "red"},
    ):
        with pytest.raises(ValidationError):
            curation.record_flags("q", "1", [good, bad])
    assert not Flag.objects.exists()
    curation.record_flags("tmpl", "1", [{"kind": "template_comment", "comment": comment.pk, "score": 0.3}])
    assert Flag.objects.get().project_id == labeled.pk


# ---------------------------------------------------------------- decisions


def test_exclude_photo_leaves_queue_and_next_snapshot(labeled, labelers, users):
    a, b, c = photo_ids(labeled)
    images, _ = in_snapshot(labeled)
    assert images == {a, b, c}
    curation.record_flags("q", "1", [{"kind": "quality_blurry", "image": b, "score": 12.0,
                                      "evidence": {"value": 12.0, "threshold": 50}}])
    flag = Flag.objects.get()
    [decision] = curation.decide([flag.pk], "exclude_photo", users["planner"], "too blurry")
    assert Image.objects.get(pk=b).status == ImageStatus.EXCLUDED
    assert ProjectImage.objects.get(project=labeled, image_id=b).excluded
    images, comments = in_snapshot(labeled)
    assert images == {a, c}
    assert not Comment.objects.filter(pk__in=comments, assignment__image_id=b).exists()
    assert (decision.action, decision.actor, decision.reason, decision.status_before, decision.status_after) == (
        "exclude_photo", users["planner"], "too blurry", "open", "excluded")
    assert decision.changes == {"image": str(b), "image_status": ["active", "excluded"]}
    # Undo: the photo is back, the flag open again, and the undo is in the audit trail too.
    undo = curation.undo(decision, users["planner"])
    assert Image.objects.get(pk=b).status == ImageStatus.ACTIVE
    assert in_snapshot(labeled)[0] == {a, c, b}
    assert Flag.objects.get().status == FlagStatus.OPEN
    assert undo.undoes == decision and Decision.objects.count() == 2


def test_excluded_photo_with_a_free_slot_is_never_handed_out(make_project, labelers, users, food):
    project = make_project(1, category=food, members=labelers)
    [photo] = photo_ids(project)
    curation.record_flags("q", "1", [{"kind": "quality_dark", "image": photo, "score": 0.01}])
    curation.decide(Flag.objects.all(), "exclude_photo", users["planner"])
    with pytest.raises(services.NoWorkLeft):
        services.next_assignment(project, labelers[0])


def test_reject_comment_reopens_the_slot_for_another_labeler(labeled, labelers, users):
    a, b, c = photo_ids(labeled)
    bad = Assignment.objects.get(project=labeled, image_id=b, labeler=labelers[0])
    comment = bad.comments.first()
    curation.record_flags("tmpl", "1", [{"kind": "template_comment", "comment": comment, "score": 0.4,
                                         "evidence": {"text": comment.text, "count": 120}}])
    with pytest.raises(services.NoWorkLeft):  # every photo has its two sets
        services.next_assignment(labeled, labelers[2])
    [decision] = curation.decide(Flag.objects.all(), "reject_comment", users["planner"], "pasted everywhere")

    bad.refresh_from_db()
    assert bad.status == AssignmentStatus.REJECTED
    assert decision.changes == {"assignment": bad.pk, "assignment_status": ["submitted", "rejected"]}
    # Not in the next snapshot: the set's comments are out, and the photo lacks its second set.
    images, comments = in_snapshot(labeled)
    assert images == {a, c}
    assert not set(bad.comments.values_list("pk", flat=True)) & comments
    row = ProjectImage.objects.get(project=labeled, image_id=b)
    assert (row.slots_taken, row.submitted_count) == (1, 1)
    assert ProjectMember.objects.get(project=labeled, user=labelers[0]).submitted_count == 2

    # The rejected labeler does not get the photo back; another labeler does, and the overlap is met again.
    with pytest.raises(services.NoWorkLeft):
        services.next_assignment(labeled, labelers[0])
    lease = services.next_assignment(labeled, labelers[2])
    assert lease.image_id == b
    services.submit(lease, labelers[2], texts(next(_numbers)))
    assert in_snapshot(labeled)[0] == {a, b, c}
    with pytest.raises(services.NoWorkLeft):
        services.next_assignment(labeled, labelers[3])
    # The slot went to somebody else: the rejection cannot be undone any more.
    with pytest.raises(services.LabelingError):
        curation.undo(decision, users["planner"])
    assert Assignment.objects.get(pk=bad.pk).status == AssignmentStatus.REJECTED


def test_undo_reject_before_the_slot_is_taken(labeled, labelers, users):
    b = photo_ids(labeled)[1]
    comment = Comment.objects.filter(assignment__image_id=b, assignment__labeler=labelers[1]).first()
    curation.record_flags("tmpl", "1", [{"kind": "self_copy_comment", "comment": comment, "score": 0.9}])
    [decision] = curation.decide(Flag.objects.all(), "reject_comment", users["planner"])
    curation.undo(decision, users["planner"])
    assert Assignment.objects.get(pk=comment.assignment_id).status == AssignmentStatus.SUBMITTED
    row = ProjectImage.objects.get(project=labeled, image_id=b)
    assert (row.slots_taken, row.submitted_count) == (2, 2)
    assert b in in_snapshot(labeled)[0]
    with pytest.raises(curation.CurationError):  # an undo is not undone
        curation.undo(Decision.objects.first(), users["planner"])


def test_mark_duplicate_excludes_the_copy_and_keeps_the_keeper(labeled, users):
    a, b, c = photo_ids(labeled)
    curation.record_flags("phash", "1", [
        {"kind": "near_duplicate_photo", "image": b, "score": 3, "group_key": "g", "keeper": a,
         "evidence": {"distance": 3}},
        {"kind": "near_duplicate_photo", "image": a, "score": 3, "group_key": "g", "keeper": a,
         "evidence": {"distance": 3}},
    ])
    copy, keeper = Flag.objects.get(image_id=b), Flag.objects.get(image_id=a)
    with pytest.raises(curation.CurationError):  # the keeper is no duplicate of itself
        curation.decide([keeper], "mark_duplicate", users["planner"])
    decision, auto = curation.decide([copy], "mark_duplicate", users["planner"])  # + the keeper's, kept
    assert auto.flag_id == keeper.pk and auto.action == "keep"
    assert decision.duplicate_of_id == a and decision.changes["duplicate_of"] == str(a)
    assert Image.objects.get(pk=b).status == ImageStatus.EXCLUDED
    assert Image.objects.get(pk=a).status == ImageStatus.ACTIVE
    assert in_snapshot(labeled)[0] == {a, c}
    # The keeper's own flag: kept automatically once the others of its group are duplicates.
    assert Flag.objects.get(pk=keeper.pk).status == FlagStatus.KEPT
    assert Decision.objects.get(flag=keeper).changes == {"auto": True, "as_keeper": True}


def test_bulk_is_all_or_nothing(labeled, users):
    a, b, c = photo_ids(labeled)
    curation.record_flags("q", "1", [{"kind": "quality_dark", "image": x, "score": 0.01} for x in (a, b, c)])
    flags = list(Flag.objects.order_by("pk"))
    curation.decide([flags[0]], "keep", users["planner"])
    # One flag decided already: the whole bulk is refused, nothing changes.
    with pytest.raises(curation.CurationError):
        curation.decide(flags, "exclude_photo", users["planner"])
    assert Image.objects.filter(status=ImageStatus.EXCLUDED).count() == 0
    assert Decision.objects.count() == 1
    decisions = curation.decide(flags[1:], "exclude_photo", users["planner"], "dark")
    assert len(decisions) == 2 and Image.objects.filter(status=ImageStatus.EXCLUDED).count() == 2
    with pytest.raises(ValidationError):
        curation.decide(flags[1:], "burn", users["planner"])
    with pytest.raises(ValidationError):
        curation.decide([], "keep", users["planner"])
    for bad in ([10**9], [10**30], ["x"]):
        with pytest.raises(ValidationError):
            curation.decide(bad, "keep", users["planner"])


def test_reject_on_a_photo_flag_is_refused(labeled, users):
    a = photo_ids(labeled)[0]
    curation.record_flags("q", "1", [{"kind": "quality_dark", "image": a, "score": 0.01}])
    with pytest.raises(curation.CurationError):
        curation.decide(Flag.objects.all(), "reject_comment", users["planner"])
    assert not Decision.objects.exists()


# ---------------------------------------------------------------- API


def _flags(labeled):
    a, b, c = photo_ids(labeled)
    comment = Comment.objects.filter(assignment__image_id=c).first()
    curation.record_flags("phash", "1", [{"kind": "near_duplicate_photo", "image": b, "score": 3, "keeper": a,
                                          "group_key": "g", "evidence": {"distance": 3}}])
    curation.record_flags("tmpl", "1", [{"kind": "template_comment", "comment": comment, "score": 0.5,
                                         "evidence": {"text": comment.text, "count": 40}}])
    return Flag.objects.get(image_id=b), Flag.objects.get(comment=comment)


@pytest.mark.parametrize("role, status", [("planner", 200), ("admin", 200), ("engineer", 200), ("labeler", 403),
                                          (None, 401)])
def test_flag_list_permissions(api, role, status):
    assert api(role).get(reverse("api:curation-flag-list")).status_code in (
        (status, 403) if status == 401 else (status,))


def test_api_list_filter_decide_and_history(labeled, api, users):
    dup, tmpl = _flags(labeled)
    client = api("planner")
    body = client.get(reverse("api:curation-flag-list"), {"kind": "near_duplicate_photo"}).json()
    assert [r["id"] for r in body["results"]] == [dup.pk]
    assert body["results"][0]["keeper"] == str(dup.keeper_id)
    assert client.get(reverse("api:curation-flag-list"), {"project": labeled.pk}).json()["count"] == 2
    assert client.get(reverse("api:curation-flag-list"), {"project": labeled.pk + 1}).json()["count"] == 0
    assert client.get(reverse("api:curation-flag-list"), {"detector": "tmpl"}).json()["count"] == 1
    assert client.get(reverse("api:curation-flag-list"), {"group": "g"}).json()["count"] == 1
    assert client.get(reverse("api:curation-flag-list"), {"score_min": 1}).json()["count"] == 1
    assert client.get(reverse("api:curation-flag-detail", args=[tmpl.pk])).json()["comment"]["text"]
    # Engineers read, but do not decide.
    assert api("engineer").post(reverse("api:curation-flag-decide", args=[dup.pk]),
                                {"action": "keep"}, format="json").status_code == 403
    r = client.post(reverse("api:curation-flag-decide", args=[dup.pk]), {"action": "mark_duplicate",
                                                                          "reason": "copy"}, format="json")
    assert r.status_code == 200, r.content
    assert r.json()["decisions"][0]["status_after"] == "duplicate"
    with translation.override("en"):
        r = client.post(reverse("api:curation-flag-decide", args=[dup.pk]), {"action": "keep"}, format="json",
                        HTTP_ACCEPT_LANGUAGE="en")
    assert r.status_code == 409 and "decided already" in r.json()["detail"]
    r = client.post(reverse("api:curation-decide"), {"flags": [tmpl.pk], "action": "reject_comment"}, format="json")
    assert r.status_code == 200, r.content
    assert client.post(reverse("api:curation-decide"), {"flags": [tmpl.pk], "action": "nope"},
                       format="json").status_code == 400
    history = client.get(reverse("api:curation-decision-list")).json()
    assert [d["action"] for d in history["results"]] == ["reject_comment", "mark_duplicate"]
    assert history["results"][0]["actor"] == "planner1"
    assert api("labeler").get(reverse("api:curation-decision-list")).status_code == 403
    assert api("labeler").post(reverse("api:curation-decide"), {"flags": [tmpl.pk], "action": "keep"},
                               format="json").status_code == 403


# ---------------------------------------------------------------- pages


def test_review_page_shows_evidence_and_decides(labeled, client, users):
    dup, tmpl = _flags(labeled)
    client.force_login(users["planner"])
    with translation.override("en"):
        r = client.get(reverse("curation-review"), HTTP_ACCEPT_LANGUAGE="en")
    body = r.content.decode()
    assert r.status_code == 200
    assert f'data-flag="{dup.pk}"' in body and f'data-flag="{tmpl.pk}"' in body
    assert "Suggested keeper" in body and "Hamming distance" in body and tmpl.comment.text in body
    assert format(Image.objects.get(pk=dup.image_id).phash & (2**64 - 1), "016x") in body
    r = client.post(reverse("curation-review-decide"), {"single": f"reject_comment:{tmpl.pk}", "reason": "template"})
    assert r.status_code == 302
    assert Assignment.objects.get(pk=tmpl.comment.assignment_id).status == AssignmentStatus.REJECTED
    # Bulk: the checked flags with one action.
    r = client.post(reverse("curation-review-decide"), {"flag": [dup.pk], "action": "mark_duplicate"})
    assert Image.objects.get(pk=dup.image_id).status == ImageStatus.EXCLUDED
    # The filters: decided flags are not in the open queue, and are with status=all.
    body = client.get(reverse("curation-review")).content.decode()
    assert f'data-flag="{dup.pk}"' not in body
    assert f'data-flag="{dup.pk}"' in client.get(reverse("curation-review"), {"status": "all"}).content.decode()
    history = client.get(reverse("curation-decisions")).content.decode()
    assert history.count("data-decision=") == 2
    latest = Decision.objects.first()
    client.post(reverse("curation-undo", args=[latest.pk]))
    assert Image.objects.get(pk=dup.image_id).status == ImageStatus.ACTIVE


@pytest.mark.parametrize("role, status", [("planner", 200), ("engineer", 200), ("admin", 200), ("labeler", 403)])
def test_review_pages_by_role(client, users, role, status):
    client.force_login(users[role])
    assert client.get(reverse("curation-review")).status_code == status
    assert client.get(reverse("curation-decisions")).status_code == status


def test_engineers_read_but_do_not_decide(labeled, client, users):
    dup, _ = _flags(labeled)
    client.force_login(users["engineer"])
    body = client.get(reverse("curation-review")).content.decode()
    assert f'data-flag="{dup.pk}"' in body and 'name="single"' not in body
    assert client.post(reverse("curation-review-decide"), {"single": f"keep:{dup.pk}"}).status_code == 403
    assert Flag.objects.get(pk=dup.pk).status == FlagStatus.OPEN


def test_rejecting_an_imported_set_changes_no_counter(labeled, users):
    from django.utils import timezone

    from labeling.models import ExternalSource

    a = photo_ids(labeled)[0]
    source = ExternalSource.objects.create(name="Vendor", slug="vendor")
    now = timezone.now()
    imported = Assignment.objects.create(project=labeled, image_id=a, external_source=source, external_id="x1",
                                         status=AssignmentStatus.SUBMITTED, leased_at=now, expires_at=now,
                                         submitted_at=now)
    comment = Comment.objects.create(assignment=imported, comment_type=labeled.comment_types.first(),
                                     text="맛있겠다", length=4, key="맛있겠다")
    before = ProjectImage.objects.values_list("slots_taken", "submitted_count").get(project=labeled, image_id=a)
    assert comment.pk in in_snapshot(labeled)[1]
    curation.record_flags("tmpl", "1", [{"kind": "duplicate_comment", "comment": comment, "score": 1}])
    curation.decide(Flag.objects.all(), "reject_comment", users["planner"])
    assert Assignment.objects.get(pk=imported.pk).status == AssignmentStatus.REJECTED
    assert ProjectImage.objects.values_list("slots_taken", "submitted_count").get(project=labeled, image_id=a) == before
    assert comment.pk not in in_snapshot(labeled)[1]


def test_filters_past_a_bigint_or_not_finite_are_ignored_not_a_server_error(client, users):
    """The API fuzz found ?flag=2**63 and ?category=2**63 answering 500 on SQLite."""
    client.force_login(users["planner"])
    for url in ("/api/curation/decisions/?flag=9223372036854775808", "/api/curation/flags/?category=9223372036854775808",
                "/api/curation/flags/?project=-9223372036854775809&score_min=nan&score_max=inf"):
        assert client.get(url).status_code == 200, url
