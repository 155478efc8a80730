"""Labeling state: projects, their comment types and members, the photo queue, assignments and comments.

Every change goes through `labeling.services`; reads through `labeling.selectors`.
"""
from __future__ import annotations

import random

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from datasets.models import Category, Image, Source, Subcategory

from .text import Rules


def random_key() -> float:
    return random.random()


class PhotoSet(models.TextChoices):
    FOLLOW = "follow", _("Follow new photos")
    FROZEN = "frozen", _("Frozen")


# A project's text-rule switches (Project's fields of these names, its Rules): the settings form,
# the API and the labeler page's config list them from here.
RULE_FIELDS = (
    "count_whitespace", "reject_jamo_or_emoji_only", "max_repeat_run", "reject_copied_examples",
    "reject_own_repeats", "reject_urls", "reject_emails", "reject_phone_numbers", "reject_personal_info",
)


class Project(models.Model):
    """A labeling job: which photos, how many distinct labelers per photo, caps, leases and rules.

    Photos are chosen by filters: images in any of `categories` or any of `subcategories`
    (both empty: every category), narrowed to `sources` when any are chosen. The queue itself is
    `ProjectImage`, materialised by `services.sync_project_images` when the settings are saved;
    while the project is open and follows new photos (`photo_set`), photos that an import stores
    later, or that are moved or restored into its filters, join it (`services.add_images_to_queues`).
    """

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    is_active = models.BooleanField(default=True)
    overlap = models.PositiveSmallIntegerField(  # at most 20, as the settings page says
        default=2, validators=[MinValueValidator(1), MaxValueValidator(20)], help_text=_("Distinct labelers per photo.")
    )
    cap_per_labeler = models.PositiveIntegerField(
        default=300, help_text=_("Most photos one labeler may label in this project.")
    )
    lease_minutes = models.PositiveIntegerField(
        default=30, validators=[MinValueValidator(1)], help_text=_("How long a photo stays reserved for a labeler.")
    )
    categories = models.ManyToManyField(Category, blank=True, related_name="+")
    subcategories = models.ManyToManyField(Subcategory, blank=True, related_name="+")
    sources = models.ManyToManyField(Source, blank=True, related_name="+")
    photo_set = models.CharField(
        max_length=8, choices=PhotoSet.choices, default=PhotoSet.FOLLOW,
        help_text=_("Follow: photos imported later that match the filters join the queue while the project is open. "
                    "Frozen: they do not (saving the settings still brings the queue in line with the filters)."),
    )
    # The last time photos joined the queue after the settings were saved (an import, a photo
    # moved or restored), and how many.
    last_joined_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_joined_count = models.PositiveIntegerField(default=0, editable=False)

    # Text rules (lengths are per comment type); the fields mirror labeling.text.Rules.
    count_whitespace = models.BooleanField(default=False)
    reject_jamo_or_emoji_only = models.BooleanField(default=True)
    max_repeat_run = models.PositiveSmallIntegerField(default=5, help_text=_("0 turns the check off."))
    reject_copied_examples = models.BooleanField(default=True)
    reject_own_repeats = models.BooleanField(default=True)
    reject_urls = models.BooleanField(default=True)
    reject_emails = models.BooleanField(default=True)
    reject_phone_numbers = models.BooleanField(default=True)
    reject_personal_info = models.BooleanField(
        default=True, help_text=_("Resident registration, card, bank account, passport and driver's licence numbers, "
                                  "street addresses and social media IDs (curation.pii)."))

    # Specificity (curation.scores): comments less specific than this become LOW_SPECIFICITY flags
    # in the review queue; empty: the score is shown but raises no flag.
    specificity_flag_below = models.FloatField(
        null=True, blank=True,
        help_text=_("Comments whose specificity score is below this go to the review queue as generic. "
                    "Empty: no flag."))

    # Guidelines: planners edit the draft and publish it as a new GuidelineVersion; this number
    # is the current published version (0: none yet) and is what each comment records.
    guideline_draft = models.TextField(blank=True, help_text=_("Markdown. Publish it to make it the labelers' guideline."))
    guideline_version = models.PositiveIntegerField(default=0, editable=False)
    # When the category priorities of the queue were last recomputed (services.refresh_priorities).
    priorities_refreshed_at = models.DateTimeField(null=True, blank=True, editable=False)

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name

    def rules_for(self, comment_type: CommentType) -> Rules:
        return Rules(min_length=comment_type.min_length, max_length=comment_type.max_length,
                     **{name: getattr(self, name) for name in RULE_FIELDS})


