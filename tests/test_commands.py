"""The command-line ingest: ingest_folder, ingest_manifest, cleanup_orphans (ingest_s3 is in
test_s3.py, against moto's server)."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command

from config.celery import app as celery_app
from datasets import services
from datasets.models import Image, ImportJob, ImportStatus, Source
from tests import corpus
from tests.conftest import make_photo

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parent.parent


def run(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "incoming"
    (root / "sub").mkdir(parents=True)
    (root / "a.jpg").write_bytes(make_photo(seed=1))
    (root / "sub" / "b.png").write_bytes(make_photo(seed=2, fmt="PNG"))
    (root / "sub" / "a-copy.jpg").write_bytes(make_photo(seed=1))
    (root / "broken.jpg").write_bytes(corpus.truncated_jpeg())
    return root


def test_ingest_folder_creates_the_source_and_reports(folder):
    out, err = run("ingest_folder", str(folder), "--source", "NAS photos", "--licence", "cc0-1.0",
                   "--category", "places", "--subcategory", "outdoor", "--author", "Team")
    source = Source.objects.get(name="NAS photos")
    assert (source.kind, source.default_licence.code) == ("folder", "cc0-1.0")
    job = ImportJob.objects.get()
    assert "Created source 'NAS photos' (folder, default licence cc0-1.0)." in out
    assert f"Import {job.pk} done: 2 accepted, 1 duplicates, 1 refused." in out
    assert "  refused    broken.jpg: Corrupt or truncated image" in out
    a = Image.objects.get(original_name="a.jpg")
    assert f"  duplicate  sub/a-copy.jpg: of image {a.pk}" in out
    assert (a.subcategory.slug, a.author, a.licence.code) == ("outdoor", "Team", "cc0-1.0")
    # The progress bar went to stderr and reached the end.
    assert f"Import {job.pk}" in err and "4/4" in err and "100%" in err


def test_ingest_folder_reuses_an_existing_source(folder, source):
    run("ingest_folder", str(folder), "--source", source.name, "--category", "food")
    assert Source.objects.count() == 1
    assert Image.objects.filter(source=source, licence=source.default_licence).count() == 2


@pytest.mark.parametrize("args,message", [
    (["--source", "New one", "--category", "food"], "does not exist; give --licence CODE"),
    (["--source", "New one", "--category", "food", "--licence", "wtfpl"], "Unknown licence 'wtfpl'"),
    (["--source", "New one", "--category", "drinks", "--licence", "cc0-1.0"], "Unknown category 'drinks'"),
    (["--source", "New one", "--category", "food", "--subcategory", "pet", "--licence", "cc0-1.0"],
     "Category Food / 음식 has no subcategory 'pet'"),
    (["--source", "New one", "--category", "food", "--licence", "cc-by-nc-4.0"], "does not allow commercial use"),
])
def test_ingest_folder_bad_arguments(folder, args, message):
    with pytest.raises(CommandError, match=message):
        run("ingest_folder", str(folder), *args)
    assert not ImportJob.objects.exists() and not Image.objects.exists()


def test_ingest_folder_missing_folder_exits_non_zero(tmp_path):
    """Through manage.py, as a user runs it: exit status 1 and the reason on stderr."""
    env = {**os.environ, "PLATFORM_VAR_DIR": str(tmp_path / "var")}
    proc = subprocess.run(
        [sys.executable, "manage.py", "ingest_folder", str(tmp_path / "nope"), "--source", "x", "--category", "food"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 1
    assert f"Folder not found: {tmp_path / 'nope'}" in proc.stderr


def test_ingest_folder_requires_category(folder):
    with pytest.raises(CommandError, match="--category"):
        run("ingest_folder", str(folder), "--source", "x")


@pytest.fixture
def eager():
    """Set the Celery app's eager mode for one test (its conf is not a plain object to monkeypatch)."""
    before = celery_app.conf.task_always_eager

    def set_eager(value: bool) -> None:
        celery_app.conf.task_always_eager = value

    yield set_eager
    celery_app.conf.task_always_eager = before


