"""Why an export was refused or failed: a code, named parameters and a message said in the
reader's language when shown (as datasets.refusals does for imports). `Export.error` keeps the
English; `Export.error_text` says it again in the active language."""
from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from ..refusals import CodedError, render_message

MESSAGES = {
    "bad_destination": _("Give a folder on the server or s3://bucket/prefix."),
    "outside_root": _("Exports from the web go under %(root)s; %(path)s is outside it."),
    "bad_options": _("These export options are not valid: %(detail)s"),
    "empty_snapshot": _("This snapshot has no photos: there is nothing to export."),
    "different_options": _("%(folder)s already holds a finished export of this version with other options "
                           "(%(options)s). Export to another destination, or with the same options."),
    "busy_other_options": _("Another export of this version to %(folder)s is running with other options; "
                            "wait for it or export elsewhere."),
    "content_differs": _("%(folder)s already holds a finished export whose %(path)s differs from what this "
                         "export writes; it was left as it is."),
    "folder_unwritable": _("Cannot write to %(folder)s: %(detail)s."),
    "s3_failed": _("Cannot write to %(folder)s: %(detail)s."),
    "write_failed": _("Writing %(path)s failed: %(detail)s."),
    "file_missing": _("%(path)s is missing or incomplete at the destination; resume the export to write it again."),
    "worker_failed": _("The export stopped: %(error)s. Resume it to write the shards not yet written."),
    "not_resumable": _("Export %(id)s is %(status)s; only a failed, cancelled or stalled export can be resumed."),
    "not_cancellable": _("Export %(id)s is %(status)s; only a queued or running export can be cancelled."),
    "cancelled": _("Cancelled by %(user)s."),
}


def render(code: str, params: dict | None = None, fallback: str = "") -> str:
    return render_message(MESSAGES, code, params, fallback)


class ExportError(CodedError):
    """A refusal or failure of an export, with its code and parameters; str() is the English."""

    MESSAGES = MESSAGES
    status = 400


class ExportConflict(ExportError):
    """The state of the export or of the destination refuses this (409)."""

    status = 409
