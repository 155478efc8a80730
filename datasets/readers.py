"""Where an import's bytes come from: staged uploads (files and .zip), a server folder, an S3
prefix, or a CSV / JSON Lines manifest of paths or URLs.

A reader lists `Entry` objects first (so progress knows its total) and loads each entry's bytes
only when the import reaches it. An entry that is already known to be bad carries `error` and is
reported as refused without loading.
"""
from __future__ import annotations

import csv
import errno
import io
import ipaddress
import json
import logging
import os
import socket
import stat
import unicodedata
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import urljoin, urlparse, urlsplit, urlunsplit

import requests
from django.conf import settings
from django.core.files.storage import default_storage
from requests.adapters import HTTPAdapter

from .refusals import Reason, Refusal

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".mpo", ".heic", ".heif", ".avif"}
JUNK_NAMES = {".DS_Store", "Thumbs.db", "desktop.ini"}
ZIP_READ_CHUNK = 1024 * 1024

# Manifest columns we read, with the Open Images metadata names as aliases.
COLUMN_ALIASES = {
    "path": ("path", "file", "filename"),
    "url": ("url", "OriginalURL", "original_file_url", "image_url"),
    "category": ("category",),
    "subcategory": ("subcategory",),
    "licence": ("licence", "license", "License"),
    "author": ("author", "Author"),
    "original_url": ("original_url", "OriginalLandingURL", "landing_url"),
    "title": ("title", "Title"),
    "external_id": ("external_id", "ImageID", "image_id", "id"),
}


class ReaderError(Refusal):
    """The whole import cannot be read (missing folder, bucket, unreadable manifest), or one S3
    object cannot; its reason (a datasets.refusals code) says why."""


class RefusedFile(Refusal, OSError):
    """A file that is there but will not be read: not a regular file, or outside the allowed
    roots. An OSError, so that every caller that copes with an unreadable file copes with it."""


class LoadRefused(Refusal, ValueError):
    """An entry's bytes are not loaded: a manifest URL not fetched or whose fetch failed, a zip
    member that inflates past the limit. A ValueError, as before reasons had codes."""


_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Control and format characters (newlines, bidi overrides, zero-width ones), line and paragraph
# separators, and lone surrogates (bytes that were not UTF-8 in a file system name).
_HIDDEN = {"Cc", "Cf", "Cs", "Zl", "Zp"}


def _visible(ch: str) -> str:
    if ch in _ESCAPES:
        return _ESCAPES[ch]
    if unicodedata.category(ch) not in _HIDDEN:
        return ch
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte kept by os.fsdecode: show the byte
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def display_name(name: str) -> str:
    """A file name as reports, pages and the database show it: NFC (macOS writes NFD, and an NFD
    사진 is not found by searching for 사진), CP949 where a Linux file name's bytes are not UTF-8
    (folders copied from Korean Windows), and every control, bidi or line-separator character
    written as a visible escape so that a name can neither forge a report line nor reorder one.
    Only for showing: files are opened by the name as it is on disk."""
    if name.isascii() and name.isprintable():
        return name
    if any("\udc80" <= ch <= "\udcff" for ch in name):
        try:
            name = name.encode("utf-8", "surrogateescape").decode("cp949")
        except (UnicodeEncodeError, UnicodeDecodeError):
            pass
    return "".join(map(_visible, unicodedata.normalize("NFC", name)))


@dataclass
class Entry:
    name: str
    load: Callable[[], bytes] | None = None
    meta: dict = field(default_factory=dict)
    error: Reason | None = None  # a str: its English text, with a code to say it in any language

    def __post_init__(self):
        # Here, so that no reader (today's or a later one) can hand on a name unfit to show.
        self.name = display_name(self.name)
        if self.meta.get("original_name"):
            self.meta["original_name"] = display_name(self.meta["original_name"])


def _cfg(key):
    return settings.INGEST[key]


# ---------------------------------------------------------------- staged uploads and zips


def _read_storage(key: str) -> Callable[[], bytes]:
    def load() -> bytes:
        with default_storage.open(key, "rb") as fh:
            return fh.read(_cfg("MAX_FILE_BYTES") + 1)

    return load


