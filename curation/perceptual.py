"""Perceptual duplicate photos: signatures, fast Hamming search, groups with a suggested keeper.

Pure functions over plain data (ids, integers, numpy arrays, PIL images); no Django. A chunked
Celery task builds one `PerceptualIndex` over every signature of the scope (Image.phash and the
25 window hashes, which the wiring stores next to it: `signature(thumbnail)` computes both),
calls `find_pairs` with the ids of its chunk as queries and `confirm_pairs` on what it finds
(opening thumbnails); a last step feeds all pairs to `group_pairs` (union-find, keeper).

Signature. The catalogue already stores `Image.phash`: imagehash's 64-bit DCT pHash of the
320 px thumbnail box-shrunk to 32x32 (datasets.imaging._perceptual_hash), as a signed 64-bit
integer. It is robust to resizing, JPEG re-encoding (q30-95) and +-20 % brightness (at most 6 bits
on generated photos), but not to cropping: a 10 % off-centre crop moves it 14-26 bits, as far as
two different photos (16 and more). So the signature adds `WINDOWS` = 25 window hashes: the same
pHash of 91.5 % x 91.5 % windows of the thumbnail on a 5 x 5 grid of offsets (0, 2.1, 4.25, 6.4,
8.5 % of each side). A copy cropped by 5-10 % is, up to a ~1 % shift and a 3.5 % scale, one of
those windows of its original, and its full-image hash lands within 8 bits of that window's hash
(on 300 generated photos: 8 at most; a 4 x 4 grid of 92 % windows missed 1 % of 10 % crops at
12 bits). Cost per photo: 26 pHashes of a 32x32 array in one batched DCT, ~2-3 ms.

Decision rule, two stages:
 1. candidates (hashes only, from the database): photos a and b when
        min( d(full_a, full_b), min_w d(full_a, window_b[w]), min_w d(full_b, window_a[w]) ) <= 8
    (d: Hamming distance; `RADIUS`);
 2. confirmation (the two stored thumbnails, for candidate pairs only): `confirm(a, b)`, the best
    normalised cross-correlation of a's 48x48 grey thumbnail (160 px first) with windows of b
    (90, 93 and 96 % on a 5 x 5 grid of offsets, and the whole) and the other way round,
    >= `CONFIRM_THRESHOLD` = 0.8; ~10 ms a pair. On generated photos the copies of the issue's
    transforms score 0.96-1.0 and the false candidates of stage 1 (different photos at exactly
    8 bits through a window: 3-4 per 2,000 photos, ~1e-6 of photo pairs, which at 1,000,000
    photos would be many) 0.34-0.53.
Measured in bench/curation.py (precision and recall per transform, both stages) and
tests/test_curation_detect.py.

Search. Multi-index hashing (Norouzi et al.): the 64 bits are split into 3 blocks (22, 21, 21
bits); two hashes within 8 bits differ by at most 2 bits in at least one block (pigeonhole:
3 x 3 > 8), so a query probes, per block, its own key and the 253 keys within 2 bits in a
direct table of bucket offsets (a counting sort of the block keys) and verifies the candidates
with a popcount. Exact (no miss, proven and tested against a brute-force scan), and on 1,000,000
uniformly random hashes a query checks ~180 candidates instead of 1,000,000. A BK-tree was the
alternative: pure Python per node, and at radius 8 of 64 bits it visits a large part of the tree.
The issue's 9 exact blocks of ~7 bits would each hold ~8,000 of 1,000,000 hashes per bucket.
Real hashes are not uniform, so buckets are uneven; bench/curation.py reports the time.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from itertools import combinations

import numpy as np
from PIL import Image

from datasets.imaging import phash_arrays

RADIUS = 8
CONFIRM_THRESHOLD = 0.8
THUMB_SIDE = 320  # datasets.imaging.Limits.thumb_side: the stored hash is of that thumbnail
WINDOW_SIZE = 0.915
WINDOW_STEPS = 5
WINDOWS = WINDOW_STEPS * WINDOW_STEPS


# ---------------------------------------------------------------------------------------- hashes

def to_unsigned(values) -> np.ndarray:
    """Signed 64-bit hashes (as stored in a BigIntegerField) or Python ints -> uint64 array."""
    if not isinstance(values, np.ndarray):
        return np.fromiter((int(v) & 0xFFFFFFFFFFFFFFFF for v in values), dtype=np.uint64)
    if values.dtype == np.int64:
        return values.view(np.uint64)
    if values.dtype != np.uint64:
        raise ValueError(f"hashes must be 64-bit integers, not {values.dtype}")
    return values


def to_signed(value: int) -> int:
    value = int(value) & 0xFFFFFFFFFFFFFFFF
    return value - (1 << 64) if value >= (1 << 63) else value


def hamming(a: int, b: int) -> int:
    return ((int(a) ^ int(b)) & 0xFFFFFFFFFFFFFFFF).bit_count()


def _thumbnail(img: Image.Image) -> Image.Image:
    """The ingest's thumbnail (longest side 320, box filter), in grey; smaller images as they are."""
    img = img.convert("L")
    w, h = img.size
    if max(w, h) > THUMB_SIDE:
        scale = THUMB_SIDE / max(w, h)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        factor = int(1 / scale / 2)
        if factor >= 2:
            img = img.reduce(factor)
        img = img.resize(size, Image.Resampling.BOX)
    return img


