"""Readers on their own: zips that lie or inflate, manifest parsing, URL address checks, local
files that are not regular files or lead outside the allowed roots, and file names as shown."""
from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import signal
import socket
import tracemalloc
import unicodedata
import zipfile
from collections.abc import Callable

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
        readers.folder_entries("/no/such/folder", trusted=True)


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


# ---------------------------------------------------------------- local files: pipes, devices, links


@contextlib.contextmanager
def no_hang(seconds: float = 5):
    """Fail instead of hanging: a reader that opens a named pipe blocks in open() for ever, and
    SIGALRM interrupts that call (PEP 475 retries it only when the handler returns). The alarm
    repeats each second after the first, in case the code under test swallows the error and
    opens the next pipe."""

    def expire(signum, frame):
        raise TimeoutError(f"still blocked after {seconds} s")

    before = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds, 1)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, before)


def loaded(entries: list[readers.Entry] | Callable[[], list[readers.Entry]]) -> dict[str, bytes | str]:
    """Each entry's bytes, or its refusal as the report shows it. Given a function, it lists the
    entries under the same watch: listing opens zips, and may block there."""
    out = {}
    with no_hang():
        for e in entries() if callable(entries) else entries:
            if e.error:
                out[e.name] = e.error
                continue
            try:
                out[e.name] = e.load()
            except TimeoutError:
                raise
            except Exception as exc:  # noqa: BLE001 - what the import would report
                out[e.name] = f"Cannot read: {exc}"
    return out


@pytest.fixture
def roots(tmp_path, settings):
    """An allowed root with a photo in it, and a folder beside it that is not allowed."""
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    allowed.mkdir()
    outside.mkdir()
    (allowed / "ok.jpg").write_bytes(b"ok")
    (outside / "secret.jpg").write_bytes(b"secret")
    settings.INGEST = {**settings.INGEST, "ALLOWED_ROOTS": [str(allowed)]}
    return allowed, outside


def test_named_pipes_and_sockets_in_a_folder_are_refused_each_on_its_own(roots, monkeypatch):
    allowed, _ = roots
    os.mkfifo(allowed / "pipe.jpg")
    os.mkfifo(allowed / "pipe.zip")
    monkeypatch.chdir(allowed)  # a socket's path must be short
    server = socket.socket(socket.AF_UNIX)
    server.bind("socket.jpg")
    try:
        for kwargs in ({}, {"trusted": True}):
            assert loaded(lambda kwargs=kwargs: readers.folder_entries(str(allowed), **kwargs)) == {
                "ok.jpg": b"ok",
                "pipe.jpg": "Not a regular file (a named pipe); not read.",
                "pipe.zip": "Not a regular file (a named pipe); not read.",
                "socket.jpg": "Not a regular file (a socket); not read.",
            }
    finally:
        server.close()


def test_named_pipe_and_device_through_a_manifest_path_are_refused(roots):
    allowed, _ = roots
    os.mkfifo(allowed / "pipe.jpg")
    entries = lambda: readers.manifest_entries("path\npipe.jpg\nok.jpg\n", "csv", base=str(allowed))  # noqa: E731
    assert loaded(entries) == {
        "row 2: pipe.jpg": "Not a regular file (a named pipe); not read.",
        "row 3: ok.jpg": b"ok",
    }
    (entry,) = readers.manifest_entries("path\n/dev/null\n", "csv", trusted=True)
    assert entry.error == "Not a regular file (a character device); not read."


def test_a_file_turned_into_a_named_pipe_after_listing_is_refused_when_read(roots):
    allowed, _ = roots
    (folder_entry,) = readers.folder_entries(str(allowed))
    (manifest_entry,) = readers.manifest_entries(f"path\n{allowed / 'ok.jpg'}\n", "csv", trusted=True)
    (allowed / "ok.jpg").unlink()
    os.mkfifo(allowed / "ok.jpg")
    assert loaded([folder_entry, manifest_entry]) == {
        "ok.jpg": "Cannot read: Not a regular file (a named pipe); not read.",
        f"row 2: {allowed / 'ok.jpg'}": "Cannot read: Not a regular file (a named pipe); not read.",
    }


