"""Decode, validate and normalise one image. Pure functions: bytes in, bytes and facts out.

Every refusal raises `ImageRefused` with a message a planner can act on.
"""
from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

import imagehash
import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

ALLOWED_FORMATS = {"JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "MPO"}


class ImageRefused(Exception):
    """The file cannot become a catalogue image; the message says why."""


@dataclass(frozen=True)
class Limits:
    max_pixels: int = 50_000_000
    max_file_bytes: int = 50 * 1024 * 1024
    min_side: int = 64
    max_side: int = 16_000
    longest_side: int = 1280
    jpeg_quality: int = 90
    thumb_side: int = 320
    thumb_quality: int = 80

    @classmethod
    def from_settings(cls) -> "Limits":
        from django.conf import settings

        c = settings.INGEST
        return cls(
            max_pixels=c["MAX_PIXELS"],
            max_file_bytes=c["MAX_FILE_BYTES"],
            min_side=c["MIN_SIDE"],
            max_side=c["MAX_SIDE"],
            longest_side=c["STORED_LONGEST_SIDE"],
            jpeg_quality=c["JPEG_QUALITY"],
            thumb_side=c["THUMB_LONGEST_SIDE"],
            thumb_quality=c["THUMB_QUALITY"],
        )


@dataclass
class Processed:
    sha256: str
    pixel_sha256: str
    phash: int  # signed 64-bit, fits a BigIntegerField
    original_format: str
    original_width: int
    original_height: int
    original_bytes: int
    width: int
    height: int
    jpeg: bytes
    thumbnail: bytes


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _to_signed64(value: int) -> int:
    return value - (1 << 64) if value >= (1 << 63) else value


def _open(data: bytes, limits: Limits) -> Image.Image:
    """Open and check the header only (no pixel decode yet)."""
    if not data:
        raise ImageRefused("Empty file (0 bytes).")
    if len(data) > limits.max_file_bytes:
        raise ImageRefused(f"File is {len(data):,} bytes; the limit is {limits.max_file_bytes:,}.")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(data))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageRefused(f"Decompression bomb: {exc}") from None
        except UnidentifiedImageError:
            raise ImageRefused("Not an image, or a format that is not supported (JPEG, PNG, WebP, GIF, BMP, TIFF).") from None
        except (OSError, SyntaxError, ValueError) as exc:
            raise ImageRefused(f"Cannot read the image header: {exc}") from None
    if img.format not in ALLOWED_FORMATS:
        raise ImageRefused(f"Format {img.format} is not supported.")
    w, h = img.size
    if w * h > limits.max_pixels:
        raise ImageRefused(
            f"Image is {w}x{h} = {w * h:,} pixels; the decompression-bomb limit is {limits.max_pixels:,}."
        )
    if max(w, h) > limits.max_side:
        raise ImageRefused(f"Image is {w}x{h}; the longest side may be at most {limits.max_side} px.")
    if min(w, h) < limits.min_side:
        raise ImageRefused(f"Image is {w}x{h}; the shortest side must be at least {limits.min_side} px.")
    # MPO (many cameras' and phones' JPEGs) carries extra frames that are previews or a second
    # eye of a stereo pair: the first frame is the photo. Other formats with frames are animations
    # or multi-page scans, which are not photos.
    if img.format != "MPO" and getattr(img, "is_animated", False) and getattr(img, "n_frames", 1) > 1:
        kind = "Multi-page" if img.format == "TIFF" else "Animated"
        raise ImageRefused(f"{kind} image ({img.n_frames} frames); only still photos are accepted.")
    return img


def _to_rgb(img: Image.Image) -> Image.Image:
    """Any mode to 8-bit sRGB RGB: ICC profiles applied, 16-bit scaled, transparency on white."""
    icc = img.info.get("icc_profile")
    if icc and img.mode in ("RGB", "CMYK", "RGBA"):
        try:
            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            dst = ImageCms.createProfile("sRGB")
            out_mode = "RGBA" if img.mode == "RGBA" else "RGB"
            img = ImageCms.profileToProfile(img, src, dst, outputMode=out_mode)
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # a broken profile: fall back to the plain conversion below
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img, dtype=np.uint32 if img.mode == "I" else np.uint16)
        if arr.max(initial=0) > 255:
            arr = arr >> 8
        img = Image.fromarray(arr.clip(0, 255).astype(np.uint8), "L")
    if img.mode == "F":
        arr = np.asarray(img, dtype=np.float32)
        img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "L")
    has_alpha = img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)
    if has_alpha:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if img.mode != "RGB":
        return img.convert("RGB")
    return img


