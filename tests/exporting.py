"""What the export tests share: a frozen snapshot built straight from rows, with real JPEG files
in the media storage, and small helpers to read an export folder."""
from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from datasets.models import Snapshot, SnapshotComment, SnapshotImage
from tests.conftest import make_photo

SPLITS = ("train", "train", "train", "val", "test")


def make_snapshot(n_images: int = 10, comments_per_image: int = 3, *, name: str = "food", version: int = 1,
                  missing: int = 0, size: tuple[int, int] = (320, 240), seed: int = 0) -> Snapshot:
    """A frozen snapshot of `n_images` photos (train/val/test in a fixed pattern), each with
    `comments_per_image` comments; the files of the last `missing` photos are not in storage."""
    snapshot = Snapshot.objects.create(name=name, version=version, min_sets=1, seed=seed,
                                       ratios={"train": 0.6, "val": 0.2, "test": 0.2},
                                       projects=[{"id": 1, "name": "p"}], image_count=n_images,
                                       comment_count=n_images * comments_per_image)
    comment_id = 1000 * version
    for i in range(n_images):
        image_id = uuid.UUID(int=(seed << 64) + version * 10_000 + i + 1)
        data = make_photo(*size, seed=seed * 1000 + i)
        digest = hashlib.sha256(data).hexdigest()
        path = f"images/{digest[:2]}/{image_id}.jpg"
        if i < n_images - missing:
            default_storage.save(path, ContentFile(data))
        split = SPLITS[i % len(SPLITS)]
        SnapshotImage.objects.create(
            snapshot=snapshot, image_id=image_id, split=split, file=path, sha256=digest,
            pixel_sha256=hashlib.sha256(digest.encode()).hexdigest(), width=size[0], height=size[1],
            category_slug="food", category_name="Food", licence_code="cc-by-4.0", attribution_required=True,
            attribution=f"Photo {i}, CC BY 4.0", source_name="Test uploads")
        for j in range(comments_per_image):
            comment_id += 1
            SnapshotComment.objects.create(
                snapshot=snapshot, comment_id=comment_id, image_id=image_id, split=split, category_slug="food",
                text=f"맛있어 보이는 사진 {i}-{j}", comment_type="reaction" if j % 2 == 0 else "specific",
                guideline_version=1, labeler=f"{j:016x}")
    return snapshot


def folder_files(folder) -> dict[str, bytes]:
    """Every file under `folder` by relative path (hidden temporary files included)."""
    root = Path(folder)
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def check_sums(folder) -> dict[str, str]:
    """SHA256SUMS parsed, after checking every listed file against it (as `sha256sum -c` would)."""
    root = Path(folder)
    sums = {}
    for line in (root / "SHA256SUMS").read_text().splitlines():
        digest, path = line.split("  ", 1)
        assert hashlib.sha256((root / path).read_bytes()).hexdigest() == digest, path
        sums[path] = digest
    return sums
