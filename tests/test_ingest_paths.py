"""Whole imports from server paths that try to break them: named pipes, links out of the allowed
roots, names that forge report lines, Korean names in NFD. Each bad file is one refused line of
the report and the batch goes on."""
from __future__ import annotations

import io
import json
import os
import unicodedata

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command

from datasets import services
from datasets.models import Image, ImportJob, ImportStatus
from tests.conftest import make_photo
from tests.test_readers import no_hang

pytestmark = pytest.mark.django_db


def ingest_folder(folder) -> list[str]:
    """Run `manage.py ingest_folder` and return its report, line by line."""
    out = io.StringIO()
    with no_hang(30):
        call_command("ingest_folder", str(folder), "--source", "NAS", "--licence", "cc0-1.0", "--category", "places",
                     stdout=out, stderr=io.StringIO())
    return out.getvalue().splitlines()


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "incoming"
    root.mkdir()
    (root / "a.jpg").write_bytes(make_photo(seed=1))
    return root


def test_a_file_name_cannot_forge_a_line_of_the_report(folder):
    (folder / "a\nrefused    evil.jpg: fake").write_bytes(b"not a photo")
    lines = ingest_folder(folder)
    job = ImportJob.objects.get()
    assert lines[-2] == f"Import {job.pk} done: 1 accepted, 0 duplicates, 1 refused."
    assert lines[-1].startswith("  refused    a\\nrefused    evil.jpg: fake: ")
    assert [line for line in lines if "refused " in line] == [lines[-1]]


def test_a_named_pipe_in_the_folder_is_refused_and_the_batch_goes_on(folder):
    os.mkfifo(folder / "pipe.jpg")
    (folder / "b.jpg").write_bytes(make_photo(seed=2))
    lines = ingest_folder(folder)
    assert "  refused    pipe.jpg: Not a regular file (a named pipe); not read." in lines
    assert ImportJob.objects.get().accepted == 2


def test_a_link_out_of_the_allowed_roots_is_refused_for_imports_from_the_web(folder, tmp_path, settings):
    settings.INGEST = {**settings.INGEST, "ALLOWED_ROOTS": [str(folder)]}
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(make_photo(seed=3))
    (folder / "secret.jpg").symlink_to(secret)
    source = services.save_source(name="Web", kind="folder", default_licence=services.resolve_licence("cc0-1.0", None))
    job = services.create_import(source=source, folder=str(folder), category="places", enqueue=False)
    job = services.run_import(job.pk)
    assert job.status == ImportStatus.DONE
    assert {i.name: (i.outcome, i.reason) for i in job.items.all()} == {
        "a.jpg": ("accepted", ""),
        "secret.jpg": ("refused", "A symbolic link to a file outside the allowed ingest roots; not read."),
    }
    assert Image.objects.count() == 1


def test_the_operator_may_import_any_folder_from_the_command_line(folder, tmp_path, settings):
    """ingest_folder is trusted: INGEST_ALLOWED_ROOTS (for the web) does not limit it."""
    settings.INGEST = {**settings.INGEST, "ALLOWED_ROOTS": [str(tmp_path / "elsewhere")]}
    elsewhere = tmp_path / "elsewhere.jpg"
    elsewhere.write_bytes(make_photo(seed=4))
    (folder / "linked.jpg").symlink_to(elsewhere)
    ingest_folder(folder)
    assert ImportJob.objects.get().accepted == 2


def test_a_korean_name_written_in_nfd_is_found_by_its_nfc_spelling(folder):
    (folder / unicodedata.normalize("NFD", "사진 1.jpg")).write_bytes(make_photo(seed=5))
    ingest_folder(folder)
    assert Image.objects.filter(original_name__contains="사진").count() == 1
    assert ImportJob.objects.get().items.filter(name="사진 1.jpg").exists()


def test_a_manifest_value_the_database_cannot_store_is_one_refused_row(folder):
    """PostgreSQL refuses a NUL character in text: one such title used to stop the whole import."""
    (folder / "b.jpg").write_bytes(make_photo(seed=6))
    text = "\n".join([
        json.dumps({"path": "a.jpg", "title": "x\0y"}),
        '{"path": "b.jpg", "author": "\\ud800"}',
        json.dumps({"path": "b.jpg", "title": "산책"}),
    ])
    source = services.save_source(name="M", kind="manifest", default_licence=services.resolve_licence("cc0-1.0", None))
    job = services.create_import(source=source, manifest=ContentFile(text.encode(), name="m.jsonl"),
                                 manifest_base=str(folder), category="places", enqueue=False)
    job = services.run_import(job.pk)
    assert job.status == ImportStatus.DONE
    assert list(job.items.order_by("position").values_list("outcome", "reason")) == [
        ("refused", "line 1: a field holds a NUL character"),
        ("refused", "line 2: a field holds a lone surrogate escape (\\ud800 to \\udfff), which is not text"),
        ("accepted", ""),
    ]
