"""Guideline Markdown to safe HTML: Python-Markdown renders, nh3 (ammonia) keeps only harmless
tags and attributes, so a planner's text can never run script in a labeler's browser."""
from __future__ import annotations

import markdown
import nh3
from django.utils.safestring import SafeString, mark_safe

_TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "b", "i", "u", "s", "del",
    "ul", "ol", "li", "blockquote", "code", "pre", "a", "img", "table", "thead", "tbody", "tr", "th", "td",
}
_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"}, "th": {"align"}, "td": {"align"}}


def render(body: str) -> SafeString:
    html = markdown.markdown(body or "", extensions=["tables", "sane_lists", "nl2br"], output_format="html")
    return mark_safe(nh3.clean(html, tags=_TAGS, attributes=_ATTRIBUTES, url_schemes={"http", "https", "mailto"},
                               link_rel="noopener noreferrer nofollow"))