@dataclass(frozen=True)
class Signature:
    """`phash`: the 64-bit hash as stored on Image (signed); `windows`: the 25 window hashes
    (signed, grid order: rows of offsets top to bottom, left to right)."""
    phash: int
    windows: tuple[int, ...]


def signature(img: Image.Image) -> Signature:
    """The signature of a photo: pass the stored thumbnail (or the stored file, or the original:
    all give the same hash within a bit or two)."""
    thumb = _thumbnail(img)
    w, h = thumb.size
    boxes = [(0.0, 0.0, float(w), float(h))]
    offsets = np.linspace(0.0, 1.0 - WINDOW_SIZE, WINDOW_STEPS)
    for oy in offsets:
        for ox in offsets:
            boxes.append((ox * w, oy * h, (ox + WINDOW_SIZE) * w, (oy + WINDOW_SIZE) * h))
    arrays = np.stack([
        np.asarray(thumb.resize((32, 32), Image.Resampling.BOX, box=box), dtype=np.float64) for box in boxes
    ])
    hashes = [to_signed(int(v)) for v in phash_arrays(arrays)]
    return Signature(phash=hashes[0], windows=tuple(hashes[1:]))


# ---------------------------------------------------------------------------------------- search

def _block_layout(blocks: int) -> list[tuple[int, int]]:
    """[(shift, width)] covering 64 bits, widest blocks first."""
    base, extra = divmod(64, blocks)
    out, shift = [], 64
    for b in range(blocks):
        width = base + (1 if b < extra else 0)
        shift -= width
        out.append((shift, width))
    return out


def _flip_masks(width: int, radius: int) -> np.ndarray:
    masks = [0]
    for r in range(1, radius + 1):
        for bits in combinations(range(width), r):
            masks.append(sum(1 << b for b in bits))
    return np.asarray(masks, dtype=np.int64)


class HammingIndex:
    """Multi-index hashing over uint64 hashes (see the module's doc). `search` is exact for
    any radius < 3 * (block radius + 1); the block radius follows from `radius` and `blocks`."""

    def __init__(self, hashes, blocks: int = 3):
        self.hashes = to_unsigned(hashes)
        self.blocks = blocks
        self.layout = _block_layout(blocks)
        self._order, self._starts = [], []
        for shift, width in self.layout:
            keys = ((self.hashes >> np.uint64(shift)) & np.uint64((1 << width) - 1)).astype(np.int64)
            order = np.argsort(keys, kind="stable")
            self._order.append(order.astype(np.int32) if len(keys) < 2**31 else order)
            counts = np.bincount(keys, minlength=1 << width)
            starts = np.zeros((1 << width) + 1, dtype=np.int64)
            np.cumsum(counts, out=starts[1:])
            self._starts.append(starts)

    def __len__(self) -> int:
        return len(self.hashes)

    def search(self, queries, radius: int = RADIUS, chunk: int = 2048) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every (query index, hash index, distance) with distance <= radius, sorted by query then
        hash index."""
        q = to_unsigned(queries)
        block_radius = radius // self.blocks
        masks = {width: _flip_masks(width, block_radius) for _, width in self.layout}
        out_q, out_h, out_d = [], [], []
        for start in range(0, len(q), chunk):
            qc = q[start:start + chunk]
            found_q, found_h = [], []
            for (shift, width), order, starts in zip(self.layout, self._order, self._starts):
                keys = ((qc >> np.uint64(shift)) & np.uint64((1 << width) - 1)).astype(np.int64)
                probes = keys[:, None] ^ masks[width][None, :]
                lo, hi = starts[probes], starts[probes + 1]
                lengths = (hi - lo).ravel()
                total = int(lengths.sum())
                if not total:
                    continue
                ends = np.cumsum(lengths)
                positions = np.arange(total, dtype=np.int64) - np.repeat(ends - lengths, lengths) + np.repeat(lo.ravel(), lengths)
                found_h.append(order[positions].astype(np.int64))
                found_q.append(np.repeat(np.arange(len(qc), dtype=np.int64), (hi - lo).sum(axis=1)))
            if not found_h:
                continue
            fq, fh = np.concatenate(found_q), np.concatenate(found_h)
            dist = np.bitwise_count(qc[fq] ^ self.hashes[fh])
            keep = dist <= radius
            fq, fh, dist = fq[keep], fh[keep], dist[keep]
            key = fq * len(self.hashes) + fh
            key, first = np.unique(key, return_index=True)  # a pair can match in several blocks
            out_q.append(fq[first] + start)
            out_h.append(fh[first])
            out_d.append(dist[first].astype(np.int64))
        if not out_q:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, empty
        return np.concatenate(out_q), np.concatenate(out_h), np.concatenate(out_d)


def brute_force_search(hashes, queries, radius: int = RADIUS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The baseline: a numpy popcount of every query against every hash (same output as
    HammingIndex.search)."""
    h, q = to_unsigned(hashes), to_unsigned(queries)
    out_q, out_h, out_d = [], [], []
    for i, value in enumerate(q):
        dist = np.bitwise_count(h ^ value)
        hit = np.flatnonzero(dist <= radius)
        out_q.append(np.full(len(hit), i, dtype=np.int64))
        out_h.append(hit.astype(np.int64))
        out_d.append(dist[hit].astype(np.int64))
    if not out_q:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    return np.concatenate(out_q), np.concatenate(out_h), np.concatenate(out_d)


