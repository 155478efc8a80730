"""Personal information in Korean comment text: phone numbers, resident registration numbers,
e-mail, card and bank account numbers, passport and driver's licence numbers, street addresses,
URLs and social handles.

Two engines over ONE table of recognizers (`RECOGNIZERS`, below):

- `scan(text)`: the table alone, with Python's `re`. It is what the labeler's submit runs inline
  (labeling.text's rules) and what the labeler page runs live: the server renders the same table
  into the page (`page_config()`, read by static/js/textrules.js), so the patterns live here only.
  The regexes are therefore written in the dialect Python's `re` and JavaScript's /u regexes
  read alike: explicit classes ([0-9], [A-Za-z], " "), no \\d \\w \\s \\b, no inline flags, no
  named groups. Validators (Luhn, the RRN checksum, ...) exist in both languages, by name.
- `analyze(text)`: presidio-analyzer, offline (a no-op NLP engine, no spaCy model), running the
  same table as presidio PatternRecognizers plus presidio's own recognizers where they fit
  (e-mail with its TLD check, URL with its TLD list, credit cards with Luhn, the Korean passport
  recognizer; not its Korean RRN and driver's licence ones, see analyzer()). It is the curation step's engine (curation.pii.STEPS):
  importing presidio pulls spaCy (~5 s, ~250 MB installed), too much for the submit path.

Before matching, text is folded without changing its length (so spans stay the original's):
full-width letters and digits to ASCII (０１０ -> 010), every kind of space to " ", dashes to "-",
and runs of Korean digit words ("공일공 일이삼사 ...") to digits.

A finding's score: the pattern's base score; a validator saying yes makes it 1.0, saying no drops
it; a context word near the match ("계좌", "여권", "카톡") adds CONTEXT_BOOST. Findings from
REPORT_SCORE up are reported. Evidence is always masked (`mask()`): the raw number is never stored.

Korean RRNs issued after October 2020 carry no checksum: a failed checksum keeps the base score
(0.6), it does not drop the finding.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import lru_cache

from django.utils.translation import gettext_lazy as _

VERSION = "pii-1"
REPORT_SCORE = 0.5
CONTEXT_BOOST = 0.4
CONTEXT_WINDOW = 24  # characters either side of a match where context words count

KINDS = {
    "phone": _("phone number"),
    "rrn": _("resident registration number"),
    "email": _("e-mail address"),
    "card": _("card number"),
    "bank_account": _("bank account number"),
    "passport": _("passport number"),
    "driver_licence": _("driver's licence number"),
    "address": _("street address"),
    "url": _("web address"),
    "handle": _("social media ID"),
}

# --- folding (length-preserving) -------------------------------------------------------------

# Python's str.isspace() set, as in labeling.text / textrules.js.
_SPACES = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680" + "".join(chr(c) for c in range(0x2000, 0x200B)) + \
    "\u2028\u2029\u202f\u205f\u3000"
_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d\u30fc\u3161"  # and ㅡ (010ㅡ1234)
FOLD: dict[str, str] = {chr(c): chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F)}
FOLD.update({ch: " " for ch in _SPACES})
FOLD.update({ch: "-" for ch in _DASHES})
FOLD.pop(" ", None)
_FOLD_TABLE = str.maketrans(FOLD)

NUMERAL_DIGITS = {"공": "0", "영": "0", "일": "1", "이": "2", "삼": "3", "사": "4", "오": "5",
                  "육": "6", "륙": "6", "칠": "7", "팔": "8", "구": "9"}
_N = "[0-9" + "".join(NUMERAL_DIGITS) + "]"
# Seven or more digits or digit words in a row (one space, dot or dash between them), with at
# least NUMERAL_MIN digit words: "공일공-1234-5678", "공일공 일이삼사 오육칠팔", "010-일이삼사-5678";
# not "010-1234-5678이야" (one "이" is a particle).
NUMERAL_RUN = _N + "(?:[ .-]?" + _N + "){6,}"
NUMERAL_MIN = 3
_NUMERAL_RUN = re.compile(NUMERAL_RUN)


def fold(text: str) -> str:
    """The text as the patterns read it, with the same length (spans carry over)."""
    out = text.translate(_FOLD_TABLE)

    def digits(m: re.Match) -> str:
        run = m.group(0)
        if sum(ch in NUMERAL_DIGITS for ch in run) < NUMERAL_MIN:
            return run
        return "".join(NUMERAL_DIGITS.get(ch, ch) for ch in run)

    return _NUMERAL_RUN.sub(digits, out)


# --- validators (mirrored in static/js/textrules.js under the same names) --------------------

def _digits(text: str) -> str:
    return "".join(ch for ch in text if "0" <= ch <= "9")


def luhn(text: str) -> bool | None:
    d = _digits(text)
    total = 0
    for i, ch in enumerate(reversed(d)):
        n = int(ch)
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return True if total % 10 == 0 else False


def rrn(text: str) -> bool | None:
    """True: the checksum holds (RRNs before Oct 2020); None: it does not (later RRNs have none)."""
    d = _digits(text)
    if len(d) != 13:
        return False
    total = sum(int(d[i]) * w for i, w in enumerate((2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5)))
    return True if (11 - total % 11) % 10 == int(d[12]) else None


def account_length(text: str) -> bool | None:
    """Korean bank account numbers have 10 to 14 digits."""
    return None if 10 <= len(_digits(text)) <= 14 else False


VALIDATORS = {"luhn": luhn, "rrn": rrn, "account_length": account_length}

# --- the table -------------------------------------------------------------------------------

ND = "(?<![0-9])"  # no digit before
NDA = "(?![0-9])"  # no digit after
SEP = "(?: ?[-.] ?| )?"  # 010-1234, 010 1234, 010.1234, 010 - 1234, 0101234
SIDO = ("(?:서울|부산|대구|인천|광주|대전|울산|세종|경기|강원|충북|충남|충청북|충청남|전북|전남|전라북|"
        "전라남|경북|경남|경상북|경상남|제주)(?:특별시|광역시|특별자치시|특별자치도|도|시)?")
# 시/군/구: two or more syllables (not 친구, 입구, 출구, 가구, 도구, 야구), or 중구, 동구, 서구, ...
SIGUNGU = "(?:[가-힣]{2,6}(?:시|군|구)|[중동서남북]구)"
ROAD = "[가-힣0-9]{1,12}(?<!으)(?:로|길)"  # not "...으로" (the particle)
# After the building number: the end, a space or punctuation, or a particle or 번지/호/동; not a
# unit (3분, 2개, 5층, 3가, 2호선 are not addresses).
BUILDING_END = "(?![0-9])(?=$|[ ,.!?~)]|에|이|은|는|으로|로|번지|번길|호|동|길)"
BANKS = ("계좌", "입금", "송금", "이체", "예금주", "은행", "국민", "신한", "우리", "하나", "농협", "기업",
         "카카오뱅크", "카뱅", "토스", "케이뱅크", "새마을", "우체국", "수협", "신협", "SC", "KB", "NH", "IBK")
SOCIAL = ("카톡", "카카오톡", "카카오", "인스타", "인스타그램", "insta", "instagram", "트위터", "twitter",
          "페북", "페이스북", "facebook", "틱톡", "tiktok", "유튜브", "youtube", "텔레그램", "telegram",
          "디코", "디스코드", "discord", "라인", "스레드", "threads", "DM", "디엠", "팔로우", "follow")
RRN_WORDS = ("주민", "주민번호", "주민등록", "주민등록번호", "생년월일", "외국인등록")
ADDRESS_WORDS = ("주소", "사는 곳", "살아", "살고", "집", "배송", "도로명", "지번", "번지", "택배", "놀러")


@dataclass(frozen=True)
class Recognizer:
    """One pattern: `regex` in the shared Python/JavaScript dialect (group 1, when there is one,
    is the finding's span); `score` before validation and context."""

    kind: str
    name: str
    regex: str
    score: float
    validator: str = ""
    context: tuple[str, ...] = ()


RECOGNIZERS: tuple[Recognizer, ...] = (
    # Phones: mobile 010/011/016-019 (+82 10 ...), area codes 02, 031-064, 070 and 050x.
    Recognizer("phone", "kr_mobile",
               ND + r"(?:\+ ?82" + SEP + r"(?:\(0\) ?)?0?|\(?0)1[016789]\)?" + SEP + "[0-9]{3,4}" + SEP + "[0-9]{4}" + NDA,
               0.85, context=("전화", "연락", "번호", "폰", "핸드폰", "휴대폰", "문자", "톡")),
    Recognizer("phone", "kr_landline",
               ND + r"(?:\+ ?82" + SEP + r"(?:\(0\) ?)?0?|\(?0)(?:2|[3-6][1-5]|70|50[0-9])\)?" + SEP + "[0-9]{3,4}" + SEP
               + "[0-9]{4}" + NDA,
               0.7, context=("전화", "연락", "번호", "문의", "tel", "TEL", "Tel")),
    # Resident (1-4) and foreign (5-8) registration numbers: YYMMDD-GNNNNNN.
    Recognizer("rrn", "kr_rrn",
               ND + "[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01]) ?- ?[1-8][0-9]{6}" + NDA,
               0.6, "rrn", RRN_WORDS),
    # Without the dash 13 digits are as often a barcode (880...): the checksum or a word decides.
    Recognizer("rrn", "kr_rrn_plain",
               ND + "[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])[1-8][0-9]{6}" + NDA,
               0.3, "rrn", RRN_WORDS),
    Recognizer("card", "card_16",
               ND + "[0-9]{4}(?:[- ]?[0-9]{4}){3}" + NDA, 0.5, "luhn", ("카드", "card", "신용", "체크", "결제")),
    Recognizer("card", "card_amex",
               ND + "3[47][0-9]{2}[- ]?[0-9]{6}[- ]?[0-9]{5}" + NDA, 0.5, "luhn", ("카드", "card", "아멕스", "결제")),
    Recognizer("email", "email",
               "(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\\.[A-Za-z0-9-]+)*\\.[A-Za-z]{2,}(?![A-Za-z0-9])",
               0.9, context=("메일", "이메일", "email", "mail")),
    Recognizer("url", "url_scheme", "(?<![A-Za-z0-9])(?:https?://|www\\.)[^ ]+", 0.8),
    Recognizer("url", "url_domain",
               "(?<![A-Za-z0-9@._%+-])[A-Za-z0-9-]+(?:\\.[A-Za-z0-9-]+)*\\.(?:com|net|org|kr|io|co|me|ly|gg)"
               "(?:/[^ ]*)?(?![A-Za-z0-9-])",
               0.6, context=("링크", "사이트", "홈페이지", "블로그")),
    # Social handles: "카톡 아이디 abc123" (the id is the span), "@foodie_kr".
    Recognizer("handle", "handle_named",
               "(?:" + "|".join(SOCIAL[:-4]) + ") ?(?:아이디|아디|ID|id|Id|계정)(?:는|은|:)? ?:? ?@?([A-Za-z0-9._]{3,30})(?![A-Za-z0-9._])",
               0.85),
    Recognizer("handle", "handle_at",
               "(?<![A-Za-z0-9._%+-])@([A-Za-z_][A-Za-z0-9._]{1,29})(?![A-Za-z0-9._@-])", 0.6,  # not "@3000원"
               context=SOCIAL),
    # Bank accounts: 10-14 digits, in groups or not; only with a bank or transfer word near.
    Recognizer("bank_account", "kr_account_grouped",
               ND + "[0-9]{2,6}-[0-9]{2,6}-[0-9]{2,7}(?:-[0-9]{1,3})?" + NDA, 0.2, "account_length", BANKS),
    Recognizer("bank_account", "kr_account_plain", ND + "[0-9]{10,14}" + NDA, 0.15, "account_length", BANKS),
    # Passports: M123A4567 (since 2021), M12345678 (before).
    Recognizer("passport", "kr_passport", "(?<![A-Za-z0-9])[MSROD][0-9]{3}[A-Z][0-9]{4}" + NDA, 0.5,
               context=("여권", "passport")),
    Recognizer("passport", "kr_passport_old", "(?<![A-Za-z0-9])[MSROD][0-9]{8}" + NDA, 0.15,
               context=("여권", "passport")),
    # Driver's licences: 11-23-456789-01 (region code 11-28), or "서울 04-123456-12".
    Recognizer("driver_licence", "kr_licence",
               ND + "(?:1[1-9]|2[0-8])-[0-9]{2}-[0-9]{6}-[0-9]{2}" + NDA, 0.55, context=("운전면허", "면허", "면허증", "면허번호")),
    Recognizer("driver_licence", "kr_licence_plain",
               ND + "(?:1[1-9]|2[0-8])[0-9]{10}" + NDA, 0.1, context=("운전면허", "면허", "면허증", "면허번호")),
    Recognizer("driver_licence", "kr_licence_region",
               "(?:서울|부산|경기|강원|충북|충남|전북|전남|경북|경남|제주|대구|인천|광주|대전|울산) ?[0-9]{2}-[0-9]{6}-[0-9]{2}" + NDA,
               0.7),
    # Street addresses: road names (도로명) and lot numbers (지번) after a city or district, or
    # an apartment's 동/호.
    Recognizer("address", "kr_road",
               "(?:" + SIDO + " ?)?(?:" + SIGUNGU + " ){1,2}" + ROAD + " ?[0-9]{1,5}(?:-[0-9]{1,5})?" + BUILDING_END,
               0.75, context=ADDRESS_WORDS),
    Recognizer("address", "kr_road_bare", ROAD + " ?[0-9]{1,5}(?:-[0-9]{1,5})?(?:번길)?" + BUILDING_END,
               0.15, context=ADDRESS_WORDS),
    Recognizer("address", "kr_lot",
               "(?:" + SIDO + " ?)?(?:" + SIGUNGU + " ){1,2}[가-힣0-9]{1,8}(?:동|읍|면|리|가) ?[0-9]{1,5}(?:-[0-9]{1,5})?(?:번지)?"
               + BUILDING_END, 0.7, context=ADDRESS_WORDS),
    Recognizer("address", "kr_apartment", ND + "[0-9]{1,4} ?동 ?[0-9]{1,4} ?호(?!선)", 0.7, context=ADDRESS_WORDS),
)

_COMPILED = [(r, re.compile(r.regex)) for r in RECOGNIZERS]


@dataclass(frozen=True)
class Finding:
    kind: str
    start: int
    end: int
    score: float
    recognizer: str

    def as_evidence(self, text: str) -> dict:
        return {"kind": self.kind, "start": self.start, "end": self.end, "score": round(self.score, 3),
                "recognizer": self.recognizer,
                "masked": mask(text[self.start:self.end], 0 if self.kind in MASK_ALL else 2)}


# Kinds whose first characters say too much (a birth date, a building number): all starred.
MASK_ALL = frozenset({"rrn", "address", "bank_account", "passport", "driver_licence"})


def mask(value: str, keep: int = 2) -> str:
    """The finding with every digit and Latin letter starred but the first `keep`: the shape
    stays readable for a reviewer (010-****-****), the number does not."""
    out, kept = [], 0
    for ch, f in zip(value, fold(value)):
        if f.isascii() and f.isalnum():
            out.append(ch if kept < keep else "*")
            kept += 1
        else:
            out.append(ch)
    return "".join(out)


def masked_text(text: str, findings: list[Finding]) -> str:
    out, pos = [], 0
    for f in sorted(findings, key=lambda f: f.start):
        out.append(text[pos:f.start])
        out.append(mask(text[f.start:f.end], 0 if f.kind in MASK_ALL else 2))
        pos = f.end
    out.append(text[pos:])
    return "".join(out)


def _boost(folded: str, start: int, end: int, context: tuple[str, ...]) -> bool:
    if not context:
        return False
    window = folded[max(0, start - CONTEXT_WINDOW):start] + " " + folded[end:end + CONTEXT_WINDOW]
    return any(word in window for word in context)


def _score(rec: Recognizer, value: str, folded: str, start: int, end: int) -> float | None:
    score = rec.score
    if rec.validator:
        verdict = VALIDATORS[rec.validator](value)
        if verdict is False:
            return None
        if verdict is True:
            score = 1.0
    if score < 1.0 and _boost(folded, start, end, rec.context):
        score = min(1.0, score + CONTEXT_BOOST)
    return score


def _resolve(found: list[Finding], min_score: float) -> list[Finding]:
    """Overlapping findings: the highest score wins (then the longest)."""
    kept: list[Finding] = []
    for f in sorted(found, key=lambda f: (-f.score, f.start - f.end, f.start)):
        if f.score >= min_score and all(f.end <= k.start or f.start >= k.end for k in kept):
            kept.append(f)
    return sorted(kept, key=lambda f: f.start)


def scan(text: str, min_score: float = REPORT_SCORE) -> list[Finding]:
    """Personal information in `text` (the table, Python's re): the submit rule and the mirror."""
    folded = fold(text)
    found = []
    for rec, rx in _COMPILED:
        for m in rx.finditer(folded):
            g = 1 if rx.groups else 0
            start, end = m.span(g)
            score = _score(rec, m.group(g), folded, start, end)
            if score is not None:
                found.append(Finding(rec.kind, start, end, score, rec.name))
    return _resolve(found, min_score)


def kinds_found(text: str) -> list[str]:
    """The kinds in `text`, in the order of KINDS."""
    kinds = {f.kind for f in scan(text)}
    return [k for k in KINDS if k in kinds]


def page_config() -> dict:
    """What the labeler page needs to run `scan` itself (static/js/textrules.js): the table,
    the folding and the kinds' names in the active language."""
    return {
        "fold": FOLD, "numerals": NUMERAL_DIGITS, "numeral_run": NUMERAL_RUN, "numeral_min": NUMERAL_MIN,
        "report_score": REPORT_SCORE, "boost": CONTEXT_BOOST, "window": CONTEXT_WINDOW,
        "recognizers": [{"kind": r.kind, "name": r.name, "regex": r.regex, "score": r.score,
                         "validator": r.validator, "context": list(r.context)} for r in RECOGNIZERS],
        "kinds": {k: str(v) for k, v in KINDS.items()},
    }


# --- presidio (the curation step's engine) ---------------------------------------------------

# presidio entity -> our kind, for presidio's own recognizers.
PRESIDIO_KINDS = {"EMAIL_ADDRESS": "email", "URL": "url", "CREDIT_CARD": "card", "KR_PASSPORT": "passport"}
_CONTEXT_OF_KIND = {}
for _r in RECOGNIZERS:
    _CONTEXT_OF_KIND.setdefault(_r.kind, set()).update(_r.context)


@lru_cache(maxsize=1)
def analyzer():
    """presidio's AnalyzerEngine, offline: a no-op NLP engine (no spaCy model), a Korean registry
    with the table above and presidio's own recognizers that fit, tldextract without downloads."""
    import tldextract.tldextract as tldx
    from presidio_analyzer import AnalyzerEngine, Pattern, PatternRecognizer, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NoOpNlpEngine
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        EmailRecognizer,
        KrPassportRecognizer,
        UrlRecognizer,
    )

    logging.getLogger("presidio-analyzer").setLevel(logging.WARNING)  # per-call INFO lines otherwise
    # The e-mail recognizer's TLD check: the bundled public-suffix snapshot, never a download.
    tldx.TLD_EXTRACTOR = tldx.TLDExtract(cache_dir=None, suffix_list_urls=(), fallback_to_snapshot=True)

    class TableRecognizer(PatternRecognizer):
        def __init__(self, rec: Recognizer):
            self.rec = rec
            super().__init__(supported_entity="KO_" + rec.kind, name=rec.name, supported_language="ko",
                             patterns=[Pattern(rec.name, rec.regex, rec.score)], context=list(rec.context),
                             global_regex_flags=re.DOTALL | re.MULTILINE)

        def validate_result(self, pattern_text: str):
            return VALIDATORS[self.rec.validator](pattern_text) if self.rec.validator else None

    registry = RecognizerRegistry(supported_languages=["ko"])
    for rec in RECOGNIZERS:
        registry.add_recognizer(TableRecognizer(rec))
    for cls in (EmailRecognizer, UrlRecognizer, CreditCardRecognizer):
        registry.add_recognizer(cls(supported_language="ko"))
    # presidio's KrDriverLicenseRecognizer and KrRrnRecognizer are left out: the first calls any
    # 12 digits that start with a region code a licence (score 1.0), bank accounts included; the
    # second any 13 digits with a valid checksum an RRN (1.0), product barcodes (880...) included.
    # The table's patterns need the dashed shape or a context word for those.
    registry.add_recognizer(KrPassportRecognizer())
    return AnalyzerEngine(registry=registry, supported_languages=["ko"],
                          nlp_engine=NoOpNlpEngine(models=[{"lang_code": "ko", "model_name": "no_op"}]))