class CommentType(models.Model):
    """One text box on the labeler page (a short reaction, a specific comment, ...)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="comment_types")
    slug = models.SlugField(max_length=50)
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    min_length = models.PositiveIntegerField(default=3)
    max_length = models.PositiveIntegerField(default=300)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["project", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "slug"], name="commenttype_slug_unique_in_project"),
            models.CheckConstraint(
                condition=models.Q(max_length__gte=models.F("min_length")), name="commenttype_max_gte_min"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.project.name} / {self.name}"


class ProjectMember(models.Model):
    """A labeler who works on a project. Their row is the lock that serialises their own actions."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="project_memberships")
    cap_override = models.PositiveIntegerField(null=True, blank=True, help_text=_("Empty: the project's cap."))
    is_active = models.BooleanField(default=True)
    joined_at = models.DateTimeField(auto_now_add=True)
    last_active_at = models.DateTimeField(null=True, blank=True)
    # Running figures for the planners' dashboard, kept by services.submit (no scan of comments).
    submitted_count = models.PositiveIntegerField(default=0)
    # Submit attempts the text rules stopped: refused by the server, or blocked on the labeler page
    # before they were sent (the page reports those, services.record_blocked_submit); per rule in RuleHit.
    rejection_count = models.PositiveIntegerField(
        default=0, help_text=_("Submit attempts the text rules stopped (on the page or on the server).")
    )
    work_seconds_total = models.FloatField(default=0)
    last_submitted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["project", "id"]
        constraints = [models.UniqueConstraint(fields=["project", "user"], name="projectmember_unique")]

    def __str__(self) -> str:
        return f"{self.user} in {self.project}"

    @property
    def cap(self) -> int:
        return self.project.cap_per_labeler if self.cap_override is None else self.cap_override


