"""The review queue, issue 12 item 6: decisions by filters with a preview count (refused when
the matching set changed), stale flags withdrawn when a detector no longer finds them, and one
card per duplicate-photo group."""
from __future__ import annotations

import io
import itertools

import pytest
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse
from django.utils import translation
from PIL import Image as PILImage

from curation import runs, synthetic
from curation import services as curation
from curation.models import Decision, Flag, FlagStatus
from curation.selectors import FlagFilters, kind_counts
from datasets.models import Image, ImageStatus
from labeling import services
from labeling.models import Assignment, AssignmentStatus, Comment, ProjectImage
from tests.factories import texts

_numbers = itertools.count(9100)


@pytest.fixture(autouse=True)
def english(settings):
    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield


@pytest.fixture
def labeled(make_project, labelers, food):
    project = make_project(3, category=food, members=labelers)
    for user in labelers[:2]:
        while True:
            try:
                a = services.next_assignment(project, user)
            except (services.NoWorkLeft, services.CapReached):
                break
            services.submit(a, user, texts(next(_numbers)))
    return project


def photo_ids(project):
    return list(ProjectImage.objects.filter(project=project).order_by("image_id").values_list("image_id", flat=True))


def toxic(project, scores=(0.99, 0.97, 0.5)):
    """One toxicity flag per comment of a set (one comment of each of len(scores) sets)."""
    sets = list(Assignment.objects.filter(project=project, status=AssignmentStatus.SUBMITTED).order_by("pk"))
    comments = [a.comments.order_by("pk").first() for a in sets[:len(scores)]]
    curation.record_flags("toxicity", "v1", [{"kind": "toxicity", "comment": c, "score": s,
                                             "evidence": {"label": "offensive"}} for c, s in zip(comments, scores)])
    return comments


# ---------------------------------------------------------------- decisions by filters


def test_decide_matching_rejects_every_comment_above_the_threshold_and_undoes_as_one(labeled, users):
    comments = toxic(labeled)
    f = FlagFilters(kind="toxicity", score_min=0.95)
    assert curation.count_matching(f) == 2
    preview = curation.preview_matching(f)
    assert [e.score for e in preview["examples"]] == [0.99, 0.97] and not preview["too_many"]

    result = curation.decide_matching(f, "reject_comment", users["planner"], expect=2)
    assert result.count == 2 and result.by_action == {"reject_comment": 2}
    decisions = list(Decision.objects.filter(batch=result.batch))
    assert len(decisions) == 2
    assert all(d.reason == "Bulk decision: Toxicity, score >= 0.95" for d in decisions)  # filters in the audit
    # Acts as the single decision: the sets are rejected, their slots reopen.
    for c in comments[:2]:
        assert Assignment.objects.get(pk=c.assignment_id).status == AssignmentStatus.REJECTED
    assert Assignment.objects.get(pk=comments[2].assignment_id).status == AssignmentStatus.SUBMITTED
    assert curation.count_matching(f) == 0
    # Undo the whole bulk: every set counts again, every flag is open.
    undone = curation.undo_batch(result.batch, users["planner"])
    assert len(undone) == 2
    assert Flag.objects.filter(status=FlagStatus.OPEN).count() == 3
    for c in comments:
        assert Assignment.objects.get(pk=c.assignment_id).status == AssignmentStatus.SUBMITTED
    with pytest.raises(curation.CurationError):  # nothing left
        curation.undo_batch(result.batch, users["planner"])


def test_decide_matching_refuses_when_the_set_changed_since_the_preview(labeled, users):
    toxic(labeled)
    f = FlagFilters(kind="toxicity", score_min=0.95)
    seen = curation.count_matching(f)
    # A detector raised another one meanwhile.
    extra = Comment.objects.exclude(pk__in=Flag.objects.values("comment_id")).first()
    curation.record_flags("toxicity", "v1", [{"kind": "toxicity", "comment": extra, "score": 0.96}])
    with pytest.raises(curation.CurationError, match="2 then, 3 now"):
        curation.decide_matching(f, "reject_comment", users["planner"], expect=seen)
    assert not Decision.objects.exists()
    assert not Assignment.objects.filter(status=AssignmentStatus.REJECTED).exists()
    # One flag refused (another planner decided it): nothing of the bulk is written.
    one = Flag.objects.filter(score__gte=0.95).first()
    Flag.objects.filter(pk=one.pk).update(status=FlagStatus.KEPT)  # not open: out of the matching set
    assert curation.decide_matching(f, "keep", users["planner"], expect=2).count == 2