def _member_name(info: zipfile.ZipInfo) -> str:
    """A member's name as its maker meant it. Without the UTF-8 flag (bit 11) zipfile reads the
    name as CP437, but zips made on Korean Windows write CP949 there and many tools write UTF-8
    without setting the flag: the CP437 text is turned back into the original bytes, read as
    UTF-8 first (a CP949 name is rarely valid UTF-8), then as CP949, and kept as CP437 if neither
    fits."""
    if info.flag_bits & 0x800:
        return info.filename
    raw = info.filename.encode("cp437")
    for encoding in ("utf-8", "cp949"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return info.filename


def zip_entries(opener: Callable[[], io.IOBase], archive_name: str) -> list[Entry]:
    """List a zip's image members; refuse unsafe paths and archives that inflate too far."""
    try:
        with opener() as fh, zipfile.ZipFile(fh) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        return [Entry(name=archive_name, error=Reason("zip_unreadable", detail=str(exc)))]
    if len(infos) > _cfg("ZIP_MAX_MEMBERS"):
        return [Entry(name=archive_name, error=Reason("zip_too_many_members", members=len(infos),
                                                     limit=_cfg("ZIP_MAX_MEMBERS")))]
    declared = sum(i.file_size for i in infos)
    if declared > _cfg("ZIP_MAX_TOTAL_BYTES"):
        return [
            Entry(
                name=archive_name,
                error=Reason("zip_bomb_total", size=declared, limit=_cfg("ZIP_MAX_TOTAL_BYTES")),
            )
        ]
    entries = []
    max_bytes = _cfg("MAX_FILE_BYTES")
    for info in infos:
        if info.is_dir():
            continue
        raw = _member_name(info)
        display = f"{archive_name}/{raw}"
        parts = PurePosixPath(raw.replace("\\", "/")).parts
        base = parts[-1] if parts else raw
        if parts and (parts[0] == "__MACOSX" or base in JUNK_NAMES or base.startswith("._")):
            continue
        if raw.startswith(("/", "\\")) or ".." in parts or (len(raw) > 1 and raw[1] == ":"):
            entries.append(Entry(name=display, error=Reason("zip_unsafe_path")))
            continue
        if info.flag_bits & 0x1:
            entries.append(Entry(name=display, error=Reason("zip_encrypted")))
            continue
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > 1024 * 1024 and ratio > _cfg("ZIP_MAX_RATIO"):
            entries.append(Entry(name=display, error=Reason("zip_bomb_ratio", ratio=round(ratio))))
            continue
        if info.file_size > max_bytes:
            entries.append(Entry(name=display, error=Reason("file_too_large", size=info.file_size, limit=max_bytes)))
            continue

        def load(info=info) -> bytes:
            # Inflate in small steps and never trust the header's size: one big read() would
            # let zlib inflate up to the whole limit in one go whatever the member declares.
            chunks, size = [], 0
            with opener() as fh, zipfile.ZipFile(fh) as zf, zf.open(info) as member:
                while chunk := member.read(ZIP_READ_CHUNK):
                    size += len(chunk)
                    if size > max_bytes:
                        raise LoadRefused("zip_member_too_large", limit=max_bytes)
                    chunks.append(chunk)
            return b"".join(chunks)

        entries.append(Entry(name=display, load=load, meta={"original_name": base}))
    return entries


def upload_entries(staged: list[dict]) -> list[Entry]:
    entries: list[Entry] = []
    for item in staged:
        key, name = item["key"], item["name"]
        if name.lower().endswith(".zip"):
            entries.extend(zip_entries(lambda key=key: default_storage.open(key, "rb"), name))
        else:
            entries.append(Entry(name=name, load=_read_storage(key), meta={"original_name": name}))
    return entries


# ---------------------------------------------------------------- server folders


def _allowed_roots() -> list[str]:
    return [os.path.realpath(r) for r in _cfg("ALLOWED_ROOTS")]


def _root_of(real: str, roots: list[str]) -> str | None:
    for root in roots:
        if real == root or real.startswith(root.rstrip(os.sep) + os.sep):
            return root
    return None


def _outside(path: str, roots: list[str]) -> Reason:
    if not roots:
        return Reason("outside_roots_none_set", path=display_name(path))
    return Reason("outside_roots", path=display_name(path), roots=", ".join(roots))


def check_allowed_path(path: str) -> Path:
    """A path named from the web must lie under INGEST_ALLOWED_ROOTS once every link in it is
    followed. The refusal is the same sentence whether the path exists or not (realpath fails
    neither on a missing part nor on a link loop), so it cannot be used to probe the server."""
    roots = _allowed_roots()
    try:
        real = os.path.realpath(path)
    except ValueError:  # a NUL character or a lone surrogate: no file has such a name
        raise ReaderError(_outside(path, roots)) from None
    if _root_of(real, roots) is None:
        raise ReaderError(_outside(path, roots))
    return Path(real)


_FILE_KINDS = {
    stat.S_IFIFO: "not_regular_fifo", stat.S_IFSOCK: "not_regular_socket", stat.S_IFCHR: "not_regular_char_device",
    stat.S_IFBLK: "not_regular_block_device", stat.S_IFDIR: "not_regular_folder",
}


def _not_regular(mode: int) -> Reason:
    return Reason(_FILE_KINDS.get(stat.S_IFMT(mode), "not_regular_unknown"))


def _open_beneath(real: str, root: str) -> int:
    """Open `real` (a path with no link in it when it was checked) from its root down, one folder
    at a time, never following a link: a folder or the file swapped for a link since the check
    makes the open fail here instead of leading out of the root."""
    parts = Path(real).relative_to(root).parts
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts[:-1]:
            fd, parent = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd), fd
            os.close(parent)
        return os.open(parts[-1] if parts else ".", os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW, dir_fd=fd)
    finally:
        os.close(fd)


