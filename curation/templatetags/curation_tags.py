from django import template

register = template.Library()


@register.filter
def hex64(value) -> str:
    """A signed 64-bit perceptual hash as 16 hex digits (how the review page shows it)."""
    try:
        return format(int(value) & 0xFFFFFFFFFFFFFFFF, "016x")
    except (TypeError, ValueError):
        return ""

