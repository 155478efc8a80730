"""The embedding side of curation: semantic near-duplicate search over 1,000,000 vectors, and the
embedding task's throughput against the bare model forward pass (a throwaway SQLite database,
or PostgreSQL with DATABASE_URL, as bench/_common.py sets up).

    .venv/bin/python bench/curation_embed.py [--vectors 1000000] [--planted 10000] [--sample 100000]
        [--threshold 0.95] [--photos 256] [--batch 32] [--model ViT-B-32] [--skip-search]
        [--skip-throughput] [--quick]

(a) Search. --vectors generated 512-d unit vectors shaped like a photo catalogue's embeddings:
    5,000 topics (each vector a topic centre plus noise: cosines of 0.2-0.7 within a topic),
    bursts of 5 near-alike photos (cosines around the threshold, the hard cases) and --planted
    near-copy pairs (cosine uniform in [threshold + 0.005, 0.995]). curation.vectors.near_duplicates
    (spherical k-means, then all pairs within each vector's nearest clusters) over all of them:
    total time and recall of the planted pairs. Then on a --sample random subset: the same search
    against exact all-pairs search (curation.vectors.exact_pairs, every pair by matrix products):
    recall and precision of the pairs >= threshold, and the time ratio.
(b) Throughput. A model built from an open_clip config with random weights (--model, default
    ViT-B-32, on the CPU here or CUDA where there is one) and --photos generated JPEG photos
    (curation.synthetic, 640x480, quality 90) on Django's local file storage. The whole chunk
    task (curation.embedding.EmbedImages.process: read from storage, decode in threads overlapped
    with the forward pass, batch with the model's own preprocess, forward, store the float16
    segment file and its rows) against the bare forward pass (the same model call on the same
    batches, tensors ready in memory) in the same run, interleaved --repeat times: photos per
    second and the ratio (aim >= 0.8).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from curation import vectors as V  # noqa: E402


def unit(x: np.ndarray) -> np.ndarray:
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def generate(n: int, planted: int, threshold: float, d: int = 512, seed: int = 0):
    """n unit vectors; returns (vectors, planted pairs as (original row, copy row) arrays)."""
    rng = np.random.default_rng(seed)
    topics = unit(rng.standard_normal((5000, d), dtype=np.float32))
    bursts = (n // 50) // 5  # 2 % of the rows are in bursts of 5
    plain = n - planted - bursts * 5
    x = np.empty((n, d), dtype=np.float32)
    step = 100_000
    for start in range(0, plain, step):  # topic centre x weight + noise: cosine 0.2-0.7 in a topic
        m = min(step, plain - start)
        w = rng.uniform(0.5, 1.5, size=(m, 1)).astype(np.float32)
        noise = rng.standard_normal((m, d), dtype=np.float32) / np.float32(np.sqrt(d))
        x[start:start + m] = unit(topics[rng.integers(0, len(topics), m)] * w + noise)
    row = plain
    # Bursts: 5 photos of one scene, cosines spread around the threshold (some in, some out).
    centres = unit(rng.standard_normal((bursts, d), dtype=np.float32))
    spread = rng.uniform(0.15, 0.3, size=(bursts, 1, 1)).astype(np.float32)
    noise = rng.standard_normal((bursts, 5, d), dtype=np.float32) / np.float32(np.sqrt(d))
    x[row:row + bursts * 5] = unit((centres[:, None, :] + spread * noise).reshape(-1, d))
    row += bursts * 5
    # Planted copies of random earlier rows: cos = 1 / sqrt(1 + s^2) for noise of norm s.
    originals = rng.choice(row, size=planted, replace=False)
    cos = rng.uniform(threshold + 0.005, 0.995, size=(planted, 1)).astype(np.float32)
    s = np.sqrt(1 / cos**2 - 1)
    g = rng.standard_normal((planted, d), dtype=np.float32)
    g -= (g * x[originals]).sum(1, keepdims=True) * x[originals]  # orthogonal to the original
    g = unit(g)
    x[row:row + planted] = unit(x[originals] + s * g)
    copies = np.arange(row, row + planted)
    # Shuffle so nothing is in generation order.
    perm = rng.permutation(n)
    inverse = np.empty(n, dtype=np.int64)
    inverse[perm] = np.arange(n)
    return x[perm], inverse[originals], inverse[copies]


def pair_keys(a, b, n) -> np.ndarray:
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    return np.minimum(a, b) * n + np.maximum(a, b)


def search(args) -> None:
    t0 = time.perf_counter()
    x, orig, copy = generate(args.vectors, args.planted, args.threshold)
    print(f"(a) {args.vectors:,} vectors (512-d) with {args.planted:,} planted near-copies, "
          f"generated in {time.perf_counter() - t0:.1f} s")
    t1, c1 = time.perf_counter(), time.process_time()
    found = V.near_duplicates(x, args.threshold, probes=args.probes)
    total, cpu = time.perf_counter() - t1, time.process_time() - c1
    n = len(x)
    keys = set(pair_keys(found.a, found.b, n).tolist())
    planted_keys = pair_keys(orig, copy, n).tolist()
    hit = sum(k in keys for k in planted_keys)
    print(f"    near_duplicates over all {n:,}: {total:.1f} s ({total / 60:.2f} min; aim < 10; CPU time of all "
          f"threads {cpu:.1f} s, load average {os.getloadavg()[0]:.1f}), "
          f"{len(found):,} pairs >= {args.threshold}, planted recall {hit / len(planted_keys):.4f} "
          f"({hit:,}/{len(planted_keys):,})")
    rng = np.random.default_rng(7)
    rows = np.sort(rng.choice(n, size=min(args.sample, n), replace=False))
    xs = x[rows]
    t2 = time.perf_counter()
    exact = V.exact_pairs(xs, args.threshold)
    t_exact = time.perf_counter() - t2
    t3 = time.perf_counter()
    approx = V.near_duplicates(xs, args.threshold, probes=args.probes)
    t_approx = time.perf_counter() - t3
    m = len(xs)
    ek, ak = set(pair_keys(exact.a, exact.b, m).tolist()), set(pair_keys(approx.a, approx.b, m).tolist())
    both = len(ek & ak)
    print(f"    sample of {m:,}: exact all-pairs {len(ek):,} pairs in {t_exact:.1f} s; near_duplicates "
          f"{len(ak):,} pairs in {t_approx:.1f} s; recall {both / max(1, len(ek)):.4f} (aim >= 0.98), "
          f"precision {both / max(1, len(ak)):.4f}, time ratio exact/ours {t_exact / max(t_approx, 1e-9):.1f}x")


def throughput(args) -> None:
    from _common import setup_django

    tmp = Path(tempfile.mkdtemp(prefix="bench-embed-"))
    connection, old_name = setup_django(tmp, "bench_curation_embed")
    try:
        _throughput(args, tmp)
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


def _throughput(args, tmp: Path) -> None:
    import hashlib

    import torch
    from django.conf import settings
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage
    from PIL import Image as PILImage

    from curation import embedding as E
    from curation import synthetic as S
    from curation.models import Embedding
    from datasets.models import Image, Licence, Source

    settings.MEDIA_ROOT = str(tmp / "media")
    t0 = time.perf_counter()
    licence = Licence.objects.get(code="cc-by-4.0")
    source = Source.objects.create(kind="upload", name="bench", default_licence=licence)
    rows = []
    for i in range(args.photos):
        data = S.jpeg(S.photo(i, 640, 480), 90)
        digest = hashlib.sha256(data).hexdigest()
        name = default_storage.save(f"images/{digest[:2]}/{digest}.jpg", ContentFile(data))
        rows.append(Image(file=name, thumbnail=name, sha256=digest, pixel_sha256=digest, phash=i, width=640,
                          height=480, original_width=640, original_height=480, original_format="JPEG",
                          original_bytes=len(data), source=source, licence=licence))
    Image.objects.bulk_create(rows)
    ids = [str(r.pk) for r in rows]
    spec = E.EmbedSpec(model=args.model, pretrained="", checkpoint="", device="auto")
    settings.CURATION_EMBED = {**settings.CURATION_EMBED, "MODEL": spec.model, "PRETRAINED": "", "CHECKPOINT": "",
                               "DEVICE": "auto", "BATCH": args.batch}
    loaded = E.build_model(spec, allow_random=True)
    E._LOADED[spec] = loaded  # what the step's load_model() finds
    print(f"(b) {args.photos} JPEG photos (640x480, q90) on local storage in {time.perf_counter() - t0:.1f} s; "
          f"{args.model} with random weights on {loaded.device}, batch {args.batch}, torch threads "
          f"{torch.get_num_threads()}, decode threads {E.decode_threads()}")
    # The bare forward pass on the same batches (decoded and preprocessed once, in memory).
    tensors = [loaded.preprocess(PILImage.open(default_storage.open(r.file.name)).convert("RGB")) for r in rows]
    batches = [torch.stack(tensors[i:i + args.batch]) for i in range(0, len(tensors), args.batch)]

    def bare():
        for b in batches:
            E._forward(loaded, loaded.model.encode_image, b)

    class Run:
        def scope_images(self):
            return Image.objects.all()

    step, run = E.EmbedImages(), Run()

    def task():  # the whole chunk task: read, decode, batch, forward, store (segment file and rows)
        Embedding.objects.all().delete()
        counts = step.process(run, ids)
        assert counts["embedded"] == len(ids), counts

    bare()  # warm
    task()
    results: dict[str, list[float]] = {"bare": [], "task": []}
    for n in range(args.repeat):  # interleaved, each first in turn, so drift on a shared machine hits both
        for name, fn in (("bare", bare), ("task", task))[::1 if n % 2 == 0 else -1]:
            t = time.perf_counter()
            fn()
            results[name].append(time.perf_counter() - t)
    bare_s, task_s = float(np.median(results["bare"])), float(np.median(results["task"]))
    best_bare, best_task = min(results["bare"]), min(results["task"])
    print(f"    bare forward: {args.photos / bare_s:.1f} photos/s; whole task: {args.photos / task_s:.1f} photos/s; "
          f"ratio task/bare {bare_s / task_s:.3f} of the medians, {best_bare / best_task:.3f} of the best runs "
          f"(aim >= 0.8); runs bare {[round(t, 1) for t in results['bare']]} s, "
          f"task {[round(t, 1) for t in results['task']]} s, load average {os.getloadavg()[0]:.1f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--vectors", type=int, default=1_000_000)
    p.add_argument("--planted", type=int, default=10_000)
    p.add_argument("--sample", type=int, default=100_000)
    p.add_argument("--threshold", type=float, default=0.95)
    p.add_argument("--probes", type=int, default=8)
    p.add_argument("--photos", type=int, default=192)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--repeat", type=int, default=4)
    p.add_argument("--model", default="ViT-B-32")
    p.add_argument("--skip-search", action="store_true")
    p.add_argument("--skip-throughput", action="store_true")
    p.add_argument("--quick", action="store_true", help="100,000 vectors, a 30,000 sample, 64 photos")
    args = p.parse_args()
    if args.quick:
        args.vectors, args.planted, args.sample, args.photos, args.repeat = 100_000, 1000, 30_000, 64, 1
    if not args.skip_search:
        search(args)
    if not args.skip_throughput:
        throughput(args)


if __name__ == "__main__":
    main()
