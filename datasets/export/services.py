"""Everything that changes an export's state: start, write a shard group, finish, fail, resume
and cancel (datasets.models.Export and ExportShard). The Celery tasks (datasets.tasks), the
management command, the API and the pages call these.

How the work is shared without a result backend: start_export plans the shards
(datasets.export.layout.plan), records one ExportShard row each with its group number
(settings.EXPORT["SHARDS_PER_TASK"] shards a group) and queues one task per group. Each group's
task writes its shards and marks each done in the database; whichever task sees no shard left
pending queues the finishing step, once: a conditional UPDATE of `Export.finalizing` decides.
finalize_export writes the metadata files and then SHA256SUMS, last, and only then is the export
done. A group run again (a redelivered message after a worker was killed, a resume) skips the
shards whose file is at the destination with the recorded SHA-256, so the files end the same.

The output is deterministic (same snapshot and options, same bytes), each file is written
atomically (datasets.export.targets), and a destination that already holds a finished export
(its SHA256SUMS) is checked, never rewritten: the same bytes are left alone, different ones fail
the export with the reason.
"""
from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.text import slugify

from ..models import ACTIVE_EXPORT_STATUSES, Export, ExportShard, ExportStatus, ShardStatus, Snapshot
from . import layout, source
from .errors import ExportConflict, ExportError
from .targets import LocalTarget, Target, clean_relative, parse_s3, target_for

log = logging.getLogger(__name__)

SUMS = "SHA256SUMS"
Progress = Callable[[Export], None]


# ---------------------------------------------------------------- destination and options


def export_root() -> Path:
    return Path(settings.EXPORT["ROOT"])


def resolve_destination(destination: str | None, *, trusted: bool = False) -> str:
    """The destination as stored: 's3://bucket/prefix' (no trailing slash) or an absolute local
    folder. From the web (not `trusted`) a local folder lies under settings.EXPORT["ROOT"]
    (a relative one is taken from there; empty is the root itself); the management command, run
    by the operator, may name any folder."""
    destination = (destination or "").strip()
    if "\x00" in destination:
        raise ExportError("bad_destination")
    if destination.startswith("s3://"):
        bucket, prefix = parse_s3(destination)
        if not bucket or "//" in prefix or any(p in (".", "..") for p in prefix.split("/")):
            raise ExportError("bad_destination")
        return f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
    if "://" in destination:
        raise ExportError("bad_destination")
    root = export_root().resolve()
    path = Path(destination) if destination else root
    if not path.is_absolute():
        if trusted:
            path = Path.cwd() / path
        else:
            path = root / path
    path = Path(os.path.normpath(path))
    if not trusted and path != root and root not in path.parents:
        raise ExportError("outside_root", root=str(root), path=str(path))
    return str(path)


def export_folder(destination: str, snapshot: Snapshot) -> str:
    """`<destination>/<name slug>/v<N>` (DESIGN.md's shard contract)."""
    name = slugify(snapshot.name, allow_unicode=True) or f"snapshot-{snapshot.pk}"
    return f"{destination.rstrip('/')}/{name}/v{snapshot.version}"


def parse_options(options: layout.ExportOptions | dict | None) -> layout.ExportOptions:
    if options is None:
        options = layout.ExportOptions()
    elif isinstance(options, dict):
        try:
            options = layout.ExportOptions.from_dict(options)
        except (TypeError, ValueError) as exc:
            raise ExportError("bad_options", detail=str(exc)) from exc
    try:
        options.validate()
    except ValueError as exc:
        raise ExportError("bad_options", detail=str(exc)) from exc
    return options


def _options_text(options: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(options.items()))


# ---------------------------------------------------------------- snapshot rows (cached)

_rows_cache: dict = {}


def snapshot_rows(snapshot: Snapshot):
    """(images by id in plan order, comments by image id), cached per process for the last
    snapshot read: a frozen snapshot's rows never change, and a worker writes many of its groups."""
    key = (snapshot.pk, snapshot.created_at)
    if key not in _rows_cache:
        images, comments = source.snapshot_rows(snapshot)
        _rows_cache.clear()
        _rows_cache[key] = (images, {row.image_id: row for row in images}, comments)
    return _rows_cache[key]


