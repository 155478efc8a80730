"""Exports to s3://bucket/prefix against moto's server on 127.0.0.1: the same bytes as a local
export, signed download links, resuming, and the buckets that cannot take it (unreachable
endpoint, no such bucket, read-only) failing with a clear message and no export marked done.

moto's server does not enforce bucket policies, so "read-only" is a small local HTTP server that
answers every write as S3 does when a policy denies it (403 AccessDenied) and reads as usual."""
from __future__ import annotations

import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import translation

from datasets.export import services
from datasets.export.errors import ExportError
from datasets.models import Export, ExportStatus
from datasets.selectors import export_files
from tests import test_s3
from tests.exporting import folder_files, make_snapshot
from tests.test_s3 import _free_port, keys

pytestmark = [pytest.mark.s3, pytest.mark.django_db]
moto_endpoint, s3 = test_s3.moto_endpoint, test_s3.s3  # the moto server and bucket fixtures
SMALL = {"max_samples": 4}


@pytest.fixture(autouse=True)
def _export_root(settings, tmp_path):
    settings.EXPORT = {**settings.EXPORT, "ROOT": str(tmp_path / "exports"), "SHARDS_PER_TASK": 2,
                       "S3_ENDPOINT_URL": ""}
    services._rows_cache.clear()


def objects(client, bucket: str, prefix: str) -> dict[str, bytes]:
    return {k[len(prefix) + 1:]: client.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys(client, bucket, prefix)}


def test_an_export_to_s3_writes_the_same_files_as_a_local_one_with_signed_links(s3, tmp_path):
    snapshot = make_snapshot(8, 2)
    export = services.run_export(services.start_export(snapshot, f"s3://{s3.bucket}/datasets/", SMALL, None,
                                                       enqueue=False))
    assert export.status == ExportStatus.DONE, export.error
    assert export.folder == f"s3://{s3.bucket}/datasets/food/v1"
    stored = objects(s3, s3.bucket, "datasets/food/v1")
    services._rows_cache.clear()
    local = services.run_export(services.start_export(snapshot, "local", SMALL, None, enqueue=False))
    assert stored == folder_files(local.folder)  # byte for byte, probe objects gone
    assert export.sums_sha256 == local.sums_sha256
    head = s3.head_object(Bucket=s3.bucket, Key="datasets/food/v1/train/shard-000000.tar")
    assert head["Metadata"]["sha256"] == next(s.sha256 for s in export.shards.all() if s.path == "train/shard-000000.tar")

    links = {f["path"]: f["url"] for f in export_files(export)}
    assert "X-Amz-Signature=" in links["SHA256SUMS"] or "Signature=" in links["SHA256SUMS"]
    with urllib.request.urlopen(links["SHA256SUMS"]) as response:
        assert response.read() == stored["SHA256SUMS"]


def test_the_api_gives_signed_links_for_an_s3_export(s3, api, django_capture_on_commit_callbacks):
    snapshot = make_snapshot(3, 1)
    with django_capture_on_commit_callbacks(execute=True):
        created = api("engineer").post(f"/api/snapshots/{snapshot.pk}/exports/",
                                       {"destination": f"s3://{s3.bucket}/x"}, format="json")
    assert created.status_code == 201, created.content
    detail = api("engineer").get(f"/api/exports/{created.json()['id']}/").json()
    assert detail["status"] == "done"
    url = next(f["url"] for f in detail["files"] if f["path"] == "dataset_card.md")
    assert url.startswith(s3.meta.endpoint_url) and "Signature" in url
    with urllib.request.urlopen(url) as response:
        assert b"food" in response.read()


def test_a_resumed_s3_export_skips_the_objects_already_there_with_their_checksum(s3, monkeypatch):
    snapshot = make_snapshot(8, 2)
    export = services.start_export(snapshot, f"s3://{s3.bucket}", SMALL, None, enqueue=False)
    services.run_shard_group(export.pk, 0, enqueue_finalize=False)
    services.cancel_export(export)
    written = []
    real = services.layout.write_shard
    monkeypatch.setattr(services.layout, "write_shard",
                        lambda spec, *a, **k: written.append(spec.path) or real(spec, *a, **k))
    export = services.run_export(services.resume_export(Export.objects.get(pk=export.pk), enqueue=False))
    assert export.status == ExportStatus.DONE
    first_group = set(export.shards.filter(group=0).values_list("path", flat=True))
    assert first_group and not first_group & set(written)


def _refused(destination: str) -> ExportError:
    snapshot = make_snapshot(2, 1)
    with pytest.raises(ExportError) as refused:
        services.start_export(snapshot, destination, None, None)
    assert not Export.objects.exists()  # nothing started, nothing marked done
    return refused.value


def test_an_unreachable_endpoint_is_refused_with_a_clear_message(s3, monkeypatch):
    closed = f"http://127.0.0.1:{_free_port()}"
    monkeypatch.setenv("AWS_S3_ENDPOINT_URL", closed)
    error = _refused("s3://anything/prefix")
    with translation.override("en"):
        assert error.text() == f"Cannot write to s3://anything/prefix/food/v1: {closed} could not be reached."


def test_a_missing_bucket_is_refused_with_a_clear_message(s3):
    error = _refused("s3://no-such-bucket-here/x")
    with translation.override("en"):
        assert error.text() == "Cannot write to s3://no-such-bucket-here/x/food/v1: the bucket does not exist (NoSuchBucket)."


class ReadOnlyS3(BaseHTTPRequestHandler):
    """Answers writes as S3 does when a bucket policy denies them."""

    def _deny(self):
        body = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>'
                b"<Message>Access Denied</Message></Error>")
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.send_response(403)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_PUT = do_POST = do_DELETE = _deny

    def log_message(self, *args):
        pass


def test_a_read_only_bucket_is_refused_with_a_clear_message(s3, monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), ReadOnlyS3)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("AWS_S3_ENDPOINT_URL", f"http://127.0.0.1:{server.server_port}")
        error = _refused("s3://read-only/x")
    finally:
        server.shutdown()
    assert error.params["detail"]["code"] == "s3_access_denied"
    with translation.override("en"):
        assert error.text().startswith("Cannot write to s3://read-only/x/food/v1: access denied")


def test_a_bucket_gone_after_the_start_fails_the_export_with_the_reason_and_not_done(s3):
    snapshot = make_snapshot(4, 1)
    export = services.start_export(snapshot, f"s3://{s3.bucket}/p", SMALL, None, enqueue=False)
    s3.delete_bucket(Bucket=s3.bucket)  # empty: the probe object was deleted
    export = services.run_export(export)
    assert export.status == ExportStatus.FAILED
    with translation.override("en"):
        assert "the bucket does not exist" in export.error_text
    assert not export.files and not export.sums_sha256
