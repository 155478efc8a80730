"""The Django side of an export: a snapshot's frozen rows as layout rows, its stored images, and a
whole export written to a local folder by one process (tests, benchmarks, a quick local copy).

Everything an export writes comes from the snapshot's own rows (SnapshotImage, SnapshotComment),
which never change, and the stored image files; see `snapshot_info` for the few facts read from
elsewhere.
"""
from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from datetime import UTC
from pathlib import Path

from django.core.files.storage import default_storage

from .layout import (
    CommentRow,
    ExportOptions,
    ImageRow,
    ShardResult,
    image_order,
    metadata_files,
    plan,
    sha256sums,
    write_shard,
)

SUMS = "SHA256SUMS"


class ExportConflict(Exception):
    """The folder holds a finished export whose SHA256SUMS differ from what this one would write
    (another version, other options, or files changed since); nothing was written."""


def snapshot_rows(snapshot) -> tuple[list[ImageRow], dict[str, list[CommentRow]]]:
    """The snapshot's images in export order (split, category, image id) and its comments per
    image id (by comment id), from its frozen rows alone. `file_size` is left None: planning
    estimates bytes from the frozen width and height, so the plan never depends on storage (a
    stat per photo would also cost a request each on S3)."""
    from datasets.models import SnapshotComment, SnapshotImage

    images = [
        ImageRow(
            image_id=str(r["image_id"]), split=r["split"], sha256=r["sha256"], pixel_sha256=r["pixel_sha256"],
            width=r["width"], height=r["height"], category=r["category_slug"], category_name=r["category_name"],
            subcategory=r["subcategory_slug"], subcategory_name=r["subcategory_name"], licence=r["licence_code"],
            attribution_required=r["attribution_required"], attribution=r["attribution"], source=r["source_name"],
            file=r["file"], file_size=None,
        )
        for r in SnapshotImage.objects.filter(snapshot=snapshot).order_by().values(
            "image_id", "split", "sha256", "pixel_sha256", "width", "height", "category_slug", "category_name",
            "subcategory_slug", "subcategory_name", "licence_code", "attribution_required", "attribution",
            "source_name", "file",
        ).iterator(chunk_size=5000)
    ]
    images.sort(key=image_order)
    comments: dict[str, list[CommentRow]] = {}
    rows = SnapshotComment.objects.filter(snapshot=snapshot).order_by("comment_id").values_list(
        "comment_id", "image_id", "split", "text", "comment_type", "category_slug", "guideline_version", "labeler",
    )
    for comment_id, image_id, split, text, ctype, category, guideline, labeler in rows.iterator(chunk_size=5000):
        key = str(image_id)
        comments.setdefault(key, []).append(CommentRow(comment_id, key, split, text, ctype, category, guideline, labeler))
    return images, comments


def read_image(row: ImageRow) -> bytes:
    """The stored copy's bytes from default_storage; FileNotFoundError when it is gone (local
    folder, or S3 answering 404: django-storages raises it), OSError for a local file that cannot
    be read (write_shard reports both and skips the photo). Any other error (S3 unreachable or
    refusing) is raised as it is: the export fails and can be retried, rather than finishing
    without photos that are there."""
    if not row.file:
        raise FileNotFoundError("The image has no stored file.")
    with default_storage.open(row.file, "rb") as f:
        return f.read()


