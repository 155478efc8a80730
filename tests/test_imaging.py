"""One image through decode, validate and normalise: the bad-input corpus, case by case."""
from __future__ import annotations

import io
import tracemalloc

import numpy as np
import pytest
from PIL import Image, ImageFile

from datasets import imaging
from tests import corpus
from tests.conftest import make_photo

LIMITS = imaging.Limits()


def stored(processed: imaging.Processed) -> Image.Image:
    img = Image.open(io.BytesIO(processed.jpeg))
    img.load()
    return img


def check_cmyk(p, img):
    assert img.mode == "RGB"
    # Colours survive the CMYK round trip (an inverted or unconverted CMYK would not).
    source = np.asarray(Image.open(io.BytesIO(make_photo(320, 240, seed=12))).convert("RGB"), dtype=float)
    assert np.abs(np.asarray(img, dtype=float).mean((0, 1)) - source.mean((0, 1))).max() < 12


def check_16bit(p, img):
    grey = np.asarray(img.convert("L"), dtype=int)
    assert abs(int(np.median(grey)) - 128) <= 2  # mid-grey stays mid-grey, not white or black


def check_palette(p, img):
    assert img.getpixel((150, 50)) >= (250, 250, 250)  # the transparent half is white
    r, g, b = img.getpixel((50, 50))
    assert r > 240 and g < 20 and b < 20  # the opaque half stays red


def check_exif(p, img):
    assert img.size == (400, 600)  # Orientation=6 applied to the pixels
    assert (p.original_width, p.original_height) == (600, 400)
    assert not img.getexif()
    assert "exif" not in img.info and "comment" not in img.info and "icc_profile" not in img.info
    assert b"Secret" not in p.jpeg and b"Secret" not in p.thumbnail


def check_webp(p, img):
    assert p.original_format == "WEBP" and img.size == (320, 240)


# (case, bytes, limits, expected: a refusal reason fragment, or a check of the stored copy)
CORPUS = [
    ("truncated-jpeg", corpus.truncated_jpeg, LIMITS, "Corrupt or truncated"),
    ("zero-bytes", lambda: b"", LIMITS, "Empty file"),
    ("text-renamed-jpg", corpus.text_as_jpg, LIMITS, "Not an image"),
    ("html-with-script", corpus.html_with_script, LIMITS, "Not an image"),
    ("svg-with-script", corpus.svg_with_script, LIMITS, "Not an image"),
    ("png-decompression-bomb", lambda: corpus.png_bomb(8000, 8000), LIMITS, "decompression-bomb limit"),
    ("30000x30000-header", corpus.huge_header, LIMITS, "Decompression bomb"),
    ("animated-gif", corpus.animated_gif, LIMITS, "Animated image (3 frames)"),
    ("too-small", corpus.too_small, LIMITS, "at least 64 px"),
    ("too-large-side", corpus.too_large_side, imaging.Limits(max_side=800), "at most 800 px"),
    ("too-many-bytes", lambda: make_photo(200, 200), imaging.Limits(max_file_bytes=1000), "the limit is 1,000"),
    ("cmyk-jpeg", corpus.cmyk_jpeg, LIMITS, check_cmyk),
    ("png-16-bit", corpus.png16_mid_grey, LIMITS, check_16bit),
    ("palette-png-transparency", corpus.palette_png_transparent, LIMITS, check_palette),
    ("exif-rotated-with-gps", corpus.exif_rotated_with_gps, LIMITS, check_exif),
    ("webp", corpus.webp, LIMITS, check_webp),
]


@pytest.mark.parametrize("case,make,limits,expected", CORPUS, ids=[c[0] for c in CORPUS])
def test_corpus(case, make, limits, expected):
    data = make()
    if isinstance(expected, str):
        with pytest.raises(imaging.ImageRefused) as refused:
            imaging.process(data, limits)
        assert expected in str(refused.value), str(refused.value)
        return
    processed = imaging.process(data, limits)
    img = stored(processed)
    assert img.format == "JPEG" and img.mode == "RGB"
    assert Image.open(io.BytesIO(processed.thumbnail)).format == "JPEG"
    expected(processed, img)


def test_bomb_file_is_tiny():
    """The bomb case really is a bomb: a small file that declares 64 megapixels."""
    data = corpus.png_bomb(8000, 8000)
    assert len(data) < 100_000
    assert Image.open(io.BytesIO(data)).size == (8000, 8000)


def test_huge_header_is_refused_before_decoding(monkeypatch):
    """900 megapixels are refused from the header alone: no pixel decode, no big allocation."""

    def no_decode(self, *args, **kwargs):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decode)
    monkeypatch.setattr(Image.Image, "load", no_decode)
    data = corpus.huge_header()
    tracemalloc.start()
    try:
        with pytest.raises(imaging.ImageRefused, match="Decompression bomb"):
            imaging.process(data, LIMITS)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 5 * 1024 * 1024  # decoding would need ~900 MB


def test_over_our_pixel_limit_but_under_pillows_is_refused_from_the_header(monkeypatch):
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: pytest.fail("pixels were decoded"))
    with pytest.raises(imaging.ImageRefused, match="4000x3000 = 12,000,000 pixels"):
        imaging.process(corpus.png_with_header(4000, 3000), imaging.Limits(max_pixels=10_000_000))


def test_stored_copy_is_fitted_and_thumbnail_is_small():
    big = make_photo(1600, 1200, seed=21)
    p = imaging.process(big, LIMITS)
    assert (p.width, p.height) == (1280, 960)
    assert stored(p).size == (1280, 960)
    assert max(Image.open(io.BytesIO(p.thumbnail)).size) == 320
    assert (p.original_width, p.original_height, p.original_bytes) == (1600, 1200, len(big))


def test_same_pixels_with_other_metadata_share_the_pixel_hash():
    plain = make_photo(640, 480, seed=22, fmt="PNG")
    tagged = Image.open(io.BytesIO(plain))
    exif = tagged.getexif()
    exif[0x010F] = "Another camera"
    buf = io.BytesIO()
    tagged.save(buf, "PNG", exif=exif)
    a, b = imaging.process(plain, LIMITS), imaging.process(buf.getvalue(), LIMITS)
    assert a.sha256 != b.sha256
    assert a.pixel_sha256 == b.pixel_sha256
    assert imaging.hamming(a.phash, b.phash) == 0


def test_perceptual_hash_is_close_for_a_recompressed_copy_and_far_for_another_photo():
    a = imaging.process(make_photo(640, 480, seed=23, quality=95), LIMITS)
    b = imaging.process(make_photo(640, 480, seed=23, quality=60), LIMITS)
    c = imaging.process(make_photo(640, 480, seed=24, quality=95), LIMITS)
    assert a.pixel_sha256 != b.pixel_sha256
    assert imaging.hamming(a.phash, b.phash) <= 6
    assert imaging.hamming(a.phash, c.phash) > 10


def test_multi_picture_jpeg_from_a_camera_is_accepted():
    """MPO (a JPEG with an extra preview frame, as many cameras write) is a still photo."""
    first = Image.open(io.BytesIO(make_photo(640, 480, seed=25)))
    preview = first.resize((160, 120))
    buf = io.BytesIO()
    first.save(buf, "MPO", save_all=True, append_images=[preview])
    assert Image.open(io.BytesIO(buf.getvalue())).n_frames == 2
    p = imaging.process(buf.getvalue(), LIMITS)
    assert (p.width, p.height) == (640, 480)
