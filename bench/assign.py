"""Next + submit pairs per second and the latency of `next` over HTTP, against a trivial GET.

    DATABASE_URL=postgres://... .venv/bin/python bench/assign.py [--photos 500000] [--small 50000]
        [--labelers 1000] [--history 50] [--concurrency 1,8,32,64] [--paced 32,64] [--think 2]
        [--seconds 10] [--workers 4] [--threads 1] [--conn-max-age 60] [--show-sql] [--explain]

Needs PostgreSQL: it creates a throwaway database beside DATABASE_URL's (`bench_assign`, dropped
afterwards) and migrates it. Sizes: --small photos, then --photos when larger (the default run
is one size, 50,000; `--photos 500000` measures 50,000 and 500,000 and prints the ratios).
  data      --labelers labelers with API tokens, Image rows (fake files and hashes, written with
            COPY) and per size a project over the first N photos: overlap 2, cap --cap (300),
            every labeler a member who already submitted --history photos of it (mid-project
            state, also written with COPY), so the engine's "not mine" and "not my own repeat"
            checks have rows to look at. The queue is filled by services.sync_project_images.
  service   next_assignments(count=1) + submit called in this process, one labeler after
            another: SQL queries per call (CaptureQueriesContext), median milliseconds, and this
            process's CPU per pair. No HTTP, no concurrency: what the engine itself costs.
  http      the app served the way the README's Production section says: `gunicorn config.wsgi
            --workers 4` with PLATFORM_ENV=production, DJANGO_SECRET_KEY, DJANGO_ALLOWED_HOSTS,
            collectstatic for WhiteNoise, DATABASE_CONN_MAX_AGE=60 (production's default; 0 opens a
            database connection per request and halves the throughput), on a free port. For each C in
            --concurrency, C clients (each its own labeler and API token, keep-alive http.client
            connections, threads spread over --client-procs processes) run for --seconds:
              baseline  GET /api/me/, a trivial authenticated request (closed loop)
              closed    POST /api/projects/{id}/next/ {"count": 1}, then
                        POST /api/assignments/{aid}/submit/ with distinct rule-abiding texts,
                        again at once: C clients that never pause, i.e. as much load as C
                        connections can make
            and for each C in --paced the same pairs with a pause of --think seconds (0.5x-1.5x,
            random) after each submit: C labelers working fast but like people, so the latency
            is what one request costs, not the length of the queue in front of it.
            A labeler who reaches the cap is replaced by an unused one. Every row runs at each
            size back to back (the order alternating), so a noisy moment on a shared machine hits
            both sizes.
Prints per size and row: pairs/s, next p50/p95/p99, submit p50/p95, the baseline's rate and
p50/p95, next-p95 / baseline-p95 (paced rows: against the C=1 baseline), errors, CPU ms per pair
of gunicorn, of the PostgreSQL backends and of the clients (from /proc), the cores they kept busy
and the cores the rest of the machine kept busy meanwhile (on a shared machine, a row with
"others" well above 0 was measured with less than the whole machine); then p95(large) / p95(small) per row. Finally it checks the engine's promises on what the
database holds (overlap, caps, no repeated pair). The issue's aims: next p95 under 30 ms at 32
labelers, and p95 at 500,000 photos <= 1.5 x p95 at 50,000.
"""
from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = "bench_assign"
FAST_HASHER = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# --- Setup ------------------------------------------------------------------------------------

