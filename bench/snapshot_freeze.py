"""The time to freeze a snapshot of --photos photos and their comments, against a plain
bulk_create of the same number of frozen rows in the same run.

    [DATABASE_URL=postgres://...] .venv/bin/python bench/snapshot_freeze.py [--photos 50000] [--repeat 3]

On a throwaway database (a SQLite file in a temporary folder, or `bench_snapshot` beside
DATABASE_URL's PostgreSQL database): --photos Image rows (no files), one project over them with
its queue, and submitted comment sets (every even photo two, every odd one one: 1.5 sets a photo,
two comment types a set, so 50,000 photos give 150,000 comments), all bulk-written (then ANALYZE
on PostgreSQL, as autovacuum would).
  freeze    labeling.snapshots.freeze_snapshot(min_sets=1): the selector, the splits, and the
            frozen rows (SnapshotImage, SnapshotComment), in one transaction
  baseline  SnapshotImage and SnapshotComment rows of the same count, built in memory and written
            with bulk_create in one transaction: what writing the rows alone costs
Prints the median seconds of each and freeze / baseline (each run's rows are deleted after it).
"""
from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
import uuid
from pathlib import Path

from _common import median_time, setup_django

BATCH = 5000


def build(n_photos: int) -> tuple:
    from django.db import connection

    from accounts import services as accounts
    from datasets.models import Category, Image, Licence, Source
    from labeling import services as labeling
    from labeling.models import Assignment, Comment, ProjectImage

    licence = Licence.objects.get(code="cc-by-4.0")
    source = Source.objects.create(kind="upload", name="bench", default_licence=licence)
    categories = list(Category.objects.order_by("position", "id"))
    rows = []
    for i in range(n_photos):
        digest = hashlib.sha256(f"bench-{i}".encode()).hexdigest()
        rows.append(Image(
            id=uuid.UUID(digest[:32]), file=f"images/{i}.jpg", thumbnail=f"thumbs/{i}.jpg", sha256=digest,
            pixel_sha256=hashlib.sha256(digest.encode()).hexdigest(), phash=i, width=640, height=480,
            original_width=640, original_height=480, original_format="JPEG", original_bytes=1000,
            category=categories[i % len(categories)], source=source, licence=licence,
        ))
    Image.objects.bulk_create(rows, batch_size=BATCH)
    project = labeling.create_project("bench snapshot", overlap=2)
    labeling.sync_project_images(project)
    users = [accounts.create_user(f"bench{i}", "pw-long-enough-1", "labeler") for i in range(2)]
    types = list(project.comment_types.order_by("position"))
    now = project.created_at
    assignments = []
    for i, image in enumerate(rows):
        for user in users[: 2 if i % 2 == 0 else 1]:
            assignments.append(Assignment(project=project, image=image, labeler=user, status="submitted",
                                          leased_at=now, expires_at=now, submitted_at=now))
    Assignment.objects.bulk_create(assignments, batch_size=BATCH)
    ProjectImage.objects.filter(project=project).update(submitted_count=1, slots_taken=1)
    comments = []
    for n, a in enumerate(Assignment.objects.filter(project=project).order_by("pk").iterator(chunk_size=BATCH)):
        for t in types:
            comments.append(Comment(assignment=a, comment_type=t, text=f"와 정말 멋진 사진이네요 {n} {t.slug}",
                                    length=20, key=f"k{n}{t.slug}", guideline_version=1))
        if len(comments) >= BATCH:
            Comment.objects.bulk_create(comments, batch_size=BATCH)
            comments = []
    Comment.objects.bulk_create(comments, batch_size=BATCH)
    if connection.vendor == "postgresql":
        # What autovacuum does soon after a load this size: without statistics the planner takes
        # every table for a few rows, and the selector's per-photo count scans every set.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    return project, Comment.objects.count()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--photos", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        connection, old_name = setup_django(Path(tmp), "bench_snapshot")
        try:
            run(connection, args)
        finally:
            connection.creation.destroy_test_db(old_name, verbosity=0)


def run(connection, args) -> None:
    from django.db import transaction

    from datasets.models import Snapshot, SnapshotComment, SnapshotImage
    from labeling.snapshots import freeze_snapshot

    start = time.perf_counter()
    project, n_comments = build(args.photos)
    print(f"{connection.vendor}: {args.photos} photos, {n_comments} comments built in {time.perf_counter() - start:.1f} s")

    def clear():
        SnapshotComment.objects.all()._raw_delete(SnapshotComment.objects.db)
        SnapshotImage.objects.all()._raw_delete(SnapshotImage.objects.db)
        Snapshot.objects.all()._raw_delete(Snapshot.objects.db)

    result = {}

    def freeze():
        snapshot = freeze_snapshot("bench", projects=[project], min_sets=1)
        result["counts"] = (snapshot.image_count, snapshot.comment_count)
        clear()

    def baseline():
        with transaction.atomic():
            snapshot = Snapshot.objects.create(name="baseline", version=1, min_sets=1)
            images = [SnapshotImage(snapshot=snapshot, image_id=uuid.UUID(int=i), split="train", file=f"images/{i}.jpg",
                                    sha256="0" * 64, pixel_sha256="1" * 64, width=640, height=480,
                                    category_slug="food", category_name="Food", licence_code="cc-by-4.0",
                                    attribution="Untitled, CC BY 4.0", source_name="bench")
                      for i in range(args.photos)]
            SnapshotImage.objects.bulk_create(images, batch_size=2000)
            comments = [SnapshotComment(snapshot=snapshot, comment_id=i, image_id=uuid.UUID(int=i % args.photos),
                                        split="train", category_slug="food", text=f"와 정말 멋진 사진이네요 {i}",
                                        comment_type="reaction", guideline_version=1, labeler="0123456789abcdef")
                        for i in range(n_comments)]
            SnapshotComment.objects.bulk_create(comments, batch_size=2000)
        clear()

    t_freeze = median_time(freeze, args.repeat)
    t_base = median_time(baseline, args.repeat)
    print(f"freeze    {t_freeze:7.2f} s  ({result['counts'][0]} photos, {result['counts'][1]} comments)")
    print(f"baseline  {t_base:7.2f} s  (bulk_create of the same number of rows)")
    print(f"freeze / baseline = {t_freeze / t_base:.2f}")


if __name__ == "__main__":
    main()