class ProjectImage(models.Model):
    """A photo in a project's queue. `slots_taken` counts live leases plus submissions, never
    more than the project's overlap; `random_key` spreads labelers over the queue."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="queue")
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="+")
    # The image's category, copied here so the engine's scan and the dashboard need no join;
    # kept in step by sync_project_images and refresh_priorities.
    category = models.ForeignKey(Category, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    slots_taken = models.PositiveSmallIntegerField(default=0)
    submitted_count = models.PositiveSmallIntegerField(default=0)
    # 0 = the category furthest from its quota; recomputed by services.refresh_priorities.
    priority = models.PositiveSmallIntegerField(default=0)
    random_key = models.FloatField(default=random_key)
    # A planner took the photo out of the project (after a report); it is never handed out again.
    excluded = models.BooleanField(default=False)

    class Meta:
        ordering = ["project", "id"]
        constraints = [models.UniqueConstraint(fields=["project", "image"], name="projectimage_unique")]
        indexes = [
            # The assignment engine's scan: started photos first, then the categories furthest
            # from quota, then random.
            models.Index(fields=["project", "-slots_taken", "priority", "random_key"], name="projectimage_pick"),
            # The progress dashboard: photos per category and number of comment sets.
            models.Index(fields=["project", "category", "submitted_count"], name="projectimage_progress"),
        ]

    def __str__(self) -> str:
        return f"{self.image_id} in {self.project_id} ({self.slots_taken} taken)"


class AssignmentStatus(models.TextChoices):
    LEASED = "leased", _("Leased")
    SUBMITTED = "submitted", _("Submitted")
    SKIPPED = "skipped", _("Skipped")
    REPORTED = "reported", _("Reported")
    EXPIRED = "expired", _("Lease expired")
    RETURNED = "returned", _("Returned (labeler deactivated)")
    # A planner rejected the submitted set in the review queue (curation): it is in no snapshot,
    # counts for nothing, and its slot on the photo went back to the queue (services.reject_set).
    REJECTED = "rejected", _("Rejected by a planner")


# A row in one of these states keeps the photo away from that labeler for good.
BLOCKING_STATUSES = (
    AssignmentStatus.LEASED, AssignmentStatus.SUBMITTED, AssignmentStatus.SKIPPED, AssignmentStatus.REPORTED,
    AssignmentStatus.REJECTED,
)


class ReportReason(models.TextChoices):
    INAPPROPRIATE = "inappropriate", _("Inappropriate")
    BROKEN = "broken", _("Broken image")
    PERSONAL_INFO = "personal_info", _("Personal information")


class ExternalSource(models.Model):
    """Where comments made outside this platform come from (another tool, an earlier campaign, a
    public dataset). A comment set imported from it (labeling.external) is an Assignment with this
    source and no labeler; snapshots record it as the labeler pseudonym `ext:<slug>`."""

    name = models.CharField(max_length=200, unique=True)
    # At most 28 characters: `ext:<slug>` fits the snapshots' 32-character labeler column.
    slug = models.SlugField(max_length=28, unique=True, allow_unicode=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def pseudonym(self) -> str:
        """How snapshots name it in their `labeler` column: stable, and never a labeler's (those
        are 16 hex digits)."""
        return f"ext:{self.slug}"


class Assignment(models.Model):
    """One labeler's claim on one photo of a project. The unique constraint means the database
    itself refuses to give the same photo twice to one person; an expired or returned lease keeps
    its row and is re-used if the photo comes back to them.

    A comment set imported from elsewhere (labeling.external) is an Assignment too: no labeler,
    an `external_source` and the set's id there (`external_id`), status submitted. It counts as a
    submitted comment set (snapshots, the comment browser) but takes no labeler's slot on the photo
    (ProjectImage.slots_taken and submitted_count count labelers' work only)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="assignments")
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="+")
    labeler = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE,
                                related_name="assignments")
    external_source = models.ForeignKey(ExternalSource, null=True, blank=True, on_delete=models.PROTECT,
                                        related_name="sets")
    external_id = models.CharField(max_length=200, blank=True,
                                   help_text=_("The imported set's id in its source (task and annotation, caption id, ...)."))
    status = models.CharField(max_length=16, choices=AssignmentStatus.choices, default=AssignmentStatus.LEASED)
    leased_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    submitted_at = models.DateTimeField(null=True, blank=True)
    idempotency_key = models.CharField(max_length=100, blank=True)
    report_reason = models.CharField(max_length=16, choices=ReportReason.choices, blank=True)
    report_note = models.TextField(blank=True)
    reported_at = models.DateTimeField(null=True, blank=True)
    # Seconds of work on this photo: from the lease, or from the labeler's previous submission if
    # that came later (a photo fetched ahead is not being worked on yet).
    work_seconds = models.FloatField(null=True, blank=True)
    # Submit attempts the labeler page blocked on this photo and reported (bounded per assignment).
    blocked_count = models.PositiveSmallIntegerField(default=0)
    # A planner's decision on a report: empty (open), "kept" (photo stays) or "excluded".
    report_resolution = models.CharField(max_length=16, blank=True)

    class Meta:
        ordering = ["-leased_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["project", "image", "labeler"], name="assignment_once_per_labeler"),
            # An imported set is stored once: importing the same file again adds nothing.
            models.UniqueConstraint(fields=["project", "image", "external_source", "external_id"],
                                    condition=models.Q(external_source__isnull=False),
                                    name="assignment_once_per_external_set"),
            # A labeler's claim, or a set imported from a source: exactly one of the two.
            models.CheckConstraint(
                condition=models.Q(labeler__isnull=False, external_source__isnull=True)
                | models.Q(labeler__isnull=True, external_source__isnull=False),
                name="assignment_labeler_or_external",
            ),
        ]
        indexes = [
            models.Index(fields=["project", "labeler", "status"], name="assignment_labeler_status"),
            models.Index(fields=["project", "status", "expires_at"], name="assignment_expiry"),
        ]

    def __str__(self) -> str:
        return f"{self.labeler_id or self.external_source_id} / {self.image_id} ({self.status})"

    @property
    def author_name(self) -> str:
        """Who wrote the set, as pages show it: the labeler's username, or the external source's name."""
        if self.labeler_id is not None:
            return self.labeler.username
        return self.external_source.name if self.external_source_id else ""


