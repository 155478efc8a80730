"""Hallucination scores (curation.scores): how well a tiny CLIP trained here tells swapped
comments from their own, and the scoring throughput.

    .venv/bin/python bench/flags_hallucination.py [--steps 160] [--pairs 400] [--threads 1]
        [--comments 20000] [--sample 256] [--dim 512]

(a) A tiny open_clip model (curation.tinyclip: 4 colours x 3 shapes x 1-2 of them, Korean
    descriptions such as "빨간 동그라미", "파란 네모 두 개") trained on generated scenes on
    --threads CPU threads; then held-out scenes, every other one with the description of a scene
    of another class (swapped). ROC AUC of the hallucination score (sklearn.metrics.roc_auc_score:
    swapped = positive) against a sample of 128 other held-out scenes; the mean score of own and
    swapped pairs; the recall and false-flag rate at the threshold calibrate() would choose for
    the default target (the null: each comment with a random other photo).
(b) Throughput: curation.scores.score_pairs (hallucination, specificity, similarity and the
    better-fitting photos; and with better=0, as the step's chunks run it) for --comments comments against a --sample photo sample, --dim-long
    unit vectors, in chunks of 1024 (as the step's chunks), against a plain numpy matmul of the
    same vectors (comments @ sample.T) in the same run: comments per second each.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=160)
    p.add_argument("--pairs", type=int, default=400)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--comments", type=int, default=20000)
    p.add_argument("--sample", type=int, default=256)
    p.add_argument("--dim", type=int, default=512)
    args = p.parse_args(argv)

    import os
    import tempfile

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("PLATFORM_VAR_DIR", tempfile.mkdtemp(prefix="bench-scores-"))
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django
    import torch
    from sklearn.metrics import roc_auc_score

    django.setup()  # curation.scores imports the step interface (no database is used)

    from curation import scores as S
    from curation import tinyclip as T

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    model, preprocess, tokenizer = T.train(steps=args.steps, threads=args.threads)
    trained = time.perf_counter() - t0
    pool, texts, labels = T.held_out_pairs(args.pairs, seed=99)
    sample_scenes = T.scenes(128, seed=4321)
    photos, comments = T.embed(model, preprocess, tokenizer, [T.draw(s) for s in pool], texts)
    sample, _t = T.embed(model, preprocess, tokenizer, [T.draw(s) for s in sample_scenes], ["-"])
    s = S.score_pairs(comments, photos, sample)
    auc = roc_auc_score(labels, s.hallucination)
    # The null as calibrate() draws it: each comment with another random held-out photo.
    rng = np.random.default_rng(0)
    other = (np.arange(len(pool)) + 1 + rng.integers(0, len(pool) - 1, len(pool))) % len(pool)
    null = S.score_pairs(comments, photos[other], sample, better=0).hallucination
    target = 0.5
    threshold = float(np.quantile(null, 1 - target))
    flagged = s.hallucination >= threshold
    print(f"(a) tiny CLIP: trained {args.steps} steps in {trained:.1f} s on {args.threads} thread(s); "
          f"{len(pool)} held-out pairs ({int(labels.sum())} swapped), sample 128")
    print(f"    ROC AUC (swapped vs own)       {auc:.4f}")
    print(f"    mean hallucination own/swapped {s.hallucination[labels == 0].mean():.3f} / "
          f"{s.hallucination[labels == 1].mean():.3f}")
    print(f"    mean specificity own/swapped   {s.specificity[labels == 0].mean():.3f} / "
          f"{s.specificity[labels == 1].mean():.3f}")
    print(f"    null median {np.median(null):.3f}; threshold at target rate {target}: {threshold:.3f} -> "
          f"recall {flagged[labels == 1].mean():.3f}, false flags {flagged[labels == 0].mean():.3f}")

    rng = np.random.default_rng(1)

    def unit(n):
        x = rng.standard_normal((n, args.dim)).astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    c, o, smp = unit(args.comments), unit(args.comments), unit(args.sample)
    exclude = np.zeros((1024, args.sample), dtype=bool)

    def ours():
        for i in range(0, args.comments, 1024):
            S.score_pairs(c[i:i + 1024], o[i:i + 1024], smp, exclude[:len(c[i:i + 1024])])

    def step():  # what the step's chunks compute (the better photos only for flags, in finish)
        for i in range(0, args.comments, 1024):
            S.score_pairs(c[i:i + 1024], o[i:i + 1024], smp, exclude[:len(c[i:i + 1024])], better=0)

    def plain():
        for i in range(0, args.comments, 1024):
            c[i:i + 1024] @ smp.T

    rates = {}
    for name, fn in (("numpy matmul (baseline)", plain), ("score_pairs, better=0", step), ("score_pairs", ours)):
        fn()
        best = min(_timed(fn) for _ in range(3))
        rates[name] = args.comments / best
    print(f"(b) throughput, {args.comments} comments x sample {args.sample}, dim {args.dim}, "
          f"torch threads {args.threads} (numpy: its BLAS threads)")
    for name, rate in rates.items():
        print(f"    {name:<26} {rate:>12,.0f} comments/s")
    base = rates["numpy matmul (baseline)"]
    print(f"    score_pairs / matmul: {rates['score_pairs'] / base:.2f} (better=0: {rates['score_pairs, better=0'] / base:.2f})")
    return 0


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


if __name__ == "__main__":
    raise SystemExit(main())