def _local_opener(path: str, roots: list[str] | None, shown: str) -> Callable[[], io.BufferedReader]:
    """Open a local file only if it is a regular file (opening a named pipe blocks for ever, a
    device never ends) and, unless trusted (`roots` is None), only if its real path lies under
    the allowed roots when it is read, not only when it was listed. O_NONBLOCK makes the open of
    a pipe return at once; fstat on what was opened leaves no gap between the check and the read."""

    def open_file() -> io.BufferedReader:
        if roots is None:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        else:
            real = os.path.realpath(path)
            root = _root_of(real, roots)
            if root is None:
                raise RefusedFile(_outside(shown, roots))
            try:
                fd = _open_beneath(real, root)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise RefusedFile("path_became_link") from None
                raise
        try:
            mode = os.fstat(fd).st_mode
            if not stat.S_ISREG(mode):
                raise RefusedFile(_not_regular(mode))
        except BaseException:
            os.close(fd)
            raise
        return os.fdopen(fd, "rb")

    return open_file


def _listed_error(path: str, roots: list[str] | None, outside: Reason) -> Reason | None:
    """What is wrong with a local file already when it is listed (reading it checks again)."""
    real = path if roots is None else os.path.realpath(path)
    if roots is not None and _root_of(real, roots) is None:
        return outside
    try:
        mode = os.stat(real).st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return Reason("symlink_loop")
        return None  # missing or unreadable: the read says why
    return None if stat.S_ISREG(mode) else _not_regular(mode)


def _read_file(opener: Callable[[], io.BufferedReader]) -> Callable[[], bytes]:
    def load() -> bytes:
        with opener() as fh:
            return fh.read(_cfg("MAX_FILE_BYTES") + 1)

    return load


def folder_entries(path: str, *, trusted: bool = False) -> list[Entry]:
    """Every file under a server folder. Links to folders are not followed. Unless `trusted` (a
    folder named on the command line by the machine's operator), the folder and each file in it
    must lie under INGEST_ALLOWED_ROOTS once links are followed: a link to a file elsewhere is
    refused, and checked again when the file is read."""
    roots = None if trusted else _allowed_roots()
    top = path if roots is None else str(check_allowed_path(path))
    if not os.path.isdir(top):
        raise ReaderError("folder_not_found", path=display_name(path))
    link_outside = Reason("link_outside_roots")
    entries = []
    for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for fname in sorted(filenames):
            if fname.startswith(".") or fname in JUNK_NAMES:
                continue
            full = os.path.join(dirpath, fname)
            rel = os.path.relpath(full, top)
            if error := _listed_error(full, roots, link_outside):
                entries.append(Entry(name=rel, error=error))
                continue
            opener = _local_opener(full, roots, rel)
            if fname.lower().endswith(".zip"):
                entries.extend(zip_entries(opener, rel))
            else:
                entries.append(Entry(name=rel, load=_read_file(opener), meta={"original_name": fname}))
    return entries


# ---------------------------------------------------------------- S3


def default_s3_endpoint() -> str | None:
    return os.environ.get("AWS_S3_ENDPOINT_URL") or None