class Comment(models.Model):
    """One text of one comment type in a submitted set."""

    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="comments")
    comment_type = models.ForeignKey(CommentType, on_delete=models.PROTECT, related_name="comments")
    text = models.TextField()
    length = models.PositiveIntegerField(help_text=_("Characters as the rules count them."))
    key = models.TextField(editable=False, help_text=_("The text as the 'same text' rules compare it."))
    guideline_version = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["assignment", "comment_type__position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["assignment", "comment_type"], name="comment_once_per_type"),
        ]
        # The comment browser's orders (newest/oldest, longest/shortest). Its text search uses a
        # trigram GIN index on text, `comment_text_trgm`, made on PostgreSQL only by migration
        # 0006_comment_search (SQLite has no such index; it scans).
        indexes = [
            models.Index(fields=["created_at", "id"], name="comment_created"),
            models.Index(fields=["length", "id"], name="comment_length"),
        ]

    def __str__(self) -> str:
        return self.text[:50]


class GuidelineVersion(models.Model):
    """A published guideline: the Markdown and a frozen copy of the examples at publishing time.

    Published versions never change; a comment records the version it was written under."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="guideline_versions")
    version = models.PositiveIntegerField()
    body = models.TextField()
    # [{"image_id", "image_url", "thumbnail_url", "note", "comments": [{"comment_type", "text",
    #   "verdict": "good"|"bad", "why"}]}], in the order planners set.
    examples = models.JSONField(default=list)
    published_at = models.DateTimeField(auto_now_add=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["project", "-version"]
        constraints = [models.UniqueConstraint(fields=["project", "version"], name="guideline_version_unique")]

    def __str__(self) -> str:
        return f"{self.project.name} v{self.version}"

    def example_texts(self) -> list[str]:
        return [c["text"] for ex in self.examples for c in ex.get("comments", [])]


class GuidelineExample(models.Model):
    """An example in the project's working set: a photo with good and bad comments. Publishing a
    guideline freezes the set into the new GuidelineVersion."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="examples")
    image = models.ForeignKey(Image, on_delete=models.PROTECT, related_name="+")
    note = models.CharField(max_length=300, blank=True, help_text=_("What this example shows."))
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["project", "position", "id"]
        constraints = [models.UniqueConstraint(fields=["project", "image"], name="example_image_unique")]

    def __str__(self) -> str:
        return f"example {self.image_id} in {self.project_id}"


class Verdict(models.TextChoices):
    GOOD = "good", _("Good")
    BAD = "bad", _("Bad")


