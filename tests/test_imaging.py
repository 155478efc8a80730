"""One image through decode, validate and normalise: the bad-input corpus, case by case."""
from __future__ import annotations

import io
import logging
import os
import struct
import threading
import tracemalloc
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image, ImageCms, ImageFile

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


def check_phone_photo(p, img):
    """Turned right once (the container's irot, or the EXIF orientation, not both) and stripped."""
    assert p.original_format in ("HEIF", "AVIF")
    assert img.size == (400, 600)
    source = Image.open(io.BytesIO(make_photo(600, 400, seed=19))).convert("RGB")
    got = np.asarray(img, dtype=float)
    right = np.abs(got - np.asarray(source.transpose(Image.Transpose.ROTATE_270), dtype=float)).mean()
    left = np.abs(got - np.asarray(source.transpose(Image.Transpose.ROTATE_90), dtype=float)).mean()
    assert right < 6 < left, (right, left)
    assert not img.getexif()
    assert not {"exif", "xmp", "icc_profile", "comment"} & set(img.info)
    for secret in (b"Secret", b"Phone", corpus.PHONE_XMP[:20]):
        assert secret not in p.jpeg and secret not in p.thumbnail


def check_primary_of_burst(p, img):
    """Like MPO, a HEIC with several images is its primary one (here the second, 640x480)."""
    assert p.original_format == "HEIF" and img.size == (640, 480)
    primary = np.asarray(Image.open(io.BytesIO(make_photo(640, 480, seed=21))).convert("RGB"), dtype=float)
    assert np.abs(np.asarray(img, dtype=float) - primary).mean() < 6


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
    # Found by fuzzing (tests/test_fuzz_imaging.py): each made process() raise something else
    # than ImageRefused (struct.error, IndexError, TypeError, RuntimeError), which stopped the
    # whole batch.
    ("gif-trailing-garbage", corpus.gif_with_trailing_garbage, LIMITS, "Cannot decode this image"),
    ("gif-cut-image-descriptor", corpus.gif_with_cut_image_descriptor, LIMITS, "Cannot decode this image"),
    ("gif-cut-extension", corpus.gif_with_cut_extension, LIMITS, "Cannot decode this image"),
    ("tiff-next-page-without-size", corpus.tiff_next_page_without_size, LIMITS, "Cannot decode this image"),
    ("avif-missing-primary-item", corpus.avif_with_missing_primary_item, LIMITS, "Cannot decode this image"),
    # Only Pillow's rewrite of the EXIF block failed: the photo itself is good, and kept, turned.
    ("jpeg-broken-exif", corpus.jpeg_with_broken_exif, LIMITS, check_exif),
    ("heic-phone-photo", lambda: corpus.phone_photo("HEIF"), LIMITS, check_phone_photo),
    ("avif-phone-photo", lambda: corpus.phone_photo("AVIF"), LIMITS, check_phone_photo),
    ("heic-burst", corpus.heic_burst, LIMITS, check_primary_of_burst),
    ("animated-avif", corpus.animated_avif, LIMITS, "Animated image (3 frames)"),
    ("64x16000-strip", lambda: corpus.png_with_header(64, 16000), LIMITS,
     "Image is 64x16000 (1:250); the longest side may be at most 10 times the shortest."),
    ("16000x1200-strip", lambda: corpus.png_with_header(16000, 1200), LIMITS, "(13.3:1)"),
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


def test_a_decoder_crash_is_refused_with_its_class_and_logged_with_the_traceback(caplog):
    with caplog.at_level(logging.WARNING, logger="datasets.imaging"):
        reason = r"^Cannot decode this image \(error\); the file is probably damaged\.$"
        with pytest.raises(imaging.ImageRefused, match=reason):
            imaging.process(corpus.gif_with_trailing_garbage(), LIMITS)
    [record] = [r for r in caplog.records if r.name == "datasets.imaging"]
    assert record.levelno == logging.WARNING
    assert record.exc_info and record.exc_info[0] is struct.error


@pytest.mark.parametrize("exc", [MemoryError, KeyboardInterrupt, SystemExit])
def test_running_out_of_memory_or_being_stopped_is_not_blamed_on_the_file(monkeypatch, exc):
    """The pixel limit bounds what one good file needs, so a MemoryError says the worker is short
    of memory, not that the file is bad: it is not turned into a permanent refusal."""

    def fail(*args, **kwargs):
        raise exc()

    monkeypatch.setattr(imaging, "_fit", fail)
    with pytest.raises(exc):
        imaging.process(make_photo(200, 150, seed=31), LIMITS)


