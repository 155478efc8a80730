"""Samples per second writing an export's WebDataset shards (datasets.export.layout.write_shard),
against Python's tarfile writing the same bytes, with one and with two worker processes.

    .venv/bin/python bench/export.py [--photos 50000] [--comments 150000] [--distinct 300]
        [--workers 1,2] [--rounds 3] [--mode stored|resized] [--out DIR] [--quick]

Rows are generated in memory (layout.ImageRow / CommentRow, as datasets.export.source reads them
from a frozen snapshot): --photos photos spread over the seeded categories' slugs, split 80/10/10,
and --comments comments shared out evenly (150,000 over 50,000 photos: three each), Korean texts
of 10-60 characters. Image bytes are real JPEGs: --distinct different photo-like images (320x240,
quality 90, ~15-20 KB; gradients, shapes and grain from a seed), reused in turn, since a shard
writer never decodes a stored JPEG in "stored" mode, only copies it. No database.

The plan is the export's own (layout.plan, default options: 1,000 samples a shard; the
clip_benchmark test shards included). For each worker count, the shards are dealt round-robin
into that many groups, one process each (fork, started before timing), writing files into a
temporary folder (--out, removed afterwards):
  write_shard  layout.write_shard per shard: reads the image from memory, cleans each text, builds
               each sample's .json, writes the tar headers and members, SHA-256 of every byte
  tarfile      tarfile.open(mode="w") + addfile for the very same member names and bytes
               (prepared before timing: the pure cost of tar), what `tar` or a plain script does
The two alternate --rounds times (median taken); the ratio is write_shard / tarfile samples/s
(the issue's aim: >= 0.8). The two outputs are compared byte for byte once (the same bytes, since
both write ustar members with the same headers), so the baseline writes what write_shard writes.
Also timed once, single process: layout.metadata_files (Parquet tables, stats, card, Croissant,
Label Studio, COCO) over the whole snapshot.

Freezing the snapshot rows (50,000 photos, 150,000 comments) is bench/snapshot_freeze.py.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import multiprocessing
import os
import shutil
import statistics
import sys
import tarfile
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from datasets.export.layout import (  # noqa: E402
    CommentRow,
    ExportOptions,
    ImageRow,
    ShardSpec,
    clean_text,
    metadata_files,
    plan,
    sample_key,
    write_shard,
)

CATEGORIES = ["food", "nature", "people", "animals", "city", "interior", "vehicles", "objects", "art", "clothing"]
WORDS = ["와", "정말", "맛있겠다", "사진", "속", "풍경이", "아름다워요", "색감이", "따뜻해", "보여요", "햇살이", "좋네요",
         "분위기가", "차분하고", "멋져요", "ㅋㅋ", "귀엽다", "여기", "가보고", "싶어요"]

# What the worker processes read (set before the pool forks, shared copy-on-write).
STATE: dict = {}


def photo(seed: int, width=320, height=240) -> bytes:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x / width * 200 + 30, y / height * 180 + 40, (x + y) / (width + height) * 150 + 60], -1)
    base += rng.normal(0, 6, (height, width, 3))
    img = Image.fromarray(base.clip(0, 255).astype("uint8"))
    draw = ImageDraw.Draw(img)
    for _ in range(12):
        x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, height))
        r = int(rng.integers(10, min(width, height) // 3))
        draw.ellipse([x0, y0, x0 + r, y0 + r], fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def build(n_photos: int, n_comments: int, n_distinct: int):
    rng = np.random.default_rng(0)
    jpegs = [photo(i) for i in range(n_distinct)]
    images, comments, blobs = [], {}, {}
    for i in range(n_photos):
        digest = hashlib.sha256(f"bench-{i}".encode()).hexdigest()
        image_id = str(uuid.UUID(digest[:32]))
        draw = int(digest[32:36], 16) % 10
        split = "test" if draw == 0 else "val" if draw == 1 else "train"
        category = CATEGORIES[i % len(CATEGORIES)]
        row = ImageRow(image_id=image_id, split=split, sha256=digest, pixel_sha256=digest[::-1], width=320,
                       height=240, category=category, category_name=category.title(), subcategory="",
                       subcategory_name="", licence="cc-by-4.0", attribution_required=True,
                       attribution=f"Photo {i}, by someone, CC BY 4.0", source="bench", file=f"images/{i}.jpg")
        images.append(row)
        blobs[row.file] = jpegs[i % n_distinct]
    per, extra = divmod(n_comments, n_photos)
    cid = 1
    for i, row in enumerate(images):
        rows = []
        for k in range(per + (1 if i < extra else 0)):
            words = rng.choice(WORDS, size=int(rng.integers(3, 12)))
            rows.append(CommentRow(cid, row.image_id, row.split, " ".join(words) + f" {cid}",
                                   ("reaction", "specific", "story")[k % 3], row.category, 1, f"{k % 40:016x}"))
            cid += 1
        comments[row.image_id] = rows
    return images, comments, blobs


def read_image(row: ImageRow) -> bytes:
    return STATE["blobs"][row.file]


def _ours(args) -> int:
    group, folder = args
    images, comments, options = STATE["by_id"], STATE["comments"], STATE["options"]
    samples = 0
    for spec in group:
        path = Path(folder) / spec.path
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            samples += write_shard(spec, images, comments, read_image, f, options).samples
    return samples


def members_of(spec: ShardSpec) -> list[tuple[str, bytes]]:
    """The (name, bytes) write_shard writes for `spec` in "stored" mode (a JPEG copied as is)."""
    out = []
    for image_id in spec.image_ids:
        rows = sorted(STATE["comments"][image_id], key=lambda c: c.comment_id)
        jpeg = read_image(STATE["by_id"][image_id])
        texts = [clean_text(c.text) for c in rows]
        if spec.kind == "clip_benchmark":
            out += [(f"{image_id}.jpg", jpeg),
                    (f"{image_id}.txt", ("\n".join(" ".join(t.split("\n")) for t in texts) + "\n").encode())]
            continue
        buf = io.BytesIO()
        write_shard(ShardSpec(spec.path, spec.kind, spec.split, (image_id,)), STATE["by_id"], STATE["comments"],
                    read_image, buf, STATE["options"])
        with tarfile.open(fileobj=io.BytesIO(buf.getvalue())) as tar:
            jsons = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.name.endswith(".json")}
        for c, text in zip(rows, texts):
            key = sample_key(image_id, c.comment_id)
            out += [(f"{key}.jpg", jpeg), (f"{key}.json", jsons[f"{key}.json"]), (f"{key}.txt", text.encode())]
    return out


def _baseline(args) -> int:
    group, folder = args
    samples = 0
    for spec in group:
        path = Path(folder) / spec.path
        path.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
            for name, data in STATE["members"][spec.path]:
                info = tarfile.TarInfo(name)
                info.size, info.mtime, info.mode, info.uname, info.gname = len(data), 0, 0o644, "", ""
                tar.addfile(info, io.BytesIO(data))
        samples += STATE["samples"][spec.path]
    return samples


def timed(pool, fn, groups, folder) -> tuple[float, int]:
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    start = time.perf_counter()
    samples = sum(pool.map(fn, [(g, folder) for g in groups], chunksize=1))
    return time.perf_counter() - start, samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--photos", type=int, default=50_000)
    parser.add_argument("--comments", type=int, default=150_000)
    parser.add_argument("--distinct", type=int, default=300)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mode", choices=["stored", "resized"], default="stored")
    parser.add_argument("--out", default=None, help="folder for the shards (default: a temporary one)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 2,000 photos, 6,000 comments, 1 round")
    args = parser.parse_args()
    if args.quick:
        args.photos, args.comments, args.distinct, args.rounds = 2000, 6000, 50, 1

    start = time.perf_counter()
    images, comments, blobs = build(args.photos, args.comments, args.distinct)
    options = ExportOptions(image_mode=args.mode)
    specs = plan(images, {k: len(v) for k, v in comments.items()}, options)
    STATE.update(by_id={r.image_id: r for r in images}, comments=comments, blobs=blobs, options=options)
    size = sum(len(blobs[r.file]) * len(comments[r.image_id]) for r in images)
    print(f"{len(images):,} photos, {sum(len(v) for v in comments.values()):,} comments, {len(specs)} shards "
          f"({sum(s.kind == 'clip_benchmark' for s in specs)} clip_benchmark), {args.distinct} distinct JPEGs of "
          f"{statistics.mean(len(b) for b in set(blobs.values())) / 1024:.1f} KiB, ~{size / 2**30:.2f} GiB of images "
          f"in the split shards; built in {time.perf_counter() - start:.1f} s; mode {args.mode}")
    if args.mode == "stored":
        start = time.perf_counter()
        STATE["members"] = {s.path: members_of(s) for s in specs}
        STATE["samples"] = {s.path: len(s.image_ids) if s.kind == "clip_benchmark" else
                            sum(len(comments[i]) for i in s.image_ids) for s in specs}
        print(f"baseline members prepared in {time.perf_counter() - start:.1f} s (not timed)")

    tmp = Path(args.out or tempfile.mkdtemp(prefix="bench-export-"))
    context = multiprocessing.get_context("fork")
    try:
        if args.mode == "stored":  # the baseline writes what write_shard writes
            with context.Pool(1) as pool:
                timed(pool, _ours, [specs[:2]], str(tmp / "a"))
                timed(pool, _baseline, [specs[:2]], str(tmp / "b"))
            for s in specs[:2]:
                assert (tmp / "a" / s.path).read_bytes() == (tmp / "b" / s.path).read_bytes(), s.path
        for workers in [int(w) for w in args.workers.split(",")]:
            groups = [specs[i::workers] for i in range(workers)]
            ours, base = [], []
            with context.Pool(workers) as pool:
                pool.map(abs, range(workers), chunksize=1)  # started
                for _ in range(args.rounds):
                    t, n = timed(pool, _ours, groups, str(tmp / "ours"))
                    ours.append(n / t)
                    if args.mode == "stored":
                        t, n2 = timed(pool, _baseline, groups, str(tmp / "tar"))
                        assert n2 == n
                        base.append(n / t)
            line = f"workers={workers}: write_shard {statistics.median(ours):,.0f} samples/s"
            if base:
                line += (f", tarfile {statistics.median(base):,.0f} samples/s, "
                         f"ratio {statistics.median(ours) / statistics.median(base):.2f}")
            print(line + f"  (rounds: {', '.join(f'{x:,.0f}' for x in ours)})")
        results = []
        for spec in specs:  # the results metadata_files needs, from one in-memory pass
            results.append(write_shard(spec, STATE["by_id"], comments, read_image, _Discard(), options))
        snapshot = {"name": "bench", "version": 1, "created_at": "2026-01-01T00:00:00+00:00", "seed": 0,
                    "ratios": {"train": 0.8, "val": 0.1, "test": 0.1}, "counts": None, "projects": [],
                    "categories": [], "comment_types": [], "min_sets": 1, "kept_from": None}
        start = time.perf_counter()
        files = metadata_files(snapshot, images, comments, results, options)
        print(f"metadata_files: {time.perf_counter() - start:.1f} s for {len(files)} files, "
              f"{sum(len(b) for b in files.values()) / 2**20:.1f} MiB (single process)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class _Discard:
    def write(self, data) -> int:
        return len(data)


if __name__ == "__main__":
    main()
