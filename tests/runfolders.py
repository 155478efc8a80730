"""Run folders written by hand in the trainers' contract (trainers/runs.py: run.json,
metrics.csv, eval.json, checkpoints/, model/, predictions/), for the platform's tests; the
trainers themselves are tested in tests/test_trainers_*."""
from __future__ import annotations

import json
from pathlib import Path

RETRIEVAL_METRICS = {"image_to_text_R@1": 0.24, "image_to_text_R@5": 0.53, "image_to_text_R@10": 0.64,
                     "text_to_image_R@1": 0.21, "text_to_image_R@5": 0.49, "text_to_image_R@10": 0.61}
GENERATIVE_METRICS = {"BLEU-1": 21.3, "BLEU-2": 9.1, "BLEU-3": 4.8, "BLEU-4": 2.7, "METEOR": 8.2, "ROUGE-L": 15.5,
                      "CIDEr": 10.3, "PPL": 29.2}


def run_files(run_id: str = "retrieval-20261129-101500-a1b2c3", *, kind: str = "retrieval", snapshot=("food", 1),
              checksum: str = "0" * 64, status: str = "finished", metrics: dict | None = None,
              tokenizer: str = "kiwi", epochs: int = 2, evaluated: bool = True, fmt=1,
              evaluated_on: tuple | None = None, config: dict | None = None) -> dict[str, bytes]:
    """{relative path: bytes} of a run folder as the trainers write it (`evaluated_on`: the
    (name, version, checksum) trainers.evaluate read, when not the one the run trained on)."""
    name, version = snapshot
    run = {
        "format": fmt, "run_id": run_id, "kind": kind, "status": status,
        "created_at": "2026-11-29T10:15:00+00:00", "finished_at": "2026-11-29T10:45:00+00:00",
        "config": {"epochs": epochs, "batch_size": 32, "lr": 0.0005, "seed": 0, "vision": "ViT-B-32", **(config or {})},
        "snapshot": {"name": name, "version": version, "checksum": checksum, "path": f"/exports/{name}/v{version}"},
        "model": {"vision": "ViT-B-32", "text": "open_clip", "pretrained": None},
        "epochs_done": epochs, "steps_done": epochs * 10, "world_size": 1, "device": "cpu", "git_commit": "abc123",
    }
    lines = ["epoch,step,split,metric,value"]
    for epoch in range(1, epochs + 1):
        lines += [f"{epoch},{epoch * 10 - 5},train,loss,{3.0 / epoch + 0.1:.4f}",
                  f"{epoch},{epoch * 10},train,loss,{3.0 / epoch:.4f}",
                  f"{epoch},{epoch * 10},val,loss,{3.2 / epoch:.4f}"]
    files = {
        "run.json": json.dumps(run, ensure_ascii=False).encode(),
        "metrics.csv": ("\n".join(lines) + "\n").encode(),
        "checkpoints/last.pt": b"x" * 100,
        **{f"checkpoints/epoch-{e}.pt": b"x" * 100 for e in range(1, epochs + 1)},
        "model/open_clip_model.pt": b"y" * 200,
    }
    if evaluated:
        default = RETRIEVAL_METRICS if kind == "retrieval" else GENERATIVE_METRICS
        on = evaluated_on or (name, version, checksum)
        files["eval.json"] = json.dumps({
            "format": 1, "kind": kind, "split": "test", "metrics": default if metrics is None else metrics,
            "signature": {"tokenizer": tokenizer, "references": "all comments of the photo", "bleu": "corpus",
                          "text": f"tok:{tokenizer}|references:all comments of the photo|bleu:corpus"},
            "evaluated_at": "2026-11-29T10:50:00+00:00", "checkpoint": "checkpoints/last.pt",
            "snapshot": {"name": on[0], "version": on[1], "checksum": on[2], "path": f"/exports/{on[0]}/v{on[1]}"},
        }).encode()
        files["predictions/test.jsonl"] = b'{"photo": "a", "replies": []}\n'
    return files


def write_run(root, run_id: str = "retrieval-20261129-101500-a1b2c3", **options) -> Path:
    """A run folder under `root`, named after its run id."""
    folder = Path(root) / run_id
    for rel, data in run_files(run_id, **options).items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return folder
