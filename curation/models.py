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
    # Part 2.
    HALLUCINATION = "hallucination", _("Not in the photo")
    LOW_SPECIFICITY = "low_specificity", _("Generic comment")
    BIAS = "bias", _("Bias")
    TOXICITY = "toxicity", _("Toxicity")
    PII = "pii", _("Personal information")
    # Photos: people's faces and licence plates (personal information in pixels).
    FACE = "face", _("Face in the photo")
    LICENCE_PLATE = "licence_plate", _("Licence plate in the photo")


PHOTO_KINDS = frozenset({
    FlagKind.DUPLICATE_PHOTO, FlagKind.NEAR_DUPLICATE_PHOTO, FlagKind.SEMANTIC_DUPLICATE_PHOTO,
    FlagKind.QUALITY_DARK, FlagKind.QUALITY_OVEREXPOSED, FlagKind.QUALITY_BLURRY,
    FlagKind.QUALITY_LOW_INFORMATION, FlagKind.QUALITY_ODD_ASPECT, FlagKind.QUALITY_GRAYSCALE,
    FlagKind.QUALITY_TINY, FlagKind.FACE, FlagKind.LICENCE_PLATE,
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
    # The detector ran again over its subject and no longer finds it (an open flag only).
    WITHDRAWN = "withdrawn", _("Withdrawn by the detector")


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
    # Another photo of a duplicate group kept instead of the suggested one (on that photo's flag).
    CHOOSE_KEEPER = "choose_keeper", _("Keep this one instead")


# What a planner may decide (an undo and a keeper choice are requests of their own).
DECIDE_ACTIONS = [choice for choice in DecisionAction.choices
                  if choice[0] not in (DecisionAction.UNDO, DecisionAction.CHOOSE_KEEPER)]


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
    # The decisions of one bulk decision by filters (curation.services.decide_matching) share a
    # batch id: the whole bulk can be taken back at once (services.undo_batch).
    batch = models.UUIDField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["flag", "-at"], name="decision_flag")]

    def __str__(self) -> str:
        return f"{self.action} on {self.flag_id} by {self.actor_id}"


# ---------------------------------------------------------------- runs (curation workers, issue 11)

class RunStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")


ACTIVE_RUN_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING)


class RunTrigger(models.TextChoices):
    PAGE = "page", _("Started on the page")
    API = "api", _("Started through the API")
    COMMAND = "command", _("Started by manage.py curate")
    IMPORT = "import", _("After an import")
    COMMENTS = "comments", _("After new comment sets")


class CurationRun(models.Model):
    """One pass of the curation steps over a project's photos and comments, or over the whole
    catalogue (`project` empty). The steps (curation.steps.STEPS, by name) run one after the
    other; each step's work is split into chunks (`RunChunk`), one Celery task each, and the
    step's `finish` runs once when its last chunk is done (curation.runs)."""

    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    steps = models.JSONField(default=list, help_text=_("The steps' names, in the order they run."))
    new_only = models.BooleanField(default=False, help_text=_("Only photos and comments that arrived since "
                                                              "the last finished run of the same scope."))
    options = models.JSONField(default=dict, blank=True)
    trigger = models.CharField(max_length=16, choices=RunTrigger.choices, default=RunTrigger.PAGE)
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The last sign of life of a worker on this run: a run whose heartbeat is older than
    # CURATION["STALE_SECONDS"] may be resumed (its worker died).
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "-created_at"], name="curationrun_status")]

    def __str__(self) -> str:
        return f"Curation run {self.pk} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_RUN_STATUSES

    # What the steps read (see curation/steps.py and the contract in the step interface).
    def scope_images(self):
        """The photos the run covers: the project's queue, or the whole catalogue (and of those,
        one import's photos when options["import_job"] says so: the run after an import)."""
        images = Image.objects.all()
        if self.project_id is not None:
            from labeling.models import ProjectImage

            images = images.filter(pk__in=ProjectImage.objects.filter(project_id=self.project_id).values("image_id"))
        if self.options.get("import_job"):
            images = images.filter(import_job_id=self.options["import_job"])
        return images

    def scope_comments(self):
        """The comments of submitted sets the run covers (the project's, or every project's)."""
        from labeling.models import AssignmentStatus

        comments = Comment.objects.filter(assignment__status=AssignmentStatus.SUBMITTED)
        if self.project_id is not None:
            comments = comments.filter(assignment__project_id=self.project_id)
        return comments

    def since(self, step: str):
        """For a new-only run: when the latest earlier run of a scope covering this one (the same
        project or the whole catalogue) that finished `step` was started; None: everything."""
        if not self.new_only:
            return None
        earlier = RunStep.objects.filter(name=step, state=StepState.DONE, run__created_at__lt=self.created_at)
        if self.project_id is not None:
            earlier = earlier.filter(models.Q(run__project_id=self.project_id) | models.Q(run__project__isnull=True))
        else:
            earlier = earlier.filter(run__project__isnull=True)
        return earlier.order_by("-run__created_at").values_list("run__created_at", flat=True).first()

    def new_images(self, step: str):
        since = self.since(step)
        images = self.scope_images()
        return images if since is None else images.filter(created_at__gte=since)

    def new_comments(self, step: str):
        since = self.since(step)
        comments = self.scope_comments()
        return comments if since is None else comments.filter(created_at__gte=since)


class StepState(models.TextChoices):
    PENDING = "pending", _("Waiting")
    RUNNING = "running", _("Running")
    FINISHING = "finishing", _("Finishing")
    DONE = "done", _("Done")
    SKIPPED = "skipped", _("Skipped")
    FAILED = "failed", _("Failed")


