"""static/js/textrules.js against labeling/text.py: the same table of texts goes through the
server's check (Python) and the page's check (Chromium), and both must give the same length and
the same rule codes in the same order. This is what lets the labeler page promise that what it
shows live is what the server will say.

The script is loaded into a blank page, so these tests need no server or database; one test
loads the real labeling page (tests/browser/test_labeler_browser.py drives it further).
"""
from __future__ import annotations

import dataclasses
import random
import unicodedata
from pathlib import Path

import pytest
from django.utils import translation

from curation import pii
from labeling.text import MESSAGES, Rules, check, comparable, count_length

pytestmark = [pytest.mark.browser]

SCRIPT = Path(__file__).resolve().parents[2] / "static" / "js" / "textrules.js"
SHORT = Rules(min_length=3, max_length=100)  # the default project's short reaction
SPECIFIC = Rules(min_length=10, max_length=300)  # and its specific comment
EXAMPLES = ["와.. 족발 폼 미쳤다!", "길고양이야? 너무 귀엽다!!", "Straße CAFÉ 최고"]

TEXTS = [
    # Boundaries of both types: 2/3 and 9/10 characters (spaces do not count).
    "와우", "와우!", "와 우", "족발 폼 미쳤다 진짜!", "족발 폼 미쳤다 진짜!!", "가나다라마바사아자", "가나다라마바사아자차",
    # NFD: decomposed Hangul counts once per syllable; jamo typed apart by an invisible character.
    unicodedata.normalize("NFD", "와우!"), unicodedata.normalize("NFD", "족발 폼 미쳤다 진짜!!"),
    "\u1100\u1161\u1102\u1161\u1103\u1161", "\u1100\u200b\u1161 나다", "\u1112\u1161\u11ab\u1100\u1173\u11af 좋아요",
    # Zero-width and other invisible characters, at the ends and inside.
    "와\u200b우\u2060", "\ufeff좋다", "\u200b\u200b\u200b", "좋\u00ad다요", "가\u180e나다", "\u200d\u200d좋아",
    # Emoji: ZWJ family, skin tone, flag, keycap; emoji only.
    "👨\u200d👩\u200d👧\u200d👦", "👨\u200d👩\u200d👧\u200d👦 가족 사진이다", "👍🏽👍🏽", "🇰🇷🇰🇷 대한민국", "1️⃣2️⃣3️⃣",
    "😂😂😂", "😂 😂", "❤️❤️❤️❤️❤️❤️",
    # Combining marks.
    "e\u0301e\u0301e\u0301", "한\u0308국\u0308어", "a\u0300\u0301\u0302\u0303 좋아", "\u0301\u0301\u0301",
    # Jamo only, laughter inside words, repeated runs.
    "ㅋㅋㅋ", "ㅠㅠ", "ㅋㅋ 😂!!", "ㅎㅇㅎㅇ", "길고양이야? 너무 귀엽다ㅋㅋ", "진짜 웃기다ㅋㅋㅋㅋㅋㅋㅋㅋ",
    "대박!!!!!!!!", "대박!!!!!", "대박!!!!!!", "와아아아아아아", "ㅋ ㅋ ㅋ ㅋ ㅋ ㅋ ㅋ", "😂😂😂😂😂😂 웃겨요",
    # URLs, e-mail addresses, phone numbers and near misses.
    "여기 https://example.com 봐", "www.naver.com 에서 봤어요", "naver.com 에서 샀어요", "naver.com에서 샀어요",
    "사진.kr 좋네요", "http://x", "a.b 는 도메인 아님", "메일 주세요 abc@example.com", "abc@example 는 아님",
    "연락 010-1234-5678 주세요", "연락 01012345678 주세요", "서울 02-123-4567 전화", "+82 10 1234 5678 로",
    "010.1234.5678", "가격은 12345678원", "0101234567890 너무 김", "1234-5678 번호", "031 123 4567 문의",
    # The other personal information (curation.pii): every kind, spelled the ways people write it.
    "공일공-일이삼사-오육칠팔 로 연락", "０１０－１２３４－５６７８", "+82 10-1234-5678", "주민번호 900101-1234568",
    "900101-3234567 이에요", "카드 4111 1111 1111 1111", "카드 4111 1111 1111 1112", "국민은행 123456-01-123456 입금",
    "123456-01-123456", "여권 M123A4567", "운전면허 11-23-456789-01", "서울특별시 강남구 테헤란로 123 놀러와",
    "성남시 분당구 정자동 178-1", "101동 1203호 살아요", "카톡 아이디 hello123", "인스타 @food_lover 팔로우",
    "insta.com/x 👍🏽 링크", "😂😂 @abc 😂 인스타", "가격은 12,000원", "3시 30분", "2024년 5월 3일", "종로구 종로3가 맛집",
    # Copied examples (spacing, punctuation and case do not matter) and a near copy.
    "와 족발 폼 미쳤다", "길고양이야 너무 귀엽다", "strasse café 최고!!", "와.. 족발 폼 미쳤다! 진짜",
    # Whitespace of every kind, at the ends and between words.
    "   ", "\t와\n우\r\n!", "\u3000와우\u3000", "\x1c가나다\x85", "가\u00a0나\u2003다", "",
    # Long texts.
    "가" * 10_000, "가나 " * 3_333, ("와 " * 60).strip(), "족" * 300, "족" * 301,
    "👨\u200d👩\u200d👧\u200d👦" * 2_000,
]


