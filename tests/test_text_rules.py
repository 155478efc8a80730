"""Comment length as a Korean reader counts it, and the text rules (groundwork for labeling)."""
import unicodedata

import pytest
from django.utils import translation

from labeling.text import Rules, check, count_length

SHORT = Rules(min_length=3)  # the known build's short reaction
SPECIFIC = Rules(min_length=10)  # and its specific comment


@pytest.mark.parametrize(
    "text, expected",
    [
        ("와.. 족발 폼 미쳤다!", 10),  # spaces are not counted
        (unicodedata.normalize("NFD", "족발"), 2),  # decomposed jamo count as the syllable
        ("와\u200b우\u2060", 2),  # zero-width space and word joiner are invisible
        ("\ufeff좋다", 2),
        ("👨\u200d👩\u200d👧\u200d👦", 1),  # one ZWJ family emoji
        ("👍🏽", 1),  # emoji with a skin-tone modifier
        ("🇰🇷", 1),  # a flag: two regional indicators
        ("e\u0301", 1),  # combining acute accent
        ("한\u0308", 1),  # Hangul with a combining mark
        ("가" * 10_000, 10_000),
        ("   ", 0),
    ],
)
def test_length_counts_what_a_reader_sees(text, expected):
    assert count_length(text) == expected


def test_whitespace_counts_when_the_planner_chooses():
    assert count_length("와 대박", count_whitespace=True) == 4
    assert count_length("와 대박") == 3


@pytest.mark.parametrize(
    "rules, text, ok",
    [
        (SHORT, "와우", False),  # 2 < 3
        (SHORT, "와우!", True),  # 3
        (SHORT, unicodedata.normalize("NFD", "와우!"), True),
        (SHORT, "와 우", False),  # the space does not count
        (SPECIFIC, "족발 폼 미쳤다 진짜!", False),  # 9
        (SPECIFIC, "족발 폼 미쳤다 진짜!!", True),  # 10
    ],
)
def test_each_type_boundary(rules, text, ok):
    assert check(text, rules).ok is ok


@pytest.mark.parametrize(
    "text, code",
    [
        ("ㅋㅋㅋ", "jamo_or_emoji_only"),
        ("ㅠㅠㅠ", "jamo_or_emoji_only"),
        ("😂😂😂", "jamo_or_emoji_only"),
        ("ㅋㅋ 😂!!", "jamo_or_emoji_only"),
        ("진짜 웃기다ㅋㅋㅋㅋㅋㅋㅋㅋ", "repeated_run"),
        ("대박!!!!!!!!", "repeated_run"),
        ("여기 https://example.com 봐", "url"),
        ("naver.com 에서 샀어요", "url"),
        ("메일 주세요 abc@example.com", "email"),
        ("연락 010-1234-5678 주세요", "phone"),
        ("연락 01012345678 주세요", "phone"),
        ("서울 02-123-4567 전화", "phone"),
    ],
)
def test_rules_reject_with_a_code(text, code):
    assert code in [v.code for v in check(text, SHORT).violations]


def test_text_with_words_passes_even_with_some_laughter():
    result = check("길고양이야? 너무 귀엽다ㅋㅋ", SHORT)
    assert result.ok, result.violations


def test_copied_example_and_own_repeat_ignore_spacing_and_punctuation():
    examples = ["와.. 족발 폼 미쳤다!"]
    assert [v.code for v in check("와 족발 폼 미쳤다", SHORT, examples=examples).violations] == ["copied_example"]
    assert [v.code for v in check("족발 맛있겠다", SHORT, own_previous=["족발 맛있겠다!!"]).violations] == ["own_repeat"]


def test_rules_can_be_switched_off():
    relaxed = Rules(min_length=3, reject_jamo_or_emoji_only=False, reject_urls=False, max_repeat_run=0)
    assert check("ㅋㅋㅋㅋㅋㅋㅋ", relaxed).ok
    assert check("naver.com 좋아요", relaxed).ok


def test_messages_speak_korean_and_english():
    with translation.override("en"):
        en = check("ㅋ", SHORT).violations[0].message
    assert "at least 3" in en
    with translation.override("ko"):
        ko = check("ㅋ", SHORT).violations[0].message
    assert ko == "너무 짧아요: 최소 3자 (지금 1자)."
