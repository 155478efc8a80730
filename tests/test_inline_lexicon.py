"""The korcen lexicon inline at submit (issue 12, item 7): an insulting comment is stored (not
refused) and gets an open TOXICITY flag in the same transaction, so the review queue shows it at
once; the toxicity step's later run updates that flag instead of adding a second card; the
switch CURATION["INLINE_LEXICON"] turns it off; a failing lexicon does not fail the submit."""
from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import translation

from curation import toxicity as T
from curation.models import Flag, FlagKind, FlagStatus
from labeling import services
from labeling.models import Comment
from tests.factories import GOOD

INSULT = {"reaction": "음 이게 뭐지", "specific": "이 사진 찍은 놈 진짜 병신 같네"}


@pytest.fixture(autouse=True)
def english(settings):
    """These tests read the English messages (the Korean catalogue translates them all)."""
    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield


def submit(project, user, texts):
    return services.submit(services.next_assignment(project, user), user, texts)


def run_toxicity(project, **kw):
    from curation import runs

    run = runs.run_here(runs.start_run(project, ["toxicity"], enqueue=False, **kw))
    assert run.status == "done", run.error
    return run.run_steps.get(name="toxicity")


def test_an_insulting_comment_is_stored_and_flagged_at_once(make_project, labelers, users, client):
    project = make_project(3, overlap=1, members=labelers[:1])
    submit(project, labelers[0], GOOD)
    stored = submit(project, labelers[0], INSULT)  # not refused
    assert Comment.objects.filter(assignment__project=project).count() == 4

    flag = Flag.objects.get()
    insult = next(c for c in stored if c.text == INSULT["specific"])
    assert (flag.comment_id, flag.kind, flag.status) == (insult.pk, FlagKind.TOXICITY, FlagStatus.OPEN)
    assert (flag.detector, flag.detector_version) == ("toxicity", T.LEXICON_VERSION)
    assert flag.project_id == project.pk and flag.score == 0.95
    assert flag.evidence["lexicon"] == [{"level": "general", "match": "병신"}]
    assert flag.evidence["matched"] == "병신 (general)"
    assert flag.evidence["source"] == "inline at submit" and flag.evidence["mode"] == "lexicon only"
    assert flag.evidence["label"] == "offensive"  # a planner's reject is training data

    # In the review queue before any text run, with its evidence.
    client.force_login(users["planner"])
    page = client.get(reverse("curation-review"), {"kind": "toxicity"}).content.decode()
    assert INSULT["specific"] in page and "inline at submit" in page and "병신 (general)" in page


def test_the_steps_run_updates_the_same_flag_and_a_decision_stands(make_project, labelers, users):
    from curation import services as curation

    project = make_project(3, overlap=1, members=labelers[:1])
    submit(project, labelers[0], INSULT)
    submit(project, labelers[0], {"reaction": "ㅅㅂ 뭐야", "specific": "족발 윤기가 장난 아니네요 쫀득해 보여요"})
    assert Flag.objects.count() == 2
    counts = run_toxicity(project).counts
    assert counts["flags_new"] == 0 and counts["flags_updated"] == 2  # one card per comment and kind
    assert Flag.objects.count() == 2
    assert all("source" not in f.evidence and f.evidence["matched"] for f in Flag.objects.all())

    # A flag decided after the inline check is not reopened by the step.
    kept = Flag.objects.get(comment__text="ㅅㅂ 뭐야")
    curation.decide([kept], "keep", users["planner"])
    run_toxicity(project)
    kept.refresh_from_db()
    assert kept.status == FlagStatus.KEPT and Flag.objects.count() == 2


def test_the_switch_turns_it_off(make_project, labelers, settings):
    settings.CURATION = {**settings.CURATION, "INLINE_LEXICON": False}
    project = make_project(2, overlap=1, members=labelers[:1])
    submit(project, labelers[0], INSULT)
    assert Comment.objects.count() == 2 and not Flag.objects.exists()


def test_a_refused_submit_leaves_no_flag(make_project, labelers):
    project = make_project(2, overlap=1, members=labelers[:1])
    a = services.next_assignment(project, labelers[0])
    with pytest.raises(services.SubmissionRejected):
        services.submit(a, labelers[0], {"reaction": "병신", "specific": "병신 010-1234-5678 연락해"})
    assert not Comment.objects.exists() and not Flag.objects.exists()


def test_a_failing_lexicon_does_not_fail_the_submit(make_project, labelers, monkeypatch, caplog):
    def broken(text):
        raise RuntimeError("korcen broke")

    monkeypatch.setattr(T, "lexicon_hits", broken)
    project = make_project(2, overlap=1, members=labelers[:1])
    submit(project, labelers[0], INSULT)
    assert Comment.objects.count() == 2 and not Flag.objects.exists()
    assert "inline lexicon check failed" in caplog.text


def test_a_failing_flag_write_does_not_fail_the_submit(make_project, labelers, monkeypatch, caplog):
    from curation import services as curation

    def broken(*args, **kwargs):
        raise RuntimeError("database trouble")

    monkeypatch.setattr(curation, "record_flags", broken)
    project = make_project(2, overlap=1, members=labelers[:1])
    submit(project, labelers[0], INSULT)
    assert Comment.objects.count() == 2 and not Flag.objects.exists()
    assert "inline lexicon flags failed" in caplog.text