def _encode_jpeg(img: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    # No exif=, no icc_profile=: the stored copy carries no metadata (GPS, camera, author).
    img.save(buf, "JPEG", quality=quality, optimize=False)
    return buf.getvalue()


def _fit(img: Image.Image, side: int) -> Image.Image:
    """Shrink so the longest side is `side`: an integer box reduce first, then Pillow's Hamming
    filter (antialiased, sharper than bilinear at the same cost; bicubic cost 60% more time for
    no visible gain at these ratios, measured with bench/ingest.py)."""
    w, h = img.size
    if max(w, h) <= side:
        return img
    scale = side / max(w, h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    factor = int(1 / scale / 2)  # keep at least 2x over the target for the filter pass
    if factor >= 2:
        img = img.reduce(factor)
    return img.resize(size, Image.Resampling.HAMMING)


def _draft(img: Image.Image, side: int) -> float:
    """JPEG only: let libjpeg decode at 1/2, 1/4 or 1/8 scale while the result stays at least
    `side` on its longest side (DCT scaling: much cheaper than decoding all pixels and
    shrinking). Returns the scale used."""
    if img.format not in ("JPEG", "MPO"):
        return 1.0
    w, h = img.size
    if max(w, h) <= side:
        return 1.0
    scale = side / max(w, h)
    requested = (max(1, int(w * scale)), max(1, int(h * scale)))
    before = img.size
    img.draft("RGB" if img.mode != "CMYK" else None, requested)
    return img.size[0] / before[0]


def _orient(img: Image.Image) -> Image.Image:
    """Apply EXIF orientation (a copy only when the tag asks for a turn or flip)."""
    if img.getexif().get(0x0112, 1) in (None, 1):
        return img
    return ImageOps.exif_transpose(img)


def process(data: bytes, limits: Limits | None = None) -> Processed:
    """Validate and normalise `data`; raise ImageRefused with a reason if it cannot be used.

    The pixel hash is taken over the oriented RGB pixels as decoded for the stored copy. For a
    large JPEG that decode is at a DCT scale (1/2, 1/4, 1/8), which is part of the hashed data,
    so two files with the same coded pixels match, whatever their metadata.
    """
    limits = limits or Limits()
    img = _open(data, limits)
    original_format = img.format
    ow, oh = img.size
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            _draft(img, limits.longest_side)
            img.load()
            img = _orient(img)
            rgb = _to_rgb(img)
        except ImageRefused:
            raise
        except Image.DecompressionBombWarning as exc:
            raise ImageRefused(f"Decompression bomb: {exc}") from None
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            raise ImageRefused(f"Corrupt or truncated image: {exc}") from None
    digest = hashlib.sha256(b"%dx%d:" % rgb.size)
    digest.update(rgb.tobytes())
    pixel_sha = digest.hexdigest()
    # Pillow copies `info` (JPEG comment, XMP, EXIF, ICC) through convert/transpose/resize, and
    # its JPEG writer reuses some of it: the stored copy must carry none of it (privacy).
    rgb.info = {}
    stored = _fit(rgb, limits.longest_side)
    thumb = _fit(stored, limits.thumb_side)
    phash = _to_signed64(int(str(imagehash.phash(thumb)), 16))
    return Processed(
        sha256=sha256_bytes(data),
        pixel_sha256=pixel_sha,
        phash=phash,
        original_format=original_format,
        original_width=ow,
        original_height=oh,
        original_bytes=len(data),
        width=stored.width,
        height=stored.height,
        jpeg=_encode_jpeg(stored, limits.jpeg_quality),
        thumbnail=_encode_jpeg(thumb, limits.thumb_quality),
    )


def hamming(a: int, b: int) -> int:
    """Bits that differ between two signed 64-bit perceptual hashes."""
    return bin((a ^ b) & ((1 << 64) - 1)).count("1")