# ---------------------------------------------------------------- start


def _conflicts(folder: str, options: dict, exclude: int | None = None) -> None:
    others = Export.objects.filter(folder=folder).exclude(pk=exclude)
    for other in others.filter(status=ExportStatus.DONE).only("options"):
        if other.options != options:
            raise ExportConflict("different_options", folder=folder, options=_options_text(other.options))
    for other in others.filter(status__in=ACTIVE_EXPORT_STATUSES).only("options"):
        if other.options != options:
            raise ExportConflict("busy_other_options", folder=folder)


def start_export(snapshot: Snapshot, destination: str | None = None, options=None, user=None, *,
                 trusted: bool = False, enqueue: bool = True) -> Export:
    """Plan an export of `snapshot` and queue its shard groups (after the transaction commits).

    Archived snapshots may be exported: a version is immutable either way (archiving only hides
    it from new work). Refused with the reason (ExportError): bad options or destination, a
    snapshot without photos, a destination that cannot be written (checked now with a probe
    file), a destination holding a finished export of this version with other options, or one
    another export with other options is writing."""
    options = parse_options(options)
    destination = resolve_destination(destination, trusted=trusted)
    if not snapshot.images.exists():
        raise ExportError("empty_snapshot")
    folder = export_folder(destination, snapshot)
    target = target_for(folder)
    target.preflight()
    images, _by_id, comments = snapshot_rows(snapshot)
    specs = layout.plan(images, {image_id: len(rows) for image_id, rows in comments.items()}, options)
    per_task = settings.EXPORT["SHARDS_PER_TASK"]
    opts = options.as_dict()
    with transaction.atomic():
        # One start at a time per snapshot, so two starts cannot both pass the checks.
        Snapshot.objects.select_for_update().filter(pk=snapshot.pk).first()
        _conflicts(folder, opts)
        export = Export.objects.create(
            snapshot=snapshot, destination=destination, folder=folder, options=opts, created_by=user,
            shards_total=len(specs), samples_total=sum(len(comments.get(i, ())) for s in specs
                                                       if s.kind == "split" for i in s.image_ids),
        )
        ExportShard.objects.bulk_create([
            ExportShard(export=export, position=n, group=n // per_task, path=spec.path, kind=spec.kind,
                        split=spec.split, image_ids=list(spec.image_ids))
            for n, spec in enumerate(specs)
        ])
        if enqueue:
            _enqueue_groups(export)
    return export


def _pending_groups(export: Export) -> list[int]:
    return sorted(set(export.shards.filter(status=ShardStatus.PENDING).values_list("group", flat=True)))


def _enqueue_groups(export: Export) -> None:
    from ..tasks import export_group_task, finalize_export_task

    groups = _pending_groups(export)
    export_id = export.pk
    if groups:
        transaction.on_commit(lambda: [export_group_task.delay(export_id, g) for g in groups])
    else:
        transaction.on_commit(lambda: finalize_export_task.delay(export_id))


# ---------------------------------------------------------------- writing shards


def _existing_sums(target: Target) -> dict[str, str]:
    """What a finished export at the destination lists (empty when there is none)."""
    data = target.read(SUMS)
    if not data:
        return {}
    sums = {}
    for line in data.decode("utf-8", "replace").splitlines():
        digest, _, path = line.partition("  ")
        if digest and path:
            sums[path] = digest
    return sums


def _still_active(export_id: int) -> bool:
    return Export.objects.filter(pk=export_id, status__in=ACTIVE_EXPORT_STATUSES).exists()


class _Discard:
    def write(self, data) -> int:
        return len(data)


