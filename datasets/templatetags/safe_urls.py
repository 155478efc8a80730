"""`{{ url|safe_href }}`: the URL to put in an href or src, or '' when it must not be linked.

Every template that links a URL read from the database goes through this filter, so a row stored
before the http(s)-only check (or by a path that skipped it) still never becomes a script link:
`{% with href=licence.url|safe_href %}{% if href %}<a href="{{ href }}">…{% endif %}{% endwith %}`.
"""
from __future__ import annotations

from django import template

from datasets.weblinks import is_web_link

register = template.Library()


@register.filter
def safe_href(value) -> str:
    """An absolute http(s) URL, or a path on this site (what storages' .url gives without S3)."""
    if not isinstance(value, str):
        return ""
    if is_web_link(value):
        return value
    # A root-relative path resolves against this page's own http(s) origin; "//" and "/\" would
    # name another host (browsers read a backslash as a slash), and a control character or space
    # could hide a scheme from this check but not from a browser.
    if value.startswith("/") and value[1:2] not in ("/", "\\") and not any(c.isspace() or ord(c) < 0x20 for c in value):
        return value
    return ""
