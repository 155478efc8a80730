"""The generative baseline (trainers/generative.py, issue 13 item 3) on the generated learnable
snapshot (tests/trainset.py: coloured shapes with Korean comments): a tiny ClipCap (a 2-layer ViT
from an open_clip config, an MLP mapper, a 2-layer GPT-2 with a byte-level BPE built from the
training comments) trained on the CPU for a few seconds says more of the right words than the
most common training comment does, and is less perplexed than a unigram model; every decoding
strategy answers; a resumed run takes the same next steps; two processes (torchrun, gloo) train one
run; a missing model is one clear line.
Marked `once`: nothing here touches the database."""
from __future__ import annotations

import collections
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("open_clip")
pytest.importorskip("transformers")

from tests.trainset import write_learnable_snapshot  # noqa: E402
from trainers import data, generative, runs  # noqa: E402

pytestmark = pytest.mark.once

# A 2-layer ViT on the 64 px photos (16 patches); open_clip builds a text tower too (unused here).
VISION = {"embed_dim": 64, "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "head_width": 32,
                                          "patch_size": 16},
          "text_cfg": {"context_length": 16, "vocab_size": 1000, "width": 32, "heads": 2, "layers": 1}}
EPOCHS = 6


def options(snapshot, root, name, *extra, vision=True):
    config = Path(snapshot).parent.parent / "tiny-vit-gen.json"  # the model's name is the file's
    if not config.exists():
        config.write_text(json.dumps(VISION))
    return ["--snapshot", str(snapshot), "--runs-root", str(root), "--run-name", name,
            *(["--config", str(config)] if vision else []), "--lm", "tiny",
            "--prefix-length", "4", "--epochs", str(EPOCHS), "--batch-size", "16", "--lr", "2e-3",
            "--warmup", "10", "--workers", "0", "--shuffle-buffer", "100", "--log-every", "1", *extra]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # Tiny matrices: threads only fight over the CI's two cores (x20 slower when they do).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory):
    return write_learnable_snapshot(tmp_path_factory.mktemp("snap"), photos=200, comments_per_photo=2)


@pytest.fixture(scope="module")
def trained(snapshot, tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    assert generative.main(options(snapshot, root, "full")) == 0
    return root / "full"


@pytest.fixture(scope="module")
def test_photos(snapshot):
    return list(data.samples(data.open_snapshot(snapshot), "test", per_image=True))


def test_tiny_model_beats_the_constant_reply(trained, snapshot, test_photos):
    sacrebleu = pytest.importorskip("sacrebleu")  # requirements-dev.txt
    model = generative.load(trained)
    snap = data.open_snapshot(snapshot)
    train_texts = snap.manifest.loc[snap.manifest["split"] == "train", "text"]
    constant = train_texts.value_counts().index[0]  # the most common training comment, for every photo
    replies = model.generate([p["image"] for p in test_photos])
    references = [[p["texts"][k] for p in test_photos] for k in range(2)]
    for order in (1, 4):
        bleu = sacrebleu.BLEU(max_ngram_order=order)
        ours = bleu.corpus_score(replies, references).score
        baseline = bleu.corpus_score([constant] * len(test_photos), references).score
        assert ours > baseline + 5, (order, ours, baseline, replies[:5])

    # Perplexity per token of every test comment, against a unigram model of the training
    # comments over the same tokens (add-one smoothed): the photo must tell the LM something.
    images = [p["image"] for p in test_photos for _ in p["texts"]]
    texts = [t for p in test_photos for t in p["texts"]]
    ppl = model.perplexity(images, texts)
    counts = collections.Counter(i for ids in model.tokenize(list(train_texts)).tolist() for i in ids if i >= 0)
    total, vocab = sum(counts.values()), len(model.tokenizer)
    tokens = [i for ids in model.tokenize(texts).tolist() for i in ids if i >= 0]
    unigram = math.exp(-sum(math.log((counts[i] + 1) / (total + vocab)) for i in tokens) / len(tokens))
    assert ppl < unigram / 3, (ppl, unigram)


def test_the_run_folder_holds_what_the_platform_reads(trained, snapshot):
    run = runs.read_run(trained)
    info = run["run"]
    assert info["kind"] == "generative" and info["status"] == "finished"
    assert info["epochs_done"] == EPOCHS and info["steps_done"] == EPOCHS * 20  # 320 comments / 16
    assert info["snapshot"]["checksum"] == data.open_snapshot(snapshot).checksum
    assert info["model"] == {"vision": "tiny-vit-gen", "text": "tiny", "pretrained": None}
    assert info["config"]["mapper"] == "mlp" and info["config"]["freeze_lm"] is False
    assert run["metrics"]["val"]["perplexity"] < 5
    assert {p.name for p in (trained / "checkpoints").iterdir()} >= {"last.pt", "epoch-1.pt", f"epoch-{EPOCHS}.pt"}
    # The model folder loads on its own (no tokenizer training, no download).
    assert (trained / "model" / "model.pt").is_file()
    assert generative.load(trained / "model").spec == generative.load(trained).spec


def test_every_decoding_strategy_answers(trained, test_photos):
    model = generative.load(trained)
    images = [p["image"] for p in test_photos[:5]]
    for strategy in ("greedy", "beam", "nucleus"):
        replies = model.generate(images, strategy=strategy, max_new_tokens=12)
        assert len(replies) == 5 and all(isinstance(r, str) and r for r in replies), (strategy, replies)
    assert model.generate(images, strategy="nucleus", seed=3) == model.generate(images, strategy="nucleus", seed=3)
    with pytest.raises(ValueError, match="unknown strategy"):
        model.generate(images, strategy="topk")


def test_the_repetition_penalty_breaks_a_loop(trained, test_photos):
    # An untrained LM repeats one token; the penalty makes it say something else.
    torch.manual_seed(0)
    model = generative.build(generative.load(trained).spec, trained / "model" / "lm").eval()
    images = [p["image"] for p in test_photos[:3]]
    plain = model.generate(images, repetition_penalty=1.0, max_new_tokens=12)
    penalised = model.generate(images, repetition_penalty=2.0, max_new_tokens=12)
    assert plain != penalised
    assert sum(len(set(r)) for r in penalised) > sum(len(set(r)) for r in plain), (plain, penalised)


def losses(run_dir):
    return {r["step"]: r["value"] for r in runs.RunFolder.open(run_dir).metrics()
            if r["split"] == "train" and r["metric"] == "batch_loss"}


def test_resume_takes_the_same_next_steps(trained, snapshot, tmp_path):
    assert generative.main(options(snapshot, tmp_path, "cut", "--stop-after", "3")) == 0
    assert runs.RunFolder.open(tmp_path / "cut").info["status"] == "running"
    assert generative.main(["--resume", str(tmp_path / "cut"), "--stop-after", "5"]) == 0
    full, cut = losses(trained), losses(tmp_path / "cut")
    assert sorted(cut) == [1, 2, 3, 4, 5]
    assert [cut[s] for s in (4, 5)] == [full[s] for s in (4, 5)]


def test_transformer_mapper_keeps_the_lm_frozen(snapshot, tmp_path):
    assert generative.main(options(snapshot, tmp_path, "tr", "--mapper", "transformer", "--mapper-layers", "1",
                                   "--stop-after", "1")) == 0
    before = runs.RunFolder.open(tmp_path / "tr").load_checkpoint("last")["model"]
    assert generative.main(["--resume", str(tmp_path / "tr"), "--stop-after", "3"]) == 0
    after = runs.RunFolder.open(tmp_path / "tr").load_checkpoint("last")["model"]
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("lm."))
    assert not all(torch.equal(before[k], after[k]) for k in before if k.startswith("mapper."))
    assert not all(torch.equal(before[k], after[k]) for k in before if k.startswith("visual."))


