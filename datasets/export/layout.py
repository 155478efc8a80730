"""What an export writes, byte for byte: shard plans, WebDataset tars and the metadata files.

Pure: plain rows in, bytes out (stdlib, Pillow, pyarrow; no Django, no database, no storage), so
the same rows give the same bytes in any process on any machine with the same Pillow and pyarrow:
one process writing a whole export (`datasets.export.source.export_to_directory`) and Celery
workers writing shard groups each produce identical files.

Order everywhere: split (train, val, test), then category slug, then image id (the uuid's text),
then comment id. Shards follow that order; an image's samples are never split over two shards,
and a sample's members (.jpg, .json, .txt: sorted by extension) are contiguous in the tar.

Tars are plain ustar: every member a regular file with mode 0644, mtime 0, uid and gid 0, empty
owner names, ended by two zero blocks and padded to tarfile's 10 KiB record, as Python's tarfile
writes them (`tar` and every WebDataset reader read them).

Keys are "<image uuid>_<comment id>" (the uuid with its dashes): no dots, which WebDataset would
take for the start of the extension.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import re
import statistics
import tarfile
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import BinaryIO

import regex

from ..textlength import count_length

SPLITS = ("train", "val", "test")
IMAGE_MODES = ("stored", "resized")
CLIP_BENCHMARK = "eval/clip_benchmark"
FORMAT_VERSION = 1  # of this layout; in stats.json and the card

_BLOCK = tarfile.BLOCKSIZE
_RECORD = tarfile.RECORDSIZE
_NUL_BLOCK = b"\0" * _BLOCK


# ---------------------------------------------------------------- options and rows


@dataclass(frozen=True)
class ExportOptions:
    max_samples: int = 1000  # samples (= comments) per shard
    max_bytes: int = 512 * 1024**2  # target bytes per shard (an image's samples are never split)
    image_mode: str = "stored"  # "stored": the stored copy's JPEG as it is | "resized": see resized_size
    shortest_side: int = 512
    jpeg_quality: int = 90

    def validate(self) -> None:
        def whole(name, low, high):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise ValueError(f"{name} must be a whole number from {low:,} to {high:,} (got {value!r}).")

        whole("max_samples", 1, 10_000_000)
        whole("max_bytes", 1024 * 1024, 1024**4)
        if self.image_mode not in IMAGE_MODES:
            raise ValueError(f"image_mode must be one of {', '.join(IMAGE_MODES)} (got {self.image_mode!r}).")
        whole("shortest_side", 32, 8192)
        whole("jpeg_quality", 1, 100)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping) -> ExportOptions:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d or {}) - known)
        if unknown:
            raise ValueError(f"Unknown export options: {', '.join(map(str, unknown))}.")
        options = cls(**dict(d or {}))
        options.validate()
        return options


@dataclass(frozen=True)
class ImageRow:
    image_id: str
    split: str
    sha256: str
    pixel_sha256: str
    width: int
    height: int
    category: str
    category_name: str
    subcategory: str
    subcategory_name: str
    licence: str
    attribution_required: bool
    attribution: str
    source: str
    file: str  # storage path of the stored copy
    file_size: int | None = None  # bytes of the stored copy where known (the plan does not use it)


@dataclass(frozen=True)
class CommentRow:
    comment_id: int
    image_id: str
    split: str
    text: str
    comment_type: str
    category: str
    guideline_version: int | None
    labeler: str


@dataclass(frozen=True)
class ShardSpec:
    path: str  # relative: "train/shard-000000.tar", "eval/clip_benchmark/test/0.tar"
    kind: str  # "split" | "clip_benchmark"
    split: str
    image_ids: tuple[str, ...]

    def as_dict(self) -> dict:
        return {"path": self.path, "kind": self.kind, "split": self.split, "image_ids": list(self.image_ids)}

    @classmethod
    def from_dict(cls, d: Mapping) -> ShardSpec:
        return cls(path=d["path"], kind=d["kind"], split=d["split"], image_ids=tuple(d["image_ids"]))


@dataclass
class ShardResult:
    path: str
    samples: int
    size: int
    sha256: str
    # {"image_id", "code", "message"}: "missing_file" | "unreadable_image" (that image is skipped),
    # and {"image_id", "comment_id", "code": "text_cleaned", "message"} (written, cleaned).
    problems: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"path": self.path, "samples": self.samples, "size": self.size, "sha256": self.sha256,
                "problems": [dict(p) for p in self.problems]}

    @classmethod
    def from_dict(cls, d: Mapping) -> ShardResult:
        return cls(path=d["path"], samples=d["samples"], size=d["size"], sha256=d["sha256"],
                   problems=[dict(p) for p in d.get("problems", [])])


def _split_order(split: str) -> int:
    return SPLITS.index(split) if split in SPLITS else len(SPLITS)


def image_order(row: ImageRow) -> tuple:
    """The order of images in shards and in every file: split, category, image id."""
    return (_split_order(row.split), row.split, row.category, row.image_id)


def sample_key(image_id: str, comment_id: int) -> str:
    key = f"{image_id}_{comment_id}"
    if "." in key or "/" in key:
        raise ValueError(f"A sample key may hold no dot or slash: {key!r}.")
    return key


# ---------------------------------------------------------------- text


_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # category Cc but newline and tab ("\r" is gone by then)


def clean_text(text) -> str:
    """A comment as written to the files: valid UTF-8 (a lone surrogate becomes U+FFFD; bytes
    are decoded as UTF-8 with U+FFFD for what is not), line ends as "\\n", control characters
    other than newline and tab removed, NFC. Length is never cut."""
    if isinstance(text, bytes | bytearray):
        text = bytes(text).decode("utf-8", "replace")
    text = str(text or "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # Pairs of surrogates become the character they encode; a lone one U+FFFD.
        text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if _CONTROL.search(text):
        text = _CONTROL.sub("", text)
    return text if unicodedata.is_normalized("NFC", text) else unicodedata.normalize("NFC", text)


def text_length(text: str) -> int:
    """Characters as a Korean reader counts them: datasets.textlength.count_length, the count the
    labeling rules use."""
    return count_length(text)


# ---------------------------------------------------------------- planning


_SAMPLE_OVERHEAD = 4 * _BLOCK  # three member headers and their padding, the .txt and .json on average


def bytes_per_pixel(quality: int) -> float:
    """A rough JPEG size per pixel of a photo at `quality` (0.30 at 90, 0.26 at 75, 0.19 at 50):
    what planning by bytes assumes. Only the shard boundaries depend on it, never a file's
    content, and it depends on the rows alone, so a plan is the same in every process."""
    return 0.05 + 0.0028 * quality


def resized_size(width: int, height: int, shortest_side: int) -> tuple[int, int]:
    """The size of an image in "resized" mode: scaled down (never up) so its shortest side is at
    most `shortest_side`, the longest side rounded down and the other side rounded to nearest."""
    if min(width, height) <= shortest_side:
        return width, height
    if width >= height:
        long_ = width * shortest_side // height
        return long_, max(1, min(shortest_side, round(height * long_ / width)))
    long_ = height * shortest_side // width
    return max(1, min(shortest_side, round(width * long_ / height))), long_


def export_size(row: ImageRow, options: ExportOptions) -> tuple[int, int]:
    """Width and height of the image as written in the shards."""
    if options.image_mode == "resized":
        return resized_size(row.width, row.height, options.shortest_side)
    return row.width, row.height


def estimated_image_bytes(row: ImageRow, options: ExportOptions) -> int:
    """Stored copies are JPEG at the platform's quality 90; resized ones at options.jpeg_quality."""
    w, h = export_size(row, options)
    quality = options.jpeg_quality if options.image_mode == "resized" else 90
    return int(w * h * bytes_per_pixel(quality))