def test_links_out_of_the_allowed_roots_are_refused_unless_trusted(roots):
    allowed, outside = roots
    (allowed / "sub").mkdir()
    (allowed / "out.jpg").symlink_to(outside / "secret.jpg")
    (allowed / "sub" / "in.jpg").symlink_to(allowed / "ok.jpg")  # inside to inside: fine
    (allowed / "dir-link").symlink_to(outside, target_is_directory=True)  # folders: never followed
    (outside / "secret.zip").write_bytes(corpus.zip_of({"z.jpg": b"zipped"}))
    (allowed / "out.zip").symlink_to(outside / "secret.zip")
    refused = "A symbolic link to a file outside the allowed ingest roots; not read."
    assert loaded(readers.folder_entries(str(allowed))) == {
        "ok.jpg": b"ok", "out.jpg": refused, "out.zip": refused, "sub/in.jpg": b"ok",
    }
    assert loaded(readers.folder_entries(str(allowed), trusted=True)) == {
        "ok.jpg": b"ok", "out.jpg": b"secret", "out.zip/z.jpg": b"zipped", "sub/in.jpg": b"ok",
    }


def test_a_file_swapped_for_a_link_after_listing_does_not_escape(roots, monkeypatch):
    allowed, outside = roots
    (allowed / "sub").mkdir()
    (allowed / "sub" / "a.jpg").write_bytes(b"a")
    entries = {e.name: e for e in readers.folder_entries(str(allowed))}
    (allowed / "ok.jpg").unlink()
    (allowed / "ok.jpg").symlink_to(outside / "secret.jpg")
    with pytest.raises(readers.RefusedFile, match="not under an allowed ingest root"):
        entries["ok.jpg"].load()

    # The swap can also fall between the check of the real path and the open: then no step of
    # the open follows a link, neither the file nor a folder on its way.
    (allowed / "sub").rename(allowed / "was-sub")
    (allowed / "sub").symlink_to(outside, target_is_directory=True)
    (outside / "a.jpg").write_bytes(b"secret")
    monkeypatch.setattr(readers.os.path, "realpath", lambda p, **kw: os.path.normpath(p))  # a stale check
    for name in ("ok.jpg", "sub/a.jpg"):
        with pytest.raises(readers.RefusedFile, match="changed to a symbolic link"):
            entries[name].load()


def test_a_refusal_does_not_tell_whether_a_path_outside_the_roots_exists(roots):
    allowed, outside = roots
    (allowed / "out.jpg").symlink_to(outside / "secret.jpg")
    (allowed / "dangling.jpg").symlink_to(outside / "missing.jpg")
    (allowed / "dir-link").symlink_to(outside, target_is_directory=True)
    (allowed / "dangling-dir").symlink_to(outside / "missing", target_is_directory=True)
    pairs = [  # (exists, does not exist), each outside the roots
        (outside / "secret.jpg", outside / "missing.jpg"),
        (outside, outside / "missing"),
        (allowed / "out" / ".." / ".." / "outside", allowed / "out" / ".." / ".." / "missing"),
        (allowed / "out.jpg", allowed / "dangling.jpg"),
        (allowed / "dir-link", allowed / "dangling-dir"),
    ]

    def refusals(path) -> list[str]:
        path = str(path)
        found = []
        for call in (readers.check_allowed_path, readers.folder_entries):
            with pytest.raises(readers.ReaderError) as info:
                call(path)
            found.append(str(info.value).replace(path, "PATH"))
        (entry,) = readers.manifest_entries(f"path\n{path}\n", "csv")
        found.append(entry.error.replace(path, "PATH"))
        return found

    for there, not_there in pairs:
        assert refusals(there) == refusals(not_there)
        assert all("not under an allowed ingest root" in r for r in refusals(there))


