"""Toxicity and bias (issue 12, item 3): the korcen lexicon, the classifier trained on a small
generated labeled set (known answers), reading training files, versioned models, the planners'
decisions as training data on retrain, the train_toxicity command and the curation step."""
from __future__ import annotations

import random
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import translation

from curation import toxicity as T

# ---------------------------------------------------------------- generated labeled data

FOODS = ["김치찌개", "족발", "떡볶이", "파스타", "케이크", "라멘", "초밥", "비빔밥", "삼겹살", "마카롱"]
PLACES = ["바다", "산", "공원", "카페", "골목", "호수", "들판", "해변"]
NICE = ["진짜 맛있겠다", "색감이 예쁘네요", "분위기 좋아 보여요", "가보고 싶다", "사진 잘 찍으셨네요", "너무 귀엽다"]
INSULTS = ["멍청한 놈", "한심한 인간", "돌대가리", "머저리 같은 놈", "찌질한 인간"]
INSULT_TAILS = ["아 진짜 짜증나", "꺼져라", "보기 싫다", "눈 버렸네", "한심하다 정말"]
GENDER = ["여자들", "남자들", "김치녀들", "한남들"]
OTHER = ["노인들", "외국인들", "조선족들", "틀딱들"]
HATE_TAILS = ["은 다 없어져야 해", "은 전부 추방해야 함", "은 사람 취급하면 안 됨", "은 싹 다 쓸어버려야 해"]



@pytest.fixture(autouse=True)
def english(settings):
    """These tests read the English messages (the Korean catalogue translates them all)."""
    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield


def generated(n: int, seed: int) -> list[T.Row]:
    """n rows, a third each none / offensive / hate; hate targets a gender or another group."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        kind = i % 3
        if kind == 0:
            thing = rng.choice(FOODS + PLACES)
            rows.append(T.Row(f"{thing} {rng.choice(NICE)} {rng.randint(1, 99)}", "none", "none"))
        elif kind == 1:
            rows.append(T.Row(f"{rng.choice(INSULTS)} {rng.choice(INSULT_TAILS)}", "offensive", "none"))
        else:
            gender = rng.random() < 0.5
            group = rng.choice(GENDER if gender else OTHER)
            rows.append(T.Row(f"{group}{rng.choice(HATE_TAILS)}", "hate", "gender" if gender else "other"))
    return rows


@pytest.fixture(scope="module")
def trained():
    return T.train(generated(240, seed=1), version=1)


def tsv(rows: list[T.Row], *, header="text\tlabel\tbias") -> bytes:
    lines = [header] + [f"{r.text}\t{r.label}\t{r.bias}" for r in rows]
    return ("\n".join(lines) + "\n").encode()


# ---------------------------------------------------------------- pure: lexicon, classifier, files


@pytest.mark.once
def test_lexicon_finds_profanity_and_passes_photo_comments():
    hits = T.lexicon_hits("시발 이게 말이 되냐")
    assert hits and hits[0]["level"] == "general"
    assert T.lexicon_hits("족발 폼 미쳤다! 맛있겠다") == []
    assert T.lexicon_hits("길고양이야? 너무 귀엽다!!") == []


@pytest.mark.once
def test_lexicon_alone_says_so():
    d = T.Detector()
    assert d.version == T.LEXICON_VERSION == "korcen-1.0.3"
    clean, rude = d.check(["바다 색감이 예쁘네요", "시발 이게 뭐야"])
    assert clean == []
    (f,) = rude
    assert f.kind == "toxicity" and f.score == 0.95
    assert f.evidence["mode"] == "lexicon only" and f.evidence["model_version"] is None
    assert f.evidence["lexicon"][0]["level"] == "general"


@pytest.mark.once
def test_classifier_learns_the_generated_labels(trained):
    held_out = generated(90, seed=99)  # new random combinations
    preds = trained.predict([r.text for r in held_out])
    toxic_right = sum((p.toxic >= 0.5) == (r.label != "none") for p, r in zip(preds, held_out))
    label_right = sum(p.label == r.label for p, r in zip(preds, held_out))
    bias_right = sum(p.bias == r.bias for p, r in zip(preds, held_out))
    assert toxic_right >= 0.95 * len(held_out)
    assert label_right >= 0.9 * len(held_out)
    assert bias_right >= 0.9 * len(held_out)
    # The held-out part of the training rows was measured and recorded.
    m = trained.metrics["toxicity"]
    assert m["held_out"] == 36 and m["trained_on"] == 240 and m["scores"]["any"]["f1"] >= 0.9
    assert set(trained.metrics["bias"]["scores"]) == {"gender", "other", "none", "any"}
    assert trained.rows == {"file": 240, "decision": 0, "toxicity": 240, "bias": 240}


@pytest.mark.once
def test_detector_combines_model_and_lexicon(trained):
    d = T.Detector(classifier=trained, threshold=0.5, bias_threshold=0.5)
    assert d.version == "tox-v1+korcen-1.0.3"
    clean, hate, = d.check(["공원 분위기 좋아 보여요 7", "여자들은 전부 추방해야 함"])
    assert clean == []
    kinds = {f.kind: f for f in hate}
    assert kinds["toxicity"].label == "hate" and kinds["toxicity"].evidence["probability"] >= 0.5
    assert kinds["bias"].label == "gender"
    ev = kinds["toxicity"].evidence
    assert {"label", "probability", "threshold", "lexicon", "model_version", "mode"} <= set(ev)
    assert ev["model_version"] == 1 and ev["mode"] == "model+lexicon"


@pytest.mark.once
def test_model_file_round_trip_and_checksum(trained):
    again = T.ToxicityClassifier.loads(trained.dumps())
    texts = ["틀딱들은 다 없어져야 해", "초밥 진짜 맛있겠다"]
    assert [p.label for p in again.predict(texts)] == [p.label for p in trained.predict(texts)]
    rows = generated(30, seed=1)
    assert T.data_checksum(rows) == T.data_checksum(list(rows))
    assert T.data_checksum(rows) != T.data_checksum(rows[:-1])


@pytest.mark.once
def test_read_table_tsv_csv_and_aliases():
    rows = T.read_table(b"comments\thate\tbias\n\"a \"\"quoted\"\" one\"\tOffensive\tothers\nb\tnone\tnone\n",
                        text_col="comments", label_col="hate", name="x.tsv")
    assert rows == [T.Row('a "quoted" one', "offensive", "other"), T.Row("b", "none", "none")]
    rows = T.read_table("text,label\n안녕,none\n".encode("utf-8-sig"), name="x.csv")
    assert rows == [T.Row("안녕", "none", None)]  # no bias column: no bias head


@pytest.mark.once
@pytest.mark.parametrize("data, name, message", [
    (b"", "x.tsv", "x.tsv is empty"),
    (b"text\tlabel\n", "x.tsv", "has a header but no rows"),
    (b"comment\tlabel\nhi\tnone\n", "x.tsv", "has no column text (its columns: comment, label)"),
    (b"text\tlabel\nhi\tnone\nyo\ttoxic\n", "x.tsv", "Line 3: 'toxic' is not a label of column label"),
    (b"text\tlabel\n\tnone\n", "x.tsv", "Line 2 has no text"),
    (b"text\tlabel\nhi\tnone\textra\n", "x.tsv", "Line 2 has more fields than the header"),
    (b"text,label\nhi,none\n\xff\xfe,none\n", "x.csv", "is not UTF-8 text"),
])
def test_read_table_refuses_malformed_files(data, name, message):
    with pytest.raises(T.TrainingDataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        T.read_table(data, name=name)


@pytest.mark.once
def test_bias_column_required_when_named_and_two_labels_needed():
    with pytest.raises(T.TrainingDataError, match="no column hatred"):
        T.read_table(b"text\tlabel\nhi\tnone\n", bias_col="hatred", bias_required=True, name="x.tsv")
    with pytest.raises(T.TrainingDataError, match="at least two different values"):
        T.train([T.Row("a", "none"), T.Row("b", "none")], version=1)


# ---------------------------------------------------------------- database: versions, decisions, command, step


@pytest.fixture
def training_file(tmp_path) -> Path:
    path = tmp_path / "labeled.tsv"
    path.write_bytes(tsv(generated(120, seed=2)))
    return path


def model_files(settings) -> list[str]:
    folder = Path(settings.MEDIA_ROOT) / settings.CURATION["TOXICITY_MODEL_DIR"]
    return sorted(p.name for p in folder.glob("*")) if folder.exists() else []


def test_train_command_versions_and_errors(db, training_file, settings, capsys):
    from curation.models import ToxicityModel

    call_command("train_toxicity", str(training_file))
    out = capsys.readouterr().out
    assert "toxicity model v1 trained and current" in out and "toxic (any)" in out
    v1 = ToxicityModel.objects.get()
    assert v1.current and v1.version == 1 and v1.rows["file"] == 120 and v1.labels == list(T.LABELS)
    assert v1.bias_labels == list(T.BIAS_LABELS) and len(v1.data_sha256) == 64
    assert v1.metrics["toxicity"]["scores"]["any"]["f1"] > 0.8
    assert model_files(settings) == [Path(v1.file).name]

    # A malformed file: a clear error, no row, no file; v1 stays current.
    bad = training_file.with_name("bad.tsv")
    bad.write_bytes(tsv(generated(9, seed=3)) + b"oops\tnasty\tnone\n")
    with pytest.raises(CommandError, match="Line 11: 'nasty' is not a label of column label"):
        call_command("train_toxicity", str(bad))
    with pytest.raises(CommandError, match="has no column comments"):
        call_command("train_toxicity", str(training_file), "--text-col", "comments")
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("train_toxicity", str(training_file.with_name("missing.tsv")))
    assert ToxicityModel.objects.count() == 1 and len(model_files(settings)) == 1

    call_command("train_toxicity", str(training_file))
    v1.refresh_from_db()
    v2 = ToxicityModel.objects.get(current=True)
    assert v2.version == 2 and not v1.current and len(model_files(settings)) == 2
    assert T.current_detector().version == "tox-v2+korcen-1.0.3"
    call_command("train_toxicity", "--activate", "1")
    assert T.current_detector().version == "tox-v1+korcen-1.0.3"
    with pytest.raises(CommandError, match="No toxicity model version 9"):
        call_command("train_toxicity", "--activate", "9")


@pytest.fixture
def registered(monkeypatch):
    """The toxicity step is in the registry of curation runs (added when the app loads)."""
    from curation import steps

    assert "toxicity" in steps.by_name()


def run_toxicity(project, **kw):
    from curation import runs

    run = runs.run_here(runs.start_run(project, ["toxicity"], enqueue=False, **kw))
    assert run.status == "done", run.error
    return run.run_steps.get(name="toxicity")


@pytest.fixture
def commented(make_project, labelers, settings):
    """3 photos, one labeler: a clean, an insulting and a hateful comment set (the inline lexicon
    at submit off: these tests are about the step; tests/test_inline_lexicon.py has both)."""
    from labeling import services
    from labeling.models import Comment

    settings.CURATION = {**settings.CURATION, "INLINE_LEXICON": False}

    project = make_project(3, overlap=1, members=labelers[:1])
    sets = [
        {"reaction": "와 멋지다 1", "specific": "바다 색감이 예쁘네요 정말"},
        {"reaction": "시발 뭐야 이거", "specific": "멍청한 놈 아 진짜 짜증나"},
        {"reaction": "와 멋지다 3", "specific": "여자들은 다 없어져야 해"},
    ]
    for texts in sets:
        a = services.next_assignment(project, labelers[0])
        services.submit(a, labelers[0], texts)
    return project, {c.text: c for c in Comment.objects.filter(assignment__project=project)}


def test_step_without_model_runs_the_lexicon_alone(commented, registered, monkeypatch):
    from curation import services
    from curation.models import Flag

    project, comments = commented
    calls = []
    real = services.record_flags
    monkeypatch.setattr(services, "record_flags", lambda *a, **k: calls.append(a) or real(*a, **k))
    (step,) = T.STEPS
    assert (step.name, step.subject, step.queue, step.size()) == ("toxicity", "comments", "curation", 500)
    row = run_toxicity(project)
    assert row.state == "done" and row.total == 6
    assert row.counts == {"comments": 6, "toxic": 1, "bias": 0, "flags_new": 1, "flags_updated": 0,
                          "lexicon_only": 6}
    assert len(calls) == 1 and calls[0][:2] == ("toxicity", "korcen-1.0.3")
    flag = Flag.objects.get()
    assert flag.comment_id == comments["시발 뭐야 이거"].pk and flag.kind == "toxicity"
    assert flag.detector_version == "korcen-1.0.3" and flag.evidence["mode"] == "lexicon only"
    assert flag.project_id == project.pk
    # Again: nothing changes (idempotent); a new-only run has nothing new to read.
    assert run_toxicity(project).counts["flags_new"] == 0
    assert run_toxicity(project, new_only=True).total == 0


def test_step_with_model_and_decisions_feed_the_next_version(commented, registered, training_file, users, client):
    from curation import selectors, services
    from curation.models import Flag, FlagStatus, ToxicityModel

    project, comments = commented
    services.train_toxicity_model(training_file)
    counts = run_toxicity(project).counts
    assert counts["toxic"] >= 2 and counts["bias"] >= 1 and "lexicon_only" not in counts
    flags = {(f.comment.text, f.kind): f for f in Flag.objects.select_related("comment")}
    hateful = flags[("여자들은 다 없어져야 해", "toxicity")]
    assert hateful.detector_version == "tox-v1+korcen-1.0.3"
    assert hateful.evidence["label"] == "hate" and hateful.evidence["threshold"] == 0.5
    assert hateful.evidence["model_version"] == 1
    assert flags[("여자들은 다 없어져야 해", "bias")].evidence["label"] == "gender"
    assert ("바다 색감이 예쁘네요 정말", "toxicity") not in flags

    # The review queue shows the flag with its evidence.
    client.force_login(users["planner"])
    page = client.get(reverse("curation-review"), {"kind": "toxicity"}).content.decode()
    assert "여자들은 다 없어져야 해" in page and "hate" in page and "model+lexicon" in page

    # Planners decide: keep the lexicon hit (say, a quoted word), reject the hateful one.
    planner = users["planner"]
    kept = flags[("시발 뭐야 이거", "toxicity")]
    services.decide([kept], "keep", planner)
    services.decide([hateful], "reject_comment", planner)
    # A decision taken back is no training data.
    (wrong,) = services.decide([flags[("여자들은 다 없어져야 해", "bias")]], "keep", planner)
    assert T.Row("여자들은 다 없어져야 해", None, "none", "decision") in selectors.toxicity_decision_rows()
    services.undo(wrong, planner)
    rows = selectors.toxicity_decision_rows()
    assert T.Row("시발 뭐야 이거", "none", None, "decision") in rows
    assert T.Row("여자들은 다 없어져야 해", "hate", None, "decision") in rows

    v2 = services.train_toxicity_model(training_file)
    assert v2.version == 2 and v2.rows["decision"] == len(rows) == 2 and v2.rows["file"] == 120
    assert v2.data_sha256 != ToxicityModel.objects.get(version=1).data_sha256
    assert services.train_toxicity_model(training_file, use_decisions=False).rows["decision"] == 0

    # The next run does not raise decided flags again: the planner's decision stands.
    run_toxicity(project)
    kept.refresh_from_db()
    hateful.refresh_from_db()
    assert kept.status == FlagStatus.KEPT and hateful.status == FlagStatus.REJECTED
    assert kept.detector_version == "tox-v1+korcen-1.0.3"
