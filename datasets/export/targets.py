"""Where an export's files go: a local folder (LocalTarget) or s3://bucket/prefix (S3Target).

Every file is written atomically: locally to a hidden temporary name beside it and renamed
(`os.replace`), on S3 by one PUT (or a multipart upload, which is visible only once complete),
so a reader never sees a half-written file under its final name and two exports writing the same
deterministic bytes at once cannot corrupt each other. S3 objects carry their SHA-256 as
metadata (`x-amz-meta-sha256`), which makes checking an existing shard a HEAD request.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import time
import uuid
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path, PurePosixPath

from django.conf import settings

from .errors import ExportError

CHUNK = 1024 * 1024
PART_SUFFIX = ".part"
# Spooled in memory up to this size before an S3 upload, then on local disk.
SPOOL_BYTES = 64 * 1024 * 1024


def _export_settings() -> dict:
    return settings.EXPORT


def clean_relative(path: str) -> str:
    """A relative POSIX path with no '..', absolute or empty parts (ValueError otherwise)."""
    p = PurePosixPath(path)
    if not path or p.is_absolute() or any(part in ("", ".", "..") for part in p.parts) or "\\" in path:
        raise ValueError(f"bad relative path {path!r}")
    return str(p)


def parse_s3(destination: str) -> tuple[str, str]:
    """'s3://bucket/some/prefix' -> ('bucket', 'some/prefix')."""
    rest = destination[len("s3://"):]
    bucket, _, prefix = rest.partition("/")
    return bucket, prefix.strip("/")


class Target(ABC):
    """Where an export's files go: a local folder (LocalTarget) or an S3 prefix (S3Target)."""

    location: str  # what messages show

    @abstractmethod
    def preflight(self) -> None:
        """Refuse (ExportError) a destination that cannot be written, before any work."""

    @abstractmethod
    def writer(self, path: str) -> AbstractContextManager:
        """A binary file to write `path` through; the file appears whole on a clean exit, never in part."""

    def write_bytes(self, path: str, data: bytes) -> None:
        with self.writer(path) as f:
            f.write(data)

    @abstractmethod
    def size(self, path: str) -> int | None:
        """Bytes of `path`, None when it is not there."""

    @abstractmethod
    def sha256(self, path: str) -> str | None:
        """SHA-256 of `path`, None when it is not there."""

    @abstractmethod
    def read(self, path: str) -> bytes | None:
        """The bytes of `path`, None when it is not there."""

    def remove_stale_parts(self, older_than: float) -> None:  # noqa: B027 (a no-op where there are none)
        """Temporary files left by a killed writer (local only; S3 has none)."""


class LocalTarget(Target):
    def __init__(self, folder: str | os.PathLike):
        self.root = Path(folder)
        self.location = str(self.root)

    def full(self, path: str) -> Path:
        return self.root / clean_relative(path)

    def preflight(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / f".probe-{uuid.uuid4().hex}{PART_SUFFIX}"
            probe.write_bytes(b"probe")
            probe.unlink()
        except OSError as exc:
            raise ExportError("folder_unwritable", folder=self.location, detail=exc.strerror or exc.__class__.__name__) from exc

    @contextmanager
    def writer(self, path: str):
        final = self.full(path)
        final.parent.mkdir(parents=True, exist_ok=True)
        partial = final.with_name(f".{final.name}.{uuid.uuid4().hex}{PART_SUFFIX}")
        try:
            with open(partial, "wb") as f:
                yield f
                f.flush()
                os.fsync(f.fileno())
            os.replace(partial, final)
        finally:
            if partial.exists():
                partial.unlink()

    def size(self, path: str) -> int | None:
        try:
            return self.full(path).stat().st_size
        except FileNotFoundError:
            return None

    def sha256(self, path: str) -> str | None:
        h = hashlib.sha256()
        try:
            with open(self.full(path), "rb") as f:
                while chunk := f.read(CHUNK):
                    h.update(chunk)
        except FileNotFoundError:
            return None
        return h.hexdigest()

    def read(self, path: str) -> bytes | None:
        try:
            return self.full(path).read_bytes()
        except FileNotFoundError:
            return None

    def remove_stale_parts(self, older_than: float) -> None:
        cutoff = time.time() - older_than
        for partial in self.root.rglob(f".*{PART_SUFFIX}"):
            try:
                if partial.stat().st_mtime < cutoff:
                    partial.unlink()
            except OSError:
                pass


class S3Target(Target):
    def __init__(self, destination_folder: str):
        from botocore.config import Config

        from ..readers import s3_client

        self.bucket, self.prefix = parse_s3(destination_folder)
        self.location = destination_folder
        # The app's S3 settings (AWS_* variables, AWS_S3_ENDPOINT_URL), with short connect
        # timeouts: an unreachable endpoint fails the export in seconds, not minutes.
        self.client = s3_client(
            _export_settings()["S3_ENDPOINT_URL"],
            config=Config(connect_timeout=5, read_timeout=60, retries={"max_attempts": 3, "mode": "standard"}),
        )

    def key(self, path: str) -> str:
        path = clean_relative(path)
        return f"{self.prefix}/{path}" if self.prefix else path

    def fail(self, exc: Exception, what: str) -> ExportError:
        from ..readers import _s3_failure

        reason = _s3_failure(exc, self.client.meta.endpoint_url or "AWS S3", what)
        return ExportError("s3_failed", folder=self.location, detail=reason.as_dict())

    def preflight(self) -> None:
        """Write and delete a small object: the bucket exists, is reachable and takes writes."""
        from botocore.exceptions import BotoCoreError, ClientError

        if not self.bucket:
            raise ExportError("bad_destination")
        probe = self.key(f".probe-{uuid.uuid4().hex}")
        try:
            self.client.put_object(Bucket=self.bucket, Key=probe, Body=b"probe")
            self.client.delete_object(Bucket=self.bucket, Key=probe)
        except (BotoCoreError, ClientError) as exc:
            raise self.fail(exc, "write") from exc

    @contextmanager
    def writer(self, path: str):
        from botocore.exceptions import BotoCoreError, ClientError

        key = self.key(path)
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as f:
            yield f
            f.seek(0)
            h = hashlib.sha256()
            while chunk := f.read(CHUNK):
                h.update(chunk)
            f.seek(0)
            try:
                self.client.upload_fileobj(f, self.bucket, key, ExtraArgs={"Metadata": {"sha256": h.hexdigest()}})
            except (BotoCoreError, ClientError) as exc:
                raise self.fail(exc, "write") from exc

    def _head(self, path: str) -> dict | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return self.client.head_object(Bucket=self.bucket, Key=self.key(path))
        except ClientError as exc:
            if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                return None
            raise self.fail(exc, "read") from exc
        except BotoCoreError as exc:
            raise self.fail(exc, "read") from exc

    def size(self, path: str) -> int | None:
        head = self._head(path)
        return None if head is None else head["ContentLength"]

    def sha256(self, path: str) -> str | None:
        head = self._head(path)
        return None if head is None else head.get("Metadata", {}).get("sha256")

    def read(self, path: str) -> bytes | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=self.key(path))["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise self.fail(exc, "read") from exc
        except BotoCoreError as exc:
            raise self.fail(exc, "read") from exc

    def signed_url(self, path: str) -> str:
        return self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": self.key(path)},
            ExpiresIn=_export_settings()["SIGNED_URL_SECONDS"],
        )


def target_for(folder: str) -> Target:
    return S3Target(folder) if folder.startswith("s3://") else LocalTarget(folder)