def _pack(ids_sizes: Sequence[tuple[str, int, int]], max_samples: int, max_bytes: int) -> list[list[str]]:
    """Greedy, in order: (image_id, samples, bytes) into groups within both limits; an image
    that alone exceeds one is a group of its own."""
    groups: list[list[str]] = []
    current: list[str] = []
    samples = size = 0
    for image_id, n, b in ids_sizes:
        if current and (samples + n > max_samples or size + b > max_bytes):
            groups.append(current)
            current, samples, size = [], 0, 0
        current.append(image_id)
        samples += n
        size += b
    if current:
        groups.append(current)
    return groups


def plan(images: Sequence[ImageRow], comment_counts: Mapping[str, int], options: ExportOptions) -> list[ShardSpec]:
    """Every shard of the export, in order: each split's shards ("train/shard-000000.tar", ...),
    then the test split's clip_benchmark shards ("eval/clip_benchmark/test/0.tar", ...). Images
    without comments are in images.parquet but in no shard. Deterministic from the rows alone."""
    options.validate()
    ordered = sorted(images, key=image_order)
    specs: list[ShardSpec] = []
    for split in SPLITS:
        rows = [r for r in ordered if r.split == split and comment_counts.get(r.image_id, 0) > 0]
        sized = [(r.image_id, comment_counts[r.image_id],
                  comment_counts[r.image_id] * (estimated_image_bytes(r, options) + _SAMPLE_OVERHEAD)) for r in rows]
        for i, group in enumerate(_pack(sized, options.max_samples, options.max_bytes)):
            specs.append(ShardSpec(f"{split}/shard-{i:06d}.tar", "split", split, tuple(group)))
    rows = [r for r in ordered if r.split == "test" and comment_counts.get(r.image_id, 0) > 0]
    sized = [(r.image_id, 1, estimated_image_bytes(r, options) + _SAMPLE_OVERHEAD) for r in rows]
    for i, group in enumerate(_pack(sized, options.max_samples, options.max_bytes)):
        specs.append(ShardSpec(f"{CLIP_BENCHMARK}/test/{i}.tar", "clip_benchmark", "test", tuple(group)))
    return specs


# ---------------------------------------------------------------- tar writing


class _Sink:
    """Writes to `out`, counting and hashing what passes."""

    __slots__ = ("out", "digest", "size")

    def __init__(self, out: BinaryIO):
        self.out = out
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data) -> None:
        self.out.write(data)
        self.digest.update(data)
        self.size += len(data)


def _tarfile_header(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    return info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "strict")


