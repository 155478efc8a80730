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


# ---------------------------------------------------------------- faces and licence plates
# Drawn stand-ins with a known answer for curation.photo_pii's tests and benchmark: a cartoon
# frontal face (oval, hair, brows, eyes, nose shadow, mouth) and a licence plate (a white plate
# with black characters) pasted on a generated photo. Boxes in 0..1 of the photo: (x, y, w, h).

SKIN = [(232, 192, 160), (214, 170, 135), (190, 145, 110), (240, 210, 185), (160, 115, 85)]
HAIR = [(35, 28, 24), (60, 40, 30), (20, 20, 20), (110, 80, 50)]
HANGUL_FONTS = ("/usr/share/fonts/truetype/nanum/NanumGothicBold.ttf", "/usr/share/fonts/truetype/nanum/NanumGothic.ttf",
                "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc")


def draw_face(img: Image.Image, cx: float, cy: float, size: float, rng: np.random.Generator) -> tuple:
    """A frontal face `size` pixels high centred on (cx, cy); its box in pixels (x, y, w, h)."""
    draw = ImageDraw.Draw(img)
    w, h = size * 0.78, size
    skin = SKIN[int(rng.integers(len(SKIN)))]
    hair = HAIR[int(rng.integers(len(HAIR)))]
    draw.ellipse([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], fill=skin)
    draw.chord([cx - w / 2, cy - h / 2, cx + w / 2, cy - h / 2 + h * 0.45], 180, 360, fill=hair)
    ey = cy - h * 0.08
    for side in (-1, 1):
        ex = cx + side * w * 0.2
        draw.rectangle([ex - w * 0.12, ey - h * 0.09, ex + w * 0.12, ey - h * 0.065], fill=hair)
        draw.ellipse([ex - w * 0.1, ey - h * 0.035, ex + w * 0.1, ey + h * 0.035], fill=(245, 245, 245))
        draw.ellipse([ex - w * 0.045, ey - h * 0.035, ex + w * 0.045, ey + h * 0.035], fill=(30, 20, 15))
    shade = tuple(int(c * 0.85) for c in skin)
    draw.polygon([(cx, ey), (cx - w * 0.07, cy + h * 0.12), (cx + w * 0.07, cy + h * 0.12)], fill=shade)
    draw.ellipse([cx - w * 0.15, cy + h * 0.2, cx + w * 0.15, cy + h * 0.27], fill=(150, 60, 60))
    return (cx - w / 2, cy - h / 2, w, h)


def plate_text(style: str, rng: np.random.Generator) -> str:
    digits = lambda n: "".join(str(int(d)) for d in rng.integers(0, 10, n))  # noqa: E731
    if style == "ko":  # 12가 3456 (2006) or 123가 4567 (2019)
        syllable = "가나다라마거너더러머버서어저고노도로모보소오조구누두루무부수우주"[int(rng.integers(32))]
        return f"{digits(int(rng.integers(2, 4)))}{syllable} {digits(4)}"
    letters = "ABEKMHOPCTYX"  # the Latin look-alikes Russian plates use
    pick = lambda: letters[int(rng.integers(len(letters)))]  # noqa: E731
    return f"{pick()}{digits(3)}{pick()}{pick()} {digits(2)}"


def _font(size: int, hangul: bool):
    from pathlib import Path

    from PIL import ImageFont

    if hangul:
        for path in HANGUL_FONTS:
            if Path(path).exists():
                return ImageFont.truetype(path, size)
    return ImageFont.load_default(size=size)


def draw_plate(img: Image.Image, cx: float, cy: float, width: float, style: str, rng: np.random.Generator) -> tuple:
    """A plate `width` pixels wide centred on (cx, cy): Russian (520x112 mm) or Korean
    (520x110 mm); its box in pixels."""
    draw = ImageDraw.Draw(img)
    height = width / (4.64 if style == "ru" else 4.73)
    x0, y0 = cx - width / 2, cy - height / 2
    draw.rectangle([x0, y0, x0 + width, y0 + height], fill=(245, 245, 240), outline=(15, 15, 15),
                   width=max(1, int(height / 20)))
    text = plate_text(style, rng)
    font = _font(int(height * 0.72), hangul=style == "ko")
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    draw.text((x0 + (width - (right - left)) / 2 - left, y0 + (height - (bottom - top)) / 2 - top), text,
              fill=(15, 15, 15), font=font)
    return (x0, y0, width, height)


def _normalised(box: tuple, size: tuple) -> tuple:
    x, y, w, h = box
    return (x / size[0], y / size[1], w / size[0], h / size[1])


def face_photo(seed: int, width: int = 640, height: int = 480, faces: int = 1) -> tuple[Image.Image, list]:
    """A generated photo with `faces` drawn faces side by side (12-40% of the photo high); their boxes."""
    rng = np.random.default_rng(seed + 7919)
    img = photo(seed, width, height)
    boxes = []
    for n in range(faces):
        size = height * rng.uniform(0.12, 0.4) / max(1, faces / 2)
        cx = width * (n + 0.5) / faces + rng.uniform(-0.05, 0.05) * width / faces
        cy = height * rng.uniform(0.35, 0.65)
        boxes.append(_normalised(draw_face(img, cx, cy, size, rng), img.size))
    return img.filter(ImageFilter.GaussianBlur(0.7)), boxes


def plate_photo(seed: int, width: int = 640, height: int = 480, style: str = "ru") -> tuple[Image.Image, list]:
    """A generated photo with one plate (15-45% of the photo wide), "ru" or "ko"; its box."""
    rng = np.random.default_rng(seed + 104729)
    img = photo(seed, width, height)
    box = draw_plate(img, width * rng.uniform(0.35, 0.65), height * rng.uniform(0.35, 0.65),
                     width * rng.uniform(0.15, 0.45), style, rng)
    return img.filter(ImageFilter.GaussianBlur(0.6)), [_normalised(box, img.size)]