def _write_one(export: Export, shard: ExportShard, target: Target, sums: dict[str, str],
               options: layout.ExportOptions) -> layout.ShardResult:
    images, by_id, comments = snapshot_rows(export.snapshot)
    spec = layout.ShardSpec(path=shard.path, kind=shard.kind, split=shard.split, image_ids=tuple(shard.image_ids))
    if shard.path in sums:
        # A finished export is there: compute (write_shard hashes what it writes), compare, and
        # leave its file as it is.
        result = layout.write_shard(spec, by_id, comments, source.read_image, _Discard(), options)
        if result.sha256 != sums[shard.path]:
            raise ExportConflict("content_differs", folder=export.folder, path=shard.path)
        return result
    with target.writer(shard.path) as f:
        result = layout.write_shard(spec, by_id, comments, source.read_image, f, options)
    return result


def _record_shard(export: Export, shard: ExportShard, result: layout.ShardResult) -> None:
    now = timezone.now()
    fields = dict(samples=result.samples, size=result.size, sha256=result.sha256, problems=result.problems,
                  finished_at=now)
    with transaction.atomic():
        first = ExportShard.objects.filter(pk=shard.pk, status=ShardStatus.PENDING).update(
            status=ShardStatus.DONE, **fields)
        if first:
            Export.objects.filter(pk=export.pk).update(
                shards_done=F("shards_done") + 1, samples_done=F("samples_done") + (result.samples if shard.kind == "split" else 0),
                heartbeat_at=now)
        else:  # written again (a rerun): the same bytes, counted once
            ExportShard.objects.filter(pk=shard.pk).update(**fields)
            Export.objects.filter(pk=export.pk).update(heartbeat_at=now)


def run_shard_group(export_id: int, group: int, *, progress: Progress | None = None,
                    enqueue_finalize: bool = True) -> Export:
    """Write the shards of one group (skipping those already written with the recorded SHA-256),
    then, if no shard of the export is left pending, queue the finishing step (once)."""
    export = Export.objects.select_related("snapshot").get(pk=export_id)
    if export.status not in ACTIVE_EXPORT_STATUSES:
        return export
    now = timezone.now()
    Export.objects.filter(pk=export.pk, status__in=ACTIVE_EXPORT_STATUSES).update(
        status=ExportStatus.RUNNING, started_at=export.started_at or now, heartbeat_at=now)
    options = layout.ExportOptions.from_dict(export.options)
    target = target_for(export.folder)
    try:
        sums = _existing_sums(target)
        for shard in export.shards.filter(group=group).order_by("position"):
            if not _still_active(export.pk):
                return Export.objects.get(pk=export.pk)  # cancelled or failed meanwhile
            if shard.status == ShardStatus.DONE and target.sha256(shard.path) == shard.sha256:
                continue
            result = _write_one(export, shard, target, sums, options)
            _record_shard(export, shard, result)
            if progress:
                progress(Export.objects.get(pk=export.pk))
    except ExportError as exc:
        return fail_export(export.pk, exc)
    except OSError as exc:
        log.exception("export %s: writing group %s failed", export.pk, group)
        return fail_export(export.pk, ExportError("write_failed", path=export.folder,
                                                  detail=exc.strerror or exc.__class__.__name__))
    _maybe_finalize(export.pk, enqueue=enqueue_finalize)
    return Export.objects.get(pk=export.pk)


def _maybe_finalize(export_id: int, *, enqueue: bool = True) -> bool:
    """Queue finalize_export if no shard is left pending and nobody queued it yet (exactly one
    caller wins the conditional UPDATE)."""
    if ExportShard.objects.filter(export_id=export_id, status=ShardStatus.PENDING).exists():
        return False
    won = Export.objects.filter(pk=export_id, status__in=ACTIVE_EXPORT_STATUSES, finalizing=False).update(
        finalizing=True)
    if won and enqueue:
        from ..tasks import finalize_export_task

        transaction.on_commit(lambda: finalize_export_task.delay(export_id))
    return bool(won)


# ---------------------------------------------------------------- finishing


def _problems(shards: list[ExportShard]) -> list[dict]:
    seen, problems = set(), []
    for shard in shards:
        for problem in shard.problems:
            key = (problem.get("image_id"), problem.get("comment_id"), problem.get("code"))
            if key not in seen:
                seen.add(key)
                problems.append({**problem, "shard": shard.path})
    return problems