# The ustar header tarfile writes for such a member, its name and size fields blank: every other
# field is the same for every member, so a header is this template with those two filled in and
# the checksum over it (tarfile's own TarInfo.tobuf costs ~20x more, most of a small sample's
# time). Names that are not short ASCII go through tarfile itself. Tests compare the two.
_TEMPLATE = bytearray(_tarfile_header("x", 0))
_TEMPLATE[0:100] = bytes(100)
_TEMPLATE[124:136] = bytes(12)
_TEMPLATE[148:156] = b" " * 8
_TEMPLATE = bytes(_TEMPLATE)
_TEMPLATE_SUM = sum(_TEMPLATE)


def _header(name: str, size: int) -> bytes:
    raw = name.encode("ascii", "replace")
    if len(raw) > 99 or not name.isascii() or size >= 8**11:
        return _tarfile_header(name, size)
    size_field = b"%011o\0" % size
    chksum = _TEMPLATE_SUM + sum(raw) + sum(size_field)
    return b"".join((raw, bytes(100 - len(raw)), _TEMPLATE[100:124], size_field, _TEMPLATE[136:148],
                     b"%06o\0 " % chksum, _TEMPLATE[156:]))


def _member(sink: _Sink, name: str, data: bytes) -> None:
    sink.write(b"".join((_header(name, len(data)), data, _NUL_BLOCK[:-len(data) % _BLOCK])))


def _end(sink: _Sink) -> None:
    sink.write(_NUL_BLOCK * 2)
    rest = -sink.size % _RECORD
    if rest:
        sink.write(b"\0" * rest)


def _dumps(value) -> bytes:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _is_jpeg(data: bytes) -> bool:
    return data[:3] == b"\xff\xd8\xff"


def _reencode(data: bytes, options: ExportOptions) -> bytes:
    """Decode and write as a baseline JPEG (no metadata); in "resized" mode at most
    options.shortest_side on the shortest side, at options.jpeg_quality. Deterministic for one
    Pillow (libjpeg) version. Uses the ingest's own helpers (datasets.imaging; imported here
    only, since it pulls in django.utils.translation for its messages)."""
    from PIL import Image

    from datasets.imaging import _encode_jpeg, _fit, _to_rgb

    with Image.open(io.BytesIO(data)) as img:
        img.load()
        rgb = _to_rgb(img)
    rgb.info = {}
    if options.image_mode == "resized":
        w, h = resized_size(rgb.width, rgb.height, options.shortest_side)
        if (w, h) != rgb.size:
            rgb = _fit(rgb, max(w, h))
        return _encode_jpeg(rgb, options.jpeg_quality)
    return _encode_jpeg(rgb, 90)


def shard_image(data: bytes, options: ExportOptions) -> bytes:
    """The .jpg member for a stored copy's bytes: the bytes as they are when they are a JPEG in
    "stored" mode, else re-encoded (see _reencode)."""
    if options.image_mode == "stored" and _is_jpeg(data):
        return data
    return _reencode(data, options)


def _load(row: ImageRow, read_image: Callable[[ImageRow], bytes], options: ExportOptions,
          problems: list[dict]) -> bytes | None:
    try:
        data = read_image(row)
    except FileNotFoundError as exc:
        problems.append({"image_id": row.image_id, "code": "missing_file",
                         "message": f"The stored file {row.file} is missing ({exc.__class__.__name__})."})
        return None
    except OSError as exc:
        problems.append({"image_id": row.image_id, "code": "unreadable_image",
                         "message": f"The stored file {row.file} could not be read: {exc}"})
        return None
    try:
        return shard_image(data, options)
    except MemoryError:
        raise
    except Exception as exc:  # any decoder error on a broken file: reported, the image skipped
        problems.append({"image_id": row.image_id, "code": "unreadable_image",
                         "message": f"The stored file {row.file} is not a readable image ({exc.__class__.__name__})."})
        return None


def manifest_row(image: ImageRow, comment: CommentRow, shard: str | None, text: str) -> dict:
    """One comment's row of manifest.parquet (and of its sample's .json)."""
    return {
        "comment_id": comment.comment_id,
        "image_id": image.image_id,
        "split": image.split,
        "shard": shard,
        "key": sample_key(image.image_id, comment.comment_id) if shard else None,
        "text": text,
        "comment_type": comment.comment_type,
        "category": image.category,
        "subcategory": image.subcategory,
        "image_sha256": image.sha256,
        "licence": image.licence,
        "source": image.source,
        "guideline_version": comment.guideline_version,
        "labeler": comment.labeler,
    }


def _sorted_comments(comments: Sequence[CommentRow]) -> list[CommentRow]:
    return sorted(comments, key=lambda c: c.comment_id)