# ---------------------------------------------------------------------------------------- pairs

@dataclass(frozen=True)
class PerceptualPair:
    """Two photos within `distance` bits; `via` says which hashes: "full" (both whole photos) or
    "window" (`a`'s whole photo against a window of `b`: `a` looks like a crop of `b`);
    `confirmation`: stage 2's correlation once `confirm_pairs` has run."""
    a: str
    b: str
    distance: int
    via: str
    confirmation: float | None = None

    @property
    def similarity(self) -> float:
        return 1.0 - self.distance / 64.0


class PerceptualIndex:
    """Every photo's whole-image hash and window hashes in one HammingIndex."""

    def __init__(self, ids: Sequence, phashes, windows=None):
        self.ids = [str(i) for i in ids]
        self.position = {image_id: n for n, image_id in enumerate(self.ids)}
        full = to_unsigned(phashes)
        if len(full) != len(self.ids):
            raise ValueError("ids and phashes differ in length")
        parts, owners = [full], [np.arange(len(full), dtype=np.int64)]
        if windows is not None and len(self.ids):
            win = to_unsigned(np.asarray(windows, dtype=np.int64).reshape(len(self.ids), -1).ravel())
            per = len(win) // len(self.ids)
            parts.append(win)
            owners.append(np.repeat(np.arange(len(full), dtype=np.int64), per))
        self.full = full
        self.owner = np.concatenate(owners)
        self.is_window = np.concatenate([np.zeros(len(full), bool)] + [np.ones(len(p), bool) for p in parts[1:]])
        self.index = HammingIndex(np.concatenate(parts))

    @classmethod
    def from_signatures(cls, ids: Sequence, signatures: Sequence[Signature]) -> PerceptualIndex:
        return cls(ids, [s.phash for s in signatures], [list(s.windows) for s in signatures])

    def find_pairs(self, query_ids: Iterable | None = None, radius: int = RADIUS) -> list[PerceptualPair]:
        """The duplicate pairs that involve a query photo (all photos by default), each pair once
        with its smallest distance; a == the query side for "window" pairs."""
        if query_ids is None:
            positions = np.arange(len(self.ids), dtype=np.int64)
        else:
            positions = np.asarray([self.position[str(i)] for i in query_ids], dtype=np.int64)
        qi, hi, dist = self.index.search(self.full[positions], radius)
        src, dst = positions[qi], self.owner[hi]
        window = self.is_window[hi]
        best: dict[tuple[int, int], tuple[int, str, int, int]] = {}
        for s, t, d, w in zip(src.tolist(), dst.tolist(), dist.tolist(), window.tolist()):
            if s == t:
                continue
            key = (min(s, t), max(s, t))
            via = "window" if w else "full"
            if key not in best or d < best[key][0] or (d == best[key][0] and via == "full"):
                best[key] = (d, via, s, t)
        return [PerceptualPair(self.ids[s], self.ids[t], d, via) for (d, via, s, t) in
                (best[k] for k in sorted(best))]


def _zscore(arr: np.ndarray) -> np.ndarray:
    arr = arr - arr.mean()
    return arr / (np.linalg.norm(arr) + 1e-9)


_CONFIRM_SIDE = 48
_CONFIRM_SIZES = (0.9, 0.93, 0.96, 1.0)
_CONFIRM_STEPS = 5


