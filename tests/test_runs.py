"""Training runs (item 6 of issue 13): run folders written by the trainers, registered with
`manage.py register_run` or the API, attached to the snapshot version they trained on, read
again on re-registration, refused with a clear reason (and nothing written) when they are not
run folders this platform knows."""
from __future__ import annotations

import hashlib
import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.utils import translation

from datasets.models import Export, Snapshot, TrainingRun
from datasets.runs import services
from datasets.runs.errors import RunError
from datasets.runs.metrics import column_key, scores
from tests.runfolders import write_run

pytestmark = pytest.mark.django_db
CHECKSUM = hashlib.sha256(b"SHA256SUMS of food v1").hexdigest()



@pytest.fixture(autouse=True)
def english(settings):
    """These tests read the English messages (the Korean catalogue translates them all)."""
    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield


@pytest.fixture(autouse=True)
def _runs_root(settings, tmp_path):
    settings.RUNS = {**settings.RUNS, "ROOT": str(tmp_path / "runs")}
    (tmp_path / "runs").mkdir()


@pytest.fixture
def snapshot():
    """food v1, exported once (its SHA256SUMS checksum is CHECKSUM)."""
    snap = Snapshot.objects.create(name="food", version=1, min_sets=1)
    Export.objects.create(snapshot=snap, destination="/x", folder="/x/food/v1", status="done", sums_sha256=CHECKSUM)
    return snap


def test_a_run_of_an_exported_snapshot_is_registered_under_it_with_its_metrics(snapshot, tmp_path):
    folder = write_run(tmp_path / "runs", checksum=CHECKSUM, epochs=3)
    run, created = services.register_run(str(folder), trusted=True)
    assert created and run.snapshot == snapshot and run.snapshot_problem == ""
    assert (run.run_id, run.kind, run.status) == ("retrieval-20261129-101500-a1b2c3", "retrieval", "finished")
    assert run.scores == {"i2t_r1": 0.24, "i2t_r5": 0.53, "i2t_r10": 0.64,
                          "t2i_r1": 0.21, "t2i_r5": 0.49, "t2i_r10": 0.61}
    assert run.tokenizer == "kiwi" and run.evaluation["split"] == "test"
    # metrics.csv per epoch: the last value of each epoch, a column per split/metric.
    assert run.epochs["columns"] == ["train/loss", "val/loss"]
    assert [(r["epoch"], r["step"], r["values"]) for r in run.epochs["rows"]] == [
        (1, 10, [3.0, 3.2]), (2, 20, [1.5, 1.6]), (3, 30, [1.0, pytest.approx(1.0667)])]
    assert [f["path"] for f in run.files["checkpoints"]] == [
        "checkpoints/epoch-1.pt", "checkpoints/epoch-2.pt", "checkpoints/epoch-3.pt", "checkpoints/last.pt"]
    assert run.files["predictions"] == [{"path": "predictions/test.jsonl", "size": 30}]
    assert run.config["batch_size"] == 32 and run.epochs_done == 3 and run.started_at.year == 2026


def test_registering_again_updates_the_run_instead_of_adding_one(snapshot, tmp_path):
    folder = write_run(tmp_path / "runs", checksum=CHECKSUM, status="running", evaluated=False)
    run, created = services.register_run(str(folder), trusted=True)
    assert created and run.status == "running" and run.scores == {} and run.tokenizer == ""
    write_run(tmp_path / "runs", checksum=CHECKSUM, metrics={"image_to_text_R@1": 0.9})
    again, created = services.register_run(str(folder), trusted=True)
    assert not created and again.pk == run.pk and TrainingRun.objects.count() == 1
    assert again.status == "finished" and again.scores == {"i2t_r1": 0.9}


def test_a_run_named_by_the_engineer_is_registered_under_that_name(tmp_path):
    run, _ = services.register_run(str(write_run(tmp_path / "runs", "스윈 기준선 v2")), trusted=True)
    assert run.run_id == "스윈 기준선 v2"


def test_a_run_of_a_snapshot_not_here_is_kept_as_an_unknown_snapshot(tmp_path):
    run, _ = services.register_run(str(write_run(tmp_path / "runs", snapshot=("drinks", 4))), trusted=True)
    assert run.snapshot is None and run.snapshot_problem == "unknown"
    assert run.snapshot_label == "drinks v4"
    assert "There is no snapshot drinks v4 here" in run.snapshot_problem_text


def test_a_checksum_that_is_not_the_snapshots_is_said_and_not_attached(snapshot, tmp_path):
    run, _ = services.register_run(str(write_run(tmp_path / "runs", checksum="f" * 64)), trusted=True)
    assert run.snapshot is None and run.snapshot_problem == "checksum"
    assert "is not the SHA256SUMS of any finished export of food v1" in run.snapshot_problem_text
    # Once the snapshot has an export with that checksum, registering again attaches it.
    Export.objects.create(snapshot=snapshot, destination="/y", folder="/y/food/v1", status="done", sums_sha256="f" * 64)
    run, _ = services.register_run(run.location, trusted=True)
    assert run.snapshot == snapshot and run.snapshot_problem == ""