@pytest.mark.parametrize("args, says", [
    (["--lm", "someone/no-such-gpt2"], "The language model 'someone/no-such-gpt2' is not on this machine"),
    (["--vision", "ViT-B-32", "--pretrained", "openai"], "weights 'openai' of ViT-B-32 are not on this machine"),
    (["--config", "{not json"], "--config is not valid JSON"),
])
def test_a_missing_model_is_one_clear_line(snapshot, tmp_path, capsys, args, says):
    assert generative.main([*options(snapshot, tmp_path, "x", vision=False), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert says in err and err.startswith("error:") and "\n" not in err, err
    assert not (tmp_path / "x").exists()  # nothing half-written


def test_a_saved_lm_folder_and_an_image_checkpoint_file_are_loaded(snapshot, tmp_path):
    """The offline shape of the real case (--lm skt/kogpt2-base-v2 saved to a folder, open_clip
    weights in a file): both are read from disk, and with both frozen they are what the run holds."""
    import open_clip
    from transformers import GPT2Config, GPT2LMHeadModel

    texts = data.open_snapshot(snapshot).manifest["text"].tolist()
    tokenizer = generative.tiny_tokenizer(texts)
    lm = GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_layer=1, n_embd=32, n_head=2,
                                    eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.eos_token_id))
    lm.save_pretrained(tmp_path / "lm")
    tokenizer.save_pretrained(tmp_path / "lm")
    open_clip.add_model_config(Path(snapshot).parent.parent / "tiny-vit-gen.json")
    clip = open_clip.create_model("tiny-vit-gen")
    torch.save(clip.state_dict(), tmp_path / "clip.pt")

    assert generative.main([*options(snapshot, tmp_path, "local", "--stop-after", "1"), "--lm", str(tmp_path / "lm"),
                            "--pretrained", str(tmp_path / "clip.pt"), "--freeze-lm", "--freeze-vision"]) == 0
    model = generative.load(tmp_path / "local")  # before model.pt: from checkpoints/last.pt
    assert all(torch.equal(v, lm.state_dict()[k]) for k, v in model.lm.state_dict().items())
    assert all(torch.equal(v, clip.visual.state_dict()[k]) for k, v in model.visual.state_dict().items())
    assert runs.RunFolder.open(tmp_path / "local").info["model"]["text"] == str(tmp_path / "lm")



def test_two_processes_train_one_run_with_torchrun(snapshot, tmp_path, test_photos):
    """DistributedDataParallel on the CPU (gloo): each process takes half of every step's comments,
    rank 0 writes the one run folder."""
    args = options(snapshot, tmp_path, "ddp", "--epochs", "1")
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                           "-m", "trainers.generative", *args], cwd=Path(__file__).resolve().parent.parent,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    info = runs.RunFolder.open(tmp_path / "ddp").info
    assert info["world_size"] == 2 and info["status"] == "finished" and info["steps_done"] == 10  # 320 / (16 x 2)
    assert len(generative.load(tmp_path / "ddp").generate([test_photos[0]["image"]])) == 1