def finalize_export(export_id: int) -> Export:
    """Check every shard is at the destination, write the metadata files and SHA256SUMS last, and
    mark the export done. Over a finished export of the same bytes nothing is rewritten."""
    export = Export.objects.select_related("snapshot").get(pk=export_id)
    if export.status not in ACTIVE_EXPORT_STATUSES:
        return export
    target = target_for(export.folder)
    options = layout.ExportOptions.from_dict(export.options)
    shards = list(export.shards.order_by("position"))
    try:
        for shard in shards:
            if shard.status != ShardStatus.DONE or target.size(shard.path) != shard.size:
                _recheck_written(export)  # every shard lost is written again by a resume
                raise ExportError("file_missing", path=shard.path)
        images, _by_id, comments = snapshot_rows(export.snapshot)
        results = [layout.ShardResult(path=s.path, samples=s.samples, size=s.size, sha256=s.sha256,
                                      problems=list(s.problems)) for s in shards]
        files = layout.metadata_files(source.snapshot_info(export.snapshot), images, comments, results, options)
        sums = _existing_sums(target)
        checksums = {s.path: s.sha256 for s in shards}
        sizes = {s.path: s.size for s in shards}
        for path in sorted(files):
            data = files[path]
            clean_relative(path)
            digest = hashlib.sha256(data).hexdigest()
            if path in sums:
                if sums[path] != digest:
                    raise ExportConflict("content_differs", folder=export.folder, path=path)
            else:
                target.write_bytes(path, data)
            checksums[path], sizes[path] = digest, len(data)
        listing = layout.sha256sums(checksums)
        if sums:
            if _existing_sums_bytes(target) != listing:
                raise ExportConflict("content_differs", folder=export.folder, path=SUMS)
        else:
            target.write_bytes(SUMS, listing)  # last: its presence says the export is whole
    except ExportError as exc:
        return fail_export(export.pk, exc)
    except OSError as exc:
        log.exception("export %s: finishing failed", export.pk)
        return fail_export(export.pk, ExportError("write_failed", path=export.folder,
                                                  detail=exc.strerror or exc.__class__.__name__))
    if isinstance(target, LocalTarget):
        target.remove_stale_parts(settings.EXPORT["STALE_SECONDS"])
    file_rows = [{"path": p, "size": sizes[p], "sha256": checksums[p]} for p in sorted(checksums)]
    file_rows.append({"path": SUMS, "size": len(listing), "sha256": hashlib.sha256(listing).hexdigest()})
    Export.objects.filter(pk=export.pk, status__in=ACTIVE_EXPORT_STATUSES).update(
        status=ExportStatus.DONE, finished_at=timezone.now(), heartbeat_at=timezone.now(), finalizing=False,
        sums_sha256=hashlib.sha256(listing).hexdigest(), files=file_rows, problems=_problems(shards),
        error="", error_code="", error_params={},
    )
    return Export.objects.get(pk=export.pk)


def _existing_sums_bytes(target: Target) -> bytes | None:
    return target.read(SUMS)


# ---------------------------------------------------------------- fail, resume, cancel


def fail_export(export_id: int, error: ExportError) -> Export:
    """The export stops with the reason; the shards written stay (a resume skips them)."""
    log.warning("export %s failed: %s", export_id, error)
    Export.objects.filter(pk=export_id, status__in=ACTIVE_EXPORT_STATUSES).update(
        status=ExportStatus.FAILED, error=str(error)[:5000], error_code=error.code, error_params=error.params,
        finished_at=timezone.now(), finalizing=False,
    )
    return Export.objects.get(pk=export_id)


def fail_unexpectedly(export_id: int, exc: BaseException) -> None:
    """A task met an error that is not the destination's (a bug, the database gone): the export
    fails with the error's name, and can be resumed once the cause is fixed."""
    log.error("export %s: task failed", export_id, exc_info=exc)
    try:
        fail_export(export_id, ExportError("worker_failed", error=f"{exc.__class__.__name__}: {exc}"[:300]))
    except Exception:  # noqa: BLE001 - the database itself may be what failed; the sweep is the page's Resume
        log.exception("export %s: could not record the failure", export_id)


