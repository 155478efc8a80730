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

import random
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from datasets.models import Image

from . import text as text_rules
from .models import (
    BLOCKING_STATUSES,
    Assignment,
    AssignmentStatus,
    Comment,
    CommentType,
    Project,
    ProjectImage,
    ProjectMember,
    ReportReason,
)

DEFAULT_COMMENT_TYPES = (
    {
        "slug": "reaction", "name": "짧은 반응", "min_length": 3, "max_length": 100, "position": 0,
        "description": "Short reaction: a natural first reaction to the photo (와.. 족발 폼 미쳤다!).",
    },
    {
        "slug": "specific", "name": "구체적인 코멘트", "min_length": 10, "max_length": 300, "position": 1,
        "description": "Specific comment: something about what is really in the photo.",
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


class AssignmentClosed(LabelingError):
    code = "closed"
    default_message = _("This photo was already skipped or reported.")


class SubmissionRejected(ValidationError):
    """The texts break rules. `message_dict` maps a comment type slug to its messages and
    `codes` to the rule codes; nothing was stored."""

    def __init__(self, errors: dict[str, list[tuple[str, str]]]):
        super().__init__({slug: [msg for _, msg in items] for slug, items in errors.items()})
        self.codes = {slug: [code for code, _ in items] for slug, items in errors.items()}


# --- Projects, members, queue ---------------------------------------------------------------

@transaction.atomic
def create_project(name: str, *, created_by=None, categories=(), subcategories=(), sources=(),
                   comment_types=DEFAULT_COMMENT_TYPES, **fields) -> Project:
    """A project with its comment types (by default the short reaction and the specific comment)."""
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


def add_member(project: Project, user, *, cap_override: int | None = None) -> ProjectMember:
    """Make `user` an active labeler of `project` (re-activating a former member)."""
    fields = {"cap_override": cap_override, "is_active": True}
    with transaction.atomic():  # write first (see _lock_member)
        if not ProjectMember.objects.filter(project=project, user=user).update(**fields):
            ProjectMember.objects.create(project=project, user=user, **fields)
    return ProjectMember.objects.get(project=project, user=user)


def _matching_images(project: Project):
    qs = Image.objects.all()
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
        stale = (
            ProjectImage.objects.filter(project=project, slots_taken=0, submitted_count=0)
            .exclude(image_id__in=matching.values("pk"))
            .exclude(image_id__in=Assignment.objects.filter(project=project).values("image_id"))
        )
        removed, _ = stale.delete()
        missing = matching.exclude(pk__in=ProjectImage.objects.filter(project=project).values("image_id"))
        added = 0
        batch: list[ProjectImage] = []
        for image_id in missing.order_by().values_list("pk", flat=True).iterator(chunk_size=batch_size):
            batch.append(ProjectImage(project=project, image_id=image_id, random_key=random.random()))
            if len(batch) >= batch_size:
                added += len(ProjectImage.objects.bulk_create(batch, ignore_conflicts=True))
                batch = []
        if batch:
            added += len(ProjectImage.objects.bulk_create(batch, ignore_conflicts=True))
    return added, removed


def _lock_member(project_id: int, labeler, *, active_only: bool = True) -> ProjectMember:
    """Write the labeler's member row first: their actions run one at a time (see module doc).

    This must be the transaction's first statement: on SQLite a transaction that has read cannot
    wait for the write lock (it fails at once with 'database is locked')."""
    rows = ProjectMember.objects.filter(project_id=project_id, user=labeler)
    if active_only:
        rows = rows.filter(is_active=True)
    if not rows.update(last_active_at=timezone.now()):
        raise NotAMember()
    return rows.select_related("project").get()


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


def _candidates(project: Project, labeler, *, skip_locked: bool, tried: set):
    mine = Assignment.objects.filter(project=project, labeler=labeler, status__in=BLOCKING_STATUSES)
    qs = (
        ProjectImage.objects.filter(project=project, slots_taken__lt=project.overlap)
        .exclude(image_id__in=mine.values("image_id"))
        .order_by("-slots_taken", "random_key")
    )
    if tried:
        qs = qs.exclude(image_id__in=tried)
    if connection.features.has_select_for_update:
        qs = qs.select_for_update(skip_locked=skip_locked and connection.features.has_select_for_update_skip_locked)
    return qs


def next_assignment(project: Project, labeler) -> Assignment:
    """The labeler's photo: their own unexpired lease, else a new lease on a photo that still
    needs labelers and that they have not had, preferring photos already started.

    Raises NotAMember, ProjectInactive, CapReached or NoWorkLeft.
    """
    if not project.is_active:
        raise ProjectInactive()
    release_expired_leases(project)
    with transaction.atomic():
        member = _lock_member(project.pk, labeler)
        project = member.project
        now = timezone.now()
        own = (
            Assignment.objects.filter(project=project, labeler=labeler, status=AssignmentStatus.LEASED, expires_at__gt=now)
            .order_by("leased_at")
            .first()
        )
        if own is not None:
            return own
        used = Assignment.objects.filter(
            project=project, labeler=labeler, status__in=(AssignmentStatus.LEASED, AssignmentStatus.SUBMITTED)
        ).count()
        if used >= member.cap:
            raise CapReached()
        # Skip rows other labelers hold locked; only when none is free, wait for the locked ones,
        # so "no work" is never said while a photo is merely busy.
        tried: set = set()
        for skip_locked in (True, False):
            while True:
                pick = (
                    _candidates(project, labeler, skip_locked=skip_locked, tried=tried)
                    .values_list("image_id", flat=True).first()
                )
                if pick is None:
                    break
                if _take_slot(project, pick):
                    return _lease(project, pick, labeler, now)
                tried.add(pick)
        raise NoWorkLeft()


def _lease(project: Project, image_id, labeler, now) -> Assignment:
    fields = {
        "status": AssignmentStatus.LEASED, "leased_at": now,
        "expires_at": now + timedelta(minutes=project.lease_minutes), "submitted_at": None, "idempotency_key": "",
    }
    # An expired or returned lease of this labeler on this photo keeps its row: re-use it.
    assignment = Assignment.objects.filter(project=project, image_id=image_id, labeler=labeler).first()
    if assignment is None:
        return Assignment.objects.create(project=project, image_id=image_id, labeler=labeler, **fields)
    for name, value in fields.items():
        setattr(assignment, name, value)
    assignment.save(update_fields=list(fields))
    return assignment


def _validate(project: Project, labeler, texts: dict[str, str]) -> list[tuple[CommentType, str, int]]:
    types = list(project.comment_types.order_by("position", "id"))
    own_previous: set[str] = set()
    keys = {text_rules.comparable(v) for v in texts.values() if isinstance(v, str)} - {""}
    if project.reject_own_repeats and keys:
        # Only this labeler's earlier comments that equal one of these texts: one indexed query.
        own_previous = set(
            Comment.objects.filter(assignment__project=project, assignment__labeler=labeler, key__in=keys)
            .values_list("key", flat=True)
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
        result = text_rules.check(value, project.rules_for(ct), own_previous=own_previous)
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
    stores nothing and returns the stored set. Texts that break a rule raise SubmissionRejected
    and store nothing. A lease that expired still counts if the photo has a free slot (and the
    labeler is under their cap); otherwise LeaseLost.
    """
    with transaction.atomic():
        member = _lock_member(assignment.project_id, labeler)
        project = member.project
        current = _lock_assignment(assignment.pk, labeler)
        if current.status == AssignmentStatus.SUBMITTED:
            return list(current.comments.order_by("comment_type__position", "id"))
        if current.status in (AssignmentStatus.SKIPPED, AssignmentStatus.REPORTED):
            raise AssignmentClosed()
        accepted = _validate(project, labeler, texts)
        if current.status != AssignmentStatus.LEASED:  # expired or returned: the slot was freed
            used = Assignment.objects.filter(
                project=project, labeler=labeler, status__in=(AssignmentStatus.LEASED, AssignmentStatus.SUBMITTED)
            ).count()
            if used >= member.cap:
                raise CapReached()
            if not _take_slot(project, current.image_id):
                raise LeaseLost()
        now = timezone.now()
        current.status = AssignmentStatus.SUBMITTED
        current.submitted_at = now
        current.idempotency_key = idempotency_key[:100]
        current.save(update_fields=["status", "submitted_at", "idempotency_key"])
        ProjectImage.objects.filter(project=project, image_id=current.image_id).update(
            submitted_count=F("submitted_count") + 1
        )
        comments = Comment.objects.bulk_create(
            [
                Comment(assignment=current, comment_type=ct, text=value, length=n, key=text_rules.comparable(value))
                for ct, value, n in accepted
            ]
        )
    _copy_state(current, assignment)
    return comments


def _copy_state(source: Assignment, target: Assignment) -> None:
    """The caller's instance shows what was stored."""
    for name in ("status", "submitted_at", "idempotency_key", "report_reason", "report_note", "expires_at"):
        setattr(target, name, getattr(source, name))


def _close(assignment: Assignment, labeler, status: str, **fields) -> Assignment:
    with transaction.atomic():
        _lock_member(assignment.project_id, labeler, active_only=False)
        current = _lock_assignment(assignment.pk, labeler)
        if current.status == AssignmentStatus.SUBMITTED:
            raise LabelingError(_("This photo was already submitted."))
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
    return _close(assignment, labeler, AssignmentStatus.REPORTED, report_reason=reason, report_note=note.strip()[:2000])


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
