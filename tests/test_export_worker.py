"""Exports on real Celery workers over Redis (database 14): the fan-out of shard groups and the
finishing step without a result backend, and a worker SIGKILLed in the middle of an export, after
which the resumed export finishes with the same SHA256SUMS as an uninterrupted one and no file
under a final name is half-written."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from celery.contrib.testing.worker import start_worker
from django.db import OperationalError

from config.celery import app as celery_app
from datasets.export import services
from datasets.models import ACTIVE_EXPORT_STATUSES, Export, ExportStatus
from tests.conftest import require_service
from tests.exporting import check_sums, folder_files, make_snapshot
from tests.test_celery_worker import broker
from tests.test_import_lifecycle import ROOT, _database_url

REDIS_URL = "redis://127.0.0.1:6379/14"
WAIT_SECONDS = 120

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture(autouse=True)
def _redis_14(settings, tmp_path):
    require_service("127.0.0.1", 6379, "Redis")
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()  # database 14 is these tests' own
    settings.EXPORT = {**settings.EXPORT, "ROOT": str(tmp_path / "exports"), "SHARDS_PER_TASK": 2}
    services._rows_cache.clear()
    yield
    redis.Redis.from_url(REDIS_URL).flushdb()


def wait_until_finished(export_id: int, *, until=None) -> Export:
    deadline = time.monotonic() + WAIT_SECONDS
    export = None
    while time.monotonic() < deadline:
        try:
            export = Export.objects.get(pk=export_id)
        except OperationalError:  # SQLite: a table briefly locked by the worker
            time.sleep(0.05)
            continue
        if (until or (lambda e: e.status not in ACTIVE_EXPORT_STATUSES))(export):
            return export
        time.sleep(0.02)
    pytest.fail(f"export {export_id} did not get there within {WAIT_SECONDS} s "
                f"({export and export.status}, {export and export.shards_done} shards)")


def test_an_export_fans_out_over_a_real_worker_and_finishes_once(tmp_path):
    snapshot = make_snapshot(12, 2)
    reference = services.run_export(services.start_export(snapshot, "reference", {"max_samples": 4}, None,
                                                          enqueue=False))
    with broker(REDIS_URL):
        with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
            export = services.start_export(snapshot, "worker", {"max_samples": 4}, None)
            assert export.status == ExportStatus.QUEUED and export.shards_total >= 4
            export = wait_until_finished(export.pk)
    assert export.status == ExportStatus.DONE, export.error
    assert export.shards_done == export.shards_total
    assert export.sums_sha256 == reference.sums_sha256
    check_sums(export.folder)


def test_a_worker_killed_mid_export_then_resumed_ends_with_the_same_sha256sums(tmp_path, settings):
    url = _database_url()
    if url is None:
        pytest.skip("needs a database another process can open (SQLite on a file: SQLITE_TEST_NAME, or PostgreSQL)")
    options = {"max_samples": 1, "image_mode": "resized", "shortest_side": 256}
    snapshot = make_snapshot(30, 2, size=(1600, 1200))
    reference = services.run_export(services.start_export(snapshot, "reference", options, None, enqueue=False))
    assert reference.status == ExportStatus.DONE
    expected = folder_files(reference.folder)

    env = {**os.environ, "DATABASE_URL": url, "MEDIA_ROOT": str(settings.MEDIA_ROOT),
           "PLATFORM_VAR_DIR": str(tmp_path / "var"), "CELERY_BROKER_URL": REDIS_URL,
           "EXPORT_ROOT": settings.EXPORT["ROOT"], "CELERY_TASK_ALWAYS_EAGER": "0"}
    env.pop("SQLITE_TEST_NAME", None)
    with broker(REDIS_URL):
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo", "--without-gossip",
             "--without-mingle", "--without-heartbeat", "--loglevel", "WARNING"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        try:
            export = services.start_export(snapshot, "killed", options, None)
            total = export.shards_total
            wait_until_finished(export.pk, until=lambda e: e.shards_done >= 3 or proc.poll() is not None)
            assert proc.poll() is None, proc.stdout.read().decode()
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        export.refresh_from_db()
        assert export.status == ExportStatus.RUNNING and 3 <= export.shards_done < total
        # Whatever the kill left under a final name is whole (temporary names start with a dot).
        left = folder_files(export.folder)
        final = {p: b for p, b in left.items() if not Path(p).name.startswith(".")}
        assert final and all(expected[p] == b for p, b in final.items())
        assert "SHA256SUMS" not in final  # never marked finished

        settings.EXPORT = {**settings.EXPORT, "STALE_SECONDS": 0}  # its heartbeat is old enough now
        services.resume_export(export)
        with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
            export = wait_until_finished(export.pk)
    assert export.status == ExportStatus.DONE, export.error
    assert export.shards_done == total
    assert export.sums_sha256 == reference.sums_sha256
    done = folder_files(export.folder)
    assert {p: b for p, b in done.items() if not Path(p).name.startswith(".")} == expected