@pytest.mark.parametrize(("change", "code", "words"), [
    (lambda f: (f / "run.json").unlink(), "no_run_json", "has no run.json"),
    (lambda f: (f / "run.json").write_text("{not json"), "bad_run_json", "is not valid JSON"),
    (lambda f: (f / "run.json").write_text("[]"), "bad_run_json", "not a JSON object"),
    (lambda f: _edit(f, format=2), "unknown_format", "has format 2; this platform reads run folders of format 1"),
    (lambda f: _edit(f, format=None), "unknown_format", "has format null"),
    (lambda f: _edit(f, kind="detector"), "bad_field", "kind is not retrieval or generative"),
    (lambda f: _edit(f, run_id="../x"), "bad_field", "run_id is missing or not a folder name"),
    (lambda f: _edit(f, snapshot={"name": "food"}), "bad_field", "snapshot.version is not a version number"),
    (lambda f: _edit(f, created_at="yesterday"), "bad_field", "created_at is not an ISO 8601"),
    (lambda f: (f / "eval.json").write_text('{"format": 1}'), "bad_eval_json", "it has no metrics object"),
    (lambda f: (f / "metrics.csv").write_text("a,b\n1,2\n"), "bad_metrics_csv",
     "its header is not epoch,step,split,metric,value"),
    (lambda f: (f / "metrics.csv").write_text("epoch,step,split,metric,value\n1,x,val,loss,2\n"), "bad_metrics_csv",
     "line 2 has no numbers"),
], ids=["no-run-json", "not-json", "not-object", "format-2", "no-format", "kind", "run-id", "version", "time",
        "eval", "csv-header", "csv-row"])
def test_a_folder_that_is_not_a_run_is_refused_with_its_reason_and_nothing_written(tmp_path, change, code, words):
    good = write_run(tmp_path / "runs", "retrieval-good")
    services.register_run(str(good), trusted=True)
    before = list(TrainingRun.objects.values())
    folder = write_run(tmp_path / "runs", "retrieval-good", metrics={"image_to_text_R@1": 0.99})
    change(folder)
    with pytest.raises(RunError) as caught:
        services.register_run(str(folder), trusted=True)
    assert caught.value.code == code and words in str(caught.value), str(caught.value)
    assert str(folder) in str(caught.value)
    assert list(TrainingRun.objects.values()) == before  # the registered run untouched, nothing added


def _edit(folder, **fields):
    run = json.loads((folder / "run.json").read_text())
    run.update(fields)
    (folder / "run.json").write_text(json.dumps(run))


def test_a_missing_folder_and_one_outside_the_runs_root_are_refused(tmp_path):
    with pytest.raises(RunError, match="There is no folder at"):
        services.register_run(str(tmp_path / "runs" / "nothing"), trusted=True)
    elsewhere = write_run(tmp_path / "elsewhere")
    with pytest.raises(RunError) as caught:
        services.register_run(str(elsewhere))  # from the web
    assert caught.value.code == "outside_root"
    with pytest.raises(RunError) as caught:
        services.register_run("../elsewhere/retrieval-20261129-101500-a1b2c3")
    assert caught.value.code == "outside_root"
    run, _ = services.register_run(str(elsewhere), trusted=True)  # the operator's command may
    assert run.location == str(elsewhere)


def test_the_command_registers_several_folders_and_says_which_failed(snapshot, tmp_path):
    good = write_run(tmp_path / "runs", checksum=CHECKSUM)
    other = write_run(tmp_path / "runs", "generative-1", kind="generative", snapshot=("food", 9))
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError, match="1 of 3 folders were not registered"):
        call_command("register_run", str(good), str(tmp_path / "runs" / "nope"), str(other), stdout=out, stderr=err)
    assert "Registered run retrieval-20261129-101500-a1b2c3 (retrieval, finished)" in out.getvalue()
    assert "snapshot food v1" in out.getvalue()
    assert "There is no snapshot food v9 here" in err.getvalue()
    assert "There is no folder at" in err.getvalue()
    assert TrainingRun.objects.count() == 2
    call_command("register_run", str(good), stdout=out, stderr=err)
    assert "Updated run retrieval-20261129-101500-a1b2c3" in out.getvalue()


