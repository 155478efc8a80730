"""An import's life when things go wrong around it: a worker or command killed mid-way, task time
limits, storage failures, resuming, one report line per entry, and the browser upload with an
empty file in the selection."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.core.files.storage import FileSystemStorage, default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from datasets import imaging, readers, services, tasks
from datasets.models import Image, ImportItem, ImportJob, ImportStatus, Outcome
from tests.conftest import make_photo

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _sweep_every_time(monkeypatch):
    """The pages sweep stalled imports at most once a minute per process; tests want it each time."""
    monkeypatch.setattr(services, "_last_stall_sweep", None)


def staged_upload(source, files) -> ImportJob:
    return services.create_import(source=source, files=[SimpleUploadedFile(n, d) for n, d in files], enqueue=False)


def staged_keys(job: ImportJob) -> list[str]:
    return [s["key"] for s in job.params["staged"]]


# ---------------------------------------------------------------- stalled imports


@pytest.mark.django_db
def test_a_running_import_without_a_sign_of_life_is_marked_interrupted(source, settings):
    settings.INGEST = {**settings.INGEST, "STALE_SECONDS": 600}
    dead = staged_upload(source, [("a.jpg", make_photo(seed=1))])
    alive = staged_upload(source, [("b.jpg", make_photo(seed=2))])
    now = timezone.now()
    ImportJob.objects.filter(pk=dead.pk).update(status=ImportStatus.RUNNING, started_at=now - timedelta(hours=1),
                                                heartbeat_at=now - timedelta(minutes=11))
    ImportJob.objects.filter(pk=alive.pk).update(status=ImportStatus.RUNNING, started_at=now - timedelta(hours=1),
                                                 heartbeat_at=now - timedelta(minutes=2))

    assert services.sweep_stalled_imports() == 1
    dead.refresh_from_db()
    alive.refresh_from_db()
    assert dead.status == ImportStatus.INTERRUPTED and "No progress for 10 minutes" in dead.error
    assert alive.status == ImportStatus.RUNNING
    # An interrupted import keeps its staged files for a resume.
    assert all(FileSystemStorage(settings.MEDIA_ROOT).exists(k) for k in staged_keys(dead))


@pytest.mark.django_db
def test_the_import_page_shows_an_interrupted_import_and_a_planner_resumes_it(client, users, source, settings,
                                                                             django_capture_on_commit_callbacks):
    job = staged_upload(source, [("a.jpg", make_photo(seed=3)), ("b.jpg", make_photo(seed=4))])
    ImportJob.objects.filter(pk=job.pk).update(status=ImportStatus.RUNNING, started_at=timezone.now(),
                                               heartbeat_at=timezone.now() - timedelta(hours=1))
    client.force_login(users["engineer"])
    page = client.get(reverse("import-detail", args=[job.pk]), HTTP_ACCEPT_LANGUAGE="en")
    assert b"Interrupted" in page.content and b"No progress for" in page.content
    assert b"Resume import" not in page.content  # engineers read; planners act
    assert client.post(reverse("import-resume", args=[job.pk])).status_code == 403

    client.force_login(users["planner"])
    page = client.get(reverse("import-detail", args=[job.pk]), HTTP_ACCEPT_LANGUAGE="en")
    assert b"Resume import" in page.content
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("import-resume", args=[job.pk]))
    assert response.status_code == 302
    job.refresh_from_db()
    assert (job.status, job.accepted, job.error) == (ImportStatus.DONE, 2, "")
    assert not [k for k in staged_keys(job) if FileSystemStorage(settings.MEDIA_ROOT).exists(k)]

    progress = client.get(reverse("import-progress", args=[job.pk])).json()
    assert progress["finished"] is True


@pytest.mark.django_db
def test_the_api_resumes_an_interrupted_import_and_refuses_anything_else(api, source, django_capture_on_commit_callbacks):
    job = staged_upload(source, [("a.jpg", make_photo(seed=5))])
    services.interrupt_import(job.pk, "Stopped by Ctrl-C.")
    url = f"/api/imports/{job.pk}/resume/"
    assert api("engineer").post(url).status_code == 403
    assert api("labeler").post(url).status_code == 403

    with django_capture_on_commit_callbacks(execute=True):
        response = api("planner").post(url)
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "queued"
    assert api("planner").get(f"/api/imports/{job.pk}/").json()["accepted"] == 1

    again = api("planner").post(url)
    assert again.status_code == 409 and again.json()["code"] == "not_interrupted"
    assert api("engineer").get(f"/api/imports/{job.pk}/").json()["heartbeat_at"]


# ---------------------------------------------------------------- a command killed mid-way


def _database_url() -> str | None:
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        if connection.creation.is_in_memory_db(s["NAME"]):
            return None
        return f"sqlite:///{s['NAME']}"
    return f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def _children(pid: int) -> list[int]:
    """The process ids whose parent is `pid` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _running(pid: int) -> bool:
    """Whether `pid` is alive (a zombie nobody reaped yet has ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# Another process must see the rows: committed transactions; serialized_rollback restores the
# seeded licences and categories for the tests after this one.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.parametrize("kind", ["threads", "processes"])
def test_a_killed_ingest_folder_is_marked_interrupted_and_resume_finishes_it(tmp_path, settings, kind):
    url = _database_url()
    if url is None:
        pytest.skip("needs a database another process can open (SQLite on a file, as scripts/test.sh runs it, or PostgreSQL)")
    folder = tmp_path / "photos"
    folder.mkdir()
    for n in range(40):
        (folder / f"p{n:02d}.jpg").write_bytes(make_photo(1600, 1200, seed=200 + n))
    env = {**os.environ, "DATABASE_URL": url, "MEDIA_ROOT": str(settings.MEDIA_ROOT), "PLATFORM_VAR_DIR": str(tmp_path / "var"),
           "INGEST_WORKER_THREADS": "2", "INGEST_WORKER_KIND": kind}
    env.pop("SQLITE_TEST_NAME", None)
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "ingest_folder", str(folder), "--source", "Killed", "--licence", "cc0-1.0",
         "--category", "food", "--verbosity", "0"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            job = ImportJob.objects.first()
            if job is not None and job.processed >= 3:
                break
            assert proc.poll() is None, proc.stdout.read().decode()
            time.sleep(0.02)
        else:
            pytest.fail("the command reported nothing within 60 s")
        workers = _children(proc.pid)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert (len(workers) == 2) == (kind == "processes")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_running(pid) for pid in workers):
        time.sleep(0.05)
    assert not any(_running(pid) for pid in workers)  # worker processes end with the killed import
    job.refresh_from_db()
    assert job.status == ImportStatus.RUNNING and 3 <= job.processed < 40  # what a kill leaves today

    settings.INGEST = {**settings.INGEST, "STALE_SECONDS": 0}
    assert services.sweep_stalled_imports() == 1
    job.refresh_from_db()
    assert job.status == ImportStatus.INTERRUPTED

    call_command("resume_import", str(job.pk), verbosity=0, stdout=open(os.devnull, "w"))
    job.refresh_from_db()
    assert (job.status, job.processed, job.accepted) == (ImportStatus.DONE, 40, 40)
    assert list(job.items.order_by("position").values_list("position", flat=True)) == list(range(40))
    assert Image.objects.count() == 40
    # What the kill caught written ahead of its rows (at most the read-ahead window: a batch and
    # twice the worker threads, two files each) is left as orphan files, which the sweep removes.
    window = services.BATCH_SIZE + 2 * services._worker_threads()
    assert len(services.remove_orphan_files(min_age=timedelta(0))) <= 2 * window
    assert services.remove_orphan_files(min_age=timedelta(0)) == []
    assert all(default_storage.exists(i.file.name) and default_storage.exists(i.thumbnail.name)
               for i in Image.objects.all())


# ---------------------------------------------------------------- task time limits


def test_the_import_task_has_soft_and_hard_time_limits(settings):
    task = tasks.run_import_task
    assert task.soft_time_limit == settings.INGEST["TASK_SOFT_TIME_LIMIT"] > 0
    assert task.time_limit == settings.INGEST["TASK_HARD_TIME_LIMIT"] > task.soft_time_limit


@pytest.mark.django_db
def test_an_import_past_its_soft_limit_goes_on_in_a_new_task(source, settings, monkeypatch):
    """With a limit of zero, each task judges one file and hands the rest to the next."""
    settings.INGEST = {**settings.INGEST, "TASK_SOFT_TIME_LIMIT": 0}
    job = staged_upload(source, [(f"p{n}.jpg", make_photo(200, 150, seed=300 + n)) for n in range(4)])
    runs = []
    real = services.run_import
    monkeypatch.setattr(services, "run_import", lambda job_id, **kw: runs.append(job_id) or real(job_id, **kw))
    tasks.run_import_task.delay(job.pk)
    job.refresh_from_db()
    assert (job.status, job.accepted) == (ImportStatus.DONE, 4)
    assert len(runs) == 4  # one file each


@pytest.mark.django_db
def test_a_file_slow_past_the_soft_limit_is_refused_and_the_batch_goes_on(source, monkeypatch):
    slow = make_photo(200, 150, seed=311)
    real = imaging.process

    def process(data, limits=None):
        if data == slow:
            raise SoftTimeLimitExceeded()
        return real(data, limits)

    monkeypatch.setattr(imaging, "process", process)
    job = staged_upload(source, [("a.jpg", make_photo(200, 150, seed=310)), ("slow.jpg", slow),
                                 ("c.jpg", make_photo(200, 150, seed=312))])
    tasks.run_import_task.delay(job.pk)
    job.refresh_from_db()
    assert (job.status, job.accepted, job.refused) == (ImportStatus.DONE, 2, 1)
    assert "time limit" in job.items.get(name="slow.jpg").reason


@pytest.mark.django_db
def test_storage_down_after_the_retries_leaves_the_import_interrupted_with_its_files(source, settings, monkeypatch,
                                                                                    django_capture_on_commit_callbacks):
    job = staged_upload(source, [("a.jpg", make_photo(seed=320)), ("notes.jpg", b"not an image")])
    real_save = FileSystemStorage._save

    def refuse_images(self, name, content):
        if name.startswith(("images/", "thumbs/")):
            raise OSError(28, "No space left on device")
        return real_save(self, name, content)

    monkeypatch.setattr(FileSystemStorage, "_save", refuse_images)
    with pytest.raises(services.StorageUnavailable):
        tasks.run_import_task.apply(args=[job.pk], retries=tasks.run_import_task.max_retries)
    job.refresh_from_db()
    assert job.status == ImportStatus.INTERRUPTED and "No space left on device" in job.error
    assert "resume the import" in job.error
    assert all(FileSystemStorage(settings.MEDIA_ROOT).exists(k) for k in staged_keys(job))  # kept for the resume

    monkeypatch.setattr(FileSystemStorage, "_save", real_save)
    with django_capture_on_commit_callbacks(execute=True):
        services.resume_import(job)
    job.refresh_from_db()
    assert (job.status, job.accepted, job.refused) == (ImportStatus.DONE, 1, 1)


# ---------------------------------------------------------------- one line per entry


@pytest.mark.django_db
def test_an_entry_reported_by_another_run_is_not_reported_or_counted_twice(source):
    job = staged_upload(source, [("a.jpg", b"")])
    entry = readers.Entry(name="a.jpg", error="Empty file (0 bytes).")
    refused = services.Result(Outcome.REFUSED, reason="Empty file (0 bytes).")
    services._record_item(job, 0, entry, refused)
    services._record_item(job, 0, entry, refused)
    job.refresh_from_db()
    assert ImportItem.objects.filter(job=job).count() == 1
    assert (job.processed, job.refused) == (1, 1)


# ---------------------------------------------------------------- the browser upload


@pytest.mark.django_db
def test_an_empty_file_in_the_browser_upload_is_refused_on_its_own_line(client, users, source,
                                                                       django_capture_on_commit_callbacks):
    client.force_login(users["planner"])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("import-new"), {
            "source": source.pk, "mode": "files",
            "files": [SimpleUploadedFile("empty.jpg", b""), SimpleUploadedFile("good.jpg", make_photo(seed=330))],
        })
    assert response.status_code == 302, response.content.decode()[:2000]
    job = ImportJob.objects.get()
    assert (job.status, job.accepted, job.refused) == (ImportStatus.DONE, 1, 1)
    assert "Empty file" in job.items.get(name="empty.jpg").reason


# ---------------------------------------------------------------- the orphan sweep


@pytest.mark.django_db
def test_the_orphan_sweep_keeps_an_interrupted_imports_files_until_it_is_given_up(source, settings):
    settings.INGEST = {**settings.INGEST, "INTERRUPTED_KEEP_DAYS": 7}
    job = staged_upload(source, [("a.jpg", make_photo(seed=340))])
    services.interrupt_import(job.pk, "Stopped by Ctrl-C.")
    storage = FileSystemStorage(settings.MEDIA_ROOT)
    assert services.remove_orphan_files(min_age=timedelta(0)) == []
    assert all(storage.exists(k) for k in staged_keys(job))

    ImportJob.objects.filter(pk=job.pk).update(finished_at=timezone.now() - timedelta(days=8))
    assert services.remove_orphan_files(dry_run=True, min_age=timedelta(0)) == staged_keys(job)
    assert ImportJob.objects.get(pk=job.pk).status == ImportStatus.INTERRUPTED  # a dry run changes nothing
    removed = services.remove_orphan_files(min_age=timedelta(0))
    assert removed == staged_keys(job) and not storage.exists(removed[0])
    job.refresh_from_db()
    assert job.status == ImportStatus.FAILED and "Not resumed within 7 days" in job.error