def test_decide_matching_needs_a_kind_and_stays_under_the_cap(labeled, users, settings):
    toxic(labeled)
    with pytest.raises(ValidationError):
        curation.count_matching(FlagFilters(kind=""))
    with pytest.raises(ValidationError):
        curation.decide_matching(FlagFilters(kind="toxicity"), "burn", users["planner"], expect=3)
    settings.CURATION = {**settings.CURATION, "BULK_MATCH_MAX": 2}
    assert curation.preview_matching(FlagFilters(kind="toxicity"))["too_many"]
    with pytest.raises(ValidationError, match="at most 2"):
        curation.decide_matching(FlagFilters(kind="toxicity"), "keep", users["planner"], expect=3)
    assert not Decision.objects.exists()
    # Excluding every photo of a photo kind.
    a, b, c = photo_ids(labeled)
    curation.record_flags("quality", "1", [{"kind": "quality_dark", "image": x, "score": 0.01} for x in (a, b)])
    result = curation.decide_matching(FlagFilters(kind="quality_dark"), "exclude_photo", users["planner"], expect=2)
    assert result.count == 2
    assert set(Image.objects.filter(status=ImageStatus.EXCLUDED).values_list("pk", flat=True)) == {a, b}


def test_api_preview_then_decide_then_undo_the_batch(labeled, api, users):
    toxic(labeled)
    client = api("planner")
    url = reverse("api:curation-flag-decide-matching")
    r = client.post(url, {"kind": "toxicity", "score_min": 0.95, "preview": True}, format="json")
    assert r.status_code == 200, r.content
    assert r.json()["count"] == 2 and len(r.json()["examples"]) == 2
    # Without the preview's count: refused; with another count: 409 and nothing decided.
    assert client.post(url, {"kind": "toxicity", "action": "keep"}, format="json").status_code == 400
    r = client.post(url, {"kind": "toxicity", "score_min": 0.95, "action": "reject_comment", "expect": 3},
                    format="json")
    assert r.status_code == 409 and "changed since the preview" in r.json()["detail"]
    for bad in ({"kind": "nonsense", "preview": True}, {"kind": "toxicity", "score_min": "high", "preview": True},
                {"kind": "toxicity", "score_min": 1, "score_max": 0, "preview": True}):
        assert client.post(url, bad, format="json").status_code == 400, bad
    r = client.post(url, {"kind": "toxicity", "score_min": 0.95, "action": "reject_comment", "expect": 2,
                          "reason": "slurs"}, format="json")
    assert r.status_code == 201, r.content
    batch = r.json()["batch"]
    assert r.json()["count"] == 2
    assert api("engineer").post(url, {"kind": "toxicity", "preview": True}, format="json").status_code == 403
    r = client.post(reverse("api:curation-decision-batch-undo", args=[batch]), {}, format="json")
    assert r.status_code == 200 and len(r.json()["decisions"]) == 2
    assert not Assignment.objects.filter(status=AssignmentStatus.REJECTED).exists()


def test_review_page_panel_previews_decides_and_undoes(labeled, client, users):
    toxic(labeled)
    client.force_login(users["planner"])
    body = client.get(reverse("curation-review"), {"kind": "toxicity", "score_min": "0.95"}).content.decode()
    assert "Decide all 2 matching flags" in body and 'name="expect" value="2"' in body
    assert "Decide all" not in client.get(reverse("curation-review")).content.decode()  # no kind: no panel
    post = {"kind": "toxicity", "score_min": "0.95", "expect": "2", "action": "reject_comment", "reason": "slurs",
            "next": "/curation/review/?kind=toxicity"}
    r = client.post(reverse("curation-review-decide-matching"), {**post, "expect": "3"}, follow=True)
    assert "changed since the preview" in r.content.decode()
    assert not Decision.objects.exists()
    r = client.post(reverse("curation-review-decide-matching"), post, follow=True)
    body = r.content.decode()
    assert Decision.objects.count() == 2 and "2 flags decided" in body and "data-undo-batch" in body
    batch = Decision.objects.first().batch
    client.post(reverse("curation-review-undo-batch"), {"batch": str(batch)})
    assert not Assignment.objects.filter(status=AssignmentStatus.REJECTED).exists()
    # Engineers read the queue but get no panel and cannot post.
    client.force_login(users["engineer"])
    assert "Decide all" not in client.get(reverse("curation-review"), {"kind": "toxicity"}).content.decode()
    assert client.post(reverse("curation-review-decide-matching"), post).status_code == 403