def write_shard(spec: ShardSpec, images: Mapping[str, ImageRow], comments: Mapping[str, Sequence[CommentRow]],
                read_image: Callable[[ImageRow], bytes], out: BinaryIO, options: ExportOptions) -> ShardResult:
    """Write one shard to `out` (the same bytes for the same input). A "split" shard holds a
    sample per comment (.jpg, .json, .txt); a "clip_benchmark" shard a sample per image (.jpg and
    a .txt with all its comments, one a line, newlines inside a comment made spaces). An image
    whose file is missing or unreadable is skipped and reported in `problems`; so is a comment
    whose text had to be cleaned (see clean_text), which is written cleaned."""
    sink = _Sink(out)
    problems: list[dict] = []
    samples = 0
    for image_id in spec.image_ids:
        row = images[image_id]
        rows = _sorted_comments(comments.get(image_id, ()))
        if not rows:
            continue
        jpeg = _load(row, read_image, options, problems)
        if jpeg is None:
            continue
        texts = []
        for c in rows:
            text = clean_text(c.text)
            if text != c.text and spec.kind == "split":  # reported once, by the split's shard
                problems.append({"image_id": image_id, "comment_id": c.comment_id, "code": "text_cleaned",
                                 "message": "Control characters, line ends or invalid UTF-8 were cleaned, or "
                                            "the text was NFC-normalised."})
            texts.append(text)
        if spec.kind == "clip_benchmark":
            key = image_id
            sample_key(key, 0)  # checks: no dot
            _member(sink, f"{key}.jpg", jpeg)
            lines = "\n".join(" ".join(t.split("\n")) for t in texts) + "\n"
            _member(sink, f"{key}.txt", lines.encode("utf-8"))
            samples += 1
            continue
        all_comments = [{"comment_id": c.comment_id, "comment_type": c.comment_type, "text": t}
                        for c, t in zip(rows, texts, strict=True)]
        for c, text in zip(rows, texts, strict=True):
            key = sample_key(image_id, c.comment_id)
            meta = manifest_row(row, c, spec.path, text)
            meta["comments"] = all_comments
            _member(sink, f"{key}.jpg", jpeg)
            _member(sink, f"{key}.json", _dumps(meta))
            _member(sink, f"{key}.txt", text.encode("utf-8"))
            samples += 1
    _end(sink)
    return ShardResult(path=spec.path, samples=samples, size=sink.size, sha256=sink.digest.hexdigest(),
                       problems=problems)


# ---------------------------------------------------------------- checksums


def sha256sums(checksums: Mapping[str, str]) -> bytes:
    """SHA256SUMS as `sha256sum -c` reads it: "<hex>  <path>\\n", sorted by path."""
    return "".join(f"{checksums[p]}  {p}\n" for p in sorted(checksums)).encode("utf-8")


# ---------------------------------------------------------------- metadata files


SKIPPING_PROBLEMS = ("missing_file", "unreadable_image")

_MANIFEST_SCHEMA = [
    ("comment_id", "int64"), ("image_id", "string"), ("split", "string"), ("shard", "string"), ("key", "string"),
    ("text", "string"), ("comment_type", "string"), ("category", "string"), ("subcategory", "string"),
    ("image_sha256", "string"), ("licence", "string"), ("source", "string"), ("guideline_version", "int64"),
    ("labeler", "string"),
]
_IMAGES_SCHEMA = [
    ("image_id", "string"), ("split", "string"), ("sha256", "string"), ("pixel_sha256", "string"),
    ("width", "int32"), ("height", "int32"), ("export_width", "int32"), ("export_height", "int32"),
    ("category", "string"), ("category_name", "string"), ("subcategory", "string"), ("subcategory_name", "string"),
    ("licence", "string"), ("attribution_required", "bool"), ("attribution", "string"), ("source", "string"),
    ("comments", "int32"), ("problem", "string"),
]


