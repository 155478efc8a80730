"""Read queries for labeling: progress and labeler figures for planners, labeled counts for the
quota dashboard.

Everything a planner page shows at 500,000 photos and 1,000 labelers comes from indexed GROUP BY
queries over the queue (`projectimage_progress`: project, category, submitted_count), the
running counters on `ProjectMember`, and per-page lookups for the 50 labelers a page shows. No
query joins the queue to the catalogue, and none scans every comment.
"""
from __future__ import annotations

import re
import statistics
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db import connection
from django.db.models import Aggregate, Case, Count, Exists, F, FloatField, Lookup, OuterRef, Sum, Value, When
from django.db.models.functions import Cast
from django.db.models.lookups import IContains
from django.utils import timezone

from datasets.models import Category, Image, ImageStatus

from . import text as text_rules
from .models import (
    Assignment,
    AssignmentStatus,
    Comment,
    GuidelineVersion,
    LabelerMessage,
    Project,
    ProjectImage,
    ProjectMember,
    RuleCode,
    RuleHit,
)


def labeler_may_see_image(user, image_id) -> bool:
    """Whether a labeler may see a stored photo: one in the queue of a project where they are an
    active member (not taken out by a planner), or an example of such a project's current
    published guideline. One query: EXISTS over the user's memberships, each probing the
    `projectimage_unique` (project, image) index or the current version's frozen examples."""
    in_queue = ProjectImage.objects.filter(project_id=OuterRef("project_id"), image_id=image_id, excluded=False)
    # The examples labelers see are the ones frozen in the published version (an example deleted
    # since then still shows until the next publish), so look there, not at GuidelineExample.
    example = GuidelineVersion.objects.filter(
        project_id=OuterRef("project_id"), version=OuterRef("project__guideline_version"),
        examples__icontains=str(image_id),
    )
    return ProjectMember.objects.filter(user=user, is_active=True).filter(Exists(in_queue) | Exists(example)).exists()


def published_examples(version, *, images: dict | None = None) -> list[dict]:
    """A published version's frozen examples with their photos' URLs made now: URLs frozen at
    publishing stop working (S3 signs them for minutes; storage settings change). One query, or
    none with `images` from example_images() for many versions."""
    if version is None:
        return []
    if images is None:
        images = example_images([version])
    examples = [dict(ex) for ex in version.examples]
    for ex in examples:
        image = images.get(_uuid_or_none(ex.get("image_id")))
        if image is not None:
            ex["image_url"] = image.file.url if image.file else ""
            ex["thumbnail_url"] = image.thumbnail.url if image.thumbnail else ""
    return examples


def example_images(versions) -> dict:
    """{image id: Image} for the examples of `versions`, in one query."""
    ids = {_uuid_or_none(ex.get("image_id")) for v in versions for ex in v.examples} - {None}
    return Image.objects.only("id", "file", "thumbnail").in_bulk(ids) if ids else {}


def _uuid_or_none(value):
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def labeled_image_counts() -> dict[tuple[int | None, int | None], int]:
    """Active images with at least one submitted comment set (in any project), per (category,
    subcategory), in one GROUP BY query (a retired or excluded photo counts nowhere)."""
    rows = (
        Assignment.objects.filter(status=AssignmentStatus.SUBMITTED, image__status=ImageStatus.ACTIVE)
        .order_by()
        .values("image__category_id", "image__subcategory_id")
        .annotate(n=Count("image_id", distinct=True))
    )
    return {(r["image__category_id"], r["image__subcategory_id"]): r["n"] for r in rows}


def _queue_histogram(project_ids) -> dict[int, dict[int | None, dict[int, int]]]:
    """{project_id: {category_id: {submitted_count: photos}}}: one GROUP BY in the order of the
    `projectimage_progress` index (project, category, submitted_count), so the database reads
    the index alone and aggregates as it goes. Excluded photos count too: they are in the queue."""
    out: dict[int, dict[int | None, dict[int, int]]] = {}
    rows = (
        ProjectImage.objects.filter(project_id__in=list(project_ids))
        .order_by()
        .values_list("project_id", "category_id", "submitted_count")
        .annotate(c=Count("*"))
    )
    for project_id, category_id, submitted, c in rows:
        out.setdefault(project_id, {}).setdefault(category_id, {})[submitted] = c
    return out


