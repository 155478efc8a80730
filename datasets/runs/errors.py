"""Why a run folder was refused: a code, named parameters and a message said in the reader's
language (as datasets.export.errors does for exports)."""
from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from ..refusals import CodedError, render_message

MESSAGES = {
    "bad_location": _("Give a run folder: a path on the server or s3://bucket/prefix."),
    "outside_root": _("Run folders registered from the web lie under %(root)s; %(path)s is outside it."),
    "not_found": _("There is no folder at %(location)s."),
    "no_run_json": _("%(location)s has no run.json: it is not a run folder written by the trainers."),
    "bad_run_json": _("run.json in %(location)s is not valid JSON: %(detail)s."),
    "unknown_format": _("run.json in %(location)s has format %(format)s; this platform reads run folders of format "
                        "%(known)s. Update the platform, or register it with the trainers that wrote it."),
    "bad_field": _("run.json in %(location)s: %(field)s %(problem)s."),
    "bad_eval_json": _("eval.json in %(location)s is not valid: %(detail)s."),
    "bad_metrics_csv": _("metrics.csv in %(location)s is not valid: %(detail)s."),
    "too_large": _("%(file)s in %(location)s is larger than %(limit)s bytes."),
    "s3_failed": _("Cannot read %(location)s: %(detail)s."),
    "read_failed": _("Cannot read %(location)s: %(detail)s."),
}


def render(code: str, params: dict | None = None, fallback: str = "") -> str:
    return render_message(MESSAGES, code, params, fallback)


class RunError(CodedError):
    """A run folder refused, with its code and parameters; str() is the English."""

    MESSAGES = MESSAGES

