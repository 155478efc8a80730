"""The bad-input corpus: every case is generated here, in memory (no binary fixtures)."""
from __future__ import annotations

import functools
import io
import struct
import zipfile
import zlib

import numpy as np
from PIL import Image

from tests.conftest import make_photo


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_with_header(width: int, height: int, idat: bytes = b"") -> bytes:
    """An 8-bit greyscale PNG that declares `width` x `height` (with whatever IDAT we give it)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


@functools.lru_cache(maxsize=4)
def png_bomb(width: int, height: int) -> bytes:
    """A valid all-black PNG whose rows are compressed away: a tiny file that inflates."""
    co = zlib.compressobj(9)
    row = b"\x00" * (width + 1)  # filter byte + pixels
    idat = b"".join(co.compress(row) for _ in range(height)) + co.flush()
    return png_with_header(width, height, idat)


def truncated_jpeg() -> bytes:
    data = make_photo(640, 480, seed=11)
    return data[: len(data) // 2]


def text_as_jpg() -> bytes:
    return "그냥 텍스트 파일입니다. Just a text file renamed to .jpg\n".encode() * 20


def html_with_script() -> bytes:
    return b"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>"


def svg_with_script() -> bytes:
    return (
        b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="640" height="480">'
        b"<script>alert(1)</script><rect width='640' height='480' fill='red'/></svg>"
    )


def huge_header() -> bytes:
    """Declares 30,000 x 30,000 (900 megapixels) in 60 bytes; decoding it would need ~900 MB."""
    return png_with_header(30_000, 30_000)


def cmyk_jpeg() -> bytes:
    buf = io.BytesIO()
    Image.open(io.BytesIO(make_photo(320, 240, seed=12))).convert("CMYK").save(buf, "JPEG", quality=95)
    return buf.getvalue()


def png16_mid_grey(level: int = 0x8080) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((200, 300), level, dtype=np.uint16)).save(buf, "PNG")
    return buf.getvalue()


def palette_png_transparent() -> bytes:
    """Left half opaque red, right half fully transparent (palette index 0)."""
    img = Image.new("P", (200, 100), 0)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * (256 * 3 - 6))
    img.paste(1, (0, 0, 100, 100))
    buf = io.BytesIO()
    img.save(buf, "PNG", transparency=0)
    return buf.getvalue()


def _animation(fmt: str, **save_kwargs) -> bytes:
    """Three 120x120 frames (red, green, blue), 100 ms each."""
    frames = [Image.new("RGB", (120, 120), colour) for colour in ("red", "green", "blue")]
    buf = io.BytesIO()
    frames[0].save(buf, fmt, save_all=True, append_images=frames[1:], duration=100, **save_kwargs)
    return buf.getvalue()


def animated_gif() -> bytes:
    return _animation("GIF", loop=0)


def exif_rotated_with_gps(seed: int = 13) -> bytes:
    """600x400 pixels, EXIF Orientation=6 (rotate 90 on display), a camera model and a GPS fix."""
    img = Image.open(io.BytesIO(make_photo(600, 400, seed=seed)))
    exif = img.getexif()
    exif[0x0112] = 6
    exif[0x0110] = "Secret Camera 3000"
    exif[0x8825] = {1: "N", 2: (37.0, 33.0, 59.0), 3: "E", 4: (126.0, 58.0, 40.0)}
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif, comment=b"taken at home by Secret Person", quality=92)
    return buf.getvalue()


def webp() -> bytes:
    return make_photo(320, 240, seed=14, fmt="WEBP", quality=85)


def too_small() -> bytes:
    return make_photo(40, 40, seed=15)


def too_large_side() -> bytes:
    """Longer than MAX_SIDE (tests lower it; pixels stay under the bomb limit)."""
    return make_photo(900, 100, seed=16, fmt="PNG")


def zip_of(members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def zip_bomb(member_bytes: int = 16 * 1024 * 1024) -> bytes:
    """One member of zeros: ~16 KB on disk, 16 MB inflated (a ratio of ~1000)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("zeros.jpg", "w") as out:
        chunk = b"\x00" * (1024 * 1024)
        for _ in range(member_bytes // len(chunk)):
            out.write(chunk)
    return buf.getvalue()


def zip_with_lying_size(real_bytes: int, declared: int) -> bytes:
    """A member whose headers claim `declared` bytes but which inflates to `real_bytes`."""
    data = bytearray(zip_of({"liar.jpg": b"\x00" * real_bytes}))
    for sig, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # local and central headers
        at = data.find(sig)
        struct.pack_into("<I", data, at + offset, declared)
    return bytes(data)


# ---------------------------------------------------------------- inputs that crashed a decoder
# Found by mutating valid files (tests/test_fuzz_imaging.py): each made Pillow raise something
# other than the errors imaging used to catch (struct.error, IndexError, TypeError).


def gif_with_tail(tail: bytes) -> bytes:
    """A valid still GIF whose trailer byte is replaced by `tail` (garbage after the last frame)."""
    gif = make_photo(160, 120, seed=17, fmt="GIF")
    assert gif.endswith(b";")
    return gif[:-1] + tail


def gif_with_trailing_garbage() -> bytes:
    """An image separator and two stray bytes where the trailer was: struct.error while Pillow
    counts the frames."""
    return gif_with_tail(b",\x00\x00")


def gif_with_cut_image_descriptor() -> bytes:
    """A second image descriptor cut one byte short: IndexError while counting frames."""
    return gif_with_tail(b"," + b"\x00" * 8)


def gif_with_cut_extension() -> bytes:
    """A graphic control extension whose block is cut short: IndexError while counting frames."""
    return gif_with_tail(b"!\xf9\x01")


def tiff_next_page_without_size() -> bytes:
    """A one-page TIFF whose next-page pointer leads to a directory with no width or height:
    TypeError ("Missing dimensions") while Pillow counts the pages."""
    data = bytearray(make_photo(160, 120, seed=18, fmt="TIFF"))
    assert data[:4] == b"II*\x00"
    (first,) = struct.unpack_from("<I", data, 4)
    (entries,) = struct.unpack_from("<H", data, first)
    struct.pack_into("<I", data, first + 2 + 12 * entries, len(data))
    # One entry (Compression = none) and no next page.
    return bytes(data) + struct.pack("<HHHII", 1, 0x0103, 3, 1, 1) + struct.pack("<I", 0)


def jpeg_with_broken_exif() -> bytes:
    """exif_rotated_with_gps() with the GPS latitude's type changed from RATIONAL to ASCII: the
    photo and its orientation tag are fine, but Pillow's exif_transpose cannot write the block
    back (TypeError)."""
    data = exif_rotated_with_gps()
    latitude = struct.pack(">HHI", 2, 5, 3)  # tag GPSLatitude, type RATIONAL, 3 values (big-endian)
    assert data.count(latitude) == 1
    return data.replace(latitude, struct.pack(">HHI", 2, 2, 3))


def avif_with_missing_primary_item() -> bytes:
    """An AVIF whose primary-item box names an item that is not there: libavif fails and Pillow
    raises RuntimeError from Image.open (whatever formats imaging accepts)."""
    data = phone_photo("AVIF")
    primary = b"pitm\x00\x00\x00\x00\x00\x01"  # version and flags 0, item 1
    assert data.count(primary) == 1
    return data.replace(primary, primary[:-1] + b"\x09")


# ---------------------------------------------------------------- phone photos


def _phone_exif(img: Image.Image) -> Image.Exif:
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 on display, as a phone held upright writes it
    exif[0x0110] = "Secret Phone 15"
    exif[0x8825] = {1: "N", 2: (37.0, 33.0, 59.0), 3: "E", 4: (126.0, 58.0, 40.0)}
    return exif


PHONE_XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    b'<rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/" dc:creator="Secret Person"/>'
    b"</rdf:RDF></x:xmpmeta>"
)


