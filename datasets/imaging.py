"""Decode, validate and normalise one image. Pure functions: bytes in, bytes and facts out.

Every refusal raises `ImageRefused` with a reason a planner can act on (a code of
datasets.refusals: said in the reader's language), and a malformed file
raises nothing else (see `process`).
"""
from __future__ import annotations

import functools
import hashlib
import io
import logging
import os
import re
import sys
import tempfile
import threading
import warnings
from dataclasses import dataclass

import numpy as np
import pillow_heif
from PIL import ExifTags, Image, ImageCms, UnidentifiedImageError
from scipy.fftpack import dct

from .refusals import Refusal

log = logging.getLogger(__name__)

# HEIC/HEIF (what phones write) through the pillow-heif plugin; Pillow reads AVIF itself. The
# plugin opens a file on its primary image, and libheif applies the container's rotation (irot,
# imir) while decoding and resets the EXIF orientation to 1, so `_orient` turns nothing twice.
# Pillow's AVIF reader does the opposite (it reports irot/imir as the EXIF orientation and leaves
# the pixels as coded), so `_orient` turns those once. Embedded thumbnails, depth maps and
# auxiliary images are never used: not read.
pillow_heif.register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)

ALLOWED_FORMATS = {"JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "MPO", "HEIF", "AVIF"}
SUPPORTED = "JPEG, PNG, WebP, GIF, BMP, TIFF, HEIC/HEIF, AVIF"


class ImageRefused(Refusal):
    """The file cannot become a catalogue image; its reason (a code of datasets.refusals, with
    parameters) says why."""


@dataclass(frozen=True)
class Limits:
    max_pixels: int = 50_000_000
    max_file_bytes: int = 50 * 1024 * 1024
    min_side: int = 64
    max_side: int = 16_000
    # Longest side over shortest. Phone and camera panoramas are about 4:1 to 8:1; past 10:1 a
    # file is a strip or a banner, and the stored copy (1280 px long) would be under 128 px high.
    max_aspect: int = 10
    longest_side: int = 1280
    jpeg_quality: int = 90
    thumb_side: int = 320
    thumb_quality: int = 80
    # Colour tables a process keeps for the profiles it transforms most (see _ColourTransform).
    colour_tables: int = 2

    @classmethod
    def from_settings(cls) -> Limits:
        from django.conf import settings

        c = settings.INGEST
        return cls(
            max_pixels=c["MAX_PIXELS"],
            max_file_bytes=c["MAX_FILE_BYTES"],
            min_side=c["MIN_SIDE"],
            max_side=c["MAX_SIDE"],
            max_aspect=c["MAX_ASPECT"],
            longest_side=c["STORED_LONGEST_SIDE"],
            jpeg_quality=c["JPEG_QUALITY"],
            thumb_side=c["THUMB_LONGEST_SIDE"],
            thumb_quality=c["THUMB_QUALITY"],
            colour_tables=c["COLOUR_TABLES"],
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


_PILLOW_LIMIT_LOCK = threading.Lock()

# Pillow warns about a size over Image.MAX_IMAGE_PIXELS and raises DecompressionBombError over
# twice it. Turning the warning into a refusal took warnings.catch_warnings(), which swaps the
# process-wide filter list and so is not safe while imports judge files in several threads. The
# limit is `_open`'s own header check instead, and Pillow's error the guard behind it (see
# _let_pillow_allow): the warning says nothing either does not, so it is silenced, once.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


def _let_pillow_allow(max_pixels: int) -> None:
    """Make `max_pixels` (INGEST_MAX_PIXELS) the pixel limit that applies, even above Pillow's.

    Pillow checks each size it reads (the header, a later GIF frame) against its module-global
    Image.MAX_IMAGE_PIXELS (~89 MP: a warning above it, an error above twice it), and takes no
    limit per call. So `_open` checks the header against the caller's limit itself, and Pillow's
    global is only ever raised until its error level (twice it) reaches that limit, never
    lowered: a thread with a lower limit is still refused by its own check, and the lock keeps two
    threads with different limits from undoing each other's raise. Pillow's error thus keeps
    guarding the sizes `_open` does not see, at the configured limit or Pillow's own, the higher.
    """
    needed = (max_pixels + 1) // 2
    if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < needed:
        with _PILLOW_LIMIT_LOCK:
            if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < needed:
                Image.MAX_IMAGE_PIXELS = needed


def _ratio(w: int, h: int) -> str:
    r = f"{max(w, h) / min(w, h):.3g}"
    return f"1:{r}" if w < h else f"{r}:1"


def _open(data: bytes, limits: Limits) -> Image.Image:
    """Open and check the header only (no pixel decode yet)."""
    if not data:
        raise ImageRefused("empty_file")
    if len(data) > limits.max_file_bytes:
        raise ImageRefused("file_too_large", size=len(data), limit=limits.max_file_bytes)
    _let_pillow_allow(limits.max_pixels)
    try:
        img = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise ImageRefused("not_an_image", supported=SUPPORTED) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageRefused("unreadable_header", detail=str(exc)) from None
    if img.format not in ALLOWED_FORMATS:
        raise ImageRefused("unsupported_format", format=str(img.format), supported=SUPPORTED)
    w, h = img.size
    if w * h > limits.max_pixels:
        raise ImageRefused("too_many_pixels", dimensions=f"{w}x{h}", pixels=w * h, limit=limits.max_pixels)
    if max(w, h) > limits.max_side:
        raise ImageRefused("side_too_long", dimensions=f"{w}x{h}", limit=limits.max_side)
    if min(w, h) < max(1, limits.min_side):
        raise ImageRefused("side_too_short", dimensions=f"{w}x{h}", limit=limits.min_side)
    if max(w, h) > limits.max_aspect * min(w, h):
        raise ImageRefused("too_elongated", dimensions=f"{w}x{h}", ratio=_ratio(w, h), limit=limits.max_aspect)
    # MPO (many cameras' and phones' JPEGs) carries extra frames that are previews or a second
    # eye of a stereo pair: the first frame is the photo. A HEIC with several images (a burst, a
    # photo and its edit) is opened on its primary image, the one a phone shows. Other formats
    # with frames are animations or multi-page scans, which are not photos.
    if img.format not in ("MPO", "HEIF") and getattr(img, "is_animated", False) and getattr(img, "n_frames", 1) > 1:
        raise ImageRefused("multi_page" if img.format == "TIFF" else "animated", frames=img.n_frames)
    return img


# Parsing a profile and building its transform costs lcms ~2 ms, more than decoding a 500x375
# JPEG, and a catalogue's files carry a handful of distinct profiles (each camera's or phone's
# sRGB, Display P3, Adobe RGB): so transforms are kept per (profile digest, mode), the most
# recently used last, a few dozen at most. An lcms transform may be shared between threads (its
# one-pixel cache is copied per call); the lock guards the caches' bookkeeping only, so two
# threads meeting a new profile at once may both build it (the same transform, one kept).
_ICC_CACHE: dict[tuple[bytes, str], object] = {}
_ICC_CACHE_LOCK = threading.Lock()


def _new_locks_after_fork() -> None:
    """A forked child (an import's worker process) has one thread: a lock another thread of the
    parent held at the fork would stay held there forever, a colour table another thread was
    building would never be finished, and a scratch file the forking thread had would be shared
    with the parent."""
    global _ICC_CACHE_LOCK, _PILLOW_LIMIT_LOCK, _SCRATCH
    _ICC_CACHE_LOCK, _PILLOW_LIMIT_LOCK = threading.Lock(), threading.Lock()
    _SCRATCH = threading.local()  # the parent's scratch files are its own (one shared offset)
    for found in _ICC_CACHE.values():
        if isinstance(found, _ColourTransform):
            found.building = False


os.register_at_fork(after_in_child=_new_locks_after_fork)
_ICC_CACHE_SIZE = 32
_ICC_SAME = "same"  # the profile is sRGB to within one level: the pixels need no transform
_ICC_UNUSABLE = "unusable"  # broken, or not a profile for this mode: converted as if it had none
_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
# Colours that tell an sRGB profile from any other: every level of each channel alone and of
# grey (the curves), and a 16-level cube (the primaries and their mixes). 5,120 pixels, so a set
# whose every file has its own profile pays little for the check.
_PROBE = np.concatenate([
    (np.arange(256)[:, None, None] * np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]])).reshape(-1, 3),
    np.stack(np.meshgrid(*[np.arange(0, 256, 17)] * 3, indexing="ij"), axis=-1).reshape(-1, 3),
]).astype(np.uint8).reshape(-1, 1, 3)

