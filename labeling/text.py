"""Comment text: how long it is to a Korean reader, and the rules a comment must pass.

Pure functions, no database: the server judges with these, and the labeler page mirrors them.
A change here needs the same change in static/js/textrules.js (the page's copy); the browser test
tests/browser/test_textrules_js.py runs one table of cases through both and fails when they differ.

Length is counted the way a reader counts characters: the text is NFC-normalised (so a syllable
typed as decomposed jamo, NFD, counts once), split into extended grapheme clusters (so an emoji
ZWJ family or a letter with combining marks counts once), invisible format characters (zero-width
space, BOM, word joiner) are not counted, and whitespace is not counted unless the planner
chooses so.
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

import regex
from django.utils.translation import gettext_lazy as _

from curation import pii
from datasets.textlength import GRAPHEME as _GRAPHEME
from datasets.textlength import count_length, graphemes, normalise  # noqa: F401 (this module's API)

# Hangul jamo (U+1100–U+11FF), compatibility jamo (U+3130–U+318F), jamo extended A/B.
_JAMO = regex.compile(r"[\u1100-\u11ff\u3130-\u318f\ua960-\ua97f\ud7b0-\ud7ff]")
# URLs, e-mail addresses, phone numbers and the other personal information: curation.pii's one
# table of recognizers (the page runs the same table: the server renders it into the page).


def comparable(text: str) -> str:
    """For 'same text' checks: NFC, case-folded, only letters and digits kept."""
    return "".join(ch for ch in normalise(text).casefold() if ch.isalnum())


def _has_substance(text: str) -> bool:
    """A letter that is not a bare jamo, or a digit: 'ㅋㅋㅋ' and '😂😂' have none."""
    for ch in text:
        if ch.isdigit():
            return True
        if unicodedata.category(ch).startswith("L") and not _JAMO.match(ch):
            return True
    return False


def _longest_run(items: list[str]) -> int:
    best = run = 0
    prev = None
    for g in items:
        if g.isspace():
            prev, run = None, 0
            continue
        run = run + 1 if g == prev else 1
        prev = g
        best = max(best, run)
    return best


@dataclass(frozen=True)
class Rules:
    """Which checks a project applies. Lengths come from the comment type."""

    min_length: int = 3
    max_length: int = 300
    count_whitespace: bool = False
    reject_jamo_or_emoji_only: bool = True
    max_repeat_run: int = 5  # 0 turns the check off
    reject_copied_examples: bool = True
    reject_own_repeats: bool = True
    reject_urls: bool = True
    reject_emails: bool = True
    reject_phone_numbers: bool = True
    reject_personal_info: bool = True  # the other kinds of curation.pii (RRN, card, account, ...)


@dataclass(frozen=True)
class Violation:
    code: str
    message: str


@dataclass
class Check:
    length: int
    violations: list[Violation] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations


MESSAGES = {
    "too_short": _("Too short: at least %(min)d characters (now %(n)d)."),
    "too_long": _("Too long: at most %(max)d characters (now %(n)d)."),
    "jamo_or_emoji_only": _("Write words, not only jamo or emoji (like ㅋㅋㅋ or ㅠㅠ)."),
    "repeated_run": _("One character is repeated too many times in a row."),
    "copied_example": _("This is copied from a guideline example. Write your own comment."),
    "own_repeat": _("You already wrote this comment. Write a new one."),
    "url": _("Links are not allowed in comments."),
    "email": _("E-mail addresses are not allowed in comments."),
    "phone": _("Phone numbers are not allowed in comments."),
    "personal_info": _("Personal information is not allowed in comments (%(kinds)s). Remove it and submit again."),
}

# The kinds the url / email / phone rules cover; "personal_info" covers the rest.
_OWN_RULE_KINDS = {"url", "email", "phone"}


def check(text: str, rules: Rules, *, examples: tuple[str, ...] | list[str] = (),
          own_previous: tuple[str, ...] | list[str] | set[str] = ()) -> Check:
    """Every rule the text breaks, each with a message in the active language.

    `examples` are the guideline's example comments; `own_previous` this labeler's earlier
    comments (as `comparable()` forms or raw text; both work).
    """
    clean = normalise(text)
    items = _GRAPHEME.findall(clean)
    n = count_length(clean, rules.count_whitespace)
    out: list[Violation] = []

    def add(code: str, **params) -> None:
        message = MESSAGES[code]
        out.append(Violation(code, str(message) % params if params else str(message)))

    if n < rules.min_length:
        add("too_short", min=rules.min_length, n=n)
    if rules.max_length and n > rules.max_length:
        add("too_long", max=rules.max_length, n=n)
    if clean and rules.reject_jamo_or_emoji_only and not _has_substance(clean):
        add("jamo_or_emoji_only")
    if rules.max_repeat_run and _longest_run(items) > rules.max_repeat_run:
        add("repeated_run")
    key = comparable(clean)
    if key and rules.reject_copied_examples and any(key == comparable(e) for e in examples):
        add("copied_example")
    if key and rules.reject_own_repeats and any(key == comparable(p) for p in own_previous):
        add("own_repeat")
    if rules.reject_emails or rules.reject_urls or rules.reject_phone_numbers or rules.reject_personal_info:
        kinds = pii.kinds_found(clean)
        if rules.reject_emails and "email" in kinds:
            add("email")
        elif rules.reject_urls and "url" in kinds:
            add("url")
        if rules.reject_phone_numbers and "phone" in kinds:
            add("phone")
        other = [str(pii.KINDS[k]) for k in kinds if k not in _OWN_RULE_KINDS]
        if rules.reject_personal_info and other:
            add("personal_info", kinds=", ".join(other))
    return Check(length=n, violations=out)
