"""What the database benchmarks share: Django on a throwaway database, and a median timer.

Imported by the scripts in bench/ (run as `python bench/<name>.py`, so this folder is on the path).
"""
from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def setup_django(tmp: Path, pg_name: str):
    """Django with media and var/ under `tmp`, on a throwaway migrated database: a SQLite file in
    `tmp` (as in the embedded default), or with DATABASE_URL=postgres://... a database called
    `pg_name` beside that one (drop it with `connection.creation.destroy_test_db(old_name)`).
    Returns (connection, old_name)."""
    for name in ("S3_BUCKET", "PLATFORM_ENV", "MEDIA_ROOT"):
        os.environ.pop(name, None)
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ["PLATFORM_VAR_DIR"] = str(tmp / "var")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(ROOT))
    import django
    from django.db import connection

    django.setup()
    name = str(tmp / "bench.sqlite3") if connection.vendor == "sqlite" else pg_name
    connection.settings_dict["TEST"]["NAME"] = name
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    return connection, old_name


def median_time(fn, repeat: int) -> float:
    fn()  # warm: first-use costs (imports, template loading) are not what we measure
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
