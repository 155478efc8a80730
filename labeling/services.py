"""Every change to labeling state, each inside a transaction.

The assignment engine keeps three promises under any concurrency: never more than `overlap`
distinct labelers per photo, never past a labeler's cap, never the same photo twice to one person.

- A photo's `ProjectImage.slots_taken` is only ever raised by a conditional
  `UPDATE ... SET slots_taken = slots_taken + 1 WHERE slots_taken < overlap` whose row count is
  checked, so overlap holds on every database. On PostgreSQL the candidate row is first locked
  with `SELECT ... FOR UPDATE SKIP LOCKED`, so labelers pass each other instead of queueing.
- Every action of one labeler starts by writing their `ProjectMember` row (`last_active_at`).
  That row lock serialises two tabs of one person (the cap check and the lease cannot interleave)
  without making different labelers wait on each other. Starting with a write also makes SQLite
  take its write lock at the start of the transaction, so the reads after it cannot go stale.
- `Assignment` is unique per (project, image, labeler): the database itself refuses a repeat.

Lock order everywhere: member row, then assignment row, then project-image row.
"""
from __future__ import annotations

import csv
import io
import logging
import random
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, F, OuterRef, ProtectedError, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts.models import Role, User
from datasets.models import Category, Image, ImageStatus

from . import text as text_rules
from .models import (
    BLOCKING_STATUSES,
    Assignment,
    AssignmentStatus,
    Comment,
    CommentType,
    ExampleComment,
    GuidelineExample,
    GuidelineVersion,
    LabelerMessage,
    PhotoSet,
    Project,
    ProjectImage,
    ProjectMember,
    ReportReason,
    RuleCode,
    RuleHit,
    Verdict,
)

log = logging.getLogger(__name__)

DEFAULT_COMMENT_TYPES = (
    {
        "slug": "reaction", "name": "짧은 반응", "min_length": 3, "max_length": 100, "position": 0,
        "description": "사진을 보고 바로 떠오른 짧은 반응 (예: 와.. 족발 폼 미쳤다!)",
    },
    {
        "slug": "specific", "name": "구체적인 코멘트", "min_length": 10, "max_length": 300, "position": 1,
        "description": "사진에 실제로 보이는 것을 짚는 구체적인 코멘트 (예: 윤기 도는 게 진짜 쫀득해 보여요)",
    },
)


class LabelingError(Exception):
    """An action the engine refuses; `code` tells pages and the API which one."""

    code = "error"
    default_message = _("This action is not possible.")

    def __init__(self, message=None):
        super().__init__(str(message or self.default_message))


class NotAMember(LabelingError):
    code = "not_member"
    default_message = _("You are not an active labeler of this project.")


class ProjectInactive(LabelingError):
    code = "project_inactive"
    default_message = _("This project is not open for labeling.")


class CapReached(LabelingError):
    code = "cap_reached"
    default_message = _("You have labeled as many photos as this project allows. Thank you!")


class NoWorkLeft(LabelingError):
    code = "no_work"
    default_message = _("No photos are waiting for you in this project right now.")


class LeaseLost(LabelingError):
    code = "lease_lost"
    default_message = _("Your time for this photo ran out and other labelers have taken it. Please take the next photo.")


class PhotoWithdrawn(LabelingError):
    code = "photo_withdrawn"
    default_message = _("A planner has taken this photo out of the project. Please take the next photo.")


class AssignmentClosed(LabelingError):
    code = "closed"
    default_message = _("This photo was already skipped or reported.")


class AlreadySubmitted(LabelingError):
    code = "already_submitted"
    default_message = _("This photo was already submitted.")


class InUse(LabelingError):
    code = "in_use"
    default_message = _("Comments point to this, so it cannot be deleted.")


class SubmissionRejected(ValidationError):
    """The texts break rules. `message_dict` maps a comment type slug to its messages and
    `codes` to the rule codes; nothing was stored."""

    def __init__(self, errors: dict[str, list[tuple[str, str]]]):
        super().__init__({slug: [msg for _, msg in items] for slug, items in errors.items()})
        self.codes = {slug: [code for code, _ in items] for slug, items in errors.items()}


# --- Projects, members, queue ---------------------------------------------------------------

def check_comment_type_count(count: int) -> None:
    """Refuse more than LABELING_MAX_COMMENT_TYPES comment types for one project. Each is a text
    box on the labeler's phone and rules checked on every submit: 10,000 of them took 30 s to
    save and made the project unusable (issue 9)."""
    limit = settings.LABELING_MAX_COMMENT_TYPES
    if count > limit:
        raise ValidationError(
            {"comment_types": ngettext("A project can have at most %(limit)d comment type.",
                                       "A project can have at most %(limit)d comment types.", limit) % {"limit": limit}},
        )


@transaction.atomic
def check_comment_type_limit(project: Project, adding: int = 0) -> int:
    """Check what is stored (plus `adding` about to be) inside the caller's transaction, and
    return the stored count. The planner's form saves its rows first and checks after. Locking the
    project first makes concurrent saves count one after the other: the later count sees the
    earlier one's rows."""
    Project.objects.select_for_update().filter(pk=project.pk).values_list("pk").first()
    stored = CommentType.objects.filter(project_id=project.pk).count()
    check_comment_type_count(stored + adding)
    return stored


@transaction.atomic
def create_project(name: str, *, created_by=None, categories=(), subcategories=(), sources=(),
                   comment_types=DEFAULT_COMMENT_TYPES, **fields) -> Project:
    """A project with its comment types (by default the short reaction and the specific comment)."""
    comment_types = list(comment_types)
    check_comment_type_count(len(comment_types))
    project = Project(name=name, created_by=created_by, **fields)
    project.full_clean()
    project.save()
    project.categories.set(categories)
    project.subcategories.set(subcategories)
    project.sources.set(sources)
    for spec in comment_types:
        ct = CommentType(project=project, **spec)
        ct.full_clean(exclude=["project"])
        ct.save()
    return project


@transaction.atomic
def create_project_with_queue(name: str, **kwargs) -> tuple[Project, tuple[int, int]]:
    """create_project, then its queue filled with the matching photos: what the settings page and
    the API do. Returns the project and (added, removed)."""
    project = create_project(name, **kwargs)
    return project, sync_project_images(project)


PROJECT_FILTERS = ("categories", "subcategories", "sources")


@transaction.atomic
def update_project(project: Project, *, comment_types: list[dict] | None = None, **fields) -> tuple[int, int] | None:
    """Change a project's settings (the settings page and the API's PUT/PATCH both come here).

    `fields` are Project fields; `categories`, `subcategories` and `sources` (rows) replace the
    photo filters, and whenever they are given the queue is brought in line with them (returns
    sync_project_images's (added, removed); None when no filter was given). `comment_types`
    changes the types (see save_comment_types). All or nothing."""
    filters = {name: list(fields.pop(name)) for name in PROJECT_FILTERS if name in fields}
    for name, value in fields.items():
        setattr(project, name, value)
    project.full_clean(exclude=list(PROJECT_FILTERS))
    project.save()
    for name, value in filters.items():
        getattr(project, name).set(value)
    if comment_types is not None:
        save_comment_types(project, comment_types)
    return sync_project_images(project) if filters else None


def save_comment_types(project: Project, changes: list[dict]) -> None:
    """Apply a list of comment type changes: {"id": pk, "DELETE": True} deletes a type (refused
    while comments of it exist), {"id": pk, **fields} changes one, {**fields} adds one. Types not
    named stay as they are. Deletes go first, so a new type may take a deleted one's slug; the
    limit on the number of types is checked on the result."""
    changes = [dict(c) for c in changes]
    existing = CommentType.objects.in_bulk([c["id"] for c in changes if c.get("id")])
    for change in changes:
        if change.get("id") and change.get("DELETE"):
            if change["id"] in existing:
                delete_comment_type(existing[change["id"]])
    for change in changes:
        pk = change.pop("id", None)
        if change.pop("DELETE", False):
            continue
        if change.get("position") is None:
            change.pop("position", None)
        if pk is None:
            add_comment_type(project, **change)
        elif pk in existing and existing[pk].project_id == project.pk:
            update_comment_type(existing[pk], **change)
    check_comment_type_limit(project)


