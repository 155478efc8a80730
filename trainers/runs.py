"""Run folders: what a training run leaves behind, for people, the evaluation and the platform.

    <runs_root>/<run_id>/
      run.json       config, snapshot identity, model, status, progress (format 1)
      metrics.csv    epoch,step,split,metric,value (long format, appended as the run goes)
      tensorboard/   the same scalars as TensorBoard events (when tensorboard is installed)
      checkpoints/   last.pt and epoch-<N>.pt (torch.save of the trainer's state dict)
      model/         the final model (its format is the trainer's)
      eval.json      written by trainers.evaluate; predictions/ by trainers.predict

run.json is rewritten whole through a temporary file and a rename, so a reader never sees half
of it; checkpoints too. `read_run` is what the platform's register_run reads.
"""
from __future__ import annotations

import csv
import json
import logging
import math
import os
import secrets
import subprocess
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger("trainers")

FORMAT = 1
KINDS = ("retrieval", "generative")
STATUSES = ("running", "finished", "failed")
METRICS_HEADER = ["epoch", "step", "split", "metric", "value"]


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _git_commit() -> str | None:
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent, capture_output=True,
                              text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _dump(value) -> bytes:
    return (json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True, default=str) + "\n").encode("utf-8")


class RunFolder:
    """One run's folder. Create with new_run(), reopen with RunFolder.open()."""

    def __init__(self, path):
        self.path = Path(path)
        self._tb = None
        self._tb_tried = False

    @classmethod
    def open(cls, path) -> RunFolder:
        folder = cls(path)
        if not (folder.path / "run.json").is_file():
            raise FileNotFoundError(f"{folder.path} is not a run folder (it holds no run.json).")
        return folder

    # ------------------------------------------------------------ run.json

    @property
    def info(self) -> dict:
        return json.loads((self.path / "run.json").read_text(encoding="utf-8"))

    def update(self, **fields) -> dict:
        info = self.info
        info.update(fields)
        _write_atomic(self.path / "run.json", _dump(info))
        return info

    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def model_dir(self) -> Path:
        path = self.path / "model"
        path.mkdir(exist_ok=True)
        return path

    def finish(self, status: str = "finished") -> dict:
        if status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}.")
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        return self.update(status=status, finished_at=now())

    # ------------------------------------------------------------ metrics

    def log_metrics(self, epoch: int, step: int, split: str, metrics: dict) -> None:
        """Append one row per metric to metrics.csv (and TensorBoard as "<split>/<metric>" at `step`)."""
        path = self.path / "metrics.csv"
        new = not path.exists()
        with open(path, "a", newline="", encoding="utf-8") as f:
            out = csv.writer(f)
            if new:
                out.writerow(METRICS_HEADER)
            for name, value in metrics.items():
                out.writerow([epoch, step, split, name, repr(float(value))])
        tb = self._tensorboard()
        if tb is not None:
            for name, value in metrics.items():
                tb.add_scalar(f"{split}/{name}", float(value), step)
            tb.flush()

    def _tensorboard(self):
        if not self._tb_tried:
            self._tb_tried = True
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                log.info("tensorboard is not installed: metrics go to metrics.csv only.")
            else:
                self._tb = SummaryWriter(str(self.path / "tensorboard"))
        return self._tb

    def metrics(self) -> list[dict]:
        path = self.path / "metrics.csv"
        if not path.exists():
            return []
        with open(path, newline="", encoding="utf-8") as f:
            return [{**row, "epoch": int(row["epoch"]), "step": int(row["step"]), "value": float(row["value"])}
                    for row in csv.DictReader(f)]

    # ------------------------------------------------------------ checkpoints

    def save_checkpoint(self, state: dict, epoch: int | None = None) -> Path:
        """checkpoints/last.pt, and checkpoints/epoch-<N>.pt when `epoch` is given (a hard link to the
        same bytes where the file system allows)."""
        import torch

        folder = self.path / "checkpoints"
        folder.mkdir(exist_ok=True)
        last = folder / "last.pt"
        tmp = folder / ".last.pt.tmp"
        torch.save(state, tmp)
        os.replace(tmp, last)
        if epoch is not None:
            target = folder / f"epoch-{epoch}.pt"
            target.unlink(missing_ok=True)
            try:
                os.link(last, target)
            except OSError:
                torch.save(state, target)
        return last

    def load_checkpoint(self, which="last", map_location="cpu") -> dict:
        import torch

        path = Path(which)
        if not path.is_absolute() and not path.exists():
            path = self.path / "checkpoints" / (f"{which}.pt" if not str(which).endswith(".pt") else str(which))
        if not path.is_file():
            raise FileNotFoundError(f"No checkpoint {path}: the run has saved none yet.")
        return torch.load(path, map_location=map_location, weights_only=False)


def new_run(root, kind: str, config: dict, snapshot, *, run_name: str | None = None, model: dict | None = None,
            world_size: int = 1, device: str = "cpu") -> RunFolder:
    """Create <root>/<run_id>/ with its run.json (status "running"). `snapshot` is a
    trainers.data.Snapshot (or its describe() dict). A run_name that exists is refused."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}.")
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    run_id = run_name or f"{kind}-{stamp}-{secrets.token_hex(3)}"
    if "/" in run_id or run_id in ("", ".", ".."):
        raise ValueError(f"{run_id!r} is not a usable run name.")
    path = Path(root) / run_id
    if path.exists():
        raise FileExistsError(f"{path} exists: choose another --run-name, or --resume it.")
    path.mkdir(parents=True)
    info = {
        "format": FORMAT, "run_id": run_id, "kind": kind, "status": "running", "created_at": now(),
        "finished_at": None, "config": config,
        "snapshot": snapshot.describe() if hasattr(snapshot, "describe") else dict(snapshot),
        "model": model or {}, "epochs_done": 0, "steps_done": 0, "world_size": world_size, "device": device,
        "git_commit": _git_commit(),
    }
    _write_atomic(path / "run.json", _dump(info))
    return RunFolder(path)


def read_run(path) -> dict:
    """What the platform registers: run.json, eval.json when there is one, and the last value of
    each (split, metric) in metrics.csv: {"run": ..., "eval": ... or None, "metrics": {split: {name: value}}}."""
    folder = RunFolder.open(path)
    eval_path = folder.path / "eval.json"
    evaluation = json.loads(eval_path.read_text(encoding="utf-8")) if eval_path.is_file() else None
    last: dict[str, dict[str, float]] = {}
    for row in folder.metrics():
        if math.isfinite(row["value"]):
            last.setdefault(row["split"], {})[row["metric"]] = row["value"]
    return {"run": folder.info, "eval": evaluation, "metrics": last}
