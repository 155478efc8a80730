"""Generated photo-like images and the copies a catalogue meets, for tests and benchmarks.

Not flat colours: a smooth gradient in a random direction and palette, a low-frequency "terrain"
of a few random waves, shapes (ellipses, rectangles, polygons, lines) in random colours, fine
grain and a blur that softens edges as a camera does. Each seed gives a different photo.
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter


def photo(seed: int, width: int = 480, height: int = 360) -> Image.Image:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    x /= width
    y /= height
    angle = rng.uniform(0, 2 * np.pi)
    t = np.cos(angle) * x + np.sin(angle) * y
    t = (t - t.min()) / max(float(np.ptp(t)), 1e-6)
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    base = c0 + (c1 - c0) * t[..., None]
    for _ in range(3):  # low-frequency terrain
        fx, fy, ph = rng.uniform(0.5, 4), rng.uniform(0.5, 4), rng.uniform(0, 2 * np.pi)
        amp = rng.uniform(10, 40, 3)
        base += amp * np.sin(2 * np.pi * (fx * x + fy * y) + ph)[..., None]
    img = Image.fromarray(base.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(6, 14))):
        kind = int(rng.integers(0, 4))
        x0, y0 = int(rng.integers(-width // 8, width)), int(rng.integers(-height // 8, height))
        w, h = int(rng.integers(width // 12, width // 2)), int(rng.integers(height // 12, height // 2))
        fill = tuple(int(v) for v in rng.integers(0, 256, 3))
        if kind == 0:
            draw.ellipse([x0, y0, x0 + w, y0 + h], fill=fill)
        elif kind == 1:
            draw.rectangle([x0, y0, x0 + w, y0 + h], fill=fill)
        elif kind == 2:
            pts = [(int(x0 + rng.integers(0, w)), int(y0 + rng.integers(0, h))) for _ in range(int(rng.integers(3, 6)))]
            draw.polygon(pts, fill=fill)
        else:
            draw.line([x0, y0, x0 + w, y0 + h], fill=fill, width=int(rng.integers(2, 10)))
    img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.6, 1.5)))
    arr = np.asarray(img, dtype=np.float32) + rng.normal(0, rng.uniform(2, 7), (height, width, 3))
    return Image.fromarray(arr.clip(0, 255).astype(np.uint8))


def jpeg(img: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def from_jpeg(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img.convert("RGB")


def resize(img: Image.Image, factor: float) -> Image.Image:
    w, h = img.size
    return img.resize((max(1, round(w * factor)), max(1, round(h * factor))), Image.Resampling.LANCZOS)


def recode(img: Image.Image, quality: int) -> Image.Image:
    return from_jpeg(jpeg(img, quality))


def crop(img: Image.Image, fraction: float, rng: np.random.Generator | None = None) -> Image.Image:
    """Cut `fraction` of the width and of the height away, split between the two sides at random
    (all from one side at worst): an off-centre crop, the harder case."""
    rng = rng or np.random.default_rng(0)
    w, h = img.size
    dx, dy = round(w * fraction), round(h * fraction)
    left, top = int(rng.integers(0, dx + 1)), int(rng.integers(0, dy + 1))
    return img.crop((left, top, left + w - dx, top + h - dy))


def brightness(img: Image.Image, factor: float) -> Image.Image:
    return ImageEnhance.Brightness(img).enhance(factor)


def transforms(rng: np.random.Generator | None = None) -> dict:
    """{name: function(img) -> img}: the copies the issue asks the perceptual tier to find (each
    copy is then stored as a JPEG of quality 90, as a catalogue would hold it)."""
    rng = rng or np.random.default_rng(0)
    return {
        "resize 50%": lambda im: resize(im, 0.5),
        "JPEG q30": lambda im: recode(im, 30),
        "JPEG q60": lambda im: recode(im, 60),
        "JPEG q95": lambda im: recode(im, 95),
        "crop 5%": lambda im: crop(im, 0.05, rng),
        "crop 10%": lambda im: crop(im, 0.10, rng),
        "brightness +20%": lambda im: brightness(im, 1.2),
        "brightness -20%": lambda im: brightness(im, 0.8),
    }
