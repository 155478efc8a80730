"""Why a run folder was refused: a code, named parameters and a message said in the reader's
language (as datasets.export.errors does for exports)."""
from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from ..refusals import _shown

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
    if not code or code not in MESSAGES:
        return fallback
    try:
        return str(MESSAGES[code]) % {k: _shown(v) for k, v in (params or {}).items()}
    except (KeyError, TypeError, ValueError):
        return fallback or str(MESSAGES[code])


class RunError(Exception):
    """A run folder refused, with its code and parameters; str() is the English."""

    def __init__(self, code: str, **params):
        from django.utils import translation

        if code not in MESSAGES:
            raise KeyError(code)
        self.code, self.params = code, {k: v if isinstance(v, (int, dict)) else str(v) for k, v in params.items()}
        with translation.override("en"):
            self.english = render(code, self.params)
        super().__init__(self.english)

    def text(self) -> str:
        return render(self.code, self.params, fallback=self.english)