def project_progress(project: Project) -> list[dict]:
    """Per category of the project's photos: how many have 0, 1, ... overlap submitted comment
    sets (`counts[k]` = photos with k sets), and the total. Photos without a category come last
    with category None. One GROUP BY over the queue's own (denormalised) category plus the
    category names."""
    return _progress_rows(project, _queue_histogram([project.pk]).get(project.pk, {}))


def _progress_rows(project: Project, histogram: dict[int | None, dict[int, int]]) -> list[dict]:
    n = project.overlap
    counts: dict[int | None, list[int]] = {}
    for category_id, by_count in histogram.items():
        row = counts.setdefault(category_id, [0] * (n + 1))
        for submitted, c in by_count.items():
            row[min(submitted, n)] += c
    cats = {c.pk: c for c in Category.objects.filter(pk__in=[k for k in counts if k is not None])}
    ordered = sorted((k for k in counts if k is not None), key=lambda k: (cats[k].position, k))
    if None in counts:
        ordered.append(None)
    return [{"category": cats.get(k), "counts": counts[k], "total": sum(counts[k])} for k in ordered]


def project_dashboard(project: Project) -> dict:
    """The dashboard's figures: the per-category histogram (`categories`, as project_progress,
    plus `segments` for a stacked bar and `done_percent`) and `totals`: counts (the histogram
    over all categories), photos, sets (submitted comment sets), done (photos with `overlap`
    sets), percent_done, open_leases (unexpired), active_labelers, open_reports; and
    `rule_hits`, the project's rule_hit_totals."""
    histogram = _queue_histogram([project.pk]).get(project.pk, {})
    categories = _progress_rows(project, histogram)
    photos = sum(r["total"] for r in categories)
    sets = sum(k * c for by_count in histogram.values() for k, c in by_count.items())
    done = sum(r["counts"][-1] for r in categories)
    now = timezone.now()
    open_leases = Assignment.objects.filter(
        project=project, status=AssignmentStatus.LEASED, expires_at__gt=now
    ).count()
    open_reports = Assignment.objects.filter(
        project=project, status=AssignmentStatus.REPORTED, report_resolution=""
    ).count()
    active = ProjectMember.objects.filter(project=project, is_active=True).count()
    for row in categories:
        row["segments"] = _segments(row["counts"], row["total"])
        row["done_percent"] = _percent(row["counts"][-1], row["total"])
    overall = [sum(r["counts"][k] for r in categories) for k in range(project.overlap + 1)]
    return {
        "categories": categories,
        "totals": {
            "counts": overall, "segments": _segments(overall, photos),
            "photos": photos, "sets": sets, "done": done, "percent_done": _percent(done, photos),
            "open_leases": open_leases, "active_labelers": active, "open_reports": open_reports,
            "overlap": project.overlap,
        },
        "rule_hits": rule_hit_totals(project),
    }


def _rule_rows(counts) -> list[dict]:
    """[{code, name, count}], most first, from (code, count) pairs."""
    names = dict(RuleCode.choices)
    rows = [{"code": code, "name": str(names.get(code, code)), "count": n} for code, n in counts if n]
    return sorted(rows, key=lambda r: (-r["count"], r["code"]))


def rule_hit_totals(project: Project) -> list[dict]:
    """How many submit attempts each rule stopped in the project, over all labelers (on the page
    before sending, or on the server): [{code, name, count}], most first."""
    return _rule_rows(
        RuleHit.objects.filter(project=project).order_by().values("code").annotate(n=Sum("count"))
        .values_list("code", "n")
    )


def rule_hits_by_member(project: Project, member_ids) -> dict[int, list[dict]]:
    """{member id: [{code, name, count}]} for these members, one query."""
    by_member: dict[int, list] = defaultdict(list)
    for member_id, code, n in RuleHit.objects.filter(project=project, member_id__in=list(member_ids)).values_list(
        "member_id", "code", "count"
    ):
        by_member[member_id].append((code, n))
    return {m: _rule_rows(pairs) for m, pairs in by_member.items()}


def _percent(part: int, whole: int) -> float:
    return round(100 * part / whole, 1) if whole else 0.0