@transaction.atomic
def delete_project(project: Project) -> None:
    """Delete a project nobody has commented in; one with comments is closed instead."""
    try:
        with transaction.atomic():
            project.delete()
    except ProtectedError:
        raise InUse(_("Comments were written in this project; close it (is_active=false) instead.")) from None


@transaction.atomic
def add_comment_type(project: Project, **fields) -> CommentType:
    """Add one comment type (at the end unless `position` is given), within the limit."""
    stored = check_comment_type_limit(project, adding=1)
    fields.setdefault("position", stored)
    ct = CommentType(project=project, **fields)
    ct.full_clean()
    ct.save()
    return ct


@transaction.atomic
def update_comment_type(comment_type: CommentType, **fields) -> CommentType:
    """Change a comment type's name, slug, description, lengths or position."""
    for name, value in fields.items():
        setattr(comment_type, name, value)
    comment_type.full_clean()
    comment_type.save()
    return comment_type


def delete_comment_type(comment_type: CommentType) -> None:
    """Delete a comment type nobody has written a comment of."""
    try:
        with transaction.atomic():
            comment_type.delete()
    except ProtectedError:
        raise InUse(_("Comments of this type exist; it cannot be deleted.")) from None


def add_member(project: Project, user, *, cap_override: int | None = None) -> ProjectMember:
    """Make `user` an active labeler of `project` (re-activating a former member)."""
    fields = {"cap_override": cap_override, "is_active": True}
    with transaction.atomic():  # write first (see _lock_member)
        if not ProjectMember.objects.filter(project=project, user=user).update(**fields):
            ProjectMember.objects.create(project=project, user=user, **fields)
    return ProjectMember.objects.get(project=project, user=user)


def _matching_images(project: Project, within=None):
    """The active photos that match the project's filters (among `within`, an Image queryset)."""
    qs = (Image.objects.all() if within is None else within).filter(status=ImageStatus.ACTIVE)
    cats = list(project.categories.values_list("pk", flat=True))
    subs = list(project.subcategories.values_list("pk", flat=True))
    if cats or subs:
        qs = qs.filter(Q(category_id__in=cats) | Q(subcategory_id__in=subs))
    srcs = list(project.sources.values_list("pk", flat=True))
    if srcs:
        qs = qs.filter(source_id__in=srcs)
    return qs


def sync_project_images(project: Project, *, batch_size: int = 5000) -> tuple[int, int]:
    """Bring the queue in line with the project's filters: add matching photos (bulk inserts),
    drop photos that no longer match and that nobody has touched. Returns (added, removed)."""
    matching = _matching_images(project)
    with transaction.atomic():
        # NOT EXISTS, not NOT IN: PostgreSQL plans it as an anti-join; a NOT IN subquery too big
        # for work_mem is re-scanned for every row (minutes per save at 500,000 photos).
        stale = (
            ProjectImage.objects.filter(project=project, slots_taken=0, submitted_count=0)
            .exclude(Exists(matching.filter(pk=OuterRef("image_id"))))
            .exclude(Exists(Assignment.objects.filter(project=project, image_id=OuterRef("image_id"))))
        )
        removed, _ = stale.delete()
        missing = matching.exclude(Exists(ProjectImage.objects.filter(project=project, image_id=OuterRef("pk"))))
        added = 0
        batch: list[ProjectImage] = []
        for image_id, category_id in missing.order_by().values_list("pk", "category_id").iterator(chunk_size=batch_size):
            batch.append(ProjectImage(project=project, image_id=image_id, category_id=category_id, random_key=random.random()))
            if len(batch) >= batch_size:
                added += len(ProjectImage.objects.bulk_create(batch, ignore_conflicts=True))
                batch = []
        if batch:
            added += len(ProjectImage.objects.bulk_create(batch, ignore_conflicts=True))
    refresh_priorities(project)
    return added, removed


def add_images_to_queues(images, *, batch_size: int = 5000) -> dict[int, int]:
    """Photos of `images` (an Image queryset: an import's, or ones just moved or restored) join the
    queue of every open project that follows new photos and whose filters they match: only those
    photos are read, never the whole catalogue, and a photo already in a queue stays as it is. Each
    project that got photos records how many and when. Returns {project id: photos added}."""
    joined: dict[int, int] = {}
    for project in Project.objects.filter(is_active=True, photo_set=PhotoSet.FOLLOW).order_by("pk"):
        missing = _matching_images(project, within=images).exclude(
            Exists(ProjectImage.objects.filter(project=project, image_id=OuterRef("pk")))
        )
        priority = _QueuePriority(project)
        with transaction.atomic():
            added = 0
            batch: list[ProjectImage] = []
            for image_id, category_id in missing.order_by().values_list("pk", "category_id").iterator(chunk_size=batch_size):
                batch.append(ProjectImage(project=project, image_id=image_id, category_id=category_id,
                                          priority=priority(category_id), random_key=random.random()))
                if len(batch) >= batch_size:
                    added += len(ProjectImage.objects.bulk_create(batch, ignore_conflicts=True))
                    batch = []
            if batch:
                added += len(ProjectImage.objects.bulk_create(batch, ignore_conflicts=True))
            if added:
                Project.objects.filter(pk=project.pk).update(last_joined_at=timezone.now(), last_joined_count=added)
                joined[project.pk] = added
    return joined


class _QueuePriority:
    """The priority a new or moved queue row of a category gets: the one the project's queue
    already gives that category (set by the last refresh_priorities; one indexed look-up per
    category), else 0, the top, until the next refresh places it. Cheaper in a request than
    category_order(), which counts every labeled photo."""

    def __init__(self, project: Project):
        self.project = project
        self.known: dict[int | None, int] = {}

    def __call__(self, category_id: int | None) -> int:
        if category_id not in self.known:
            rows = ProjectImage.objects.filter(project=self.project, category_id=category_id)
            self.known[category_id] = rows.values_list("priority", flat=True).first() or 0
        return self.known[category_id]


def join_imported_images(import_job_id: int) -> dict[int, int]:
    """The photos an import stored join the open projects that follow new photos (datasets sends
    `images_added` when an import finishes; labeling.tasks runs this on a worker)."""
    return add_images_to_queues(Image.objects.filter(import_job_id=import_job_id))