def test_link_loops_nul_characters_and_lone_surrogates_are_one_row_each(roots):
    allowed, _ = roots
    (allowed / "loop.jpg").symlink_to(allowed / "loop.jpg")
    text = "\n".join([
        json.dumps({"path": "loop.jpg"}),
        json.dumps({"path": "nul\0.jpg"}),
        json.dumps({"path": "ok.jpg", "title": "x\0y"}),  # PostgreSQL cannot store it
        '{"path": "\\ud800.jpg"}',  # valid JSON, not text
        json.dumps({"path": "ok.jpg", "author": "\ud800"}),
        json.dumps({"path": "ok.jpg"}),
    ])
    for trusted in (False, True):
        entries = readers.manifest_entries(text, "jsonl", base=str(allowed), trusted=trusted)
        assert [(e.name, e.error) for e in entries][:5] == [
            ("row 1: loop.jpg", "A loop of symbolic links; not read."),
            ("row 2", "line 2: a field holds a NUL character"),
            ("row 3", "line 3: a field holds a NUL character"),
            ("row 4", "line 4: a field holds a lone surrogate escape (\\ud800 to \\udfff), which is not text"),
            ("row 5", "line 5: a field holds a lone surrogate escape (\\ud800 to \\udfff), which is not text"),
        ]
        assert entries[5].load() == b"ok"
    assert loaded(readers.folder_entries(str(allowed)))["loop.jpg"] == "A loop of symbolic links; not read."
    for path in ("nul\0", "\ud800"):
        with pytest.raises(readers.ReaderError, match="not under an allowed ingest root"):
            readers.check_allowed_path(path)


# ---------------------------------------------------------------- names


def zip_with_raw_names(names: list[bytes]) -> bytes:
    data = corpus.zip_with_raw_names({raw: b"data" for raw in names})
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert not any(i.flag_bits & 0x800 for i in zf.infolist())
    return data


def test_zip_names_from_korean_windows_and_utf8_without_the_flag_are_recovered():
    cp949, utf8, cp437 = "사진.jpg".encode("cp949"), "고양이.jpg".encode(), "café.jpg".encode("cp437")
    entries = entries_of(zip_with_raw_names([cp949, utf8, cp437]), "옛날.zip")
    assert set(entries) == {"옛날.zip/사진.jpg", "옛날.zip/고양이.jpg", "옛날.zip/café.jpg"}
    assert entries["옛날.zip/사진.jpg"].meta["original_name"] == "사진.jpg"
    assert entries["옛날.zip/사진.jpg"].load() == b"data"


def test_nfd_names_are_shown_in_nfc_and_read_by_their_name_on_disk(tmp_path, monkeypatch):
    nfd = unicodedata.normalize("NFD", "사진.jpg")
    assert nfd != "사진.jpg"
    folder = tmp_path / unicodedata.normalize("NFD", "여름")
    folder.mkdir()
    (folder / nfd).write_bytes(b"photo")
    names = {}
    (e,) = readers.folder_entries(str(folder))
    names["folder"] = (e.name, e.meta["original_name"], e.load())
    (e,) = entries_of(corpus.zip_of({nfd: b"photo"}), unicodedata.normalize("NFD", "여름.zip")).values()
    names["zip"] = (e.name, e.meta["original_name"], e.load())
    (e,) = readers.manifest_entries(f"path\n{nfd}\n", "csv", base=str(folder))
    names["manifest"] = (e.name, e.meta["original_name"], e.load())

    class Bucket:
        def get_paginator(self, _):
            return self

        def paginate(self, **_):
            return [{"Contents": [{"Key": f"2024/{nfd}", "Size": 5}]}]

    monkeypatch.setattr(readers, "s3_client", lambda endpoint_url=None: Bucket())
    (e,) = readers.s3_entries("photos")
    names["s3"] = (e.name, e.meta["original_name"], b"photo")
    assert names == {
        "folder": ("사진.jpg", "사진.jpg", b"photo"),
        "zip": ("여름.zip/사진.jpg", "사진.jpg", b"photo"),
        "manifest": ("row 2: 사진.jpg", "사진.jpg", b"photo"),
        "s3": ("s3://photos/2024/사진.jpg", "사진.jpg", b"photo"),
    }


def test_a_folder_file_named_in_cp949_bytes_is_shown_in_korean_and_read(tmp_path):
    folder = tmp_path / "copied"
    folder.mkdir()
    for raw in ("사진.jpg".encode("cp949"), b"caf\xe9.jpg"):
        with open(os.fsencode(folder) + b"/" + raw, "wb") as fh:
            fh.write(raw)
    assert loaded(readers.folder_entries(str(folder))) == {
        "사진.jpg": "사진.jpg".encode("cp949"),
        "caf\\xe9.jpg": b"caf\xe9.jpg",  # neither UTF-8 nor CP949: the byte is shown, not lost
    }