def _segments(counts: list[int], total: int) -> list[dict]:
    """A stacked bar's parts, one per number of sets k: {k, n, width (exact share in %, so the
    parts fill the bar), percent (rounded), tone: 0 for none, 1 for done, between for partial}."""
    last = len(counts) - 1
    return [
        {"k": k, "n": c, "width": 100 * c / total if total else 0.0, "percent": _percent(c, total),
         "tone": k / last if last else 1.0}
        for k, c in enumerate(counts)
    ]


def project_list_stats(projects) -> dict[int, dict]:
    """For the projects list: {project_id: {photos, done, percent_done, active_labelers}} in two
    GROUP BY queries, whatever the number of projects."""
    projects = list(projects)
    histograms = _queue_histogram([p.pk for p in projects])
    members = dict(
        ProjectMember.objects.filter(project__in=projects, is_active=True)
        .order_by().values_list("project_id").annotate(n=Count("*"))
    )
    out = {}
    for p in projects:
        hist = histograms.get(p.pk, {})
        photos = sum(c for by_count in hist.values() for c in by_count.values())
        done = sum(c for by_count in hist.values() for k, c in by_count.items() if k >= p.overlap)
        out[p.pk] = {"photos": photos, "done": done, "percent_done": _percent(done, photos),
                     "active_labelers": members.get(p.pk, 0)}
    return out


# --- Per labeler ----------------------------------------------------------------------------

class Median(Aggregate):
    """PostgreSQL's exact median: percentile_cont(0.5) WITHIN GROUP (ORDER BY expr)."""

    function = "percentile_cont"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()


LABELER_ORDERS = {
    "submitted_count": ("submitted_count", "user__username"),
    "-submitted_count": ("-submitted_count", "user__username"),
    "rejection_count": ("rejection_count", "user__username"),
    "-rejection_count": ("-rejection_count", "user__username"),
    "seconds_per_photo": (F("mean_seconds").asc(nulls_last=True), "user__username"),
    "-seconds_per_photo": (F("mean_seconds").desc(nulls_last=True), "user__username"),
    "username": ("user__username",),
    "-username": ("-user__username",),
}


def labeler_stats(project: Project, *, order: str = "-submitted_count", offset: int = 0,
                  limit: int = 50) -> tuple[int, list[dict]]:
    """The project's labelers (members, active or not), one page of them: (total, rows).

    Each row: {user_id, username, name, is_active, cap, submitted_count, rejection_count (submit
    attempts the rules stopped), rule_hits ([{code, name, count}] per rule), median_length: {comment type slug: median length or None}, seconds_per_photo (median work
    seconds per submitted photo, or None), mean_seconds_per_photo}. `order` is one of
    LABELER_ORDERS (time per photo sorts by the mean, which the counters give for every labeler
    at once; medians are computed only for the labelers on the page, so the cost does not grow
    with the number of labelers).
    """
    if order not in LABELER_ORDERS:
        order = "-submitted_count"
    offset, limit = max(0, int(offset)), max(1, int(limit))
    members = ProjectMember.objects.filter(project=project)
    total = members.count()
    page = list(
        members.annotate(mean_seconds=Case(
            When(submitted_count__gt=0, then=F("work_seconds_total") / Cast("submitted_count", FloatField())),
            default=Value(None), output_field=FloatField(),
        ))
        .select_related("user")
        .order_by(*LABELER_ORDERS[order])[offset:offset + limit]
    )
    user_ids = [m.user_id for m in page]
    types = list(project.comment_types.order_by("position", "id").values_list("pk", "slug"))
    lengths, seconds = _medians(project, user_ids)
    hits = rule_hits_by_member(project, [m.pk for m in page])
    rows = []
    for m in page:
        rows.append({
            "user_id": m.user_id,
            "username": m.user.username,
            "name": m.user.get_full_name(),
            "is_active": m.is_active,
            "cap": m.cap_override if m.cap_override is not None else project.cap_per_labeler,
            "cap_override": m.cap_override,
            "submitted_count": m.submitted_count,
            "rejection_count": m.rejection_count,
            "rule_hits": hits.get(m.pk, []),
            "median_length": {slug: lengths.get((m.user_id, pk)) for pk, slug in types},
            "seconds_per_photo": seconds.get(m.user_id),
            "mean_seconds_per_photo": m.mean_seconds,
        })
    return total, rows