class ExampleComment(models.Model):
    example = models.ForeignKey(GuidelineExample, on_delete=models.CASCADE, related_name="comments")
    comment_type = models.ForeignKey(CommentType, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    text = models.TextField()
    verdict = models.CharField(max_length=4, choices=Verdict.choices)
    why = models.CharField(max_length=300, blank=True)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["example", "position", "id"]

    def __str__(self) -> str:
        return f"{self.verdict}: {self.text[:40]}"


class RuleCode(models.TextChoices):
    """The rules' codes (labeling.text.check and the server-only checks) with a short name for
    the planners' dashboard."""

    TOO_SHORT = "too_short", _("Too short")
    TOO_LONG = "too_long", _("Too long")
    JAMO_OR_EMOJI_ONLY = "jamo_or_emoji_only", _("Only jamo or emoji")
    REPEATED_RUN = "repeated_run", _("Repeated character")
    COPIED_EXAMPLE = "copied_example", _("Copied example")
    OWN_REPEAT = "own_repeat", _("Own repeat")
    URL = "url", _("Link")
    EMAIL = "email", _("E-mail address")
    PHONE = "phone", _("Phone number")
    PERSONAL_INFO = "personal_info", _("Personal information")
    REQUIRED = "required", _("Missing comment")


class RuleHit(models.Model):
    """How many submit attempts of a labeler in a project one rule stopped (kept by
    services.record_blocked_submit and services.submit; a planner judges a guideline by them)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="rule_hits")
    member = models.ForeignKey(ProjectMember, on_delete=models.CASCADE, related_name="rule_hits")
    code = models.CharField(max_length=40, choices=RuleCode.choices)
    count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["project", "member", "code"]
        constraints = [models.UniqueConstraint(fields=["member", "code"], name="rulehit_unique_per_member")]

    def __str__(self) -> str:
        return f"{self.code} x{self.count} ({self.member_id})"


class CommentImportStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


class CommentImport(models.Model):
    """One import of comments made elsewhere into a project (labeling.external): the file's
    records, parsed and checked when it was uploaded (`plan`), their photos imported through the
    catalogue's normal ingest (`import_job`, with its own per-photo report), and a report line per
    record (CommentImportRow)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="comment_imports")
    external_source = models.ForeignKey(ExternalSource, on_delete=models.PROTECT, related_name="imports")
    import_job = models.ForeignKey("datasets.ImportJob", null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    format = models.CharField(max_length=16)
    file_name = models.CharField(max_length=300, blank=True)
    # {"images": [{"ref": {...manifest row}}], "sets": [{position, name, image, external_id, comments,
    #   warnings}]} and the records refused while reading (`refused`): what the worker needs.
    plan = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=CommentImportStatus.choices, default=CommentImportStatus.QUEUED)
    error = models.TextField(blank=True)
    total = models.PositiveIntegerField(default=0)
    imported = models.PositiveIntegerField(default=0)
    already = models.PositiveIntegerField(default=0)
    refused = models.PositiveIntegerField(default=0)
    warnings = models.PositiveIntegerField(default=0)
    comments = models.PositiveIntegerField(default=0, help_text=_("Comments stored by this import."))
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Comment import {self.pk} ({self.format}, {self.status})"

    @property
    def finished(self) -> bool:
        return self.status in (CommentImportStatus.DONE, CommentImportStatus.FAILED)


class CommentImportOutcome(models.TextChoices):
    IMPORTED = "imported", _("Imported")
    ALREADY = "already", _("Already imported")
    REFUSED = "refused", _("Refused")


class CommentImportRow(models.Model):
    """The report line of one record of a comment import (a comment set, or a record refused
    whole): what happened and why, in labeling.external's codes."""

    comment_import = models.ForeignKey(CommentImport, on_delete=models.CASCADE, related_name="rows")
    position = models.PositiveIntegerField()
    name = models.CharField(max_length=1000)
    outcome = models.CharField(max_length=16, choices=CommentImportOutcome.choices)
    reason_code = models.CharField(max_length=40, blank=True)
    reason_params = models.JSONField(default=dict, blank=True)
    # Rule codes (RuleCode) the imported texts break: stored anyway, flagged here.
    warnings = models.JSONField(default=list, blank=True)
    image = models.ForeignKey(Image, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    assignment = models.ForeignKey(Assignment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["comment_import", "position"]
        constraints = [models.UniqueConstraint(fields=["comment_import", "position"], name="commentimportrow_once")]

    def __str__(self) -> str:
        return f"{self.name}: {self.outcome}"

    @property
    def reason_text(self) -> str:
        from .external import reason_text

        return reason_text(self.reason_code, self.reason_params)

    @property
    def warnings_text(self) -> str:
        from .external import warnings_text

        return warnings_text(self.warnings)


class LabelerMessage(models.Model):
    """A planner's message to one labeler of a project, shown on the labeler's next page load
    (the labeler scorecard's "send a message"); `read_at` is set when it was shown and dismissed."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="labeler_messages")
    labeler = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="labeler_messages")
    body = models.TextField(max_length=2000)
    sent_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["labeler", "read_at"], name="labelermessage_unread")]

    def __str__(self) -> str:
        return f"Message to {self.labeler_id} in {self.project_id}"