@pytest.fixture
def commit_now(monkeypatch):
    """The test's transaction never commits: run on_commit callbacks (the enqueue) at once."""
    monkeypatch.setattr("django.db.transaction.on_commit", lambda func, using=None, robust=False: func())


def test_ingest_folder_queue_follows_the_job(folder, eager, commit_now):
    eager(True)
    out, err = run("ingest_folder", str(folder), "--source", "Queued", "--licence", "cc0-1.0", "--category", "food", "--queue")
    job = ImportJob.objects.get()
    assert f"Import {job.pk} queued" in out
    assert f"Import {job.pk} done: 2 accepted, 1 duplicates, 1 refused." in out


def test_ingest_folder_queue_without_a_worker_times_out_clearly(folder, monkeypatch, eager, commit_now):
    eager(False)
    sent = []
    monkeypatch.setattr("datasets.tasks.run_import_task.delay", lambda job_id: sent.append(job_id))
    with pytest.raises(CommandError, match=r"still queued after 0.2 s .* Is a Celery worker running\?"):
        run("ingest_folder", str(folder), "--source", "Q", "--licence", "cc0-1.0", "--category", "food",
            "--queue", "--timeout", "0.2")
    assert sent == [ImportJob.objects.get().pk]


def test_storage_failure_interrupts_the_import_and_resume_finishes_it(folder, monkeypatch, settings):
    """A disk that refuses writes is nobody's file's fault: the import stops, exits non-zero, keeps
    its report, and resume_import finishes it once the disk is back."""
    from django.core.files.storage import FileSystemStorage

    real_save = FileSystemStorage._save

    def disk_full(self, name, content):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(FileSystemStorage, "_save", disk_full)
    with pytest.raises(CommandError, match=r"interrupted by StorageUnavailable: .*No space left on device.*resume_import"):
        run("ingest_folder", str(folder), "--source", "C", "--licence", "cc0-1.0", "--category", "food")
    job = ImportJob.objects.get()
    assert job.status == ImportStatus.INTERRUPTED and "No space left on device" in job.error
    assert (job.processed, Image.objects.count()) == (0, 0)

    monkeypatch.setattr(FileSystemStorage, "_save", real_save)
    out, _ = run("resume_import", str(job.pk))
    job.refresh_from_db()
    assert job.status == ImportStatus.DONE and job.items.count() == job.total
    assert f"Import {job.pk} done:" in out


def test_an_unexpected_error_judging_one_file_refuses_that_file_only(folder, monkeypatch):
    from datasets import services

    real = services.ingest_one

    def boom_on_png(data, **kwargs):
        if kwargs.get("original_name", "").endswith(".png"):
            raise RuntimeError("a bug in a decoder")
        return real(data, **kwargs)

    monkeypatch.setattr("datasets.services.ingest_one", boom_on_png)
    out, _ = run("ingest_folder", str(folder), "--source", "C", "--licence", "cc0-1.0", "--category", "food")
    job = ImportJob.objects.get()
    assert job.status == ImportStatus.DONE
    refused = job.items.get(name="sub/b.png")
    assert refused.outcome == "refused" and "unexpected error (RuntimeError)" in refused.reason
    assert (job.accepted, job.duplicates, job.refused) == (1, 1, 2)  # a.jpg, its copy, b.png and broken.jpg


def test_resume_import_refuses_what_is_not_interrupted(folder):
    run("ingest_folder", str(folder), "--source", "C", "--licence", "cc0-1.0", "--category", "food")
    job = ImportJob.objects.get()
    with pytest.raises(CommandError, match="only an interrupted import can be resumed"):
        run("resume_import", str(job.pk))
    with pytest.raises(CommandError, match="There is no import 999"):
        run("resume_import", "999")


