"""trainers.evaluate and trainers.predict on the generated learnable snapshot, with stand-in models
(an oracle that knows each test photo's concept, and a model that answers everything alike), so
what is checked is the evaluation itself: which photos and comments it scores, what eval.json and
the JSON Lines hold, and how bad input is refused. A trained run end to end is in the trainers'
own tests once the branches meet."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from tests.trainset import COLOURS, CONCEPTS, SHAPES, write_learnable_snapshot
from trainers import evaluate, predict
from trainers.data import open_snapshot, samples
from trainers.runs import new_run

pytestmark = pytest.mark.once


def concept_of_text(text: str) -> int:
    for index, (colour, shape) in enumerate(CONCEPTS):
        if COLOURS[colour][1] in text and SHAPES[shape][1] in text:
            return index
    raise AssertionError(f"no concept in {text!r}")


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory):
    return open_snapshot(write_learnable_snapshot(tmp_path_factory.mktemp("snap"), photos=80, comments_per_photo=3))


@pytest.fixture(scope="module")
def concept_of_image(snapshot):
    """Every photo's pixels -> its concept (what the oracle 'sees')."""
    out = {}
    for split in ("train", "val", "test"):
        for s in samples(snapshot, split, per_image=True):
            out[pixels(s["image"])] = concept_of_text(s["texts"][0])
    return out


def pixels(image) -> str:
    return hashlib.sha1(image.tobytes()).hexdigest()


class Oracle:
    """A retrieval stand-in: one-hot embeddings of the concept in a photo or a comment."""

    model_name = "oracle"

    def __init__(self, concept_of_image):
        self.concept_of_image = concept_of_image

    def encode_images(self, images):  # a photo it has not seen (another snapshot's) looks like concept 0
        return np.eye(len(CONCEPTS), dtype=np.float32)[[self.concept_of_image.get(pixels(im), 0) for im in images]]

    def encode_texts(self, texts):
        return np.eye(len(CONCEPTS), dtype=np.float32)[[concept_of_text(t) for t in texts]]


class Captioner:
    """A generative stand-in: the oracle's reply (a comment of the right concept) or a constant one."""

    def __init__(self, concept_of_image=None, constant="사진이 좋네요"):
        self.concept_of_image, self.constant = concept_of_image, constant
        self.calls = []

    def generate(self, images, **options):
        self.calls.append(options)
        if self.concept_of_image is None:
            return [self.constant] * len(images)
        from tests.trainset import comment_text

        return [comment_text(*CONCEPTS[self.concept_of_image[pixels(im)]], options["seed"]) for im in images]

    def perplexity(self, images, texts):
        assert len(images) == len(texts)
        self.perplexity_texts = list(texts)
        return 12.5 if self.concept_of_image else 40.0


def make_run(tmp_path, snapshot, kind):
    folder = new_run(tmp_path / "runs", kind, {"epochs": 1}, snapshot)
    folder.finish("finished")
    return folder.path


def use(monkeypatch, model):
    monkeypatch.setattr(evaluate, "load_model", lambda kind, path, device="cpu": model)


# ---------------------------------------------------------------------------------- evaluate

def test_retrieval_run_writes_eval_json_with_recall_both_ways(tmp_path, snapshot, concept_of_image, monkeypatch, capsys):
    run = make_run(tmp_path, snapshot, "retrieval")
    use(monkeypatch, Oracle(concept_of_image))
    assert evaluate.main([str(run)]) == 0
    out = capsys.readouterr().out
    written = json.loads((run / "eval.json").read_text())
    assert written["format"] == 1 and written["split"] == "test" and written["kind"] == "retrieval"
    # 20 test photos, one per concept, 3 comments each: the oracle finds every one at rank 1.
    assert written["metrics"] == {f"{d}_R@{k}": 1.0 for d in ("image_to_text", "text_to_image") for k in (1, 5, 10)}
    sig = written["signature"]
    assert sig["photos"] == 20 and sig["comments"] == 60 and sig["protocol"] == "flickr30k" and sig["model"] == "oracle"
    assert written["snapshot"]["checksum"] == snapshot.checksum and written["checkpoint"] == str(run.resolve() / "model")
    assert "known build" in out and "image_to_text_R@1" in out and "0.2400" in out and "signature: " in out