@pytest.mark.parametrize("name,shown", [
    ("plain.jpg", "plain.jpg"),
    ("a\nrefused    evil.jpg: fake", "a\\nrefused    evil.jpg: fake"),
    ("cr\r.jpg", "cr\\r.jpg"),
    ("tab\t.jpg", "tab\\t.jpg"),
    ("esc\x1b[31m.jpg", "esc\\x1b[31m.jpg"),
    ("del\x7f.jpg", "del\\x7f.jpg"),
    ("line\u2028para\u2029.jpg", "line\\u2028para\\u2029.jpg"),
    ("gpj.\u202eexe", "gpj.\\u202eexe"),  # right-to-left override
    ("\u2066iso\u2069.jpg", "\\u2066iso\\u2069.jpg"),
    ("zero\u200bwidth.jpg", "zero\\u200bwidth.jpg"),
    ("사진 (1).jpg", "사진 (1).jpg"),
])
def test_display_name_escapes_what_could_forge_or_reorder_a_line(name, shown):
    assert readers.display_name(name) == shown
    assert readers.display_name(shown) == shown
    assert readers.Entry(name=name, meta={"original_name": name}).meta["original_name"] == shown


# ---------------------------------------------------------------- manifest line numbers


def rows(text: str, fmt: str = "csv") -> list[tuple[int, str | None, str | None]]:
    return [(number, row and row.get("path"), error) for number, row, error in readers.parse_manifest(text, fmt)]


def test_a_ten_megabyte_field_is_reported_on_its_own_line_and_the_next_row_is_read():
    limit_before = csv.field_size_limit()
    text = "path,title\na.jpg," + "x" * (10 * 1024 * 1024) + "\nb.jpg,ok\n"
    assert rows(text) == [(2, None, "line 2: a field is longer than 65,536 characters"), (3, "b.jpg", None)]
    text = "path,title\na.jpg," + "x" * 70_000 + "\nb.jpg,ok\n"  # under csv's own limit, over ours
    assert rows(text) == [(2, None, "line 2: a field is longer than 65,536 characters"), (3, "b.jpg", None)]
    assert csv.field_size_limit() == limit_before  # the process-wide limit is left alone


def test_a_huge_quoted_field_over_many_lines_is_one_refused_row():
    text = 'path,title\na.jpg,"' + "x\n" * 100_000 + '",more\nb.jpg,ok\n'
    assert rows(text) == [(2, None, "line 2: a field is longer than 65,536 characters"), (100_003, "b.jpg", None)]


def test_rows_are_numbered_by_the_line_they_start_on():
    text = (
        "path,title\n"
        'a.jpg,"two\nlines"\n'        # lines 2-3
        'b.jpg,"three\nmore\nlines",x\n'  # lines 4-6: one field too many
        "\n"                         # line 7: blank
        'c.jpg,"x"y\n'               # line 8: malformed
        "d.jpg\n"                    # line 9: too few
        "e.jpg,ok\n"                 # line 10
    )
    assert rows(text) == [
        (2, "a.jpg", None),
        (4, None, "line 4: 3 fields, the header has 2"),
        (8, None, "line 8: malformed CSV (',' expected after '\"')"),
        (9, None, "line 9: fewer fields than the header (2)"),
        (10, "e.jpg", None),
    ]
    assert rows('path,title\na.jpg,"never closed\nb.jpg,ok\n') == [
        (2, None, "line 2: malformed CSV (unexpected end of data)"),
    ]


def test_json_lines_split_only_at_newlines():
    text = "\r\n".join([
        json.dumps({"path": "a.jpg", "title": "줄\u2028바꿈\x85\x0c"}, ensure_ascii=False),
        '{"path": "b.jpg", ',
        "",
        json.dumps({"path": "c.jpg", "title": "x" * 70_000}),
        json.dumps({"path": "d.jpg"}),
    ])
    assert rows(text, "jsonl") == [
        (1, "a.jpg", None),
        (2, None, "line 2: not valid JSON (Expecting property name enclosed in double quotes)"),
        (4, None, "line 4: a field is longer than 65,536 characters"),
        (5, "d.jpg", None),
    ]