class RunStep(models.Model):
    """One step of a run: its progress (`done` of `total` items) and counts (flags created,
    hashes stored...; what the step's process and finish return, added up)."""

    run = models.ForeignKey(CurationRun, on_delete=models.CASCADE, related_name="run_steps")
    name = models.CharField(max_length=40)
    position = models.PositiveSmallIntegerField()
    state = models.CharField(max_length=16, choices=StepState.choices, default=StepState.PENDING)
    reason = models.TextField(blank=True, help_text=_("Why it was skipped or failed."))
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    counts = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "position"]
        constraints = [models.UniqueConstraint(fields=["run", "position"], name="runstep_once_per_position")]

    def __str__(self) -> str:
        return f"{self.run_id}/{self.name} ({self.state})"


class RunChunk(models.Model):
    """The ids one Celery task works on. `done` is set once (a conditional UPDATE), so a chunk
    delivered twice (acks late, a worker killed) is counted once. `result`: what the step keeps
    for its finish (the perceptual step's pairs)."""

    step = models.ForeignKey(RunStep, on_delete=models.CASCADE, related_name="chunks")
    position = models.PositiveIntegerField()
    ids = models.JSONField(default=list)
    done = models.BooleanField(default=False)
    counts = models.JSONField(default=dict, blank=True)
    result = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["step", "position"]
        constraints = [models.UniqueConstraint(fields=["step", "position"], name="runchunk_once_per_position")]
        indexes = [models.Index(fields=["step", "done"], name="runchunk_pending")]

    def __str__(self) -> str:
        return f"{self.step_id}#{self.position} ({len(self.ids)} ids{', done' if self.done else ''})"


class PhotoSignature(models.Model):
    """A photo's 25 window hashes (curation.perceptual.signature): with Image.phash, what the
    perceptual duplicate search indexes. `windows`: 25 signed 64-bit integers, little-endian
    (200 bytes), grid order."""

    image = models.OneToOneField(Image, primary_key=True, on_delete=models.CASCADE, related_name="+")
    windows = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Window hashes of {self.image_id}"


# ---------------------------------------------------------------- toxicity models (issue 12, item 3)


class ToxicityModel(models.Model):
    """One trained version of the toxicity and bias classifier (curation.toxicity): its file on
    the media storage, what it learned from and how it scored on its held-out part. Exactly one
    row is `current` (the one the detector loads); flags record the version that raised them."""

    version = models.PositiveIntegerField(unique=True)
    file = models.CharField(max_length=300, help_text=_("Path of the model file on the media storage."))
    current = models.BooleanField(default=False)
    data_sha256 = models.CharField(max_length=64)
    source = models.CharField(max_length=300, blank=True, help_text=_("The training file's name."))
    rows = models.JSONField(default=dict, help_text=_("Rows trained on: from the file, from decisions, per head."))
    labels = models.JSONField(default=list)
    bias_labels = models.JSONField(default=list, blank=True)
    metrics = models.JSONField(default=dict, help_text=_("Precision, recall and F1 on the held-out part."))
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(fields=["current"], condition=models.Q(current=True), name="toxicity_one_current"),
        ]

    def __str__(self) -> str:
        return f"toxicity v{self.version}{' (current)' if self.current else ''}"


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



# ---------------------------------------------------------------- comment scores (issue 12, items 1-2)

class ScoreKind(models.TextChoices):
    HALLUCINATION = "hallucination", _("Hallucination")
    SPECIFICITY = "specificity", _("Specificity")


class CommentScore(models.Model):
    """How well one comment fits its own photo, by one embedding model (curation.scores).

    - `hallucination`: the share of a fixed random sample of the project's photos that fit the
      comment better than its own photo (0: its own photo fits best; near 1: it fits almost any
      other photo better). A bland comment that fits every photo equally is not called a
      hallucination by this number: its own photo sits mid-sample, not at the bottom.
    - `specificity`: the comment's similarity to its own photo minus its mean similarity to the
      sample (how much more it fits its photo than the average photo); near 0: generic.
    - `model`: the embedding model's identity (curation.embedding.model_identity)."""

    model = models.CharField(max_length=200)
    comment = models.ForeignKey(Comment, on_delete=models.CASCADE, related_name="+")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    hallucination = models.FloatField()
    specificity = models.FloatField()
    similarity = models.FloatField(help_text=_("Cosine similarity of the comment and its own photo."))
    reach = models.FloatField(null=True, blank=True, help_text=_(
        "How much better the comment's best-fitting sample photos fit it than the average photo: low for a "
        "bland comment that fits every photo alike."))
    sample_size = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["model", "comment"], name="commentscore_once_per_model")]
        indexes = [models.Index(fields=["project", "model", "specificity"], name="commentscore_project")]

    def __str__(self) -> str:
        return f"{self.comment_id} by {self.model}: h={self.hallucination:.3f} s={self.specificity:.3f}"


class ScoreCalibration(models.Model):
    """The threshold of one score for one embedding model, chosen on the null distribution
    (shuffled comment/other-photo pairs) for a target rate of false flags. A flag records the
    calibration it used (evidence); a new calibration of the same model and kind replaces the row."""

    model = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=ScoreKind.choices)
    threshold = models.FloatField()
    target_rate = models.FloatField(help_text=_("Share of shuffled pairs that the threshold lets through as flags."))
    null_pairs = models.PositiveIntegerField(help_text=_("How many shuffled pairs the threshold was chosen on."))
    null_quantiles = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["model", "kind"], name="scorecalibration_once")]

    def __str__(self) -> str:
        return f"{self.kind} threshold {self.threshold:.4f} for {self.model}"
