"""A generated, learnable snapshot for the trainers' tests and bench/train.py: photos of a
coloured shape on a plain background, with Korean comments that say what is in them
("빨간 동그라미가 있네요"). Written with datasets/export/layout.py's pure functions (the export's
own plan, tar writer and metadata files), so the trainers read the real shard contract.

Every photo shows one of COLOURS x SHAPES (20 concepts); its position, size, background and noise
vary. The test and val splits hold one photo of each concept first (so retrieval on them is
well posed: no two test photos are the same concept), the rest is train. No Django, no database.
"""
from __future__ import annotations

import hashlib
import io
import random
import uuid
from pathlib import Path

from PIL import Image, ImageDraw

from datasets.export.layout import (
    CommentRow,
    ExportOptions,
    ImageRow,
    metadata_files,
    plan,
    sha256sums,
    write_shard,
)

# (slug, the adjective before a noun, RGB)
COLOURS = [("red", "빨간", (220, 30, 30)), ("blue", "파란", (30, 60, 220)), ("yellow", "노란", (235, 210, 20)),
           ("green", "초록색", (30, 170, 60)), ("black", "검은", (15, 15, 15))]
# (slug, noun, the noun with its subject particle)
SHAPES = [("circle", "동그라미", "동그라미가"), ("square", "네모", "네모가"), ("triangle", "세모", "세모가"),
          ("star", "별", "별이")]
TEMPLATES = ["{adj} {subj} 있네요", "와 {adj} {noun}다!", "사진에 {adj} {subj} 보여요", "{adj} {noun} 귀엽다",
             "여기 {adj} {subj} 있어요"]
CONCEPTS = [(c, s) for c in range(len(COLOURS)) for s in range(len(SHAPES))]


def comment_text(colour: int, shape: int, k: int) -> str:
    _, adj, _ = COLOURS[colour]
    _, noun, subj = SHAPES[shape]
    return TEMPLATES[k % len(TEMPLATES)].format(adj=adj, noun=noun, subj=subj)


def draw_photo(colour: int, shape: int, rng: random.Random, size: int = 64) -> bytes:
    """A JPEG of one coloured shape, near the middle at a random size, on a light random background."""
    bg = tuple(rng.randint(170, 255) for _ in range(3))
    img = Image.new("RGB", (size, size), bg)
    draw = ImageDraw.Draw(img)
    r = rng.uniform(0.28, 0.4) * size
    cx, cy = (0.5 + rng.uniform(-0.08, 0.08)) * size, (0.5 + rng.uniform(-0.08, 0.08)) * size
    fill = tuple(max(0, min(255, v + rng.randint(-20, 20))) for v in COLOURS[colour][2])
    kind = SHAPES[shape][0]
    if kind == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif kind == "square":
        draw.rectangle([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif kind == "triangle":
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fill)
    else:
        import math

        points = [(cx + (r if i % 2 == 0 else r * 0.45) * math.sin(i * math.pi / 5),
                   cy - (r if i % 2 == 0 else r * 0.45) * math.cos(i * math.pi / 5)) for i in range(10)]
        draw.polygon(points, fill=fill)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def write_learnable_snapshot(root, *, photos: int = 200, comments_per_photo: int = 2, seed: int = 0,
                             size: int = 64, name: str = "shapes", version: int = 1,
                             max_samples: int = 64) -> Path:
    """Write the snapshot under `root`/<name>/v<version> and return that folder. The first 20
    photos (one per concept) are the test split, the next 20 the val split, the rest train
    (photos >= 60); each photo has `comments_per_photo` different comments."""
    n = len(CONCEPTS)
    if photos < 3 * n:
        raise ValueError(f"photos must be at least {3 * n} (one test and one val photo per concept, and train).")
    rng = random.Random(seed)
    images, comments, data = [], {}, {}
    comment_id = 1
    for i in range(photos):
        colour, shape = CONCEPTS[i % n]
        split = "test" if i < n else "val" if i < 2 * n else "train"
        image_id = str(uuid.UUID(int=(seed << 64) + i + 1))
        jpeg = draw_photo(colour, shape, rng, size)
        digest = hashlib.sha256(jpeg).hexdigest()
        path = f"images/{digest[:2]}/{image_id}.jpg"
        data[path] = jpeg
        shape_slug = SHAPES[shape][0]
        images.append(ImageRow(
            image_id=image_id, split=split, sha256=digest, pixel_sha256=hashlib.sha256(digest.encode()).hexdigest(),
            width=size, height=size, category=shape_slug, category_name=shape_slug.title(),
            subcategory=COLOURS[colour][0], subcategory_name=COLOURS[colour][0].title(), licence="cc0-1.0",
            attribution_required=False, attribution="", source="generated", file=path))
        first = rng.randrange(len(TEMPLATES))
        comments[image_id] = [
            CommentRow(comment_id + k, image_id, split, comment_text(colour, shape, first + k),
                       ("reaction", "specific")[k % 2], shape_slug, 1, f"labeler{(i + k) % 7:02d}")
            for k in range(comments_per_photo)]
        comment_id += comments_per_photo
    options = ExportOptions(max_samples=max_samples)
    by_id = {r.image_id: r for r in images}
    out = Path(root) / name / f"v{version}"
    results, checksums = [], {}
    for spec in plan(images, {k: len(v) for k, v in comments.items()}, options):
        target = out / spec.path
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as f:
            result = write_shard(spec, by_id, comments, lambda row: data[row.file], f, options)
        results.append(result)
        checksums[spec.path] = result.sha256
    snapshot = {"name": name, "version": version, "created_at": "2026-11-29T00:00:00+00:00", "seed": seed,
                "ratios": None, "counts": {"train": photos - 2 * n, "val": n, "test": n}, "projects": [],
                "categories": [], "comment_types": [], "min_sets": 1, "kept_from": None,
                "licences": {"cc0-1.0": {"name": "CC0 1.0", "url": "https://creativecommons.org/publicdomain/zero/1.0/"}}}
    for rel, content in metadata_files(snapshot, images, comments, results, options).items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_bytes(content)
        checksums[rel] = hashlib.sha256(content).hexdigest()
    (out / "SHA256SUMS").write_bytes(sha256sums(checksums))
    return out