def follow_image_changes(image_ids) -> None:
    """Queues follow photos that changed status or category (datasets sends `images_changed`
    inside the transaction that changed them, and this runs in it):

    - a photo that no longer matches a project's filters (moved out, or retired or excluded) leaves
      the queue where nobody has touched it (no lease, no submission, no assignment row), as
      sync_project_images does;
    - a retired or excluded photo that somebody has touched stays for its counts but is excluded:
      the assignment engine never hands it out again, open leases on it are returned (their
      labelers' caps free again; a submit of one answers PhotoWithdrawn); restored, it comes back
      (unless a planner excluded it from that project after a report);
    - the queue's copy of the photo's category follows, with its priority;
    - photos that now match an open project that follows new photos join it.
    """
    ids = list(image_ids)
    if not ids:
        return
    within = Image.objects.filter(pk__in=ids)
    withdrawn = within.exclude(status=ImageStatus.ACTIVE).values("pk")
    categories = set(within.order_by().values_list("category_id", flat=True).distinct())
    with transaction.atomic():
        for project in Project.objects.filter(pk__in=ProjectImage.objects.filter(image_id__in=ids).values("project_id")):
            rows = ProjectImage.objects.filter(project=project, image_id__in=ids)
            rows.filter(slots_taken=0, submitted_count=0).exclude(
                Exists(_matching_images(project, within=within).filter(pk=OuterRef("image_id")))
            ).exclude(Exists(Assignment.objects.filter(project=project, image_id=OuterRef("image_id")))).delete()
            rows.filter(excluded=False, image_id__in=withdrawn).update(excluded=True)
            leased = Assignment.objects.filter(project=project, image_id__in=withdrawn, status=AssignmentStatus.LEASED)
            for pk, image_id in leased.values_list("pk", "image_id"):
                if Assignment.objects.filter(pk=pk, status=AssignmentStatus.LEASED).update(status=AssignmentStatus.EXPIRED):
                    _free_slot(project, image_id)
            rows.filter(excluded=True).exclude(image_id__in=withdrawn).exclude(
                Exists(Assignment.objects.filter(project=project, image_id=OuterRef("image_id"),
                                                 report_resolution="excluded"))
            ).update(excluded=False)
            priority = _QueuePriority(project)
            for category_id in categories:
                rank = priority(category_id)
                rows.filter(image_id__in=within.filter(category_id=category_id).values("pk")).exclude(
                    category_id=category_id, priority=rank
                ).update(category_id=category_id, priority=rank)
        add_images_to_queues(within)


def category_order() -> list[int | None]:
    """Category ids, furthest from quota first: the share of the quota already labeled (images
    with at least one submitted comment set), lowest first; categories with no quota last, then
    photos with no category."""
    from .selectors import labeled_image_counts

    labeled: dict[int | None, int] = {}
    for (cat, _sub), n in labeled_image_counts().items():
        labeled[cat] = labeled.get(cat, 0) + n
    cats = list(Category.objects.order_by("position", "id").values_list("pk", "quota"))

    def share(item):
        pk, quota = item
        return (0, labeled.get(pk, 0) / quota) if quota else (1, 0)

    return [pk for pk, _q in sorted(cats, key=share)] + [None]


def refresh_priorities(project: Project) -> int:
    """Recompute the queue's category priorities (0 = furthest from quota) and re-copy image
    categories that changed since. Only rows whose value changes are written, so a refresh that
    changes no order is a few indexed scans. Returns rows written."""
    from django.db.models import OuterRef, Subquery

    written = 0
    with transaction.atomic():
        drifted = ProjectImage.objects.filter(project=project).exclude(category_id=F("image__category_id"))
        drifted |= ProjectImage.objects.filter(project=project, category__isnull=True, image__category__isnull=False)
        drifted |= ProjectImage.objects.filter(project=project, category__isnull=False, image__category__isnull=True)
        ids = list(drifted.values_list("pk", flat=True)[:100000])
        if ids:
            written += ProjectImage.objects.filter(pk__in=ids).update(
                category_id=Subquery(Image.objects.filter(pk=OuterRef("image_id")).values("category_id")[:1])
            )
        for rank, cat in enumerate(category_order()):
            rows = ProjectImage.objects.filter(project=project, category_id=cat) if cat is not None else \
                ProjectImage.objects.filter(project=project, category__isnull=True)
            written += rows.exclude(priority=rank).update(priority=rank)
        Project.objects.filter(pk=project.pk).update(priorities_refreshed_at=timezone.now())
    return written


def _maybe_refresh_priorities(project: Project) -> None:
    """Queue a priority refresh when the last one is older than LABELING_PRIORITY_REFRESH_SECONDS.
    The conditional update lets one request in many claim it."""
    every = getattr(settings, "LABELING_PRIORITY_REFRESH_SECONDS", 60)
    cutoff = timezone.now() - timedelta(seconds=every)
    last = project.priorities_refreshed_at
    if last is not None and last > cutoff:
        return
    claimed = Project.objects.filter(pk=project.pk).filter(
        Q(priorities_refreshed_at__isnull=True) | Q(priorities_refreshed_at__lte=cutoff)
    ).update(priorities_refreshed_at=timezone.now())
    if claimed:
        from .tasks import refresh_priorities_task

        transaction.on_commit(lambda: refresh_priorities_task.delay(project.pk))


def _lock_member(project_id: int, labeler, *, active_only: bool = True) -> ProjectMember:
    """Write the labeler's member row first: their actions run one at a time (see module doc).
    Returns the row as written, with its project read under the same lock.

    Every labeler action (next, submit, skip, report) starts here with `active_only`, so a removed
    labeler is refused (NotAMember) the same way by all of them; only planners' actions on a
    member (deactivate, cap) pass active_only=False.

    This must be the transaction's first statement: on SQLite a transaction that has read cannot
    wait for the write lock (it fails at once with 'database is locked'). On PostgreSQL the write
    and the read are one round trip: WITH m AS (UPDATE ... RETURNING *) SELECT m, project."""
    now = timezone.now()
    if connection.vendor == "postgresql":
        member = _update_member_returning(project_id, getattr(labeler, "pk", labeler), now, active_only)
        if member is None:
            raise NotAMember()
        return member
    rows = ProjectMember.objects.filter(project_id=project_id, user=labeler)
    if active_only:
        rows = rows.filter(is_active=True)
    if not rows.update(last_active_at=now):
        raise NotAMember()
    return rows.select_related("project").get()


