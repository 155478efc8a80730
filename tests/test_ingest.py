"""Whole imports: each source kind, the bad-input corpus through a real batch, licences, quotas,
manifests (paths and URLs), atomicity, resuming, staging and the orphan sweep."""
from __future__ import annotations

import http.server
import io
import json
import multiprocessing
import os
import shutil
import socket
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import translation
from PIL import Image as PILImage

from datasets import imaging, readers, services
from datasets.models import Category, FullPolicy, Image, ImportItem, ImportJob, ImportStatus, Licence, Subcategory
from tests import corpus
from tests.conftest import make_photo

pytestmark = pytest.mark.django_db


def stored_files(settings) -> list[str]:
    root = Path(settings.MEDIA_ROOT)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def upload(source, files: list[tuple[str, bytes]], **kwargs) -> ImportJob:
    job = services.create_import(
        source=source, files=[SimpleUploadedFile(name, data) for name, data in files], enqueue=False, **kwargs
    )
    return services.run_import(job.pk)


def manifest_import(source, text: str, name: str = "manifest.csv", **kwargs) -> ImportJob:
    job = services.create_import(source=source, manifest=ContentFile(text.encode(), name=name), enqueue=False, **kwargs)
    return services.run_import(job.pk)


def report(job: ImportJob) -> dict[str, ImportItem]:
    return {item.name: item for item in job.items.select_related("image", "duplicate_of")}


# ---------------------------------------------------------------- the corpus through one upload batch

EXIF_PHOTO = corpus.exif_rotated_with_gps()
FIRST = make_photo(640, 480, seed=31)
SAME_PIXELS = make_photo(640, 480, seed=32, fmt="PNG")


def _same_pixels_other_metadata() -> bytes:
    img = PILImage.open(io.BytesIO(SAME_PIXELS))
    exif = img.getexif()
    exif[0x013B] = "Someone else"  # Artist
    buf = io.BytesIO()
    img.save(buf, "PNG", exif=exif)
    return buf.getvalue()


def _traversal_zip() -> bytes:
    return corpus.zip_of({
        "holiday/beach.jpg": make_photo(640, 480, seed=33),
        "../../escaped.jpg": make_photo(640, 480, seed=34),
        "/etc/absolute.jpg": make_photo(640, 480, seed=35),
        "__MACOSX/._beach.jpg": b"resource fork",
        "notes.txt": b"not a photo",
    })


# (name in the batch, bytes, outcome, reason fragment)
BATCH = [
    ("first.jpg", FIRST, "accepted", ""),
    ("truncated.jpg", corpus.truncated_jpeg(), "refused", "Corrupt or truncated"),
    ("empty.jpg", b"", "refused", "Empty file"),
    ("readme.jpg", corpus.text_as_jpg(), "refused", "Not an image"),
    ("page.html", corpus.html_with_script(), "refused", "Not an image"),
    ("drawing.svg", corpus.svg_with_script(), "refused", "Not an image"),
    ("bomb.png", corpus.png_bomb(8000, 8000), "refused", "decompression-bomb limit"),
    ("huge.png", corpus.huge_header(), "refused", "Decompression bomb"),
    ("cmyk.jpg", corpus.cmyk_jpeg(), "accepted", ""),
    ("grey16.png", corpus.png16_mid_grey(), "accepted", ""),
    ("palette.png", corpus.palette_png_transparent(), "accepted", ""),
    ("animated.gif", corpus.animated_gif(), "refused", "Animated"),
    ("rotated.jpg", EXIF_PHOTO, "accepted", ""),
    ("photo.webp", corpus.webp(), "accepted", ""),
    ("tiny.jpg", corpus.too_small(), "refused", "at least 64 px"),
    ("first-again.jpg", FIRST, "duplicate", "Same bytes"),
    ("pixels.png", SAME_PIXELS, "accepted", ""),
    ("pixels-retagged.png", _same_pixels_other_metadata(), "duplicate", "Same pixels"),
    ("photos.zip/holiday/beach.jpg", None, "accepted", ""),
    ("photos.zip/../../escaped.jpg", None, "refused", "Unsafe path"),
    ("photos.zip//etc/absolute.jpg", None, "refused", "Unsafe path"),
    ("photos.zip/notes.txt", None, "refused", "Not an image"),
    ("bomb.zip/zeros.jpg", None, "refused", "Zip bomb"),
]


@pytest.fixture
def corpus_job(source, settings):
    files = [(name, data) for name, data, _, _ in BATCH if data is not None]
    files += [("photos.zip", _traversal_zip()), ("bomb.zip", corpus.zip_bomb())]
    return upload(source, files, category="food", subcategory="korean")


def test_corpus_outcomes_in_one_upload_batch(corpus_job):
    """Every case of the table gets its expected report line (all mismatches listed at once)."""
    items = report(corpus_job)
    wrong = [
        f"{name}: expected {outcome} ({reason!r}), got {items[name].outcome} ({items[name].reason!r})"
        if name in items else f"{name}: no report line"
        for name, _, outcome, reason in BATCH
        if name not in items or items[name].outcome != outcome or reason not in items[name].reason
    ]
    assert wrong == []


