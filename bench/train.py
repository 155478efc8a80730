"""Training throughput (issue 13, item 9), as ratios against baselines measured in the same run:

1. Our retrieval trainer (python -m trainers.retrieval) against open_clip's own training entry
   point (open_clip_train.main, --dataset-type webdataset) on the same shards, the same model
   config, batch size, optimizer and precision: training samples per second, the median over
   steps after the first few (each side's own per-step log: time from one step's end to the
   next, data waits included). Aim: ratio >= 1.0.
2. Our data loader (trainers.data.loader: shard order, shuffle buffer, decode, open_clip's
   preprocess, tokenizer, batches) against decoding the same tars directly (tarfile + PIL + the
   same preprocess and tokenizer, one pass, no shuffling): samples per second.

The shards are tests/trainset.py's generated snapshot, written with the export's own layout.
Run: .venv/bin/python bench/train.py [--photos 600] [--batch-size 32] [--epochs 1] [--workers 1]
     [--threads 1] [--size 64] [--config JSON] [--device cpu]
Both trainers run in fresh interpreters with the same environment (OMP_NUM_THREADS=--threads).
"""
from __future__ import annotations

import argparse
import io
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# A small ViT and text transformer (open_clip's own classes): big enough that the model, not
# Python overhead, is most of a step on the CPU, small enough for a minute of CPU.
SMALL = {"embed_dim": 128,
         "vision_cfg": {"image_size": 64, "layers": 4, "width": 128, "head_width": 32, "patch_size": 8},
         "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 128, "heads": 4, "layers": 4}}

OPEN_CLIP = """
import sys, torch, open_clip
from open_clip_train.main import main
torch.manual_seed(0)
open_clip.add_model_config(sys.argv[1])
main(sys.argv[2:])
"""


def rates(text: str, pattern: str, skip: int) -> list[float]:
    found = [float(x) for x in re.findall(pattern, text)]
    return found[skip:] if len(found) > skip else found


def run(cmd, env, cwd) -> tuple[str, float]:
    """The command's output, and the CPU seconds it and its children (loader workers) used."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=1800)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"{cmd[:4]} failed:\n{done.stderr[-3000:]}")
    return done.stderr + done.stdout, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def bench_trainers(args, snapshot: Path, config: Path, tmp: Path, env: dict) -> dict:
    from trainers import data

    snap = data.open_snapshot(snapshot)
    common = dict(batch=args.batch_size, epochs=args.epochs, workers=args.workers, lr="5e-4", warmup="10")
    ours_cmd = [sys.executable, "-m", "trainers.retrieval", "--snapshot", str(snapshot), "--runs-root",
                str(tmp / "runs"), "--config", str(config), "--batch-size", str(common["batch"]), "--epochs",
                str(common["epochs"]), "--workers", str(common["workers"]), "--lr", common["lr"], "--warmup",
                common["warmup"], "--wd", "0.2", "--shuffle-buffer", "1000", "--eval-split", "", "--log-every", "1",
                "--device", args.device, *(["--amp"] if args.amp else [])]
    train = snap.shards("train")
    theirs_cmd = [sys.executable, "-c", textwrap.dedent(OPEN_CLIP), str(config),
                  "--train-data", str(Path(train[0]).parent / f"shard-{{000000..{len(train) - 1:06d}}}.tar"),
                  "--dataset-type", "webdataset", "--model", config.stem, "--batch-size", str(common["batch"]),
                  "--epochs", str(common["epochs"]), "--workers", str(common["workers"]), "--lr", common["lr"],
                  "--warmup", common["warmup"], "--wd", "0.2", "--device", args.device,
                  "--precision", "amp" if args.amp else "fp32", "--report-to", "", "--save-frequency", "0",
                  "--log-every-n-steps", "1", "--seed", "0", "--logs", str(tmp / "logs")]
    ours, theirs, cpu_ours, cpu_theirs = [], [], [], []
    for i in range(args.repeat):  # alternated, so a noisy neighbour slows both alike
        out, cpu = run(ours_cmd + ["--run-name", f"ours-{i}"], env, ROOT)
        ours += rates(out, r"loss \S+ lr \S+ logit scale \S+ ([\d.]+) samples/s", 3)
        cpu_ours.append(cpu)
        _, cpu = run(theirs_cmd + ["--name", f"theirs-{i}"], env, tmp)
        log = (tmp / "logs" / f"theirs-{i}" / "out.log").read_text()
        theirs += rates(log, r"Batch \(t\): [\d.]+, ([\d.]+)/s,", 3)
        cpu_theirs.append(cpu)
    return {"ours": statistics.median(ours), "open_clip": statistics.median(theirs), "steps": (len(ours), len(theirs)),
            "cpu_ours": statistics.median(cpu_ours), "cpu_open_clip": statistics.median(cpu_theirs)}


def bench_loader(args, snapshot: Path, config: Path, tmp: Path) -> dict:
    import open_clip
    import torch
    from PIL import Image

    from trainers import data

    torch.set_num_threads(args.threads)
    open_clip.add_model_config(config)
    _, preprocess, _ = open_clip.create_model_and_transforms(config.stem)
    tokenizer = open_clip.get_tokenizer(config.stem)
    snap = data.open_snapshot(snapshot)
    n = snap.size("train")

    def direct():
        images, texts, count = [], [], 0
        for url in snap.shards("train"):
            with tarfile.open(url, "r|") as tar:  # streaming, as a shard reader reads
                for member in tar:
                    raw = tar.extractfile(member).read()
                    if member.name.endswith(".jpg"):
                        with Image.open(io.BytesIO(raw)) as img:
                            images.append(preprocess(img.convert("RGB")))
                    elif member.name.endswith(".txt"):
                        texts.append(raw.decode("utf-8"))
                    if len(images) == args.batch_size and len(texts) == args.batch_size:
                        torch.stack(images), tokenizer(texts)
                        count += len(images)
                        images, texts = [], []
        return count

    def ours(workers):
        count = 0
        for batch in data.loader(snap, "train", preprocess, tokenizer, args.batch_size, shuffle_buffer=1000, seed=0,
                                 num_workers=workers):
            count += len(batch["image_id"])
        return count

    result = {}
    for name, fn in (("direct", direct), ("loader", lambda: ours(0)), ("loader_workers", lambda: ours(args.workers))):
        times = []
        for _ in range(args.repeat + 1):
            start = time.perf_counter()
            count = fn()
            times.append(time.perf_counter() - start)
        result[name] = count / statistics.median(times[1:])  # the first pass warms the page cache
    result["samples"] = n
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--photos", type=int, default=600)
    p.add_argument("--size", type=int, default=64, help="photo side in pixels")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--amp", action="store_true")
    p.add_argument("--config", help="an open_clip model config (JSON file); default a small ViT")
    p.add_argument("--only", choices=("trainers", "loader"))
    args = p.parse_args()

    from tests.trainset import write_learnable_snapshot

    tmp = Path(tempfile.mkdtemp(prefix="bench-train-"))
    snapshot = write_learnable_snapshot(tmp / "snap", photos=args.photos, comments_per_photo=2, size=args.size,
                                        max_samples=64)
    config = tmp / "bench-clip.json"
    config.write_text(Path(args.config).read_text() if args.config else json.dumps(SMALL))
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    if args.device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    print(f"snapshot: {snapshot} ({args.photos} photos of {args.size} px); batch {args.batch_size}, "
          f"{args.epochs} epoch(s), {args.workers} loader worker(s), {args.threads} thread(s), device {args.device}")
    if args.only != "trainers":
        r = bench_loader(args, snapshot, config, tmp)
        print(f"data: direct tar decode {r['direct']:.1f} samples/s | our loader {r['loader']:.1f} samples/s "
              f"(ratio {r['loader'] / r['direct']:.2f}) | with {args.workers} worker(s) {r['loader_workers']:.1f} "
              f"samples/s (ratio {r['loader_workers'] / r['direct']:.2f})")
    if args.only != "loader":
        r = bench_trainers(args, snapshot, config, tmp, env)
        print(f"training: ours {r['ours']:.1f} samples/s | open_clip_train {r['open_clip']:.1f} samples/s | "
              f"ratio {r['ours'] / r['open_clip']:.2f} (median over {r['steps'][0]} and {r['steps'][1]} steps)")
        print(f"training CPU seconds per run, start-up and loader workers included (less is better): ours "
              f"{r['cpu_ours']:.1f} | open_clip_train {r['cpu_open_clip']:.1f} | ratio open_clip/ours "
              f"{r['cpu_open_clip'] / r['cpu_ours']:.2f}")


if __name__ == "__main__":
    main()