def test_unreadable_orientation_keeps_the_photo_as_coded(monkeypatch):
    """Any failure to read the EXIF block costs only the turn, not the photo."""

    def broken(self):
        raise struct.error("unpack requires a buffer of 12 bytes")

    data = corpus.exif_rotated_with_gps()
    monkeypatch.setattr(Image.Image, "getexif", broken)
    p = imaging.process(data, LIMITS)
    img = stored(p)
    assert img.size == (600, 400)  # as coded, not turned
    assert b"Secret" not in p.jpeg


def test_refusal_of_an_unknown_file_lists_the_phone_formats():
    with pytest.raises(imaging.ImageRefused) as refused:
        imaging.process(corpus.text_as_jpg(), LIMITS)
    assert "HEIC" in str(refused.value) and "AVIF" in str(refused.value)


def test_a_panorama_at_the_aspect_limit_keeps_usable_sides():
    p = imaging.process(make_photo(2000, 200, seed=32, fmt="PNG"), LIMITS)
    assert (p.width, p.height) == (1280, 128)
    assert Image.open(io.BytesIO(p.thumbnail)).size == (320, 32)


def test_aspect_limit_comes_from_settings(settings):
    settings.INGEST = {**settings.INGEST, "MAX_ASPECT": 4}
    limits = imaging.Limits.from_settings()
    with pytest.raises(imaging.ImageRefused, match=r"1000x200 \(5:1\); .* at most 4 times the shortest"):
        imaging.process(corpus.png_with_header(1000, 200), limits)


def test_a_lower_pixel_setting_refuses_from_the_header(settings, monkeypatch):
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: pytest.fail("pixels were decoded"))
    settings.INGEST = {**settings.INGEST, "MAX_PIXELS": 10_000_000}
    reason = "4000x3000 = 12,000,000 pixels; the decompression-bomb limit is 10,000,000"
    with pytest.raises(imaging.ImageRefused, match=reason):
        imaging.process(corpus.png_with_header(4000, 3000), imaging.Limits.from_settings())


