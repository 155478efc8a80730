"""Read and check a run folder (the trainers' contract, trainers/runs.py) from a local path or
s3://bucket/prefix, into a `RunData` the services store. Nothing here writes: a folder that is
refused leaves no trace, and reading happens before any row is written.

    run.json     {"format": 1, "run_id", "kind", "status", "created_at", "finished_at", "config",
                  "snapshot": {"name", "version", "checksum", "path"}, "model", "epochs_done",
                  "steps_done", "world_size", "device", "git_commit"}
    metrics.csv  epoch,step,split,metric,value (long format; the last value of each epoch is kept)
    eval.json    {"format": 1, "split", "metrics", "signature", "evaluated_at", "checkpoint"}
    checkpoints/ model/ predictions/   listed (names and sizes), never read
"""
from __future__ import annotations

import csv
import io
import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from django.utils.dateparse import parse_datetime
from django.utils.timezone import is_naive, make_aware

from . import metrics as run_metrics
from .errors import RunError

KNOWN_FORMATS = (1,)
KINDS = ("retrieval", "generative")
STATUSES = ("running", "finished", "failed")
LISTED = ("checkpoints", "model", "predictions")
MAX_JSON_BYTES = 4 * 1024**2
MAX_CSV_BYTES = 64 * 1024**2
MAX_LISTED = 1000  # files named per listed folder
MAX_EPOCH_ROWS = 2000
# trainers/runs.py: "<kind>-<UTC stamp>-<6 hex>", or any --run-name that is a folder's name.
RUN_ID = re.compile(r"(?!\.\.?$)[^/\\\x00-\x1f\x7f]{1,200}")


@dataclass
class RunData:
    """What a run folder says, checked: the fields of a TrainingRun."""

    location: str
    run_id: str
    kind: str
    status: str
    snapshot: dict
    config: dict = field(default_factory=dict)
    model_info: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    scores: dict = field(default_factory=dict)
    evaluation: dict = field(default_factory=dict)
    epochs: dict = field(default_factory=dict)
    files: dict = field(default_factory=dict)
    epochs_done: int = 0
    steps_done: int = 0
    world_size: int = 1
    device: str = ""
    git_commit: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None


# ---------------------------------------------------------------- where the files are


class _Local:
    def __init__(self, location: str):
        self.root = Path(location)
        self.location = location
        if not self.root.is_dir():
            raise RunError("not_found", location=location)

    def read(self, name: str, limit: int) -> bytes | None:
        path = self.root / name
        try:
            if not path.is_file():
                return None
            if path.stat().st_size > limit:
                raise RunError("too_large", file=name, location=self.location, limit=limit)
            return path.read_bytes()
        except OSError as exc:
            raise RunError("read_failed", location=f"{self.location}/{name}", detail=exc.strerror or str(exc)) from None

    def listing(self, folder: str) -> list[dict]:
        base = self.root / folder
        if not base.is_dir():
            return []
        out = []
        for path in sorted(base.rglob("*")):
            if path.is_file() and not path.name.startswith("."):
                out.append({"path": str(path.relative_to(self.root)), "size": path.stat().st_size})
                if len(out) >= MAX_LISTED:
                    break
        return out


class _S3:
    def __init__(self, location: str):
        from ..export.targets import parse_s3
        from ..readers import s3_client

        self.location = location.rstrip("/")
        try:
            self.bucket, prefix = parse_s3(self.location)
        except ValueError:
            raise RunError("bad_location") from None
        if not self.bucket:
            raise RunError("bad_location")
        self.prefix = prefix.strip("/")
        self.client = s3_client()

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def _failed(self, exc: Exception) -> RunError:
        from ..readers import _s3_failure

        reason = _s3_failure(exc, self.client.meta.endpoint_url or "AWS S3", "read")
        return RunError("s3_failed", location=self.location, detail=reason.as_dict())

    def read(self, name: str, limit: int) -> bytes | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(name))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise self._failed(exc) from None
        except BotoCoreError as exc:
            raise self._failed(exc) from None
        if response.get("ContentLength", 0) > limit:
            response["Body"].close()
            raise RunError("too_large", file=name, location=self.location, limit=limit)
        return response["Body"].read()

    def listing(self, folder: str) -> list[dict]:
        from botocore.exceptions import BotoCoreError, ClientError

        prefix = self._key(folder) + "/"
        out = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    if obj["Key"].endswith("/"):
                        continue
                    rel = obj["Key"][len(self._key("")):] if self.prefix else obj["Key"]
                    out.append({"path": rel.lstrip("/"), "size": obj.get("Size", 0)})
                    if len(out) >= MAX_LISTED:
                        return out
        except (ClientError, BotoCoreError) as exc:
            raise self._failed(exc) from None
        return sorted(out, key=lambda f: f["path"])