def phone_photo(fmt: str, seed: int = 19) -> bytes:
    """A 600x400 HEIC ("HEIF") or AVIF as a phone writes it: EXIF Orientation=6, camera model
    and GPS, an XMP packet naming the author, and an ICC profile. Both writers turn the EXIF
    orientation into the container's own rotation (irot), as phones do."""
    import pillow_heif
    from PIL import ImageCms

    pillow_heif.register_heif_opener()  # imaging does it too; here so a generator works alone
    img = Image.open(io.BytesIO(make_photo(600, 400, seed=seed)))
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    buf = io.BytesIO()
    # pillow-heif reads the orientation for its irot box only from EXIF given as bytes.
    img.save(buf, fmt, exif=_phone_exif(img).tobytes(), xmp=PHONE_XMP, icc_profile=icc, quality=90)
    return buf.getvalue()


def heic_burst(primary_index: int = 1) -> bytes:
    """A HEIC holding two photos of different sizes (a burst or an edit), the second primary."""
    import pillow_heif

    pillow_heif.register_heif_opener()
    first = Image.open(io.BytesIO(make_photo(320, 240, seed=20)))
    second = Image.open(io.BytesIO(make_photo(640, 480, seed=21)))
    buf = io.BytesIO()
    first.save(buf, "HEIF", save_all=True, append_images=[second], primary_index=primary_index, quality=85)
    return buf.getvalue()


def animated_avif() -> bytes:
    return _animation("AVIF", quality=60)


def mpo(seed: int = 25) -> bytes:
    """A camera's multi-picture JPEG: the photo and a small preview frame."""
    first = Image.open(io.BytesIO(make_photo(320, 240, seed=seed)))
    buf = io.BytesIO()
    first.save(buf, "MPO", save_all=True, append_images=[first.resize((80, 60))])
    return buf.getvalue()


def zip_with_raw_names(members: dict[bytes, bytes]) -> bytes:
    """A zip whose member names are these raw bytes without the UTF-8 flag, as zip tools on Korean
    Windows write CP949 names. zipfile writes any non-ASCII name as UTF-8 with the flag set, so
    each name is written as an ASCII stand-in of the same length and the bytes put in its place."""
    stand_ins = {(b"%d" % n).rjust(len(raw), b"~"): raw for n, raw in enumerate(members)}
    data = zip_of({s.decode(): content for s, content in zip(stand_ins, members.values())}, compression=zipfile.ZIP_STORED)
    for stand_in, raw in stand_ins.items():
        assert data.count(stand_in) == 2, "a stand-in name must occur only in its two headers"
        data = data.replace(stand_in, raw)
    return data
