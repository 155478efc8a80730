"""An import through a real Celery worker (a thread in this process): on the Redis broker, and on
the embedded default broker (a folder on disk). The worker reads the committed rows, so these
tests use a transactional database. On SQLite the test database is in memory with a shared cache,
which the worker thread's own connection sees (as Django's live-server tests rely on)."""
from __future__ import annotations

import contextlib
import multiprocessing
import os
import time
from pathlib import Path

import pytest
from celery.contrib.testing.worker import start_worker
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import OperationalError
from kombu import pools as kombu_pools

from config.celery import app as celery_app
from datasets import services
from datasets.models import Image, ImportJob, ImportStatus, Licence, Source
from tests import corpus
from tests.conftest import make_photo, require_service

WAIT_SECONDS = 60
REDIS_URL = os.environ.get("TEST_CELERY_REDIS_URL", "redis://127.0.0.1:6379/15")

transactional = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@contextlib.contextmanager
def broker(url: str, transport_options: dict | None = None, transport: str | None = None):
    """Point the Celery app at `url` (and back afterwards), with eager mode off."""
    conf = celery_app.conf
    keys = ("broker_url", "broker_transport", "broker_transport_options", "task_always_eager")
    saved = {key: conf[key] for key in keys}
    conf.broker_url = url
    conf.broker_transport = transport
    conf.broker_transport_options = transport_options or {}
    conf.task_always_eager = False
    celery_app._pool = None  # connections are pooled per app: forget the old broker's
    celery_app.amqp._producer_pool = None
    try:
        yield
    finally:
        if celery_app._pool is not None:
            celery_app._pool.force_close_all()
        for key, value in saved.items():
            conf[key] = value
        celery_app._pool = None
        celery_app.amqp._producer_pool = None
        # kombu keeps its pools in a registry keyed by broker URL: the next test on the same URL
        # would get the pool closed above ("Acquire on closed pool").
        kombu_pools.reset()


def wait_until_finished(job_id: int) -> ImportJob:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        try:
            job = ImportJob.objects.get(pk=job_id)
        except OperationalError:  # SQLite's shared in-memory test database: a table briefly locked
            time.sleep(0.1)
            continue
        if job.status in (ImportStatus.DONE, ImportStatus.FAILED):
            return job
        time.sleep(0.2)
    pytest.fail(f"import {job_id} did not finish within {WAIT_SECONDS} s (status {job.status}, {job.processed} processed)")


def enqueue_and_wait() -> ImportJob:
    source = Source.objects.create(kind="upload", name="Worker test", default_licence=Licence.objects.get(code="cc0-1.0"))
    files = [
        SimpleUploadedFile("a.jpg", make_photo(seed=1)),
        SimpleUploadedFile("a-again.jpg", make_photo(seed=1)),
        SimpleUploadedFile("b.zip", corpus.zip_of({"b.png": make_photo(seed=2, fmt="PNG")})),
        SimpleUploadedFile("bad.jpg", corpus.truncated_jpeg()),
    ]
    job = services.create_import(source=source, files=files, category="food", enqueue=True)
    assert job.status == ImportStatus.QUEUED  # not run here: a worker picks it up
    return wait_until_finished(job.pk)


def check_report(job: ImportJob) -> None:
    assert job.status == ImportStatus.DONE, job.error
    assert (job.total, job.accepted, job.duplicates, job.refused) == (4, 2, 1, 1)
    outcomes = dict(job.items.values_list("name", "outcome"))
    assert outcomes == {"a.jpg": "accepted", "a-again.jpg": "duplicate", "b.zip/b.png": "accepted", "bad.jpg": "refused"}
    assert Image.objects.filter(import_job=job, category__slug="food").count() == 2


@pytest.mark.redis
@transactional
def test_import_runs_on_a_real_worker_over_redis():
    require_service("127.0.0.1", 6379, "Redis")
    with broker(REDIS_URL):
        celery_app.control.purge()  # nothing left over from an earlier run
        with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
            job = enqueue_and_wait()
    check_report(job)


@transactional
@pytest.mark.parametrize("kind", ["threads", "processes"])
def test_import_runs_on_a_real_worker_over_the_embedded_filesystem_broker(tmp_path, settings, kind):
    """The one-command run's broker; files judged in worker threads, or in worker processes
    (INGEST_WORKER_KIND) the task's process forks and ends."""
    settings.INGEST = {**settings.INGEST, "WORKER_THREADS": 2, "WORKER_KIND": kind}
    folder = tmp_path / "broker"
    options = {"data_folder_in": str(folder), "data_folder_out": str(folder), "processed_folder": str(folder / "done"),
               "control_folder": str(folder / "control"), "store_processed": False, "polling_interval": 0.1}
    for path in (folder, folder / "done", folder / "control"):
        path.mkdir(parents=True, exist_ok=True)
    with broker("filesystem://", options, transport="config.broker:Transport"):
        with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
            job = enqueue_and_wait()
    check_report(job)
    assert not [p for p in folder.iterdir() if p.is_file()]  # the message was consumed
    assert multiprocessing.active_children() == []