def setup_django(tmp: Path):
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit("bench/assign.py needs PostgreSQL: set DATABASE_URL=postgres://user@host:5432/name")
    for name in ("S3_BUCKET", "PLATFORM_ENV", "MEDIA_ROOT", "CELERY_BROKER_URL"):
        os.environ.pop(name, None)
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ["PLATFORM_VAR_DIR"] = str(tmp / "var")
    os.environ["DJANGO_DEBUG"] = "false"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(ROOT))
    import django
    from django.db import connection

    django.setup()
    connection.settings_dict["TEST"]["NAME"] = DB_NAME
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    parts = urlsplit(url)
    bench_url = urlunsplit((parts.scheme, parts.netloc, "/" + DB_NAME, parts.query, ""))
    return connection, old_name, bench_url


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    k = (len(values) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def texts(n: int, who: int, word: str = "멋지다") -> dict[str, str]:
    """A distinct, rule-abiding comment set (the own-repeat rule refuses a text twice)."""
    return {"reaction": f"와 {word} {who}-{n}", "specific": f"사진 속 풍경이 정말 아름다워요 {who}-{n}번 {word}"}


# --- Data -------------------------------------------------------------------------------------

class Data:
    """Images, labelers and projects in the bench database; everything bulk-written."""

    def __init__(self, connection, labelers: int):
        from django.test import override_settings

        from accounts import services as accounts
        from datasets.models import Category, Licence, Source

        self.connection = connection
        self.licence = Licence.objects.get(code="cc-by-4.0")
        self.categories = list(Category.objects.order_by("position", "id").prefetch_related("subcategories"))
        self.images = 0  # Image rows so far; image i has uuid int i + 1
        self.sources = []
        start = time.perf_counter()
        self.users, self.keys = [], []
        with override_settings(PASSWORD_HASHERS=FAST_HASHER):  # the real hasher costs ~0.3 s a user
            for i in range(labelers):
                user = accounts.create_user(f"bench{i:04d}", "bench-labeler-pass", "labeler")
                self.users.append(user)
                self.keys.append(accounts.create_token(user, "bench")[1])
        print(f"{labelers:,} labelers with API tokens ({time.perf_counter() - start:.1f} s)")
        self.Source = Source

    def copy(self, table: str, columns: list[str], rows) -> None:
        qn = self.connection.ops.quote_name
        with self.connection.cursor() as cursor:
            with cursor.copy(f"COPY {qn(table)} ({', '.join(map(qn, columns))}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)

    def add_images(self, upto: int):
        """Image rows up to `upto` in all, in a new source; returns that source."""
        from django.utils import timezone

        from datasets.models import Image

        source = self.Source.objects.create(kind="upload", name=f"bench-{upto}", default_licence=self.licence)
        targets = [(c.pk, s.pk) for c in self.categories for s in c.subcategories.all()] or [
            (c.pk, None) for c in self.categories
        ]
        fields = {f.column: f for f in Image._meta.concrete_fields}
        now = timezone.now()

        def rows():
            for i in range(self.images, upto):
                cat, sub = targets[i % len(targets)]
                h = f"{i:064x}"
                values = {
                    "id": uuid.UUID(int=i + 1), "file": f"images/bench/{i}.jpg", "thumbnail": f"thumbs/bench/{i}.jpg",
                    "sha256": h, "pixel_sha256": h, "phash": (i * 2654435761) % (1 << 63), "width": 1280,
                    "height": 960, "original_width": 4000, "original_height": 3000, "original_format": "JPEG",
                    "original_bytes": 2_000_000, "original_name": "", "category_id": cat, "subcategory_id": sub,
                    "source_id": source.pk, "licence_id": self.licence.pk, "author": "", "original_url": "",
                    "title": "", "external_id": "", "import_job_id": None, "created_at": now,
                }
                yield [values[c] for c in fields]

        self.copy(Image._meta.db_table, list(fields), rows())
        self.images = upto
        self.sources.append(source)
        return source

    def make_project(self, size: int, history: int, cap: int = 300):
        """A project over the first `size` images, every labeler a member, `history` submitted
        photos per labeler (pairs of labelers per photo, as overlap 2 leaves them)."""
        from django.db import transaction
        from django.utils import timezone

        from labeling import services, text
        from labeling.models import Assignment, Comment, ProjectImage, ProjectMember

        start = time.perf_counter()
        project = services.create_project(f"bench {size:,} photos", overlap=2, cap_per_labeler=cap,
                                          sources=self.sources)
        added, _ = services.sync_project_images(project)
        assert added == size, (added, size)
        sync_s = time.perf_counter() - start
        ProjectMember.objects.bulk_create(
            [ProjectMember(project=project, user=u) for u in self.users], batch_size=1000
        )
        n_users = len(self.users)
        done_photos = min(size, history * n_users // 2)
        if done_photos:
            # Photo j was labeled by labelers 2j and 2j+1 (mod n): each labeler gets distinct photos.
            now = timezone.now()
            image_ids = list(
                ProjectImage.objects.filter(project=project).order_by("image_id").values_list("image_id", flat=True)[:done_photos]
            )
            types = list(project.comment_types.order_by("position"))
            with transaction.atomic():
                next_id = (Assignment.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1
                a_rows, c_rows = [], []
                per_user = [0] * n_users
                for j, image_id in enumerate(image_ids):
                    for who in ((2 * j) % n_users, (2 * j + 1) % n_users):
                        aid = next_id
                        next_id += 1
                        per_user[who] += 1
                        when = now - timedelta(hours=2, seconds=j)
                        a_rows.append((aid, project.pk, image_id, self.users[who].pk, "submitted", when,
                                       when + timedelta(minutes=30), when + timedelta(minutes=1), "", 60.0, "", "", ""))
                        for ct, value in zip(types, texts(j, who, "예쁘다").values()):
                            c_rows.append((aid, ct.pk, value, text.count_length(value), text.comparable(value), None, now))
                self.copy(Assignment._meta.db_table,
                          ["id", "project_id", "image_id", "labeler_id", "status", "leased_at", "expires_at",
                           "submitted_at", "idempotency_key", "work_seconds", "report_reason", "report_note",
                           "report_resolution"], a_rows)
                self.copy(Comment._meta.db_table,
                          ["assignment_id", "comment_type_id", "text", "length", "key", "guideline_version", "created_at"],
                          c_rows)
                with self.connection.cursor() as cursor:
                    cursor.execute("SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)",
                                   [Assignment._meta.db_table, next_id])
                ProjectImage.objects.filter(project=project, image_id__in=image_ids).update(slots_taken=2, submitted_count=2)
                for who, n in enumerate(per_user):
                    if n:
                        ProjectMember.objects.filter(project=project, user=self.users[who]).update(
                            submitted_count=n, work_seconds_total=60.0 * n, last_submitted_at=now
                        )
        services.refresh_priorities(project)
        with self.connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        print(f"project of {size:,} photos: queue synced in {sync_s:.1f} s; {done_photos:,} photos already "
              f"labeled twice ({2 * done_photos:,} comment sets); ready in {time.perf_counter() - start:.1f} s")
        return project


# --- Service level ------------------------------------------------------------------------------

def service_profile(project, users, pairs: int, start: int = 0) -> dict:
    """next_assignments(count=1) + submit, one labeler after another, in this process."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from labeling import services

    next_q, submit_q, next_ms, submit_ms = [], [], [], []
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for n in range(start, start + pairs):
        user = users[n % len(users)]
        connection.queries_log.clear()  # the log keeps 9,000 queries; the context counts its growth
        with CaptureQueriesContext(connection) as ctx:
            t0 = time.perf_counter()
            a = services.next_assignments(project, user, 1)[0]
            t1 = time.perf_counter()
        next_q.append(len(ctx.captured_queries))
        last_next = ctx.captured_queries
        next_ms.append((t1 - t0) * 1000)
        with CaptureQueriesContext(connection) as ctx:
            t0 = time.perf_counter()
            services.submit(a, user, texts(n, user.pk), idempotency_key=f"svc-{n}")
            t1 = time.perf_counter()
        submit_q.append(len(ctx.captured_queries))
        submit_ms.append((t1 - t0) * 1000)
        last = ctx.captured_queries
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return {
        "cpu_ms_per_pair": cpu * 1000 / pairs, "wall_ms_per_pair": wall * 1000 / pairs,
        "next_queries": statistics.median(next_q), "submit_queries": statistics.median(submit_q),
        "next_ms": statistics.median(next_ms), "submit_ms": statistics.median(submit_ms),
        "max_next_queries": max(next_q), "max_submit_queries": max(submit_q), "last_submit": last,
        "last_next": last_next,
    }


def _merge_service(runs: list[dict]) -> dict:
    out = {key: statistics.median(r[key] for r in runs)
           for key in ("next_queries", "submit_queries", "next_ms", "submit_ms", "cpu_ms_per_pair")}
    out["max_next_queries"] = max(r["max_next_queries"] for r in runs)
    out["max_submit_queries"] = max(r["max_submit_queries"] for r in runs)
    return out


def explain_pick(project, user) -> str:
    from django.db import connection, transaction

    from labeling import services

    with transaction.atomic():
        qs = services._candidates(project, user, skip_locked=True, tried=set()).values_list("image_id", flat=True)[:1]
        sql, params = qs.query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
            return "\n".join(r[0] for r in cursor.fetchall())


# --- HTTP ---------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(tmp: Path, bench_url: str, workers: int, threads: int, conn_max_age: int, key: str):
    env = {
        **os.environ,
        "PLATFORM_ENV": "production",
        "DJANGO_SECRET_KEY": "bench-" + uuid.uuid4().hex,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_SECURE_COOKIES": "false",
        "DATABASE_URL": bench_url,
        "DATABASE_CONN_MAX_AGE": str(conn_max_age),
        "PLATFORM_VAR_DIR": str(tmp / "var"),
        "LOG_LEVEL": "ERROR",  # not a line per 4xx answer
    }
    env.pop("DJANGO_DEBUG", None)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    python = sys.executable
    # WhiteNoise serves collected static files; without a manifest the pages would fail.
    subprocess.run([python, "manage.py", "collectstatic", "--no-input", "-v", "0"], cwd=ROOT, env=env, check=True)
    port = free_port()
    gunicorn = str(Path(python).with_name("gunicorn"))
    cmd = [gunicorn, "config.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
           "--backlog", "2048", "--log-level", "warning"]
    if threads > 1:
        cmd += ["--threads", str(threads)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/api/me/", headers={"Authorization": f"Token {key}"})
            conn.getresponse().read()
            return proc, port
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError("gunicorn exited") from None
            time.sleep(0.3)
    proc.terminate()
    raise RuntimeError("gunicorn did not answer within 60 s")


def client_process(port: int, project_id: int, mode: str, think: float, clients: list[int], pool: list[str],
                   spare, start_at: float, stop_at: float, out) -> None:
    """Threads in one process, one per client; client i starts as labeler `clients[i]` (an index
    into `pool`, the API keys) and, when that labeler reaches the cap, takes the next unused one
    (`spare`, shared by all processes). Each request is recorded as (kind, ms, ok, error); puts
    (records, CPU seconds this process used while the clock ran) on `out`."""
    import random

    results: list[tuple[str, float, bool, str]] = []
    cpu_at_start: list[float] = []
    lock = threading.Lock()

    def worker(who: int):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Authorization": f"Token {pool[who]}", "Content-Type": "application/json", "Host": "127.0.0.1"}
        local = []
        n = 0

        def call(method, path, body=None):
            nonlocal conn
            t0 = time.perf_counter()
            for attempt in (1, 2):
                try:
                    conn.request(method, path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    status = resp.status
                    break
                except (OSError, http.client.HTTPException) as exc:
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                    stale = isinstance(exc, (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected))
                    if attempt == 2 or not stale:  # a kept-alive connection the server closed: once more
                        return (time.perf_counter() - t0) * 1000, 0, repr(exc).encode()
            if resp.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            return (time.perf_counter() - t0) * 1000, status, data

        while time.time() < start_at:
            time.sleep(0.001)
        with lock:
            if not cpu_at_start:
                cpu_at_start.append(time.process_time())
        if think:  # paced labelers do not all start at the same instant
            time.sleep(random.uniform(0, 1.5 * think))
        while time.time() < stop_at:
            if mode == "baseline":
                ms, status, data = call("GET", "/api/me/")
                local.append(("me", ms, status == 200, "" if status == 200 else f"{status} {data[:120]!r}"))
                continue
            ms, status, data = call("POST", f"/api/projects/{project_id}/next/", json.dumps({"count": 1}))
            state = json.loads(data).get("state") if status == 200 else None
            if state == "cap_reached":  # this labeler is done: another one takes their place
                with spare.get_lock():
                    who = spare.value
                    spare.value += 1
                if who >= len(pool):
                    local.append(("next", ms, False, "no labeler left under the cap"))
                    break
                headers["Authorization"] = f"Token {pool[who]}"
                n = 0
                continue
            ok = state == "ok"
            local.append(("next", ms, ok, "" if ok else f"{status} {state or data[:120]!r}"))
            if not ok:
                time.sleep(0.05)
                continue
            aid = json.loads(data)["assignments"][0]["id"]
            payload = json.dumps({"comments": texts(n, who)}, ensure_ascii=False).encode()
            ms, status, data = call("POST", f"/api/assignments/{aid}/submit/", payload)
            ok = status in (200, 201)
            local.append(("submit", ms, ok, "" if ok else f"{status} {data[:120]!r}"))
            n += 1
            if think:  # a labeler looking at the photo and writing
                time.sleep(think * random.uniform(0.5, 1.5))
        conn.close()
        with lock:
            results.extend(local)

    threads = [threading.Thread(target=worker, args=(who,)) for who in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put((results, time.process_time() - (cpu_at_start[0] if cpu_at_start else time.process_time())))


def run_load(port: int, project_id: int, mode: str, c: int, pool: list[str], seconds: float, procs: int,
             think: float = 0.0) -> dict:
    """`c` clients for `seconds`: the first c keys of `pool`, then the next unused ones as
    labelers reach their cap. Returns latencies by kind, errors, keys used, client CPU."""
    from django.db import connection

    connection.close()  # the forked clients must not share the parent's database socket
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    spare = ctx.Value("i", c)
    procs = max(1, min(procs, c))
    groups = [list(range(c))[i::procs] for i in range(procs)]
    start_at = time.time() + 0.5 + 0.05 * procs
    stop_at = start_at + seconds
    ps = [ctx.Process(target=client_process, args=(port, project_id, mode, think, g, pool, spare, start_at, stop_at, out))
          for g in groups]
    for p in ps:
        p.start()
    results = []
    client_cpu = 0.0
    for _ in ps:
        records, cpu = out.get()
        results.extend(records)
        client_cpu += cpu
    for p in ps:
        p.join()
    by_kind: dict[str, list[float]] = {}
    errors: list[str] = []
    for kind, ms, ok, err in results:
        if ok:
            by_kind.setdefault(kind, []).append(ms)
        else:
            errors.append(f"{kind}: {err}")
    return {"by_kind": by_kind, "errors": errors, "seconds": seconds, "client_cpu": client_cpu,
            "used": min(spare.value, len(pool))}


# --- Checks -------------------------------------------------------------------------------------

def check_promises(project) -> str:
    from django.db.models import Count

    from labeling.models import Assignment, AssignmentStatus, ProjectImage, ProjectMember

    live = Assignment.objects.filter(project=project, status__in=(AssignmentStatus.LEASED, AssignmentStatus.SUBMITTED))
    over = live.values("image_id").annotate(n=Count("labeler_id", distinct=True)).filter(n__gt=project.overlap).count()
    repeats = Assignment.objects.filter(project=project).values("image_id", "labeler_id").annotate(n=Count("id")).filter(n__gt=1).count()
    per_labeler = dict(live.values("labeler_id").annotate(n=Count("id")).values_list("labeler_id", "n"))
    past_cap = sum(1 for m in ProjectMember.objects.filter(project=project).select_related("project")
                   if per_labeler.get(m.user_id, 0) > m.cap)
    slots_wrong = ProjectImage.objects.filter(project=project, slots_taken__gt=project.overlap).count()
    assert (over, repeats, past_cap, slots_wrong) == (0, 0, 0, 0), (over, repeats, past_cap, slots_wrong)
    return "promises hold: no photo past overlap, no labeler past cap, no (photo, labeler) pair twice"


# --- Main ---------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=50_000)
    parser.add_argument("--small", type=int, default=50_000, help="the size measured first when --photos is larger")
    parser.add_argument("--labelers", type=int, default=1000)
    parser.add_argument("--cap", type=int, default=300, help="the project's cap per labeler")
    parser.add_argument("--history", type=int, default=50, help="photos each labeler already submitted")
    parser.add_argument("--concurrency", default="1,8,32,64")
    parser.add_argument("--seconds", type=float, default=10, help="length of each measurement")
    parser.add_argument("--paced", default="32,64", help="concurrency levels also run with --think (empty: none)")
    parser.add_argument("--think", type=float, default=2.0,
                        help="paced runs: seconds a labeler pauses after each submit (0.5x-1.5x, random)")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn --workers (the README says 4)")
    parser.add_argument("--threads", type=int, default=1, help="gunicorn --threads (1: sync workers)")
    parser.add_argument("--conn-max-age", type=int, default=60, help="DATABASE_CONN_MAX_AGE for gunicorn")
    parser.add_argument("--client-procs", type=int, default=4, help="client processes (threads spread over them)")
    parser.add_argument("--service-pairs", type=int, default=200)
    parser.add_argument("--no-http", action="store_true", help="only the data and the service-level profile")
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE of the pick query")
    parser.add_argument("--show-sql", action="store_true", help="print the SQL of one next and one submit")
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",") if c]
    paced = [int(c) for c in args.paced.split(",") if c]
    sizes = sorted({min(args.small, args.photos), args.photos})
    if args.labelers < max(levels + paced + [0]) + 100:
        sys.exit("--labelers must exceed the largest concurrency by 100 (the service profile's labelers)")

    tmp = Path(tempfile.mkdtemp(prefix="bench-assign-"))
    connection = old_name = None
    gunicorn = None
    try:
        connection, old_name, bench_url = setup_django(tmp)
        with connection.cursor() as cursor:
            version = cursor.connection.info.server_version
        print(f"database: PostgreSQL {version // 10000}.{version % 10000} ({DB_NAME}); {os.cpu_count()} CPUs; "
              f"load average before the run {os.getloadavg()[0]:.1f}")
        data = Data(connection, args.labelers)
        pool = data.keys[:-100]  # HTTP clients; the last 100 labelers are the service profile's
        projects = {}
        for size in sizes:  # one project per size; the larger one's photos include the smaller one's
            start = time.perf_counter()
            data.add_images(size)
            print(f"{size:,} image rows ({time.perf_counter() - start:.1f} s)")
            projects[size] = data.make_project(size, args.history, args.cap)
            if args.explain:
                print(explain_pick(projects[size], data.users[-1]))

        # Service level: the sizes alternate (twice each) so that a noisy moment hits both.
        runs: dict[int, list[dict]] = {size: [] for size in sizes}
        for round_ in range(2):
            for size in sizes if round_ % 2 == 0 else sizes[::-1]:
                runs[size].append(service_profile(projects[size], data.users[-100:], args.service_pairs // 2,
                                                  start=round_ * args.service_pairs))
        report = {size: {"service": _merge_service(runs[size]), "http": {}} for size in sizes}
        print(f"\nservice level: next_assignments(count=1) + submit called in this process, one labeler after "
              f"another, {args.service_pairs} pairs per size (medians):")
        for size in sizes:
            svc = report[size]["service"]
            print(f"  {size:>9,} photos: next {svc['next_queries']:.0f} queries (max {svc['max_next_queries']}) "
                  f"{svc['next_ms']:.1f} ms; submit {svc['submit_queries']:.0f} queries (max "
                  f"{svc['max_submit_queries']}) {svc['submit_ms']:.1f} ms; CPU of this process "
                  f"{svc['cpu_ms_per_pair']:.1f} ms per pair")
        if args.show_sql:
            svc = runs[sizes[-1]][-1]
            for q in svc["last_next"] + [{"sql": "---- submit"}] + svc["last_submit"]:
                print("  ", q["sql"])

        if not args.no_http:
            gunicorn, port = start_gunicorn(tmp, bench_url, args.workers, args.threads, args.conn_max_age, data.keys[-1])
            print(f"\ngunicorn config.wsgi --workers {args.workers}"
                  + (f" --threads {args.threads}" if args.threads > 1 else "")
                  + f" on 127.0.0.1:{port} (PLATFORM_ENV=production, DATABASE_CONN_MAX_AGE={args.conn_max_age}); "
                  f"each row runs at every size back to back")
            used = {size: 0 for size in sizes}  # labelers used up per project (cap reached)
            plan = [("closed", c) for c in levels] + [("paced", c) for c in paced]
            for i, (mode, c) in enumerate(plan):
                for size in sizes if i % 2 == 0 else sizes[::-1]:
                    project, keys = projects[size], pool[used[size]:]
                    base = None
                    if mode == "closed":
                        base = run_load(port, project.pk, "baseline", c, keys, args.seconds, args.client_procs)
                    cpu0 = cpu_snapshot(gunicorn.pid)
                    think = args.think if mode == "paced" else 0.0
                    pairs = run_load(port, project.pk, "pairs", c, keys, args.seconds, args.client_procs, think)
                    report[size]["http"][mode, c] = summarise(base, pairs, cpu_used(cpu0, cpu_snapshot(gunicorn.pid)))
                    used[size] += pairs["used"]
                print(f"  {mode} C={c} done (load average {os.getloadavg()[0]:.1f})")
            for size in sizes:
                print_table(size, report[size]["http"], args)
        for size in sizes:
            print(f"{size:,} photos: {check_promises(projects[size])}")
        if len(sizes) == 2:
            small, big = sizes
            a, b = report[small]["service"], report[big]["service"]
            print(f"\nat {big:,} photos / at {small:,} photos (the aim for the p95 of next: <= 1.5)")
            print(f"  service level, median of next: {a['next_ms']:.1f} ms -> {b['next_ms']:.1f} ms, "
                  f"ratio {b['next_ms'] / a['next_ms']:.2f}")
            for key in report[small]["http"]:
                ra, rb = report[small]["http"][key], report[big]["http"][key]
                print(f"  {key[0]:<6} C={key[1]:<3} next p95 {ra['next_p95']:7.1f} ms -> {rb['next_p95']:7.1f} ms, "
                      f"ratio {rb['next_p95'] / ra['next_p95']:.2f}; pairs/s {ra['pairs_s']:.1f} -> {rb['pairs_s']:.1f}")
    finally:
        if gunicorn is not None:
            gunicorn.terminate()
            try:
                gunicorn.wait(timeout=20)
            except subprocess.TimeoutExpired:
                gunicorn.kill()
        if connection is not None and old_name is not None:
            connection.close()
            connection.creation.destroy_test_db(old_name, verbosity=0)
        shutil.rmtree(tmp, ignore_errors=True)


def cpu_snapshot(gunicorn_pid: int) -> dict[str, dict[int, float]]:
    """CPU seconds (user + system) so far of the gunicorn workers and of the PostgreSQL backends
    serving the bench database, by pid, from /proc (Linux; empty elsewhere)."""
    from django.db import connection

    def cpu(pid: int) -> float | None:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return None

    def ppid(pid: int) -> int | None:
        try:
            with open(f"/proc/{pid}/stat") as f:
                return int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            return None

    workers = [int(p) for p in os.listdir("/proc") if p.isdigit() and ppid(int(p)) == gunicorn_pid] \
        if os.path.isdir("/proc") else []
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
        backends = [r[0] for r in cursor.fetchall()]
    out: dict[str, dict[int, float]] = {"web": {}, "db": {}, "machine": {0: machine_cpu()}}
    for kind, pids in (("web", [gunicorn_pid, *workers]), ("db", backends)):
        for pid in pids:
            value = cpu(pid)
            if value is not None:
                out[kind][pid] = value
    return out


def machine_cpu() -> float:
    """CPU seconds the whole machine has been busy (all cores), from /proc/stat; 0 elsewhere."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return 0.0
    busy = sum(fields) - fields[3] - (fields[4] if len(fields) > 4 else 0)  # all but idle and iowait
    return busy / os.sysconf("SC_CLK_TCK")


def cpu_used(before: dict, after: dict) -> dict[str, float]:
    return {kind: sum(v - before[kind].get(pid, 0.0) for pid, v in after[kind].items()) for kind in after}


def summarise(base: dict | None, pairs: dict, cpu: dict[str, float]) -> dict:
    nxt = pairs["by_kind"].get("next", [])
    sub = pairs["by_kind"].get("submit", [])
    me = base["by_kind"].get("me", []) if base else []
    machine = cpu.pop("machine", 0.0)
    cpu = {**cpu, "client": pairs["client_cpu"]}
    errors = pairs["errors"] + (base["errors"] if base else [])
    return {
        "pairs_s": len(sub) / pairs["seconds"],
        "next_p50": percentile(nxt, 50), "next_p95": percentile(nxt, 95), "next_p99": percentile(nxt, 99),
        "submit_p50": percentile(sub, 50), "submit_p95": percentile(sub, 95),
        "me_s": len(me) / base["seconds"] if base else float("nan"),
        "me_p50": percentile(me, 50), "me_p95": percentile(me, 95),
        "errors": len(errors), "error_samples": errors[:3],
        # CPU milliseconds per pair: gunicorn (master and workers), PostgreSQL backends, clients.
        "cpu_ms": {k: v * 1000 / max(1, len(sub)) for k, v in cpu.items()},
        "cores_busy": sum(cpu.values()) / pairs["seconds"],
        # Everything else the machine ran meanwhile (other people's work on a shared machine).
        "others_busy": max(0.0, machine - sum(cpu.values())) / pairs["seconds"],
    }


def print_table(size: int, rows: dict, args) -> None:
    print(f"\n{size:,} photos, overlap 2, cap {args.cap}, {args.seconds:g} s per row; latencies in ms. closed: each "
          f"client sends next, submit, next, ... without pause; paced: a {args.think:g} s (0.5x-1.5x) pause after each "
          f"submit. 'me' is the baseline GET /api/me/ run closed at the same concurrency just before (paced rows: "
          f"ratio to the C=1 baseline). CPU: milliseconds per pair of gunicorn, PostgreSQL and the clients; the cores they kept busy, and "
          f"the cores the rest of the machine kept busy meanwhile (others).")
    print("  mode     C  pairs/s  next p50   p95   p99  submit p50   p95    me/s  me p50   p95  next p95/me p95"
          "  errors  CPU ms/pair: web    db client  cores busy  others")
    first_me = next((r["me_p95"] for r in rows.values() if r["me_p95"] == r["me_p95"]), float("nan"))
    for (mode, c), r in rows.items():
        me95 = r["me_p95"] if r["me_p95"] == r["me_p95"] else first_me  # paced rows: the C=1 baseline
        print(f"  {mode:<6} {c:>3} {r['pairs_s']:>8.1f} {r['next_p50']:>9.1f} {r['next_p95']:>5.1f} {r['next_p99']:>5.1f}"
              f" {r['submit_p50']:>11.1f} {r['submit_p95']:>5.1f} {r['me_s']:>7.1f} {r['me_p50']:>7.1f}"
              f" {r['me_p95']:>5.1f} {r['next_p95'] / me95:>15.2f} {r['errors']:>7}"
              f" {r['cpu_ms']['web']:>17.1f} {r['cpu_ms']['db']:>5.1f} {r['cpu_ms']['client']:>6.1f} {r['cores_busy']:>11.2f} {r['others_busy']:>7.2f}")
    for (mode, c), r in rows.items():
        for e in r["error_samples"]:
            print(f"  {mode} C={c} error: {e}")


if __name__ == "__main__":
    main()
