"""The time to compute a snapshot's page figures (datasets.selectors.snapshot_stats) and to
render its detail page, for --photos photos with three comments each (50,000 → 150,000 comments).

    [DATABASE_URL=postgres://...] .venv/bin/python bench/snapshot_stats.py [--photos 50000] [--repeat 3]

On a throwaway database: one Snapshot with its SnapshotImage and SnapshotComment rows written
directly (bulk_create; the freeze itself is bench/snapshot_freeze.py), Korean texts of varied
length (about half with an emoji), 40 pseudonymous labelers, the seeded categories, two comment types.
  stats-graphemes  snapshot_stats(length=labeling.text.count_length): every text read and its
                   graphemes counted in Python (exact, as the labeler page counts)
  stats-sql        snapshot_stats() without a length function: SQL LENGTH without whitespace
                   (code points): what the page uses
  page             GET /snapshots/<id>/ as an engineer (the page as it renders)
Prints the median seconds of each.
"""
from __future__ import annotations

import argparse
import hashlib
import random
import tempfile
import uuid
from pathlib import Path

from _common import median_time, setup_django

BATCH = 5000
WORDS = ["와", "정말", "맛있겠다", "사진", "분위기가", "좋네요", "햇살이", "따뜻해", "보여요", "ㅋㅋ", "😂", "👍🏽",
         "친구랑", "가고", "싶어요", "색감이", "예뻐요", "coffee", "OK"]


def build(n_photos: int):
    from accounts import services as accounts
    from datasets.models import Category, Snapshot, SnapshotComment, SnapshotImage

    rnd = random.Random(7)
    categories = list(Category.objects.order_by("position", "id").values_list("slug", "name"))
    user = accounts.create_user("bench-engineer", "pw-long-enough-1", "engineer")
    snapshot = Snapshot.objects.create(name="bench", version=1, projects=[{"id": 1, "name": "bench"}], min_sets=1,
                                       ratios={"train": 0.8, "val": 0.1, "test": 0.1}, created_by=user)
    images, comments = [], []
    labelers = [hashlib.sha256(str(i).encode()).hexdigest()[:16] for i in range(40)]
    n = 0
    for i in range(n_photos):
        image_id = uuid.UUID(hashlib.sha256(f"bench-{i}".encode()).hexdigest()[:32])
        slug, name = categories[i % len(categories)]
        split = "train" if i % 10 < 8 else ("val" if i % 10 == 8 else "test")
        images.append(SnapshotImage(snapshot=snapshot, image_id=image_id, split=split, file=f"images/{i}.jpg",
                                    sha256="0" * 64, pixel_sha256="0" * 64, width=640, height=480,
                                    category_slug=slug, category_name=name, licence_code="cc-by-4.0",
                                    source_name="bench"))
        for t in ("reaction", "reaction", "detail"):
            n += 1
            text = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(2, 14 if t == "detail" else 5)))
            comments.append(SnapshotComment(snapshot=snapshot, comment_id=n, image_id=image_id, split=split,
                                            category_slug=slug, text=text, comment_type=t, guideline_version=1,
                                            labeler=rnd.choice(labelers)))
    SnapshotImage.objects.bulk_create(images, batch_size=BATCH)
    SnapshotComment.objects.bulk_create(comments, batch_size=BATCH)
    Snapshot.objects.filter(pk=snapshot.pk).update(image_count=len(images), comment_count=len(comments))
    return snapshot, user


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--photos", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        connection, old_name = setup_django(Path(tmp), "bench_snapshot_stats")
        try:
            from django.conf import settings
            from django.db import connection as conn
            from django.test import Client

            from datasets.selectors import snapshot_stats
            from labeling.text import count_length

            snapshot, user = build(args.photos)
            if conn.vendor == "postgresql":
                with conn.cursor() as cursor:
                    cursor.execute("ANALYZE")
            print(f"{conn.vendor}: {args.photos} photos, {3 * args.photos} comments")
            for label, kwargs in [("stats-graphemes", {"length": count_length}), ("stats-sql", {})]:
                print(f"{label:16} {median_time(lambda kw=kwargs: snapshot_stats(snapshot, **kw), args.repeat):.3f} s")
            settings.ALLOWED_HOSTS = ["*"]
            client = Client()
            client.force_login(user)

            def page():
                response = client.get(f"/snapshots/{snapshot.pk}/")
                assert response.status_code == 200, response.status_code

            print(f"{'page':16} {median_time(page, args.repeat):.3f} s")
        finally:
            connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
