"""The time to build the labeler quality scorecard (curation.scorecard.labeler_scorecard) of a
project with --labelers labelers and --comments comments, against the progress dashboard's
labeler figures (labeling.selectors.labeler_stats, one page of 50) in the same run.

    [DATABASE_URL=postgres://...] .venv/bin/python bench/scorecard.py [--labelers 50] [--comments 20000] [--repeat 3]

On a throwaway database: --comments / 4 photos, each with two submitted sets (two comment types
a set) by two of the labelers; a comment flag on every 10th comment (four kinds), a comment
score on every comment, all bulk-written (then ANALYZE on PostgreSQL).
  scorecard  the whole scorecard, every labeler (the page sorts over all of them), computed, and
             with the agreement from the cache
  agreement  its agreement part alone (TF-IDF character n-grams over the shared photos)
  dashboard  labeler_stats of the busiest 50 (the existing per-labeler figures)
Prints the median seconds of each.
"""
from __future__ import annotations

import argparse
import hashlib
import random
import tempfile
import time
import uuid
from pathlib import Path

from _common import median_time, setup_django

BATCH = 5000
WORDS = "와 정말 맛있겠다 족발 윤기 쫀득 사진 풍경 아름다워요 하늘 바다 고양이 귀여워 색감 분위기 최고 어디야 먹고싶다".split()


def build(n_labelers: int, n_comments: int):
    from django.db import connection

    from accounts import services as accounts
    from curation.models import CommentScore, Flag
    from datasets.models import Image, Licence, Source
    from labeling import services as labeling
    from labeling.models import Assignment, Comment, ProjectMember

    rng = random.Random(0)
    licence = Licence.objects.get(code="cc-by-4.0")
    source = Source.objects.create(kind="upload", name="bench", default_licence=licence)
    n_photos = n_comments // 4
    rows = []
    for i in range(n_photos):
        digest = hashlib.sha256(f"bench-{i}".encode()).hexdigest()
        rows.append(Image(
            id=uuid.UUID(digest[:32]), file=f"images/{i}.jpg", thumbnail=f"thumbs/{i}.jpg", sha256=digest,
            pixel_sha256=hashlib.sha256(digest.encode()).hexdigest(), phash=i, width=640, height=480,
            original_width=640, original_height=480, original_format="JPEG", original_bytes=1000,
            source=source, licence=licence,
        ))
    Image.objects.bulk_create(rows, batch_size=BATCH)
    project = labeling.create_project("bench scorecard", overlap=2)
    labeling.sync_project_images(project)
    users = [accounts.create_user(f"bench{i}", "pw-long-enough-1", "labeler") for i in range(n_labelers)]
    for u in users:
        labeling.add_member(project, u)
    types = list(project.comment_types.order_by("position"))
    now = project.created_at
    assignments = []
    for image in rows:
        for user in rng.sample(users, 2):
            assignments.append(Assignment(project=project, image=image, labeler=user, status="submitted",
                                          leased_at=now, expires_at=now, submitted_at=now))
    Assignment.objects.bulk_create(assignments, batch_size=BATCH)
    comments = []
    for a in Assignment.objects.filter(project=project).order_by("pk").iterator(chunk_size=BATCH):
        for t in types:
            text = " ".join(rng.choices(WORDS, k=rng.randint(3, 9)))
            comments.append(Comment(assignment=a, comment_type=t, text=text, length=len(text), key=text,
                                    guideline_version=1))
    Comment.objects.bulk_create(comments, batch_size=BATCH)
    kinds = ["toxicity", "hallucination", "self_copy_comment", "template_comment"]
    flags, scores = [], []
    for n, (pk,) in enumerate(Comment.objects.filter(assignment__project=project).values_list("pk").iterator()):
        if n % 10 == 0:
            flags.append(Flag(kind=kinds[n % 4], comment_id=pk, project=project, score=0.9, detector="bench"))
        scores.append(CommentScore(model="bench-model", comment_id=pk, project=project, hallucination=rng.random(),
                                   specificity=rng.gauss(0.05, 0.05), similarity=0.3, sample_size=100))
    Flag.objects.bulk_create(flags, batch_size=BATCH)
    CommentScore.objects.bulk_create(scores, batch_size=BATCH)
    ProjectMember.objects.filter(project=project).update(submitted_count=n_comments // n_labelers // 2)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    return project, Comment.objects.count()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--labelers", type=int, default=50)
    parser.add_argument("--comments", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        connection, old_name = setup_django(Path(tmp), "bench_scorecard")
        try:
            run(connection, args)
        finally:
            connection.creation.destroy_test_db(old_name, verbosity=0)


def run(connection, args) -> None:
    from django.core.cache import cache
    from django.db import reset_queries

    from curation.scorecard import comment_agreement, labeler_scorecard
    from labeling.selectors import labeler_stats

    start = time.perf_counter()
    project, n_comments = build(args.labelers, args.comments)
    print(f"{connection.vendor}: {args.labelers} labelers, {n_comments} comments built in "
          f"{time.perf_counter() - start:.1f} s")
    connection.force_debug_cursor = True
    reset_queries()
    rows = labeler_scorecard(project)
    queries = len(connection.queries)
    connection.force_debug_cursor = False
    def cold(fn):
        def run_cold():
            cache.clear()  # the agreement is cached until the sets change: measure it computed
            fn(project)
        return run_cold

    t_card = median_time(cold(labeler_scorecard), args.repeat)
    t_warm = median_time(lambda: labeler_scorecard(project), args.repeat)
    t_agree = median_time(cold(comment_agreement), args.repeat)
    t_dash = median_time(lambda: labeler_stats(project, limit=50), args.repeat)
    agreements = [r["agreement"] for r in rows if r["agreement"] is not None]
    print(f"scorecard {t_card:7.3f} s  ({len(rows)} rows, {queries} queries; agreement shown for "
          f"{len(agreements)}, mean {sum(agreements) / max(1, len(agreements)):.3f})")
    print(f"  cached  {t_warm:7.3f} s  (the agreement from the cache: the sets did not change)")
    print(f"agreement {t_agree:7.3f} s")
    print(f"dashboard {t_dash:7.3f} s  (labeler_stats, 50 rows)")


if __name__ == "__main__":
    main()
