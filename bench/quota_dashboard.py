"""The quota dashboard with many images: the selector and the page, against baselines.

    .venv/bin/python bench/quota_dashboard.py [--rows 500000] [--small 5000] [--repeat 5]

Runs on a throwaway SQLite file by default; with DATABASE_URL=postgres://... it runs on a
throwaway PostgreSQL database beside that one (`bench_quota_dashboard`, dropped afterwards).
Image rows are generated (fake hashes, no files; inserted with executemany), spread over every category and
subcategory. In the same run it times, at --small rows and at --rows rows (median of --repeat):
  count      SELECT COUNT(*) over the image table            the baseline
  group-by   COUNT(*) per (category, subcategory): the least any dashboard query must do
  selector   datasets.selectors.quota_dashboard()
  page       GET of the dashboard page as a planner (URL name `quota-dashboard`; the API
             /api/quotas/ as well where it exists)
and prints each time with its ratio to the count at the same size and to itself at --small rows.
The issue's target: the page under 1 s at 500,000 images.
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
import time
import uuid
from pathlib import Path

from _common import median_time, setup_django


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--small", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-quota-"))
    connection = old_name = None
    try:
        connection, old_name = setup_django(tmp, "bench_quota_dashboard")
        from django.db import transaction
        from django.db.models import Count
        from django.test import Client
        from django.test.utils import setup_test_environment
        from django.urls import NoReverseMatch, resolve, reverse
        from django.urls.exceptions import Resolver404

        from accounts import services as account_services
        from datasets import selectors
        from datasets.models import Image, Licence, Source, Subcategory

        setup_test_environment()
        print(f"database: {connection.vendor} ({connection.settings_dict['NAME']})")
        licence = Licence.objects.get(code="cc-by-4.0")
        source = Source.objects.create(kind="upload", name="bench", default_licence=licence)
        targets = [(s.category_id, s.pk) for s in Subcategory.objects.all()]
        cats = sorted({c for c, _ in targets})
        # Mostly in a subcategory; some in a category only, a few uncategorised.
        targets += [(c, None) for c in cats] + [(None, None)]

        fields = Image._meta.concrete_fields
        insert = "INSERT INTO {} ({}) VALUES ({})".format(
            connection.ops.quote_name(Image._meta.db_table),
            ", ".join(connection.ops.quote_name(f.column) for f in fields),
            ", ".join(["%s"] * len(fields)),
        )

        def add_rows(start: int, stop: int, batch: int = 20_000) -> None:
            # The model's own field preparation, sent with executemany: bulk_create on SQLite
            # splits rows into 999-parameter statements, many times slower at this size.
            for lo in range(start, stop, batch):
                params = []
                for i in range(lo, min(stop, lo + batch)):
                    cat, sub = targets[i % len(targets)]
                    h = f"{i:064x}"
                    row = Image(
                        id=uuid.UUID(int=i + 1), file=f"images/bench/{i}.jpg", thumbnail=f"thumbs/bench/{i}.jpg",
                        sha256=h, pixel_sha256=h, phash=(i * 2654435761) % (1 << 63), width=1280, height=960,
                        original_width=4000, original_height=3000, original_format="JPEG", original_bytes=2_000_000,
                        category_id=cat, subcategory_id=sub, source=source, licence=licence,
                    )
                    params.append([f.get_db_prep_save(f.pre_save(row, True), connection) for f in fields])
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.executemany(insert, params)
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")

        planner = account_services.create_user("bench-planner", "bench-planner-pass", "planner")
        client = Client()
        client.force_login(planner)
        pages = []
        try:
            pages.append(("page", reverse("quota-dashboard")))
        except NoReverseMatch:
            print("note: no URL named 'quota-dashboard' yet; the page is not timed")
        try:
            resolve("/api/quotas/")
            pages.append(("api", "/api/quotas/"))
        except Resolver404:
            print("note: no /api/quotas/ endpoint yet; the API is not timed")

        def get(url: str):
            def fn():
                response = client.get(url)
                assert response.status_code == 200, (url, response.status_code)
            return fn

        def group_by():
            return list(Image.objects.order_by().values("category_id", "subcategory_id").annotate(n=Count("*")))

        measures = {
            "count": lambda: Image.objects.count(),
            "group-by (covering index)": group_by,
            "selector": lambda: selectors.quota_dashboard(),
        }
        measures.update({name: get(url) for name, url in pages})

        results: dict[int, dict[str, float]] = {}
        have = 0
        for size in (args.small, args.rows):
            start = time.perf_counter()
            add_rows(have, size)
            print(f"{size:,} image rows ready ({size - have:,} inserted in {time.perf_counter() - start:.1f} s)")
            have = size
            results[size] = {name: median_time(fn, args.repeat) for name, fn in measures.items()}

        small, big = results[args.small], results[args.rows]
        print(f"\nmedian of {args.repeat}, seconds        {args.small:>10,} rows {args.rows:>10,} rows"
              f"   ratio to COUNT(*)   ratio to {args.small:,} rows")
        for name in measures:
            print(f"  {name:<30} {small[name]:>14.4f} {big[name]:>15.4f} {big[name] / big['count']:>18.1f}x"
                  f" {big[name] / small[name]:>17.1f}x")
        for name, url in pages:
            verdict = "under" if big[name] < 1 else "OVER"
            print(f"{url} at {args.rows:,} images: {big[name]:.3f} s ({verdict} the 1 s target)")
    finally:
        if connection is not None and old_name is not None:
            connection.creation.destroy_test_db(old_name, verbosity=0)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
