"""The retrieval baseline (python -m trainers.retrieval) on the generated learnable snapshot
(tests/trainset.py), with a tiny open_clip model built from a config (no downloads): it learns
(Recall@1 >= 0.9 both ways on the test split, Flickr30k protocol), its saved model loads in
open_clip, a resumed run makes exactly the steps of an uninterrupted one, two processes under
torchrun (gloo, CPU) make the steps of one process with their joint batch, and bad input stops
with one clear line. No database."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
open_clip = pytest.importorskip("open_clip")

from tests.trainset import write_learnable_snapshot  # noqa: E402
from trainers import retrieval  # noqa: E402
from trainers.metrics import retrieval_recall  # noqa: E402
from trainers.runs import read_run  # noqa: E402

pytestmark = pytest.mark.once
ROOT = Path(__file__).resolve().parent.parent

# A small ResNet image tower (convolutions learn shapes from 200 photos in seconds) on 32 px, and
# a 2-layer text transformer over open_clip's default tokenizer (Korean becomes byte pieces).
TINY = {"embed_dim": 64,
        "vision_cfg": {"image_size": 32, "layers": [1, 1, 1, 1], "width": 16, "head_width": 16},
        "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2}}


@pytest.fixture(scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # 2 shared cores: more threads only wait on each other
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def snapshot_dir(tmp_path_factory):
    return write_learnable_snapshot(tmp_path_factory.mktemp("snap"), photos=200, comments_per_photo=2)


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "tiny-rn.json"
    path.write_text(json.dumps(TINY))
    return path


def args(snapshot_dir, runs, config, *extra):
    return ["--snapshot", str(snapshot_dir), "--runs-root", str(runs), "--config", str(config), "--batch-size", "32",
            "--lr", "2e-3", "--warmup", "20", "--workers", "0", "--shuffle-buffer", "200", "--log-every", "100",
            *extra]


def test_a_tiny_model_learns_the_snapshot_and_saves_a_model_open_clip_loads(snapshot_dir, tiny_config, tmp_path,
                                                                             one_thread):
    from trainers import data

    assert retrieval.main(args(snapshot_dir, tmp_path, tiny_config, "--epochs", "12", "--run-name", "shapes")) == 0
    run = tmp_path / "shapes"
    info = read_run(run)
    assert info["run"]["status"] == "finished" and info["run"]["kind"] == "retrieval"
    assert info["run"]["steps_done"] == 120 and info["run"]["epochs_done"] == 12
    snap = data.open_snapshot(snapshot_dir)
    assert info["run"]["snapshot"] == snap.describe()
    assert info["run"]["config"]["epochs"] == 12 and info["run"]["model"]["name"] == "tiny-rn"
    assert {"train", "val"} <= set(info["metrics"]) and "image_to_text_R@1" in info["metrics"]["val"]
    assert {p.name for p in (run / "checkpoints").iterdir()} >= {"last.pt", "epoch-1.pt", "epoch-12.pt"}
    if importlib.util.find_spec("tensorboard"):  # requirements-ml.txt; metrics.csv alone without it
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        events = EventAccumulator(str(run / "tensorboard"))
        events.Reload()
        assert len(events.Scalars("val/image_to_text_R@1")) == 12

    # Test split, every comment of a photo counting (the Flickr30k protocol).
    model = retrieval.load(run)
    photos = list(data.samples(snap, "test", per_image=True))
    texts = [t for p in photos for t in p["texts"]]
    owner = [i for i, p in enumerate(photos) for _ in p["texts"]]
    images = model.encode_images([p["image"] for p in photos])
    encoded = model.encode_texts(texts)
    assert images.shape == (20, 64) and encoded.shape == (40, 64)
    recall = retrieval_recall(images, encoded, owner).scores
    assert recall["image_to_text_R@1"] >= 0.9 and recall["text_to_image_R@1"] >= 0.9, recall

    # open_clip's own factory loads the saved model by name and weights file, and by folder.
    open_clip.add_model_config(run / "model" / "tiny-rn.json")
    clip, _, preprocess = open_clip.create_model_and_transforms("tiny-rn", pretrained=str(run / "model" /
                                                                                           "open_clip_model.pt"))
    clip.eval()
    tokens = open_clip.get_tokenizer("tiny-rn")(texts[:4])
    with torch.no_grad():
        theirs = torch.nn.functional.normalize(clip.encode_text(tokens), dim=-1).numpy()
    assert abs(theirs - encoded[:4]).max() < 1e-5
    again, _, _ = open_clip.create_model_and_transforms(f"local-dir:{run / 'model'}")
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), clip.state_dict().values(), strict=True))

    # A new run starts from the saved weights (--pretrained FILE); with the image tower frozen, one
    # step moves the text tower only.
    saved = torch.load(run / "model" / "open_clip_model.pt", weights_only=True)
    assert retrieval.main(args(snapshot_dir, tmp_path, tiny_config, "--epochs", "1", "--run-name", "tuned",
                               "--pretrained", str(run / "model" / "open_clip_model.pt"), "--freeze-vision",
                               "--stop-after", "1", "--eval-split", "")) == 0
    tuned = torch.load(tmp_path / "tuned" / "checkpoints" / "last.pt", weights_only=False)["model"]
    assert read_run(tmp_path / "tuned")["run"]["model"]["pretrained"].endswith("open_clip_model.pt")
    visual = [k for k in saved if k.startswith("visual.") and k in tuned]
    assert visual and all(torch.equal(saved[k], tuned[k]) for k in visual)
    assert not torch.equal(saved["token_embedding.weight"], tuned["token_embedding.weight"])


def test_a_resumed_run_makes_exactly_the_steps_of_an_uninterrupted_one(snapshot_dir, tiny_config, tmp_path,
                                                                         one_thread):
    common = ["--epochs", "2", "--batch-size", "16", "--accum", "2", "--eval-split", ""]
    assert retrieval.main(args(snapshot_dir, tmp_path, tiny_config, *common, "--run-name", "straight")) == 0
    # Stopped in the middle of the second epoch, then resumed with two data loader workers.
    assert retrieval.main(args(snapshot_dir, tmp_path, tiny_config, *common, "--run-name", "cut",
                               "--stop-after", "13")) == 0
    cut = tmp_path / "cut"
    assert read_run(cut)["run"]["steps_done"] == 13 and not (cut / "model").joinpath("open_clip_model.pt").exists()
    assert retrieval.main(["--resume", str(cut), "--workers", "2"]) == 0
    assert read_run(cut)["run"]["status"] == "finished" and read_run(cut)["run"]["steps_done"] == 20
    a = torch.load(tmp_path / "straight" / "checkpoints" / "last.pt", weights_only=False)
    b = torch.load(cut / "checkpoints" / "last.pt", weights_only=False)
    assert a["step"] == b["step"] == 20
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    assert a["optimizer"]["state"][0]["exp_avg"].equal(b["optimizer"]["state"][0]["exp_avg"])


def test_two_processes_under_torchrun_make_the_steps_of_one_with_their_joint_batch(snapshot_dir, tiny_config,
                                                                                  tmp_path, one_thread):
    common = ["--epochs", "1", "--eval-split", "", "--stop-after", "4"]
    assert retrieval.main(args(snapshot_dir, tmp_path, tiny_config, *common, "--run-name", "one")) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "trainers.retrieval", *args(snapshot_dir, tmp_path, tiny_config, *common, "--run-name", "two")]
    cmd[cmd.index("--batch-size") + 1] = "16"  # per process: 2 x 16 = the single process's 32
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    two = read_run(tmp_path / "two")["run"]
    assert two["world_size"] == 2 and two["steps_done"] == 4
    a = torch.load(tmp_path / "one" / "checkpoints" / "last.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "two" / "checkpoints" / "last.pt", weights_only=False)["model"]
    # The same steps up to float summation order, which Adam's first steps (about lr x the sign
    # of each gradient) amplify where a gradient is near zero: the two runs' weights differ by a
    # small fraction of how far either moved from the shared initial weights.
    retrieval.set_seed(0)
    start = open_clip.create_model("tiny-rn").state_dict()
    flat = {name: torch.cat([m[k].flatten().float() for k in sorted(a)]) for name, m in
            (("one", a), ("two", b), ("start", start))}
    moved = (flat["one"] - flat["start"]).norm()
    assert moved > 0 and (flat["one"] - flat["two"]).norm() < 0.05 * moved


def run_cli(*argv, cwd=ROOT):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "trainers.retrieval", *argv], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("extra, message", [
    (["--snapshot", "{tmp}/nowhere"], "error: No snapshot folder at"),
    (["--vision", "ViT-Nope-99"], "error: Unknown open_clip model 'ViT-Nope-99'"),
    (["--vision", "RN50", "--pretrained", "openai"], "error: The pretrained weights 'openai' of RN50 are not on this "
                                                      "machine and cannot be downloaded here"),
    (["--vision", "RN50", "--pretrained", "/no/such/file.pt"], "is neither a file nor an open_clip tag of RN50"),
    (["--vision", "RN50", "--text-tower", "hf:klue/roberta-base"], "error: The Hugging Face model 'klue/roberta-base' "
                                                                    "is not on this machine (offline)"),
])
def test_bad_input_stops_with_one_clear_line_and_leaves_no_run(snapshot_dir, tmp_path, extra, message):
    runs = tmp_path / "runs"
    argv = ["--snapshot", str(snapshot_dir), "--runs-root", str(runs), "--epochs", "1"]
    for i, value in enumerate(extra):
        extra[i] = value.replace("{tmp}", str(tmp_path))
    if extra[0] == "--snapshot":
        argv[:2] = extra
    else:
        argv += extra
    done = run_cli(*argv)
    assert done.returncode == 2, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and message in lines[-1], lines[-1]
    assert "Traceback" not in done.stderr
    assert not runs.exists() or not any(runs.iterdir())


def tiny_hf_text_model(folder: Path, texts) -> Path:
    """A 2-layer RoBERTa with a byte-level BPE learned from `texts`, saved as a Hugging Face model
    folder (what --text-tower hf:PATH takes for a Korean encoder such as klue/roberta-base)."""
    transformers = pytest.importorskip("transformers")
    from tokenizers import ByteLevelBPETokenizer

    folder.mkdir(parents=True)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=400, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    bpe.save_model(str(folder))
    tokenizer = transformers.RobertaTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    tokenizer.save_pretrained(folder)
    config = transformers.RobertaConfig(vocab_size=tokenizer.vocab_size, hidden_size=64, num_hidden_layers=2,
                                        num_attention_heads=2, intermediate_size=128, max_position_embeddings=40,
                                        pad_token_id=tokenizer.pad_token_id, type_vocab_size=1)
    transformers.RobertaModel(config).save_pretrained(folder)
    return folder


def test_a_hugging_face_text_tower_from_a_local_folder_trains_and_loads(snapshot_dir, tiny_config, tmp_path, one_thread):
    from trainers import data

    snap = data.open_snapshot(snapshot_dir)
    hf = tiny_hf_text_model(tmp_path / "tiny-roberta", snap.manifest["text"].tolist())
    argv = args(snapshot_dir, tmp_path, tiny_config, "--epochs", "1", "--eval-split", "", "--text-tower", f"hf:{hf}",
                "--run-name", "hf")
    assert retrieval.main(argv) == 0
    info = read_run(tmp_path / "hf")["run"]
    assert info["model"]["text"] == f"hf:{hf}" and info["model"]["open_clip_config"]["text_cfg"]["hf_model_name"] == str(hf)
    model = retrieval.load(tmp_path / "hf")
    assert model.encode_texts(["빨간 동그라미가 있네요", "파란 별이 있어요"]).shape == (2, 64)
    assert model.encode_images([next(data.samples(snap, "test"))["image"]]).shape == (1, 64)
