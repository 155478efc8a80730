"""Links to the outside web that the platform stores and shows (an image's original URL, a
licence's URL, anything later): only absolute http(s) URLs.

A stored `javascript:` URL rendered as a link runs script in the session of whoever clicks it, so
every such URL is checked here, in one place: by the services that store them, by the model fields
(so serializers and forms refuse them with a 400) and, for rows stored before the check, by the
`safe_href` template filter (datasets/templatetags/safe_urls.py) that every template links through.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.utils.translation import gettext

LINK_SCHEMES = ("http", "https")
_SHOWN = 60


def is_web_link(value: object) -> bool:
    """True for an absolute http(s) URL with a host, and nothing else.

    Browsers drop tabs and newlines anywhere in a URL and spaces and control characters around it
    ("java\\tscript:" is javascript:), so any of those makes the value refused rather than cleaned:
    then what is checked is exactly what a browser would follow.
    """
    if not isinstance(value, str) or not value:
        return False
    if any(c.isspace() or ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in value):
        return False
    scheme, sep, rest = value.partition(":")
    if not sep or scheme.lower() not in LINK_SCHEMES or not rest.startswith("//"):
        return False
    try:
        return bool(urlsplit(value).hostname)
    except ValueError:  # e.g. an unbalanced "[" in the host
        return False


def link_problem(value: str, field: str | None = None) -> str:
    """'' when `value` may be stored and linked; otherwise why not, for an import report or a 400."""
    if is_web_link(value):
        return ""
    if field:
        return gettext("%(field)s must be an http(s) URL; got %(value)s") % {"field": field, "value": shown_link(value)}
    return gettext("Enter an http(s) URL; got %(value)s") % {"value": shown_link(value)}


def shown_link(value: str) -> str:
    """A refused link as messages quote it: its first characters, escaped (repr)."""
    return repr(value if len(value) <= _SHOWN else value[:_SHOWN] + "…")


def validate_web_link(value: str) -> None:
    """Model and serializer field validator; blank values are the field's `blank` business."""
    if value and not is_web_link(value):
        raise ValidationError(link_problem(value), code="scheme")