def test_generative_run_scores_replies_against_every_comment(tmp_path, snapshot, concept_of_image, monkeypatch, capsys):
    run = make_run(tmp_path, snapshot, "generative")
    oracle = Captioner(concept_of_image)
    use(monkeypatch, oracle)
    assert evaluate.main([str(run), "--tokenizer", "kiwi", "--strategy", "beam", "--num-beams", "4"]) == 0
    good = json.loads((run / "eval.json").read_text())
    assert set(good["metrics"]) == {"BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr", "PPL"}
    assert good["metrics"]["PPL"] == 12.5
    assert len(oracle.perplexity_texts) == 60  # every comment of every test photo
    assert oracle.calls[0]["strategy"] == "beam" and oracle.calls[0]["num_beams"] == 4
    sig = good["signature"]
    assert sig["tokenizer"].startswith("kiwi-") and sig["generation"] == "beam4-rp1.2-max30" and sig["nrefs"] == "3"
    out = capsys.readouterr().out
    assert "BLEU-4" in out and "29.20" in out and f"signature: tok:{sig['tokenizer']}|" in out

    use(monkeypatch, Captioner(None))
    assert evaluate.main([str(run), "--tokenizer", "whitespace"]) == 0
    constant = json.loads((run / "eval.json").read_text())
    assert constant["signature"]["tokenizer"] == "whitespace-1"
    for name in ("BLEU-1", "METEOR", "ROUGE-L", "CIDEr"):
        assert good["metrics"][name] > constant["metrics"][name], name
    assert constant["metrics"]["BLEU-1"] < 1e-6  # no word in common (coco-caption keeps a 1e-15 for a zero count)


def test_evaluate_limit_split_and_another_snapshot(tmp_path, snapshot, concept_of_image, monkeypatch, capsys):
    run = make_run(tmp_path, snapshot, "retrieval")
    use(monkeypatch, Oracle(concept_of_image))
    other = write_learnable_snapshot(tmp_path / "other", photos=60, seed=1, version=2)
    assert evaluate.main([str(run), "--snapshot", str(other), "--split", "val", "--limit", "5"]) == 0
    written = json.loads((run / "eval.json").read_text())
    assert written["split"] == "val" and written["signature"]["photos"] == 5 and written["snapshot"]["version"] == 2
    assert "not the snapshot the run trained on" in capsys.readouterr().err


