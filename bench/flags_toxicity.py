"""Toxicity and bias (curation.toxicity) on BEEP! (kocohub/korean-hate-speech, CC BY-SA 4.0):
quality of the classifier and of the korcen lexicon alone, and their speed against a plain regex
scan of the same texts in the same run. No database.

    .venv/bin/python bench/flags_toxicity.py [--data ../shared/data/korean-hate-speech] [--repeat 3]

The data set is NOT part of the repository (read its README there); nothing is copied from it.
Trained on its train set (7,896 online news comments), evaluated on its dev set (471).

(a) Quality on dev: precision, recall and F1 per label (hate / offensive / none: the
    classifier's most probable label) and for toxic (hate or offensive) against none (the
    classifier's probability of either >= the threshold, 0.5 by default as in settings); the same
    for the lexicon alone (a korcen match = toxic; it names no hate/offensive label, so a match
    counts as "offensive" in the per-label table) and for the detector as it flags (model or
    lexicon); the bias head per label (gender / other / none) and biased against none.
(b) Speed, texts per second over the train and dev texts: the classifier (both heads,
    vectorise + predict, in batches of 500 as the curation step does), the lexicon (every korcen
    level, one text at a time) and the baseline, one compiled regex of common profanity stems
    searched in each text; ratios against the baseline. Then the inline cost at submit: the
    lexicon on one comment at a time, p50 and p95 in milliseconds (issue 12, item 7).
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()  # the step's imports; no database is used

from curation import toxicity as T  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
# The baseline: a plain scan for common profanity stems (what a hand-written filter would do).
BASELINE = re.compile("|".join([
    "시발", "씨발", "ㅅㅂ", "ㅆㅂ", "병신", "ㅂㅅ", "개새", "새끼", "좆", "지랄", "미친", "꺼져", "닥쳐", "한남",
    "김치녀", "틀딱", "짱깨", "쪽바리", "애미", "느금",
]))


def table(title: str, scores: dict, names: dict | None = None) -> None:
    print(f"  {title}")
    print(f"    {'label':<14}{'precision':>10}{'recall':>8}{'F1':>8}{'support':>9}")
    for label, s in scores.items():
        name = (names or {}).get(label, label)
        print(f"    {name:<14}{s['precision']:>10.3f}{s['recall']:>8.3f}{s['f1']:>8.3f}{s['support']:>9}")


def rate(fn, texts, repeat: int) -> float:
    fn(texts[:50])  # warm
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn(texts)
        best = min(best, time.perf_counter() - start)
    return len(texts) / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "korean-hate-speech"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threshold", type=float, default=0.5)
    a = ap.parse_args()
    data = Path(a.data)
    if not (data / "train.tsv").exists():
        sys.exit(f"No BEEP! data at {data} (train.tsv, dev.tsv): give --data.")
    cols = {"text_col": "comments", "label_col": "hate", "bias_col": "bias", "bias_required": True}
    train = T.read_table(data / "train.tsv", **cols)
    dev = T.read_table(data / "dev.tsv", **cols)
    print(f"BEEP!: {len(train)} train, {len(dev)} dev comments")

    start = time.perf_counter()
    model = T.train(train, version=1)
    print(f"trained both heads in {time.perf_counter() - start:.1f} s "
          f"(char_wb {T.NGRAMS[0]}-{T.NGRAMS[1]}, logistic regression C={T.C}; includes the held-out fit)")

    texts = [r.text for r in dev]
    gold = [r.label for r in dev]
    preds = model.predict(texts)
    hits = [T.lexicon_hits(t) for t in texts]
    any_names = {"any": "toxic (any)"}

    print(f"\n(a) quality on dev ({len(dev)} comments; toxic {sum(g != 'none' for g in gold)})")
    per_label = T.scores(gold, [p.label for p in preds], T.LABELS)
    by_threshold = T.scores(gold, ["hate" if p.toxic >= a.threshold else "none" for p in preds], T.LABELS)
    per_label["any"] = by_threshold["any"]
    table(f"classifier (per label: most probable; toxic: P(hate or offensive) >= {a.threshold})", per_label, any_names)
    table("lexicon alone (korcen " + T.KORCEN_VERSION + "; a match = offensive)",
          T.scores(gold, ["offensive" if h else "none" for h in hits], T.LABELS), any_names)
    detector = T.Detector(classifier=model, threshold=a.threshold)
    flagged = ["toxicity" in {f.kind for f in found} for found in detector.check(texts)]
    both = T.scores(gold, ["offensive" if f else "none" for f in flagged], T.LABELS)
    table("detector as it flags (classifier or lexicon): toxic against none", {"any": both["any"]}, any_names)
    for th in (0.4, 0.6, 0.7):
        s = T.scores(gold, ["hate" if p.toxic >= th else "none" for p in preds], T.LABELS)["any"]
        print(f"    classifier at threshold {th}: toxic P {s['precision']:.3f} R {s['recall']:.3f} F1 {s['f1']:.3f}")
    table("bias head (most probable)", T.scores([r.bias for r in dev], [p.bias for p in preds], T.BIAS_LABELS),
          {"any": "biased (any)"})

    every = [r.text for r in train] + texts
    print(f"\n(b) speed over {len(every)} texts (best of {a.repeat})")
    base = rate(lambda ts: [BASELINE.search(t) for t in ts], every, a.repeat)

    def classify(ts):
        for i in range(0, len(ts), 500):
            model.predict(ts[i:i + 500])

    clf = rate(classify, every, a.repeat)
    lex = rate(lambda ts: [T.lexicon_hits(t) for t in ts], every, a.repeat)
    print(f"  baseline regex scan : {base:>10,.0f} texts/s")
    print(f"  classifier (2 heads): {clf:>10,.0f} texts/s  = {clf / base:.4f} x baseline ({base / clf:,.0f}x slower)")
    print(f"  lexicon (korcen)    : {lex:>10,.0f} texts/s  = {lex / base:.4f} x baseline ({base / lex:,.0f}x slower)")
    lat = []
    for t in every[:3000]:
        start = time.perf_counter()
        T.lexicon_hits(t)
        lat.append((time.perf_counter() - start) * 1000)
    lat.sort()
    blat = []
    for t in every[:3000]:
        start = time.perf_counter()
        BASELINE.search(t)
        blat.append((time.perf_counter() - start) * 1000)
    blat.sort()
    p95 = lat[int(0.95 * len(lat))]
    bp95 = blat[int(0.95 * len(blat))]
    print(f"  inline at submit, one comment: lexicon p50 {statistics.median(lat):.3f} ms, p95 {p95:.3f} ms "
          f"(baseline p95 {bp95:.4f} ms; a comment set of 2 adds about {2 * p95:.2f} ms at p95)")
    mean_len = statistics.mean(len(t) for t in every)
    print(f"  (BEEP! comments average {mean_len:.0f} characters; photo comments are shorter)")


if __name__ == "__main__":
    main()
