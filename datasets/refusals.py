"""Why an import refused a file, warned about it, or stopped: every reason has a code and named
parameters, and its message is said in the reader's language when it is shown.

A `Reason` is a `str` whose text is the English message (what logs, the management commands, the
stored `ImportItem.reason` / `ImportJob.error` column and its search use), and which carries its
`code` and `params` so that pages and the API can say it again in any language (`Reason.text()`,
or `render(code, params)` for a stored line). Exceptions that stand for a refusal (`Refusal` and
its kinds in imaging and readers) carry one as `.reason`.

Parameters are JSON values: numbers (shown with thousands separators), strings (names are
already `readers.display_name`d by whoever makes the reason; pages escape them), and nested
reasons as {"code": ..., "params": ...} (a list of them is shown joined by "; ").
"""
from __future__ import annotations

from django.utils.translation import gettext_lazy as _

# ---------------------------------------------------------------- the registry

MESSAGES = {
    # -- the image itself (datasets.imaging)
    "empty_file": _("Empty file (0 bytes)."),
    "file_too_large": _("File is %(size)s bytes; the limit is %(limit)s."),
    "not_an_image": _("Not an image, or a format that is not supported (%(supported)s)."),
    "unreadable_header": _("Cannot read the image header: %(detail)s"),
    "unsupported_format": _("Format %(format)s is not supported (%(supported)s)."),
    "too_many_pixels": _("Image is %(dimensions)s = %(pixels)s pixels; the decompression-bomb limit is %(limit)s."),
    "side_too_long": _("Image is %(dimensions)s; the longest side may be at most %(limit)s px."),
    "side_too_short": _("Image is %(dimensions)s; the shortest side must be at least %(limit)s px."),
    "too_elongated": _("Image is %(dimensions)s (%(ratio)s); the longest side may be at most %(limit)s times the "
                       "shortest."),
    "animated": _("Animated image (%(frames)s frames); only still photos are accepted."),
    "multi_page": _("Multi-page image (%(frames)s frames); only still photos are accepted."),
    "decompression_bomb": _("Decompression bomb: the image declares more than %(limit)s pixels, the limit."),
    "undecodable": _("Cannot decode this image (%(error)s); the file is probably damaged."),
    "corrupt": _("Corrupt or truncated image: %(detail)s"),
    # -- licence, category and quota (datasets.services)
    "unknown_licence": _("Unknown licence '%(value)s'; add it on the licences page first."),
    "non_commercial_licence": _("Licence %(licence)s does not allow commercial use, and the commercial-only "
                                "policy is on."),
    "unknown_category": _("Unknown category '%(value)s'."),
    "subcategory_without_category": _("Subcategory '%(value)s' given without a category."),
    "unknown_subcategory": _("Category %(category)s has no subcategory '%(value)s'."),
    "subcategory_not_in_category": _("Subcategory %(subcategory)s is not in category %(category)s."),
    "category_retired": _("Category %(category)s is retired and takes no new images."),
    "subcategory_retired": _("Subcategory %(subcategory)s is retired and takes no new images."),
    "quota_full_refused": _("%(target)s is full (%(have)s of %(quota)s); the planner chose to refuse images "
                            "past the quota."),
    "quota_full_accepted": _("%(target)s is full (%(have)s of %(quota)s); accepted over quota."),
    "quota_room_refused": _("%(target)s has room for %(room)s more, not %(adding)s (%(have)s of %(quota)s); the "
                            "planner chose to refuse images past the quota."),
    "quota_room_accepted": _("%(target)s has room for %(room)s more, not %(adding)s (%(have)s of %(quota)s); "
                             "accepted over quota."),
    "bad_original_url": _("original_url must be an http(s) URL; got %(value)s"),
    # -- duplicates
    "same_bytes": _("Same bytes as an image already stored."),
    "same_pixels": _("Same pixels as an image already stored."),
    "stored_concurrently": _("Stored by a concurrent import."),
    # -- one entry's read or judgement
    "cannot_read": _("Cannot read: %(detail)s"),
    "file_missing": _("No such file."),
    "permission_denied": _("Permission denied."),
    "time_limit": _("Reading or judging this file went past the import task's time limit; it was skipped and "
                    "the rest of the import went on."),
    "unexpected_error": _("Could not be judged: an unexpected error (%(error)s); it was logged. The rest of the "
                          "import went on."),
    "several": _("%(reasons)s"),
    # -- zip archives (datasets.readers)
    "zip_unreadable": _("Not a readable zip archive: %(detail)s"),
    "zip_too_many_members": _("Zip has %(members)s members; the limit is %(limit)s."),
    "zip_bomb_total": _("Zip bomb: it would inflate to %(size)s bytes; the limit is %(limit)s."),
    "zip_unsafe_path": _("Unsafe path in zip (absolute or with ../); not read."),
    "zip_encrypted": _("Encrypted zip member; not read."),
    "zip_bomb_ratio": _("Zip bomb: member inflates %(ratio)s times; not read."),
    "zip_member_too_large": _("member inflates past %(limit)s bytes"),
    # -- server folders and manifest paths
    "outside_roots": _("%(path)s is not under an allowed ingest root (INGEST_ALLOWED_ROOTS: %(roots)s)."),
    "outside_roots_none_set": _("%(path)s is not under an allowed ingest root (INGEST_ALLOWED_ROOTS: none set)."),
    "link_outside_roots": _("A symbolic link to a file outside the allowed ingest roots; not read."),
    "path_became_link": _("Its path changed to a symbolic link while the import ran; not read."),
    "symlink_loop": _("A loop of symbolic links; not read."),
    "not_regular_fifo": _("Not a regular file (a named pipe); not read."),
    "not_regular_socket": _("Not a regular file (a socket); not read."),
    "not_regular_char_device": _("Not a regular file (a character device); not read."),
    "not_regular_block_device": _("Not a regular file (a block device); not read."),
    "not_regular_folder": _("Not a regular file (a folder); not read."),
    "not_regular_unknown": _("Not a regular file (of an unknown kind); not read."),
    "folder_not_found": _("Folder not found: %(path)s"),
    # -- S3
    "s3_object_too_large": _("Object is %(size)s bytes; the limit is %(limit)s."),
    "s3_endpoint_not_allowed": _("Cannot list %(location)s: the S3 endpoint %(endpoint)s is not allowed "
                                 "(INGEST_S3_ENDPOINT_URLS)."),
    "s3_cannot_list": _("Cannot list %(location)s: %(detail)s."),
    "s3_no_bucket": _("the bucket does not exist (NoSuchBucket)"),
    "s3_no_key": _("the object does not exist (NoSuchKey)"),
    "s3_access_denied": _("access denied (check the credentials and the bucket policy; details are in the "
                          "server log)"),
    "s3_http_error": _("%(endpoint)s answered with an error (HTTP %(status)s; details are in the server log)"),
    "s3_error": _("%(endpoint)s answered with an error (details are in the server log)"),
    "s3_timeout": _("%(endpoint)s did not answer in time"),
    "s3_unreachable": _("%(endpoint)s could not be reached"),
    "s3_no_credentials": _("no S3 credentials are configured on the server"),
    "s3_bad_name": _("the bucket name or prefix is not valid"),
    "s3_not_s3": _("%(endpoint)s gave an answer that is not S3's (details are in the server log)"),
    # -- URLs in manifests
    "url_not_http": _("only http(s) URLs can be fetched, not %(url)s"),
    "url_unresolvable": _("cannot resolve %(host)s"),
    "url_unresolvable_detail": _("cannot resolve %(host)s: %(detail)s"),
    "url_private": _("%(host)s resolves to a private address; not fetched"),
    "url_bad_redirect": _("%(url)s redirects to a URL that is not fetched (not http(s), unresolvable, or a "
                          "private address)"),
    "url_http_status": _("HTTP %(status)s from %(url)s%(after)s"),
    "url_declared_too_large": _("%(url)s%(after)s is %(size)s bytes; the limit is %(limit)s"),
    "url_too_large": _("%(url)s%(after)s is larger than %(limit)s bytes"),
    "url_fetch_failed": _("cannot fetch %(url)s%(after)s: %(detail)s"),
    "url_too_many_redirects": _("more than %(limit)s redirects from %(url)s"),
    "after_redirect": _(" (after 1 redirect)"),
    "after_redirects": _(" (after %(count)s redirects)"),
    "fetch_tls": _("TLS handshake or certificate check failed (SSLError)"),
    "fetch_timeout": _("no answer in time (ReadTimeout)"),
    "fetch_connect": _("could not connect (ConnectionError)"),
    # -- manifests
    "manifest_bad_json": _("line %(line)s: not valid JSON (%(detail)s)"),
    "manifest_too_deep": _("line %(line)s: JSON nested too deeply"),
    "manifest_not_object": _("line %(line)s: expected a JSON object"),
    "manifest_field_too_long": _("line %(line)s: a field is longer than %(limit)s characters"),
    "manifest_nul": _("line %(line)s: a field holds a NUL character"),
    "manifest_surrogate": _("line %(line)s: a field holds a lone surrogate escape (\\ud800 to \\udfff), which is "
                            "not text"),
    "manifest_bad_csv": _("line %(line)s: malformed CSV (%(detail)s)"),
    "manifest_too_many_fields": _("line %(line)s: %(fields)s fields, the header has %(header)s"),
    "manifest_too_few_fields": _("line %(line)s: fewer fields than the header (%(header)s)"),
    "manifest_no_path": _("line %(line)s: neither a path nor a url"),
    "manifest_not_csv": _("Manifest is not valid CSV: %(detail)s"),
    "manifest_bad_header": _("Manifest header must have a 'path' or 'url' column (Open Images: 'OriginalURL'); "
                             "got %(header)s."),
    "manifest_no_header": _("Manifest header must have a 'path' or 'url' column (Open Images: 'OriginalURL'); "
                            "got nothing."),
    # -- the whole import (ImportJob.error)
    "unknown_import_kind": _("Unknown import kind %(kind)s."),
    "stopped_by_ctrl_c": _("Stopped by Ctrl-C."),
    "stopped_by_error": _("Stopped by %(error)s: %(detail)s"),
    "stopped_not_file_fault": _("Stopped by an error that is not one file's fault (%(error)s: %(detail)s). The "
                                "files not yet reported are kept: resume the import once the cause is fixed."),
    "stalled": _("No progress for %(minutes)s minutes: the worker or command running this import stopped "
                 "(killed, crashed or restarted). Resume it to read the files not yet reported."),
    "given_up": _("%(previous)s Not resumed within %(days)s days: its staged files were removed."),
    "storage_refused_write": _("The media storage refused a write (%(error)s: %(detail)s)"),
}


