"""Curation state: the flags that detectors raise and the planners' decisions on them.

Detectors (curation workers, part-2 detectors) write `Flag`s through `curation.services.record_flags`;
planners decide in the review queue through `curation.services.decide`, and every decision
leaves a `Decision` row (the audit trail). See ../shared/DESIGN.md, "Curation in one picture".
"""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from datasets.models import Image
from labeling.models import Comment, Project


class FlagKind(models.TextChoices):
    # Photos: duplicates, three tiers.
    DUPLICATE_PHOTO = "duplicate_photo", _("Duplicate photo")
    NEAR_DUPLICATE_PHOTO = "near_duplicate_photo", _("Near-duplicate photo")
    SEMANTIC_DUPLICATE_PHOTO = "semantic_duplicate_photo", _("Semantically duplicate photo")
    # Photos: quality.
    QUALITY_DARK = "quality_dark", _("Too dark")
    QUALITY_OVEREXPOSED = "quality_overexposed", _("Overexposed")
    QUALITY_BLURRY = "quality_blurry", _("Blurry")
    QUALITY_LOW_INFORMATION = "quality_low_information", _("Low information")
    QUALITY_ODD_ASPECT = "quality_odd_aspect", _("Odd aspect ratio")
    QUALITY_GRAYSCALE = "quality_grayscale", _("Grayscale")
    QUALITY_TINY = "quality_tiny", _("Tiny")
    # Comments.
    DUPLICATE_COMMENT = "duplicate_comment", _("Duplicate comment")
    TEMPLATE_COMMENT = "template_comment", _("Template comment")
    SELF_COPY_COMMENT = "self_copy_comment", _("Copy of own comment")
    # Part 2 (detectors to come).
    HALLUCINATION = "hallucination", _("Not in the photo")
    BIAS = "bias", _("Bias")
    TOXICITY = "toxicity", _("Toxicity")
    PII = "pii", _("Personal information")


PHOTO_KINDS = frozenset({
    FlagKind.DUPLICATE_PHOTO, FlagKind.NEAR_DUPLICATE_PHOTO, FlagKind.SEMANTIC_DUPLICATE_PHOTO,
    FlagKind.QUALITY_DARK, FlagKind.QUALITY_OVEREXPOSED, FlagKind.QUALITY_BLURRY,
    FlagKind.QUALITY_LOW_INFORMATION, FlagKind.QUALITY_ODD_ASPECT, FlagKind.QUALITY_GRAYSCALE,
    FlagKind.QUALITY_TINY,
})
DUPLICATE_PHOTO_KINDS = frozenset({
    FlagKind.DUPLICATE_PHOTO, FlagKind.NEAR_DUPLICATE_PHOTO, FlagKind.SEMANTIC_DUPLICATE_PHOTO,
})


class FlagStatus(models.TextChoices):
    OPEN = "open", _("Open")
    KEPT = "kept", _("Kept")
    REJECTED = "rejected", _("Comment set rejected")
    EXCLUDED = "excluded", _("Photo excluded")
    DUPLICATE = "duplicate", _("Marked duplicate")


