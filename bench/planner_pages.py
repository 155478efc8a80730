"""The planner pages of a big labeling project, against a baseline in the same run.

    .venv/bin/python bench/planner_pages.py [--photos 500000] [--labelers 1000] [--repeat 5]
                                            [--comment-share 1.0] [--save] [--only comments] [--keep]

Runs on a throwaway SQLite file by default; with DATABASE_URL=postgres://... it runs on a
throwaway PostgreSQL database beside that one (`bench_planner_pages`, dropped afterwards).

Generates, with bulk inserts (executemany on SQLite, COPY on PostgreSQL; fake files, no pixels):
  --photos catalogue images over every category (some with none) and one project's queue of them,
  with submitted_count spread 0/1/2 (10 % / 20 % / 70 %) under overlap 2;
  --labelers labeler accounts, all members (counters filled in as services.submit keeps them);
  one submitted assignment per set (1.6 per photo), a skipped one on every third photo, an open
  lease per labeler and 2,000 reports (half resolved): about 970,000 assignment rows at 500,000
  photos, some 800 submitted sets per labeler (the project's cap is 1,000 here);
  two comments (the two default comment types) per submitted set: 3.2 per photo, about
  1,600,000 rows (--comment-share below 1 writes comments for that share of the sets only);
  ten guideline examples and a published version.
Then it times, median of --repeat after one warm-up, each planner page fetched by a logged-in
planner with Django's test client (the whole view and template, no HTTP server), and a few
selectors, and prints each time with its ratio to the baseline:
  count      SELECT COUNT(*) over the queue table (labeling_projectimage)
With --save it also times saving the settings page unchanged: a POST, not a page view, that
re-syncs the queue with the project's filters (services.sync_project_images).
The issue's target: every planner page under 1 s with 500,000 photos and 1,000 labelers.

The comment browser (/projects/<id>/comments/: about 1,600,000 comments at 500,000 photos, their
texts composed from Korean word lists, a rare word in one comment of 1,009) is timed unfiltered,
for one labeler, longest first, and with three searches: a rare word of three syllables, a common
one, and two syllables, common and rare (no whole trigram inside: pg_trgm cannot narrow those). On PostgreSQL the
searches run twice: first without the trigram index (`comment_text_trgm` is dropped before the
rows are written), then after building it (its build time is printed), so the table shows the
index's gain in the same run. `--only comments` times only these (and the baseline); `--keep`
leaves the PostgreSQL database in place to EXPLAIN its queries (drop it yourself).
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

from _common import median_time, setup_django

DB_NAME = "bench_planner_pages"
TRGM_INDEX = "comment_text_trgm"  # labeling/migrations/0003_comment_search.py




class Writer:
    """Rows for one model's table, written in bulk: executemany in batches on SQLite, COPY on
    PostgreSQL. Rows start from a template (the model's own prepared defaults) and set only the
    columns that vary, so millions of rows cost little Python."""

    def __init__(self, connection, model, template, vary: list[str], batch: int = 20_000):
        self.connection, self.model, self.batch = connection, model, batch
        # The primary key only where rows set it; elsewhere the database numbers them.
        fields = [f for f in model._meta.concrete_fields if not (f.primary_key and f.column not in vary)]
        self.columns = [f.column for f in fields]
        self.base = [f.get_db_prep_save(f.pre_save(template, True), connection) for f in fields]
        self.slots = [self.columns.index(c) for c in vary]
        self.rows: list[list] = []
        self.written = 0
        self.table = connection.ops.quote_name(model._meta.db_table)
        self.pg = connection.vendor == "postgresql"

    def add(self, *values) -> None:
        row = self.base.copy()
        for slot, value in zip(self.slots, values, strict=True):
            row[slot] = value
        self.rows.append(row)
        if len(self.rows) >= self.batch:
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        cols = ", ".join(self.connection.ops.quote_name(c) for c in self.columns)
        with self.connection.cursor() as cursor:
            if self.pg:
                with cursor.cursor.copy(f"COPY {self.table} ({cols}) FROM STDIN") as copy:
                    for row in self.rows:
                        copy.write_row(row)
            else:
                marks = ", ".join(["%s"] * len(self.columns))
                cursor.executemany(f"INSERT INTO {self.table} ({cols}) VALUES ({marks})", self.rows)
        self.written += len(self.rows)
        self.rows = []


SUBJECTS = ("고양이", "강아지", "족발", "라면", "바다", "하늘", "커피", "케이크", "아이들", "할머니", "자전거", "벚꽃",
            "단풍", "야경", "김치찌개", "떡볶이", "한강", "산책길", "노을", "눈사람")
ADVERBS = ("진짜", "너무", "완전", "정말", "엄청", "살짝", "생각보다", "오늘따라")
ENDINGS = ("귀엽다", "맛있겠다", "예쁘다", "멋지다", "분위기 좋다", "색감 미쳤다", "평화롭다", "따뜻해 보여요", "신기하다",
           "부럽다", "감성 있다", "대박이다")
TAILS = ("", "!", "!!", "~", "ㅋㅋ", "ㅎㅎ", "..", " 👍")
PLACES = ("창가", "식탁 위", "골목", "공원", "해변", "시장", "거실", "카페 테라스", "지하철역 앞", "산 정상")
DETAILS = ("빛이 드는 게", "표정이", "색깔이", "모양이", "김이 나는 게", "그림자가", "배경이", "구도가", "윤기가", "털이")
RARE_WORD = "무지개"  # in one comment of RARE_EVERY: the selective search
RARE_EVERY = 1009


def comment_text(n: int, kind: int) -> str:
    """The n-th generated comment, a short reaction (kind 0) or a specific one (kind 1)."""
    subject = RARE_WORD if n % RARE_EVERY == 0 else SUBJECTS[(n // 2 * 7 + kind * 3) % len(SUBJECTS)]
    adverb, ending = ADVERBS[(n // 3) % len(ADVERBS)], ENDINGS[(n * 5 + kind * 3) % len(ENDINGS)]
    tail = TAILS[(n // 7) % len(TAILS)]
    if kind == 0:
        return f"{subject} {adverb} {ending}{tail}"
    return (f"{PLACES[(n // 11) % len(PLACES)]}에 있는 {subject} {DETAILS[(n * 3) % len(DETAILS)]} "
            f"{adverb} {ending}{tail}")


def generate(connection, args, planner):
    """The catalogue, the project and its labelers, queue, assignments and comments."""
    from django.core.management.color import no_style
    from django.db import transaction
    from django.utils import timezone

    from accounts.models import User
    from datasets.models import Category, Image, Licence, Source
    from labeling import services
    from labeling import text as text_rules
    from labeling.models import Assignment, Comment, ProjectImage, ProjectMember

    pg = connection.vendor == "postgresql"
    uid = (lambda u: u) if pg else (lambda u: u.hex)
    when = (lambda d: d) if pg else connection.ops.adapt_datetimefield_value
    now = timezone.now()
    licence = Licence.objects.get(code="cc-by-4.0")
    source = Source.objects.create(kind="upload", name="bench", default_licence=licence)
    cats = list(Category.objects.order_by("position").values_list("pk", flat=True)) + [None]
    n_photos, n_labelers = args.photos, args.labelers
    t0 = time.perf_counter()

    def image_id(i: int):
        return uuid.UUID(int=i + 1)

    with transaction.atomic():
        images = Writer(connection, Image, Image(
            file="images/x.jpg", thumbnail="thumbs/x.jpg", sha256="0", pixel_sha256="0", phash=0, width=1280,
            height=960, original_width=4000, original_height=3000, original_format="JPEG", original_bytes=2_000_000,
            source=source, licence=licence,
        ), ["id", "file", "thumbnail", "sha256", "pixel_sha256", "phash", "category_id"])
        for i in range(n_photos):
            h = f"{i:064x}"
            images.add(uid(image_id(i)), f"images/bench/{i}.jpg", f"thumbs/bench/{i}.jpg", h, h,
                       (i * 2654435761) % (1 << 63), cats[i % len(cats)])
        images.flush()
    print(f"{n_photos:,} images in {time.perf_counter() - t0:.1f} s")

    project = services.create_project("Bench project", created_by=planner, cap_per_labeler=1000)
    t0 = time.perf_counter()
    first_user = (User.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1
    with transaction.atomic():
        users = Writer(connection, User, User(password="!", role="labeler", date_joined=now),
                       ["id", "username", "first_name"])
        for j in range(n_labelers):
            users.add(first_user + j, f"bench-labeler-{j:04d}", f"라벨러 {j}")
        users.flush()
    user_ids = [first_user + j for j in range(n_labelers)]

    types = list(project.comment_types.order_by("position").values_list("pk", flat=True))
    queue = Writer(connection, ProjectImage, ProjectImage(project=project, image_id=image_id(0)),
                   ["image_id", "category_id", "slots_taken", "submitted_count", "random_key"])
    assignments = Writer(connection, Assignment, Assignment(
        project=project, image_id=image_id(0), labeler_id=first_user, leased_at=now, expires_at=now,
    ), ["id", "image_id", "labeler_id", "status", "leased_at", "expires_at", "submitted_at", "work_seconds",
        "report_reason", "report_note", "report_resolution"])
    comments = Writer(connection, Comment, Comment(assignment_id=1, comment_type_id=types[0], text="x", length=1,
                                                    key="x", created_at=now),
                      ["id", "assignment_id", "comment_type_id", "text", "length", "key", "guideline_version",
                       "created_at"])
    measured: dict[str, tuple[int, str]] = {}  # text -> (length, key), as services.submit stores them

    def measure(text: str) -> tuple[int, str]:
        if text not in measured:
            measured[text] = (text_rules.count_length(text), text_rules.comparable(text))
        return measured[text]
    submitted = [0] * n_labelers
    seconds = [0.0] * n_labelers
    leases_left = n_labelers
    next_assignment = next_comment = 1
    comment_every = max(1, round(1 / args.comment_share)) if args.comment_share > 0 else 0
    start = now - timedelta(days=7)
    with transaction.atomic():
        for i in range(n_photos):
            sets = 0 if i % 10 == 0 else 1 if i % 10 < 3 else 2
            a = i % n_labelers
            b = (i * 7 + 3) % n_labelers
            if b == a:
                b = (a + 1) % n_labelers
            taken = {a, b}

            def other(seed: int, taken: set = taken) -> int:
                """A labeler not yet on this photo."""
                c = seed % n_labelers
                while c in taken:
                    c = (c + 1) % n_labelers
                taken.add(c)
                return c

            slots = sets
            img = uid(image_id(i))
            leased_at = when(start + timedelta(seconds=i))
            for j, lab in enumerate((a, b)[:sets]):
                work = 20.0 + (i * 37 + j * 11) % 100
                assignments.add(next_assignment, img, user_ids[lab], "submitted", leased_at, leased_at,
                                when(start + timedelta(seconds=i, milliseconds=work * 1000)), work, "", "", "")
                submitted[lab] += 1
                seconds[lab] += work
                if comment_every and (next_assignment % comment_every == 0):
                    written = when(start + timedelta(seconds=i, milliseconds=work * 1000))
                    for t, ct in enumerate(types):
                        text = comment_text(next_comment, t)
                        length, key = measure(text)
                        comments.add(next_comment, next_assignment, ct, text, length, key, 1 + (i * 2) // n_photos,
                                     written)
                        next_comment += 1
                next_assignment += 1
            if i % 3 == 1:
                assignments.add(next_assignment, img, user_ids[other(i * 13 + 5)], "skipped", leased_at, leased_at,
                                None, None, "", "", "")
                next_assignment += 1
            if sets < 2 and leases_left and i % 50 == 0:
                leases_left -= 1
                assignments.add(next_assignment, img, user_ids[other(i * 17 + 1)], "leased", when(now),
                                when(now + timedelta(minutes=30)), None, None, "", "", "")
                next_assignment += 1
                slots += 1
            if i % 250 == 3:
                assignments.add(next_assignment, img, user_ids[other(i * 19 + 2)], "reported", leased_at, leased_at,
                                None, None, "personal_info", "얼굴이 보여요", "" if i % 500 == 3 else "kept")
                next_assignment += 1
            queue.add(img, cats[i % len(cats)], slots, sets, (i * 0.6180339887) % 1)
        for w in (queue, assignments, comments):
            w.flush()
        members = Writer(connection, ProjectMember, ProjectMember(project=project, user_id=first_user),
                         ["user_id", "submitted_count", "rejection_count", "work_seconds_total", "last_submitted_at"])
        for j in range(n_labelers):
            members.add(user_ids[j], submitted[j], (j * 31) % 17, seconds[j], when(now))
        members.flush()
    if pg:
        with connection.cursor() as cursor:
            for sql in connection.ops.sequence_reset_sql(no_style(), [User, Assignment, Comment, ProjectImage, ProjectMember]):
                cursor.execute(sql)
    print(f"{n_labelers:,} labelers, {queue.written:,} queue rows, {assignments.written:,} assignments, "
          f"{comments.written:,} comments in {time.perf_counter() - t0:.1f} s")

    # Ten examples and a published guideline.
    for i in range(10):
        services.save_example(project, Image.objects.get(pk=image_id(i * 3)), note=f"example {i}", comments=[
            {"comment_type": "reaction", "text": f"와 예시 {i}", "verdict": "good", "why": "자연스러움"},
            {"comment_type": "specific", "text": f"테이블 위에 음식이 있습니다 {i}", "verdict": "bad", "why": "캡션"},
        ])
    services.save_guideline_draft(project, "# 가이드라인\n\n- 사진에 있는 것만\n- 대화처럼\n" * 20)
    services.publish_guideline(project, published_by=planner)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return project


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=500_000)
    parser.add_argument("--labelers", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--comment-share", type=float, default=1.0,
                        help="write comments for this share of the submitted sets (1: all)")
    parser.add_argument("--save", action="store_true",
                        help="also time saving the settings page unchanged (a POST that re-syncs the queue)")
    parser.add_argument("--only", choices=("all", "comments"), default="all",
                        help="comments: time only the comment browser (and the baseline)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the generated database (to EXPLAIN queries afterwards; drop it yourself)")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-planner-"))
    connection = old_name = None
    try:
        connection, old_name = setup_django(tmp, DB_NAME)
        from django.test import Client
        from django.test.utils import setup_test_environment
        from django.urls import Resolver404, resolve, reverse

        from accounts import services as account_services
        from labeling import selectors
        from labeling.models import Comment, GuidelineExample, ProjectImage, ProjectMember

        setup_test_environment()
        print(f"database: {connection.vendor} ({connection.settings_dict['NAME']})")
        planner = account_services.create_user("bench-planner", "bench-planner-pass", "planner")
        pg = connection.vendor == "postgresql"
        if pg:  # written without the trigram index (as a restore would); built before the second pass
            with connection.cursor() as cursor:
                cursor.execute(f"DROP INDEX IF EXISTS {TRGM_INDEX}")
        project = generate(connection, args, planner)
        pk = project.pk
        client = Client()
        client.force_login(planner)
        last_labelers = (ProjectMember.objects.filter(project=project).count() + 49) // 50
        example = GuidelineExample.objects.filter(project=project).first()
        cat = ProjectImage.objects.filter(project=project, category__isnull=False).values_list(
            "category_id", flat=True).first()
        pages = [
            ("projects", reverse("projects")),
            ("dashboard", reverse("project-detail", args=[pk])),
            ("dashboard fragment (auto-refresh)", reverse("project-detail", args=[pk]) + "?partial=1"),
            ("dashboard by time, last page", reverse("project-detail", args=[pk])
             + f"?sort=seconds_per_photo&page={last_labelers}"),
            ("settings", reverse("project-edit", args=[pk])),
            ("guideline editor", reverse("project-guideline", args=[pk])),
            ("guideline version", reverse("project-guideline-version", args=[pk, 1])),
            ("example picker", reverse("project-example-pick", args=[pk])),
            ("example picker, category, page 100", reverse("project-example-pick", args=[pk])
             + f"?category={cat}&page=100"),
            ("example edit", reverse("project-example-edit", args=[pk, example.pk])),
            ("labelers", reverse("project-labelers", args=[pk])),
            ("labelers, last page", reverse("project-labelers", args=[pk]) + f"?page={last_labelers}"),
            ("reports (open)", reverse("project-reports", args=[pk])),
            ("reports (all), page 20", reverse("project-reports", args=[pk]) + "?state=all&page=20"),
        ]
        try:
            resolve(f"/api/projects/{pk}/progress/")
            pages.append(("API progress", f"/api/projects/{pk}/progress/"))
        except Resolver404:
            print("note: no /api/projects/{id}/progress/ yet; the API is not timed")

        def get(url: str):
            def fn():
                response = client.get(url)
                assert response.status_code == 200, (url, response.status_code)
            return fn

        def save_settings():
            """POST the settings page unchanged: it saves and re-syncs the queue (0 added, 0 removed)."""
            data = {"name": project.name, "description": "", "is_active": "on", "overlap": "2",
                    "cap_per_labeler": "1000", "lease_minutes": "30", "max_repeat_run": "5"}
            for rule in ("reject_jamo_or_emoji_only", "reject_copied_examples", "reject_own_repeats", "reject_urls",
                         "reject_emails", "reject_phone_numbers"):
                data[rule] = "on"
            types = list(project.comment_types.order_by("position"))
            data.update({"types-TOTAL_FORMS": str(len(types)), "types-INITIAL_FORMS": str(len(types)),
                         "types-MIN_NUM_FORMS": "1", "types-MAX_NUM_FORMS": "1000"})
            for i, ct in enumerate(types):
                for key in ("id", "name", "slug", "description", "min_length", "max_length", "position"):
                    data[f"types-{i}-{key}"] = str(getattr(ct, key))
            response = client.post(reverse("project-edit", args=[pk]), data)
            assert response.status_code == 302, response.content[:2000]

        measures = {"count (baseline)": lambda: ProjectImage.objects.count()}
        if args.only == "all":
            measures["selector project_dashboard"] = lambda: selectors.project_dashboard(project)
            measures["selector labeler_stats (50)"] = lambda: selectors.labeler_stats(project)
            measures.update({name: get(url) for name, url in pages})
            if args.save:
                measures["settings save (POST, re-syncs queue)"] = save_settings
        else:
            pages = []

        # The comment browser. Searches are timed before and after the trigram index exists.
        browse = reverse("project-comments", args=[pk])
        labeler = ProjectMember.objects.filter(project=project).order_by("-submitted_count").values_list(
            "user__username", flat=True).first()
        comment_pages = [
            ("comments, newest first", browse),
            ("comments, one labeler", f"{browse}?{urlencode({'labeler': labeler})}"),
            ("comments, longest first, page 50", f"{browse}?order=longest&page=50"),
            ("comments, length 5-8, guideline v2", f"{browse}?min_length=5&max_length=8&guideline_version=2"),
            ("CSV download, one labeler", reverse("project-comments-export", args=[pk])
             + f"?{urlencode({'labeler': labeler, 'format': 'csv'})}"),
            ("API, newest first (exact count)", f"/api/projects/{pk}/comments/"),
        ]
        searches = [
            (f"search, rare word ({RARE_WORD}, 1 in {RARE_EVERY})", f"{browse}?{urlencode({'q': RARE_WORD})}"),
            ("search, common word (고양이, 1 in 20)", f"{browse}?{urlencode({'q': '고양이'})}"),
            ("search, rare word + one labeler", f"{browse}?{urlencode({'q': RARE_WORD, 'labeler': labeler})}"),
            ("search, two syllables, common (노을)", f"{browse}?{urlencode({'q': '노을'})}"),
            ("search, two syllables, rare (무지)", f"{browse}?{urlencode({'q': RARE_WORD[:2]})}"),
            ("API search, rare word", f"/api/projects/{pk}/comments/?{urlencode({'q': RARE_WORD})}"),
        ]

        def fetch(url: str):
            def fn():
                response = client.get(url)
                assert response.status_code == 200, (url, response.status_code)
                if response.streaming:
                    b"".join(response.streaming_content)
            return fn

        measures.update({name: fetch(url) for name, url in comment_pages})
        no_index = {}
        if pg:
            no_index = {name: median_time(fetch(url), args.repeat) for name, url in searches}
            t0 = time.perf_counter()
            with connection.cursor() as cursor:
                cursor.execute(f"CREATE INDEX {TRGM_INDEX} ON labeling_comment USING gin (text gin_trgm_ops)")
                cursor.execute("ANALYZE labeling_comment")
            print(f"trigram index built in {time.perf_counter() - t0:.1f} s")
        measures.update({name: fetch(url) for name, url in searches})
        results = {name: median_time(fn, args.repeat) for name, fn in measures.items()}

        base = results["count (baseline)"]
        urls = dict(pages + comment_pages + searches)
        n_comments = Comment.objects.count()
        print(f"\nmedian of {args.repeat}, {args.photos:,} photos, {args.labelers:,} labelers, "
              f"{n_comments:,} comments ({connection.vendor})")
        print(f"  {'what':<44} {'seconds':>9} {'x count':>9} {'no index':>9} {'gain':>7}  url")
        for name, t in results.items():
            before = no_index.get(name)
            extra = f" {before:>9.4f} {before / t:>6.1f}x" if before else " " * 17
            print(f"  {name:<44} {t:>9.4f} {t / base:>8.1f}x{extra}  {urls.get(name, '')}")
        slowest = max((results[name], name) for name in urls)
        verdict = "under" if slowest[0] < 1 else "OVER"
        print(f"slowest page: {slowest[1]} {slowest[0]:.3f} s ({verdict} the 1 s target)")
    finally:
        if connection is not None and old_name is not None and not args.keep:
            connection.creation.destroy_test_db(old_name, verbosity=0)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