def test_evaluate_refuses_bad_input_in_one_line(tmp_path, snapshot, monkeypatch, capsys):
    assert evaluate.main([str(tmp_path / "nowhere")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    run = make_run(tmp_path, snapshot, "retrieval")
    assert evaluate.main([str(run), "--snapshot", str(tmp_path)]) == 2
    assert "SHA256SUMS" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        evaluate.main([str(run), "--tokenizer", "spaces"])
    assert exc.value.code == 2
    assert not (run / "eval.json").exists()


# ---------------------------------------------------------------------------------- predict

def test_retrieval_replies_come_from_the_deduplicated_train_bank(tmp_path, snapshot, concept_of_image, monkeypatch):
    run = make_run(tmp_path, snapshot, "retrieval")
    use(monkeypatch, Oracle(concept_of_image))
    bank = predict.reply_bank(snapshot)
    train_texts = [t for texts in snapshot.comments_by_image("train").values() for t in texts]
    assert len(bank) == len({predict.bank_key(t) for t in train_texts}) < len(train_texts)
    assert predict.bank_key(" 빨간  동그라미가 있네요\u200b") == predict.bank_key("빨간 동그라미가 있네요")

    assert predict.main([str(run), "--top-k", "3"]) == 0
    path = run / "predictions" / f"{snapshot.name}-v{snapshot.version}-test.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(lines) == 20
    test_photos = {s["image_id"]: s for s in samples(snapshot, "test", per_image=True)}
    manifest = snapshot.manifest.drop_duplicates("image_id").set_index("image_id")
    for line in lines:
        assert set(line) == {"photo", "image_id", "sha256", "model", "run", "replies"}
        assert line["model"] == "retrieval" and line["run"] == run.name and line["photo"] == line["image_id"]
        assert line["sha256"] == manifest.loc[line["image_id"], "image_sha256"]
        assert len(line["replies"]) == 3 and all(r["text"] in bank for r in line["replies"])
        scores = [r["score"] for r in line["replies"]]
        assert scores == sorted(scores, reverse=True)
        # The best reply speaks of what is in the photo.
        photo = test_photos[line["image_id"]]
        assert concept_of_text(line["replies"][0]["text"]) == concept_of_text(photo["texts"][0])


def test_generative_replies_for_a_folder_of_photos(tmp_path, snapshot, concept_of_image, monkeypatch):
    run = make_run(tmp_path, snapshot, "generative")
    use(monkeypatch, Captioner(concept_of_image))
    photos = tmp_path / "photos" / "nested"
    photos.mkdir(parents=True)
    for i, s in enumerate(samples(snapshot, "test", per_image=True)):
        if i == 3:
            break
        s["image"].save(photos / f"{i}.png")
    out = tmp_path / "replies.jsonl"
    assert predict.main([str(run), "--photos", str(tmp_path / "photos"), "--out", str(out),
                         "--strategy", "nucleus", "--top-k", "4"]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["photo"] for line in lines] == ["nested/0.png", "nested/1.png", "nested/2.png"]
    assert all("image_id" not in line and line["model"] == "generative" for line in lines)
    assert lines[0]["sha256"] == hashlib.sha256((photos / "0.png").read_bytes()).hexdigest()
    # Four nucleus draws (seeds 0-3) of the stand-in give four templates of the photo's concept.
    assert len(lines[0]["replies"]) == 4
    assert lines[0]["replies"][0]["score"] == pytest.approx(-np.log(12.5), abs=1e-6)


def test_predict_refuses_bad_input_and_leaves_no_file(tmp_path, snapshot, concept_of_image, monkeypatch, capsys):
    run = make_run(tmp_path, snapshot, "generative")
    use(monkeypatch, Captioner(concept_of_image))
    photos = tmp_path / "photos"
    photos.mkdir()
    assert predict.main([str(run), "--photos", str(photos)]) == 2
    assert "holds no photos" in capsys.readouterr().err
    (photos / "a.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    out = tmp_path / "out.jsonl"
    assert predict.main([str(run), "--photos", str(photos), "--out", str(out)]) == 2
    assert "a.jpg is not a readable image" in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.glob(".out.jsonl*"))
    assert predict.main([str(run), "--top-k", "0"]) == 2
    with pytest.raises(SystemExit):
        predict.main([str(run), "--photos", str(photos), "--snapshot", str(tmp_path)])


# ---------------------------------------------------------------------------------- a trained run, end to end

TINY_CLIP = {"embed_dim": 32, "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8, "head_width": 32},
             "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2}}


def test_trained_runs_evaluate_and_answer_end_to_end(tmp_path, snapshot, capsys):
    """One short training of each baseline (tiny models, a few steps), then the two commands as a
    user runs them: eval.json is written from the real models, and replies come back."""
    retrieval = pytest.importorskip("trainers.retrieval")
    generative = pytest.importorskip("trainers.generative")
    common = ["--snapshot", str(snapshot.path), "--runs-root", str(tmp_path / "runs"), "--epochs", "1",
              "--batch-size", "16", "--workers", "0", "--device", "cpu", "--warmup", "1"]
    assert retrieval.main([*common, "--run-name", "r", "--config", json.dumps(TINY_CLIP), "--eval-split", ""]) == 0
    assert generative.main([*common, "--run-name", "g", "--vision-config", json.dumps(TINY_CLIP), "--lm", "tiny"]) == 0
    capsys.readouterr()

    assert evaluate.main([str(tmp_path / "runs" / "r")]) == 0
    assert evaluate.main([str(tmp_path / "runs" / "g"), "--limit", "5", "--max-new-tokens", "8"]) == 0
    printed = capsys.readouterr().out
    assert "image_to_text_R@10" in printed and "CIDEr" in printed and "tok:kiwi-" in printed
    r = json.loads((tmp_path / "runs" / "r" / "eval.json").read_text())
    g = json.loads((tmp_path / "runs" / "g" / "eval.json").read_text())
    assert all(0 <= v <= 1 for v in r["metrics"].values()) and r["signature"]["photos"] == 20
    assert g["metrics"]["PPL"] > 1 and g["signature"]["photos"] == 5

    assert predict.main([str(tmp_path / "runs" / "r"), "--top-k", "2", "--limit", "4"]) == 0
    assert predict.main([str(tmp_path / "runs" / "g"), "--limit", "2", "--max-new-tokens", "8"]) == 0
    for run, photos, k in (("r", 4, 2), ("g", 2, 1)):
        [path] = (tmp_path / "runs" / run / "predictions").glob("*.jsonl")
        lines = [json.loads(line) for line in path.read_text().splitlines()]
        assert len(lines) == photos and all(len(line["replies"]) == k for line in lines)