class Flag(models.Model):
    """One detector's finding on one photo or one comment, waiting for (or given) a planner's decision.

    - `image` or `comment`: the subject, exactly one (a check constraint).
    - `project`: the comment's project (comment flags); empty for photo flags (the catalogue).
    - `score`: the detector's number (distance, similarity, share, the quality statistic...);
      `evidence`: what the review page shows (hashes, distance, threshold, cluster text and count,
      examples...).
    - `group_key`: flags of one duplicate group (or one comment cluster) share it; `keeper` is the
      photo the detector suggests keeping in that group.
    - One flag per (detector, kind, subject): record_flags updates it in place.
    """

    kind = models.CharField(max_length=40, choices=FlagKind.choices)
    image = models.ForeignKey(Image, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    comment = models.ForeignKey(Comment, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    score = models.FloatField(default=0)
    evidence = models.JSONField(default=dict, blank=True)
    detector = models.CharField(max_length=100)
    detector_version = models.CharField(max_length=50, blank=True)
    status = models.CharField(max_length=16, choices=FlagStatus.choices, default=FlagStatus.OPEN)
    group_key = models.CharField(max_length=200, blank=True)
    keeper = models.ForeignKey(Image, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-score", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(image__isnull=False, comment__isnull=True)
                | models.Q(image__isnull=True, comment__isnull=False),
                name="flag_image_or_comment",
            ),
            models.UniqueConstraint(fields=["detector", "kind", "image"], condition=models.Q(image__isnull=False),
                                    name="flag_once_per_image"),
            models.UniqueConstraint(fields=["detector", "kind", "comment"], condition=models.Q(comment__isnull=False),
                                    name="flag_once_per_comment"),
        ]
        indexes = [
            # The review queue: open flags of a kind, by score.
            models.Index(fields=["status", "kind", "-score"], name="flag_queue"),
            models.Index(fields=["project", "status", "kind"], name="flag_project_queue"),
            models.Index(fields=["group_key"], name="flag_group"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.image_id or self.comment_id} ({self.status})"

    @property
    def is_photo(self) -> bool:
        return self.image_id is not None


class DecisionAction(models.TextChoices):
    KEEP = "keep", _("Keep")
    REJECT_COMMENT = "reject_comment", _("Reject the comment set")
    EXCLUDE_PHOTO = "exclude_photo", _("Exclude the photo")
    MARK_DUPLICATE = "mark_duplicate", _("Mark as duplicate")
    UNDO = "undo", _("Undo")


# What a planner may decide (an undo is its own request).
DECIDE_ACTIONS = [choice for choice in DecisionAction.choices if choice[0] != DecisionAction.UNDO]


class Decision(models.Model):
    """The audit trail: one planner's decision on one flag (who, when, what, why, and what it changed).

    `changes` records what the decision did elsewhere, so an undo can take it back:
    {"image_status": [before, after], "image": id, "assignment": id, "assignment_status": [before, after],
     "duplicate_of": image id}."""

    flag = models.ForeignKey(Flag, on_delete=models.CASCADE, related_name="decisions")
    action = models.CharField(max_length=16, choices=DecisionAction.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    at = models.DateTimeField(auto_now_add=True)
    reason = models.TextField(blank=True)
    status_before = models.CharField(max_length=16, choices=FlagStatus.choices)
    status_after = models.CharField(max_length=16, choices=FlagStatus.choices)
    duplicate_of = models.ForeignKey(Image, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    changes = models.JSONField(default=dict, blank=True)
    # The decision this one took back (action "undo"), and whether this one was taken back.
    undoes = models.OneToOneField("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="undone_by")

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["flag", "-at"], name="decision_flag")]

    def __str__(self) -> str:
        return f"{self.action} on {self.flag_id} by {self.actor_id}"


# ---------------------------------------------------------------- embeddings (cur-embed)

class EmbeddingKind(models.TextChoices):
    IMAGE = "image", _("Photo")
    COMMENT = "comment", _("Comment")


class EmbeddingSegment(models.Model):
    """One stored file of vectors (curation.vectors.pack: ids and float16 unit vectors), written
    by one embedding chunk on Django's default storage. `model` is the identity of the model that
    made them (curation.embedding: open_clip name, pretrained tag or checkpoint sha256); `dim` its
    vectors' length."""

    model = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=EmbeddingKind.choices)
    dim = models.PositiveIntegerField()
    count = models.PositiveIntegerField()
    path = models.CharField(max_length=300)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["model", "kind"], name="embseg_model_kind")]

    def __str__(self) -> str:
        return f"{self.kind} {self.count} x {self.dim} ({self.model})"


class Embedding(models.Model):
    """Where one photo's or comment's vector by one model is: row `row` of `segment`. One per
    (model, subject): what the embedding steps ask to know what is still to do."""

    model = models.CharField(max_length=200)
    image = models.ForeignKey(Image, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    comment = models.ForeignKey(Comment, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    segment = models.ForeignKey(EmbeddingSegment, on_delete=models.CASCADE, related_name="embeddings")
    row = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(image__isnull=False, comment__isnull=True)
                | models.Q(image__isnull=True, comment__isnull=False),
                name="embedding_image_or_comment",
            ),
            models.UniqueConstraint(fields=["model", "image"], condition=models.Q(image__isnull=False),
                                    name="embedding_once_per_image"),
            models.UniqueConstraint(fields=["model", "comment"], condition=models.Q(comment__isnull=False),
                                    name="embedding_once_per_comment"),
        ]

    def __str__(self) -> str:
        return f"{self.image_id or self.comment_id} by {self.model}"
