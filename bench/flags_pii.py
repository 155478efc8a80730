"""Personal information in comments (curation.pii): detector throughput against a plain regex
scan, and what the inline check adds to a labeler's submit.

    .venv/bin/python bench/flags_pii.py [--texts 6000] [--submits 300] [--repeat 5]
    (DATABASE_URL=postgres://... runs part (c) on PostgreSQL, in a throwaway database)

(a) Texts per second, one core, on the same texts in the same run: tests/test_pii.py's generated
    Korean sentences (every kind of personal information in its spellings, and ordinary comments
    full of prices, times and dates), repeated to --texts. Baseline: a plain regex scan, one
    compiled alternation of simple phone / e-mail / URL / 13-digit patterns, `search` per text
    (what a minimal filter costs). Then curation.pii.scan (the table: fold, 22 patterns,
    validators, context, overlaps; the submit path and the page's mirror) and curation.pii.analyze
    (presidio's AnalyzerEngine, no-op NLP engine: the curation step's engine). Also presidio's
    import and engine build time (paid once per process).
(b) labeling.text.check of a comment with the PII rules on vs off (the same rules otherwise):
    the added time per comment, median and p95 over --texts comments.
(c) A labeler's submit through Django's test client (POST /api/assignments/{id}/submit/, two
    comments), --submits with the inline checks on and as many off (two projects, identical but
    for reject_urls / reject_emails / reject_phone_numbers / reject_personal_info), interleaved so
    a noisy moment hits both: p50 and p95 of each, the added p95 and the ratio.
"""
from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import setup_django  # noqa: E402

PLAIN = re.compile(
    r"0\d{1,2}[-. ]?\d{3,4}[-. ]?\d{4}|[\w.+-]+@[\w-]+\.[\w.]+|https?://\S+|www\.\S+|\d{6}-?\d{7}"
)


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def rate(fn, texts, repeat):
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for t in texts:
            fn(t)
        best = min(best, time.perf_counter() - start)
    return len(texts) / best


def throughput(args, texts):
    from curation import pii

    t0 = time.perf_counter()
    import presidio_analyzer  # noqa: F401
    t1 = time.perf_counter()
    pii.analyzer()
    t2 = time.perf_counter()
    print(f"(a) {len(texts)} texts; presidio import {t1 - t0:.2f} s, engine build {t2 - t1:.2f} s (once per process)")
    pii.scan(texts[0])
    pii.analyze(texts[0])
    base = rate(PLAIN.search, texts, args.repeat)
    scan = rate(pii.scan, texts, args.repeat)
    presidio = rate(pii.analyze, texts, max(1, args.repeat // 2))
    print(f"    plain regex scan      {base:12,.0f} texts/s   1.00x")
    print(f"    curation.pii.scan     {scan:12,.0f} texts/s   {scan / base:.3f}x of plain ({base / scan:.1f}x slower)")
    print(f"    curation.pii.analyze  {presidio:12,.0f} texts/s   {presidio / base:.4f}x of plain "
          f"({base / presidio:.0f}x slower; {scan / presidio:.1f}x slower than scan)")


def check_cost(texts, label="(b)"):
    from labeling.text import Rules, check

    on = Rules(min_length=3)
    off = Rules(min_length=3, reject_urls=False, reject_emails=False, reject_phone_numbers=False,
                reject_personal_info=False)
    added = []
    for t in texts:
        times = {}
        for name, rules in (("on", on), ("off", off), ("on2", on), ("off2", off)):
            start = time.perf_counter()
            check(t, rules)
            times[name] = time.perf_counter() - start
        added.append(min(times["on"], times["on2"]) - min(times["off"], times["off2"]))
    print(f"{label} labeling.text.check, PII rules on - off, per comment: median {statistics.median(added) * 1e6:.0f} us, "
          f"p95 {pct(added, 0.95) * 1e6:.0f} us")


COMMENTS = [
    ("와 진짜 맛있겠다 {n}", "2024년 5월에 12,000원 주고 먹은 떡볶이 국물이 진하고 맛있어요 {n}번째"),
    ("색감 미쳤다 {n}", "3시 30분쯤 찍었는데 햇살이 예쁘게 들어와서 분위기가 좋네요 {n}"),
    ("귀엽다 {n}!!", "길고양이가 벤치 위에서 자고 있어요 털이 보송보송해 보여요 {n}"),
]


def submit_latency(args, *, lexicon: bool = False, comments=COMMENTS) -> dict:
    """Part (c). `lexicon`: the "on" side also runs the inline korcen lexicon at submit
    (CURATION["INLINE_LEXICON"], switched per submit; the "off" side runs neither); without it the
    lexicon is off on both sides (the PII rules alone). Returns {"on"/"off": (p50 ms, p95 ms)}."""
    from django.conf import settings
    from rest_framework.test import APIClient

    from datasets.models import Licence, Source
    from labeling import services
    from tests.factories import fake_images, make_labelers, make_project

    licence = Licence.objects.first()
    source = Source.objects.create(kind="upload", name="bench", default_licence=licence)
    fake_images(source, args.submits + 5)
    off_fields = dict(reject_urls=False, reject_emails=False, reject_phone_numbers=False, reject_personal_info=False)
    [on_user, off_user] = make_labelers(2, prefix="pii")
    projects = {"on": make_project("pii on", members=[on_user], overlap=1, cap_per_labeler=10_000),
                "off": make_project("pii off", members=[off_user], overlap=1, cap_per_labeler=10_000, **off_fields)}
    clients = {}
    for name, user in (("on", on_user), ("off", off_user)):
        c = APIClient()
        c.force_authenticate(user)
        clients[name] = c
    lat = {"on": [], "off": []}
    for i in range(args.submits):
        for name in (("on", "off") if i % 2 == 0 else ("off", "on")):
            settings.CURATION["INLINE_LEXICON"] = lexicon and name == "on"
            client = clients[name]
            r = client.post(f"/api/projects/{projects[name].pk}/next/", {"count": 1}, format="json")
            assert r.status_code == 200, r.content
            aid = r.json()["assignments"][0]["id"]
            reaction, specific = comments[i % len(comments)]
            body = {"comments": {"reaction": reaction.format(n=i), "specific": specific.format(n=i)}}
            start = time.perf_counter()
            r = client.post(f"/api/assignments/{aid}/submit/", body, format="json")
            lat[name].append(time.perf_counter() - start)
            assert r.status_code == 201, r.content
    services  # noqa: B018 (imported for the side effect of app loading order)
    p = {k: (statistics.median(v) * 1e3, pct(v, 0.95) * 1e3) for k, v in lat.items()}
    print(f"(c) submit via the test client, {args.submits} each, interleaved:")
    print(f"    checks off  p50 {p['off'][0]:.2f} ms  p95 {p['off'][1]:.2f} ms")
    print(f"    checks on   p50 {p['on'][0]:.2f} ms  p95 {p['on'][1]:.2f} ms")
    print(f"    added p95 {p['on'][1] - p['off'][1]:+.2f} ms; p95 on / off = {p['on'][1] / p['off'][1]:.3f}")
    return p


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--texts", type=int, default=6000)
    ap.add_argument("--submits", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        connection, old_name = setup_django(Path(tmp), "bench_flags_pii")
        try:
            from tests.test_pii import generated_set

            base = [t for t, _ in generated_set()]
            texts = (base * (args.texts // len(base) + 1))[:args.texts]
            throughput(args, texts)
            check_cost(texts)
            submit_latency(args)
        finally:
            connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
