"""Register, re-register and remove training runs. A run is one row per `run_id`: registering
the same run again (after more epochs, or once eval.json is written, or from its copy on S3)
reads the folder again and updates the row. The folder is read and checked first; the row is
written in one transaction, so a refused folder leaves nothing behind."""
from __future__ import annotations

import os
from pathlib import Path

from django.conf import settings
from django.db import transaction

from ..models import ExportStatus, RunSnapshotProblem, Snapshot, TrainingRun
from .errors import RunError
from .folder import RunData, read_run_folder


def runs_root() -> Path:
    return Path(settings.RUNS["ROOT"])


def resolve_location(location: str | None, *, trusted: bool = False) -> str:
    """The folder as stored: 's3://bucket/prefix' or an absolute local path. From the web (not
    `trusted`) a local folder lies under settings.RUNS["ROOT"] (a relative one is taken from
    there); the management command, run by the operator, may name any folder."""
    location = (location or "").strip()
    if not location or "\x00" in location:
        raise RunError("bad_location")
    if location.startswith("s3://"):
        bucket, _, prefix = location[len("s3://"):].partition("/")
        prefix = prefix.strip("/")
        if not bucket or "//" in prefix or any(p in (".", "..") for p in prefix.split("/")):
            raise RunError("bad_location")
        return f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
    if "://" in location:
        raise RunError("bad_location")
    path = Path(location)
    if trusted:
        return str(Path(os.path.normpath(Path.cwd() / path)))
    root = runs_root().resolve()
    path = (path if path.is_absolute() else root / path).resolve()
    if root not in path.parents:
        raise RunError("outside_root", root=str(root), path=str(path))
    return str(path)


def match_snapshot(snapshot: dict) -> tuple[Snapshot | None, str]:
    """The snapshot version a run's run.json names, and "" when its checksum is that of one of
    the version's finished exports (SHA256SUMS); else (None, why: RunSnapshotProblem)."""
    found = Snapshot.objects.filter(name=snapshot["name"], version=snapshot["version"]).first()
    if found is None:
        return None, RunSnapshotProblem.UNKNOWN
    checksums = set(found.exports.filter(status=ExportStatus.DONE).exclude(sums_sha256="")
                    .values_list("sums_sha256", flat=True))
    if snapshot["checksum"] and snapshot["checksum"] in checksums:
        return found, RunSnapshotProblem.NONE
    return None, RunSnapshotProblem.CHECKSUM


def save_run(data: RunData, user=None) -> tuple[TrainingRun, bool]:
    """Store what a run folder said (a new row, or the run's row updated): (run, created)."""
    snapshot, problem = match_snapshot(data.snapshot)
    values = {
        "kind": data.kind, "status": data.status, "location": data.location, "snapshot": snapshot,
        "snapshot_name": data.snapshot["name"], "snapshot_version": data.snapshot["version"],
        "snapshot_checksum": data.snapshot["checksum"], "snapshot_path": data.snapshot["path"],
        "snapshot_problem": problem, "config": data.config, "model_info": data.model_info,
        "metrics": data.metrics, "scores": data.scores, "evaluation": data.evaluation, "epochs": data.epochs,
        "files": data.files, "epochs_done": data.epochs_done, "steps_done": data.steps_done,
        "world_size": data.world_size, "device": data.device, "git_commit": data.git_commit,
        "started_at": data.started_at, "finished_at": data.finished_at,
    }
    # One row per run_id, also when two registrations of one run race (update_or_create takes
    # the row's lock, and retries a create that lost to the other's as an update).
    with transaction.atomic():
        return TrainingRun.objects.update_or_create(run_id=data.run_id, defaults=values,
                                                    create_defaults={**values, "registered_by": user})


def register_run(location: str, user=None, *, trusted: bool = False) -> tuple[TrainingRun, bool]:
    """Read the run folder at `location` (a local path or s3://bucket/prefix) and register it, or
    update the run registered under the same run_id: (run, created). RunError when the folder
    cannot be read or is not a run folder this platform knows; nothing is written then."""
    data = read_run_folder(resolve_location(location, trusted=trusted))
    return save_run(data, user)


def remove_run(run: TrainingRun) -> None:
    """Forget a run: its row only (the folder and its files stay where they are)."""
    run.delete()