def _endpoint_key(url: str) -> tuple | None:
    """What makes two spellings of one endpoint equal: scheme, host (any case), port and path."""
    try:
        parts = urlsplit(url.strip())
        scheme, port = parts.scheme.lower(), parts.port
    except ValueError:
        return None
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    return scheme, parts.hostname, port or (443 if scheme == "https" else 80), parts.path.rstrip("/")


def s3_endpoint_choices() -> list[str]:
    """The endpoints a planner may choose besides the default (AWS_S3_ENDPOINT_URL, else AWS):
    INGEST_S3_ENDPOINT_URLS, as the operator spelled them."""
    seen, choices = {_endpoint_key(default_s3_endpoint() or "")}, []
    for url in _cfg("S3_ENDPOINT_URLS"):
        key = _endpoint_key(url)
        if key is not None and key not in seen:
            seen.add(key)
            choices.append(url.strip())
    return choices


def allowed_s3_endpoint(url: str) -> str | None:
    """The operator's spelling of `url` when it is an allowed endpoint, else None. The worker signs
    its S3 requests with the server's credentials, so the endpoint is operator configuration:
    an address typed in the browser or the API could be any server on the worker's network."""
    key = _endpoint_key(url)
    if key is None:
        return None
    for allowed in filter(None, [default_s3_endpoint(), *_cfg("S3_ENDPOINT_URLS")]):
        if _endpoint_key(allowed) == key:
            return allowed.strip()
    return None