def snapshot_info(snapshot) -> dict:
    """The `snapshot` dict of layout.metadata_files, from the snapshot's own fields: under
    "licences" the name and link of each licence code its photos carry, as frozen with it (a
    version frozen before snapshots kept them reads the Licence table now), and the label of the
    version whose splits were kept (versions are never deleted or renamed)."""
    from datasets.models import Licence, SnapshotImage

    licences = {code: dict(info) for code, info in (snapshot.licences or {}).items()}
    if not licences:
        codes = sorted(set(SnapshotImage.objects.filter(snapshot=snapshot).values_list("licence_code", flat=True)))
        licences = {code: {"name": name, "url": url}
                    for code, name, url in Licence.objects.filter(code__in=codes).values_list("code", "name", "url")}
    kept = snapshot.kept_from
    return {
        "name": snapshot.name,
        "version": snapshot.version,
        "created_at": snapshot.created_at.astimezone(UTC).isoformat(timespec="seconds"),
        "seed": snapshot.seed,
        "ratios": snapshot.ratios,
        "counts": snapshot.counts,
        "projects": list(snapshot.projects or []),
        "categories": list(snapshot.categories or []),
        "comment_types": list(snapshot.comment_types or []),
        "min_sets": snapshot.min_sets,
        "kept_from": kept.label if kept is not None else None,
        "licences": licences,
    }


class _Discard:
    """An output that only counts (its bytes are hashed by write_shard)."""

    def write(self, data) -> int:
        return len(data)


def _write_atomic(target: Path, write: Callable) -> object:
    """Write through `write(file)` to a temporary file beside `target`, fsync, then rename over
    it: a reader sees the old file or the whole new one, never a part."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.partial-{os.getpid()}-{threading.get_ident()}")
    try:
        with open(tmp, "wb") as f:
            result = write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return result


DEFAULT_OPTIONS = ExportOptions()


def export_to_directory(snapshot, path, options: ExportOptions = DEFAULT_OPTIONS,
                        progress: Callable[[int, int], None] | None = None) -> dict:
    """Write the whole export of `snapshot` into the folder `path` in this process: each shard,
    then the metadata files, then SHA256SUMS, each through a temporary file and a rename, so a
    folder without SHA256SUMS is never a finished export.

    A folder that already holds a finished export (a SHA256SUMS) is checked, not written: the
    same bytes again (same version, same options) return with "unchanged": True; anything else
    raises ExportConflict and leaves it as it was. `progress(done, total)` is called after each
    shard. Returns {"path", "files": {relative path: sha256}, "shards": [ShardResult.as_dict()],
    "problems": [...], "unchanged"}.
    """
    options.validate()
    root = Path(path)
    if root.exists() and not root.is_dir():
        raise ExportConflict(f"{root} is a file, not a folder.")
    images, comments = snapshot_rows(snapshot)
    if not images:
        raise ValueError("The snapshot has no images: there is nothing to export.")
    by_id = {r.image_id: r for r in images}
    specs = plan(images, {k: len(v) for k, v in comments.items()}, options)
    finished = (root / SUMS).is_file()
    results: list[ShardResult] = []
    for i, spec in enumerate(specs):
        if finished:
            results.append(write_shard(spec, by_id, comments, read_image, _Discard(), options))
        else:
            results.append(_write_atomic(root / spec.path,
                                         lambda f, spec=spec: write_shard(spec, by_id, comments, read_image, f, options)))
        if progress:
            progress(i + 1, len(specs))
    files = metadata_files(snapshot_info(snapshot), images, comments, results, options)
    checksums = {r.path: r.sha256 for r in results}
    checksums.update({p: hashlib.sha256(data).hexdigest() for p, data in files.items()})
    sums = sha256sums(checksums)
    if finished:
        if (root / SUMS).read_bytes() != sums:
            raise ExportConflict(f"{root} holds a finished export with other checksums (another version or other "
                                 "options); nothing was written. Export into an empty folder.")
        missing = sorted(p for p in checksums if not (root / p).is_file())
        if missing:
            raise ExportConflict(f"{root} holds a finished export whose files are missing: {', '.join(missing[:5])}.")
        unchanged = True
    else:
        for rel, data in files.items():
            _write_atomic(root / rel, lambda f, data=data: f.write(data))
        _write_atomic(root / SUMS, lambda f: f.write(sums))
        unchanged = False
    return {
        "path": str(root),
        "files": dict(sorted(checksums.items())),
        "shards": [r.as_dict() for r in results],
        "problems": [p for r in results for p in r.problems],
        "unchanged": unchanged,
    }