# Colour tables. lcms spends ~25 ns a pixel on a Display P3 or Adobe RGB photo (every iPhone
# photo carries Display P3), more than decoding it; a 12 MP phone photo is transformed at its
# draft scale, 3 MP: ~70 ms. Its 8-bit RGB transform is a pure function of the pixel, so its
# output for all 2^24 colours, made once by lcms itself (~1 s; 64 MiB, one RGBX word a colour)
# and looked up per pixel, gives the same pixels bit for bit (so the same pixel hashes) in about
# half the time (bench/ingest.py, docs/bench-ingest.md). A profile gets its table once lcms has
# transformed as many pixels with it as making the table costs (a profile met in a few photos
# never pays for one), and a process keeps INGEST_COLOUR_TABLES tables at most, the least
# recently used dropped; 0: none, lcms always. Little-endian machines only (the table is indexed
# by the RGBX word as the machine reads it); elsewhere lcms always.
_TABLE_AFTER_PIXELS = 1 << 25
_TABLES_IN_USE: list[_ColourTransform] = []  # least recently used first
_TABLES_POSSIBLE = sys.byteorder == "little"


class _ColourTransform:
    """A cached lcms transform from one profile to sRGB, and, for RGB, its colour table once the
    profile has earned one."""

    __slots__ = ("lcms", "mode", "pixels", "table", "building")

    def __init__(self, lcms: ImageCms.ImageCmsTransform, mode: str):
        self.lcms, self.mode = lcms, mode
        self.pixels = 0  # transformed by lcms so far
        self.table: np.ndarray | None = None
        self.building = False

    def apply(self, img: Image.Image, tables: int) -> Image.Image:
        if self.mode == "RGB" and tables > 0 and _TABLES_POSSIBLE:
            table = self._table(img.width * img.height, tables)
            if table is not None:
                index = np.asarray(img.convert("RGBX")).view(np.uint32)[..., 0] & np.uint32(0xFFFFFF)
                return Image.frombuffer("RGBX", img.size, table[index], "raw", "RGBX", 0, 1).convert("RGB")
        return ImageCms.applyTransform(img, self.lcms)

    def _table(self, pixels: int, tables: int) -> np.ndarray | None:
        """The table (now the most recently used), or None: made here if lcms has earned it."""
        with _ICC_CACHE_LOCK:
            if self.table is not None:
                if _TABLES_IN_USE and _TABLES_IN_USE[-1] is not self and self in _TABLES_IN_USE:
                    _TABLES_IN_USE.remove(self)
                    _TABLES_IN_USE.append(self)
                return self.table
            self.pixels += pixels
            if self.building or self.pixels < _TABLE_AFTER_PIXELS:
                return None
            self.building = True
        try:
            table = _colour_table(self.lcms)
        except MemoryError:
            log.warning("No memory for a colour table: lcms transforms this profile's photos.")
            table = None
        with _ICC_CACHE_LOCK:
            self.building = False
            if table is None:
                self.pixels = -(1 << 62)  # never again in this process
                return None
            self.table = table
            _TABLES_IN_USE.append(self)
            while len(_TABLES_IN_USE) > tables:
                dropped = _TABLES_IN_USE.pop(0)
                dropped.table, dropped.pixels = None, 0  # to earn again, or tables would thrash
        return table


