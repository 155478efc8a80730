"""The curation step that flags personal information in stored comments (curation.pii.STEPS).

presidio's engine (curation.pii.analyze) over each chunk of the run's comments; one PII flag per
comment that holds any, score the highest finding's, evidence masked (curation.pii.evidence: the
kinds, each finding's kind, span, score and masked text, the masked comment; never the raw value).
Comments are immutable, so a comment once checked at this version needs no second look: a
new-only run plans the comments that arrived since the previous run's step. A full run checks
every comment again: an open flag no longer found (a better recognizer) is withdrawn.
"""
from __future__ import annotations

import importlib.util

from django.utils.translation import gettext_lazy as _

from . import pii
from .steps import Step

DETECTOR = "pii"


class PiiStep(Step):
    name = "pii"
    label = _("Personal information in comments")
    queue = "curation"
    subject = "comments"
    chunk_size = 500

    def unavailable(self, run) -> str | None:
        if importlib.util.find_spec("presidio_analyzer") is None:
            return str(_("presidio-analyzer is not installed (pip install -r requirements.txt)."))
        return None

    def plan(self, run) -> list[int]:
        return list(run.new_comments(self.name).order_by("pk").values_list("pk", flat=True))

    def process(self, run, ids: list[int]) -> dict[str, int]:
        from labeling.models import Comment

        from .models import FlagKind
        from .services import FlagData, record_flags

        flags = []
        for pk, text in Comment.objects.filter(pk__in=ids).order_by("pk").values_list("pk", "text"):
            findings = pii.analyze(text)
            if findings:
                flags.append(FlagData(kind=FlagKind.PII, comment=pk, score=max(f.score for f in findings),
                                      evidence=pii.evidence(text, findings)))
        from .steps import _flag_counts

        recorded = record_flags(DETECTOR, pii.VERSION, flags, checked_comments=ids, kinds=[FlagKind.PII])
        return {"comments": len(ids), **_flag_counts(recorded)}

    def finish(self, run) -> dict[str, int]:
        return {}