def test_corpus_batch_report_and_storage(corpus_job, settings, tmp_path):
    job = corpus_job
    assert job.status == ImportStatus.DONE
    items = report(job)
    assert set(items) == {name for name, *_ in BATCH}  # the junk __MACOSX member is skipped, not reported
    assert job.total == job.processed == len(BATCH)
    assert (job.accepted, job.duplicates, job.refused) == tuple(
        sum(o == outcome for _, _, o, _ in BATCH) for outcome in ("accepted", "duplicate", "refused")
    )
    # A duplicate points at the image it repeats.
    assert items["first-again.jpg"].duplicate_of == items["first.jpg"].image
    assert items["pixels-retagged.png"].duplicate_of == items["pixels.png"].image
    # Only accepted images are stored, each with its thumbnail; nothing escaped the media folder.
    accepted = [i.image for i in items.values() if i.outcome == "accepted"]
    assert Image.objects.count() == len(accepted)
    expected = sorted([img.file.name for img in accepted] + [img.thumbnail.name for img in accepted])
    assert stored_files(settings) == expected
    assert not list(tmp_path.rglob("escaped.jpg")) and not Path("/etc/absolute.jpg").exists()
    image = items["rotated.jpg"].image
    assert (image.width, image.height) == (400, 600)
    assert image.category.slug == "food" and image.subcategory.slug == "korean"
    with image.file.open("rb") as fh:
        kept = PILImage.open(fh)
        assert not kept.getexif() and "exif" not in kept.info


def test_zip_bomb_is_refused_without_inflating(source, settings):
    """The archive-wide cap: declared sizes are summed before any member is read."""
    settings.INGEST = {**settings.INGEST, "ZIP_MAX_TOTAL_BYTES": 10 * 1024 * 1024}
    job = upload(source, [("bomb.zip", corpus.zip_bomb())])
    (item,) = job.items.all()
    assert item.outcome == "refused"
    assert "Zip bomb: it would inflate to 16,777,216 bytes" in item.reason


# ---------------------------------------------------------------- licences and quotas


