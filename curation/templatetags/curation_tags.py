from django import template

register = template.Library()


@register.filter
def hex64(value) -> str:
    """A signed 64-bit perceptual hash as 16 hex digits (how the review page shows it)."""
    try:
        return format(int(value) & 0xFFFFFFFFFFFFFFFF, "016x")
    except (TypeError, ValueError):
        return ""



BOX_KINDS = {"face": "face", "licence_plate": "plate"}


@register.filter
def flag_boxes(flag, show=True) -> list[dict]:
    """The boxes of a face or licence plate flag (evidence "boxes": [x, y, w, h, hits] in 0..1 of
    the photo) as SVG coordinates in a 100x100 view box, for the review page's photo card; [] for
    other flags, malformed evidence or when `show` is false (another photo on the card)."""
    if not show:
        return []
    kind = BOX_KINDS.get(getattr(flag, "kind", ""))
    evidence = getattr(flag, "evidence", None)
    if kind is None or not isinstance(evidence, dict) or not isinstance(evidence.get("boxes"), list):
        return []
    out = []
    for box in evidence["boxes"]:
        try:
            x, y, w, h = (min(max(float(v), 0.0), 1.0) for v in box[:4])
        except (TypeError, ValueError):
            continue
        out.append({"kind": kind, "x": f"{x * 100:.2f}", "y": f"{y * 100:.2f}",
                    "w": f"{min(w, 1 - x) * 100:.2f}", "h": f"{min(h, 1 - y) * 100:.2f}"})
    return out
