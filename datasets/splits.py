"""Splitting a snapshot's photos into train / val / test: by image, deterministic, stratified.

Pure functions over plain rows (no database), so the rules can be read and tested on their own:

- Each photo's place in the draw is SHA-256 of "<seed>:<photo sha256>": the same seed and photos
  give the same splits on any machine, in any order of the input, and adding photos moves none
  of the others' order.
- Stratified by category: each category gets its share of val and test (ratios per category;
  absolute counts are shared out over the categories in proportion to their size).
- `fixed`: photos whose split is decided already (a previous version's val and test photos,
  "keep splits"); in a category that has any, new photos go to train, so val and test stay the
  same photos across versions (a category new in this version is split as usual).
- Groups of photos that must share a split: the same pixels (`pixel_sha256`) now, and any groups
  passed as `duplicate_groups`: the hook for curation's perceptual / semantic near-duplicates.
  A group with a member in test goes to test as a whole, else with one in val to val: a copy of
  an evaluation photo never sits in train.
"""
from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

TRAIN, VAL, TEST = "train", "val", "test"
DEFAULT_RATIOS = {TRAIN: 0.8, VAL: 0.1, TEST: 0.1}


@dataclass(frozen=True)
class SplitRow:
    image_id: str
    sha256: str
    pixel_sha256: str
    category: str  # slug, "" for none


def draw_key(seed: int, sha256: str) -> str:
    return hashlib.sha256(f"{seed}:{sha256}".encode()).hexdigest()


def share_out(total: int, sizes: dict[str, int]) -> dict[str, int]:
    """`total` shared over the keys in proportion to `sizes` (largest remainder; ties by key),
    never more than a key's size."""
    whole = sum(sizes.values())
    if not whole or not total:
        return {k: 0 for k in sizes}
    exact = {k: total * n / whole for k, n in sizes.items()}
    out = {k: min(sizes[k], int(v)) for k, v in exact.items()}
    rest = total - sum(out.values())
    for k in sorted(sizes, key=lambda k: (-(exact[k] - int(exact[k])), k)):
        if rest <= 0:
            break
        if out[k] < sizes[k]:
            out[k] += 1
            rest -= 1
    return out


def _groups(rows: list[SplitRow], duplicate_groups: Iterable[Iterable[str]] | None) -> dict[str, str]:
    """{image id: its group's root} over same pixels and the given duplicate groups (union-find)."""
    parent = {r.image_id: r.image_id for r in rows}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    by_pixels: dict[str, str] = {}
    for r in rows:
        if r.pixel_sha256 in by_pixels:
            union(by_pixels[r.pixel_sha256], r.image_id)
        else:
            by_pixels[r.pixel_sha256] = r.image_id
    for group in duplicate_groups or ():
        members = [str(m) for m in group if str(m) in parent]
        for other in members[1:]:
            union(members[0], other)
    return {r.image_id: find(r.image_id) for r in rows}


def assign_splits(rows: Iterable[SplitRow], *, seed: int = 0, ratios: dict | None = None, counts: dict | None = None,
                  fixed: dict[str, str] | None = None,
                  duplicate_groups: Iterable[Iterable[str]] | None = None) -> dict[str, str]:
    """{image id: "train" | "val" | "test"} for `rows` (see the module's doc). `ratios` is
    {"train", "val", "test"} summing to 1 (default 0.8/0.1/0.1); `counts` is {"val", "test"}
    photos in all (instead of ratios). `fixed` is {image id: split} for kept photos (ids not in
    `rows` are ignored); `duplicate_groups` lists sets of image ids that must share a split."""
    rows = sorted(rows, key=lambda r: draw_key(seed, r.sha256))
    fixed = {k: v for k, v in (fixed or {}).items() if v in (VAL, TEST)}
    by_category: dict[str, list[SplitRow]] = defaultdict(list)
    for r in rows:
        by_category[r.category].append(r)
    if counts is not None:
        targets = {
            split: share_out(int(counts.get(split, 0)), {c: len(rs) for c, rs in by_category.items()})
            for split in (VAL, TEST)
        }
    else:
        ratios = ratios or DEFAULT_RATIOS
        targets = {split: {c: round(len(rs) * float(ratios.get(split, 0))) for c, rs in by_category.items()}
                   for split in (VAL, TEST)}
    result: dict[str, str] = {}
    for category, members in by_category.items():
        kept = [r for r in members if r.image_id in fixed]
        for r in kept:
            result[r.image_id] = fixed[r.image_id]
        fresh = [r for r in members if r.image_id not in fixed]
        if kept:  # val and test stay the kept photos: new ones train
            n_test = n_val = 0
        else:
            n_test, n_val = targets[TEST][category], targets[VAL][category]
        for i, r in enumerate(fresh):
            result[r.image_id] = TEST if i < n_test else VAL if i < n_test + n_val else TRAIN
    # A group shares the strictest split of its members: test, then val, then train.
    root_of = _groups(rows, duplicate_groups)
    rank = {TRAIN: 0, VAL: 1, TEST: 2}
    strictest: dict[str, str] = {}
    for image_id, root in root_of.items():
        if rank[result[image_id]] > rank[strictest.get(root, TRAIN)]:
            strictest[root] = result[image_id]
    return {image_id: strictest.get(root_of[image_id], result[image_id]) for image_id in result}
