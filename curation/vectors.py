"""Embedding vectors: how they are stored (float16 segments on the media storage) and searched
for near-duplicates at the scale of a catalogue (1,000,000+ vectors on a small CPU machine).

No torch and no Django models here (numpy and faiss-cpu only), so the platform's curation worker
runs the semantic duplicate tier without the ML install.

Storage: every embedding chunk writes one *segment*, an uncompressed `.npz` on Django's default
storage (local disk or S3) holding `ids` (the subjects' ids as text) and `vectors` (float16,
L2-normalised, one row each); a `curation.models.EmbeddingSegment` row records the model, the kind,
the count and the path, and an `Embedding` row per subject points at its (segment, row). float16
halves the bytes (1,000,000 x 512 is 1 GB) at a cosine error below 1e-3, far under any duplicate
threshold.

Search (`near_duplicates`): SemDeDup's recipe (facebookresearch/SemDeDup): spherical k-means
(faiss.Kmeans) cuts the vectors into about sqrt(n) clusters; within a cluster every pair is
compared with one matrix product (BLAS; ~90 GFLOP/s on 2 cores against ~15 for faiss' IVF scan of
the same lists), and pairs with cosine >= threshold are kept. Unlike SemDeDup, a vector is also
compared with the members of its `probes` nearest clusters, not only its own: two near-copies
that k-means put on either side of a border are still found (recall of planted pairs and of exact
all-pairs search ~0.99+ in bench/curation_embed.py). Below `exact_below` vectors the search is
exact (one product over all).
"""
from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# Query rows x member rows compared per matrix product (float32: 128 MB).
BLOCK_CELLS = 32 * 1024 * 1024


def normalise(vectors) -> np.ndarray:
    """float32 rows of unit length (zero rows stay zero)."""
    x = np.asarray(vectors, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError("vectors must be a 2-d array")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


# ---------------------------------------------------------------------------------------- segments

def pack(ids: Sequence, vectors) -> bytes:
    """One segment's bytes: ids (text) and unit vectors as float16."""
    ids = np.asarray([str(i) for i in ids])
    vec = normalise(vectors).astype(np.float16)
    if len(ids) != len(vec):
        raise ValueError("ids and vectors differ in length")
    buf = io.BytesIO()
    np.savez(buf, ids=ids, vectors=vec)
    return buf.getvalue()


def unpack(data: bytes) -> tuple[list[str], np.ndarray]:
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        return [str(i) for i in z["ids"]], z["vectors"]


# ---------------------------------------------------------------------------------------- search

@dataclass(frozen=True)
class Pairs:
    """Pairs of rows (a < b) with their cosine similarity; `clusters`: each row's k-means
    cluster (-1 when the search was exact)."""
    a: np.ndarray
    b: np.ndarray
    similarity: np.ndarray
    clusters: np.ndarray

    def __len__(self) -> int:
        return len(self.a)


def _unique_pairs(a: np.ndarray, b: np.ndarray, s: np.ndarray, n: int):
    lo, hi = np.minimum(a, b).astype(np.int64), np.maximum(a, b).astype(np.int64)
    keep = lo != hi
    lo, hi, s = lo[keep], hi[keep], s[keep]
    key = lo * n + hi
    key, first = np.unique(key, return_index=True)
    return lo[first], hi[first], s[first]


def _block_pairs(x: np.ndarray, rows: np.ndarray, members: np.ndarray, threshold: float, out: list) -> None:
    """Pairs (row, member) with cosine >= threshold, one matrix product per block of rows."""
    if not len(rows) or not len(members):
        return
    m = x[members]
    step = max(1, BLOCK_CELLS // len(members))
    for start in range(0, len(rows), step):
        q = rows[start:start + step]
        sims = x[q] @ m.T
        qi, mi = np.nonzero(sims >= threshold)
        if len(qi):
            out.append((q[qi], members[mi], sims[qi, mi]))


def exact_pairs(vectors, threshold: float, queries=None) -> Pairs:
    """Every pair with cosine >= threshold (all against all: the baseline, and small sets)."""
    x = normalise(vectors)
    rows = np.arange(len(x)) if queries is None else np.asarray(queries, dtype=np.int64)
    found: list = []
    _block_pairs(x, rows, np.arange(len(x)), threshold, found)
    return _collect(found, len(x), np.full(len(x), -1, dtype=np.int64))


def _collect(found: list, n: int, clusters: np.ndarray) -> Pairs:
    if not found:
        empty = np.zeros(0, dtype=np.int64)
        return Pairs(empty, empty, np.zeros(0, dtype=np.float32), clusters)
    a = np.concatenate([f[0] for f in found])
    b = np.concatenate([f[1] for f in found])
    s = np.concatenate([f[2] for f in found])
    a, b, s = _unique_pairs(a, b, s, n)
    return Pairs(a, b, s.astype(np.float32), clusters)


def near_duplicates(vectors, threshold: float, *, queries=None, clusters: int | None = None,
                    probes: int = 8, exact_below: int = 20_000, seed: int = 1, iterations: int = 20,
                    train_per_cluster: int = 100) -> Pairs:
    """Pairs of rows with cosine >= `threshold` (SemDeDup-style, see the module docstring).

    `queries`: the rows to find partners for (default all), each compared with every row of its
    `probes` nearest clusters (so pairs among new rows and between new and old rows are found).
    `clusters`: k-means clusters (default ~sqrt(n)); trained on `train_per_cluster` rows a cluster."""
    import faiss  # the platform's worker has faiss-cpu; nothing else here needs it

    x = normalise(vectors)
    n, d = x.shape
    if n < 2:
        return _collect([], n, np.full(n, -1, dtype=np.int64))
    if n <= exact_below:
        return exact_pairs(x, threshold, queries)
    k = clusters or max(2, int(math.sqrt(n)))
    k = min(k, n // 2)
    rng = np.random.default_rng(seed)
    sample = x[rng.choice(n, size=min(n, k * train_per_cluster), replace=False)] if n > k * train_per_cluster else x
    km = faiss.Kmeans(d, k, niter=iterations, spherical=True, seed=seed, verbose=False,
                      max_points_per_centroid=train_per_cluster)
    km.train(np.ascontiguousarray(sample))
    probes = max(1, min(probes, k))
    _, nearest = km.index.search(x, probes)  # each row's `probes` nearest centroids, best first
    home = nearest[:, 0].astype(np.int64)
    order = np.argsort(home, kind="stable")
    bounds = np.searchsorted(home[order], np.arange(k + 1))
    rows = np.arange(n, dtype=np.int64) if queries is None else np.unique(np.asarray(queries, dtype=np.int64))
    probe_of = nearest[rows]
    found: list = []
    # For each cluster: the query rows that probe it, against its members.
    flat_rows = np.repeat(rows, probes)
    flat_clusters = probe_of.reshape(-1).astype(np.int64)
    valid = flat_clusters >= 0
    flat_rows, flat_clusters = flat_rows[valid], flat_clusters[valid]
    by_cluster = np.argsort(flat_clusters, kind="stable")
    qbounds = np.searchsorted(flat_clusters[by_cluster], np.arange(k + 1))
    for c in range(k):
        members = order[bounds[c]:bounds[c + 1]]
        q = flat_rows[by_cluster[qbounds[c]:qbounds[c + 1]]]
        _block_pairs(x, q, members, threshold, found)
    return _collect(found, n, home)