# ---------------------------------------------------------------- stale flags withdrawn


def test_a_flag_no_longer_found_is_withdrawn_decided_ones_stay_found_again_reopens(labeled, users):
    comments = list(Comment.objects.order_by("pk")[:3])
    ids = [c.pk for c in comments]

    def check(found):
        return curation.record_flags("pii", "1", [{"kind": "pii", "comment": c, "score": 0.9} for c in found],
                                     checked_comments=ids, kinds=["pii"])

    assert check(comments)["created"] == 3
    curation.decide([Flag.objects.get(comment=comments[0])], "keep", users["planner"])
    # The detector no longer finds anything on the three comments.
    assert check([])["withdrawn"] == 2
    status = dict(Flag.objects.values_list("comment_id", "status"))
    assert status == {ids[0]: FlagStatus.KEPT, ids[1]: FlagStatus.WITHDRAWN, ids[2]: FlagStatus.WITHDRAWN}
    # Withdrawn flags leave the open queue and the counts; the status filter shows them.
    assert kind_counts(FlagFilters(status="")) == [{"kind": "pii", "label": "Personal information", "count": 1,
                                                   "groups": False}]
    assert kind_counts(FlagFilters()) == []
    assert kind_counts(FlagFilters(status=FlagStatus.WITHDRAWN))[0]["count"] == 2
    # A withdrawn flag cannot be decided; found again, it reopens.
    with pytest.raises(curation.CurationError, match="withdrawn"):
        curation.decide([Flag.objects.get(comment=comments[1])], "keep", users["planner"])
    assert check(comments[1:2])["reopened"] == 1
    assert Flag.objects.get(comment=comments[1]).status == FlagStatus.OPEN
    # Only the checked subjects and the named kinds: other comments' flags stay open.
    assert curation.record_flags("pii", "1", [], checked_comments=[], kinds=["pii"])["withdrawn"] == 0
    assert curation.record_flags("pii", "1", [], checked_comments=ids[1:2], kinds=["toxicity"])["withdrawn"] == 0
    with pytest.raises(ValidationError):
        curation.record_flags("pii", "1", [], checked_comments=ids)  # which kinds?


def _replace_thumbnail(image: Image, img: PILImage.Image) -> None:
    out = io.BytesIO()
    img.convert("RGB").save(out, "JPEG", quality=92)
    default_storage.delete(image.thumbnail.name)
    default_storage.save(image.thumbnail.name, ContentFile(out.getvalue()))


def test_the_quality_step_withdraws_what_it_no_longer_finds(labeled, users):
    a, b, c = (Image.objects.get(pk=pk) for pk in photo_ids(labeled))
    for img, seed in ((a, 1), (b, 2), (c, 3)):
        _replace_thumbnail(img, synthetic.photo(300 + seed, 320, 240))
    runs.run_here(runs.start_run(None, ["quality"], enqueue=False))
    assert not Flag.objects.filter(kind="quality_dark").exists()
    _replace_thumbnail(a, synthetic.brightness(synthetic.photo(301, 320, 240), 0.1))
    _replace_thumbnail(b, synthetic.brightness(synthetic.photo(302, 320, 240), 0.1))
    runs.run_here(runs.start_run(None, ["quality"], enqueue=False))
    assert set(Flag.objects.filter(kind="quality_dark").values_list("image_id", flat=True)) == {a.pk, b.pk}
    curation.decide([Flag.objects.get(kind="quality_dark", image=b)], "keep", users["planner"])
    # The photos are brightened (a new thumbnail): the next run withdraws a's open flag, b's stays kept.
    _replace_thumbnail(a, synthetic.photo(301, 320, 240))
    _replace_thumbnail(b, synthetic.photo(302, 320, 240))
    run = runs.run_here(runs.start_run(None, ["quality"], enqueue=False))
    assert run.run_steps.get(name="quality").counts.get("flags_withdrawn") == 1
    assert Flag.objects.get(kind="quality_dark", image=a).status == FlagStatus.WITHDRAWN
    assert Flag.objects.get(kind="quality_dark", image=b).status == FlagStatus.KEPT
    # Dark again: reopened.
    _replace_thumbnail(a, synthetic.brightness(synthetic.photo(301, 320, 240), 0.1))
    runs.run_here(runs.start_run(None, ["quality"], enqueue=False))
    assert Flag.objects.get(kind="quality_dark", image=a).status == FlagStatus.OPEN