def _medians(project: Project, user_ids: list) -> tuple[dict, dict]:
    """({(user_id, comment_type_id): median length}, {user_id: median work seconds}) over the
    submitted sets of these labelers only (the `assignment_labeler_status` index finds them)."""
    if not user_ids:
        return {}, {}
    comments = Comment.objects.filter(
        assignment__project=project, assignment__labeler_id__in=user_ids,
        assignment__status=AssignmentStatus.SUBMITTED,
    ).order_by()
    work = Assignment.objects.filter(
        project=project, labeler_id__in=user_ids, status=AssignmentStatus.SUBMITTED, work_seconds__isnull=False
    ).order_by()
    if connection.vendor == "postgresql":
        lengths = {
            (r["assignment__labeler_id"], r["comment_type_id"]): r["m"]
            for r in comments.values("assignment__labeler_id", "comment_type_id").annotate(m=Median("length"))
        }
        seconds = {r["labeler_id"]: r["m"] for r in work.values("labeler_id").annotate(m=Median("work_seconds"))}
        return lengths, seconds
    # Elsewhere (SQLite): the same medians in Python, over these labelers' rows only.
    by_key: dict[tuple, list[int]] = defaultdict(list)
    for u, t, n in comments.values_list("assignment__labeler_id", "comment_type_id", "length").iterator(chunk_size=10000):
        by_key[(u, t)].append(n)
    by_user: dict = defaultdict(list)
    for u, s in work.values_list("labeler_id", "work_seconds").iterator(chunk_size=10000):
        by_user[u].append(s)
    return ({k: float(statistics.median(v)) for k, v in by_key.items()},
            {k: float(statistics.median(v)) for k, v in by_user.items()})


def open_lease_counts(project: Project, user_ids) -> dict:
    """{user_id: unexpired leases} for these labelers, one GROUP BY on the labeler index."""
    return dict(
        Assignment.objects.filter(project=project, labeler_id__in=list(user_ids), status=AssignmentStatus.LEASED,
                                  expires_at__gt=timezone.now())
        .order_by().values_list("labeler_id").annotate(n=Count("*"))
    )


def unread_messages(user, project: Project | None = None) -> list:
    """The planners' messages `user` has not dismissed, oldest first (of `project` only when
    given), with their project: what the labeler's next page shows."""
    qs = LabelerMessage.objects.filter(labeler=user, read_at__isnull=True).select_related("project")
    if project is not None:
        qs = qs.filter(project=project)
    return list(qs.order_by("created_at", "id")[:20])


def open_report_count(project: Project) -> int:
    return Assignment.objects.filter(project=project, status=AssignmentStatus.REPORTED,
                                     report_resolution="").count()



# --- Comments (the planners' comment browser, its download and the API) ---------------------

# Orders the comment browser offers: name -> ORDER BY (ties broken by id, so pages are stable).
COMMENT_ORDERS = {
    "newest": ("-created_at", "-id"),
    "oldest": ("created_at", "id"),
    "longest": ("-length", "-id"),
    "shortest": ("length", "id"),
    "labeler": ("assignment__labeler__username", "-created_at", "-id"),
}


@dataclass(frozen=True)
class CommentFilters:
    """What the comment browser narrows a project's comments to; None (or "") is no filter.

    `q` is a substring of the text, matched case-insensitively after NFC normalisation (the
    stored text is NFC: services.submit normalises it, migration 0003 did older rows);
    `category`, `subcategory` and `comment_type` are slugs, `labeler` a username (or `ext:<slug>`:
    the sets imported from that external source); lengths are
    counted as the text rules count them (the stored `Comment.length`); `since` and `until` are
    dates in the site's time zone, both included."""

    q: str = ""
    category: str = ""
    subcategory: str = ""
    comment_type: str = ""
    labeler: str = ""
    guideline_version: int | None = None
    min_length: int | None = None
    max_length: int | None = None
    since: date | None = None
    until: date | None = None


