"""S3, against moto's server on 127.0.0.1: importing a bucket prefix, and the media storage itself
on S3 (images, thumbnails and staged uploads as objects)."""
from __future__ import annotations

import io
import socket
import uuid
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from datasets import readers, services
from datasets.models import Image, ImportJob, ImportStatus
from tests import corpus
from tests.conftest import make_photo

pytestmark = [pytest.mark.s3, pytest.mark.django_db]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def moto_endpoint():
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3(moto_endpoint, monkeypatch):
    """A boto3 client on moto, the AWS_* environment the app reads, and a fresh bucket."""
    import boto3

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_S3_ENDPOINT_URL": moto_endpoint,
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # credentials of another test's client
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    bucket = f"photos-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    client.bucket = bucket
    return client


def keys(client, bucket: str, prefix: str = "") -> list[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))


@pytest.fixture
def filled(s3):
    objects = {
        "2024/food/a.jpg": make_photo(seed=1),
        "2024/food/b.png": make_photo(seed=2, fmt="PNG"),
        "2024/food/deeper/c.webp": corpus.webp(),
        "2024/food/broken.jpg": corpus.truncated_jpeg(),
        "2024/food/.hidden.jpg": make_photo(seed=3),
        "2024/food/folder/": b"",
        "2024/people/d.jpg": make_photo(seed=4),
        "2023/food/e.jpg": make_photo(seed=5),
    }
    for key, body in objects.items():
        s3.put_object(Bucket=s3.bucket, Key=key, Body=body)
    return s3


def test_s3_prefix_import_accepts_only_images_under_the_prefix(filled, source):
    job = services.create_import(source=source, s3_bucket=filled.bucket, s3_prefix="2024/food/", category="food",
                                 enqueue=False)
    job = services.run_import(job.pk)
    assert job.status == ImportStatus.DONE, job.error
    b = f"s3://{filled.bucket}/2024/food"
    assert sorted((i.name, i.outcome) for i in job.items.all()) == [
        (f"{b}/a.jpg", "accepted"),
        (f"{b}/b.png", "accepted"),
        (f"{b}/broken.jpg", "refused"),
        (f"{b}/deeper/c.webp", "accepted"),
    ]
    assert set(Image.objects.values_list("original_name", flat=True)) == {"a.jpg", "b.png", "c.webp"}


def test_s3_object_over_the_size_limit_is_refused_without_download(filled, source, settings, monkeypatch):
    settings.INGEST = {**settings.INGEST, "MAX_FILE_BYTES": 1000}
    entries = readers.s3_entries(filled.bucket, "2024/people/")
    assert [e.error for e in entries] == [f"Object is {len(make_photo(seed=4)):,} bytes; the limit is 1,000."]


def test_missing_bucket_fails_the_job_with_a_clear_error(s3, source):
    job = services.create_import(source=source, s3_bucket="no-such-bucket-here", enqueue=False)
    job = services.run_import(job.pk)
    assert job.status == ImportStatus.FAILED
    assert "Cannot list s3://no-such-bucket-here/" in job.error and "NoSuchBucket" in job.error
    assert not job.items.exists()


def test_ingest_s3_command(filled, moto_endpoint):
    out = io.StringIO()
    call_command("ingest_s3", filled.bucket, "--prefix", "2024/", "--endpoint-url", moto_endpoint,
                 "--source", "Bucket", "--licence", "cc-by-4.0", "--category", "food", stdout=out, stderr=io.StringIO())
    assert "done: 4 accepted, 0 duplicates, 1 refused." in out.getvalue()
    assert f"refused    s3://{filled.bucket}/2024/food/broken.jpg: Corrupt or truncated" in out.getvalue()
    assert ImportJob.objects.get().params["endpoint_url"] == moto_endpoint

    with pytest.raises(CommandError, match="failed: Cannot list s3://missing-bucket/"):
        call_command("ingest_s3", "missing-bucket", "--source", "Bucket", "--category", "food",
                     stdout=io.StringIO(), stderr=io.StringIO())


@pytest.fixture
def s3_media(s3, settings, moto_endpoint):
    """The media storage itself on S3 (moto): images, thumbnails and staging are objects."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": s3.bucket,
                "endpoint_url": moto_endpoint,
                "access_key": "testing",
                "secret_key": "testing",
                "region_name": "us-east-1",
                "querystring_auth": False,
                "file_overwrite": False,
                "default_acl": None,
            },
        },
    }
    return s3


def test_media_on_s3_images_thumbnails_and_staging(s3_media, source):
    from django.core.files.storage import default_storage

    assert default_storage.__class__.__name__ == "S3Storage"
    files = [
        SimpleUploadedFile("a.jpg", make_photo(seed=10)),
        SimpleUploadedFile("more.zip", corpus.zip_of({"b.jpg": make_photo(seed=11), "../c.jpg": make_photo(seed=12)})),
        SimpleUploadedFile("bad.jpg", b"not an image"),
    ]
    job = services.create_import(source=source, files=files, enqueue=False)
    staged = [s["key"] for s in job.params["staged"]]
    assert all(key.startswith("staging/") for key in staged)
    assert keys(s3_media, s3_media.bucket, "staging/") == sorted(staged)  # the worker reads them from the bucket

    job = services.run_import(job.pk)
    assert (job.status, job.accepted, job.refused) == (ImportStatus.DONE, 2, 2)
    images = list(Image.objects.all())
    expected = sorted([i.file.name for i in images] + [i.thumbnail.name for i in images])
    assert keys(s3_media, s3_media.bucket) == expected  # staging objects are gone
    body = s3_media.get_object(Bucket=s3_media.bucket, Key=images[0].file.name)["Body"].read()
    assert body[:3] == b"\xff\xd8\xff"  # a JPEG
    assert images[0].file.url.startswith(f"http://127.0.0.1:{s3_media.meta.endpoint_url.rsplit(':', 1)[1]}/")
    assert "Signature" not in images[0].file.url


def test_orphan_sweep_on_s3(s3_media, source):
    from django.core.files.storage import default_storage

    kept = services.ingest_one(make_photo(seed=20), source=source).image
    default_storage.save("images/ff/ee/stray.jpg", ContentFile(b"x"))
    default_storage.save("staging/deadbeef/00000_x.jpg", ContentFile(b"x"))
    removed = services.remove_orphan_files(min_age=timedelta(0))
    assert sorted(removed) == ["images/ff/ee/stray.jpg", "staging/deadbeef/00000_x.jpg"]
    assert keys(s3_media, s3_media.bucket) == sorted([kept.file.name, kept.thumbnail.name])