@transactional
def test_an_imports_photos_join_an_open_project_on_a_real_worker(tmp_path):
    """Issue 8: the import's task announces its photos when it finishes; the join task it queues
    runs on the worker and adds them to the open project that follows new photos."""
    from datasets.models import Category
    from labeling import services as labeling
    from labeling.models import Project, ProjectImage

    project = labeling.create_project("joins on the worker", categories=[Category.objects.get(slug="food")])
    folder = tmp_path / "broker"
    options = {"data_folder_in": str(folder), "data_folder_out": str(folder), "processed_folder": str(folder / "done"),
               "control_folder": str(folder / "control"), "store_processed": False, "polling_interval": 0.1}
    for path in (folder, folder / "done", folder / "control"):
        path.mkdir(parents=True, exist_ok=True)
    with broker("filesystem://", options, transport="config.broker:Transport"):
        with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
            job = enqueue_and_wait()
            deadline = time.monotonic() + WAIT_SECONDS
            while time.monotonic() < deadline and ProjectImage.objects.filter(project=project).count() < 2:
                time.sleep(0.2)
    check_report(job)
    assert set(ProjectImage.objects.filter(project=project).values_list("image_id", flat=True)) == set(
        Image.objects.filter(import_job=job).values_list("pk", flat=True))
    project = Project.objects.get(pk=project.pk)
    assert project.last_joined_count == 2 and project.last_joined_at is not None


def test_the_embedded_broker_never_shows_a_half_written_message(tmp_path, monkeypatch):
    """kombu's own filesystem transport creates the message file before writing it, and a
    worker that lists the folder then reads an empty file and dies (JSONDecodeError). Ours
    writes elsewhere and renames: at no moment is a matching file empty."""
    import os

    from kombu import Connection

    from config import broker as embedded

    folder = tmp_path / "broker"
    folder.mkdir()
    seen = []
    real_replace = os.replace

    def spy(src, dst):
        seen.extend(p.name for p in folder.iterdir() if p.name.endswith(".q.msg"))
        real_replace(src, dst)

    monkeypatch.setattr(embedded.os, "replace", spy)
    options = {"data_folder_in": str(folder), "data_folder_out": str(folder), "store_processed": False}
    with Connection("filesystem://", transport="config.broker:Transport", transport_options=options) as conn:
        channel = conn.default_channel
        channel._put("q", {"body": "hello"})
        assert seen == []  # nothing matching existed while the message was being written
        assert [p.name.endswith(".q.msg") for p in folder.iterdir()] == [True]
        assert channel._get("q") == {"body": "hello"}


@pytest.mark.redis
@transactional
def test_poisoned_phone_and_korean_named_uploads_on_a_real_worker_over_redis(settings):
    """The upload path of issue 7 on a real worker: a decoder-crashing GIF, an empty file, a HEIC
    from a phone and a zip named on Korean Windows; each bad file refused on its own line."""
    require_service("127.0.0.1", 6379, "Redis")
    source = Source.objects.create(kind="upload", name="Phones", default_licence=Licence.objects.get(code="cc0-1.0"))
    zipped = corpus.zip_with_raw_names({"사진.jpg".encode("cp949"): make_photo(seed=40)})
    files = [
        SimpleUploadedFile("crash.gif", corpus.gif_with_trailing_garbage()),
        SimpleUploadedFile("empty.jpg", b""),
        SimpleUploadedFile("IMG_0001.HEIC", corpus.phone_photo("HEIF", seed=41)),
        SimpleUploadedFile("windows.zip", zipped),
        SimpleUploadedFile("good.jpg", make_photo(seed=42)),
    ]
    with broker(REDIS_URL):
        celery_app.control.purge()
        with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
            job = services.create_import(source=source, files=files, category="food", enqueue=True)
            job = wait_until_finished(job.pk)
    assert job.status == ImportStatus.DONE, job.error
    outcomes = {name: (outcome, reason) for name, outcome, reason in job.items.values_list("name", "outcome", "reason")}
    assert outcomes["crash.gif"][0] == "refused" and "Cannot decode this image" in outcomes["crash.gif"][1]
    assert outcomes["empty.jpg"][0] == "refused" and "Empty file" in outcomes["empty.jpg"][1]
    assert {outcomes[n][0] for n in ("IMG_0001.HEIC", "windows.zip/사진.jpg", "good.jpg")} == {"accepted"}
    assert (job.total, job.accepted, job.refused) == (5, 3, 2)
    staged = Path(settings.MEDIA_ROOT) / job.params["staging_prefix"]
    assert not staged.exists()  # staging removed when the import ended