def test_the_api_registers_lists_by_snapshot_and_deletes(api, snapshot, tmp_path):
    write_run(tmp_path / "runs", checksum=CHECKSUM)
    write_run(tmp_path / "runs", "generative-x", kind="generative", snapshot=("other", 1))
    engineer = api("engineer")
    response = engineer.post("/api/runs/", {"location": "retrieval-20261129-101500-a1b2c3"}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["snapshot"] == snapshot.pk and body["scores"]["i2t_r1"] == 0.24 and body["tokenizer"] == "kiwi"
    assert engineer.post("/api/runs/", {"location": "retrieval-20261129-101500-a1b2c3"},
                         format="json").status_code == 200
    assert engineer.post("/api/runs/", {"location": "generative-x"}, format="json").status_code == 201
    refused = engineer.post("/api/runs/", {"location": "/etc"}, format="json")
    assert refused.status_code == 400 and refused.json()["code"] == "outside_root"
    refused = engineer.post("/api/runs/", {"location": "nothing-here"}, format="json")
    assert refused.status_code == 400 and refused.json()["code"] == "not_found"

    planner = api("planner")
    assert [r["run_id"] for r in planner.get(f"/api/runs/?snapshot={snapshot.pk}").json()["results"]] == [
        "retrieval-20261129-101500-a1b2c3"]
    unknown = planner.get("/api/runs/?snapshot=unknown").json()["results"]
    assert [(r["run_id"], r["snapshot_label"], r["snapshot_problem"]) for r in unknown] == [
        ("generative-x", "other v1", "unknown")]
    assert planner.get("/api/runs/?kind=generative").json()["count"] == 1
    assert planner.get("/api/runs/?kind=nonsense").status_code == 400
    assert planner.get("/api/runs/?snapshot=x").status_code == 400
    pk = unknown[0]["id"]
    assert planner.get(f"/api/runs/{pk}/").json()["scores"]["bleu4"] == 2.7
    assert planner.delete(f"/api/runs/{pk}/").status_code == 403
    assert engineer.delete(f"/api/runs/{pk}/").status_code == 204
    assert TrainingRun.objects.count() == 1 and (tmp_path / "runs" / "generative-x" / "run.json").exists()


def test_the_schema_describes_the_run_routes(api):
    schema = api("engineer").get("/api/schema/?format=json").json()
    assert {"get", "post"} <= set(schema["paths"]["/api/runs/"])
    assert {"get", "delete"} <= set(schema["paths"]["/api/runs/{id}/"])
    assert "TrainingRun" in schema["components"]["schemas"]


@pytest.mark.once
@pytest.mark.parametrize(("name", "key"), [
    ("image_to_text_R@1", "i2t_r1"), ("i2t/R@5", "i2t_r5"), ("img2txt_recall@10", "i2t_r10"),
    ("text_to_image_recall@1", "t2i_r1"), ("t2i_r10", "t2i_r10"), ("txt2img_R@5", "t2i_r5"),
    ("BLEU-1", "bleu1"), ("bleu_4", "bleu4"), ("METEOR", "meteor"), ("ROUGE-L", "rouge_l"), ("rouge_l", "rouge_l"),
    ("CIDEr", "cider"), ("CIDEr-D", "cider"), ("perplexity", "ppl"), ("PPL", "ppl"),
    ("loss", None), ("mean_recall", None), ("R@1", None), ("bleu", None),
])
def test_metric_names_map_onto_the_comparison_columns(name, key):
    assert column_key(name) == key


@pytest.mark.once
def test_nested_metrics_are_read_and_the_first_spelling_wins():
    assert scores({"image_to_text": {"R@1": 0.5, "R@5": 0.7}, "i2t_r1": 0.1, "BLEU-1": float("nan"),
                   "note": "x"}) == {"i2t_r1": 0.5, "i2t_r5": 0.7}


# ---------------------------------------------------------------- S3 (moto's server)

from tests import test_s3  # noqa: E402

moto_endpoint, s3 = test_s3.moto_endpoint, test_s3.s3  # the moto server and bucket fixtures


@pytest.mark.s3
def test_a_run_folder_on_s3_is_registered_like_a_local_one(s3, snapshot, api):
    from tests.runfolders import run_files

    for rel, data in run_files("generative-s3", kind="generative", checksum=CHECKSUM, tokenizer="mecab").items():
        s3.put_object(Bucket=s3.bucket, Key=f"runs/generative-s3/{rel}", Body=data)
    response = api("engineer").post("/api/runs/", {"location": f"s3://{s3.bucket}/runs/generative-s3/"}, format="json")
    assert response.status_code == 201, response.json()
    run = TrainingRun.objects.get()
    assert run.location == f"s3://{s3.bucket}/runs/generative-s3" and run.snapshot == snapshot
    assert run.scores["cider"] == 10.3 and run.tokenizer == "mecab" and run.epochs["rows"]
    assert [f["path"] for f in run.files["model"]] == ["model/open_clip_model.pt"]
    assert run.files["predictions"][0]["path"] == "predictions/test.jsonl"

    with pytest.raises(RunError) as caught:
        services.register_run(f"s3://{s3.bucket}/runs/nothing", trusted=True)
    assert caught.value.code == "no_run_json"
    with pytest.raises(RunError) as caught:
        services.register_run(f"s3://no-such-bucket-{s3.bucket}/runs/x", trusted=True)
    assert caught.value.code == "s3_failed" and "Cannot read s3://no-such-bucket" in str(caught.value)
    assert TrainingRun.objects.count() == 1
