"""Image quality flags from cheap statistics of a small thumbnail (cleanvision-like).

Pure: a PIL image in, numbers and flags out; no Django. The numbers follow cleanvision's
`issue_managers` (see ../shared/notes/ml-facts.md, "Curation"), each a score in [0, 1] where LOW
means the problem, flagged when below its threshold, except `tiny` (pixels on the short side of
the original) and `grayscale` (flagged when the colour spread is below it):

  dark          99th percentile of perceived brightness / 255 (a photo with no bright part)
  light         1 - 5th percentile of brightness / 255 (a photo with no dark part: overexposed)
  blurry        edge strength against contrast: std of Pillow's FIND_EDGES over std of the grey
                thumbnail, clipped to 1 (cleanvision uses the edge std at 64 px alone; divided by
                the contrast, a dark or flat photo is not called blurry, and at 128 px grain
                weighs less: on generated photos, originals 0.30-0.86, a Gaussian blur of 1.25 %
                of the width 0.08-0.18)
  low_information  Pillow's grey-level entropy x 0.1 (bits / 10; 8 bits of levels is 0.8)
  odd_aspect    short side / long side of the original
  grayscale     colourfulness: the sum over pixels of (largest - smallest channel) over the sum
                of the largest channel (HSV saturation weighted by value: a dark colour photo
                keeps its score; generated colour photos 0.2-0.9, a grey one with channel noise
                of 1.5 levels ~0.02)
  tiny          short side of the original, in pixels

The thresholds come from a dict (`DEFAULT_THRESHOLDS` merged with what is passed). The Django
setting that holds them: settings.CURATION["QUALITY_THRESHOLDS"] (env CURATION_QUALITY_THRESHOLDS; same keys).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageFilter

THUMB_SIDE = 128   # the statistics' thumbnail

DEFAULT_THRESHOLDS: dict[str, float] = {
    "dark": 0.32,              # cleanvision
    "light": 0.05,             # cleanvision
    "blurry": 0.2,             # this module's scale (cleanvision's 0.29 is of another measure)
    "low_information": 0.3,    # cleanvision
    "odd_aspect": 0.35,        # cleanvision
    "grayscale": 0.05,
    "tiny": 128,               # px on the short side
}

FLAGS = tuple(DEFAULT_THRESHOLDS)


@dataclass
class QualityReport:
    """`values`: every statistic; `flags`: {flag: (value, threshold)} for the flags raised (the
    evidence a reviewer sees)."""
    values: dict[str, float]
    flags: dict[str, tuple[float, float]] = field(default_factory=dict)

    def evidence(self, flag: str) -> dict:
        value, threshold = self.flags[flag]
        return {"value": value, "threshold": threshold}


def _shrink(img: Image.Image, side: int) -> Image.Image:
    w, h = img.size
    if max(w, h) <= side:
        return img
    scale = side / max(w, h)
    return img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BOX)


def statistics(img: Image.Image, *, width: int | None = None, height: int | None = None) -> dict[str, float]:
    """The numbers of the module's doc. `width`/`height`: the original's size when `img` is a
    thumbnail (Image.original_width/height); `img.size` otherwise."""
    width, height = width or img.size[0], height or img.size[1]
    rgb = _shrink(img.convert("RGB"), THUMB_SIDE)
    arr = np.asarray(rgb, dtype=np.float32)
    r, g, b = arr[..., 0], arr[..., 1], arr[..., 2]
    brightness = np.sqrt(0.241 * r * r + 0.691 * g * g + 0.068 * b * b)
    grey = rgb.convert("L")
    edges = np.asarray(grey.filter(ImageFilter.FIND_EDGES), dtype=np.float32)
    # FIND_EDGES leaves the one-pixel border at zero: leave it out.
    inner = edges[1:-1, 1:-1] if min(edges.shape) > 2 else edges
    contrast = float(np.asarray(grey, dtype=np.float32).std())
    return {
        "dark": round(float(np.percentile(brightness, 99)) / 255, 4),
        "light": round(1 - float(np.percentile(brightness, 5)) / 255, 4),
        "blurry": round(min(1.0, float(inner.std()) / contrast), 4) if contrast > 1.0 else 0.0,
        "low_information": round(grey.entropy() * 0.1, 4) + 0.0,  # no -0.0
        "odd_aspect": round(min(width, height) / max(width, height), 4),
        "grayscale": round(float((arr.max(axis=2) - arr.min(axis=2)).sum()) / max(float(arr.max(axis=2).sum()), 1.0), 4),
        "tiny": float(min(width, height)),
    }


def assess(img: Image.Image, *, width: int | None = None, height: int | None = None,
           thresholds: dict[str, float] | None = None) -> QualityReport:
    """Statistics and the flags they raise (a flag whose threshold is None is off)."""
    limits = {**DEFAULT_THRESHOLDS, **(thresholds or {})}
    unknown = set(limits) - set(DEFAULT_THRESHOLDS)
    if unknown:
        raise ValueError(f"unknown quality flag(s): {', '.join(sorted(unknown))}")
    values = statistics(img, width=width, height=height)
    flags = {}
    for flag, threshold in limits.items():
        if threshold is not None and values[flag] < threshold:
            flags[flag] = (values[flag], float(threshold))
    return QualityReport(values=values, flags=flags)