class ContainsText(Lookup):
    """`field` contains `text`, case-insensitively: `qs.filter(ContainsText(F("text"), q))`.

    Django's `icontains` is `UPPER(col) LIKE UPPER('%q%')` on PostgreSQL: no index on the plain
    column serves it, and UPPER() on every row costs more than the match. Here PostgreSQL gets
    `col ILIKE '%q%'`, or plain `LIKE` when the text has no letter with a case (Hangul, digits:
    the same rows, about 2.5x faster when it has to read them all); both are answered by the
    trigram GIN index `comment_text_trgm` (migration 0003). Elsewhere (SQLite) it is Django's
    `icontains` (whose LIKE folds ASCII letters only)."""

    lookup_name = "contains_text"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        return IContains(self.lhs, self.rhs).as_sql(compiler, connection)

    def as_postgresql(self, compiler, connection):
        lhs_sql, lhs_params = compiler.compile(self.lhs)
        text = str(self.rhs)
        cased = text.upper() != text.lower()
        if not _TRIGRAM_WORD.search(text):
            # No three letters or digits in a row: the trigram index has nothing to look up and
            # would be read whole (8.8 s at 1,600,000 comments, against 1 s reading the table;
            # docs/benchmarks.md). strpos() is never answered from it.
            if cased:
                return f"strpos(lower({lhs_sql}), lower(%s)) > 0", [*lhs_params, text]
            return f"strpos({lhs_sql}, %s) > 0", [*lhs_params, text]
        op = "ILIKE" if cased else "LIKE"
        return f"{lhs_sql} {op} %s", [*lhs_params, f"%{connection.ops.prep_for_like_query(text)}%"]


# What pg_trgm can look up: a word (letters and digits) of three characters or more.
_TRIGRAM_WORD = re.compile(r"[^\W_]{3,}")


def project_comments(project: Project, filters: CommentFilters | None = None, *, order: str = "newest"):
    """A project's comments (submitted sets), narrowed by `filters`, in `order` (one of
    COMMENT_ORDERS), with what a row shows (comment type, labeler, photo and its category)
    joined in. A queryset: page it, or stream it with .iterator().

    The text search (ContainsText) is answered on PostgreSQL by the trigram GIN index
    `comment_text_trgm` (migration 0003) when the text has three characters in a row to look up;
    shorter ones read the comments."""
    f = filters or CommentFilters()
    qs = Comment.objects.filter(assignment__project=project)
    q = text_rules.normalise(f.q)  # NFC, as services.submit (and migration 0003) store the text
    if q:
        qs = qs.filter(ContainsText(F("text"), q))
    if f.category:
        qs = qs.filter(assignment__image__category__slug=f.category)
    if f.subcategory:
        qs = qs.filter(assignment__image__subcategory__slug=f.subcategory)
    if f.comment_type:
        qs = qs.filter(comment_type__slug=f.comment_type)
    if f.labeler.startswith("ext:"):  # comments imported from an external source (labeling.external)
        qs = qs.filter(assignment__labeler__isnull=True, assignment__external_source__slug=f.labeler[4:])
    elif f.labeler:
        qs = qs.filter(assignment__labeler__username=f.labeler)
    if f.guideline_version is not None:
        qs = qs.filter(guideline_version=f.guideline_version)
    if f.min_length is not None:
        qs = qs.filter(length__gte=f.min_length)
    if f.max_length is not None:
        qs = qs.filter(length__lte=f.max_length)
    tz = timezone.get_current_timezone()
    if f.since is not None:
        qs = qs.filter(created_at__gte=datetime.combine(f.since, time.min, tzinfo=tz))
    if f.until is not None:
        qs = qs.filter(created_at__lt=datetime.combine(f.until + timedelta(days=1), time.min, tzinfo=tz))
    return qs.select_related(
        "comment_type", "assignment__labeler", "assignment__external_source", "assignment__image__category",
        "assignment__image__subcategory",
    ).order_by(*COMMENT_ORDERS.get(order, COMMENT_ORDERS["newest"]))


def count_at_most(qs, cap: int) -> int:
    """len(qs), but stop counting past `cap` (returns cap + 1 then): a page can say "more than
    1,000" without the database counting 1,600,000 joined rows on every view."""
    return qs.order_by()[: cap + 1].count()


