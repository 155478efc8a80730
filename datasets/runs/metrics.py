"""The comparison table's columns and how eval.json's metric names map onto them.

trainers.evaluate writes {"metrics": {name: value}}; the names are matched loosely (case,
punctuation, "recall" or "R", "image_to_text" or "i2t", "perplexity" or "PPL", a nested
{"image_to_text": {"R@1": ...}}) so that a spelling change in the trainers does not empty the
page. Any other metric is kept as written and shown on the run's own page."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class Column:
    key: str
    label: str  # short, as the table head shows it (metric names are not translated)
    title: object  # the long name, translated where it is words
    higher_is_better: bool = True


RETRIEVAL_COLUMNS = [
    Column("i2t_r1", "I→T R@1", _("Image to text, Recall@1")),
    Column("i2t_r5", "I→T R@5", _("Image to text, Recall@5")),
    Column("i2t_r10", "I→T R@10", _("Image to text, Recall@10")),
    Column("t2i_r1", "T→I R@1", _("Text to image, Recall@1")),
    Column("t2i_r5", "T→I R@5", _("Text to image, Recall@5")),
    Column("t2i_r10", "T→I R@10", _("Text to image, Recall@10")),
]
GENERATIVE_COLUMNS = [
    Column("bleu1", "BLEU-1", "BLEU-1"),
    Column("bleu2", "BLEU-2", "BLEU-2"),
    Column("bleu3", "BLEU-3", "BLEU-3"),
    Column("bleu4", "BLEU-4", "BLEU-4"),
    Column("meteor", "METEOR", "METEOR"),
    Column("rouge_l", "ROUGE-L", "ROUGE-L"),
    Column("cider", "CIDEr", "CIDEr"),
    Column("ppl", "PPL", _("Perplexity (lower is better)"), higher_is_better=False),
]
COLUMNS = {"retrieval": RETRIEVAL_COLUMNS, "generative": GENERATIVE_COLUMNS}
ALL_KEYS = {c.key for cols in COLUMNS.values() for c in cols}

_I2T = re.compile(r"(image|img|i)(to|2)(text|txt|caption|t)")
_T2I = re.compile(r"(text|txt|caption|t)(to|2)(image|img|i)")
_RECALL = re.compile(r"(?:recall|r)@?(\d+)")


def column_key(name: str) -> str | None:
    """The column a metric name belongs to, or None."""
    flat = re.sub(r"[^a-z0-9@]", "", name.lower())
    if not flat:
        return None
    recall = _RECALL.search(flat)
    if recall and recall.group(1) in ("1", "5", "10"):
        rest = flat[:recall.start()] + flat[recall.end():]
        if _I2T.search(rest):
            return f"i2t_r{recall.group(1)}"
        if _T2I.search(rest):
            return f"t2i_r{recall.group(1)}"
        return None
    bleu = re.fullmatch(r"bleu@?([1-4])", flat)
    if bleu:
        return f"bleu{bleu.group(1)}"
    if flat == "meteor":
        return "meteor"
    if flat in ("rougel", "rouge"):
        return "rouge_l"
    if flat in ("cider", "ciderd"):
        return "cider"
    if flat in ("ppl", "perplexity"):
        return "ppl"
    return None


def flatten(metrics: dict, prefix: str = "") -> dict[str, float]:
    """{"image_to_text": {"R@1": 0.5}} -> {"image_to_text/R@1": 0.5}; numbers only."""
    out: dict[str, float] = {}
    for name, value in metrics.items():
        full = f"{prefix}/{name}" if prefix else str(name)
        if isinstance(value, dict):
            out.update(flatten(value, full))
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            out[full] = float(value)
    return out


def scores(metrics: dict) -> dict[str, float]:
    """eval.json's metrics under the column keys (the first spelling found wins)."""
    out: dict[str, float] = {}
    for name, value in flatten(metrics).items():
        key = column_key(name)
        if key is not None and key not in out:
            out[key] = value
    return out