def _best_correlation(a: Image.Image, b: Image.Image) -> float:
    """Best correlation of all of `a` with a window of `b` (a is the crop)."""
    target = _zscore(np.asarray(a.resize((_CONFIRM_SIDE, _CONFIRM_SIDE), Image.Resampling.BOX), dtype=np.float64))
    w, h = b.size
    windows = []
    for size in _CONFIRM_SIZES:
        offsets = np.linspace(0.0, 1.0 - size, _CONFIRM_STEPS) if size < 1 else [0.0]
        for oy in offsets:
            for ox in offsets:
                box = (ox * w, oy * h, (ox + size) * w, (oy + size) * h)
                windows.append(np.asarray(b.resize((_CONFIRM_SIDE, _CONFIRM_SIDE), Image.Resampling.BOX, box=box),
                                          dtype=np.float64))
    stack = np.stack(windows).reshape(len(windows), -1)
    stack = stack - stack.mean(axis=1, keepdims=True)
    stack /= np.linalg.norm(stack, axis=1, keepdims=True) + 1e-9
    return float((stack @ target.ravel()).max())


def confirm(a: Image.Image, b: Image.Image) -> float:
    """Stage 2 of the decision rule: the best correlation (-1..1) of either photo with a window
    of the other, on grey thumbnails (pass the stored thumbnails). >= CONFIRM_THRESHOLD: a copy."""
    ta, tb = (_thumbnail(x).reduce(2) if max(x.size) > 2 * 96 else _thumbnail(x) for x in (a, b))
    return round(max(_best_correlation(ta, tb), _best_correlation(tb, ta)), 4)


def confirm_pairs(pairs: Iterable[PerceptualPair], thumbnail: Callable[[str], Image.Image],
                  threshold: float = CONFIRM_THRESHOLD) -> list[PerceptualPair]:
    """Stage 2 over candidate pairs: those whose `confirm` reaches `threshold`, with the score in
    `confirmation`. `thumbnail(image_id)` opens a photo's stored thumbnail (each opened once)."""
    cache: dict[str, Image.Image] = {}

    def get(image_id: str) -> Image.Image:
        if image_id not in cache:
            cache[image_id] = _thumbnail(thumbnail(image_id))
        return cache[image_id]

    kept = []
    for p in pairs:
        score = confirm(get(p.a), get(p.b))
        if score >= threshold:
            kept.append(replace(p, confirmation=score))
    return kept


# ---------------------------------------------------------------------------------------- groups

@dataclass(frozen=True)
class PhotoFacts:
    """What choosing the keeper looks at. `created`: anything that sorts (a datetime, an
    ISO string, a sequence number); `licence`: a code ranked by `licence_rank`."""
    image_id: str
    pixels: int
    licence: str = ""
    labeled: bool = False
    created: object = 0


@dataclass
class DuplicateGroup:
    """Photos that are copies of one another (connected by pairs). `keeper` first in `members`;
    `pairs` are the evidence (ids, distance, via); `score`: the best pair's similarity."""
    keeper: str
    members: list[str]
    pairs: list[PerceptualPair] = field(default_factory=list)
    score: float = 0.0

    def evidence(self) -> dict:
        return {
            "keeper": self.keeper,
            "members": self.members,
            "pairs": [{"a": p.a, "b": p.b, "distance": p.distance, "via": p.via, "confirmation": p.confirmation}
                      for p in self.pairs],
            "radius": RADIUS,
        }


def keeper_key(facts: PhotoFacts, licence_rank: dict[str, int]):
    """Largest (pixels), then best licence (lowest rank; unknown last), then already labeled,
    then oldest, then id (stable)."""
    return (-facts.pixels, licence_rank.get(facts.licence, len(licence_rank)), not facts.labeled,
            facts.created, facts.image_id)


def group_pairs(pairs: Iterable[PerceptualPair], facts: dict[str, PhotoFacts] | None = None,
                licence_rank: dict[str, int] | None = None) -> list[DuplicateGroup]:
    """Union-find over `pairs`; a group per connected set of two or more photos, its keeper
    chosen by `keeper_key` (photos without facts rank last). Largest groups first."""
    facts, licence_rank = facts or {}, licence_rank or {}
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    pairs = list(pairs)
    for p in pairs:
        ra, rb = find(p.a), find(p.b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    members: dict[str, list[str]] = {}
    for x in list(parent):
        members.setdefault(find(x), []).append(x)
    by_root: dict[str, list[PerceptualPair]] = {}
    for p in pairs:
        by_root.setdefault(find(p.a), []).append(p)
    groups = []
    for root, ids in members.items():
        def key(i: str):
            f = facts.get(i)
            return (1, i) if f is None else (0, keeper_key(f, licence_rank))
        ordered = sorted(ids, key=key)
        evidence = sorted(by_root.get(root, []), key=lambda p: (p.distance, p.a, p.b))
        groups.append(DuplicateGroup(keeper=ordered[0], members=ordered, pairs=evidence,
                                     score=max((p.similarity for p in evidence), default=0.0)))
    groups.sort(key=lambda g: (-len(g.members), g.keeper))
    return groups