# ---------------------------------------------------------------- one card per duplicate group


def _group(labeled):
    a, b, c = photo_ids(labeled)
    curation.record_flags("perceptual", "1", [
        {"kind": "near_duplicate_photo", "image": x, "score": 0.9, "group_key": "near:g", "keeper": a,
         "evidence": {"distance": d}} for x, d in ((a, 0), (b, 3), (c, 5))])
    return a, b, c


def test_one_card_per_group_and_the_group_decision(labeled, client, users):
    a, b, c = _group(labeled)
    assert kind_counts(FlagFilters()) == [{"kind": "near_duplicate_photo", "label": "Near-duplicate photo",
                                           "count": 1, "groups": True}]
    client.force_login(users["planner"])
    body = client.get(reverse("curation-review")).content.decode()
    assert body.count('data-shape="group"') == 1 and body.count("data-member-flag=") == 3
    assert "1 group" in body and body.count("Suggested keeper") == 1
    assert body.count('name="keep_instead"') == 2  # on the two others
    client.post(reverse("curation-review-decide"), {"group_action": "mark_duplicate:near:g"})
    status = {f.image_id: f.status for f in Flag.objects.all()}
    assert status == {a: FlagStatus.KEPT, b: FlagStatus.DUPLICATE, c: FlagStatus.DUPLICATE}
    assert {i.pk: i.status for i in Image.objects.filter(pk__in=[a, b, c])} == {
        a: ImageStatus.ACTIVE, b: ImageStatus.EXCLUDED, c: ImageStatus.EXCLUDED}
    assert 'data-shape="group"' not in client.get(reverse("curation-review")).content.decode()


def test_group_keep_all_and_bulk_selection_of_groups(labeled, client, users):
    a, b, c = _group(labeled)
    client.force_login(users["planner"])
    client.post(reverse("curation-review-decide"), {"group": ["near:g"], "action": "keep"})
    assert set(Flag.objects.values_list("status", flat=True)) == {FlagStatus.KEPT}
    assert not Image.objects.filter(status=ImageStatus.EXCLUDED).exists()
    # After choosing another keeper, "mark duplicate" keeps that one.
    for d in Decision.objects.order_by("-pk"):
        curation.undo(d, users["planner"])
    curation.choose_keeper(Flag.objects.get(image_id=c), users["planner"])
    decisions = curation.decide(curation.group_flag_ids(["near:g"]), "mark_duplicate", users["planner"])
    assert {d.flag.image_id: d.action for d in decisions} == {a: "mark_duplicate", b: "mark_duplicate", c: "keep"}
    assert Image.objects.get(pk=c).status == ImageStatus.ACTIVE


def test_decide_matching_marks_duplicates_group_by_group_across_batches(labeled, users, monkeypatch):
    a, b, c = _group(labeled)
    monkeypatch.setattr(curation, "BULK_MAX", 1)  # every flag in a batch of its own
    f = FlagFilters(kind="near_duplicate_photo")
    result = curation.decide_matching(f, "mark_duplicate", users["planner"], expect=3)
    assert result.by_action == {"mark_duplicate": 2, "keep": 1}
    assert {fl.image_id: fl.status for fl in Flag.objects.all()} == {
        a: FlagStatus.KEPT, b: FlagStatus.DUPLICATE, c: FlagStatus.DUPLICATE}
