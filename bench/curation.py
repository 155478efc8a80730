"""The perceptual duplicate tier (curation.perceptual): precision and recall per transform, and
the Hamming search against a brute-force numpy scan. No database.

    .venv/bin/python bench/curation.py [--photos 1000] [--negatives 1000] [--hashes 1000000]
        [--planted 1000] [--queries 2000] [--comments 150000] [--skip-photos] [--skip-search]
        [--skip-comments] [--no-self-join] [--no-windows] [--quick]

(a) Precision / recall per transform. --photos generated photo-like originals (curation.synthetic:
    gradient, waves, shapes, blur, grain; 480x360) and --negatives distinct ones, each stored as
    a JPEG of quality 90; for each transform (resize 50 %, JPEG q30, q60, q95, off-centre crop 5 %
    and 10 %, brightness +20 %, -20 %) a copy of every original, stored the same way. All
    signatures of one transform go into one PerceptualIndex and every pair within 8 bits is
    found (no all-pairs loop): stage 1 (candidates); stage 2 keeps those that
    perceptual.confirm (thumbnail correlation) scores >= CONFIRM_THRESHOLD. A found pair is right
    when it joins an original and its copy; any other pair (two originals, a negative, ...) is a
    false positive. Baseline in the same run: the stored 64-bit pHash alone (the whole-photo
    hashes only, same radius, no confirmation).
(b) Search. --hashes uniformly random 64-bit hashes with --planted near copies (each 0-8 bits
    from a random hash, appended to the set). Queries: the planted copies and as many random
    members. curation.perceptual.HammingIndex.search against perceptual.brute_force_search
    (np.bitwise_count of the XOR over all hashes, per query) on the same queries: the outputs are
    compared, the planted recall counted, the time ratio printed. Then the index's self-join (every
    hash against all, 1,000,000 queries) is timed, against the brute force extrapolated from its
    per-query time; and the window index of --window-photos photos (26 random hashes a photo:
    pHash and 25 windows) on a query sample, extrapolated to a run over all of them.
(c) Comments. --comments generated Korean comments (random syllable words, 3-8 words) by 200
    labelers in time order, 5 % of them variants of a template line ("맛있겠다" with laughs,
    spacing, punctuation), 2 % a labeler's near-copy of their own earlier comment (a word
    changed). curation.textdup.analyse (normalise, MinHash LSH, clusters, per-labeler shares)
    against the exact grouping alone (a Counter of textdup.exact_key) in the same run.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from curation import perceptual as P  # noqa: E402
from curation import synthetic as S  # noqa: E402
from curation import textdup as T  # noqa: E402


def stored(img):
    return S.from_jpeg(S.jpeg(img, 90))


def precision_recall(args) -> None:
    t0 = time.perf_counter()
    originals = [S.photo(seed) for seed in range(args.photos)]
    orig_thumbs = [P._thumbnail(stored(img)) for img in originals]
    neg_thumbs = [P._thumbnail(stored(S.photo(10_000_000 + seed))) for seed in range(args.negatives)]
    orig_sigs = [P.signature(t) for t in orig_thumbs]
    neg_sigs = [P.signature(t) for t in neg_thumbs]
    print(f"(a) {args.photos} originals + {args.negatives} negatives, signatures in {time.perf_counter() - t0:.1f} s")
    base_ids = [f"o{i}" for i in range(args.photos)] + [f"n{i}" for i in range(args.negatives)]
    print(f"{'transform':<17} {'stage 1: prec':>13} {'recall':>7} {'FP':>4} | {'stage 2: prec':>13} {'recall':>7} {'FP':>4} | "
          f"{'pHash only: prec':>16} {'recall':>7} {'FP':>4} | recall ratio")
    per_sig, per_confirm = [], []
    for name, fn in S.transforms(np.random.default_rng(1)).items():
        t1 = time.perf_counter()
        copies, copy_thumbs = [], []
        for img in originals:
            s0 = time.perf_counter()
            thumb = P._thumbnail(stored(fn(img)))
            copies.append(P.signature(thumb))
            per_sig.append(time.perf_counter() - s0)
            copy_thumbs.append(thumb)
        ids = base_ids + [f"c{i}" for i in range(args.photos)]
        thumbs = dict(zip(ids, orig_thumbs + neg_thumbs + copy_thumbs))
        sigs = orig_sigs + neg_sigs + copies
        truth = {(f"c{i}", f"o{i}") for i in range(args.photos)}

        def score(found, truth=truth):
            tp, fp = len(found & truth), len(found - truth)
            return tp / max(1, tp + fp), tp / len(truth), fp

        pairs = P.PerceptualIndex.from_signatures(ids, sigs).find_pairs()
        stage1 = {tuple(sorted((p.a, p.b))) for p in pairs}
        stage2 = set()
        for a, b in stage1:
            s0 = time.perf_counter()
            if P.confirm(thumbs[a], thumbs[b]) >= P.CONFIRM_THRESHOLD:
                stage2.add((a, b))
            per_confirm.append(time.perf_counter() - s0)
        base = {tuple(sorted((p.a, p.b))) for p in P.PerceptualIndex(ids, [s.phash for s in sigs]).find_pairs()}
        (p1, r1, f1), (p2, r2, f2), (p0, r0, f0) = score(stage1), score(stage2), score(base)
        print(f"{name:<17} {p1:13.4f} {r1:7.4f} {f1:4d} | {p2:13.4f} {r2:7.4f} {f2:4d} | {p0:16.4f} {r0:7.4f} {f0:4d} | "
              f"{r2 / max(r0, 1e-9):.2f}   ({time.perf_counter() - t1:.1f} s)")
    print(f"(a copy's transform + JPEG + decode + thumbnail + signature: median {np.median(per_sig) * 1000:.1f} ms; "
          f"confirm: median {np.median(per_confirm) * 1000:.1f} ms a candidate pair)")


def search(args) -> None:
    rng = np.random.default_rng(5)
    n = args.hashes
    hashes = rng.integers(0, 2**64 - 1, n, dtype=np.uint64, endpoint=True)
    base = rng.choice(n, size=args.planted, replace=False)
    planted = hashes[base].copy()
    for k in range(args.planted):
        for b in rng.choice(64, size=int(rng.integers(0, 9)), replace=False):
            planted[k] ^= np.uint64(1 << int(b))
    allh = np.concatenate([hashes, planted])
    queries = np.concatenate([planted, allh[rng.choice(len(allh), size=args.queries - args.planted, replace=False)]])
    print(f"\n(b) {len(allh):,} hashes ({args.planted} planted copies at distance 0-8), {len(queries):,} queries, radius 8")
    t0 = time.perf_counter()
    index = P.HammingIndex(allh)
    build = time.perf_counter() - t0
    t0 = time.perf_counter()
    got = index.search(queries, radius=8)
    t_index = time.perf_counter() - t0
    t0 = time.perf_counter()
    want = P.brute_force_search(allh, queries, radius=8)
    t_brute = time.perf_counter() - t0
    same = all(np.array_equal(g, w) for g, w in zip(got, want))
    qi, hi = got[0], got[1]
    hits = set(zip(qi.tolist(), hi.tolist()))
    recall = sum((k, int(base[k])) in hits for k in range(args.planted)) / args.planted
    print(f"index build {build:.2f} s; search {t_index:.3f} s ({t_index / len(queries) * 1e6:.0f} us/query); "
          f"brute force {t_brute:.2f} s ({t_brute / len(queries) * 1e6:.0f} us/query)")
    print(f"speed-up {t_brute / t_index:.0f}x; same pairs as brute force: {same}; planted recall {recall:.4f}; "
          f"pairs found {len(qi):,}")
    if args.self_join:
        t0 = time.perf_counter()
        sq, sh, _ = index.search(allh, radius=8, chunk=8192)
        t_self = time.perf_counter() - t0
        pairs = int(((sq != sh)).sum()) // 2
        est = t_brute / len(queries) * len(allh)
        print(f"self-join of all {len(allh):,}: {t_self:.1f} s, {pairs:,} pairs; brute force estimated "
              f"{est / 60:.0f} min (ratio {est / t_self:.0f}x)")
    if args.windows:
        del index
        m = args.window_photos
        win = rng.integers(0, 2**64 - 1, m * (1 + P.WINDOWS), dtype=np.uint64, endpoint=True)
        t0 = time.perf_counter()
        windex = P.HammingIndex(win)
        build = time.perf_counter() - t0
        sample = win[rng.choice(len(win), size=args.queries, replace=False)]
        t0 = time.perf_counter()
        windex.search(sample, radius=8)
        t_w = time.perf_counter() - t0
        print(f"window index of {m:,} photos ({len(win):,} hashes): build {build:.1f} s, "
              f"{t_w / len(sample) * 1e6:.0f} us/query (a run over all its photos: ~{t_w / len(sample) * m:.0f} s)")


def comments(args) -> None:
    rng = np.random.default_rng(9)

    def word():
        return "".join(chr(0xAC00 + int(rng.integers(0, 11172))) for _ in range(int(rng.integers(2, 5))))

    templates = ["맛있겠다ㅋㅋㅋ", "맛있 겠다!!", "맛있겠다~~", "맛있겠다", "맛있겠다 ㅋㅋㅋㅋ", "와 맛있겠다ㅋㅋ"]
    rows, last = [], {}
    for n in range(args.comments):
        labeler = int(rng.integers(0, 200))
        draw = rng.random()
        if draw < 0.05:
            text = templates[int(rng.integers(0, len(templates)))]
        elif draw < 0.07 and labeler in last:
            words = last[labeler].split()
            words[int(rng.integers(0, len(words)))] = word()
            text = " ".join(words)
        else:
            text = " ".join(word() for _ in range(int(rng.integers(3, 9))))
            last[labeler] = text
        rows.append((n, f"img{n // 3}", labeler, text))
    t0 = time.perf_counter()
    from collections import Counter
    exact = Counter(T.exact_key(r[3]) for r in rows)
    t_exact = time.perf_counter() - t0
    t0 = time.perf_counter()
    report = T.analyse(rows)
    t_all = time.perf_counter() - t0
    top = report.clusters[0]
    copiers = sum(e.self_copies for e in report.labelers)
    print(f"\n(c) {len(rows):,} comments ({len(exact):,} distinct keys): analyse {t_all:.1f} s; exact grouping alone "
          f"{t_exact:.2f} s (ratio {t_all / t_exact:.0f}x)")
    print(f"top cluster: {top.count:,} comments on {top.photos:,} photos (share {top.share:.3f}, exact {top.exact}); "
          f"clusters {len(report.clusters):,}; self-copies found {copiers:,}; near pairs {len(report.near_pairs):,}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=1000)
    parser.add_argument("--negatives", type=int, default=1000)
    parser.add_argument("--hashes", type=int, default=1_000_000)
    parser.add_argument("--planted", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--skip-photos", action="store_true")
    parser.add_argument("--skip-search", action="store_true")
    parser.add_argument("--comments", type=int, default=150_000)
    parser.add_argument("--window-photos", type=int, default=1_000_000,
                        help="photos in the window index (26 random hashes each)")
    parser.add_argument("--skip-comments", action="store_true")
    parser.add_argument("--no-self-join", dest="self_join", action="store_false")
    parser.add_argument("--no-windows", dest="windows", action="store_false")
    parser.add_argument("--quick", action="store_true", help="200 photos, 200 negatives, 100,000 hashes")
    args = parser.parse_args()
    if args.quick:
        args.photos, args.negatives, args.hashes, args.planted, args.queries = 200, 200, 100_000, 200, 400
        args.comments, args.window_photos = 20_000, 50_000
    if not args.skip_photos:
        precision_recall(args)
    if not args.skip_search:
        search(args)
    if not args.skip_comments:
        comments(args)


if __name__ == "__main__":
    main()