# ---------------------------------------------------------------- rendering


def _shown(value):
    """A parameter as a message shows it: numbers grouped by thousands, nested reasons said."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, dict) and "code" in value:
        return render(value["code"], value.get("params") or {})
    if isinstance(value, (list, tuple)):
        return "; ".join(str(_shown(v)) for v in value)
    return value


def _template(code: str) -> str:
    template = MESSAGES[code]
    from django.conf import settings

    if not settings.configured:  # imaging used without Django (a script): the English as written
        return template._args[0]
    return str(template)


def render(code: str, params: dict | None = None, fallback: str = "") -> str:
    """The message for `code` in the active language; `fallback` (the stored English text of a
    line written before codes, or with a code this version does not know) otherwise."""
    if not code or code not in MESSAGES:
        return fallback
    return _fill(_template(code), params, fallback)


def _fill(template: str, params: dict | None, fallback: str) -> str:
    try:
        return template % {key: _shown(value) for key, value in (params or {}).items()}
    except (KeyError, TypeError, ValueError):
        return fallback or template


def render_message(messages: dict, code: str, params: dict | None = None, fallback: str = "") -> str:
    """`render` for another table of coded messages (an export's, a run folder's refusals)."""
    if not code or code not in messages:
        return fallback
    return _fill(str(messages[code]), params, fallback)


class CodedError(Exception):
    """A refusal with a code from the class's table of translated `MESSAGES` and its named
    parameters: str() and `english` are the English (what logs and stored rows keep), `text()`
    says it in the active language. Subclasses set MESSAGES (datasets.export.errors,
    datasets.runs.errors)."""

    MESSAGES: dict = {}

    def __init__(self, code: str, **params):
        from django.utils import translation

        if code not in self.MESSAGES:
            raise KeyError(code)
        self.code, self.params = code, {k: v if isinstance(v, (int, dict)) else str(v) for k, v in params.items()}
        with translation.override("en"):
            self.english = render_message(self.MESSAGES, code, self.params)
        super().__init__(self.english)

    def text(self) -> str:
        return render_message(self.MESSAGES, self.code, self.params, fallback=self.english)


# A parameter's text is cut at this length (a manifest field may be 64 KiB; a report line is shown
# whole, and its English is stored in a 1,000-character column).
PARAM_MAX = 500


def _jsonable(value):
    """A parameter as stored (JSON): text made safe to store and show (no NUL or lone surrogate,
    no control or bidi character: readers.display_name) and cut to PARAM_MAX characters."""
    if isinstance(value, Reason):
        return value.as_dict()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (int, float, bool)) or value is None or (isinstance(value, dict) and "code" in value):
        return value
    from .readers import display_name

    text = display_name(str(value))
    return text if len(text) <= PARAM_MAX else text[:PARAM_MAX] + "…"


def _english(code: str, params: dict) -> str:
    from django.conf import settings

    if not settings.configured:
        return render(code, params)
    from django.utils import translation

    with translation.override("en"):
        return render(code, params)


class Reason(str):
    """A refusal, warning or stop: its English text, with `code` and `params` to say it in any
    language (`text()`)."""

    code: str
    params: dict

    def __new__(cls, code: str, **params) -> Reason:
        if code not in MESSAGES:
            raise KeyError(f"no message for refusal code {code!r} in datasets.refusals.MESSAGES")
        params = {key: _jsonable(value) for key, value in params.items()}
        obj = super().__new__(cls, _english(code, params))
        obj.code, obj.params = code, params
        return obj

    def text(self) -> str:
        """The message in the active language."""
        return render(self.code, self.params, fallback=str.__str__(self))

    def as_dict(self) -> dict:
        return {"code": self.code, "params": self.params}

    def __reduce__(self):  # pickles (Celery results, multiprocessing) as a Reason again
        return (_rebuild, (self.code, self.params))


def _rebuild(code: str, params: dict) -> Reason:
    return Reason(code, **params)


def several(reasons: list) -> Reason | str:
    """One reason for the non-empty ones given: itself when only one, else `several`."""
    kept = [r for r in reasons if r]
    if not kept:
        return ""
    if len(kept) == 1:
        return kept[0]
    return Reason("several", reasons=kept)


def code_of(reason) -> tuple[str, dict]:
    """(code, params) of a reason, ('', {}) for plain text."""
    if isinstance(reason, Reason):
        return reason.code, reason.params
    return "", {}


class Refusal(Exception):
    """An exception standing for a coded reason: `str(exc)` is its English text, `exc.reason` the
    Reason (`exc.reason.text()` says it in the active language)."""

    def __init__(self, code: str | Reason, **params):
        self.reason = code if isinstance(code, Reason) else Reason(code, **params)
        super().__init__(str.__str__(self.reason))

    @property
    def code(self) -> str:
        return self.reason.code

    @property
    def params(self) -> dict:
        return self.reason.params

    def __reduce__(self):
        return (self.__class__, (self.reason,))


def reason_of(exc: BaseException) -> Reason | None:
    """The Reason an exception carries, if it is a coded one."""
    reason = getattr(exc, "reason", None)
    return reason if isinstance(reason, Reason) else None