def _colour_table(transform: ImageCms.ImageCmsTransform) -> np.ndarray:
    """lcms's output for every RGB colour, as the RGBX word the machine reads, indexed by the
    input's RGBX word with X cleared: made a sixteenth of the colours at a time (4 MiB each)."""
    table = np.empty(1 << 24, dtype=np.uint32)
    step = 1 << 20
    for start in range(0, 1 << 24, step):
        colours = np.arange(start, start + step, dtype=np.uint32)
        img = Image.frombuffer("RGBX", (1024, step // 1024), colours, "raw", "RGBX", 0, 1).convert("RGB")
        out = ImageCms.applyTransform(img, transform).convert("RGBX")
        table[start:start + step] = np.asarray(out).reshape(-1, 4).view(np.uint32)[:, 0]
    return table


def _build_icc_transform(icc: bytes, mode: str):
    try:
        src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        transform = ImageCms.buildTransform(src, _SRGB, mode, "RGBA" if mode == "RGBA" else "RGB")
    except (ImageCms.PyCMSError, OSError, ValueError):
        return _ICC_UNUSABLE
    if mode == "CMYK":
        return _ColourTransform(transform, mode)
    # Most camera and phone JPEGs embed an sRGB profile (IEC 61966-2.1, in one vendor's bytes or
    # another's). Its transform changes no pixel by more than the rounding lcms itself does (one
    # level) and costs as much as decoding the file, so it is skipped, checked on the probe.
    probe = Image.fromarray(_PROBE).convert(mode)
    try:
        out = ImageCms.applyTransform(probe, transform)
    except (ImageCms.PyCMSError, OSError, ValueError):
        return _ICC_UNUSABLE
    moved = np.abs(np.asarray(out.convert("RGB"), dtype=np.int16) - _PROBE.astype(np.int16)).max()
    return _ICC_SAME if moved <= 1 else _ColourTransform(transform, mode)


def _icc_transform(icc: bytes, mode: str):
    """The cached transform from this embedded profile to sRGB (a _ColourTransform), or _ICC_SAME
    or _ICC_UNUSABLE."""
    key = (hashlib.sha256(icc).digest(), mode)
    with _ICC_CACHE_LOCK:
        found = _ICC_CACHE.pop(key, None)
        if found is not None:
            _ICC_CACHE[key] = found  # now the most recently used
            return found
    found = _build_icc_transform(icc, mode)
    with _ICC_CACHE_LOCK:
        _ICC_CACHE[key] = found
        for old in list(_ICC_CACHE)[:-_ICC_CACHE_SIZE]:
            del _ICC_CACHE[old]
    return found


def _to_rgb(img: Image.Image, colour_tables: int = 0) -> Image.Image:
    """Any mode to 8-bit sRGB RGB: ICC profiles applied, 16-bit scaled, transparency on white.
    `colour_tables`: see _ColourTransform (Limits.colour_tables)."""
    icc = img.info.get("icc_profile")
    if icc and img.mode in ("RGB", "CMYK", "RGBA"):
        transform = _icc_transform(icc, img.mode)
        if isinstance(transform, _ColourTransform):
            try:
                img = transform.apply(img, colour_tables)
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


# Each thread's scratch file for encoding (see _encode_jpeg): reused without being emptied (its
# memory stays allocated, so a write is a copy, not a page fault), unless it grew past this.
_SCRATCH = threading.local()
_SCRATCH_KEPT = 4 << 20


def _scratch_file():
    """This thread's scratch file: in memory where the system allows (memfd), else a nameless
    temporary file. A forked child starts with none of its parent's (see _new_locks_after_fork)."""
    scratch = getattr(_SCRATCH, "file", None)
    if scratch is None:
        if hasattr(os, "memfd_create"):
            scratch = open(os.memfd_create("ingest-encode", os.MFD_CLOEXEC), "w+b", buffering=0)
        else:
            scratch = tempfile.TemporaryFile(buffering=0)
        _SCRATCH.file = scratch
    return scratch


def _encode_jpeg(img: Image.Image, quality: int) -> bytes:
    """The JPEG bytes of `img`, written into this thread's scratch file and read back.

    Pillow's encoders let other threads run (release the GIL) only while writing to a real file
    descriptor; into a BytesIO they hold it for the whole encode, and an import's worker threads
    then take turns encoding instead of encoding side by side (measured: two threads encoding
    into BytesIO did no more than one; through a file, 1.5-1.9 times as much). Same bytes either way.
    """
    def save(target) -> None:
        # No exif=, no icc_profile=: the stored copy carries no metadata (GPS, camera, author).
        img.save(target, "JPEG", quality=quality, optimize=False)

    try:
        scratch = _scratch_file()
        scratch.seek(0)
        save(scratch)
        written = scratch.tell()  # what is past it is a longer earlier encode's: never read
        data = os.pread(scratch.fileno(), written, 0)
        if written > _SCRATCH_KEPT:
            scratch.truncate(0)  # a rare large encode: its memory is given back
        return data
    except OSError as exc:
        if exc.errno is None:  # the encoder's own error ("encoder error -2"), not the file's
            raise
        # No scratch file to be had or written (the process is out of descriptors or memory):
        # that is not the photo's fault, so it is encoded in memory instead (holding the GIL),
        # never refused for it; the next encode tries a new scratch file.
        log.warning("No scratch file for encoding; encoding in memory instead.", exc_info=True)
        _SCRATCH.file = None
        buf = io.BytesIO()
        save(buf)
        return buf.getvalue()


def _fit(img: Image.Image, side: int, resample: Image.Resampling = Image.Resampling.HAMMING) -> Image.Image:
    """Shrink so the longest side is `side`: an integer box reduce first, then the filter. The
    stored copy uses Hamming (antialiased, sharper than bilinear at the same cost; bicubic cost
    60% more time for no visible gain at these ratios, measured with bench/ingest.py); the
    thumbnail the box filter (an area average: a third cheaper, and as clean at 320 px, where
    Hamming cost as much as decoding a web photo)."""
    w, h = img.size
    if max(w, h) <= side:
        return img
    scale = side / max(w, h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    factor = int(1 / scale / 2)  # keep at least 2x over the target for the filter pass
    if factor >= 2:
        img = img.reduce(factor)
    return img.resize(size, resample)


def phash_arrays(arrays: np.ndarray) -> np.ndarray:
    """imagehash.phash (hash_size 8, highfreq_factor 4) of each 32x32 grey array, as uint64: the
    DCT-II of rows then columns, the 8x8 lowest frequencies against their median, first bit most
    significant (imagehash's hex order). Equal to imagehash's own, bit for bit (tested), without
    its per-call overhead (a resize of the 32x32 input to itself, a hex string and back): the one
    pHash of ingest and of curation's signatures."""
    coeffs = dct(dct(arrays, axis=1), axis=2)[:, :8, :8].reshape(len(arrays), 64)
    bits = coeffs > np.median(coeffs, axis=1, keepdims=True)
    weights = np.uint64(1) << np.arange(63, -1, -1, dtype=np.uint64)
    return (bits.astype(np.uint64) * weights).sum(axis=1, dtype=np.uint64)


# The pHash of a grey 32x32 box average of the thumbnail (imagehash would shrink its input with
# Lanczos, which from a 320 px thumbnail cost as much as the rest of the hash). It differs from
# a hash of the thumbnail itself by 0.3 bits on average (2 at most, over the benchmark's web
# photos): it only feeds near-duplicate search, by distance.
def _perceptual_hash(thumb: Image.Image) -> int:
    small = np.asarray(thumb.convert("L").resize((32, 32), Image.Resampling.BOX), dtype=np.float64)
    return _to_signed64(int(phash_arrays(small[None])[0]))


# A marker in or after entropy-coded data: 0xFF followed by anything but a stuffed zero or a
# restart marker (RST0-7), which belong to the data.
_NEXT_MARKER = re.compile(rb"\xff(?=[^\x00\xd0-\xd7])")
# The APP0 segment written in place of the file's own: JFIF 1.01, no density, no thumbnail.
_JFIF = b"\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
_KEPT_SEGMENTS = {0xC4, 0xDB, 0xDD}  # DHT, DQT, DRI: what decoding needs besides SOF and SOS
_DROPPED_SEGMENTS = set(range(0xE0, 0xF0)) | {0xFE}  # APP0-15 (JFIF, EXIF, XMP, ICC, IPTC, MPF...), COM


@functools.lru_cache(maxsize=8)
def _luma_table_sum(quality: int) -> int:
    """Sum of the luminance quantization table Pillow writes at `quality` (larger: coarser)."""
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, "JPEG", quality=quality)
    return sum(Image.open(buf).quantization[0])


def _stripped_jpeg(data: bytes, img: Image.Image, quality: int) -> bytes | None:
    """`data` with every metadata segment dropped, or None where that is not certain to decode to
    the same pixels or to be a plain, widely readable RGB JPEG, or the file is coded finer than
    `quality` (then it is re-encoded, so the setting still bounds what is stored).

    An allow-list: the copy is SOI, a fresh JFIF APP0, the file's own DQT, DHT, DRI, SOF and SOS
    segments and entropy-coded data (the coded pixels, kept as they are, as the pixels would be),
    and EOI; APPn, COM and anything after EOI are dropped, and a segment of any other kind
    (arithmetic coding, 12-bit, lossless, hierarchical, DNL) means None. (libjpeg refuses DQT,
    DHT, SOF, SOS and DRI segments longer than their contents, so nothing hides in them.) An
    Adobe APP14 can declare that three channels are not YCbCr, and without a JFIF or Adobe segment
    libjpeg guesses from the component ids: such files are re-encoded rather than given a JFIF
    segment that could change how they decode.
    """
    quant = getattr(img, "quantization", None)
    if not quant or 0 not in quant or sum(quant[0]) < _luma_table_sum(quality):
        return None
    if data[:2] != b"\xff\xd8":
        return None
    out = [b"\xff\xd8", _JFIF]
    jfif, components, pos, size = False, None, 2, len(data)
    while True:
        if pos >= size or data[pos] != 0xFF:
            return None
        while pos < size and data[pos] == 0xFF:  # fill bytes
            pos += 1
        if pos >= size:
            return None
        code, start = data[pos], pos + 1
        if code == 0xD9:  # EOI: what follows (an MPO's other frames, a vendor's trailer) is dropped
            out.append(b"\xff\xd9")
            break
        if start + 2 > size:
            return None
        end = start + int.from_bytes(data[start:start + 2], "big")
        if end > size or end < start + 2:
            return None
        body = data[start + 2:end]
        if code == 0xEE:  # Adobe: may say the channels are RGB, not YCbCr
            return None
        if code == 0xE0 and body.startswith(b"JFIF\0"):
            jfif = True
        elif code in (0xC0, 0xC1, 0xC2):  # baseline, extended or progressive, Huffman-coded
            if components is not None or len(body) < 15 or body[0] != 8 or body[5] != 3:
                return None  # a second frame, not 8-bit, or not three channels
            components = (body[6], body[9], body[12])
            out.append(data[pos - 1:end])
        elif code in _KEPT_SEGMENTS:
            out.append(data[pos - 1:end])
        elif code == 0xDA:  # SOS, then its entropy-coded data up to the next marker
            if components is None:
                return None
            found = _NEXT_MARKER.search(data, end)
            if found is None:
                return None
            out.append(data[pos - 1:found.start()])
            pos = found.start()
            continue
        elif code not in _DROPPED_SEGMENTS:
            return None
        pos = end
    if components is None or not (jfif or components == (1, 2, 3)):
        return None
    return b"".join(out)


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


_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _orient(img: Image.Image) -> Image.Image:
    """Turn the pixels as the EXIF orientation says (a copy only when it asks for a turn or flip).

    Only the tag is read: the EXIF block is dropped, never written back. (Pillow's exif_transpose
    writes it back, and a damaged block that reads well enough can make that raise: the photo is
    kept, and turned.) A block so damaged that the tag cannot be read costs the turn, not the
    photo.
    """
    try:
        orientation = img.getexif().get(ExifTags.Base.Orientation, 1)
    except MemoryError:
        raise
    except Exception:
        log.info("Unreadable EXIF block: the image is kept as coded, not turned.", exc_info=True)
        return img
    method = _TRANSPOSE.get(orientation) if type(orientation) is int else None
    return img if method is None else img.transpose(method)


def process(data: bytes, limits: Limits | None = None) -> Processed:
    """Validate and normalise `data`; raise ImageRefused with a reason if it cannot be used.

    Bad bytes raise nothing but ImageRefused. Decoders meet a malformed file with any kind of
    error (struct.error, IndexError, TypeError, RuntimeError, ...), so whatever else judging one
    file raises becomes a refusal naming the error's class, logged with its traceback. Except
    MemoryError: the pixel limit, checked from the header before any decode, bounds what one file
    may need, so running out says this worker is short of memory, not that the file is bad, and
    must not become a permanent refusal of a good photo. (KeyboardInterrupt and SystemExit are not
    Exceptions: they pass too.)

    The pixel hash is taken over the oriented RGB pixels as decoded for the stored copy: in full,
    except a JPEG (or MPO) of twice the stored side or more, which libjpeg decodes at 1/2, 1/4 or 1/8
    scale (DCT scaling, what keeps ingest fast); the scale is part of the hashed data. So two files
    with the same coded pixels match whatever their metadata, and a file and a lossless copy of
    its pixels match, unless it is such a large JPEG: then only their perceptual hashes are close.

    Safe to call from several threads at once (an import judges the next files in worker threads).
    """
    limits = limits or Limits()
    try:
        return _judge(data, limits)
    except ImageRefused:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):  # Pillow's own check
        raise ImageRefused("decompression_bomb", limit=limits.max_pixels) from None
    except MemoryError:
        raise
    except Exception as exc:
        log.warning("Refused an image (%s bytes, SHA-256 %s) on which the decoder raised %s.",
                    f"{len(data):,}", sha256_bytes(data), type(exc).__name__, exc_info=True)
        raise ImageRefused("undecodable", error=type(exc).__name__) from None


def _judge(data: bytes, limits: Limits) -> Processed:
    """`process` without its net: the refusals with a reason of their own, then the work."""
    img = _open(data, limits)
    original_format = img.format
    ow, oh = img.size
    try:
        _draft(img, limits.longest_side)
        img.load()
        decoded = img
        img = _orient(img)
        rgb = _to_rgb(img, limits.colour_tables)
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageRefused("corrupt", detail=str(exc)) from None
    digest = hashlib.sha256(b"%dx%d:" % rgb.size)
    digest.update(rgb.tobytes())
    pixel_sha = digest.hexdigest()
    # A JPEG whose pixels nothing changed (no scale, turn or colour transform) and that is no finer
    # than what would be written is stored as its own coded data, its metadata dropped: no
    # encode, no second generation loss, the same decoded pixels.
    unchanged = rgb is decoded and max(ow, oh) <= limits.longest_side
    kept = _stripped_jpeg(data, decoded, limits.jpeg_quality) if unchanged and original_format == "JPEG" else None
    # Pillow copies `info` (JPEG comment, XMP, EXIF, ICC) through convert/transpose/resize, and
    # its JPEG writer reuses some of it: the stored copy must carry none of it (privacy).
    rgb.info = {}
    stored = _fit(rgb, limits.longest_side)
    thumb = _fit(stored, limits.thumb_side, Image.Resampling.BOX)
    phash = _perceptual_hash(thumb)
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
        jpeg=kept or _encode_jpeg(stored, limits.jpeg_quality),
        thumbnail=_encode_jpeg(thumb, limits.thumb_quality),
    )


def hamming(a: int, b: int) -> int:
    """Bits that differ between two signed 64-bit perceptual hashes."""
    return bin((a ^ b) & ((1 << 64) - 1)).count("1")
