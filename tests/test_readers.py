"""Readers on their own: zips that lie or inflate, manifest parsing, URL address checks."""
from __future__ import annotations

import io
import socket
import tracemalloc
import zipfile

import pytest

from datasets import readers
from tests import corpus
from tests.conftest import make_photo


def entries_of(data: bytes, name: str = "a.zip") -> dict[str, readers.Entry]:
    return {e.name: e for e in readers.zip_entries(lambda: io.BytesIO(data), name)}


def test_zip_lists_members_and_loads_them_lazily():
    photo = make_photo(seed=1)
    entries = entries_of(corpus.zip_of({"x/one.jpg": photo, "two.png": b"png?", "x/": b""}))
    assert set(entries) == {"a.zip/x/one.jpg", "a.zip/two.png"}
    assert entries["a.zip/x/one.jpg"].load() == photo
    assert entries["a.zip/x/one.jpg"].meta["original_name"] == "one.jpg"


def test_zip_bomb_member_is_refused_from_its_header_with_bounded_memory(settings):
    data = corpus.zip_bomb(32 * 1024 * 1024)
    tracemalloc.start()
    try:
        (entry,) = readers.zip_entries(lambda: io.BytesIO(data), "bomb.zip")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert entry.error.startswith("Zip bomb: member inflates")
    assert entry.load is None
    assert peak < 4 * 1024 * 1024  # nothing was inflated (the member is 32 MB)


def test_zip_member_that_lies_about_its_size_is_never_inflated_past_the_lie():
    data = corpus.zip_with_lying_size(real_bytes=16 * 1024 * 1024, declared=1000)
    (entry,) = readers.zip_entries(lambda: io.BytesIO(data), "liar.zip")
    assert entry.error is None  # the headers look harmless
    tracemalloc.start()
    try:
        with pytest.raises(zipfile.BadZipFile, match="Bad CRC-32"):
            entry.load()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * 1024 * 1024  # inflated step by step and cut at the declared size, not 16 MB at once


def test_zip_with_too_many_members_or_not_a_zip(settings):
    settings.INGEST = {**settings.INGEST, "ZIP_MAX_MEMBERS": 3}
    (entry,) = readers.zip_entries(lambda: io.BytesIO(corpus.zip_of({f"{n}.jpg": b"x" for n in range(4)})), "many.zip")
    assert "Zip has 4 members; the limit is 3" in entry.error
    (entry,) = readers.zip_entries(lambda: io.BytesIO(b"PK not really"), "fake.zip")
    assert entry.error.startswith("Not a readable zip archive")


def test_zip_unsafe_paths():
    entries = entries_of(corpus.zip_of({
        "../up.jpg": b"x", "a/../../up2.jpg": b"x", "/abs.jpg": b"x", "C:/win.jpg": b"x", "..\\back.jpg": b"x", "ok.jpg": b"x",
    }))
    unsafe = {name for name, e in entries.items() if e.error and "Unsafe path" in e.error}
    assert unsafe == {"a.zip/../up.jpg", "a.zip//abs.jpg", "a.zip/C:/win.jpg", "a.zip/a/../../up2.jpg", "a.zip/..\\back.jpg"}
    assert entries["a.zip/ok.jpg"].error is None


def test_folder_entries_missing_folder():
    with pytest.raises(readers.ReaderError, match="Folder not found"):
        readers.folder_entries("/no/such/folder")


def test_parse_manifest_csv_with_quoted_fields_and_extra_columns():
    text = 'url,Title,Rotation\nhttp://h/a.jpg,"Kimchi, fresh",90\n'
    ((number, row, error),) = readers.parse_manifest(text, "csv")
    assert (number, error) == (2, None)
    assert row["Title"] == "Kimchi, fresh"


@pytest.mark.parametrize("name,text,fmt", [
    ("rows.jsonl", "", "jsonl"),
    ("rows.ndjson", "", "jsonl"),
    ("rows.csv", "", "csv"),
    ("upload", '{"path": "a.jpg"}', "jsonl"),
    ("upload", "path\na.jpg", "csv"),
])
def test_detect_manifest_format(name, text, fmt):
    assert readers.detect_manifest_format(name, text) == fmt


@pytest.mark.parametrize("address,blocked", [
    ("127.0.0.1", True),
    ("10.1.2.3", True),
    ("172.16.0.9", True),
    ("192.168.1.1", True),
    ("169.254.169.254", True),  # cloud metadata
    ("0.0.0.0", True),
    ("::1", True),
    ("::ffff:10.0.0.1", True),
    ("fd00::1", True),
    ("93.184.216.34", False),
    ("2606:2800:220:1::1", False),
])
def test_private_address_check(settings, monkeypatch, address, blocked):
    settings.INGEST = {**settings.INGEST, "URL_ALLOW_PRIVATE": False}
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: [(family, socket.SOCK_STREAM, 6, "", (address, 80))])
    if blocked:
        with pytest.raises(ValueError, match="private address"):
            readers._check_url("http://photos.example/a.jpg")
    else:
        readers._check_url("http://photos.example/a.jpg")


def test_unresolvable_host_is_a_clear_row_error(settings, monkeypatch):
    settings.INGEST = {**settings.INGEST, "URL_ALLOW_PRIVATE": False}

    def fail(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fail)
    with pytest.raises(ValueError, match="cannot resolve no-such-host.example"):
        readers._check_url("http://no-such-host.example/a.jpg")