def _update_member_returning(project_id: int, user_id: int, now, active_only: bool) -> ProjectMember | None:
    """PostgreSQL: _lock_member's write and read in one statement; None when no row matched."""
    from django.db.models.expressions import Col

    qn = connection.ops.quote_name
    parts = [(ProjectMember, "m"), (Project, "p")]
    columns = ", ".join(f"{alias}.{qn(f.column)}" for model, alias in parts for f in model._meta.concrete_fields)
    active = f" AND {qn('is_active')}" if active_only else ""
    sql = (
        f"WITH m AS (UPDATE {qn(ProjectMember._meta.db_table)} SET {qn('last_active_at')} = %s "
        f"WHERE {qn('project_id')} = %s AND {qn('user_id')} = %s{active} RETURNING *) "
        f"SELECT {columns} FROM m INNER JOIN {qn(Project._meta.db_table)} p ON p.{qn('id')} = m.{qn('project_id')}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [now, project_id, user_id])
        row = cursor.fetchone()
    if row is None:
        return None
    instances, start = [], 0
    for model, _alias in parts:
        fields = model._meta.concrete_fields
        values = list(row[start:start + len(fields)])
        start += len(fields)
        for i, field in enumerate(fields):  # the ORM's own conversions of database values
            col = Col(model._meta.db_table, field)
            for convert in connection.ops.get_db_converters(col) + col.get_db_converters(connection):
                values[i] = convert(values[i], col, connection)
        instances.append(model.from_db(connection.alias, [f.attname for f in fields], values))
    member, project = instances
    member.project = project
    return member


def _lock_assignment(assignment_id: int, labeler) -> Assignment:
    qs = Assignment.objects.filter(pk=assignment_id, labeler=labeler)
    if connection.features.has_select_for_update:
        qs = qs.select_for_update(of=("self",))
    try:
        return qs.select_related("project").get()
    except Assignment.DoesNotExist:
        raise LabelingError(_("This assignment is not yours.")) from None


def _take_slot(project: Project, image_id) -> bool:
    return bool(
        ProjectImage.objects.filter(project=project, image_id=image_id, slots_taken__lt=project.overlap)
        .update(slots_taken=F("slots_taken") + 1)
    )


def _free_slot(project: Project, image_id) -> None:
    ProjectImage.objects.filter(project=project, image_id=image_id, slots_taken__gt=0).update(
        slots_taken=F("slots_taken") - 1
    )


# --- The assignment engine ------------------------------------------------------------------

def release_expired_leases(project: Project, *, limit: int = 500) -> int:
    """Free the slots of leases past their time. Each lease is released by a conditional update
    (still leased, still expired), so a submit that wins the race keeps its slot. Cheap when
    nothing expired: one indexed query on (project, status, expires_at)."""
    now = timezone.now()
    expired = list(
        Assignment.objects.filter(project=project, status=AssignmentStatus.LEASED, expires_at__lte=now)
        .order_by()
        .values_list("pk", "image_id")[:limit]
    )
    released = 0
    for pk, image_id in expired:
        with transaction.atomic():
            if Assignment.objects.filter(pk=pk, status=AssignmentStatus.LEASED, expires_at__lte=now).update(
                status=AssignmentStatus.EXPIRED
            ):
                _free_slot(project, image_id)
                released += 1
    return released


# When this process last swept each project's expired leases (time.monotonic(), by project id).
_swept_at: dict[int, float] = {}


def _sweep_expired_leases(project: Project) -> None:
    """release_expired_leases, at most once every LABELING_RELEASE_SECONDS per process and
    project: other labelers' expired leases only hold slots a few seconds longer, and `next`
    saves a query. (A labeler's own expired leases are freed at once by next_assignments, and a
    labeler about to hear "no work" sweeps first.)"""
    import time

    every = getattr(settings, "LABELING_RELEASE_SECONDS", 5)
    now = time.monotonic()
    last = _swept_at.get(project.pk)
    if last is not None and now - last < every:
        return
    if len(_swept_at) > 10000:
        _swept_at.clear()
    _swept_at[project.pk] = now
    release_expired_leases(project)


def _candidates(project: Project, labeler, *, skip_locked: bool, tried: set, lock: bool = True):
    # `excluded` also covers photos retired or excluded from the catalogue: follow_image_changes
    # sets it on every queue row of such a photo in the transaction that withdraws it.
    mine = Assignment.objects.filter(project=project, labeler=labeler, status__in=BLOCKING_STATUSES)
    qs = (
        ProjectImage.objects.filter(project=project, slots_taken__lt=project.overlap, excluded=False)
        .exclude(image_id__in=mine.values("image_id"))
        .order_by("-slots_taken", "priority", "random_key")
    )
    if tried:
        qs = qs.exclude(image_id__in=tried)
    if lock and connection.features.has_select_for_update:
        qs = qs.select_for_update(skip_locked=skip_locked and connection.features.has_select_for_update_skip_locked)
    return qs


def next_assignment(project: Project, labeler) -> Assignment:
    """The labeler's photo: their own unexpired lease, else a new lease on a photo that still
    needs labelers and that they have not had. Raises NotAMember, ProjectInactive, CapReached or
    NoWorkLeft."""
    return next_assignments(project, labeler, count=1)[0]


def next_assignments(project: Project, labeler, count: int = 1) -> list[Assignment]:
    """Up to `count` leases for the labeler, oldest first: their own unexpired leases, topped up
    with new ones while they are under their cap (a photo fetched ahead counts towards the cap
    like any lease). New photos: started ones first (finish overlaps before opening new photos),
    then the categories furthest from quota, then random.

    Expired leases are freed: the labeler's own at once; other labelers' by a sweep at most every
    few seconds per process (`_sweep_expired_leases`), and always before "no work" is said.

    Raises NotAMember or ProjectInactive; CapReached or NoWorkLeft when there is nothing at all
    to return.
    """
    if not project.is_active:
        raise ProjectInactive()
    count = max(1, min(int(count), 5))
    _sweep_expired_leases(project)
    leases, project, error = _top_up(project, labeler, count)
    if not leases and isinstance(error, NoWorkLeft) and release_expired_leases(project):
        leases, project, error = _top_up(project, labeler, count)
    if not leases:
        raise error
    _maybe_refresh_priorities(project)
    return leases


def _top_up(project: Project, labeler, count: int):
    """next_assignments in one transaction: (leases, fresh project, error that stopped the top-up)."""
    with transaction.atomic():
        member = _lock_member(project.pk, labeler)
        project = member.project
        if not project.is_active:
            raise ProjectInactive()
        now = timezone.now()
        leases = []
        for lease in (
            Assignment.objects.filter(project=project, labeler=labeler, status=AssignmentStatus.LEASED)
            .order_by("leased_at", "id")
        ):
            if lease.expires_at > now:
                leases.append(lease)
            elif Assignment.objects.filter(pk=lease.pk, status=AssignmentStatus.LEASED, expires_at__lte=now).update(
                status=AssignmentStatus.EXPIRED
            ):  # the labeler's own lease ran out: its slot is free again (the photo may come back)
                _free_slot(project, lease.image_id)
        # The cap counts submissions (the member row's counter, kept by submit under this same
        # lock) and open leases.
        used = member.submitted_count + len(leases)
        leases = leases[:count]
        error: LabelingError | None = None
        while len(leases) < count:
            if used >= member.cap:
                error = CapReached()
                break
            image_id = _pick(project, labeler)
            if image_id is None:
                error = NoWorkLeft()
                break
            leases.append(_lease(project, image_id, labeler, now))
            used += 1
    return leases, project, error


def _update_returning() -> bool:
    """Whether one UPDATE can both change rows and return them (PostgreSQL, SQLite 3.35+)."""
    return connection.vendor in ("postgresql", "sqlite") and connection.features.can_return_columns_from_insert


def _pick(project: Project, labeler):
    """Take a slot on the best open photo and return its image id, or None.

    Rows other labelers hold locked are skipped. When every open photo is locked, look again a
    moment later (for up to LABELING_BUSY_WAIT_SECONDS, default 10), so "no work" is never said
    while a photo is merely busy. The pick never waits on a row lock: a locking scan that waits
    keeps the rows it locked and re-checked on the way, and two such scans can deadlock.
    Where an UPDATE can return rows, finding the photo and taking its slot is one statement:
    UPDATE ... SET slots_taken = slots_taken + 1 WHERE id = (best candidate, FOR UPDATE SKIP
    LOCKED) AND slots_taken < overlap RETURNING image_id."""
    import time

    skip_locked = connection.features.has_select_for_update_skip_locked
    deadline = time.monotonic() + getattr(settings, "LABELING_BUSY_WAIT_SECONDS", 10)
    pause = 0.005
    tried: set = set()
    while True:
        if _update_returning():
            image_id = _take_best(project, _candidates(project, labeler, skip_locked=True, tried=tried))
            if image_id is not None:
                return image_id
        else:
            while True:
                pick = (
                    _candidates(project, labeler, skip_locked=True, tried=tried)
                    .values_list("image_id", flat=True).first()
                )
                if pick is None:
                    break
                if _take_slot(project, pick):
                    return pick
                tried.add(pick)
        # Nothing free: are there open photos at all, locked by others for a moment?
        if not (skip_locked and _candidates(project, labeler, skip_locked=False, tried=tried, lock=False).exists()):
            return None
        if time.monotonic() > deadline:
            return None
        time.sleep(pause)
        pause = min(pause * 2, 0.1)


def _take_best(project: Project, candidates):
    """One statement: raise slots_taken on the first of `candidates` and return its image id."""
    qn = connection.ops.quote_name
    inner, params = candidates.values("pk")[:1].query.get_compiler(connection=connection).as_sql()
    sql = (
        f"UPDATE {qn(ProjectImage._meta.db_table)} SET {qn('slots_taken')} = {qn('slots_taken')} + 1 "
        f"WHERE {qn('id')} = ({inner}) AND {qn('slots_taken')} < %s RETURNING {qn('image_id')}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, (*params, project.overlap))
        row = cursor.fetchone()
    return None if row is None else ProjectImage._meta.get_field("image").to_python(row[0])


def _lease(project: Project, image_id, labeler, now) -> Assignment:
    fields = {
        "status": AssignmentStatus.LEASED, "leased_at": now,
        "expires_at": now + timedelta(minutes=project.lease_minutes), "submitted_at": None, "idempotency_key": "",
    }
    # An expired or returned lease of this labeler on this photo keeps its row: re-use it. Where
    # the database can, in one INSERT ... ON CONFLICT (project, image, labeler) DO UPDATE.
    features = connection.features
    if features.supports_update_conflicts_with_target and features.can_return_rows_from_bulk_insert:
        assignment = Assignment(project=project, image_id=image_id, labeler=labeler, **fields)
        Assignment.objects.bulk_create(
            [assignment], update_conflicts=True, unique_fields=["project", "image", "labeler"], update_fields=list(fields)
        )
        if assignment.pk is not None:
            return assignment
    assignment = Assignment.objects.filter(project=project, image_id=image_id, labeler=labeler).first()
    if assignment is None:
        return Assignment.objects.create(project=project, image_id=image_id, labeler=labeler, **fields)
    for name, value in fields.items():
        setattr(assignment, name, value)
    assignment.save(update_fields=list(fields))
    return assignment


def current_guideline(project: Project) -> GuidelineVersion | None:
    if not project.guideline_version:
        return None
    return GuidelineVersion.objects.filter(project=project, version=project.guideline_version).first()


# Example texts of published guideline versions, by (database, project, created, version): a
# published version never changes, so each process reads it once.
_example_texts_cache: dict[tuple, list[str]] = {}


def _example_texts(project: Project) -> list[str]:
    if not (project.reject_copied_examples and project.guideline_version):
        return []
    key = (connection.settings_dict["NAME"], project.pk, project.created_at, project.guideline_version)
    texts = _example_texts_cache.get(key)
    if texts is None:
        row = GuidelineVersion.objects.filter(project=project, version=project.guideline_version).values_list(
            "examples", flat=True
        ).first()
        texts = [c["text"] for ex in row or [] for c in ex.get("comments", [])]
        if row is not None:
            if len(_example_texts_cache) > 256:
                _example_texts_cache.clear()
            _example_texts_cache[key] = texts
    return texts


def _validate(project: Project, labeler, texts: dict[str, str]) -> list[tuple[CommentType, str, int]]:
    types = list(project.comment_types.order_by("position", "id"))
    examples = _example_texts(project)
    own_previous: set[str] = set()
    keys = {text_rules.comparable(v) for v in texts.values() if isinstance(v, str)} - {""}
    if project.reject_own_repeats and keys:
        # Only this labeler's earlier comments that equal one of these texts: one indexed query.
        own_previous = set(
            Comment.objects.filter(assignment__project=project, assignment__labeler=labeler, key__in=keys)
            .order_by().values_list("key", flat=True)
        )
    errors: dict[str, list[tuple[str, str]]] = {}
    for slug in sorted(set(texts) - {ct.slug for ct in types}):
        errors[slug] = [("unknown_type", str(_("This project has no comment type “%(slug)s”.") % {"slug": slug}))]
    accepted = []
    for ct in types:
        value = texts.get(ct.slug)
        if not isinstance(value, str):
            errors[ct.slug] = [("required", str(_("This comment is required.")))]
            continue
        result = text_rules.check(value, project.rules_for(ct), examples=examples, own_previous=own_previous)
        if result.ok:
            accepted.append((ct, text_rules.normalise(value), result.length))
        else:
            errors[ct.slug] = [(v.code, v.message) for v in result.violations]
    if errors:
        raise SubmissionRejected(errors)
    return accepted


def submit(assignment: Assignment, labeler, texts: dict[str, str], idempotency_key: str = "") -> list[Comment]:
    """Store the labeler's comment set for their assignment and return it.

    Idempotent: a second submit of a submitted assignment (a double click, a retried request)
    stores nothing and returns the stored set. Texts that break a rule raise SubmissionRejected,
    store nothing and count one rejection for the labeler (and one RuleHit per rule broken). A
    lease that expired still counts if the photo has a free slot (and the labeler is under their
    cap); otherwise LeaseLost. A photo taken out of the project meanwhile (retired, excluded)
    raises PhotoWithdrawn.
    Each comment records the guideline version current at submission.
    """
    # The lexicon runs before the transaction (no database; korcen's first use in a process takes
    # a second or more: not while the submit holds its locks); its flags are written inside.
    lexicon = _lexicon_before_submit(texts) if settings.CURATION["INLINE_LEXICON"] else None
    try:
        with transaction.atomic():
            member = _lock_member(assignment.project_id, labeler)
            project = member.project
            current = _lock_assignment(assignment.pk, labeler)
            if current.status == AssignmentStatus.SUBMITTED:
                return list(current.comments.order_by("comment_type__position", "id"))
            if current.status in (AssignmentStatus.SKIPPED, AssignmentStatus.REPORTED):
                raise AssignmentClosed()
            accepted = _validate(project, labeler, texts)
            if ProjectImage.objects.filter(project=project, image_id=current.image_id, excluded=True).exists():
                raise PhotoWithdrawn()  # retired, excluded or excluded after a report while it was leased
            if current.status != AssignmentStatus.LEASED:  # expired or returned: the slot was freed
                used = member.submitted_count + Assignment.objects.filter(
                    project=project, labeler=labeler, status=AssignmentStatus.LEASED
                ).count()
                if used >= member.cap:
                    raise CapReached()
                if not _take_slot(project, current.image_id):
                    raise LeaseLost()
            now = timezone.now()
            started = current.leased_at
            if member.last_submitted_at and member.last_submitted_at > started:
                started = member.last_submitted_at
            current.status = AssignmentStatus.SUBMITTED
            current.submitted_at = now
            current.idempotency_key = idempotency_key[:100]
            current.work_seconds = max(0.0, (now - started).total_seconds())
            _record_submission(project, member, current)
            comments = Comment.objects.bulk_create(
                [
                    Comment(assignment=current, comment_type=ct, text=value, length=n,
                            key=text_rules.comparable(value), guideline_version=project.guideline_version or None)
                    for ct, value, n in accepted
                ]
            )
            if lexicon:
                _flag_lexicon_inline(comments, lexicon)
            project_id = project.pk
            transaction.on_commit(lambda: _send_sets_submitted(project_id))
    except SubmissionRejected as exc:
        _count_rule_hits(assignment.project_id, labeler, [code for codes in exc.codes.values() for code in codes])
        raise
    _copy_state(current, assignment)
    return comments


def _lexicon_before_submit(texts: dict) -> dict | None:
    """The cheap toxicity check inline at submit (issue 12, item 7), its first half: the korcen
    lexicon over the texts as they will be stored (curation.services.lexicon_findings, no
    database), before the submit's transaction. None where nothing matches or it failed (logged:
    the submit stands, and the next text run checks the comments).

    The second half, _flag_lexicon_inline, writes an open TOXICITY flag for each matched comment in
    the submit's transaction (so it is in the review queue at once, and a submit that fails leaves
    none). Nothing is refused: a profanity list has false positives, a planner judges. Done here
    rather than from the sets_submitted signal, which is sent after the commit. labeling calls into
    curation as labeling.text does (curation.pii); imported in the functions because
    curation.services imports this module."""
    from curation import services as curation_services

    try:
        return curation_services.lexicon_findings(
            [text_rules.normalise(v) for v in texts.values() if isinstance(v, str)]) or None
    except Exception:
        log.exception("inline lexicon check failed; the text run will check these comments")
        return None


def _flag_lexicon_inline(comments: list[Comment], found: dict) -> None:
    """See _lexicon_before_submit. A database failure is logged and the submit stands (the flag's
    write has its own savepoint, opened only when there is a flag to write)."""
    from curation import services as curation_services

    try:
        curation_services.flag_lexicon_inline(comments, found)
    except Exception:
        log.exception("inline lexicon flags failed for comments %s; the text run will flag them",
                      [c.pk for c in comments])


def _send_sets_submitted(project_id: int) -> None:
    from .signals import sets_submitted

    for receiver, result in sets_submitted.send_robust(sender=Assignment, project_id=project_id):
        if isinstance(result, Exception):
            log.error("project %s: %r failed on sets_submitted", project_id, receiver, exc_info=result)


# Submit attempts the rules stopped that one assignment may add to the counts (the page reports
# one per attempt; a script cannot inflate a labeler's figures beyond this per photo).
MAX_BLOCKED_REPORTS_PER_ASSIGNMENT = 30


def _count_rule_hits(project_id: int, labeler, codes) -> None:
    """One stopped submit attempt: the member's rejection_count and each rule's RuleHit (codes
    counted once per attempt; codes that are not rules, like unknown_type, only in the total)."""
    with transaction.atomic():
        rows = ProjectMember.objects.filter(project_id=project_id, user=labeler)
        if not rows.update(rejection_count=F("rejection_count") + 1):
            return
        member_id = rows.values_list("pk", flat=True).get()
        for code in sorted(set(codes) & set(RuleCode.values)):
            # The member row is locked by the update above, so this is not raced by another attempt.
            if not RuleHit.objects.filter(member_id=member_id, code=code).update(count=F("count") + 1):
                RuleHit.objects.create(project_id=project_id, member_id=member_id, code=code, count=1)


def record_blocked_submit(assignment: Assignment, labeler, codes) -> bool:
    """The labeler page stopped a submit because the texts break these rules (the server never
    saw the texts): count it like a refused submit. Only the assignment's own labeler, while the
    photo is still theirs to submit; at most MAX_BLOCKED_REPORTS_PER_ASSIGNMENT per photo.
    Returns whether it was counted. Bad codes raise ValidationError and count nothing."""
    if not isinstance(codes, (list, tuple)) or not codes or len(codes) > 2 * len(RuleCode.values):
        raise ValidationError({"rules": _("Send the codes of the rules that stopped the submit (at most %(n)d).")
                               % {"n": 2 * len(RuleCode.values)}})
    unknown = sorted({str(c)[:40] for c in codes if c not in RuleCode.values})
    if unknown:
        raise ValidationError({"rules": _("Unknown rule codes: %(codes)s.") % {"codes": ", ".join(unknown)}})
    with transaction.atomic():
        _lock_member(assignment.project_id, labeler)
        current = _lock_assignment(assignment.pk, labeler)
        if current.status == AssignmentStatus.SUBMITTED:
            raise AlreadySubmitted()
        if current.status in (AssignmentStatus.SKIPPED, AssignmentStatus.REPORTED):
            raise AssignmentClosed()
        if current.blocked_count >= MAX_BLOCKED_REPORTS_PER_ASSIGNMENT:
            return False
        Assignment.objects.filter(pk=current.pk).update(blocked_count=F("blocked_count") + 1)
        _count_rule_hits(assignment.project_id, labeler, codes)
    return True


def _record_submission(project: Project, member: ProjectMember, current: Assignment) -> None:
    """Write the submitted assignment and count it on the photo and the labeler (rows this
    transaction holds locked, apart from the photo's). One statement on PostgreSQL."""
    fields = ["status", "submitted_at", "idempotency_key", "work_seconds"]
    if connection.vendor != "postgresql":
        current.save(update_fields=fields)
        ProjectImage.objects.filter(project=project, image_id=current.image_id).update(
            submitted_count=F("submitted_count") + 1
        )
        ProjectMember.objects.filter(pk=member.pk).update(
            submitted_count=F("submitted_count") + 1,
            work_seconds_total=F("work_seconds_total") + current.work_seconds,
            last_submitted_at=current.submitted_at,
        )
        return
    qn = connection.ops.quote_name
    a_fields = [Assignment._meta.get_field(name) for name in fields]
    sets = ", ".join(f"{qn(f.column)} = %s" for f in a_fields)
    sql = (
        f"WITH a AS (UPDATE {qn(Assignment._meta.db_table)} SET {sets} WHERE {qn('id')} = %s RETURNING 1), "
        f"i AS (UPDATE {qn(ProjectImage._meta.db_table)} SET {qn('submitted_count')} = {qn('submitted_count')} + 1 "
        f"WHERE {qn('project_id')} = %s AND {qn('image_id')} = %s RETURNING 1) "
        f"UPDATE {qn(ProjectMember._meta.db_table)} SET {qn('submitted_count')} = {qn('submitted_count')} + 1, "
        f"{qn('work_seconds_total')} = {qn('work_seconds_total')} + %s, {qn('last_submitted_at')} = %s "
        f"WHERE {qn('id')} = %s"
    )
    params = [f.get_db_prep_save(getattr(current, f.attname), connection) for f in a_fields]
    params += [current.pk, project.pk, current.image_id, current.work_seconds, current.submitted_at, member.pk]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _copy_state(source: Assignment, target: Assignment) -> None:
    """The caller's instance shows what was stored."""
    for name in ("status", "submitted_at", "idempotency_key", "report_reason", "report_note", "reported_at", "expires_at"):
        setattr(target, name, getattr(source, name))


def _close(assignment: Assignment, labeler, status: str, **fields) -> Assignment:
    with transaction.atomic():
        # The same check as next and submit: a removed labeler may not skip or report either
        # (a report of an old assignment would still reach the planners' queue).
        _lock_member(assignment.project_id, labeler)
        current = _lock_assignment(assignment.pk, labeler)
        if current.status == AssignmentStatus.SUBMITTED:
            raise AlreadySubmitted()
        if current.status in (AssignmentStatus.SKIPPED, AssignmentStatus.REPORTED):
            return current  # a repeated click
        if current.status == AssignmentStatus.LEASED:
            _free_slot(current.project, current.image_id)
        current.status = status
        for name, value in fields.items():
            setattr(current, name, value)
        current.save(update_fields=["status", *fields])
    _copy_state(current, assignment)
    return current


def skip(assignment: Assignment, labeler) -> Assignment:
    """Give the photo back; it never comes back to this labeler."""
    return _close(assignment, labeler, AssignmentStatus.SKIPPED)


def report(assignment: Assignment, labeler, reason: str, note: str = "") -> Assignment:
    """Report the photo (inappropriate, broken, personal information) for planners; like a skip,
    it frees the slot and never comes back to this labeler."""
    if reason not in ReportReason.values:
        raise ValidationError({"reason": _("Choose one of: %(choices)s.") % {"choices": ", ".join(ReportReason.values)}})
    return _close(assignment, labeler, AssignmentStatus.REPORTED, report_reason=reason, report_note=note.strip()[:2000],
                  reported_at=timezone.now())


def deactivate_member(project: Project, user) -> int:
    """Stop a labeler: their membership ends and their open leases go back to the queue.
    Returns how many leases were returned."""
    returned = 0
    with transaction.atomic():
        _lock_member(project.pk, user, active_only=False)
        ProjectMember.objects.filter(project=project, user=user).update(is_active=False)
        for pk, image_id in Assignment.objects.filter(
            project=project, labeler=user, status=AssignmentStatus.LEASED
        ).values_list("pk", "image_id"):
            if Assignment.objects.filter(pk=pk, status=AssignmentStatus.LEASED).update(status=AssignmentStatus.RETURNED):
                _free_slot(project, image_id)
                returned += 1
    return returned


# --- Reports --------------------------------------------------------------------------------

def resolve_report(assignment: Assignment, resolution: str) -> Assignment:
    """A planner's decision on a reported photo: "kept" (the photo stays in the queue for
    others) or "excluded" (it is never handed out again in this project)."""
    if assignment.status != AssignmentStatus.REPORTED:
        raise LabelingError(_("Only reported photos can be resolved."))
    if resolution not in ("kept", "excluded"):
        raise ValidationError({"resolution": _("Choose kept or excluded.")})
    with transaction.atomic():
        Assignment.objects.filter(pk=assignment.pk).update(report_resolution=resolution)
        # "kept" never brings back a photo retired or excluded from the catalogue.
        withdrawn = Image.objects.filter(pk=assignment.image_id).exclude(status=ImageStatus.ACTIVE).exists()
        ProjectImage.objects.filter(project_id=assignment.project_id, image_id=assignment.image_id).update(
            excluded=resolution == "excluded" or withdrawn
        )
    assignment.report_resolution = resolution
    return assignment


def undo_report_resolution(assignment: Assignment, previous: str = "") -> Assignment:
    """Take back a planner's "excluded": the report goes back to `previous` ("" open, or "kept")
    and the photo back into the project's queue, unless another report of the same photo is
    still excluded."""
    if assignment.status != AssignmentStatus.REPORTED:
        raise LabelingError(_("Only reported photos can be resolved."))
    if previous not in ("", "kept"):
        raise ValidationError({"resolution": _("Choose kept or open.")})
    with transaction.atomic():
        undone = Assignment.objects.filter(pk=assignment.pk, report_resolution="excluded").update(
            report_resolution=previous
        )
        if not undone:
            raise LabelingError(_("This photo is not excluded (any more): there is nothing to undo."))
        still_excluded = Assignment.objects.filter(
            project_id=assignment.project_id, image_id=assignment.image_id, report_resolution="excluded"
        ).exists()
        if not still_excluded:
            ProjectImage.objects.filter(project_id=assignment.project_id, image_id=assignment.image_id).update(
                excluded=False
            )
    assignment.report_resolution = previous
    return assignment


# --- Rejected comment sets (the review queue) --------------------------------------------------

def reject_set(assignment: Assignment) -> Assignment:
    """A planner rejected a submitted comment set (curation's review queue). The set stops
    counting: its status becomes "rejected", so snapshot_candidates (which reads submitted sets
    only) leaves its comments out and does not count it towards a photo's sets; a labeler's set
    gives its slot back (ProjectImage.slots_taken and submitted_count, and the labeler's
    submitted_count), so the assignment engine hands the photo to another labeler until the
    overlap is met again. The labeler who wrote it never gets the photo again (REJECTED is a
    blocking status). An imported set (no labeler) took no slot: only its status changes."""
    with transaction.atomic():
        labeler_id = Assignment.objects.filter(pk=assignment.pk).values_list("labeler_id", flat=True).first()
        if labeler_id is not None:
            _lock_member(assignment.project_id, labeler_id, active_only=False)
        current = Assignment.objects.filter(pk=assignment.pk)
        if connection.features.has_select_for_update:
            current = current.select_for_update()
        current = current.get()
        if current.status != AssignmentStatus.SUBMITTED:
            raise LabelingError(_("Only submitted comment sets can be rejected."))
        Assignment.objects.filter(pk=current.pk).update(status=AssignmentStatus.REJECTED)
        if current.labeler_id is not None:
            ProjectImage.objects.filter(
                project_id=current.project_id, image_id=current.image_id, submitted_count__gt=0
            ).update(submitted_count=F("submitted_count") - 1)
            _free_slot(current.project, current.image_id)
            ProjectMember.objects.filter(
                project_id=current.project_id, user_id=current.labeler_id, submitted_count__gt=0
            ).update(submitted_count=F("submitted_count") - 1)
    assignment.status = AssignmentStatus.REJECTED
    return assignment


def unreject_set(assignment: Assignment) -> Assignment:
    """Take back reject_set: the set counts again and takes its slot back. Refused (LabelingError)
    when the slot went to another labeler meanwhile and the photo has its overlap again."""
    with transaction.atomic():
        labeler_id = Assignment.objects.filter(pk=assignment.pk).values_list("labeler_id", flat=True).first()
        if labeler_id is not None:
            _lock_member(assignment.project_id, labeler_id, active_only=False)
        current = Assignment.objects.filter(pk=assignment.pk)
        if connection.features.has_select_for_update:
            current = current.select_for_update()
        current = current.select_related("project").get()
        if current.status != AssignmentStatus.REJECTED:
            raise LabelingError(_("This comment set is not rejected: there is nothing to undo."))
        if current.labeler_id is not None:
            if not _take_slot(current.project, current.image_id):
                raise LabelingError(_("The photo's slot went to another labeler: the rejection cannot be undone."))
            ProjectImage.objects.filter(project_id=current.project_id, image_id=current.image_id).update(
                submitted_count=F("submitted_count") + 1
            )
            ProjectMember.objects.filter(project_id=current.project_id, user_id=current.labeler_id).update(
                submitted_count=F("submitted_count") + 1
            )
        Assignment.objects.filter(pk=current.pk).update(status=AssignmentStatus.SUBMITTED)
    assignment.status = AssignmentStatus.SUBMITTED
    return assignment


# --- Guidelines and examples ----------------------------------------------------------------

def check_guideline_size(body: str) -> None:
    """Refuse a guideline longer than LABELING_MAX_GUIDELINE_CHARS: it is rendered for every
    labeler, and 5 MB were accepted before (issue 9)."""
    limit = settings.LABELING_MAX_GUIDELINE_CHARS
    if len(body) > limit:
        raise ValidationError(
            {"body": _("The guideline is too long: at most %(limit)s characters (this one has %(count)s).")
                     % {"limit": f"{limit:,}", "count": f"{len(body):,}"}}
        )


def save_guideline_draft(project: Project, body: str) -> Project:
    check_guideline_size(body)
    Project.objects.filter(pk=project.pk).update(guideline_draft=body)
    project.guideline_draft = body
    return project


def _example_snapshot(project: Project) -> list[dict]:
    out = []
    examples = GuidelineExample.objects.filter(project=project).select_related("image").prefetch_related(
        "comments__comment_type"
    )
    for ex in examples:
        out.append({
            "image_id": str(ex.image_id),
            "image_url": ex.image.file.url if ex.image.file else "",
            "thumbnail_url": ex.image.thumbnail.url if ex.image.thumbnail else "",
            "note": ex.note,
            "comments": [
                {
                    "comment_type": c.comment_type.slug if c.comment_type else "",
                    "comment_type_name": c.comment_type.name if c.comment_type else "",
                    "text": c.text, "verdict": c.verdict, "why": c.why,
                }
                for c in ex.comments.all()
            ],
        })
    return out


def publish_guideline(project: Project, body: str | None = None, *, published_by=None) -> GuidelineVersion:
    """Publish the draft (or `body`) with a frozen copy of the current examples as the next
    version. Comments already written keep the version they were written under."""
    with transaction.atomic():
        locked = Project.objects.select_for_update().get(pk=project.pk)
        body = locked.guideline_draft if body is None else body
        if not (body or "").strip():
            raise ValidationError({"body": _("The guideline is empty.")})
        check_guideline_size(body)
        version = GuidelineVersion.objects.create(
            project=locked, version=locked.guideline_version + 1, body=body,
            examples=_example_snapshot(locked), published_by=published_by,
        )
        Project.objects.filter(pk=locked.pk).update(guideline_version=version.version, guideline_draft=body)
    project.guideline_version = version.version
    project.guideline_draft = body
    return version


def save_example(project: Project, image: Image, *, note: str = "", comments: list[dict] = (),
                 example: GuidelineExample | None = None, position: int | None = None) -> GuidelineExample:
    """Create or replace an example: a photo with comments, each {"comment_type": slug or
    None, "text", "verdict": "good"|"bad", "why"}. It appears to labelers at the next publish."""
    types = {ct.slug: ct for ct in project.comment_types.all()}
    errors = {}
    rows = []
    for i, c in enumerate(comments):
        text = text_rules.normalise(str(c.get("text", "")))
        verdict = c.get("verdict")
        slug = c.get("comment_type") or None
        if not text:
            errors[f"comments[{i}].text"] = _("An example comment needs text.")
        if verdict not in Verdict.values:
            errors[f"comments[{i}].verdict"] = _("Mark the comment good or bad.")
        if slug is not None and slug not in types:
            errors[f"comments[{i}].comment_type"] = _("This project has no comment type “%(slug)s”.") % {"slug": slug}
        rows.append(ExampleComment(comment_type=types.get(slug), text=text, verdict=verdict or "",
                                   why=str(c.get("why", ""))[:300], position=i))
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        if example is None:
            if position is None:
                position = GuidelineExample.objects.filter(project=project).count()
            try:
                with transaction.atomic():
                    example = GuidelineExample.objects.create(project=project, image=image, note=note[:300], position=position)
            except IntegrityError:
                raise ValidationError({"image": _("This photo is already an example.")}) from None
        else:
            example.image = image
            example.note = note[:300]
            if position is not None:
                example.position = position
            try:
                with transaction.atomic():
                    example.save()
            except IntegrityError:
                raise ValidationError({"image": _("This photo is already an example.")}) from None
            example.comments.all().delete()
        for row in rows:
            row.example = example
        ExampleComment.objects.bulk_create(rows)
    return example


def delete_example(example: GuidelineExample) -> None:
    example.delete()


@transaction.atomic
def move_example(project: Project, example_id: int, direction: str) -> bool:
    """Move an example one place up (`direction` "up") or down: positions become 0..n-1 in the
    new order (only the examples whose position changes are rewritten). False when there is no
    such example; moving past either end changes nothing."""
    examples = list(GuidelineExample.objects.filter(project=project).select_related("image")
                    .prefetch_related("comments__comment_type").order_by("position", "id"))
    index = next((i for i, ex in enumerate(examples) if ex.pk == example_id), None)
    if index is None:
        return False
    other = index - 1 if direction == "up" else index + 1
    if 0 <= other < len(examples):
        examples[index], examples[other] = examples[other], examples[index]
        for position, ex in enumerate(examples):
            if ex.position != position:
                GuidelineExample.objects.filter(pk=ex.pk).update(position=position)
    return True


# --- Labelers -------------------------------------------------------------------------------

@transaction.atomic
def add_new_labeler(project: Project, *, username: str, password: str, name: str = "",
                    cap_override: int | None = None) -> User:
    """Create a labeler account and make it an active member of `project`: both or neither."""
    from accounts import services as accounts

    user = accounts.create_user(username, password, Role.LABELER, first_name=name)
    add_member(project, user, cap_override=cap_override)
    return user


def set_member_cap(project: Project, user, cap_override: int | None) -> ProjectMember:
    if cap_override is not None and cap_override < 0:
        raise ValidationError({"cap_override": _("A cap cannot be negative.")})
    with transaction.atomic():
        _lock_member(project.pk, user, active_only=False)
        ProjectMember.objects.filter(project=project, user=user).update(cap_override=cap_override)
    return ProjectMember.objects.get(project=project, user=user)


CSV_COLUMNS = ("username", "password", "name", "email", "cap")


@transaction.atomic
def import_labelers_csv(project: Project, data: bytes | str) -> dict:
    """Create (or reuse) labeler accounts from a CSV with a header row: username (required),
    password (required for new accounts; it must pass AUTH_PASSWORD_VALIDATORS, as on every
    other form), name, email, cap (empty: the project's). All rows are checked first; if any row
    is wrong nothing is written and a ValidationError lists every bad row by its line number. Returns {"created", "added", "rows"}."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValidationError({"file": _("The file is not UTF-8 text.")}) from None
    reader = csv.DictReader(io.StringIO(data))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    if "username" not in header:
        raise ValidationError({"file": _("The first line must be a header with at least a username column.")})
    unknown = sorted(set(header) - set(CSV_COLUMNS) - {""})
    if unknown:
        raise ValidationError({"file": _("Unknown columns: %(cols)s. Known: %(known)s.") % {
            "cols": ", ".join(unknown), "known": ", ".join(CSV_COLUMNS)}})
    reader.fieldnames = header
    plans, errors, seen = [], [], set()
    for row in reader:
        line = reader.line_num
        row = {k: (v or "").strip() for k, v in row.items() if k}
        username = row.get("username", "")
        if not username:
            errors.append(_("Line %(line)d: the username is empty.") % {"line": line})
            continue
        if username in seen:
            errors.append(_("Line %(line)d: %(user)s appears twice.") % {"line": line, "user": username})
            continue
        seen.add(username)
        cap = None
        if row.get("cap"):
            try:
                cap = int(row["cap"])
                if cap < 0:
                    raise ValueError
            except ValueError:
                errors.append(_("Line %(line)d: the cap must be a whole number of 0 or more.") % {"line": line})
                continue
        user = User.objects.filter(username=username).first()
        if user is not None and user.role != Role.LABELER:
            errors.append(_("Line %(line)d: %(user)s exists and is not a labeler.") % {"line": line, "user": username})
            continue
        if user is None:
            candidate = User(username=username, role=Role.LABELER, first_name=row.get("name", "")[:150],
                             email=row.get("email", ""))
            try:
                candidate.full_clean(exclude=["password"])
            except ValidationError as exc:
                msgs = "; ".join(m for ms in exc.message_dict.values() for m in ms)
                errors.append(_("Line %(line)d: %(msgs)s") % {"line": line, "msgs": msgs})
                continue
            try:
                validate_password(row.get("password", ""), candidate)
            except ValidationError as exc:
                errors.append(_("Line %(line)d: a new account needs a password that passes the password rules: "
                                "%(msgs)s") % {"line": line, "msgs": " ".join(exc.messages)})
                continue
        plans.append((user, username, row, cap))
    if errors:
        raise ValidationError({"file": errors})
    if not plans:
        raise ValidationError({"file": _("The file has no rows.")})
    from accounts import services as accounts

    created = added = 0
    for user, username, row, cap in plans:
        if user is None:
            user = accounts.create_user(username, row["password"], Role.LABELER,
                                        first_name=row.get("name", "")[:150], email=row.get("email", ""))
            created += 1
        if not ProjectMember.objects.filter(project=project, user=user, is_active=True).exists():
            added += 1
        add_member(project, user, cap_override=cap)
    return {"created": created, "added": added, "rows": len(plans)}


# --- Messages to labelers (the labeler scorecard) -------------------------------------------

MESSAGE_MAX_CHARS = 2000


def send_labeler_message(project: Project, labeler, body: str, sent_by=None) -> LabelerMessage:
    """A planner's message to one labeler of `project` (a member, active or not), shown on the
    labeler's next page load until they dismiss it (mark_messages_read)."""
    body = text_rules.normalise(body or "").strip()
    if not body:
        raise ValidationError({"body": _("Write the message.")})
    if len(body) > MESSAGE_MAX_CHARS:
        raise ValidationError({"body": _("A message holds at most %(n)d characters.") % {"n": MESSAGE_MAX_CHARS}})
    if not ProjectMember.objects.filter(project=project, user=labeler).exists():
        raise ValidationError({"labeler": _("%(user)s is not a labeler of this project.") % {"user": labeler.username}})
    return LabelerMessage.objects.create(project=project, labeler=labeler, body=body, sent_by=sent_by)


def mark_messages_read(labeler, ids) -> int:
    """Mark these messages of `labeler` read (dismissed); others' messages and ones already read
    are left alone. Returns how many changed."""
    ids = [i for i in ids if isinstance(i, int) and not isinstance(i, bool)]
    if not ids:
        return 0
    return LabelerMessage.objects.filter(labeler=labeler, pk__in=ids, read_at__isnull=True).update(read_at=timezone.now())