def image_comment_sets(image_id) -> list[dict]:
    """Every submitted comment set on a photo, newest first, in every project: [{assignment,
    project, labeler (None for an imported set), external_source (None for a labeler's),
    submitted_at, comments: [Comment in comment-type order]}]. Two queries."""
    sets = list(
        Assignment.objects.filter(image_id=image_id, status=AssignmentStatus.SUBMITTED)
        .select_related("project", "labeler", "external_source").order_by("-submitted_at", "-id")
    )
    by_set: dict[int, list] = defaultdict(list)
    for c in (Comment.objects.filter(assignment__in=[a.pk for a in sets]).select_related("comment_type")
              .order_by("comment_type__position", "comment_type_id")):
        by_set[c.assignment_id].append(c)
    return [{"assignment": a, "project": a.project, "labeler": a.labeler,
             "external_source": a.external_source, "submitted_at": a.submitted_at,
             "comments": by_set.get(a.pk, [])} for a in sets]


# --- Snapshots: what is in ------------------------------------------------------------------


@dataclass
class SnapshotCandidates:
    """What a snapshot with these parameters would hold now: `images` (a queryset of Image),
    `comments` (a queryset of Comment on those images), and the K that was applied.
    `set_comments` is `comments` before the photo filter (every comment of the counted sets):
    the freeze streams it and keeps the comments of the photos it froze, so no plan of the
    database has to join the photo conditions into a scan of every comment."""

    images: object
    comments: object
    set_comments: object
    min_sets: int


def snapshot_candidates(projects, *, categories=None, comment_types=None, min_sets: int | None = None) -> SnapshotCandidates:
    """The one selector of "what is in" a snapshot (labeling.snapshots freezes it; the create
    form previews it). A photo is in when it:

    - is active in the catalogue (Image.status; retired and excluded photos never are),
    - is in the queue of one of `projects` and taken out of none of them (ProjectImage.excluded:
      a planner's "exclude" after a report, or a photo withdrawn from the catalogue),
    - is in one of `categories` (Category objects or ids; empty: any, also none),
    - has at least `min_sets` submitted comment sets in those projects (None: the smallest
      overlap of the projects), counting only sets with a comment of one of `comment_types`
      (slugs; empty: any).

    Its comments are those of its submitted sets in those projects, of those comment types.

    Curation's decisions reach it without curation being imported here: a comment set a planner
    rejected in the review queue has status "rejected" (services.reject_set), so it is neither
    counted nor included; a photo excluded there is excluded in the catalogue (Image.status).
    """
    project_ids = [getattr(p, "pk", p) for p in projects]
    if min_sets is None:
        overlaps = Project.objects.filter(pk__in=project_ids).values_list("overlap", flat=True)
        min_sets = min(overlaps, default=1)
    type_slugs = list(comment_types or [])
    comments = Comment.objects.filter(
        assignment__project_id__in=project_ids, assignment__status=AssignmentStatus.SUBMITTED,
    )
    sets = Assignment.objects.filter(project_id__in=project_ids, status=AssignmentStatus.SUBMITTED)
    if type_slugs:
        comments = comments.filter(comment_type__slug__in=type_slugs)
        sets = sets.filter(Exists(Comment.objects.filter(assignment=OuterRef("pk"), comment_type__slug__in=type_slugs)))
    # One GROUP BY of the sets (uncorrelated: SQLite and PostgreSQL run it once). PostgreSQL
    # needs statistics of the tables for a good plan (autovacuum keeps them; after a bulk load
    # run ANALYZE, as bench/snapshot_freeze.py does).
    enough = sets.order_by().values("image_id").annotate(n=Count("pk")).filter(n__gte=min_sets).values("image_id")
    images = Image.objects.filter(status=ImageStatus.ACTIVE, pk__in=enough).filter(
        Exists(ProjectImage.objects.filter(project_id__in=project_ids, image_id=OuterRef("pk"), excluded=False))
    ).exclude(
        Exists(ProjectImage.objects.filter(project_id__in=project_ids, image_id=OuterRef("pk"), excluded=True))
    )
    category_ids = [getattr(c, "pk", c) for c in (categories or [])]
    if category_ids:
        images = images.filter(category_id__in=category_ids)
    return SnapshotCandidates(images=images, comments=comments.filter(assignment__image_id__in=images.values("pk")),
                              set_comments=comments, min_sets=min_sets)
