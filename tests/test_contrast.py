"""Issue 8: text colours meet WCAG AA contrast (4.5:1) against their own backgrounds.

Every rule in the platform's style sheets that sets both a text `color` and a solid `background`
(hex, or a custom property from :root that is one) is checked; badges, status chips, counters,
messages and the selected chip are such rules. Translucent backgrounds are left out (they
depend on what is beneath).
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

CSS = Path(__file__).resolve().parents[1] / "static" / "css"
SHEETS = ["app.css", "label.css"]
AA = 4.5

RULE = re.compile(r"([^{}]+)\{([^{}]*)\}")
HEX = re.compile(r"^#(?:[0-9a-fA-F]{3}){1,2}$")


def _declarations(body: str) -> dict[str, str]:
    out = {}
    for part in body.split(";"):
        if ":" in part:
            name, value = part.split(":", 1)
            out[name.strip()] = value.strip()
    return out


def _custom_properties() -> dict[str, str]:
    text = re.sub(r"/\*.*?\*/", "", (CSS / "app.css").read_text(), flags=re.S)
    root = re.search(r":root\s*\{([^}]*)\}", text).group(1)
    return {k: v for k, v in _declarations(root).items() if k.startswith("--")}


def _solid(value: str, props: dict[str, str]) -> str | None:
    value = value.strip()
    var = re.fullmatch(r"var\((--[\w-]+)\)", value)
    if var:
        value = props.get(var.group(1), "")
    return value if HEX.match(value) else None


def _luminance(hex_colour: str) -> float:
    h = hex_colour.lstrip("#")
    if len(h) == 3:
        h = "".join(c * 2 for c in h)
    channels = [int(h[i:i + 2], 16) / 255 for i in (0, 2, 4)]
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(a: str, b: str) -> float:
    hi, lo = sorted([_luminance(a), _luminance(b)], reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def coloured_rules():
    """(sheet, selector, text colour, background colour) for every rule that sets both."""
    props = _custom_properties()
    for sheet in SHEETS:
        text = re.sub(r"/\*.*?\*/", "", (CSS / sheet).read_text(), flags=re.S)
        for selector, body in RULE.findall(text):
            decl = _declarations(body)
            fg = _solid(decl.get("color", ""), props)
            bg = _solid(decl.get("background", decl.get("background-color", "")), props)
            if fg and bg:
                yield sheet, " ".join(selector.split()), fg, bg


def test_contrast_helper_matches_wcag():
    assert round(contrast("#000000", "#ffffff"), 1) == 21.0
    assert round(contrast("#767676", "#ffffff"), 2) == 4.54  # the well-known lightest AA grey


def test_the_badges_are_found():
    selectors = {sel for _, sel, _, _ in coloured_rules()}
    for wanted in (".badge-ok, .outcome-accepted", ".badge-warn", ".badge-muted", ".status-done, .status-finished",
                   ".status-interrupted", ".counter.is-ok", ".count-badge"):
        assert wanted in selectors


@pytest.mark.parametrize("sheet,selector,fg,bg", list(coloured_rules()),
                         ids=[f"{s}:{sel}" for s, sel, _, _ in coloured_rules()])
def test_text_on_its_background_meets_aa(sheet, selector, fg, bg):
    ratio = contrast(fg, bg)
    assert ratio >= AA, f"{sheet} {selector}: {fg} on {bg} is {ratio:.2f}:1"