def is_stalled(export: Export) -> bool:
    """Queued or running, but no worker has shown a sign of life for EXPORT["STALE_SECONDS"]."""
    if export.status not in ACTIVE_EXPORT_STATUSES:
        return False
    last = export.heartbeat_at or export.created_at
    return last < timezone.now() - timedelta(seconds=settings.EXPORT["STALE_SECONDS"])


def can_resume(export: Export) -> bool:
    return export.status in (ExportStatus.FAILED, ExportStatus.CANCELLED) or is_stalled(export)


def resume_export(export: Export, *, enqueue: bool = True) -> Export:
    """Queue again the shard groups of a failed, cancelled or stalled export that are not done
    (or its finishing step, if all are); the shards written are kept."""
    if not can_resume(export):
        raise ExportConflict("not_resumable", id=export.pk, status=export.get_status_display().lower())
    with transaction.atomic():
        Snapshot.objects.select_for_update().filter(pk=export.snapshot_id).first()
        _conflicts(export.folder, export.options, exclude=export.pk)
        updated = Export.objects.filter(pk=export.pk, status=export.status).update(
            status=ExportStatus.QUEUED, error="", error_code="", error_params={}, finished_at=None,
            finalizing=False, heartbeat_at=timezone.now())
        if not updated:
            export.refresh_from_db()
            raise ExportConflict("not_resumable", id=export.pk, status=export.get_status_display().lower())
        export.refresh_from_db()
        _recheck_written(export)
        if enqueue:
            _enqueue_groups(export)
    return export


def _recheck_written(export: Export) -> None:
    """Shards marked written whose file is gone or has another size are written again."""
    target = target_for(export.folder)
    for shard in export.shards.filter(status=ShardStatus.DONE):
        if target.size(shard.path) != shard.size:
            if ExportShard.objects.filter(pk=shard.pk, status=ShardStatus.DONE).update(status=ShardStatus.PENDING):
                Export.objects.filter(pk=export.pk).update(shards_done=F("shards_done") - 1,
                                                           samples_done=F("samples_done") - (
                                                               shard.samples if shard.kind == "split" else 0))


def cancel_export(export: Export, user=None) -> Export:
    """Stop a queued or running export: its tasks stop before their next shard. Files written
    stay (never a SHA256SUMS); it can be resumed."""
    who = getattr(user, "username", "") or "?"
    error = ExportError("cancelled", user=who)
    updated = Export.objects.filter(pk=export.pk, status__in=ACTIVE_EXPORT_STATUSES).update(
        status=ExportStatus.CANCELLED, error=str(error), error_code=error.code, error_params=error.params,
        finished_at=timezone.now(), finalizing=False)
    export.refresh_from_db()
    if not updated:
        raise ExportConflict("not_cancellable", id=export.pk, status=export.get_status_display().lower())
    return export


# ---------------------------------------------------------------- in one process (the command)


def run_export(export: Export, progress: Progress | None = None) -> Export:
    """Write every pending group and finish, here (the management command without --queue)."""
    if export.status not in ACTIVE_EXPORT_STATUSES:
        return export
    for group in _pending_groups(export):
        export = run_shard_group(export.pk, group, progress=progress, enqueue_finalize=False)
        if export.status not in ACTIVE_EXPORT_STATUSES:
            return export
    if not ExportShard.objects.filter(export=export, status=ShardStatus.PENDING).exists():
        Export.objects.filter(pk=export.pk, status__in=ACTIVE_EXPORT_STATUSES).update(finalizing=True)
        export = finalize_export(export.pk)
    return export


def download_path(export: Export, path: str) -> Path | None:
    """The local file of a done export's listed file, or None (not listed, not local, not done)."""
    if export.status != ExportStatus.DONE or export.on_s3:
        return None
    if path not in {f["path"] for f in export.files}:
        return None
    root = Path(export.folder).resolve()
    full = (root / clean_relative(path)).resolve()
    if root not in full.parents or not full.is_file():
        return None
    return full
