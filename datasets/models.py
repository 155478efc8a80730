"""The data assets: categories with quotas, licences, sources, images and imports."""
from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from .refusals import render as render_reason
from .weblinks import validate_web_link


class FullPolicy(models.TextChoices):
    WARN = "warn", _("Warn and accept")
    REFUSE = "refuse", _("Refuse")


class Category(models.Model):
    """A top-level category (people, food, ...) with a quota of images."""

    slug = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=100)
    quota = models.PositiveIntegerField(default=0, help_text=_("Target number of images."))
    full_policy = models.CharField(
        max_length=8,
        choices=FullPolicy.choices,
        default=FullPolicy.WARN,
        help_text=_("What intake does once this category or one of its subcategories is full."),
    )
    is_active = models.BooleanField(default=True, help_text=_("Retired categories take no new images."))
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]
        verbose_name_plural = "categories"

    def __str__(self) -> str:
        return self.name


class Subcategory(models.Model):
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="subcategories")
    slug = models.SlugField(max_length=50)
    name = models.CharField(max_length=100)
    quota = models.PositiveIntegerField(default=0)
    is_active = models.BooleanField(default=True)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["category__position", "position", "id"]
        verbose_name_plural = "subcategories"
        constraints = [
            models.UniqueConstraint(fields=["category", "slug"], name="subcategory_slug_unique_in_category")
        ]

    def __str__(self) -> str:
        return f"{self.category.name} / {self.name}"


class Licence(models.Model):
    """A licence and what it allows. `url` is how manifests (e.g. Open Images) name it."""

    code = models.CharField(
        max_length=40,
        unique=True,
        validators=[RegexValidator(r"^[a-z0-9][a-z0-9.+-]*$", _("Lower-case letters, digits, '.', '+' and '-' (e.g. cc-by-4.0)."))],
    )
    name = models.CharField(max_length=100)
    url = models.URLField(blank=True, validators=[validate_web_link])
    commercial_use = models.BooleanField(help_text=_("Commercial use is allowed."))
    attribution_required = models.BooleanField()
    share_alike = models.BooleanField(default=False)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


class SourceKind(models.TextChoices):
    UPLOAD = "upload", _("Browser upload")
    FOLDER = "folder", _("Server folder")
    S3 = "s3", _("S3 bucket and prefix")
    MANIFEST = "manifest", _("CSV / JSON Lines manifest")


class Source(models.Model):
    """Where images come from, with the licence that applies unless a row says otherwise."""

    kind = models.CharField(max_length=16, choices=SourceKind.choices)
    name = models.CharField(max_length=200, unique=True)
    default_licence = models.ForeignKey(Licence, on_delete=models.PROTECT, related_name="+")
    description = models.TextField(blank=True)
    # Folder: {"path": ...}; S3: {"bucket": ..., "prefix": ..., "endpoint_url": ...}
    location = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


def image_path(instance: Image, filename: str) -> str:
    h = instance.sha256
    return f"images/{h[:2]}/{h[2:4]}/{instance.id}.jpg"


def thumb_path(instance: Image, filename: str) -> str:
    h = instance.sha256
    return f"thumbs/{h[:2]}/{h[2:4]}/{instance.id}.jpg"


class ImageStatus(models.TextChoices):
    """Whether a photo is in use. Only active photos count towards quotas, join labeling queues
    and are handed out; a retired or excluded photo keeps its row, files and comments, and a
    planner can restore it."""

    ACTIVE = "active", _("Active")
    # Taken out of use, nothing wrong with it (enough of its kind, poor quality, ...).
    RETIRED = "retired", _("Retired")
    # Must not be used (personal information, inappropriate, a licence problem).
    EXCLUDED = "excluded", _("Excluded")