# 100 MP is over Pillow's warning limit (~89 MP), 225 MP over its error limit (~179 MP).
@pytest.mark.parametrize("side", [10_000, 15_000])
def test_a_higher_pixel_setting_than_pillows_own_applies(settings, monkeypatch, side):
    """INGEST_MAX_PIXELS is the limit, even above Pillow's MAX_IMAGE_PIXELS: the header passes
    and decoding starts (stopped here: no test decodes 100+ MP)."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)  # restored afterwards
    data = corpus.png_with_header(side, side)
    with pytest.raises(imaging.ImageRefused, match="decompression-bomb limit is 50,000,000|Decompression bomb"):
        imaging.process(data, imaging.Limits.from_settings())  # the default: refused

    reached = []

    def stop(self, *args, **kwargs):
        reached.append(self.size)
        raise OSError("stopped before decoding")

    monkeypatch.setattr(ImageFile.ImageFile, "load", stop)
    settings.INGEST = {**settings.INGEST, "MAX_PIXELS": 300_000_000}
    with pytest.raises(imaging.ImageRefused, match="stopped before decoding"):
        imaging.process(data, imaging.Limits.from_settings())
    assert reached == [(side, side)]


def lossless_copy(jpeg: bytes) -> bytes:
    """A PNG of exactly the pixels a full decode of `jpeg` gives."""
    buf = io.BytesIO()
    Image.open(io.BytesIO(jpeg)).convert("RGB").save(buf, "PNG")
    return buf.getvalue()


def test_a_jpeg_up_to_twice_the_stored_side_and_its_lossless_copy_share_the_pixel_hash():
    jpeg = make_photo(2559, 600, seed=33)  # under 2 x 1280: decoded at full scale
    a, b = imaging.process(jpeg, LIMITS), imaging.process(lossless_copy(jpeg), LIMITS)
    assert a.sha256 != b.sha256 and a.pixel_sha256 == b.pixel_sha256


def test_a_large_jpeg_matches_the_same_jpeg_with_other_metadata_but_not_its_lossless_copy():
    """What the README says: from twice the stored side a JPEG is hashed as decoded at a DCT
    scale, so the same coded pixels match whatever the metadata, but a lossless copy (decoded in
    full) is only a near duplicate: close perceptual hashes."""
    jpeg = make_photo(2560, 600, seed=34)
    img = Image.open(io.BytesIO(jpeg))
    exif = img.getexif()
    exif[0x010F] = "Another camera"
    tagged = jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(exif.tobytes()) + 2) + exif.tobytes() + jpeg[2:]
    a, b, c = (imaging.process(d, LIMITS) for d in (jpeg, tagged, lossless_copy(jpeg)))
    assert a.sha256 != b.sha256 and a.pixel_sha256 == b.pixel_sha256
    assert a.pixel_sha256 != c.pixel_sha256
    assert imaging.hamming(a.phash, c.phash) <= 4


# ---------------------------------------------------------------- a JPEG stored as its own coded data


def _segment(marker: int, body: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(body) + 2) + body


def _insert_after_soi(jpeg: bytes, *segments: bytes) -> bytes:
    return jpeg[:2] + b"".join(segments) + jpeg[2:]


def _without_app0(jpeg: bytes) -> bytes:
    assert jpeg[2:4] == b"\xff\xe0"
    return jpeg[:2] + jpeg[4 + struct.unpack(">H", jpeg[4:6])[0]:]


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def luma_table(data: bytes) -> list[int]:
    return list(Image.open(io.BytesIO(data)).quantization[0])


def tagged_web_photo(quality: int = 85, **save_kwargs) -> bytes:
    """A web-sized JPEG carrying every kind of metadata a photo can: EXIF (camera, GPS; no turn),
    XMP, an sRGB ICC profile, IPTC, a comment, a JFXX thumbnail, and a vendor trailer after EOI."""
    img = Image.open(io.BytesIO(make_photo(500, 375, seed=40)))
    exif = img.getexif()
    exif[0x0110] = "Secret Camera 3000"
    exif[0x0112] = 1
    exif[0x8825] = {1: "N", 2: (37.0, 33.0, 59.0), 3: "E", 4: (126.0, 58.0, 40.0)}
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality, exif=exif, icc_profile=srgb, comment=b"Secret comment",
             xmp=b"<x:xmpmeta xmlns:x='adobe:ns:meta/'>Secret Person</x:xmpmeta>", **save_kwargs)
    iptc = _segment(0xED, b"Photoshop 3.0\0" + b"8BIM\x04\x04\0\0\0\0\0\x10\x1c\x02\x50\0\x0cSecret Owner")
    jfxx = _segment(0xE0, b"JFXX\0\x13\x02\x02" + b"\x80" * 12)  # a 2x2 RGB thumbnail
    return _insert_after_soi(buf.getvalue(), jfxx, iptc) + b"Secret trailer"


METADATA = [b"Secret", b"Exif", b"ICC_PROFILE", b"adobe:ns:meta", b"Photoshop", b"JFXX", b"trailer"]


@pytest.mark.parametrize("progressive", [False, True])
def test_a_jpeg_nothing_changes_is_stored_as_its_own_pixels_without_its_metadata(progressive):
    """No re-encode: the stored copy decodes to exactly the original's pixels (no second
    generation loss), and carries none of its metadata."""
    data = tagged_web_photo(progressive=progressive)
    p = imaging.process(data, LIMITS)
    assert np.array_equal(pixels(p.jpeg), pixels(data))
    assert luma_table(p.jpeg) == luma_table(data)  # its own coded data
    assert [m for m in METADATA if m in p.jpeg] == []
    img = stored(p)
    assert img.mode == "RGB" and not img.getexif()
    assert not {"exif", "xmp", "icc_profile", "comment", "photoshop"} & set(img.info)
    assert p.jpeg.endswith(b"\xff\xd9")
    # The pixel hash is that of the decoded pixels, as for any file.
    assert p.pixel_sha256 == imaging.process(lossless_copy(data), LIMITS).pixel_sha256


def test_a_jpeg_without_a_jfif_segment_is_stored_as_its_own_pixels_too():
    data = _without_app0(make_photo(400, 300, seed=41, quality=80))
    p = imaging.process(data, LIMITS)
    assert np.array_equal(pixels(p.jpeg), pixels(data)) and luma_table(p.jpeg) == luma_table(data)


def grey_jpeg(width: int, height: int, seed: int) -> bytes:
    buf = io.BytesIO()
    Image.open(io.BytesIO(make_photo(width, height, seed=seed))).convert("L").save(buf, "JPEG", quality=80)
    return buf.getvalue()


def _reencoded(data: bytes, p: imaging.Processed) -> bool:
    return luma_table(p.jpeg) == luma_table(make_photo(64, 64, quality=LIMITS.jpeg_quality))


@pytest.mark.parametrize("case,make", [
    ("finer than the stored quality", lambda: make_photo(400, 300, seed=42, quality=95)),
    ("an Adobe segment", lambda: _insert_after_soi(make_photo(400, 300, seed=43, quality=80),
                                                  _segment(0xEE, b"Adobe\0\x64\0\0\0\0\x01"))),
    ("greyscale", lambda: grey_jpeg(400, 300, seed=44)),
    ("turned by EXIF", corpus.jpeg_with_broken_exif),
    ("larger than the stored side", lambda: make_photo(1600, 1200, seed=45, quality=80)),
])
def test_a_jpeg_that_cannot_be_kept_as_it_is_is_re_encoded_as_before(case, make):
    data = make()
    p = imaging.process(data, LIMITS)
    assert _reencoded(data, p)
    img = stored(p)
    assert img.mode == "RGB" and [m for m in METADATA if m in p.jpeg] == []


def test_a_jpeg_with_a_wide_gamut_profile_is_transformed_and_re_encoded():
    img = Image.open(io.BytesIO(make_photo(400, 300, seed=46, quality=80)))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=80, icc_profile=wide_gamut_profile())
    data = buf.getvalue()
    p = imaging.process(data, LIMITS)
    assert _reencoded(data, p) and b"ICC_PROFILE" not in p.jpeg
    # Wide-gamut colours become more saturated in sRGB: the transform was applied.
    assert not np.array_equal(pixels(p.jpeg), pixels(data))


def wide_gamut_profile() -> bytes:
    """lcms's sRGB profile with Display P3's (D50-adapted) colorants: a profile that moves colours."""
    data = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    colorants = {b"rXYZ": (0.5151, 0.2412, -0.0011), b"gXYZ": (0.2920, 0.6922, 0.0419),
                 b"bXYZ": (0.1571, 0.0666, 0.7841)}
    (count,) = struct.unpack(">I", data[128:132])
    for i in range(count):
        sig, offset, _ = struct.unpack(">4sII", data[132 + 12 * i:144 + 12 * i])
        if sig in colorants:
            data[offset + 8:offset + 20] = b"".join(struct.pack(">i", round(v * 65536)) for v in colorants[sig])
    return bytes(data)


@pytest.fixture
def fresh_colour_caches(monkeypatch):
    """Empty transform and colour-table caches, and tables earned after one pixel."""
    monkeypatch.setattr(imaging, "_ICC_CACHE", {})
    monkeypatch.setattr(imaging, "_TABLES_IN_USE", [])
    monkeypatch.setattr(imaging, "_TABLE_AFTER_PIXELS", 1)


def with_profile(data: bytes, icc: bytes) -> bytes:
    buf = io.BytesIO()
    Image.open(io.BytesIO(data)).save(buf, "JPEG", quality=80, icc_profile=icc)
    return buf.getvalue()


@pytest.mark.once
def test_a_colour_table_gives_exactly_lcms_pixels_and_is_made_once_earned(fresh_colour_caches, monkeypatch):
    wide = wide_gamut_profile()
    data = with_profile(make_photo(400, 300, seed=47), wide)
    by_lcms = imaging.process(data, imaging.Limits(colour_tables=0))
    (transform,) = imaging._ICC_CACHE.values()
    assert transform.table is None and transform.pixels == 0  # with no tables, lcms and no count
    monkeypatch.setattr(imaging, "_TABLE_AFTER_PIXELS", 2 * 400 * 300)
    first = imaging.process(data, LIMITS)
    assert transform.table is None and transform.pixels == 400 * 300  # not earned yet: lcms
    second = imaging.process(data, LIMITS)  # earned: the table is made, and used
    assert transform.table is not None and imaging._TABLES_IN_USE == [transform]
    third = imaging.process(data, LIMITS)
    for p in (first, second, third):
        assert (p.pixel_sha256, p.jpeg, p.thumbnail, p.phash) == (
            by_lcms.pixel_sha256, by_lcms.jpeg, by_lcms.thumbnail, by_lcms.phash)
    # Every colour, not just a photo's: random pixels and the probe's extremes, through the table
    # and through lcms, byte for byte.
    rng = np.random.default_rng(3)
    img = Image.fromarray(np.concatenate([rng.integers(0, 256, (255, 20, 3), dtype=np.uint8),
                                          np.repeat(imaging._PROBE[:255], 20, axis=1)]))
    assert transform.apply(img, 2).tobytes() == ImageCms.applyTransform(img, transform.lcms).tobytes()


@pytest.mark.once
def test_a_process_keeps_at_most_the_configured_colour_tables(fresh_colour_caches):
    wide = wide_gamut_profile()
    other = bytearray(wide)
    other[-8:] = b"otherone"  # a second profile (another digest) with the same colours
    photos = [with_profile(make_photo(200, 150, seed=48), icc) for icc in (wide, bytes(other))]
    limits = imaging.Limits(colour_tables=1)
    for data in photos:
        imaging.process(data, limits)
    first, second = imaging._ICC_CACHE.values()
    assert (first.table, imaging._TABLES_IN_USE) == (None, [second])  # the older one gave way
    assert first.pixels == 0  # and earns it again from nothing: two hot profiles do not thrash
    assert second.table is not None


def test_ingest_phash_is_imagehash_phash_bit_for_bit():
    """The one pHash (datasets.imaging.phash_arrays) is imagehash's, on photos and on flat and
    striped images, where coefficients tie."""
    imagehash = pytest.importorskip("imagehash")
    flat = Image.new("RGB", (320, 240), (120, 130, 140))
    stripes = Image.fromarray(np.tile(np.repeat(np.array([0, 255], dtype=np.uint8), 16), (240, 10))).convert("RGB")
    images = [Image.open(io.BytesIO(make_photo(320, 240, seed=s))).convert("RGB") for s in range(40, 46)]
    for img in [*images, flat, stripes]:
        small = img.convert("L").resize((32, 32), Image.Resampling.BOX)
        assert imaging._perceptual_hash(img) == imaging._to_signed64(int(str(imagehash.phash(small)), 16))


# ---------------------------------------------------------------- several threads at once


def test_process_gives_the_same_results_in_many_threads_at_once(monkeypatch):
    """An import judges files in worker threads: bombs, broken files, photos with and without
    profiles (the transform cache, here small enough to evict all the time) and turned photos,
    all at once, each as when judged alone."""
    monkeypatch.setattr(imaging, "_ICC_CACHE_SIZE", 1)
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    wide = wide_gamut_profile()
    files = [
        corpus.png_bomb(8000, 8000), corpus.huge_header(), corpus.truncated_jpeg(), corpus.gif_with_trailing_garbage(),
        corpus.exif_rotated_with_gps(), corpus.cmyk_jpeg(), tagged_web_photo(),
        *(with_profile(make_photo(320, 240, seed=50 + n), [wide, srgb, None][n % 3]) for n in range(9)),
    ]

    def outcome(data):
        try:
            p = imaging.process(data, LIMITS)
        except imaging.ImageRefused as exc:
            return str(exc)
        return (p.sha256, p.pixel_sha256, p.phash, p.jpeg, p.thumbnail)

    alone = [outcome(d) for d in files]
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(3):
            assert list(pool.map(outcome, files * 2)) == alone * 2
    assert sum(isinstance(o, str) and "ecompression" in o for o in alone) == 2


def test_jpeg_encoding_writes_through_a_file_so_other_threads_run_meanwhile(monkeypatch):
    """Pillow's encoder lets go of the GIL only while it writes to a real file descriptor
    (`ImageFile._encode_tile` with a descriptor): into a BytesIO it holds it for the whole
    encode, and an import's worker threads would take turns. Both encodes of `process` (a
    re-encoded stored copy and the thumbnail) go through a descriptor, and give exactly the
    bytes Pillow writes into a BytesIO."""
    descriptors = []
    real = ImageFile._encode_tile

    def spy(im, fp, tile, bufsize, fh, exc=None):
        descriptors.append(fh)
        return real(im, fp, tile, bufsize, fh, exc)

    data = with_profile(make_photo(700, 500, seed=61), wide_gamut_profile())  # transformed: re-encoded
    monkeypatch.setattr(ImageFile, "_encode_tile", spy)
    p = imaging.process(data, LIMITS)
    monkeypatch.undo()
    assert len(descriptors) == 2 and None not in descriptors
    for name, quality in (("jpeg", LIMITS.jpeg_quality), ("thumbnail", LIMITS.thumb_quality)):
        img = Image.open(io.BytesIO(getattr(p, name)))
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=quality, optimize=False)
        assert imaging._encode_jpeg(img, quality) == buf.getvalue()
    # Larger, then smaller: nothing of an earlier, longer encode is read; also where the scratch
    # file is emptied after every use (as after one past _SCRATCH_KEPT).
    big = Image.fromarray(np.random.default_rng(5).integers(0, 256, (600, 800, 3), dtype=np.uint8))
    small = Image.new("RGB", (16, 16), (1, 2, 3))
    for kept in (imaging._SCRATCH_KEPT, 0):
        monkeypatch.setattr(imaging, "_SCRATCH_KEPT", kept)
        for img in (big, small, big):
            buf = io.BytesIO()
            img.save(buf, "JPEG", quality=90, optimize=False)
            assert imaging._encode_jpeg(img, 90) == buf.getvalue()


def test_a_forked_child_encodes_in_a_scratch_file_of_its_own():
    """An import's worker processes are forked: a child sharing its parent's scratch file (and
    its file offset) could interleave their bytes."""
    img = Image.new("RGB", (64, 48), (9, 99, 199))
    expected = imaging._encode_jpeg(img, 90)
    parent = imaging._SCRATCH.file
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report whether it started without the parent's file and encodes right
        try:
            fresh = getattr(imaging._SCRATCH, "file", None) is None
            ok = fresh and imaging._encode_jpeg(img, 90) == expected and imaging._SCRATCH.file is not parent
            os.write(write, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    assert os.read(read, 1) == b"1"
    os.close(read)
    assert imaging._SCRATCH.file is parent and imaging._encode_jpeg(img, 90) == expected


def test_a_process_out_of_descriptors_still_stores_the_photo(monkeypatch, caplog):
    """No scratch file to be had (the process's descriptor limit reached) is not the photo's
    fault: it is encoded in memory instead, the same bytes, and the next encode tries again."""
    data = with_profile(make_photo(500, 400, seed=62), wide_gamut_profile())  # re-encoded
    expected = imaging.process(data, LIMITS)

    def no_descriptor(*args):
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(imaging, "_SCRATCH", threading.local())
    monkeypatch.setattr(os, "memfd_create", no_descriptor)
    monkeypatch.setattr(imaging.tempfile, "TemporaryFile", no_descriptor)
    with caplog.at_level(logging.WARNING, logger="datasets.imaging"):
        p = imaging.process(data, LIMITS)
    assert (p.jpeg, p.thumbnail, p.pixel_sha256) == (expected.jpeg, expected.thumbnail, expected.pixel_sha256)
    assert "No scratch file" in caplog.text and imaging._SCRATCH.file is None
    monkeypatch.undo()
    assert imaging._encode_jpeg(Image.open(io.BytesIO(p.jpeg)), 90)  # a scratch file again
    assert imaging._SCRATCH.file is not None
    # Out of memory while reading it back: the same fallback, the same bytes.
    caplog.clear()
    def no_memory(*args):
        raise OSError(12, "Cannot allocate memory")

    monkeypatch.setattr(os, "pread", no_memory)
    with caplog.at_level(logging.WARNING, logger="datasets.imaging"):
        assert imaging.process(data, LIMITS).jpeg == expected.jpeg
    assert "No scratch file" in caplog.text
    monkeypatch.undo()
    # The encoder's own error (no errno) is not the scratch file's: raised as it is, no fallback.
    caplog.clear()

    def encoder_error(*args, **kwargs):
        raise OSError("encoder error -2")

    monkeypatch.setattr(ImageFile, "_encode_tile", encoder_error)
    with caplog.at_level(logging.WARNING, logger="datasets.imaging"), pytest.raises(OSError, match="encoder error"):
        imaging._encode_jpeg(Image.new("RGB", (8, 8)), 90)
    assert "No scratch file" not in caplog.text