def analyze(text: str, min_score: float = REPORT_SCORE) -> list[Finding]:
    """Personal information in `text` by presidio (the table plus presidio's recognizers).

    presidio's own context enhancement needs an NLP engine's tokens: with the no-op engine it does
    nothing, so the table's context rule (a word within CONTEXT_WINDOW characters) is applied to
    every result here, presidio's included, by kind."""
    folded = fold(text)
    found = []
    for r in analyzer().analyze(text=folded, language="ko"):
        kind = r.entity_type[3:] if r.entity_type.startswith("KO_") else PRESIDIO_KINDS.get(r.entity_type)
        if kind is None:
            continue
        score = float(r.score)
        if score < 1.0 and _boost(folded, r.start, r.end, tuple(_CONTEXT_OF_KIND.get(kind, ()))):
            score = min(1.0, score + CONTEXT_BOOST)
        name = r.recognition_metadata.get("recognizer_name", "") if r.recognition_metadata else ""
        found.append(Finding(kind, r.start, r.end, score, name))
    return _resolve(found, min_score)


def evidence(text: str, findings: list[Finding]) -> dict:
    """A flag's evidence: kinds, masked findings and the masked comment (never the raw values)."""
    kinds = [k for k in KINDS if any(f.kind == k for f in findings)]
    return {"kinds": kinds, "findings": [f.as_evidence(text) for f in findings],
            "masked_text": masked_text(text, findings), "detector": VERSION}


def __getattr__(name: str):
    """`curation.pii.STEPS` (the curation contract), imported on first use: the step needs the
    ORM, and labeling.text imports this module while the apps load."""
    if name == "STEPS":
        from .pii_step import PiiStep

        return [PiiStep()]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