def js_check(page, cases):
    """Run cases [(text, rules dict, examples)] through TextRules.check in the page."""
    return page.evaluate(
        """([cases, templates]) => cases.map(([text, rules, examples]) => {
            const r = TextRules.check(text, rules, {examples});
            return {length: r.length, codes: r.violations.map(v => v.code),
                    messages: r.violations.map(v => TextRules.message(templates, v))};
        })""",
        [cases, english_templates()],
    )


def english_templates():
    with translation.override("en"):
        return {code: str(message) for code, message in MESSAGES.items()}


def py_check(text, rules, examples):
    with translation.override("en"):
        result = check(text, Rules(**rules), examples=examples)
        return {"length": result.length, "codes": [v.code for v in result.violations],
                "messages": [v.message for v in result.violations]}


@pytest.fixture(scope="module")
def rules_page(browser):
    ctx = browser.new_context()
    page = ctx.new_page()
    page.set_content("<!doctype html><html><head><meta charset='utf-8'></head><body></body></html>")
    page.add_script_tag(path=str(SCRIPT))
    assert page.evaluate("typeof TextRules.check") == "function"
    with translation.override("en"):  # the kinds' names, as the English templates expect
        page.evaluate("cfg => TextRules.configurePii(cfg)", pii.page_config())
    yield page
    ctx.close()


def compare(page, cases):
    got = js_check(page, cases)
    mismatches = []
    for (text, rules, examples), js in zip(cases, got):
        py = py_check(text, rules, examples)
        if py != js:
            mismatches.append((text[:40], rules["min_length"], py, js))
    return mismatches


@pytest.mark.parametrize("rules", [SHORT, SPECIFIC], ids=["short-reaction", "specific-comment"])
def test_the_table_gives_the_same_verdicts_in_python_and_javascript(rules_page, rules):
    cases = [(t, dataclasses.asdict(rules), EXAMPLES) for t in TEXTS]
    assert compare(rules_page, cases) == []


def test_the_boundaries_are_where_the_issue_says():
    """The table above holds both types' boundaries; pin them so it cannot drift."""
    assert [check(t, SHORT).ok for t in ("와우", "와우!")] == [False, True]
    assert [check(t, SPECIFIC).ok for t in ("가나다라마바사아자", "가나다라마바사아자차")] == [False, True]


def test_every_rule_switch_and_count_whitespace(rules_page):
    variants = [
        Rules(min_length=3, count_whitespace=True), Rules(min_length=3, reject_jamo_or_emoji_only=False),
        Rules(min_length=3, max_repeat_run=0), Rules(min_length=3, max_repeat_run=2),
        Rules(min_length=3, reject_copied_examples=False), Rules(min_length=3, reject_urls=False),
        Rules(min_length=3, reject_emails=False), Rules(min_length=3, reject_phone_numbers=False),
        Rules(min_length=3, reject_personal_info=False),
        Rules(min_length=0, max_length=0), Rules(min_length=5, max_length=8),
    ]
    cases = [(t, dataclasses.asdict(r), EXAMPLES) for r in variants for t in TEXTS if len(t) < 2000]
    assert compare(rules_page, cases) == []


def test_random_texts_from_tricky_characters(rules_page):
    """A seeded fuzz: thousands of texts built from the characters where Python and JavaScript
    differ most (whitespace sets, digits, word boundaries, case folding, graphemes)."""
    alphabet = list("가나다ㅋㅠ 각!.-@/:0123456789+abcwmokr_ßSſKİıÉé٣²①\t\n\x1c\x85\u3000\u00a0") + [
        "\u200b", "\u2060", "\ufeff", "\u00ad", "\u200d", "\u0301", "\u0308", "👍🏽", "👨", "👩", "🇰", "🇷", "😂",
        "\u1100", "\u1161", "\u11ab", "www.", "http://", ".com", ".io", "010", "02-", "naver", "@x.io", "82 ",
        "공", "일", "이", "구", "０", "－", "1234", "-12-", "900101-", "카톡 아이디 ", "계좌", "여권 ", "M123", "구 ", "로 ",
        "동 ", "호", "4111 1111 ", "@ab", "\u2013",
    ]
    rng = random.Random(20261124)
    cases = []
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 24)))
        rules = Rules(min_length=rng.choice([3, 10]), max_length=rng.choice([0, 12, 300]),
                      count_whitespace=rng.random() < 0.3, max_repeat_run=rng.choice([0, 2, 5]))
        cases.append((text, dataclasses.asdict(rules), ["ss 가나다", "Ab1", "é 좋아"]))
    assert compare(rules_page, cases) == []


def test_comparable_and_count_length_agree(rules_page):
    texts = [t for t in TEXTS if len(t) < 2000] + ["ΣΑΣ σας", "ﬁne Ǆ ǅ ǆ", "Ꭰꭰ ᏸ", "µ ſ K"]
    got = rules_page.evaluate(
        "texts => texts.map(t => [TextRules.comparable(t), TextRules.countLength(t, false), TextRules.countLength(t, true)])",
        texts,
    )
    assert got == [[comparable(t), count_length(t), count_length(t, True)] for t in texts]