@pytest.fixture
def photo_dir(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for n in range(4):
        (folder / f"p{n}.jpg").write_bytes(make_photo(320, 240, seed=40 + n))
    return folder


def test_manifest_licences_unknown_and_non_commercial(source, photo_dir, settings):
    text = (
        "path,licence,author\n"
        "p0.jpg,cc-by-2.0,Kim\n"
        "p1.jpg,made-up-licence,Lee\n"
        "p2.jpg,cc-by-nc-4.0,Park\n"
        "p3.jpg,https://creativecommons.org/licenses/by-sa/4.0/,Choi\n"
    )
    job = manifest_import(source, text, manifest_base=str(photo_dir))
    items = job.items.order_by("position")
    assert [i.outcome for i in items] == ["accepted", "refused", "refused", "accepted"]
    assert "Unknown licence 'made-up-licence'" in items[1].reason
    assert "does not allow commercial use" in items[2].reason
    assert items[0].image.licence.code == "cc-by-2.0" and items[0].image.author == "Kim"
    assert items[3].image.licence.code == "cc-by-sa-4.0"

    settings.INGEST = {**settings.INGEST, "COMMERCIAL_ONLY": False}
    again = manifest_import(source, text, manifest_base=str(photo_dir))
    outcomes = [i.outcome for i in again.items.order_by("position")]
    assert outcomes == ["duplicate", "refused", "accepted", "duplicate"]
    assert Image.objects.get(licence__code="cc-by-nc-4.0").author == "Park"


def test_non_commercial_default_licence_is_refused_when_the_import_is_created(source):
    nc = Licence.objects.get(code="cc-by-nc-2.0")
    with translation.override("en"), pytest.raises(services.IngestError, match="does not allow commercial use"):
        services.create_import(source=source, files=[SimpleUploadedFile("a.jpg", FIRST)], licence=nc, enqueue=False)
    assert not ImportJob.objects.exists() and not Image.objects.exists()


@pytest.mark.parametrize("policy,second", [(FullPolicy.WARN, "accepted"), (FullPolicy.REFUSE, "refused")])
def test_full_subcategory_warns_or_refuses(source, policy, second):
    Category.objects.filter(slug="animals").update(full_policy=policy)
    Subcategory.objects.filter(slug="pet").update(quota=1)
    job = upload(
        source, [("a.jpg", make_photo(seed=50)), ("b.jpg", make_photo(seed=51))], category="animals", subcategory="pet"
    )
    a, b = job.items.order_by("position")
    assert (a.outcome, a.reason) == ("accepted", "")
    assert b.outcome == second
    assert "Pet / 반려동물 is full (1 of 1)" in b.reason
    assert job.warnings == (1 if policy == FullPolicy.WARN else 0)
    assert Image.objects.filter(subcategory__slug="pet").count() == (2 if policy == FullPolicy.WARN else 1)


# ---------------------------------------------------------------- manifests


def test_malformed_manifest_rows_are_refused_with_line_numbers(source, photo_dir):
    csv_text = (
        "path,category,author\n"
        "p0.jpg,food,Kim\n"
        "p1.jpg,food,Lee,extra-field\n"
        "p2.jpg\n"
        ",food,nobody\n"
        "p3.jpg,no-such-category,Park\n"
    )
    job = manifest_import(source, csv_text, manifest_base=str(photo_dir))
    items = job.items.order_by("position")
    assert [(i.name, i.outcome) for i in items] == [
        ("row 2: p0.jpg", "accepted"),
        ("row 3", "refused"),
        ("row 4", "refused"),
        ("row 5", "refused"),
        ("row 6: p3.jpg", "refused"),
    ]
    assert "line 3: 4 fields, the header has 3" in items[1].reason
    assert "line 4: fewer fields" in items[2].reason
    assert "line 5: neither a path nor a url" in items[3].reason
    assert "Unknown category 'no-such-category'" in items[4].reason

    jsonl = "\n".join([
        json.dumps({"path": "p1.jpg", "category": "places", "subcategory": "outdoor", "title": "산책"}),
        '{"path": "p2.jpg", "category": ',
        json.dumps(["not", "an", "object"]),
        json.dumps({"author": "no path"}),
        "",
        json.dumps({"file": "p2.jpg"}),
    ])
    job = manifest_import(source, jsonl, name="rows.jsonl", manifest_base=str(photo_dir))
    items = job.items.order_by("position")
    assert [i.outcome for i in items] == ["accepted", "refused", "refused", "refused", "accepted"]
    assert "line 2: not valid JSON" in items[1].reason
    assert "line 3: expected a JSON object" in items[2].reason
    assert "line 4: neither a path nor a url" in items[3].reason
    assert items[0].image.subcategory.slug == "outdoor" and items[0].image.title == "산책"


def test_manifest_without_a_path_or_url_column_is_refused_at_once(source):
    with translation.override("en"), pytest.raises(services.IngestError, match="'path' or 'url' column"):
        services.create_import(source=source, manifest=ContentFile(b"name,author\na,b\n", name="m.csv"), enqueue=False)
    assert not ImportJob.objects.exists()


def test_manifest_paths_outside_the_allowed_roots_are_refused(source, photo_dir, tmp_path, settings):
    settings.INGEST = {**settings.INGEST, "ALLOWED_ROOTS": [str(photo_dir)]}
    outside = tmp_path / "outside.jpg"
    outside.write_bytes(make_photo(seed=52))
    job = manifest_import(source, f"path\np0.jpg\n{outside}\n../outside.jpg\n", manifest_base=str(photo_dir))
    assert [i.outcome for i in job.items.order_by("position")] == ["accepted", "refused", "refused"]
    assert "not under an allowed ingest root" in job.items.get(position=1).reason


# ---------------------------------------------------------------- URL manifests against a local server


class _Handler(http.server.BaseHTTPRequestHandler):
    files: dict[str, tuple[str, bytes]] = {}
    requests_seen: list[str] = []

    def do_GET(self):  # noqa: N802 - the stdlib's name
        self.requests_seen.append(self.path)
        if self.path == "/moved.jpg":
            self.send_response(302)
            self.send_header("Location", "/a.jpg")
            self.end_headers()
            return
        if self.path not in self.files:
            self.send_error(404)
            return
        ctype, body = self.files[self.path]
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def web():
    _Handler.files = {
        "/a.jpg": ("image/jpeg", make_photo(400, 300, seed=60)),
        "/b.png": ("image/png", make_photo(400, 300, seed=61, fmt="PNG")),
        "/page.html": ("text/html", corpus.html_with_script()),
    }
    _Handler.requests_seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_url_manifest_reports_each_row_and_goes_on(source, web):
    rows = [
        f"{web}/a.jpg",
        f"{web}/missing.jpg",
        f"http://127.0.0.1:{_closed_port()}/x.jpg",
        f"{web}/page.html",
        f"{web}/b.png",
        "ftp://example.org/c.jpg",
    ]
    job = manifest_import(source, "url\n" + "\n".join(rows) + "\n")
    items = job.items.order_by("position")
    assert job.status == ImportStatus.DONE
    assert [i.outcome for i in items] == ["accepted", "refused", "refused", "refused", "accepted", "refused"]
    assert "HTTP 404" in items[1].reason
    assert "cannot fetch" in items[2].reason and "ConnectionError" in items[2].reason
    assert "Not an image" in items[3].reason
    assert "only http(s) URLs" in items[5].reason
    assert items[0].image.original_url == rows[0]
    assert items[0].image.original_name == "a.jpg"


def test_private_addresses_are_not_fetched_unless_allowed(source, web, settings):
    settings.INGEST = {**settings.INGEST, "URL_ALLOW_PRIVATE": False}
    job = manifest_import(source, f"url\n{web}/a.jpg\nhttp://localhost:{web.rsplit(':', 1)[1]}/b.png\n")
    items = job.items.order_by("position")
    assert [i.outcome for i in items] == ["refused", "refused"]
    assert "resolves to a private address; not fetched" in items[0].reason  # the address only in the log
    assert _Handler.requests_seen == []  # refused before any request left


def test_redirects_are_followed_and_each_hop_is_checked(source, web, settings, monkeypatch):
    job = manifest_import(source, f"url\n{web}/moved.jpg\n")
    assert job.items.get().outcome == "accepted"
    assert _Handler.requests_seen == ["/moved.jpg", "/a.jpg"]

    # A public address that redirects to a private one: the second hop is refused.
    settings.INGEST = {**settings.INGEST, "URL_ALLOW_PRIVATE": False}
    checked = []
    real_check = readers._check_url

    def check(url):
        checked.append(url)
        if len(checked) > 1:
            real_check(url)

    monkeypatch.setattr(readers, "_check_url", check)
    with pytest.raises(ValueError, match="private address"):
        readers.fetch_url(f"{web}/moved.jpg")
    assert checked == [f"{web}/moved.jpg", f"{web}/a.jpg"]


def test_open_images_metadata_columns(source, web):
    header = (
        "ImageID,Subset,OriginalURL,OriginalLandingURL,License,AuthorProfileURL,Author,Title,"
        "OriginalSize,OriginalMD5,Thumbnail300KURL,Rotation\n"
    )
    row = (
        f"000a1249af2bc5f0,train,{web}/a.jpg,https://www.flickr.com/photos/x/123,"
        "https://creativecommons.org/licenses/by/2.0/,https://www.flickr.com/people/x/,"
        'Jane Doe,"Bibimbap, Jeonju",12345,abc==,,0.0\n'
    )
    job = manifest_import(source, header + row, name="open-images.csv", category="food")
    item = job.items.get()
    assert item.outcome == "accepted", item.reason
    image = item.image
    assert image.licence.code == "cc-by-2.0"
    assert (image.author, image.title, image.external_id) == ("Jane Doe", "Bibimbap, Jeonju", "000a1249af2bc5f0")
    assert image.original_url == "https://www.flickr.com/photos/x/123"
    assert image.attribution == "Bibimbap, Jeonju, by Jane Doe, https://www.flickr.com/photos/x/123, CC BY 2.0"


# ---------------------------------------------------------------- folders


def test_folder_import_walks_subfolders_and_zips(source, tmp_path):
    root = tmp_path / "share"
    (root / "2024" / "seoul").mkdir(parents=True)
    (root / ".hidden").mkdir()
    (root / "a.jpg").write_bytes(make_photo(seed=70))
    (root / "2024" / "seoul" / "b.png").write_bytes(make_photo(seed=71, fmt="PNG"))
    (root / "2024" / "more.zip").write_bytes(corpus.zip_of({"c.jpg": make_photo(seed=72)}))
    (root / ".hidden" / "d.jpg").write_bytes(make_photo(seed=73))
    (root / ".DS_Store").write_bytes(b"junk")
    (root / "Thumbs.db").write_bytes(b"junk")
    job = services.create_import(source=source, folder=str(root), enqueue=False)
    job = services.run_import(job.pk)
    assert sorted((i.name, i.outcome) for i in job.items.all()) == [
        ("2024/more.zip/c.jpg", "accepted"),
        ("2024/seoul/b.png", "accepted"),
        ("a.jpg", "accepted"),
    ]


def test_folder_must_exist_and_lie_under_an_allowed_root(source, tmp_path, settings):
    with translation.override("en"), pytest.raises(services.IngestError, match="not under an allowed ingest root"):
        services.create_import(source=source, folder="/etc", enqueue=False)
    job = services.create_import(source=source, folder=str(tmp_path / "nope"), enqueue=False)
    job = services.run_import(job.pk)
    assert job.status == ImportStatus.FAILED and "Folder not found" in job.error


def test_exactly_one_input(source, tmp_path):
    with pytest.raises(services.IngestError, match="exactly one"):
        services.create_import(source=source, enqueue=False)
    with pytest.raises(services.IngestError, match="exactly one"):
        services.create_import(source=source, folder=str(tmp_path), s3_bucket="b", enqueue=False)


# ---------------------------------------------------------------- atomicity, resuming, staging, orphans


def test_failure_after_files_were_written_leaves_no_file_and_no_row(source, settings, monkeypatch):
    def broken_save(self, *args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(Image, "save", broken_save)
    with pytest.raises(RuntimeError):
        services.ingest_one(make_photo(seed=80), source=source)
    assert stored_files(settings) == []
    assert not Image.objects.exists()


@pytest.mark.parametrize("threads", [1, 4])
def test_crash_between_image_row_and_report_line_rolls_both_back(source, settings, monkeypatch, threads):
    """The report line is written in the image's transaction (with worker threads, the batch's):
    a crash there stores nothing, and the resumed run reports the file as accepted (not as a
    duplicate of a half-recorded self)."""
    settings.INGEST = {**settings.INGEST, "WORKER_THREADS": threads}
    job = services.create_import(source=source, files=[SimpleUploadedFile("a.jpg", make_photo(seed=81))], enqueue=False)
    with monkeypatch.context() as patched:
        for method in ("create", "bulk_create"):
            patched.setattr(ImportItem.objects, method, lambda *a, **kw: (_ for _ in ()).throw(RuntimeError("killed")))
        with pytest.raises(RuntimeError):
            services.run_import(job.pk)
    assert not Image.objects.exists() and not ImportItem.objects.exists()
    assert [f for f in stored_files(settings) if not f.startswith("staging/")] == []
    job = services.run_import(job.pk)
    (item,) = job.items.all()
    assert item.outcome == "accepted" and job.accepted == 1


def test_crashed_run_resumes_and_reports_each_entry_exactly_once(source, settings, monkeypatch):
    files = [(f"p{n}.jpg", make_photo(320, 240, seed=90 + n)) for n in range(5)] + [("p0-again.jpg", make_photo(320, 240, seed=90))]
    job = services.create_import(source=source, files=[SimpleUploadedFile(n, d) for n, d in files], enqueue=False)
    real_process = imaging.process

    def crash_on_third(data, limits=None):
        # Keyed by the bytes, not by the call count: worker threads may judge files out of order.
        if data == files[2][1]:
            raise MemoryError("worker killed")
        return real_process(data, limits)

    monkeypatch.setattr(imaging, "process", crash_on_third)
    with pytest.raises(MemoryError):
        services.run_import(job.pk)
    job.refresh_from_db()
    assert job.status == ImportStatus.RUNNING and job.processed == 2
    monkeypatch.setattr(imaging, "process", real_process)

    job = services.run_import(job.pk)
    positions = list(job.items.order_by("position").values_list("position", flat=True))
    assert positions == list(range(6))
    assert (job.status, job.processed, job.accepted, job.duplicates, job.refused) == (ImportStatus.DONE, 6, 5, 1, 0)
    assert Image.objects.count() == 5
    assert len(stored_files(settings)) == 10  # 5 images + 5 thumbnails, staging gone
    # Running a finished job again changes nothing.
    assert services.run_import(job.pk).items.count() == 6


def test_staging_is_removed_when_an_import_ends(source, settings, monkeypatch):
    done = upload(source, [("a.jpg", make_photo(seed=100)), ("b.zip", corpus.zip_of({"c.jpg": make_photo(seed=101)}))])
    assert done.status == ImportStatus.DONE
    assert not [f for f in stored_files(settings) if f.startswith("staging/")]
    assert not (Path(settings.MEDIA_ROOT) / done.params["staging_prefix"]).exists()  # no empty folder left

    job = services.create_import(source=source, manifest=ContentFile(b"path\nx.jpg\n", name="m.csv"), enqueue=False)
    assert [f for f in stored_files(settings) if f.startswith("staging/")] == [job.params["manifest_key"]]
    monkeypatch.setattr(readers, "manifest_entries", lambda *a, **k: (_ for _ in ()).throw(readers.ReaderError("folder_not_found", path="gone")))
    failed = services.run_import(job.pk)
    assert (failed.status, failed.error) == (ImportStatus.FAILED, "Folder not found: gone")
    assert not [f for f in stored_files(settings) if f.startswith("staging/")]

    queued = services.create_import(source=source, files=[SimpleUploadedFile("d.jpg", b"x")], enqueue=False)
    services.fail_import(queued.pk, "RuntimeError: gave up after retries")
    queued.refresh_from_db()
    assert queued.status == ImportStatus.FAILED
    assert not [f for f in stored_files(settings) if f.startswith("staging/")]


def test_remove_orphan_files_removes_only_unreferenced_files(source, settings):
    kept = services.ingest_one(make_photo(seed=110), source=source).image
    running = services.create_import(source=source, files=[SimpleUploadedFile("r.jpg", b"r")], enqueue=False)
    strays = ["images/ab/cd/crashed.jpg", "thumbs/ab/cd/crashed.jpg", "staging/0123abcd/00000_lost.jpg"]
    for name in strays:
        default_storage.save(name, ContentFile(b"x"))
    referenced = {kept.file.name, kept.thumbnail.name, running.params["staged"][0]["key"]}

    # Fresh files are left alone by default: an import may be about to insert their rows.
    assert services.remove_orphan_files(dry_run=True) == []
    planned = services.remove_orphan_files(dry_run=True, min_age=timedelta(0))
    assert sorted(planned) == sorted(strays)
    assert set(stored_files(settings)) == referenced | set(strays)  # dry run deletes nothing

    removed = services.remove_orphan_files(min_age=timedelta(0))
    assert sorted(removed) == sorted(strays)
    assert set(stored_files(settings)) == referenced
    with kept.file.open("rb") as fh:
        assert PILImage.open(fh).size == (640, 480)
    assert os.path.exists(Path(settings.MEDIA_ROOT) / running.params["staged"][0]["key"])


# ---------------------------------------------------------------- worker threads (INGEST_WORKER_THREADS)


def _threads_used(monkeypatch) -> set[str]:
    """The names of the threads imaging.process runs on from now on."""
    names: set[str] = set()
    real = imaging.process

    def spy(data, limits=None):
        names.add(threading.current_thread().name)
        return real(data, limits)

    monkeypatch.setattr(imaging, "process", spy)
    return names


def _report_rows(job: ImportJob) -> list[tuple]:
    """The report as a planner reads it, with what each accepted line stored (its pixels) and what
    each duplicate points to (by name): image ids differ from one import to another."""
    rows = []
    for item in job.items.select_related("image", "duplicate_of").order_by("position"):
        reason = "Cannot read" if item.reason.startswith("Cannot read") else item.reason  # names a temp path
        rows.append((item.position, item.name, item.outcome, reason,
                     item.image.pixel_sha256 if item.image else None,
                     item.duplicate_of.original_name if item.duplicate_of else None))
    return rows


def _threaded_corpus_import(source, settings, threads: int) -> ImportJob:
    """The corpus batch plus a staged file that is gone when it is read, from a clean catalogue."""
    ImportJob.objects.all().delete()
    Image.objects.all().delete()
    shutil.rmtree(settings.MEDIA_ROOT, ignore_errors=True)
    settings.INGEST = {**settings.INGEST, "WORKER_THREADS": threads}
    files = [(name, data) for name, data, _, _ in BATCH if data is not None]
    files += [("photos.zip", _traversal_zip()), ("bomb.zip", corpus.zip_bomb()), ("gone.jpg", make_photo(seed=120))]
    job = services.create_import(source=source, files=[SimpleUploadedFile(n, d) for n, d in files], enqueue=False,
                                 category="food", subcategory="korean")
    default_storage.delete(job.params["staged"][-1]["key"])
    return services.run_import(job.pk)


def _pids_used(monkeypatch, path: Path) -> Path:
    """`path` lists the process ids imaging.process runs in from now on, one a line (worker
    processes included: their own copies of a set would not come back)."""
    real = imaging.process

    def spy(data, limits=None):
        with open(path, "a") as fh:
            fh.write(f"{os.getpid()}\n")
        return real(data, limits)

    monkeypatch.setattr(imaging, "process", spy)
    return path


def _pids(path: Path) -> set[int]:
    return {int(line) for line in path.read_text().split()} if path.exists() else set()


@pytest.mark.parametrize("kind", ["threads", "processes"])
def test_worker_threads_give_exactly_the_report_of_one_thread(source, settings, monkeypatch, tmp_path, kind):
    """INGEST_WORKER_KIND: worker threads, or worker processes judging the files (bytes in,
    results out), give exactly the report of one thread, on the bad-file corpus."""
    threads_used = _threads_used(monkeypatch)
    pids = _pids_used(monkeypatch, tmp_path / "pids")
    settings.INGEST = {**settings.INGEST, "WORKER_KIND": kind}
    one = _report_rows(_threaded_corpus_import(source, settings, 1))
    assert threads_used == {threading.main_thread().name}  # 1: no pool, all on the calling thread
    assert _pids(pids) == {os.getpid()}

    threads_used.clear()
    (tmp_path / "pids").unlink()
    four = _threaded_corpus_import(source, settings, 4)
    if kind == "threads":
        assert threading.main_thread().name not in threads_used and len(threads_used) > 1
        assert _pids(pids) == {os.getpid()}
    else:
        assert os.getpid() not in _pids(pids) and len(_pids(pids)) > 1  # several worker processes
        assert threads_used == set()  # (each worker process has its own copy of the set)
        assert multiprocessing.active_children() == []  # shut down and reaped at the end of run_import
    assert _report_rows(four) == one
    items = report(four)
    assert items["first-again.jpg"].duplicate_of == items["first.jpg"].image  # a copy later in the same batch
    assert items["pixels-retagged.png"].duplicate_of == items["pixels.png"].image
    assert items["gone.jpg"].outcome == "refused" and items["gone.jpg"].reason.startswith("Cannot read")
    accepted = [i.image for i in items.values() if i.outcome == "accepted"]
    assert sorted(f for f in stored_files(settings) if not f.startswith("staging/")) == sorted(
        [img.file.name for img in accepted] + [img.thumbnail.name for img in accepted])


def test_an_unexpected_error_in_a_worker_thread_refuses_that_file_only(source, settings, monkeypatch):
    settings.INGEST = {**settings.INGEST, "WORKER_THREADS": 4}
    bad = make_photo(320, 240, seed=130)
    real = imaging.process

    def process(data, limits=None):
        if data == bad:
            raise RuntimeError("a bug in a decoder")
        return real(data, limits)

    monkeypatch.setattr(imaging, "process", process)
    job = upload(source, [("a.jpg", make_photo(320, 240, seed=131)), ("bad.jpg", bad),
                          ("c.jpg", make_photo(320, 240, seed=132))])
    items = report(job)
    assert (job.status, job.accepted, job.refused) == (ImportStatus.DONE, 2, 1)
    assert "unexpected error (RuntimeError)" in items["bad.jpg"].reason


@pytest.mark.once
@pytest.mark.parametrize("make_process", ["multiprocessing", "billiard"])
def test_worker_processes_fall_back_to_threads_in_a_daemonic_process(settings, make_process):
    """A daemonic process (a Celery prefork worker's child: billiard's) may not have children: an
    import there judges its files in worker threads."""
    settings.INGEST = {**settings.INGEST, "WORKER_KIND": "processes"}
    assert services._worker_kind() == "processes"
    module = pytest.importorskip(make_process)
    context = module.get_context("fork")
    receive, send = context.Pipe(duplex=False)

    def report_kind():
        send.send(services._worker_kind())

    child = context.Process(target=report_kind, daemon=True)
    child.start()
    assert receive.poll(30)
    assert receive.recv() == "threads"
    child.join(30)
    settings.INGEST = {**settings.INGEST, "WORKER_KIND": "threads"}
    assert services._worker_kind() == "threads"


def test_worker_processes_are_ended_when_an_import_crashes_and_the_resume_finishes(source, settings, monkeypatch,
                                                                                   tmp_path):
    """What stops an import (a worker process out of memory, or killed outright) stops it as it
    would on one thread, refusing no file for it, and leaves no worker process behind."""
    settings.INGEST = {**settings.INGEST, "WORKER_THREADS": 2, "WORKER_KIND": "processes"}
    files = [(f"p{n}.jpg", make_photo(320, 240, seed=180 + n)) for n in range(8)]
    job = services.create_import(source=source, files=[SimpleUploadedFile(n, d) for n, d in files], enqueue=False)
    real = imaging.process
    pids = _pids_used(monkeypatch, tmp_path / "pids")
    pids_spy = imaging.process

    for failure in ("memory", "killed"):
        def crash(data, limits=None, failure=failure):
            if data == files[5][1]:
                if failure == "killed":
                    os._exit(9)  # as the kernel's OOM killer would end it
                raise MemoryError("worker short of memory")
            return pids_spy(data, limits)

        monkeypatch.setattr(imaging, "process", crash)
        with pytest.raises(MemoryError if failure == "memory" else services.BrokenProcessPool):
            services.run_import(job.pk)
        assert multiprocessing.active_children() == []
        assert os.getpid() not in _pids(pids)
        for pid in _pids(pids):
            assert not Path(f"/proc/{pid}").exists()  # ended and reaped
        job.refresh_from_db()
        assert (job.status, job.refused) == (ImportStatus.RUNNING, 0)
        monkeypatch.setattr(imaging, "process", pids_spy)

    monkeypatch.setattr(imaging, "process", real)
    job = services.run_import(job.pk)
    assert (job.status, job.accepted, job.refused) == (ImportStatus.DONE, 8, 0)
    assert multiprocessing.active_children() == []
    assert len([f for f in stored_files(settings) if not f.startswith("staging/")]) == 16


@pytest.mark.parametrize("batch_size", [3, services.BATCH_SIZE])
def test_a_threaded_import_that_crashes_stores_nothing_past_its_report_and_resumes(source, settings, monkeypatch,
                                                                                    batch_size):
    """Files judged ahead in worker threads but not yet reported leave no row and no file; the
    entries of the crashed batch judged before the crash are stored (with batches of 3: 0-2, then
    3 and 4), and a resume goes on after them."""
    settings.INGEST = {**settings.INGEST, "WORKER_THREADS": 4}
    monkeypatch.setattr(services, "BATCH_SIZE", batch_size)
    files = [(f"p{n}.jpg", make_photo(320, 240, seed=140 + n)) for n in range(10)]
    files.append(("p1-again.jpg", files[1][1]))
    job = services.create_import(source=source, files=[SimpleUploadedFile(n, d) for n, d in files], enqueue=False)
    real = imaging.process
    seventh_judged = threading.Event()

    def crash_on_sixth(data, limits=None):
        if data == files[6][1]:
            seventh_judged.set()
        if data == files[5][1]:
            seventh_judged.wait(10)  # a file after the crash is being judged ahead meanwhile
            raise MemoryError("worker killed")
        return real(data, limits)

    monkeypatch.setattr(imaging, "process", crash_on_sixth)
    with pytest.raises(MemoryError):
        services.run_import(job.pk)
    job.refresh_from_db()
    assert (job.status, job.processed, Image.objects.count()) == (ImportStatus.RUNNING, 5, 5)
    assert len([f for f in stored_files(settings) if not f.startswith("staging/")]) == 10  # 5 images, 5 thumbnails
    assert seventh_judged.is_set()  # judged ahead in a worker thread, and dropped

    monkeypatch.setattr(imaging, "process", real)
    job = services.run_import(job.pk)
    assert list(job.items.order_by("position").values_list("position", flat=True)) == list(range(11))
    assert (job.status, job.accepted, job.duplicates, job.refused) == (ImportStatus.DONE, 10, 1, 0)
    items = report(job)
    assert items["p1-again.jpg"].duplicate_of == items["p1.jpg"].image
    assert len(stored_files(settings)) == 20


def test_a_threaded_import_past_its_deadline_stops_after_one_file_and_the_next_run_finishes(source, settings):
    settings.INGEST = {**settings.INGEST, "WORKER_THREADS": 4}
    files = [(f"p{n}.jpg", make_photo(320, 240, seed=150 + n)) for n in range(6)]
    job = services.create_import(source=source, files=[SimpleUploadedFile(n, d) for n, d in files], enqueue=False)
    with pytest.raises(services.ImportStopped):
        services.run_import(job.pk, deadline=time.monotonic() - 1)
    job.refresh_from_db()
    assert (job.processed, Image.objects.count()) == (1, 1)
    assert len([f for f in stored_files(settings) if not f.startswith("staging/")]) == 2
    job = services.run_import(job.pk)
    assert (job.status, job.accepted) == (ImportStatus.DONE, 6)


def test_files_written_ahead_for_duplicates_and_refusals_are_removed(source, settings, photo_dir):
    """Worker threads write each photo's files before the calling thread judges it a duplicate or
    refuses its licence: only the accepted images' files remain."""
    settings.INGEST = {**settings.INGEST, "WORKER_THREADS": 4}
    first = services.run_import(services.create_import(source=source, folder=str(photo_dir), trusted=True,
                                                       enqueue=False).pk)
    kept = stored_files(settings)
    assert (first.accepted, len(kept)) == (4, 8)
    again = services.run_import(services.create_import(source=source, folder=str(photo_dir), trusted=True,
                                                       enqueue=False).pk)
    assert again.duplicates == 4 and stored_files(settings) == kept

    text = "path,licence\np0.jpg,made-up-licence\np1.jpg,cc-by-nc-4.0\n"
    (photo_dir / "new.jpg").write_bytes(make_photo(320, 240, seed=160))
    text += "new.jpg,cc-by-nc-4.0\nnew.jpg,made-up-licence\n"
    job = manifest_import(source, text, manifest_base=str(photo_dir))
    assert [i.outcome for i in job.items.order_by("position")] == ["refused"] * 4
    assert stored_files(settings) == kept


def test_storage_refusing_a_worker_threads_write_interrupts_the_import_and_leaves_no_file(source, settings,
                                                                                          monkeypatch):
    settings.INGEST = {**settings.INGEST, "WORKER_THREADS": 4}
    job = services.create_import(source=source, enqueue=False, files=[
        SimpleUploadedFile(f"p{n}.jpg", make_photo(320, 240, seed=170 + n)) for n in range(6)])
    real_save = FileSystemStorage._save

    def thumbnails_refused(self, name, content):
        if name.startswith("thumbs/"):
            raise OSError(28, "No space left on device")
        return real_save(self, name, content)

    monkeypatch.setattr(FileSystemStorage, "_save", thumbnails_refused)
    with pytest.raises(services.StorageUnavailable, match="No space left on device"):
        services.run_import(job.pk)
    job.refresh_from_db()
    assert (job.processed, Image.objects.count()) == (0, 0)
    assert [f for f in stored_files(settings) if not f.startswith("staging/")] == []

    monkeypatch.setattr(FileSystemStorage, "_save", real_save)
    job = services.run_import(job.pk)
    assert (job.status, job.accepted) == (ImportStatus.DONE, 6) and len(stored_files(settings)) == 12


# ---------------------------------------------------------------- batches (worker threads: BATCH_SIZE entries a transaction)


@pytest.fixture
def batches_of_three(settings, monkeypatch):
    settings.INGEST = {**settings.INGEST, "WORKER_THREADS": 2}
    monkeypatch.setattr(services, "BATCH_SIZE", 3)


def _counters(job: ImportJob) -> tuple:
    return job.status, job.total, job.processed, job.accepted, job.duplicates, job.refused, job.warnings


@pytest.mark.parametrize("size", [1, 2, 3, 5])
def test_batches_of_any_size_give_exactly_the_report_of_one_thread(source, settings, monkeypatch, size):
    """Copies of a file earlier in the same batch or in an earlier one, same bytes or same pixels,
    are duplicates of it, and every other line is the one a single thread writes."""
    single = _threaded_corpus_import(source, settings, 1)
    one = _report_rows(single), _counters(single)
    monkeypatch.setattr(services, "BATCH_SIZE", size)
    batched = _threaded_corpus_import(source, settings, 2)
    assert (_report_rows(batched), _counters(batched)) == one


def test_copies_in_one_batch_and_of_the_catalogue_are_duplicates(source, settings):
    settings.INGEST = {**settings.INGEST, "WORKER_THREADS": 2}
    stored = make_photo(320, 240, seed=200)
    earlier = services.ingest_one(stored, source=source).image
    new = make_photo(320, 240, seed=201)
    job = upload(source, [("new.jpg", new), ("stored-again.jpg", stored), ("new-again.jpg", new),
                          ("pixels.png", SAME_PIXELS), ("pixels-retagged.png", _same_pixels_other_metadata())])
    items = report(job)
    assert {name: (i.outcome, i.reason_code) for name, i in items.items()} == {
        "new.jpg": ("accepted", ""), "stored-again.jpg": ("duplicate", "same_bytes"),
        "new-again.jpg": ("duplicate", "same_bytes"), "pixels.png": ("accepted", ""),
        "pixels-retagged.png": ("duplicate", "same_pixels")}
    assert items["stored-again.jpg"].duplicate_of == earlier
    assert items["new-again.jpg"].duplicate_of == items["new.jpg"].image
    assert items["pixels-retagged.png"].duplicate_of == items["pixels.png"].image
    assert _counters(job) == (ImportStatus.DONE, 5, 5, 2, 3, 0, 0)
    images = Image.objects.all()
    assert sorted(stored_files(settings)) == sorted([i.file.name for i in images] + [i.thumbnail.name for i in images])


def test_a_batch_the_database_fails_to_store_leaves_the_earlier_batches_and_nothing_of_itself(
        source, settings, monkeypatch, batches_of_three):
    from django.db import OperationalError

    files = [(f"p{n}.jpg", make_photo(320, 240, seed=210 + n)) for n in range(8)]
    job = services.create_import(source=source, files=[SimpleUploadedFile(n, d) for n, d in files], enqueue=False)
    real = ImportItem.objects.bulk_create
    calls = []

    def second_fails(objs, *args, **kwargs):
        calls.append(len(objs))
        if len(calls) == 2:
            raise OperationalError("server closed the connection unexpectedly")
        return real(objs, *args, **kwargs)

    seen = []
    monkeypatch.setattr(ImportItem.objects, "bulk_create", second_fails)
    with pytest.raises(OperationalError):
        services.run_import(job.pk, progress=lambda j: seen.append((j.processed, j.heartbeat_at)))
    job.refresh_from_db()
    assert [p for p, _ in seen] == [3]  # counters and heartbeat once per batch
    assert seen[0][1] is not None and seen[0][1] >= job.started_at
    assert (job.status, job.processed, Image.objects.count()) == (ImportStatus.RUNNING, 3, 3)
    assert list(job.items.order_by("position").values_list("position", flat=True)) == [0, 1, 2]
    assert len([f for f in stored_files(settings) if not f.startswith("staging/")]) == 6

    monkeypatch.setattr(ImportItem.objects, "bulk_create", real)
    job = services.run_import(job.pk)  # the resume goes on after the last stored entry
    assert list(job.items.order_by("position").values_list("position", flat=True)) == list(range(8))
    assert _counters(job) == (ImportStatus.DONE, 8, 8, 8, 0, 0, 0)
    assert len(stored_files(settings)) == 16


def test_a_target_that_refuses_past_its_quota_refuses_exactly_the_files_past_it_across_batches(
        source, batches_of_three):
    Category.objects.filter(slug="animals").update(full_policy=FullPolicy.REFUSE)
    Subcategory.objects.filter(slug="pet").update(quota=5)
    already = make_photo(320, 240, seed=220)
    services.ingest_one(already, source=source, category="animals", subcategory="pet")
    files = [(f"p{n}.jpg", make_photo(320, 240, seed=221 + n)) for n in range(6)]
    files += [("p0-again.jpg", files[0][1]), ("already.jpg", already)]
    job = upload(source, files, category="animals", subcategory="pet")  # batches: 0-2, 3-5, 6-7
    lines = [(i.name, i.outcome, i.reason_code) for i in job.items.order_by("position")]
    assert lines == [("p0.jpg", "accepted", ""), ("p1.jpg", "accepted", ""), ("p2.jpg", "accepted", ""),
                     ("p3.jpg", "accepted", ""), ("p4.jpg", "refused", "quota_full_refused"),
                     ("p5.jpg", "refused", "quota_full_refused"), ("p0-again.jpg", "duplicate", "same_bytes"),
                     ("already.jpg", "duplicate", "same_bytes")]
    assert Image.objects.filter(subcategory__slug="pet").count() == 5


def test_a_file_another_import_stored_meanwhile_sends_the_batch_one_file_at_a_time(source, settings, monkeypatch):
    """The batch's insert breaks a unique constraint: nothing of it is stored, and its entries are
    judged again one at a time, the other import's copy a duplicate."""
    settings.INGEST = {**settings.INGEST, "WORKER_THREADS": 2}
    files = [(f"p{n}.jpg", make_photo(320, 240, seed=230 + n)) for n in range(4)]
    real = services._Batch.commit
    other = []

    def another_import_first(batch):
        if not other:
            other.append(services.ingest_one(files[2][1], source=source).image)
        return real(batch)

    monkeypatch.setattr(services._Batch, "commit", another_import_first)
    job = upload(source, files)
    items = report(job)
    assert [(n, items[n].outcome) for n, _ in files] == [
        ("p0.jpg", "accepted"), ("p1.jpg", "accepted"), ("p2.jpg", "duplicate"), ("p3.jpg", "accepted")]
    assert items["p2.jpg"].duplicate_of == other[0]
    assert _counters(job) == (ImportStatus.DONE, 4, 4, 3, 1, 0, 0)
    images = Image.objects.all()
    assert len(images) == 4
    assert sorted(stored_files(settings)) == sorted([i.file.name for i in images] + [i.thumbnail.name for i in images])