def s3_client(endpoint_url: str | None = None, *, config=None):
    """A boto3 S3 client on the app's S3 settings (AWS_* variables; `endpoint_url`, else
    AWS_S3_ENDPOINT_URL, else AWS); `config` a botocore Config (timeouts, retries)."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint_url or default_s3_endpoint(),
        region_name=os.environ.get("AWS_S3_REGION_NAME") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        config=config,
    )


S3_DENIED_CODES = {
    "AccessDenied", "AllAccessDisabled", "AccountProblem", "ExpiredToken", "InvalidAccessKeyId", "InvalidToken",
    "SignatureDoesNotMatch", "TokenRefreshRequired",
}


def _s3_failure(exc: Exception, where: str, what: str) -> Reason:
    """A fixed description of a failed S3 call, by class of failure. Nothing the remote sent is
    repeated (an error message, a body it could not parse): the job's error and report lines are
    shown in the browser and an endpoint is not necessarily S3. The details go to the log."""
    from botocore.exceptions import (
        ClientError,
        HTTPClientError,
        NoCredentialsError,
        ParamValidationError,
        PartialCredentialsError,
        ReadTimeoutError,
    )
    from botocore.exceptions import (
        ConnectionError as BotoConnectionError,
    )

    log.warning("S3 %s at %s failed: %r", what, where, exc)
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code == "NoSuchBucket":
            return Reason("s3_no_bucket")
        if code == "NoSuchKey":
            return Reason("s3_no_key")
        if code in S3_DENIED_CODES or status in (401, 403):
            return Reason("s3_access_denied")
        if isinstance(status, int):
            return Reason("s3_http_error", endpoint=where, status=str(status))
        return Reason("s3_error", endpoint=where)
    if isinstance(exc, ReadTimeoutError):
        return Reason("s3_timeout", endpoint=where)
    # Refused, unresolvable, unreachable, a connect timeout, a dropped connection: one message, so
    # that an endpoint's answers cannot tell an open port from a closed or filtered one.
    if isinstance(exc, (BotoConnectionError, HTTPClientError)):
        return Reason("s3_unreachable", endpoint=where)
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return Reason("s3_no_credentials")
    if isinstance(exc, ParamValidationError):
        return Reason("s3_bad_name")
    return Reason("s3_not_s3", endpoint=where)


def s3_entries(bucket: str, prefix: str = "", endpoint_url: str | None = None, trusted: bool = False) -> list[Entry]:
    from botocore.exceptions import BotoCoreError, ClientError
    from botocore.parsers import ResponseParserError

    errors = (ClientError, BotoCoreError, ResponseParserError)
    location = f"s3://{bucket}/{prefix or ''}"
    if endpoint_url and not trusted and allowed_s3_endpoint(endpoint_url) is None:
        # Checked again here: the job may have been queued before the operator's list changed.
        raise ReaderError("s3_endpoint_not_allowed", location=display_name(location), endpoint=display_name(endpoint_url))
    where = endpoint_url or default_s3_endpoint() or "AWS S3"
    client = s3_client(endpoint_url)
    entries = []
    max_bytes = _cfg("MAX_FILE_BYTES")
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix or ""):
            for obj in page.get("Contents", []):
                key = obj["Key"]
                base = key.rsplit("/", 1)[-1]
                if key.endswith("/") or base.startswith(".") or base in JUNK_NAMES:
                    continue
                name = f"s3://{bucket}/{key}"
                if obj["Size"] > max_bytes:
                    entries.append(Entry(name=name, error=Reason("s3_object_too_large", size=obj["Size"], limit=max_bytes)))
                    continue

                def load(key=key, name=name) -> bytes:
                    try:
                        return client.get_object(Bucket=bucket, Key=key)["Body"].read(max_bytes + 1)
                    except errors as exc:
                        raise ReaderError(_s3_failure(exc, where, f"read of {name}")) from None

                entries.append(Entry(name=name, load=load, meta={"original_name": base}))
    except errors as exc:
        raise ReaderError("s3_cannot_list", location=display_name(location),
                          detail=_s3_failure(exc, where, f"listing of {location}")) from None
    return entries


# ---------------------------------------------------------------- URLs


def _check_url(url: str) -> list[str] | None:
    """Refuse a URL that is not http(s) or whose host resolves to a private address.

    Returns the addresses that were checked; the fetch connects to one of them rather than asking
    DNS again, which could answer a public address here and 127.0.0.1 a moment later (DNS
    rebinding). None when private addresses are allowed, so that any answer will do."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise LoadRefused("url_not_http", url=repr(url))
    if _cfg("URL_ALLOW_PRIVATE"):
        return None
    try:
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        infos = socket.getaddrinfo(parsed.hostname, port, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise LoadRefused("url_unresolvable_detail", host=parsed.hostname, detail=str(exc.strerror)) from None
    addresses: list[str] = []
    for info in infos:
        addr = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        if addr.version == 6 and addr.ipv4_mapped:
            addr = addr.ipv4_mapped
        if (addr.is_private or addr.is_loopback or addr.is_link_local or addr.is_reserved
                or addr.is_multicast or addr.is_unspecified):
            # The address goes to the log only: the message would tell a planner what the
            # server's internal names resolve to.
            log.info("not fetching %s: %s resolves to %s", url, parsed.hostname, addr)
            raise LoadRefused("url_private", host=parsed.hostname)
        if str(addr) not in addresses:
            addresses.append(str(addr))
    if not addresses:
        raise LoadRefused("url_unresolvable", host=parsed.hostname)
    return addresses


class PinnedAddressAdapter(HTTPAdapter):
    """Sends each request to `address` (one that `_check_url` approved) instead of looking the
    host name up again. The name stays where the server expects it: in the Host header and, for
    https, in SNI and in the certificate check. With `address` None it is an ordinary adapter."""

    address: str | None = None

    def send(self, request, *args, **kwargs):
        if self.address is not None:
            parts = urlsplit(request.url)
            host = f"[{self.address}]" if ":" in self.address else self.address
            request.headers["Host"] = parts.netloc.rsplit("@", 1)[-1]
            request.url = urlunsplit(parts._replace(netloc=host if parts.port is None else f"{host}:{parts.port}"))
        return super().send(request, *args, **kwargs)

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        if self.address is not None and host_params["scheme"] == "https":
            # The URL now holds the address: without these, SNI would be empty and urllib3 would
            # match the certificate against the address. They are part of urllib3's pool key,
            # so two names on one address never share a connection.
            hostname = urlsplit("//" + request.headers["Host"]).hostname
            pool_kwargs["server_hostname"] = pool_kwargs["assert_hostname"] = hostname
        return host_params, pool_kwargs


def _check_hop(url: str, current: str, hop: int) -> list[str] | None:
    if hop == 0:
        return _check_url(url)
    try:
        return _check_url(current)
    except ValueError as exc:
        # Where a server redirects to is its text, not the planner's: it goes to the log only.
        log.info("not following a redirect from %s to %s: %s", url, current, exc)
        raise LoadRefused("url_bad_redirect", url=url) from None


def _get_checked(session: requests.Session, adapter: PinnedAddressAdapter, url: str,
                 addresses: list[str] | None) -> requests.Response:
    """GET `url` from the first of the checked addresses that connects (as a client that
    resolved the name itself would try each)."""
    candidates = addresses if addresses is not None else [None]
    for n, address in enumerate(candidates, start=1):
        adapter.address = address
        try:
            return session.get(url, stream=True, timeout=_cfg("URL_TIMEOUT"), allow_redirects=False)
        except requests.ConnectionError:
            if n == len(candidates):
                raise
    raise AssertionError("unreachable")


def _fetch_failure(exc: requests.RequestException) -> Reason | str:
    if isinstance(exc, requests.exceptions.SSLError):
        return Reason("fetch_tls")
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return Reason("fetch_timeout")
    # A connect timeout (a filtered port) reads like a refused one (a closed port).
    if isinstance(exc, requests.ConnectionError):
        return Reason("fetch_connect")
    return exc.__class__.__name__


MAX_REDIRECTS = 5


def fetch_url(url: str) -> bytes:
    """GET one image URL with a size cap. Redirects are followed by hand so that every hop is
    checked (a public URL must not redirect the fetcher to a private address), and each hop
    connects to an address its check approved. Errors name the manifest's URL and the kind of
    failure, never what a server sent (a redirect's target, a body)."""
    max_bytes = _cfg("MAX_FILE_BYTES")
    current = url
    url = display_name(url)  # as reasons show it; `current` is what is fetched
    with requests.Session() as session:
        adapter = PinnedAddressAdapter()
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        for hop in range(MAX_REDIRECTS + 1):
            addresses = _check_hop(url, current, hop)
            after = (Reason("after_redirect") if hop == 1 else Reason("after_redirects", count=hop)) if hop else ""
            try:
                with _get_checked(session, adapter, current, addresses) as resp:
                    if resp.is_redirect:
                        current = urljoin(current, resp.headers["Location"])
                        continue
                    if resp.status_code != 200:
                        raise LoadRefused("url_http_status", status=str(resp.status_code), url=url, after=after)
                    length = resp.headers.get("Content-Length")
                    if length and length.isdigit() and int(length) > max_bytes:
                        raise LoadRefused("url_declared_too_large", url=url, after=after, size=int(length),
                                           limit=max_bytes)
                    chunks, size = [], 0
                    for chunk in resp.iter_content(64 * 1024):
                        size += len(chunk)
                        if size > max_bytes:
                            raise LoadRefused("url_too_large", url=url, after=after, limit=max_bytes)
                        chunks.append(chunk)
                    return b"".join(chunks)
            except requests.RequestException as exc:
                log.info("cannot fetch %s (at %s): %r", url, current, exc)
                raise LoadRefused("url_fetch_failed", url=url, after=after, detail=_fetch_failure(exc)) from None
    raise LoadRefused("url_too_many_redirects", limit=MAX_REDIRECTS, url=url)


# ---------------------------------------------------------------- manifests


def _pick(row: dict, key: str) -> str:
    for alias in COLUMN_ALIASES[key]:
        value = row.get(alias)
        if value not in (None, ""):
            return str(value).strip()
    return ""


# A manifest field longer than this is refused (an Open Images row is a few hundred characters).
# The csv module's own limit (csv.field_size_limit, 131,072 by default) is left alone: it is one
# setting for the whole process, so raising it here would raise it for every other CSV reader.
MANIFEST_FIELD_MAX = 64 * 1024


class _Lines:
    """A manifest's lines as csv reads them, counted, with the double quotes seen since the
    current row began: csv's own line_num is past the row when it stops with an error."""

    def __init__(self, text: str):
        self._lines = iter(io.StringIO(text))
        self.read = 0
        self.quotes = 0

    def __iter__(self):
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        self.read += 1
        self.quotes += line.count('"')
        return line


def _field_problem(values, limit: int, number: int) -> Reason | None:
    """Why a row's fields cannot be taken. A NUL character or a lone surrogate (JSON lets
    "\\ud800" through) cannot be stored by PostgreSQL or put in a file name: one such field
    would otherwise stop the whole import."""
    for value in values:
        if not isinstance(value, str):
            continue
        if len(value) > limit:
            return Reason("manifest_field_too_long", line=number, limit=limit)
        if "\0" in value:
            return Reason("manifest_nul", line=number)
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return Reason("manifest_surrogate", line=number)
    return None


def parse_manifest(text: str, fmt: str) -> Iterator[tuple[int, dict | None, Reason | None]]:
    """Yield (line number, row dict, error) for each data row of a CSV or JSON Lines manifest. A
    row's number is the line it starts on, also for a row whose quoted field spans lines."""
    if fmt == "jsonl":
        # JSON Lines are split at "\n" only: str.splitlines would also split inside a JSON
        # string at U+2028, U+0085 and other characters that JSON allows there unescaped.
        for number, line in enumerate(text.split("\n"), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                yield number, None, Reason("manifest_bad_json", line=number, detail=exc.msg)
                continue
            except RecursionError:  # the decoder recurses per bracket: [[[[... was a 500
                yield number, None, Reason("manifest_too_deep", line=number)
                continue
            if not isinstance(row, dict):
                yield number, None, Reason("manifest_not_object", line=number)
                continue
            if problem := _field_problem(row.values(), MANIFEST_FIELD_MAX, number):
                yield number, None, problem
                continue
            yield number, row, None
        return
    lines = _Lines(text)
    reader = csv.reader(lines, strict=True)
    try:
        header = next(reader, None) or []
    except csv.Error as exc:
        raise ReaderError("manifest_not_csv", detail=str(exc)) from None
    if not header:
        raise ReaderError("manifest_no_header")
    if not ({"path", "file", "filename"} | set(COLUMN_ALIASES["url"])) & set(header):
        raise ReaderError("manifest_bad_header", header=display_name(str(header)))
    limit = min(MANIFEST_FIELD_MAX, csv.field_size_limit())
    # Other columns (Open Images' OriginalSize, Rotation, ...) are allowed and ignored.
    while True:
        number, lines.quotes = lines.read + 1, 0
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # csv drops the rest of the line it stopped on. If that line left a quoted field
            # open, the row goes on to the line that closes it: skip those lines too, or they
            # would be read as rows of their own.
            while lines.quotes % 2 and next(lines, None) is not None:
                pass
            if "field larger than field limit" in str(exc):
                yield number, None, Reason("manifest_field_too_long", line=number, limit=limit)
            else:
                yield number, None, Reason("manifest_bad_csv", line=number, detail=str(exc))
            continue
        if not fields:  # a blank line
            continue
        if problem := _field_problem(fields, limit, number):
            yield number, None, problem
            continue
        if len(fields) > len(header):
            yield number, None, Reason("manifest_too_many_fields", line=number, fields=len(fields), header=len(header))
            continue
        if len(fields) < len(header):
            yield number, None, Reason("manifest_too_few_fields", line=number, header=len(header))
            continue
        yield number, dict(zip(header, fields)), None


def manifest_entries(text: str, fmt: str, base: str | None = None, trusted: bool = False) -> list[Entry]:
    roots = None if trusted else _allowed_roots()
    entries = []
    for number, row, error in parse_manifest(text, fmt):
        if error:
            entries.append(Entry(name=f"row {number}", error=error))
            continue
        if any("\x00" in f"{key}{value}" for key, value in row.items()):  # no path, URL or slug holds one
            entries.append(Entry(name=f"row {number}", error=Reason("manifest_nul", line=number)))
            continue
        path, url = _pick(row, "path"), _pick(row, "url")
        meta = {k: _pick(row, k) for k in ("category", "subcategory", "licence", "author", "original_url", "title", "external_id")}
        if url and not path:
            meta["original_url"] = meta["original_url"] or url
            meta["original_name"] = urlparse(url).path.rsplit("/", 1)[-1]
            entries.append(Entry(name=f"row {number}: {url}", load=lambda url=url: fetch_url(url), meta=meta))
        elif path:
            full = str(Path(base, path) if base and not os.path.isabs(path) else Path(path))
            if error := _listed_error(full, roots, _outside(full, roots or [])):
                entries.append(Entry(name=f"row {number}: {path}", error=error))
                continue
            meta["original_name"] = os.path.basename(os.path.realpath(full))
            load = _read_file(_local_opener(full, roots, full))
            entries.append(Entry(name=f"row {number}: {path}", load=load, meta=meta))
        else:
            entries.append(Entry(name=f"row {number}", error=Reason("manifest_no_path", line=number)))
    return entries


def detect_manifest_format(name: str, text: str) -> str:
    lower = name.lower()
    if lower.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    if lower.endswith(".csv"):
        return "csv"
    return "jsonl" if text.lstrip().startswith("{") else "csv"