def _parquet(columns: Sequence[tuple[str, str]], rows: Sequence[Mapping]) -> bytes:
    """Deterministic Parquet bytes: the schema fixed here, rows in the order given, one
    compression and page layout, no timestamps (pyarrow writes none; `created_by` names its
    version only)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([pa.field(name, getattr(pa, "bool_" if kind == "bool" else kind)()) for name, kind in columns])
    table = pa.Table.from_pydict({name: [r[name] for r in rows] for name, _ in columns}, schema=schema)
    buf = io.BytesIO()
    pq.write_table(table, buf, row_group_size=100_000, compression="zstd", compression_level=3,
                   use_dictionary=True, write_statistics=True, version="2.6", data_page_version="1.0",
                   store_schema=True)
    return buf.getvalue()


def _json(value, *, compact: bool = False) -> bytes:
    """Sorted keys, UTF-8; indented for the small files people open, compact (and through the
    C encoder, 5x faster) for the large ones."""
    if compact:
        return _dumps(value) + b"\n"
    return (json.dumps(value, ensure_ascii=False, sort_keys=True, indent=2) + "\n").encode("utf-8")


def _length_stats(lengths: Sequence[int]) -> dict:
    if not lengths:
        return {"count": 0}
    ordered = sorted(lengths)

    def pct(p):  # nearest rank
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]

    return {"count": len(ordered), "min": ordered[0], "max": ordered[-1], "mean": round(statistics.fmean(ordered), 2),
            "median": pct(50), "p5": pct(5), "p95": pct(95)}


@dataclass
class _Tables:
    """What every metadata file is made from, computed once."""

    images: list[ImageRow]  # in export order
    comments: dict[str, list[CommentRow]]  # per image, by comment id
    texts: dict[int, str]  # comment id -> cleaned text
    shard_of: dict[str, str]  # image id -> its split shard's path (images with a sample)
    skipped: dict[str, str]  # image id -> problem code
    results: dict[str, ShardResult]


def _tables(images, comments, results, options) -> _Tables:
    ordered = sorted(images, key=image_order)
    per_image = {r.image_id: _sorted_comments(comments.get(r.image_id, ())) for r in ordered}
    texts = {c.comment_id: clean_text(c.text) for rows in per_image.values() for c in rows}
    by_path = {r.path: r for r in results}
    skipped: dict[str, str] = {}
    for r in results:
        for p in r.problems:
            if p.get("code") in SKIPPING_PROBLEMS:
                skipped.setdefault(p["image_id"], p["code"])
    shard_of = {}
    for spec in plan(ordered, {k: len(v) for k, v in per_image.items()}, options):
        if spec.kind == "split":
            for image_id in spec.image_ids:
                if image_id not in skipped:
                    shard_of[image_id] = spec.path
    return _Tables(ordered, per_image, texts, shard_of, skipped, by_path)


def _manifest_rows(t: _Tables) -> list[dict]:
    return [manifest_row(img, c, t.shard_of.get(img.image_id), t.texts[c.comment_id])
            for img in t.images for c in t.comments[img.image_id]]


def _image_rows(t: _Tables, options: ExportOptions) -> list[dict]:
    rows = []
    for img in t.images:
        ew, eh = export_size(img, options)
        rows.append({
            "image_id": img.image_id, "split": img.split, "sha256": img.sha256, "pixel_sha256": img.pixel_sha256,
            "width": img.width, "height": img.height, "export_width": ew, "export_height": eh,
            "category": img.category, "category_name": img.category_name, "subcategory": img.subcategory,
            "subcategory_name": img.subcategory_name, "licence": img.licence,
            "attribution_required": img.attribution_required, "attribution": img.attribution, "source": img.source,
            "comments": len(t.comments[img.image_id]), "problem": t.skipped.get(img.image_id),
        })
    return rows


def _stats(snapshot: Mapping, t: _Tables, options: ExportOptions) -> dict:
    splits: dict = {}
    categories: dict = defaultdict(lambda: {"images": 0, "comments": 0})
    per_split_cat: dict = defaultdict(lambda: defaultdict(lambda: {"images": 0, "comments": 0}))
    types: dict[str, list[int]] = defaultdict(list)
    types_split: dict = defaultdict(Counter)
    labelers: set[str] = set()
    guidelines: Counter = Counter()
    licences: Counter = Counter()
    for img in t.images:
        rows = t.comments[img.image_id]
        s = splits.setdefault(img.split, {"images": 0, "comments": 0, "shards": 0, "samples": 0})
        s["images"] += 1
        s["comments"] += len(rows)
        categories[img.category]["images"] += 1
        categories[img.category]["comments"] += len(rows)
        per_split_cat[img.split][img.category]["images"] += 1
        per_split_cat[img.split][img.category]["comments"] += len(rows)
        licences[img.licence] += 1
        for c in rows:
            types[c.comment_type].append(text_length(t.texts[c.comment_id]))
            types_split[c.comment_type][img.split] += 1
            labelers.add(c.labeler)
            guidelines["none" if c.guideline_version is None else str(c.guideline_version)] += 1
    for r in t.results.values():
        if r.path.startswith(CLIP_BENCHMARK):
            continue
        split = r.path.split("/", 1)[0]
        if split in splits:
            splits[split]["shards"] += 1
            splits[split]["samples"] += r.samples
    problems: dict = defaultdict(list)
    seen = set()
    for path in sorted(t.results):
        for p in t.results[path].problems:
            ident = (p.get("code"), p.get("image_id"), p.get("comment_id"))
            if ident in seen:
                continue
            seen.add(ident)
            problems[p["code"]].append({k: v for k, v in p.items() if k != "code"})
    for code in problems:
        problems[code].sort(key=lambda p: (p.get("image_id", ""), p.get("comment_id") or 0))
    total_comments = sum(len(v) for v in t.comments.values())
    clip = [r for r in t.results.values() if r.path.startswith(CLIP_BENCHMARK)]
    return {
        "format_version": FORMAT_VERSION,
        "snapshot": {"name": snapshot.get("name"), "version": snapshot.get("version")},
        "options": options.as_dict(),
        "images": len(t.images),
        "comments": total_comments,
        "samples": sum(s["samples"] for s in splits.values()),
        "labelers": len(labelers),
        "splits": {k: splits[k] for k in sorted(splits, key=_split_order)},
        "categories": {k: categories[k] for k in sorted(categories)},
        "split_categories": {s: {c: v for c, v in sorted(per_split_cat[s].items())}
                             for s in sorted(per_split_cat, key=_split_order)},
        "comment_types": {k: {"comments": len(types[k]), "splits": dict(sorted(types_split[k].items(),
                                                                                 key=lambda kv: _split_order(kv[0]))),
                              "length": _length_stats(types[k])} for k in sorted(types)},
        "length_unit": "characters as a Korean reader counts them: NFC grapheme clusters, whitespace not counted",
        "guideline_versions": dict(sorted(guidelines.items())),
        "licences": dict(sorted(licences.items())),
        "clip_benchmark": {"shards": len(clip), "images": sum(r.samples for r in clip)},
        "problems": {k: problems[k] for k in sorted(problems)},
    }


def coco_image_ids(image_ids: Sequence[str]) -> dict[str, int]:
    """Stable integer ids for COCO-style files (and Label Studio task ids): the first 52 bits of
    the uuid (13 hex digits; of SHA-256 of the id when it is not hex), so an image keeps its id in
    every version and the number stays exact in JavaScript. On a collision (about one in 10^7 at
    50,000 images) the later id in sorted order takes the next free number."""
    taken: dict[int, str] = {}
    out: dict[str, int] = {}
    for image_id in sorted(image_ids):
        h = image_id.replace("-", "").lower()
        if len(h) < 13 or any(ch not in "0123456789abcdef" for ch in h):
            h = hashlib.sha256(image_id.encode()).hexdigest()
        n = int(h[:13], 16) or 1
        while n in taken:
            n = n % (2**52 - 1) + 1
        taken[n] = image_id
        out[image_id] = n
    return out


def _md(text) -> str:
    """User text on one Markdown line: no newlines, table pipes escaped."""
    return " ".join(str(text or "").split()).replace("|", "\\|")


def _licence_info(snapshot: Mapping, code: str) -> dict:
    info = (snapshot.get("licences") or {}).get(code) or {}
    return {"name": info.get("name") or code, "url": info.get("url") or ""}


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def _in_split_order(values: Mapping) -> list[tuple[str, object]]:
    """A {split: value} field's items in train, val, test order (a database's JSON column may hand
    the keys back in another order: PostgreSQL's jsonb sorts them), so the card's bytes do not
    depend on where the snapshot was read from."""
    return sorted(values.items(), key=lambda kv: (_split_order(kv[0]), kv[0]))


def _card(snapshot: Mapping, t: _Tables, stats: dict, options: ExportOptions) -> bytes:
    name, version = snapshot.get("name") or "snapshot", snapshot.get("version")
    licences = sorted(stats["licences"])
    front = ["---", f"pretty_name: {json.dumps(f'{name} v{version}', ensure_ascii=False)}", "language:", "- ko",
             "license:", *[f"- {json.dumps(code)}" for code in licences],
             "task_categories:", "- image-to-text", "- text-to-image", "---", ""]
    out = [*front, f"# {_md(name)} v{version}", "",
           f"Frozen snapshot `{_md(name)} v{version}` of {stats['images']:,} photos and {stats['comments']:,} "
           f"Korean comments, created {snapshot.get('created_at', '')}. Written by the platform's export "
           f"(layout format {FORMAT_VERSION}); every file is listed with its SHA-256 in `SHA256SUMS`.", "",
           "## Splits", "", "| split | photos | comments | shards | samples written |", "|---|---:|---:|---:|---:|"]
    for split, s in stats["splits"].items():
        out.append(f"| {split} | {s['images']:,} | {s['comments']:,} | {s['shards']:,} | {s['samples']:,} |")
    out += ["", "Splits are by photo (no photo in two splits), stratified by category, drawn from the seed.", "",
            "## Categories", "", "| category | photos | share of photos | comments | share of comments |",
            "|---|---:|---:|---:|---:|"]
    names = {img.category: img.category_name for img in t.images}
    for cat, c in stats["categories"].items():
        label = f"{_md(names.get(cat) or cat)} (`{cat}`)" if cat else "(none)"
        out.append(f"| {label} | {c['images']:,} | {_share(c['images'], stats['images'])} | {c['comments']:,} | "
                   f"{_share(c['comments'], stats['comments'])} |")
    out += ["", "## Comment types and lengths", "",
            f"Length in {stats['length_unit']}.", "",
            "| comment type | comments | min | p5 | median | mean | p95 | max |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for ctype, c in stats["comment_types"].items():
        length = c["length"]
        if length["count"]:
            out.append(f"| `{_md(ctype)}` | {c['comments']:,} | {length['min']} | {length['p5']} | {length['median']} | "
                       f"{length['mean']} | {length['p95']} | {length['max']} |")
    out += ["", "## Labeling", "", f"- Labelers: {stats['labelers']:,} (pseudonymous stable ids in `manifest.parquet`)",
            "- Guideline versions (comments): " + (", ".join(f"{k}: {v:,}" for k, v in
                                                              stats["guideline_versions"].items()) or "-"), ""]
    out += ["## Snapshot parameters", ""]
    projects = snapshot.get("projects") or []
    out.append("- Projects: " + (", ".join(f"{_md(p.get('name'))} (#{p.get('id')})" if isinstance(p, Mapping)
                                          else _md(p) for p in projects) or "-"))
    out.append("- Categories: " + (", ".join(f"`{c}`" for c in snapshot.get("categories") or []) or "all"))
    out.append("- Comment types: " + (", ".join(f"`{c}`" for c in snapshot.get("comment_types") or []) or "all"))
    out.append(f"- Minimum submitted comment sets per photo: {snapshot.get('min_sets')}")
    out.append(f"- Seed: {snapshot.get('seed')}")
    if snapshot.get("ratios") is not None:
        out.append("- Split ratios: " + ", ".join(f"{k} {v}" for k, v in _in_split_order(snapshot["ratios"])))
    if snapshot.get("counts") is not None:
        out.append("- Split counts (photos): " + ", ".join(f"{k} {v}" for k, v in _in_split_order(snapshot["counts"])))
    kept = snapshot.get("kept_from")
    out.append(f"- Val and test photos kept from: {_md(kept) if kept else '-'}")
    out.append("- Export options: " + ", ".join(f"{k}={v}" for k, v in options.as_dict().items()))
    out += ["", "## Files", "",
            "- `{train,val,test}/shard-NNNNNN.tar`: WebDataset, one sample per comment, key "
            "`<image uuid>_<comment id>`, members `.jpg` (the photo), `.json` (the manifest row and all comments "
            "of the photo), `.txt` (the comment, UTF-8). `sizes.json` beside them counts samples per shard.",
            "- `manifest.parquet`: one row per comment (`shard` and `key` empty where the photo could not be written);"
            " `images.parquet`: one row per photo.",
            "- `eval/clip_benchmark/`: the test split in clip_benchmark's retrieval layout (one sample per photo, all "
            "its comments in the `.txt`, one a line).",
            "- `labelstudio.json` (Label Studio tasks, `data.image` is the platform's storage path) and "
            "`coco_captions.json` (COCO captions; `file_name` is `<image uuid>.jpg`). Integer image ids in both are "
            "the first 52 bits of the image uuid (13 hex digits), the same in every version; caption ids are "
            "comment ids.",
            "- `stats.json` (these numbers), `croissant.json` (MLCommons Croissant 1.0).", "",
            "Reading a split with `webdataset` (as open_clip does): "
            "`wds.WebDataset(\"train/shard-{000000..000009}.tar\").decode(\"pilrgb\").to_tuple(\"jpg\", \"txt\")`; "
            "with Hugging Face `datasets`: `load_dataset(\"webdataset\", data_files={\"train\": \"train/*.tar\"})`.", ""]
    if stats["problems"]:
        out += ["## Problems met while exporting", ""]
        for code, items in stats["problems"].items():
            out.append(f"- `{code}`: {len(items):,}")
        out.append("")
    out += ["## Licences", "", "| licence | photos |", "|---|---:|"]
    for code in licences:
        info = _licence_info(snapshot, code)
        label = f"[{_md(info['name'])}]({info['url']})" if info["url"] else _md(info["name"])
        out.append(f"| {label} (`{code}`) | {stats['licences'][code]:,} |")
    credited = [img for img in sorted(t.images, key=lambda r: r.image_id) if img.attribution_required]
    out += ["", "## Attribution", ""]
    if credited:
        out += [f"{len(credited):,} photos are under a licence that requires attribution:", ""]
        out += [f"- `{img.image_id}`: {_md(img.attribution)}" for img in credited]
    else:
        out.append("No photo's licence requires attribution.")
    out.append("")
    return "\n".join(out).encode("utf-8")


_CROISSANT_CONTEXT = {
    "@language": "en", "@vocab": "https://schema.org/", "citeAs": "cr:citeAs", "column": "cr:column",
    "conformsTo": "dct:conformsTo", "cr": "http://mlcommons.org/croissant/", "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"}, "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/", "equivalentProperty": "cr:equivalentProperty", "examples": {"@id": "cr:examples", "@type": "@json"}, "extract": "cr:extract",
    "field": "cr:field", "fileProperty": "cr:fileProperty", "fileObject": "cr:fileObject", "fileSet": "cr:fileSet",
    "format": "cr:format", "includes": "cr:includes", "isLiveDataset": "cr:isLiveDataset", "jsonPath": "cr:jsonPath",
    "key": "cr:key", "md5": "cr:md5", "parentField": "cr:parentField", "path": "cr:path", "recordSet": "cr:recordSet",
    "references": "cr:references", "regex": "cr:regex", "repeated": "cr:repeated", "replace": "cr:replace",
    "samplingRate": "cr:samplingRate", "sc": "https://schema.org/", "separator": "cr:separator", "source": "cr:source", "subField": "cr:subField",
    "transform": "cr:transform",
}
_CR_TYPES = {"int64": "sc:Integer", "int32": "sc:Integer", "string": "sc:Text", "bool": "sc:Boolean"}


def _croissant(snapshot: Mapping, t: _Tables, stats: dict, checksums: Mapping[str, str]) -> bytes:
    name, version = snapshot.get("name") or "snapshot", snapshot.get("version")
    created = str(snapshot.get("created_at") or "")
    distribution: list[dict] = []
    for path, fmt in (("manifest.parquet", "application/x-parquet"), ("images.parquet", "application/x-parquet")):
        distribution.append({"@type": "cr:FileObject", "@id": path, "name": path, "contentUrl": path,
                             "encodingFormat": fmt, "sha256": checksums[path]})
    for path in sorted(t.results, key=lambda p: (p.startswith(CLIP_BENCHMARK), p)):
        distribution.append({"@type": "cr:FileObject", "@id": path, "name": path, "contentUrl": path,
                             "encodingFormat": "application/x-tar", "sha256": t.results[path].sha256})
    for split in stats["splits"]:
        tars = [p for p in sorted(t.results) if p.startswith(f"{split}/")]
        if tars:
            distribution.append({"@type": "cr:FileSet", "@id": f"{split}-images", "name": f"{split}-images",
                                 "containedIn": [{"@id": p} for p in tars], "encodingFormat": "image/jpeg",
                                 "includes": "*.jpg"})

    def record_set(rs_name, path, columns, key, description):
        return {"@type": "cr:RecordSet", "@id": rs_name, "name": rs_name, "description": description,
                "key": {"@id": f"{rs_name}/{key}"},
                "field": [{"@type": "cr:Field", "@id": f"{rs_name}/{col}", "name": col, "dataType": _CR_TYPES[kind],
                           "source": {"fileObject": {"@id": path}, "extract": {"column": col}}}
                          for col, kind in columns]}

    licences = sorted(stats["licences"])
    year = created[:4] if created[:4].isdigit() else ""
    doc = {
        "@context": _CROISSANT_CONTEXT,
        "@type": "sc:Dataset",
        "conformsTo": "http://mlcommons.org/croissant/1.0",
        "name": f"{name} v{version}",
        "description": (f"Frozen snapshot {name} v{version}: {stats['images']:,} photos and {stats['comments']:,} "
                        "Korean comments, WebDataset shards per split and Parquet tables."),
        "version": f"{version}.0.0",
        "datePublished": created,
        "inLanguage": "ko",
        "license": [_licence_info(snapshot, c)["url"] or c for c in licences],
        "citeAs": f"@misc{{{regex.sub(r'[^A-Za-z0-9]+', '_', name)}_v{version}, title={{{name} v{version}}}, "
                  f"note={{Image-comment dataset snapshot}}, year={{{year}}}}}",
        "distribution": distribution,
        "recordSet": [
            record_set("comments", "manifest.parquet", _MANIFEST_SCHEMA, "comment_id", "One record per comment."),
            record_set("images", "images.parquet", _IMAGES_SCHEMA, "image_id", "One record per photo."),
        ],
    }
    return _json(doc)


def _labelstudio(t: _Tables, ids: Mapping[str, int]) -> bytes:
    tasks = []
    for img in t.images:
        by_labeler: dict[str, list[CommentRow]] = {}
        for c in t.comments[img.image_id]:
            by_labeler.setdefault(c.labeler, []).append(c)
        annotations = []
        for rows in by_labeler.values():
            annotations.append({
                "id": rows[0].comment_id,
                "result": [{"id": f"c{c.comment_id}", "type": "textarea", "from_name": c.comment_type,
                            "to_name": "image", "origin": "manual", "value": {"text": [t.texts[c.comment_id]]}}
                           for c in rows],
                "was_cancelled": False, "ground_truth": False,
            })
        tasks.append({
            "id": ids[img.image_id],
            "data": {"image": img.file, "image_id": img.image_id, "split": img.split, "category": img.category,
                     "subcategory": img.subcategory, "licence": img.licence, "attribution": img.attribution},
            "annotations": annotations,
        })
    return _json(tasks, compact=True)


def _coco(snapshot: Mapping, t: _Tables, ids: Mapping[str, int], options: ExportOptions) -> bytes:
    licences = sorted({img.licence for img in t.images})
    licence_id = {code: i for i, code in enumerate(licences, start=1)}
    images, annotations = [], []
    for img in t.images:
        w, h = export_size(img, options)
        images.append({"id": ids[img.image_id], "file_name": f"{img.image_id}.jpg", "width": w, "height": h,
                       "license": licence_id[img.licence], "image_uuid": img.image_id, "split": img.split,
                       "category": img.category})
        for c in t.comments[img.image_id]:
            annotations.append({"id": c.comment_id, "image_id": ids[img.image_id], "caption": t.texts[c.comment_id],
                                "comment_type": c.comment_type})
    created = str(snapshot.get("created_at") or "")
    doc = {
        "info": {"description": f"{snapshot.get('name')} v{snapshot.get('version')}", "version": str(snapshot.get("version")),
                 "year": int(created[:4]) if created[:4].isdigit() else None, "date_created": created},
        "licenses": [{"id": licence_id[c], "name": _licence_info(snapshot, c)["name"], "code": c,
                      "url": _licence_info(snapshot, c)["url"]} for c in licences],
        "images": images,
        "annotations": annotations,
    }
    return _json(doc, compact=True)


def metadata_files(snapshot: Mapping, images: Sequence[ImageRow], comments: Mapping[str, Sequence[CommentRow]],
                   results: Sequence[ShardResult], options: ExportOptions) -> dict[str, bytes]:
    """Every file of the export except the shards and SHA256SUMS, keyed by relative path. Needs
    the results of every shard of plan() (their sample counts, checksums and problems)."""
    t = _tables(images, comments, results, options)
    files: dict[str, bytes] = {}
    files["manifest.parquet"] = _parquet(_MANIFEST_SCHEMA, _manifest_rows(t))
    files["images.parquet"] = _parquet(_IMAGES_SCHEMA, _image_rows(t, options))
    for split in SPLITS:
        sizes = {r.path.rsplit("/", 1)[1]: r.samples for r in results if r.path.startswith(f"{split}/")}
        if sizes:
            files[f"{split}/sizes.json"] = _json(sizes)
    clip = [r for r in results if r.path.startswith(f"{CLIP_BENCHMARK}/")]
    if clip:
        files[f"{CLIP_BENCHMARK}/dataset_type.txt"] = b"retrieval\n"
        files[f"{CLIP_BENCHMARK}/test/nshards.txt"] = f"{len(clip)}\n".encode()
    stats = _stats(snapshot, t, options)
    files["stats.json"] = _json(stats)
    files["dataset_card.md"] = _card(snapshot, t, stats, options)
    ids = coco_image_ids([img.image_id for img in t.images])
    files["labelstudio.json"] = _labelstudio(t, ids)
    files["coco_captions.json"] = _coco(snapshot, t, ids, options)
    checksums = {p: hashlib.sha256(b).hexdigest() for p, b in files.items()}
    files["croissant.json"] = _croissant(snapshot, t, stats, checksums)
    return files