class Image(models.Model):
    """One photo in the catalogue: a normalised RGB JPEG, its thumbnail, hashes and provenance."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    file = models.FileField(upload_to=image_path, max_length=200)
    thumbnail = models.FileField(upload_to=thumb_path, max_length=200)
    sha256 = models.CharField(max_length=64, unique=True, help_text=_("SHA-256 of the original bytes."))
    pixel_sha256 = models.CharField(max_length=64, unique=True, help_text=_("SHA-256 of the decoded pixels."))
    phash = models.BigIntegerField(db_index=True, help_text=_("64-bit perceptual hash (DCT), signed."))
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    original_width = models.PositiveIntegerField()
    original_height = models.PositiveIntegerField()
    original_format = models.CharField(max_length=16)
    original_bytes = models.PositiveBigIntegerField()
    original_name = models.CharField(max_length=500, blank=True)

    category = models.ForeignKey(Category, null=True, blank=True, on_delete=models.PROTECT, related_name="images")
    subcategory = models.ForeignKey(
        Subcategory, null=True, blank=True, on_delete=models.PROTECT, related_name="images"
    )
    source = models.ForeignKey(Source, on_delete=models.PROTECT, related_name="images")
    licence = models.ForeignKey(Licence, on_delete=models.PROTECT, related_name="images")
    author = models.CharField(max_length=300, blank=True)
    original_url = models.URLField(max_length=1000, blank=True, validators=[validate_web_link])
    title = models.CharField(max_length=500, blank=True)
    external_id = models.CharField(max_length=200, blank=True, help_text=_("The source's own id (e.g. Open Images ImageID)."))

    import_job = models.ForeignKey("ImportJob", null=True, blank=True, on_delete=models.SET_NULL, related_name="images")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    # Changed only by datasets.services.set_image_status (labeling's queues follow).
    # db_default on these two: rows written by code that does not know them (old migrations) are active.
    status = models.CharField(max_length=16, choices=ImageStatus.choices, default=ImageStatus.ACTIVE,
                              db_default=ImageStatus.ACTIVE)
    status_reason = models.CharField(max_length=300, blank=True, db_default="",
                                     help_text=_("Why it was retired or excluded."))
    status_changed_at = models.DateTimeField(null=True, blank=True)
    status_changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # The quota dashboard's GROUP BY (category, subcategory, status) reads this index alone.
            models.Index(fields=["category", "subcategory", "status"], name="image_cat_subcat_status"),
            models.Index(fields=["source"], name="image_source"),
        ]

    def __str__(self) -> str:
        return f"{self.id} ({self.original_name})"

    @property
    def attribution(self) -> str:
        """The credit line a licence that requires attribution asks for."""
        return attribution_text(self.title, self.author, self.original_url, self.licence.name)


def attribution_text(title: str, author: str, original_url: str, licence_name: str) -> str:
    """The credit line of a photo (Image.attribution; snapshots freeze it from the same fields)."""
    parts = [title or "Untitled"]
    if author:
        parts.append(f"by {author}")
    if original_url:
        parts.append(original_url)
    parts.append(licence_name)
    return ", ".join(parts)


class ImportStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")
    # The worker or command running it stopped (killed, crashed, timed out, Ctrl-C) before the
    # end: its staged files are kept, and resuming it reads only the entries not yet reported.
    INTERRUPTED = "interrupted", _("Interrupted")


# An import in one of these states runs no more (until an interrupted one is resumed).
FINISHED_STATUSES = (ImportStatus.DONE, ImportStatus.FAILED, ImportStatus.INTERRUPTED)


class ImportJob(models.Model):
    """One import run: what it reads, its progress, and counts of each outcome."""

    source = models.ForeignKey(Source, on_delete=models.PROTECT, related_name="imports")
    kind = models.CharField(max_length=16, choices=SourceKind.choices)
    # What to read, by kind: staged upload keys, a folder path, an S3 bucket/prefix, a manifest key.
    params = models.JSONField(default=dict, blank=True)
    # Defaults applied to every file unless a manifest row overrides them.
    category = models.ForeignKey(Category, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    subcategory = models.ForeignKey(Subcategory, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    licence = models.ForeignKey(Licence, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    author = models.CharField(max_length=300, blank=True)

    status = models.CharField(max_length=16, choices=ImportStatus.choices, default=ImportStatus.QUEUED)
    # Why it failed or stopped: the English text (and, for imports before codes, the only record),
    # and the datasets.refusals code and parameters that `error_text` says in the reader's language.
    error = models.TextField(blank=True)
    error_code = models.CharField(max_length=40, blank=True)
    error_params = models.JSONField(default=dict, blank=True)
    total = models.PositiveIntegerField(null=True, blank=True, help_text=_("Known once listing is done."))
    processed = models.PositiveIntegerField(default=0)
    accepted = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    refused = models.PositiveIntegerField(default=0)
    warnings = models.PositiveIntegerField(default=0)

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text=_("Last sign of life from the worker running it (each file it reports).")
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "heartbeat_at"], name="importjob_status_heartbeat")]

    def __str__(self) -> str:
        return f"Import {self.pk} ({self.kind}, {self.status})"

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    @property
    def error_text(self) -> str:
        """Why it failed or stopped, in the active language (the stored text for old imports)."""
        return render_reason(self.error_code, self.error_params, fallback=self.error)

    @property
    def percent(self) -> int:
        if not self.total:
            return 100 if self.status == ImportStatus.DONE else 0
        return min(100, round(100 * self.processed / self.total))


class Outcome(models.TextChoices):
    ACCEPTED = "accepted", _("Accepted")
    DUPLICATE = "duplicate", _("Duplicate")
    REFUSED = "refused", _("Refused")


class ImportItem(models.Model):
    """The report line for one file, URL or manifest row of an import."""

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveIntegerField()
    name = models.CharField(max_length=1000, help_text=_("File name, path, key, URL or manifest row."))
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    reason = models.CharField(max_length=1000, blank=True, help_text=_("Why it was refused, or a warning."))
    # The reason as a datasets.refusals code and its parameters; `reason` keeps its English text
    # (searched, and all that report lines written before codes have).
    reason_code = models.CharField(max_length=40, blank=True)
    reason_params = models.JSONField(default=dict, blank=True)
    image = models.ForeignKey(Image, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    duplicate_of = models.ForeignKey(Image, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["job", "position"]
        indexes = [models.Index(fields=["job", "outcome"], name="importitem_job_outcome")]
        # One report line per entry, even if two workers ever run the same import.
        constraints = [models.UniqueConstraint(fields=["job", "position"], name="importitem_one_line_per_entry")]

    def __str__(self) -> str:
        return f"{self.name}: {self.outcome}"

    @property
    def reason_text(self) -> str:
        """The reason in the active language (the stored English text for lines without a code)."""
        return render_reason(self.reason_code, self.reason_params, fallback=self.reason)


# --- Snapshots --------------------------------------------------------------------------------


class SnapshotImmutable(Exception):
    """A frozen snapshot and its rows never change: the only change is archiving it
    (datasets.services.archive_snapshot)."""


class SnapshotStatus(models.TextChoices):
    FROZEN = "frozen", _("Frozen")
    ARCHIVED = "archived", _("Archived")


class Split(models.TextChoices):
    TRAIN = "train", _("Train")
    VAL = "val", _("Validation")
    TEST = "test", _("Test")


class FrozenRow(models.Model):
    """Rows written once, by the freeze (labeling.snapshots.freeze_snapshot), and never again:
    save() of an existing row and delete() refuse (SnapshotImmutable)."""

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise SnapshotImmutable(_("A frozen snapshot cannot be changed; archive it and freeze a new version."))
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise SnapshotImmutable(_("A frozen snapshot cannot be changed; archive it and freeze a new version."))


class Snapshot(FrozenRow):
    """A named, versioned, frozen selection of photos and their comments (`<name> v<version>`),
    with the parameters that chose it and split it. Its own rows (SnapshotImage, SnapshotComment)
    hold everything an export writes, so later edits, deletions or new comments never change it."""

    name = models.CharField(max_length=100)
    version = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=SnapshotStatus.choices, default=SnapshotStatus.FROZEN)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    archived_at = models.DateTimeField(null=True, blank=True)

    # The parameters used. Projects as [{"id", "name"}] (a project deleted later keeps its name
    # here); categories and comment types as slugs ([] = all).
    projects = models.JSONField(default=list)
    categories = models.JSONField(default=list)
    comment_types = models.JSONField(default=list)
    min_sets = models.PositiveIntegerField(help_text=_("Only photos with at least this many submitted comment sets."))
    seed = models.PositiveIntegerField(default=0)
    # Exactly one of the two: {"train", "val", "test"} fractions, or {"val", "test"} photo counts.
    ratios = models.JSONField(null=True, blank=True)
    counts = models.JSONField(null=True, blank=True)
    kept_from = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                  help_text=_("The version whose val and test photos were kept in their split."))
    image_count = models.PositiveIntegerField(default=0)
    comment_count = models.PositiveIntegerField(default=0)
    # The licences of its photos as they were at freezing time, {code: {"name", "url"}}: what the
    # export's card and Croissant file name, so a licence edited later changes no exported byte.
    # Empty for versions frozen before this field: exports then read the Licence table.
    licences = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["name", "-version"]
        constraints = [models.UniqueConstraint(fields=["name", "version"], name="snapshot_name_version_unique")]

    def __str__(self) -> str:
        return self.label

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version}"


class SnapshotImage(FrozenRow):
    """One photo of a snapshot, as it was at freezing time (images.parquet's row)."""

    snapshot = models.ForeignKey(Snapshot, on_delete=models.CASCADE, related_name="images")
    image_id = models.UUIDField()
    split = models.CharField(max_length=8, choices=Split.choices)
    file = models.CharField(max_length=200, help_text=_("The stored copy's path at freezing time."))
    sha256 = models.CharField(max_length=64)
    pixel_sha256 = models.CharField(max_length=64)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    category_slug = models.CharField(max_length=50, blank=True)
    category_name = models.CharField(max_length=100, blank=True)
    subcategory_slug = models.CharField(max_length=50, blank=True)
    subcategory_name = models.CharField(max_length=100, blank=True)
    licence_code = models.CharField(max_length=40)
    attribution_required = models.BooleanField(default=False)
    attribution = models.TextField(blank=True)
    source_name = models.CharField(max_length=200)

    class Meta:
        ordering = ["snapshot", "split", "category_slug", "image_id"]
        constraints = [models.UniqueConstraint(fields=["snapshot", "image_id"], name="snapshotimage_once")]
        indexes = [models.Index(fields=["snapshot", "split", "category_slug"], name="snapshotimage_split_cat")]

    def __str__(self) -> str:
        return f"{self.image_id} ({self.split})"


class SnapshotComment(FrozenRow):
    """One comment of a snapshot, as it was at freezing time (manifest.parquet's row). The
    photo's split and category are copied here so counts and diffs need no join."""

    snapshot = models.ForeignKey(Snapshot, on_delete=models.CASCADE, related_name="comments")
    comment_id = models.BigIntegerField()
    image_id = models.UUIDField()
    split = models.CharField(max_length=8, choices=Split.choices)
    category_slug = models.CharField(max_length=50, blank=True)
    text = models.TextField()
    comment_type = models.CharField(max_length=50, help_text=_("Comment type slug."))
    guideline_version = models.PositiveIntegerField(null=True, blank=True)
    labeler = models.CharField(max_length=32, help_text=_("A pseudonymous, stable id of the labeler."))

    class Meta:
        ordering = ["snapshot", "image_id", "comment_id"]
        constraints = [models.UniqueConstraint(fields=["snapshot", "comment_id"], name="snapshotcomment_once")]
        indexes = [models.Index(fields=["snapshot", "split", "category_slug"], name="snapshotcomment_split_cat")]

    def __str__(self) -> str:
        return self.text[:50]


# --- Exports ----------------------------------------------------------------------------------


class ExportStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")


# An export in one of these states has workers on it (or queued for it).
ACTIVE_EXPORT_STATUSES = (ExportStatus.QUEUED, ExportStatus.RUNNING)


class Export(models.Model):
    """One export of a snapshot to `<destination>/<name slug>/v<version>/` (a local folder or
    s3://bucket/prefix), written as shards (ExportShard) by tasks per shard group, then finished
    (datasets.export.services.finalize_export: metadata files, SHA256SUMS last). Changed only by
    datasets.export.services."""

    snapshot = models.ForeignKey(Snapshot, on_delete=models.CASCADE, related_name="exports")
    destination = models.CharField(max_length=1000, help_text=_("A folder on the server, or s3://bucket/prefix."))
    folder = models.CharField(max_length=1200, help_text=_("Where the files go: the destination, the snapshot's "
                                                           "name and its version."))
    options = models.JSONField(default=dict, help_text=_("Shard size and image options (ExportOptions)."))
    status = models.CharField(max_length=16, choices=ExportStatus.choices, default=ExportStatus.QUEUED)
    shards_total = models.PositiveIntegerField(default=0)
    shards_done = models.PositiveIntegerField(default=0)
    samples_done = models.PositiveBigIntegerField(default=0)
    samples_total = models.PositiveBigIntegerField(default=0)
    # Exactly one run of the finishing step is queued per attempt (a conditional UPDATE decides).
    finalizing = models.BooleanField(default=False)
    # What the shards reported ({"image_id", "code", "message", "shard"}), e.g. a photo's file gone.
    problems = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True, help_text=_("Why it failed, in English."))
    error_code = models.CharField(max_length=40, blank=True)
    error_params = models.JSONField(default=dict, blank=True)
    # The SHA-256 of the SHA256SUMS file written: two exports with the same value wrote the same bytes.
    sums_sha256 = models.CharField(max_length=64, blank=True)
    # The files of a done export: [{"path", "size", "sha256"}], SHA256SUMS's content and sizes.
    files = models.JSONField(default=list, blank=True)

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True,
                                        help_text=_("Last sign of life from a worker writing it (each shard)."))

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["folder", "status"], name="export_folder_status")]

    def __str__(self) -> str:
        return f"Export {self.pk} of {self.snapshot_id} ({self.status})"

    @property
    def percent(self) -> int:
        if self.status == ExportStatus.DONE:
            return 100
        if not self.shards_total:
            return 0
        return min(100, round(100 * self.shards_done / self.shards_total))

    @property
    def on_s3(self) -> bool:
        return self.destination.startswith("s3://")

    @property
    def error_text(self) -> str:
        from .export.errors import render

        return render(self.error_code, self.error_params, fallback=self.error)


class ShardStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    DONE = "done", _("Done")


class ExportShard(models.Model):
    """One shard file of an export (datasets.export.layout.ShardSpec), written by the task of its
    group; `sha256` is what was written, so a rerun skips it when the file is still there."""

    export = models.ForeignKey(Export, on_delete=models.CASCADE, related_name="shards")
    position = models.PositiveIntegerField()
    group = models.PositiveIntegerField()
    path = models.CharField(max_length=300)
    kind = models.CharField(max_length=20)
    split = models.CharField(max_length=8)
    image_ids = models.JSONField(default=list)
    status = models.CharField(max_length=16, choices=ShardStatus.choices, default=ShardStatus.PENDING)
    samples = models.PositiveIntegerField(default=0)
    size = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    problems = models.JSONField(default=list, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["export", "position"]
        constraints = [
            models.UniqueConstraint(fields=["export", "position"], name="exportshard_position_once"),
            models.UniqueConstraint(fields=["export", "path"], name="exportshard_path_once"),
        ]
        indexes = [models.Index(fields=["export", "group", "status"], name="exportshard_group_status")]

    def __str__(self) -> str:
        return self.path


# --- Training runs ----------------------------------------------------------------------------


class RunKind(models.TextChoices):
    RETRIEVAL = "retrieval", _("Retrieval")
    GENERATIVE = "generative", _("Generative")


class RunStatus(models.TextChoices):
    RUNNING = "running", _("Running")
    FINISHED = "finished", _("Finished")
    FAILED = "failed", _("Failed")


class RunSnapshotProblem(models.TextChoices):
    """Why a run is not attached to a snapshot version ("" when it is)."""

    NONE = "", _("Attached")
    UNKNOWN = "unknown", _("No such snapshot version here")
    CHECKSUM = "checksum", _("Snapshot checksum does not match")


class TrainingRun(models.Model):
    """A trainer's run folder (trainers/runs.py: run.json, metrics.csv, eval.json, checkpoints/,
    model/, predictions/) as registered by datasets.runs.services.register_run: a copy of what
    the folder said, read again on each registration (one row per `run_id`). It belongs to the
    snapshot version whose name, version and SHA256SUMS checksum (an export's `sums_sha256`) its
    run.json names; otherwise `snapshot` is empty and the fields below say what the run named."""

    run_id = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=16, choices=RunKind.choices)
    status = models.CharField(max_length=16, choices=RunStatus.choices,
                              help_text=_("As run.json said when the run was last registered."))
    location = models.CharField(max_length=1000, help_text=_("The run folder: a path on the server or s3://bucket/prefix."))
    snapshot = models.ForeignKey(Snapshot, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs")
    snapshot_name = models.CharField(max_length=200, blank=True)
    snapshot_version = models.PositiveIntegerField(null=True, blank=True)
    snapshot_checksum = models.CharField(max_length=128, blank=True)
    snapshot_path = models.CharField(max_length=1000, blank=True)
    snapshot_problem = models.CharField(max_length=16, choices=RunSnapshotProblem.choices, blank=True, default="")
    config = models.JSONField(default=dict, blank=True)
    model_info = models.JSONField(default=dict, blank=True, help_text=_("run.json's model: vision, text, pretrained."))
    # eval.json: its metrics as written, the same values under the page's column keys
    # (datasets.runs.metrics), and the rest (split, signature, evaluated_at, checkpoint).
    metrics = models.JSONField(default=dict, blank=True)
    scores = models.JSONField(default=dict, blank=True)
    evaluation = models.JSONField(default=dict, blank=True)
    # metrics.csv per epoch: {"columns": ["split/metric", ...], "rows": [{"epoch", "step", "values"}]}.
    epochs = models.JSONField(default=dict, blank=True)
    # What the folder holds: {"checkpoints": [{"path", "size"}], "model": [...], "predictions": [...]}.
    files = models.JSONField(default=dict, blank=True)
    epochs_done = models.PositiveIntegerField(default=0)
    steps_done = models.PositiveBigIntegerField(default=0)
    world_size = models.PositiveIntegerField(default=1)
    device = models.CharField(max_length=40, blank=True)
    git_commit = models.CharField(max_length=64, blank=True)
    started_at = models.DateTimeField(null=True, blank=True, help_text=_("run.json's created_at."))
    finished_at = models.DateTimeField(null=True, blank=True)
    registered_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                      related_name="+")
    registered_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["snapshot_name", "-snapshot_version", "-started_at", "-id"]
        indexes = [models.Index(fields=["snapshot", "kind"], name="trainingrun_snapshot_kind")]

    def __str__(self) -> str:
        return self.run_id

    @property
    def snapshot_label(self) -> str:
        if self.snapshot_id:
            return self.snapshot.label
        version = "?" if self.snapshot_version is None else self.snapshot_version
        return f"{self.snapshot_name or '?'} v{version}"

    @property
    def on_s3(self) -> bool:
        return self.location.startswith("s3://")

    @property
    def tokenizer(self) -> str:
        signature = self.evaluation.get("signature") if isinstance(self.evaluation, dict) else None
        return str(signature.get("tokenizer") or "") if isinstance(signature, dict) else ""

    @property
    def snapshot_problem_text(self) -> str:
        """Why the run is not listed under a snapshot version ("" when it is)."""
        params = {"label": self.snapshot_label, "checksum": (self.snapshot_checksum or "-")[:16]}
        if self.snapshot_problem == RunSnapshotProblem.UNKNOWN:
            return _("There is no snapshot %(label)s here: the run is kept under an unknown snapshot.") % params
        if self.snapshot_problem == RunSnapshotProblem.CHECKSUM:
            return _("The run's snapshot checksum %(checksum)s… is not the SHA256SUMS of any finished export of "
                     "%(label)s here: it was trained on other files, so it is not attached to that version "
                     "(kept under an unknown snapshot).") % params
        return ""
