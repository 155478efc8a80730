"""open_clip trains on an export as it is (issue 10, item 6, its strongest proof): a frozen
snapshot (conftest's `frozen_snapshot`: real JPEGs) is exported with export_to_directory, then
open_clip's own training entry point (`open_clip_train.main.main`) runs in a fresh interpreter
(`python -I`: none of our code on its path) on a tiny CLIP on the CPU for one epoch over the
train shards, counting samples from sizes.json (no --train-num-samples), and evaluates on the val
shards. Marked `once`: what it proves does not depend on the database (SQLite run only).
Skipped where open-clip-torch (requirements-ml.txt) is not installed."""
from __future__ import annotations

import importlib.util
import json
import math
import re

import pytest

from datasets.export.layout import ExportOptions
from datasets.export.source import export_to_directory
from datasets.models import SnapshotComment
from tests.conftest import fresh_python

# Looked up, not imported: torch loads only in the subprocess.
pytestmark = [pytest.mark.once,
              pytest.mark.skipif(importlib.util.find_spec("open_clip_train") is None,
                                 reason="open-clip-torch is not installed (requirements-ml.txt)")]

BATCH = 4
# The smallest CLIP open_clip builds: a 2-layer ViT on 32 px images (4 patches of 16 px) and a
# 2-layer text tower over open_clip's default tokenizer (OpenAI's BPE, 49,408 tokens).
TINY = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "head_width": 16, "patch_size": 16},
    "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}

# The wrapper a user would write: register the tiny model, then open_clip's own main().
TRAIN = """
    import json, os, sys, glob
    # No code of ours: neither the working folder nor the repository is on the path.
    assert not any(p in ("", ".") or os.path.isfile(os.path.join(p, "manage.py")) for p in sys.path), sys.path
    import torch
    import open_clip
    from open_clip_train.main import main
    torch.manual_seed(0)
    open_clip.add_model_config(%(configs)r)
    main(%(args)r)
    checkpoint = torch.load(%(checkpoint)r, map_location="cpu", weights_only=False)
    steps = sorted({int(s["step"]) for s in checkpoint["optimizer"]["state"].values()})
    print(json.dumps({"epoch": checkpoint["epoch"], "steps": steps, "cuda": torch.cuda.is_available(),
                      "open_clip": open_clip.__version__}))
"""


def test_open_clip_trains_a_tiny_clip_on_the_export_with_its_own_entry_point(frozen_snapshot, tmp_path):
    out = tmp_path / "export"
    # Small shards, so the train split has enough for a data loader worker (open_clip asserts
    # shards >= workers without --dataset-resampled).
    export_to_directory(frozen_snapshot, out, ExportOptions(max_samples=8))
    sizes = json.loads((out / "train" / "sizes.json").read_text())
    train = SnapshotComment.objects.filter(snapshot=frozen_snapshot, split="train").count()
    val = SnapshotComment.objects.filter(snapshot=frozen_snapshot, split="val").count()
    assert sum(sizes.values()) == train == 24 and len(sizes) >= 2
    val_shards = sorted(p.name for p in (out / "val").glob("shard-*.tar"))

    configs = tmp_path / "model_configs"
    configs.mkdir()
    (configs / "tiny-clip-test.json").write_text(json.dumps(TINY))
    logs = tmp_path / "logs"
    args = [
        "--train-data", str(out / "train" / f"shard-{{000000..{len(sizes) - 1:06d}}}.tar"),
        "--val-data", str(out / "val" / f"shard-{{000000..{len(val_shards) - 1:06d}}}.tar"),
        "--dataset-type", "webdataset", "--model", "tiny-clip-test", "--batch-size", str(BATCH),
        "--epochs", "1", "--workers", "1", "--device", "cpu", "--precision", "fp32", "--lr", "1e-3",
        "--warmup", "1", "--logs", str(logs), "--name", "proof", "--report-to", "", "--save-frequency", "1",
        "--log-every-n-steps", "1", "--seed", "0",
    ]
    checkpoint = logs / "proof" / "checkpoints" / "epoch_1.pt"
    ran = fresh_python(TRAIN % {"configs": str(configs), "args": args, "checkpoint": str(checkpoint)}, tmp_path,
                       tmp_path, timeout=600, env={"CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"})

    # open_clip counted the samples from sizes.json and trained whole batches of them on the CPU.
    steps = train // BATCH
    assert ran["cuda"] is False and ran["epoch"] == 1
    assert ran["steps"] == [steps], "every parameter was updated once per batch"
    log = (logs / "proof" / "out.log").read_text()
    assert "Device cpu" in log
    done = re.findall(r"Train Epoch: 0 \[\s*(\d+)/(\d+) \((\d+)%\)\].*?Contrastive_loss: (\S+)", log)
    assert len(done) == steps
    assert done[-1][:3] == (str(steps * BATCH), str(steps * BATCH), "100")
    assert all(math.isfinite(float(loss)) for *_, loss in done)
    # It evaluated on every val sample (one image-text pair each) after the epoch.
    results = [json.loads(line) for line in (logs / "proof" / "checkpoints" / "results.jsonl").read_text().splitlines()]
    assert [(r["epoch"], r["num_samples"]) for r in results] == [(1, val)]
    assert math.isfinite(results[0]["clip_val_loss"])
    assert 0 <= results[0]["image_to_text_R@1"] <= 1
