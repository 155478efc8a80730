"""Issue 12's text detectors in one run (item 9, "bench/flags"): their speed against a plain regex
scan of the same texts, what the inline checks add to a labeler's submit, and the quality tables.

    .venv/bin/python bench/flags.py [--texts 6000] [--submits 300] [--repeat 5] [--data DIR] [--no-beep]
    (with DATABASE_URL=postgres://... part (b) runs on SQLite and then on PostgreSQL)

(a) Texts per second, one core, best of --repeat passes over the same texts in the same run:
    tests/test_pii.py's generated Korean sentences (every kind of personal information, and
    ordinary comments full of prices, times and dates) and tests/test_curation_toxicity.py's
    generated labeled comments (photo comments, insults, hateful ones), repeated to --texts. The
    baseline is bench/flags_pii.py's plain regex scan (one compiled alternation of phone / e-mail /
    URL / 13-digit patterns, `search` per text); bench/flags_toxicity.py's plain profanity-stem
    regex is shown beside it. Then each detector on the same texts: curation.pii.scan (the PII
    table: submit rules, page mirror), curation.pii.analyze (presidio, the PII step),
    curation.toxicity.lexicon_hits (korcen, every level: the inline check and the step),
    the toxicity classifier (both heads, batches of 500 as the step; trained here on the tests'
    generated rows, or on BEEP!'s train set with --beep-model) and curation.textdup's
    normalisation (exact_key + content: what the text-duplicate step computes per comment).
    Then the inline pieces per comment: labeling.text.check with the PII rules on - off (reused
    from bench/flags_pii.py) and the lexicon alone, p50 / p95.
(b) The added p95 of a submit with the inline checks on (the PII rules and the inline lexicon,
    CURATION["INLINE_LEXICON"]) against off (neither), through Django's test client,
    interleaved (bench/flags_pii.py's submit_latency; one comment set in four carries an insult,
    so the "on" side also writes flags), on SQLite and, with DATABASE_URL set, on PostgreSQL: each
    in its own process on a throwaway database.
(c) Quality: precision and recall per kind of personal information on the generated set
    (tests/test_pii.py's per_kind_scores, table and presidio), and bench/flags_toxicity.py's
    F1 / precision / recall tables on BEEP! (its own process; it needs ../shared/data/korean-hate-
    speech/, not part of the repository: skipped with a message when absent, or with --no-beep).
Figures: docs/benchmarks.md, "bench/flags.py".
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

# ../shared beside the checkout, or beside the folder of worktrees that holds it.
DATA_CANDIDATES = [ROOT.parent / "shared" / "data" / "korean-hate-speech",
                   ROOT.parent.parent / "shared" / "data" / "korean-hate-speech"]
# One comment set in four carries an insult (the lexicon matches it: a flag is written).
SUBMIT_COMMENTS = [
    ("와 진짜 맛있겠다 {n}", "2024년 5월에 12,000원 주고 먹은 떡볶이 국물이 진하고 맛있어요 {n}번째"),
    ("색감 미쳤다 {n}", "3시 30분쯤 찍었는데 햇살이 예쁘게 들어와서 분위기가 좋네요 {n}"),
    ("귀엽다 {n}!!", "길고양이가 벤치 위에서 자고 있어요 털이 보송보송해 보여요 {n}"),
    ("음 이게 뭐지 {n}", "이 사진 찍은 놈 진짜 병신 같네 {n}"),
]


def texts_for(n: int) -> list[str]:
    from tests.test_curation_toxicity import generated
    from tests.test_pii import generated_set

    base = [t for t, _ in generated_set()] + [r.text for r in generated(600, seed=7)]
    return (base * (n // len(base) + 1))[:n]


def batched_rate(fn, texts, repeat, size=500) -> float:
    def run(ts):
        for i in range(0, len(ts), size):
            fn(ts[i:i + size])

    run(texts[:50])  # warm
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run(texts)
        best = min(best, time.perf_counter() - start)
    return len(texts) / best


def classifier(args):
    from curation import toxicity as T
    from tests.test_curation_toxicity import generated

    data = find_data(args)
    if args.beep_model and data:
        rows = T.read_table(data / "train.tsv", text_col="comments", label_col="hate", bias_col="bias")
        what = f"BEEP! train ({len(rows)} rows)"
    else:
        rows = generated(600, seed=1)
        what = f"the tests' generated rows ({len(rows)})"
    start = time.perf_counter()
    model = T.train(rows, version=1)
    return model, f"trained on {what} in {time.perf_counter() - start:.1f} s"


def throughput(args) -> None:
    from flags_pii import PLAIN, check_cost, pct, rate
    from flags_toxicity import BASELINE

    from curation import pii, textdup
    from curation import toxicity as T

    texts = texts_for(args.texts)
    t0 = time.perf_counter()
    pii.analyzer()
    build = time.perf_counter() - t0
    model, trained = classifier(args)
    T.lexicon_hits(texts[0])  # korcen's import and first compile
    pii.analyze(texts[0])
    print(f"(a) {len(texts)} texts (mean {statistics.mean(map(len, texts)):.0f} characters), best of {args.repeat}; "
          f"presidio import + engine {build:.2f} s (once per process); classifier {trained}")
    base = rate(PLAIN.search, texts, args.repeat)
    rows = [
        ("plain regex scan (baseline)", base),
        ("plain profanity-stem regex", rate(BASELINE.search, texts, args.repeat)),
        ("PII table (curation.pii.scan)", rate(pii.scan, texts, args.repeat)),
        ("presidio (curation.pii.analyze)", rate(pii.analyze, texts, max(1, args.repeat // 2))),
        ("lexicon (korcen, 8 levels)", rate(T.lexicon_hits, texts, args.repeat)),
        ("classifier (2 heads, batches of 500)", batched_rate(model.predict, texts, max(1, args.repeat // 2))),
        ("text-dup normalisation", rate(lambda t: textdup.content(textdup.exact_key(t)), texts, args.repeat)),
    ]
    for name, value in rows:
        print(f"    {name:<38}{value:>12,.0f} texts/s  {value / base:>8.4f}x of the baseline")
    check_cost(texts, label="   ")
    lat = []
    for t in texts[:3000]:
        start = time.perf_counter()
        T.lexicon_hits(t)
        lat.append(time.perf_counter() - start)
    print(f"    lexicon per comment: median {statistics.median(lat) * 1e6:.0f} us, p95 {pct(lat, 0.95) * 1e6:.0f} us")


def submit_part(args) -> None:
    """Run in its own process (the database is chosen when Django starts)."""
    from _common import setup_django

    with tempfile.TemporaryDirectory() as tmp:
        connection, old_name = setup_django(Path(tmp), f"bench_flags_{os.getpid()}")
        try:
            from flags_pii import pct, submit_latency

            from curation.models import Flag
            from labeling import services

            # The lexicon's own share of each "on" submit, timed inside it (the end-to-end p95s are
            # noisy on a shared machine): the check before the transaction, the flag writes inside.
            times = {"_lexicon_before_submit": [], "_flag_lexicon_inline": []}

            def timer(name):
                real = getattr(services, name)

                def timed(*a):
                    start = time.perf_counter()
                    try:
                        return real(*a)
                    finally:
                        times[name].append(time.perf_counter() - start)
                return timed

            for name in times:
                setattr(services, name, timer(name))
            print(f"(b) on {connection.vendor}: inline checks on = PII rules + inline lexicon; off = neither")
            submit_latency(args, lexicon=True, comments=SUBMIT_COMMENTS)
            print(f"    toxicity flags written inline by the 'on' side: {Flag.objects.filter(kind='toxicity').count()}")
            check, write = times["_lexicon_before_submit"], times["_flag_lexicon_inline"]
            ms = [t * 1e3 for t in check[1:]]  # the first one imports korcen and compiles its patterns
            print(f"    the lexicon check per submit (before the transaction): p50 {statistics.median(ms):.2f} ms, "
                  f"p95 {pct(ms, 0.95):.2f} ms over {len(ms)}; first call {check[0] * 1e3:.0f} ms")
            ms = [t * 1e3 for t in write]
            if ms:
                print(f"    the flag write, on the {len(ms)} submits that matched (inside it): "
                      f"p50 {statistics.median(ms):.2f} ms, p95 {pct(ms, 0.95):.2f} ms")
        finally:
            connection.creation.destroy_test_db(old_name, verbosity=0)


def submit_latencies(args) -> None:
    me = [sys.executable, str(Path(__file__).resolve()), "--submit-only", "--submits", str(args.submits)]
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    subprocess.run(me, env=env, check=True)
    if os.environ.get("DATABASE_URL", "").startswith("postgres"):
        subprocess.run(me, env=dict(os.environ), check=True)
    else:
        print("(b) PostgreSQL: set DATABASE_URL=postgres://... to measure it too")


def find_data(args) -> Path | None:
    candidates = [Path(args.data)] if args.data else DATA_CANDIDATES
    return next((p for p in candidates if (p / "train.tsv").exists() and (p / "dev.tsv").exists()), None)


def quality(args) -> None:
    from curation import pii
    from tests.test_pii import generated_set, per_kind_scores

    print(f"\n(c) personal information, generated set ({len(generated_set())} sentences): precision / recall per kind")
    table = {name: per_kind_scores(fn)[0] for name, fn in (("table", pii.scan), ("presidio", pii.analyze))}
    print(f"    {'kind':<16}{'table P':>9}{'R':>7}{'presidio P':>12}{'R':>7}")
    for kind in table["table"]:
        (tp, tr), (pp, pr) = table["table"][kind], table["presidio"][kind]
        print(f"    {kind:<16}{tp:>9.3f}{tr:>7.3f}{pp:>12.3f}{pr:>7.3f}")
    data = find_data(args)
    if args.no_beep:
        print("\n(c) toxicity on BEEP!: skipped (--no-beep); run bench/flags_toxicity.py")
    elif data is None:
        print("\n(c) toxicity on BEEP!: skipped, no data at ../shared/data/korean-hate-speech/ "
              "(train.tsv, dev.tsv; not part of the repository): give --data DIR")
    else:
        print(f"\n(c) toxicity on BEEP! ({data}): bench/flags_toxicity.py")
        sys.stdout.flush()
        subprocess.run([sys.executable, str(HERE / "flags_toxicity.py"), "--data", str(data)], check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--texts", type=int, default=6000)
    ap.add_argument("--submits", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--data", default="", help="BEEP! korean-hate-speech folder (default: ../shared/data/...)")
    ap.add_argument("--no-beep", action="store_true", help="skip the BEEP! tables (bench/flags_toxicity.py)")
    ap.add_argument("--beep-model", action="store_true", help="(a): train the classifier on BEEP! train")
    ap.add_argument("--submit-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.submit_only:
        submit_part(args)
        return
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()  # parts (a) and (c) use no database
    throughput(args)
    sys.stdout.flush()
    submit_latencies(args)
    quality(args)


if __name__ == "__main__":
    main()
