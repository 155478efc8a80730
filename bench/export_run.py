"""What running an export as shard-group tasks costs over writing it in one go: samples per
second of datasets.export.services (start_export + run_export in this process: the shard rows,
each group's bookkeeping, checksum checks, atomic writes, the finishing step) against
datasets.export.source.export_to_directory (the same files, one process, no rows) in the same run.

    [DATABASE_URL=postgres://...] .venv/bin/python bench/export_run.py [--photos 5000] [--comments 3]
        [--max-samples 1000] [--repeat 3] [--workers 1,2 --shards-per-task 1]

On a throwaway database (bench/_common.py): a frozen snapshot of --photos photos with --comments
comments each, its rows bulk-written, and real JPEG files (a few hundred distinct 320x240 photos,
stored under each photo's own path). Both exports write to a temporary folder with the default
options but --max-samples; the two outputs are compared byte for byte once. Prints the median
seconds of each, samples per second, and orchestrated / single. With --workers, the same export
queued to that many Celery worker processes (Redis database 14; the first to see the last shard
written queues the finishing step), timed from start_export to done.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from _common import setup_django


def build(photos: int, per_photo: int):
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from datasets.models import Snapshot, SnapshotComment, SnapshotImage
    from tests.conftest import make_photo

    jpegs = [make_photo(320, 240, seed=i) for i in range(min(photos, 300))]
    snapshot = Snapshot.objects.create(name="bench", version=1, min_sets=1, ratios={"train": 0.8, "val": 0.1,
                                                                                     "test": 0.1},
                                       image_count=photos, comment_count=photos * per_photo)
    images, comments, n = [], [], 0
    for i in range(photos):
        image_id = uuid.UUID(int=i + 1)
        data = jpegs[i % len(jpegs)]
        path = default_storage.save(f"images/{i % 256:02x}/{image_id}.jpg", ContentFile(data))
        split = "test" if i % 10 == 0 else "val" if i % 10 == 1 else "train"
        digest = hashlib.sha256(f"{i}".encode()).hexdigest()
        images.append(SnapshotImage(snapshot=snapshot, image_id=image_id, split=split, file=path, sha256=digest,
                                    pixel_sha256=digest, width=320, height=240, category_slug="food",
                                    category_name="Food", licence_code="cc0-1.0", source_name="bench"))
        for j in range(per_photo):
            n += 1
            comments.append(SnapshotComment(snapshot=snapshot, comment_id=n, image_id=image_id, split=split,
                                            category_slug="food", text=f"맛있어 보이는 사진이에요 {i}-{j}",
                                            comment_type="reaction", guideline_version=1, labeler=f"{j:016x}"))
    SnapshotImage.objects.bulk_create(images, batch_size=5000)
    SnapshotComment.objects.bulk_create(comments, batch_size=5000)
    return snapshot, n


def on_workers(n: int, snapshot, options, tmp: Path, connection) -> float:
    """Seconds from start_export (queued) to done with `n` solo workers on Redis database 14."""
    import signal
    import subprocess
    import sys

    import redis
    from django.conf import settings

    from config.celery import app
    from datasets.export import services
    from datasets.models import Export

    url = "redis://127.0.0.1:6379/14"
    redis.Redis.from_url(url).flushdb()
    app.conf.broker_url, app.conf.task_always_eager = url, False
    app.conf.broker_transport, app.conf.broker_transport_options = None, {}  # not the embedded folder broker
    app._pool = None
    app.amqp._producer_pool = None
    db = f"sqlite:///{connection.settings_dict['NAME']}" if connection.vendor == "sqlite" else (
        f"postgres://{connection.settings_dict['USER']}@{connection.settings_dict['HOST'] or '127.0.0.1'}:"
        f"{connection.settings_dict['PORT'] or 5432}/{connection.settings_dict['NAME']}")
    env = {**os.environ, "DATABASE_URL": db, "MEDIA_ROOT": str(settings.MEDIA_ROOT), "CELERY_BROKER_URL": url,
           "EXPORT_ROOT": settings.EXPORT["ROOT"], "EXPORT_SHARDS_PER_TASK": str(settings.EXPORT["SHARDS_PER_TASK"]),
           "PLATFORM_VAR_DIR": str(tmp / "worker-var")}
    procs = [subprocess.Popen([sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo", "-n",
                               f"bench{i}@%h", "--without-gossip", "--without-mingle", "--loglevel", "WARNING"],
                              cwd=Path(__file__).resolve().parent.parent, env=env) for i in range(n)]
    try:
        time.sleep(8)  # the workers start and connect
        services._rows_cache.clear()
        t = time.perf_counter()
        export = services.start_export(snapshot, f"workers-{n}", options.as_dict(), None)
        deadline = time.monotonic() + 300
        while Export.objects.get(pk=export.pk).status in ("queued", "running"):
            if time.monotonic() > deadline:
                raise SystemExit(f"export on {n} worker(s) did not finish within 300 s")
            time.sleep(0.05)
        seconds = time.perf_counter() - t
        export.refresh_from_db()
        assert export.status == "done", export.error
        return seconds
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(timeout=60)
        redis.Redis.from_url(url).flushdb()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--photos", type=int, default=5000)
    parser.add_argument("--comments", type=int, default=3)
    parser.add_argument("--max-samples", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", default="", help="Also on Celery workers over Redis (database 14), e.g. "
                                                       "1,2: that many `celery worker --pool solo` processes.")
    parser.add_argument("--shards-per-task", type=int, default=None)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-export-run-"))
    connection, old_name = setup_django(tmp, "bench_export_run")
    try:
        from django.conf import settings

        from datasets.export import services
        from datasets.export.layout import ExportOptions
        from datasets.export.source import export_to_directory

        settings.MEDIA_ROOT = str(tmp / "media")
        settings.EXPORT = {**settings.EXPORT, "ROOT": str(tmp / "exports")}
        if args.shards_per_task:
            settings.EXPORT["SHARDS_PER_TASK"] = args.shards_per_task
        snapshot, samples = build(args.photos, args.comments)
        options = ExportOptions(max_samples=args.max_samples)
        times = {"single": [], "orchestrated": []}
        for round_ in range(args.repeat):
            single = tmp / f"single-{round_}"
            t = time.perf_counter()
            export_to_directory(snapshot, single, options)
            times["single"].append(time.perf_counter() - t)
            services._rows_cache.clear()  # each run reads the rows, as a fresh worker does
            t = time.perf_counter()
            export = services.run_export(services.start_export(snapshot, f"o{round_}", options.as_dict(), None,
                                                               enqueue=False))
            times["orchestrated"].append(time.perf_counter() - t)
            assert export.status == "done", export.error
            if round_ == 0:
                a = {p.relative_to(single): p.read_bytes() for p in single.rglob("*") if p.is_file()}
                root = Path(export.folder)
                b = {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()}
                assert a == b, "the two exports differ"
            shutil.rmtree(single)
            shutil.rmtree(export.folder)
        med = {k: sorted(v)[len(v) // 2] for k, v in times.items()}
        print(f"{args.photos:,} photos, {samples:,} samples, {export.shards_total} shards "
              f"({settings.EXPORT['SHARDS_PER_TASK']} a group), {connection.vendor}")
        for k in ("single", "orchestrated"):
            print(f"  {k:13s} {med[k]:7.2f} s  {samples / med[k]:9,.0f} samples/s")
        print(f"  orchestrated / single: {med['single'] / med['orchestrated']:.2f} (of the single writer's speed)")
        for n in [int(w) for w in args.workers.split(",") if w]:
            seconds = on_workers(n, snapshot, options, tmp, connection)
            print(f"  {n} worker(s)   {seconds:7.2f} s  {samples / seconds:9,.0f} samples/s (queued to done)")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