def _open(location: str):
    return _S3(location) if location.startswith("s3://") else _Local(location)


# ---------------------------------------------------------------- the files


def _json(raw: bytes, location: str, code: str) -> dict:
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=lambda c: None)
    except UnicodeDecodeError:
        raise RunError(code, location=location, detail="not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise RunError(code, location=location, detail=f"{exc.msg} at line {exc.lineno}") from None
    if not isinstance(data, dict):
        raise RunError(code, location=location, detail="not a JSON object")
    return data


def _time(value, location: str, name: str) -> datetime | None:
    if value in (None, ""):
        return None
    parsed = parse_datetime(value) if isinstance(value, str) else None
    if parsed is None:
        raise RunError("bad_field", location=location, field=name, problem="is not an ISO 8601 date and time")
    return make_aware(parsed, UTC) if is_naive(parsed) else parsed


def _whole(run: dict, name: str, location: str, default: int) -> int:
    value = run.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 0 or value > 2**62:
        raise RunError("bad_field", location=location, field=name, problem="is not a whole number")
    return value


def _text(value, limit: int) -> str:
    return "" if value is None else str(value)[:limit]


def parse_run_json(raw: bytes, location: str) -> dict:
    """run.json checked: the fields a TrainingRun needs (RunError names the first one wrong)."""
    run = _json(raw, location, "bad_run_json")
    fmt = run.get("format")
    if fmt not in KNOWN_FORMATS or isinstance(fmt, bool):
        raise RunError("unknown_format", location=location, format=json.dumps(fmt),
                       known=", ".join(map(str, KNOWN_FORMATS)))
    run_id = run.get("run_id")
    if not isinstance(run_id, str) or not RUN_ID.fullmatch(run_id):
        raise RunError("bad_field", location=location, field="run_id",
                       problem="is missing or not a folder name (at most 200 characters, no slash)")
    if run.get("kind") not in KINDS:
        raise RunError("bad_field", location=location, field="kind", problem="is not retrieval or generative")
    if run.get("status") not in STATUSES:
        raise RunError("bad_field", location=location, field="status", problem="is not running, finished or failed")
    snapshot = run.get("snapshot")
    if not isinstance(snapshot, dict):
        raise RunError("bad_field", location=location, field="snapshot", problem="is missing")
    name, version = snapshot.get("name"), snapshot.get("version")
    if not isinstance(name, str) or not name.strip():
        raise RunError("bad_field", location=location, field="snapshot.name", problem="is missing")
    if isinstance(version, str) and version.lstrip("v").isdecimal():
        version = int(version.lstrip("v"))
    if isinstance(version, bool) or not isinstance(version, int) or not 0 < version < 2**31:
        raise RunError("bad_field", location=location, field="snapshot.version", problem="is not a version number")
    checksum = snapshot.get("checksum") or ""
    if not isinstance(checksum, str) or len(checksum) > 128:
        raise RunError("bad_field", location=location, field="snapshot.checksum", problem="is not a checksum")
    for key in ("config", "model"):
        if run.get(key) is not None and not isinstance(run[key], dict):
            raise RunError("bad_field", location=location, field=key, problem="is not a JSON object")
    return {
        "run_id": run_id, "kind": run["kind"], "status": run["status"],
        "snapshot": {"name": name.strip()[:200], "version": version, "checksum": checksum.lower(),
                     "path": _text(snapshot.get("path"), 1000)},
        "config": run.get("config") or {}, "model_info": run.get("model") or {},
        "epochs_done": _whole(run, "epochs_done", location, 0), "steps_done": _whole(run, "steps_done", location, 0),
        "world_size": _whole(run, "world_size", location, 1) or 1,
        "device": _text(run.get("device"), 40), "git_commit": _text(run.get("git_commit"), 64),
        "started_at": _time(run.get("created_at"), location, "created_at"),
        "finished_at": _time(run.get("finished_at"), location, "finished_at"),
    }


def parse_eval_json(raw: bytes, location: str) -> tuple[dict, dict]:
    """(metrics as written, the rest) of eval.json."""
    data = _json(raw, location, "bad_eval_json")
    fmt = data.get("format", 1)
    if fmt not in KNOWN_FORMATS or isinstance(fmt, bool):
        raise RunError("bad_eval_json", location=location, detail=f"format {json.dumps(fmt)} is not one this "
                                                                  f"platform reads")
    found = data.get("metrics")
    if not isinstance(found, dict):
        raise RunError("bad_eval_json", location=location, detail="it has no metrics object")
    if data.get("signature") is not None and not isinstance(data["signature"], dict):
        raise RunError("bad_eval_json", location=location, detail="its signature is not a JSON object")
    rest = {k: v for k, v in data.items() if k not in ("metrics", "format")}
    return found, rest


def parse_metrics_csv(raw: bytes, location: str) -> dict:
    """metrics.csv as a per-epoch table: one row per epoch, one column per split/metric (the last
    value logged in that epoch)."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise RunError("bad_metrics_csv", location=location, detail="not UTF-8 text") from None
    reader = csv.DictReader(io.StringIO(text))
    need = {"epoch", "step", "split", "metric", "value"}
    if not reader.fieldnames or not need <= set(reader.fieldnames):
        raise RunError("bad_metrics_csv", location=location,
                       detail="its header is not epoch,step,split,metric,value")
    columns: dict[str, None] = {}
    epochs: dict[int, dict] = {}
    for line, row in enumerate(reader, start=2):
        try:
            epoch, step, value = int(row["epoch"]), int(row["step"]), float(row["value"])
        except (TypeError, ValueError):
            raise RunError("bad_metrics_csv", location=location, detail=f"line {line} has no numbers where "
                                                                         f"epoch, step and value go") from None
        if not math.isfinite(value):
            value = None
        name = f"{row['split']}/{row['metric']}" if row.get("split") else str(row["metric"])
        columns.setdefault(name, None)
        entry = epochs.setdefault(epoch, {"epoch": epoch, "step": step, "values": {}})
        entry["step"] = max(entry["step"], step)
        entry["values"][name] = value
    names = list(columns)
    rows = [{"epoch": e["epoch"], "step": e["step"], "values": [e["values"].get(n) for n in names]}
            for e in sorted(epochs.values(), key=lambda e: e["epoch"])]
    return {"columns": names, "rows": rows[-MAX_EPOCH_ROWS:]} if rows else {}


def read_run_folder(location: str) -> RunData:
    """Everything a run folder says, checked (RunError with a clear reason when it cannot be read
    or is not a run folder of a format this platform knows)."""
    source = _open(location)
    raw = source.read("run.json", MAX_JSON_BYTES)
    if raw is None:
        raise RunError("no_run_json", location=source.location)
    run = parse_run_json(raw, source.location)
    data = RunData(location=source.location, **run)
    raw = source.read("eval.json", MAX_JSON_BYTES)
    if raw is not None:
        data.metrics, data.evaluation = parse_eval_json(raw, source.location)
        data.scores = run_metrics.scores(data.metrics)
    raw = source.read("metrics.csv", MAX_CSV_BYTES)
    if raw is not None:
        data.epochs = parse_metrics_csv(raw, source.location)
    data.files = {folder: source.listing(folder) for folder in LISTED}
    return data