def test_ingest_manifest_csv_paths_relative_to_the_manifest(folder, tmp_path):
    manifest = folder / "list.csv"
    manifest.write_text(
        "path,category,licence,author,title\n"
        "a.jpg,food,cc-by-2.0,Kim,Bibimbap\n"
        "sub/b.png,animals,,Lee,Cat\n"
        "sub/b.png,animals,cc-by-nc-4.0,Lee,Cat again\n"
        "missing.jpg,food,,,\n"
        "a.jpg,food,cc0-1.0,too,many,fields\n",
        encoding="utf-8",
    )
    out, _ = run("ingest_manifest", str(manifest), "--source", "Manifest", "--licence", "cc-by-4.0")
    assert "done: 2 accepted, 0 duplicates, 3 refused." in out
    assert "  refused    row 4: sub/b.png: Licence CC BY-NC 4.0 does not allow commercial use" in out
    assert "  refused    row 5: missing.jpg: Cannot read:" in out
    assert "  refused    row 6: line 6: 6 fields, the header has 5" in out
    kim = Image.objects.get(author="Kim")
    assert (kim.licence.code, kim.title, kim.category.slug) == ("cc-by-2.0", "Bibimbap", "food")
    assert Image.objects.get(author="Lee").licence.code == "cc-by-4.0"  # the command's default
    assert Source.objects.get(name="Manifest").kind == "manifest"


def test_ingest_manifest_jsonl_with_base(folder, tmp_path):
    manifest = tmp_path / "rows.jsonl"
    manifest.write_text("\n".join(json.dumps(r) for r in [
        {"path": "a.jpg", "category": "food", "subcategory": "korean"},
        {"path": "sub/b.png"},
    ]) + "\n{broken\n", encoding="utf-8")
    out, _ = run("ingest_manifest", str(manifest), "--base", str(folder), "--source", "J", "--licence", "cc0-1.0")
    assert "done: 2 accepted, 0 duplicates, 1 refused." in out
    assert "  refused    row 3: line 3: not valid JSON" in out


def test_ingest_manifest_bad_files(tmp_path):
    with pytest.raises(CommandError, match="Manifest not found"):
        run("ingest_manifest", str(tmp_path / "none.csv"), "--source", "M", "--licence", "cc0-1.0")
    bad = tmp_path / "bad.csv"
    bad.write_text("name,author\nx,y\n")
    with pytest.raises(CommandError, match="'path' or 'url' column"):
        run("ingest_manifest", str(bad), "--source", "M", "--licence", "cc0-1.0")
    latin = tmp_path / "latin.csv"
    latin.write_bytes("path\ncaf\xe9.jpg\n".encode("latin-1"))
    with pytest.raises(CommandError, match="not UTF-8"):
        run("ingest_manifest", str(latin), "--source", "M", "--licence", "cc0-1.0")
    with pytest.raises(CommandError, match="--base folder not found"):
        run("ingest_manifest", str(bad), "--base", str(tmp_path / "nope"), "--source", "M", "--licence", "cc0-1.0")
    assert not ImportJob.objects.exists()


def test_cleanup_orphans(source, settings):
    kept = services.ingest_one(make_photo(seed=9), source=source).image
    default_storage.save("images/00/00/stray.jpg", ContentFile(b"x"))
    out, _ = run("cleanup_orphans", "--dry-run")
    assert "0 orphan file(s) would be deleted." in out  # too young by default
    out, _ = run("cleanup_orphans", "--dry-run", "--min-age-minutes", "0")
    assert "would delete images/00/00/stray.jpg" in out and "1 orphan file(s) would be deleted." in out
    assert default_storage.exists("images/00/00/stray.jpg")
    out, _ = run("cleanup_orphans", "--min-age-minutes", "0")
    assert "deleted images/00/00/stray.jpg" in out
    assert not default_storage.exists("images/00/00/stray.jpg")
    assert default_storage.exists(kept.file.name) and default_storage.exists(kept.thumbnail.name)
    with pytest.raises(CommandError, match="cannot be negative"):
        run("cleanup_orphans", "--min-age-minutes", "-1")
