"""Everything that changes the datasets app's state: categories, sources, imports and images.

The ingest path for one file is `ingest_one`; a whole import is `run_import`, which a Celery task
(`datasets.tasks.run_import_task`) or a management command calls.
"""
from __future__ import annotations

import ctypes
import functools
import logging
import multiprocessing
import os
import signal
import sys
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, default_storage
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import F, ProtectedError, Q
from django.utils import timezone
from django.utils.text import get_valid_filename
from django.utils.translation import gettext

from . import imaging, readers, weblinks
from .models import (
    Category,
    FullPolicy,
    Image,
    ImageStatus,
    ImportItem,
    ImportJob,
    ImportStatus,
    Licence,
    Outcome,
    Snapshot,
    SnapshotStatus,
    Source,
    SourceKind,
    Subcategory,
)
from .refusals import Reason, Refusal, code_of, reason_of, several
from .signals import images_added, images_changed

log = logging.getLogger(__name__)


class IngestError(Exception):
    """An import cannot be created as asked; the message says why."""


class StorageUnavailable(Refusal):
    """The media storage refused a write (disk full, S3 unreachable): not the file's fault."""


# ---------------------------------------------------------------- categories and quotas


def save_category(*, slug: str, name: str, quota: int, full_policy: str = FullPolicy.WARN, is_active: bool = True,
                  instance: Category | None = None) -> Category:
    category = instance or Category()
    category.slug, category.name, category.quota = slug, name, quota
    category.full_policy, category.is_active = full_policy, is_active
    if category.pk is None:
        category.position = (Category.objects.order_by("-position").values_list("position", flat=True).first() or 0) + 1
    category.full_clean()
    category.save()
    return category


def save_subcategory(*, category: Category, slug: str, name: str, quota: int, is_active: bool = True,
                     instance: Subcategory | None = None) -> Subcategory:
    sub = instance or Subcategory()
    sub.category, sub.slug, sub.name, sub.quota, sub.is_active = category, slug, name, quota, is_active
    if sub.pk is None:
        sub.position = category.subcategories.count() + 1
    sub.full_clean()
    sub.save()
    return sub


class InUseError(Exception):
    """A row that images or imports point to cannot be deleted; retire it instead."""


def _delete_unused(instance) -> None:
    """Delete a row nothing points to (the models PROTECT their rows), else InUseError naming
    what uses it."""
    try:
        with transaction.atomic():
            instance.delete()
    except ProtectedError as exc:
        kinds = ", ".join(sorted({str(obj._meta.verbose_name_plural) for obj in exc.protected_objects}))
        message = gettext("%(kind)s %(name)s is used by %(users)s and cannot be deleted.") % {
            "kind": str(instance._meta.verbose_name).capitalize(), "name": instance, "users": kinds}
        if hasattr(instance, "is_active"):
            message += " " + gettext("Retire it (is_active=false) instead.")
        raise InUseError(message) from None


def delete_subcategory(subcategory: Subcategory) -> None:
    _delete_unused(subcategory)


def save_licence(*, code: str, name: str, commercial_use: bool, attribution_required: bool, url: str = "",
                 share_alike: bool = False, instance: Licence | None = None) -> Licence:
    licence = instance or Licence()
    licence.code, licence.name, licence.url = code, name, url
    licence.commercial_use, licence.attribution_required, licence.share_alike = (
        commercial_use, attribution_required, share_alike)
    licence.full_clean()
    licence.save()
    return licence


def delete_licence(licence: Licence) -> None:
    _delete_unused(licence)


def delete_source(source: Source) -> None:
    _delete_unused(source)


def delete_category(category: Category) -> None:
    """Delete a category with no images or imports, and its (equally unused) subcategories."""
    used = Image.objects.filter(category=category).count()
    if used:
        raise InUseError(
            f"Category {category.name} has {used:,} images and cannot be deleted; retire it (is_active=false) instead."
        )
    try:
        with transaction.atomic():
            category.subcategories.all().delete()
            category.delete()
    except ProtectedError:
        raise InUseError(
            f"Category {category.name} is used by an import and cannot be deleted; retire it (is_active=false) instead."
        ) from None


# ---------------------------------------------------------------- managing the catalogue

# Most photos one bulk action may change (a page of the grid is 60; the API takes lists).
BULK_MAX = 1000


def _image_ids(images) -> list:
    """Primary keys of `images` (Image rows, ids or a queryset), at most BULK_MAX, or a ValidationError."""
    if hasattr(images, "values_list"):
        ids = list(images.values_list("pk", flat=True)[:BULK_MAX + 1])
    else:
        ids = list(dict.fromkeys(getattr(i, "pk", i) for i in images))
    if not ids:
        raise ValidationError({"ids": gettext("Choose at least one photo.")})
    if len(ids) > BULK_MAX:
        raise ValidationError({"ids": gettext("At most %(max)s photos at once.") % {"max": f"{BULK_MAX:,}"}})
    return ids


def recategorise_images(images, *, category: Category | str | None, subcategory: Subcategory | str | None) -> int:
    """Move photos (rows, ids or a queryset; at most BULK_MAX) to another category/subcategory, in
    one transaction. Refuses retired targets, and a target set to refuse past its quota when the
    moved photos would take it past. Labeling's queues follow (`signals.images_changed`): photos
    that no longer match a project leave its queue where nobody has touched them, photos that now
    match join the open projects that follow new photos. Returns how many photos moved."""
    ids = _image_ids(images)
    try:
        category, subcategory = resolve_target(category, subcategory)
    except imaging.ImageRefused as exc:
        raise IngestError(exc.reason.text()) from None
    with transaction.atomic():
        moving = Image.objects.filter(pk__in=ids).exclude(
            category=category, subcategory=subcategory
        ).select_for_update()
        moved = list(moving.values_list("pk", flat=True))
        if not moved:
            return 0
        try:
            quota_warning(category, subcategory, adding=len(moved))
        except imaging.ImageRefused as exc:
            raise IngestError(exc.reason.text()) from None
        Image.objects.filter(pk__in=moved).update(category=category, subcategory=subcategory)
        images_changed.send(sender=Image, image_ids=moved)
    return len(moved)


def recategorise_image(image: Image, *, category: Category | None, subcategory: Subcategory | None) -> Image:
    """Move one image to another category/subcategory (see recategorise_images)."""
    if (category, subcategory) == (image.category, image.subcategory):
        return image
    recategorise_images([image], category=category, subcategory=subcategory)
    image.refresh_from_db()
    return image


def set_image_status(images, status: str, *, reason: str = "", user=None) -> int:
    """Retire, exclude or restore (status "active") photos: rows, ids or a queryset, at most
    BULK_MAX, in one transaction. A retired or excluded photo keeps its files and comments; it no
    longer counts towards quotas, joins no labeling queue and is never handed out again, and it
    leaves every queue where nobody has touched it (`signals.images_changed`). Returns how many
    photos changed."""
    if status not in ImageStatus.values:
        raise ValidationError({"status": gettext("Choose one of: %(choices)s.") % {"choices": ", ".join(ImageStatus.values)}})
    ids = _image_ids(images)
    reason = "" if status == ImageStatus.ACTIVE else " ".join(str(reason or "").split())[:300]
    with transaction.atomic():
        rows = Image.objects.filter(pk__in=ids).exclude(status=status).select_for_update()
        changed = list(rows.values_list("pk", flat=True))
        if not changed:
            return 0
        Image.objects.filter(pk__in=changed).update(
            status=status, status_reason=reason, status_changed_at=timezone.now(), status_changed_by=user,
        )
        images_changed.send(sender=Image, image_ids=changed)
    return len(changed)


# ---------------------------------------------------------------- snapshots


def archive_snapshot(snapshot: Snapshot) -> Snapshot:
    """Archive a frozen snapshot: the only change a snapshot ever takes (its rows stay as they
    are; labeling.snapshots freezes them). Archiving an archived one changes nothing."""
    Snapshot.objects.filter(pk=snapshot.pk, status=SnapshotStatus.FROZEN).update(
        status=SnapshotStatus.ARCHIVED, archived_at=timezone.now()
    )
    return Snapshot.objects.get(pk=snapshot.pk)


# ---------------------------------------------------------------- licences and targets


def resolve_licence(value: str | None, default: Licence) -> Licence:
    """A manifest's licence cell: a code ("cc-by-2.0"), a name, or a URL (Open Images)."""
    if not value:
        return default
    value = value.strip()
    norm_url = value.rstrip("/").replace("https://", "").replace("http://", "")
    for licence in Licence.objects.all():
        if value.lower() in (licence.code.lower(), licence.name.lower()):
            return licence
        if licence.url and licence.url.rstrip("/").replace("https://", "").replace("http://", "") == norm_url:
            return licence
    raise imaging.ImageRefused("unknown_licence", value=readers.display_name(value))


def check_licence(licence: Licence) -> None:
    if settings.INGEST["COMMERCIAL_ONLY"] and not licence.commercial_use:
        raise imaging.ImageRefused("non_commercial_licence", licence=licence.name)


def resolve_target(category: Category | str | None, subcategory: Subcategory | str | None) -> tuple[Category | None, Subcategory | None]:
    """Category and subcategory from rows or slugs; refuse unknown or retired ones."""
    if isinstance(category, str):
        if not category:
            category = None
        else:
            name = category
            category = Category.objects.filter(Q(slug=name) | Q(name=name)).first()
            if category is None:
                raise imaging.ImageRefused("unknown_category", value=readers.display_name(name))
    if isinstance(subcategory, str):
        if not subcategory:
            subcategory = None
        elif category is None:
            raise imaging.ImageRefused("subcategory_without_category", value=readers.display_name(subcategory))
        else:
            name = subcategory
            subcategory = category.subcategories.filter(Q(slug=name) | Q(name=name)).first()
            if subcategory is None:
                raise imaging.ImageRefused("unknown_subcategory", category=category.name, value=readers.display_name(name))
    if subcategory is not None and category is None:
        category = subcategory.category
    if subcategory is not None and subcategory.category_id != category.pk:
        raise imaging.ImageRefused("subcategory_not_in_category", subcategory=subcategory.name, category=category.name)
    if category is not None and not category.is_active:
        raise imaging.ImageRefused("category_retired", category=category.name)
    if subcategory is not None and not subcategory.is_active:
        raise imaging.ImageRefused("subcategory_retired", subcategory=str(subcategory))
    return category, subcategory


def _active_images(category: Category, subcategory: Subcategory | None) -> int:
    """How many active photos count towards the quota of `subcategory`, or of `category` without one."""
    filter_ = {"subcategory": subcategory} if subcategory is not None else {"category": category}
    return Image.objects.filter(status=ImageStatus.ACTIVE, **filter_).count()


def quota_warning(category: Category | None, subcategory: Subcategory | None, *, adding: int = 1,
                  have: Callable[[Category, Subcategory | None], int] = _active_images) -> Reason | str:
    """'' while there is room for `adding` more active photos; a warning if that passes the quota
    and the policy warns; raises if it refuses. `have` counts the photos already there."""
    if category is None:
        return ""
    target, label = (subcategory, str(subcategory)) if subcategory is not None else (category, category.name)
    if not target.quota:
        return ""
    have = have(category, subcategory)
    if have + adding <= target.quota:
        return ""
    if have < target.quota:  # room for some of the `adding`, not all
        params = {"target": label, "room": target.quota - have, "adding": adding, "have": have, "quota": target.quota}
        if category.full_policy == FullPolicy.REFUSE:
            raise imaging.ImageRefused("quota_room_refused", **params)
        return Reason("quota_room_accepted", **params)
    if category.full_policy == FullPolicy.REFUSE:
        raise imaging.ImageRefused("quota_full_refused", target=label, have=have, quota=target.quota)
    return Reason("quota_full_accepted", target=label, have=have, quota=target.quota)


# ---------------------------------------------------------------- one image


@dataclass
class Result:
    outcome: str
    image: Image | None = None
    duplicate_of: Image | None = None
    reason: Reason | str = ""  # a refusal or warning: see datasets.refusals


class _Catalogue:
    """What ingest_one asks the catalogue, one query each (an import's _Batch answers the same
    questions for a whole batch of files at once)."""

    @staticmethod
    def same_bytes(sha: str) -> Image | None:
        return _existing(sha=sha)

    @staticmethod
    def same_pixels(pixel_sha: str) -> Image | None:
        return _existing(pixel_sha=pixel_sha)

    active_images = staticmethod(_active_images)


def _existing(sha: str | None = None, pixel_sha: str | None = None) -> Image | None:
    """The stored image with these original bytes or, failing that, these pixels."""
    match = Q()
    if sha:
        match |= Q(sha256=sha)
    if pixel_sha:
        match |= Q(pixel_sha256=pixel_sha)
    if not match:
        return None
    # Most files are new: the pks first (half the cost of whole rows), the whole row on a match.
    # Both hashes are unique, so two rows at most; one with the same bytes comes first.
    found = sorted(Image.objects.filter(match).order_by().values_list("sha256", "pk")[:2], key=lambda r: r[0] != sha)
    return Image.objects.filter(pk=found[0][1]).first() if found else None


@dataclass
class Prepared:
    """One file's database-free work, done ahead in an import's worker thread: what reading its
    bytes raised, or their SHA-256 and what imaging.process made of them (or what it raised), and
    the stored copy and thumbnail it wrote (or why the storage refused them). Files no committed row
    ends up pointing to are removed by whoever handed the work out (see _ReadAhead)."""

    read_error: Exception | None = None
    sha256: str = ""
    processed: imaging.Processed | None = None
    error: BaseException | None = None
    image_id: uuid.UUID | None = None
    files: tuple[str, str] | None = None  # the stored copy's and the thumbnail's names
    store_error: StorageUnavailable | None = None
    kept: bool = False  # set once the Image row pointing to `files` is committed

    def result(self) -> imaging.Processed:
        """imaging.process's result, or its exception raised here, where the caller would have
        called it: so a refusal for the licence or a duplicate still comes first, as without."""
        if self.error is not None:
            raise self.error
        return self.processed

    def discard(self) -> None:
        """Remove the files written for this image unless its row was committed."""
        if self.files and not self.kept:
            _delete_files(list(self.files))
        self.files = None


def prepare(entry: readers.Entry, limits: imaging.Limits, store: bool = False,
            judge: Callable[[bytes, imaging.Limits], imaging.Processed] | None = None) -> Prepared:
    """Read and judge one entry without touching the database (safe in a worker thread); with
    `store`, also write its stored copy and thumbnail under a new image id. `judge` stands for
    imaging.process (an import's worker processes: see _ReadAhead)."""
    try:
        data = entry.load()
    except Exception as exc:  # noqa: BLE001 - reported as this entry's read failure
        return Prepared(read_error=exc)
    try:
        processed = (judge or imaging.process)(data, limits)
    except Exception as exc:  # noqa: BLE001 - raised again on the main thread, see Prepared.result
        return Prepared(sha256=imaging.sha256_bytes(data), error=exc)
    prepared = Prepared(sha256=processed.sha256, processed=processed)
    if store:
        image, written = Image(id=uuid.uuid4(), sha256=processed.sha256), []
        try:
            _store(image.file, "image.jpg", processed.jpeg, written)
            _store(image.thumbnail, "thumb.jpg", processed.thumbnail, written)
        except StorageUnavailable as exc:
            _delete_files(written)
            prepared.store_error = exc
        else:
            prepared.image_id, prepared.files = image.id, (image.file.name, image.thumbnail.name)
    return prepared


def ingest_one(
    data: bytes,
    *,
    source: Source,
    licence: Licence | None = None,
    category: Category | str | None = None,
    subcategory: Subcategory | str | None = None,
    original_name: str = "",
    author: str = "",
    original_url: str = "",
    title: str = "",
    external_id: str = "",
    job: ImportJob | None = None,
    limits: imaging.Limits | None = None,
    on_accept: Callable[[Result], None] | None = None,
    prepared: Prepared | None = None,
    batch: _Batch | None = None,
) -> Result:
    """Validate, normalise, hash and store one image. Never leaves a file without its row.

    `on_accept(result)` runs inside the transaction that inserts the Image row (an import writes
    its report line there), so the row and its report line are committed together or not at all.
    `prepared` (from `prepare(...)` on `data`, in a worker thread) stands for hashing and
    processing `data` here, and for storing its files if it wrote them; the outcome is the same.
    Files it wrote are the caller's to remove (`prepared.discard()`) unless the row was stored.
    With `batch` (an import's, with `prepared`), the catalogue is the batch's view of it and the
    accepted row is left to the batch to store, with its report line, when the batch ends.
    """
    catalogue = batch if batch is not None else _Catalogue
    # An original_url that is not http(s) is dropped with a warning, never stored (a stored
    # javascript: link ran script when clicked). The photo is kept: the link is provenance
    # only, and refusing would lose good photos from a third-party manifest over one bad cell.
    original_url = (original_url or "").strip()
    url_warning: Reason | str = ""
    if original_url and not weblinks.is_web_link(original_url):
        url_warning, original_url = Reason("bad_original_url", value=weblinks.shown_link(original_url)), ""
    try:
        licence = licence or source.default_licence
        check_licence(licence)
        category, subcategory = resolve_target(category, subcategory)
        existing = catalogue.same_bytes(prepared.sha256 if prepared is not None else imaging.sha256_bytes(data))
        if existing:
            return Result(Outcome.DUPLICATE, duplicate_of=existing, reason=Reason("same_bytes"))
        if prepared is not None:
            processed = prepared.result()
        else:
            processed = imaging.process(data, limits or imaging.Limits.from_settings())
        # Same pixels as a stored image: the insert below finds it, as the pixel hash is unique
        # (asking first would cost every new image a query, for the few files that are copies).
        # Except where the target refuses images past its quota: a copy is a duplicate there too.
        try:
            warning = quota_warning(category, subcategory, have=catalogue.active_images)
        except imaging.ImageRefused:
            existing = catalogue.same_pixels(processed.pixel_sha256)
            if existing:
                return Result(Outcome.DUPLICATE, duplicate_of=existing, reason=Reason("same_pixels"))
            raise
    except imaging.ImageRefused as exc:
        return Result(Outcome.REFUSED, reason=exc.reason)

    image = Image(
        id=prepared.image_id if prepared is not None and prepared.files else uuid.uuid4(),
        sha256=processed.sha256,
        pixel_sha256=processed.pixel_sha256,
        phash=processed.phash,
        width=processed.width,
        height=processed.height,
        original_width=processed.original_width,
        original_height=processed.original_height,
        original_format=processed.original_format,
        original_bytes=processed.original_bytes,
        original_name=original_name[:500],
        category=category,
        subcategory=subcategory,
        source=source,
        licence=licence,
        author=author[:300],
        original_url=original_url[:1000],
        title=title[:500],
        external_id=external_id[:200],
        import_job=job,
    )
    written: list[str] = []
    try:
        if prepared is not None and prepared.store_error:
            raise prepared.store_error
        if prepared is not None and prepared.files:
            image.file, image.thumbnail = prepared.files
        else:
            _store(image.file, "image.jpg", processed.jpeg, written)
            _store(image.thumbnail, "thumb.jpg", processed.thumbnail, written)
        result = Result(Outcome.ACCEPTED, image=image, reason=several([warning, url_warning]))
        if batch is not None:
            # The batch knows every row it will insert: a copy is a duplicate now, not at the insert.
            if existing := batch.same_pixels(processed.pixel_sha256):
                return Result(Outcome.DUPLICATE, duplicate_of=existing, reason=Reason("same_pixels"))
            batch.add(image, prepared)
            if on_accept is not None:
                on_accept(result)
            return result
        with transaction.atomic():
            image.save(force_insert=True)
            if on_accept is not None:
                on_accept(result)
    except IntegrityError:
        # The same pixels are stored already, or another worker stored the same bytes between
        # our check and our insert.
        _delete_files(written)
        existing = _existing(sha=processed.sha256, pixel_sha=processed.pixel_sha256)
        if existing is None:
            raise
        reason = Reason("stored_concurrently" if existing.sha256 == processed.sha256 else "same_pixels")
        return Result(Outcome.DUPLICATE, duplicate_of=existing, reason=reason)
    except BaseException:
        _delete_files(written)
        raise
    if prepared is not None:
        prepared.kept = True
    return result


def _store(field, name: str, data: bytes, written: list[str]) -> None:
    """Save one file of an image; a storage that refuses it (disk full, S3 down) is not the
    image's fault, so it stops the import (resumable) instead of refusing the file."""
    try:
        field.save(name, ContentFile(data), save=False)
    except Exception as exc:  # noqa: BLE001 - every storage backend raises its own kind
        raise StorageUnavailable(Reason("storage_refused_write", error=exc.__class__.__name__, detail=str(exc))) from exc
    written.append(field.name)


def _delete_files(names: list[str]) -> None:
    for name in names:
        try:
            default_storage.delete(name)
        except Exception:  # noqa: BLE001 - best effort; the orphan sweep finds what is left
            log.exception("could not delete %s", name)


def remove_orphan_files(dry_run: bool = False, min_age: timedelta = timedelta(hours=1)) -> list[str]:
    """Delete stored files nothing points to, as a crash can leave them: image and thumbnail
    files without an Image row, and staged uploads/manifests of imports that ended or were never
    recorded. Files younger than `min_age` are left alone: an import that is running writes its
    files a moment before it inserts their row. Returns the names removed (or, dry, to remove)."""
    known = set(Image.objects.values_list("file", flat=True)) | set(Image.objects.values_list("thumbnail", flat=True))
    # An interrupted import keeps its staged files for INGEST_INTERRUPTED_KEEP_DAYS, then is given up.
    given_up = ImportJob.objects.filter(
        status=ImportStatus.INTERRUPTED,
        finished_at__lt=timezone.now() - timedelta(days=settings.INGEST["INTERRUPTED_KEEP_DAYS"]),
    )
    if not dry_run:
        days = settings.INGEST["INTERRUPTED_KEEP_DAYS"]
        for job in given_up:  # their staged files are removed by the walk below, and listed
            previous = {"code": job.error_code, "params": job.error_params} if job.error_code else job.error
            error = Reason("given_up", previous=previous, days=days)
            ImportJob.objects.filter(pk=job.pk).update(
                status=ImportStatus.FAILED, error=error[:5000], error_code=error.code, error_params=error.params,
            )
    keep = [ImportStatus.QUEUED, ImportStatus.RUNNING, ImportStatus.INTERRUPTED]
    active_staging = {
        (params or {}).get("staging_prefix", "")
        for params in ImportJob.objects.filter(status__in=keep).exclude(pk__in=given_up.values("pk")).values_list(
            "params", flat=True
        )
    }
    cutoff = timezone.now() - min_age
    orphans: list[str] = []

    def old_enough(name: str) -> bool:
        if not min_age:
            return True
        try:
            return default_storage.get_modified_time(name) <= cutoff
        except (FileNotFoundError, NotImplementedError, OSError):
            return False

    def walk(folder: str, is_orphan: Callable[[str], bool]):
        try:
            dirs, files = default_storage.listdir(folder)
        except (FileNotFoundError, NotADirectoryError):
            return
        for f in files:
            name = f"{folder}/{f}"
            if is_orphan(name) and old_enough(name):
                orphans.append(name)
        for d in dirs:
            walk(f"{folder}/{d}", is_orphan)

    walk("images", lambda name: name not in known)
    walk("thumbs", lambda name: name not in known)
    walk("staging", lambda name: "/".join(name.split("/")[:2]) not in active_staging)
    if not dry_run:
        _delete_files(orphans)
    return orphans


# ---------------------------------------------------------------- imports


def _stage_uploads(job_key: str, files) -> list[dict]:
    staged = []
    for n, f in enumerate(files):
        name = f.name or f"file-{n}"
        key = default_storage.save(f"staging/{job_key}/{n:05d}_{get_valid_filename(name)[-100:] or 'file'}", f)
        staged.append({"key": key, "name": name})
    return staged


def _defaults(source: Source, category, subcategory, licence) -> tuple:
    try:
        category, subcategory = resolve_target(category, subcategory)
    except imaging.ImageRefused as exc:
        raise IngestError(exc.reason.text()) from None
    if licence is not None:
        try:
            check_licence(licence)
        except imaging.ImageRefused as exc:
            raise IngestError(exc.reason.text()) from None
    return category, subcategory, licence


def create_import(
    *,
    source: Source,
    user=None,
    files=None,
    folder: str | None = None,
    s3_bucket: str | None = None,
    s3_prefix: str = "",
    s3_endpoint_url: str | None = None,
    manifest=None,
    manifest_base: str | None = None,
    category=None,
    subcategory=None,
    licence: Licence | None = None,
    author: str = "",
    trusted: bool = False,
    enqueue: bool = True,
) -> ImportJob:
    """Record an import and queue it. Exactly one of files, folder, s3_bucket or manifest.

    Uploaded files and manifests are staged in storage (where workers on other machines can read
    them) and removed when the import ends. `trusted` (the management commands) lifts the rule
    that folders and manifest paths lie under INGEST_ALLOWED_ROOTS.
    """
    given = [x for x in (files, folder, s3_bucket, manifest) if x]
    if len(given) != 1:
        raise IngestError("Give exactly one of: files, a folder, an S3 bucket, or a manifest.")
    category, subcategory, licence = _defaults(source, category, subcategory, licence)
    job_key = uuid.uuid4().hex
    params: dict = {"trusted": trusted}
    if files:
        kind = SourceKind.UPLOAD
        params["staged"] = _stage_uploads(job_key, files)
    elif folder:
        kind = SourceKind.FOLDER
        if not trusted:
            try:
                readers.check_allowed_path(folder)
            except readers.ReaderError as exc:
                raise IngestError(exc.reason.text()) from None
        params["path"] = folder
    elif s3_bucket:
        kind = SourceKind.S3
        if s3_endpoint_url and not trusted:
            # The worker signs S3 requests with the server's credentials: from the web only an
            # endpoint the operator configured (the management command is the operator's own).
            allowed = readers.allowed_s3_endpoint(s3_endpoint_url)
            if allowed is None:
                choices = readers.s3_endpoint_choices()
                if not choices:
                    raise IngestError(gettext(
                        "This S3 endpoint is not allowed: this server imports from its default S3 endpoint "
                        "only. Leave the endpoint blank."
                    ))
                raise IngestError(gettext(
                    "This S3 endpoint is not allowed. Leave it blank for the default, or choose one the "
                    "server allows: %(allowed)s."
                ) % {"allowed": ", ".join(choices)})
            s3_endpoint_url = allowed
        params.update(bucket=s3_bucket, prefix=s3_prefix or "", endpoint_url=s3_endpoint_url or "")
    else:
        kind = SourceKind.MANIFEST
        name = getattr(manifest, "name", "manifest.csv")
        raw = manifest.read()
        try:
            text = raw.decode("utf-8-sig") if isinstance(raw, bytes) else raw
        except UnicodeDecodeError:
            raise IngestError("The manifest is not UTF-8 text.") from None
        fmt = readers.detect_manifest_format(name, text)
        try:
            next(iter(readers.parse_manifest(text, fmt)), None)  # header errors now, row errors later
        except readers.ReaderError as exc:
            raise IngestError(exc.reason.text()) from None
        key = default_storage.save(f"staging/{job_key}/{get_valid_filename(name) or 'manifest'}", ContentFile(text.encode()))
        params.update(manifest_key=key, manifest_name=name, format=fmt, base=manifest_base or "")
    params["staging_prefix"] = f"staging/{job_key}"
    job = ImportJob.objects.create(
        source=source, kind=kind, params=params, category=category, subcategory=subcategory,
        licence=licence, author=author, created_by=user,
    )
    if enqueue:
        from .tasks import run_import_task

        transaction.on_commit(lambda: run_import_task.delay(job.pk))
    return job


def list_entries(job: ImportJob) -> list[readers.Entry]:
    p = job.params
    if job.kind == SourceKind.UPLOAD:
        return readers.upload_entries(p["staged"])
    if job.kind == SourceKind.FOLDER:
        return readers.folder_entries(p["path"], trusted=p.get("trusted", False))
    if job.kind == SourceKind.S3:
        return readers.s3_entries(p["bucket"], p.get("prefix", ""), p.get("endpoint_url") or None,
                                  trusted=p.get("trusted", False))
    if job.kind == SourceKind.MANIFEST:
        with default_storage.open(p["manifest_key"], "rb") as fh:
            text = fh.read().decode("utf-8")
        return readers.manifest_entries(text, p["format"], p.get("base") or None, trusted=p.get("trusted", False))
    raise readers.ReaderError("unknown_import_kind", kind=job.kind)


def _ingest_entry(job: ImportJob, entry: readers.Entry, limits: imaging.Limits,
                  on_accept: Callable[[Result], None] | None = None, ahead: Future | None = None,
                  batch: _Batch | None = None) -> Result:
    """One entry of an import; `ahead` is its `prepare` running or done in a worker thread, and
    `batch` the batch it is stored with (see ingest_one)."""
    if entry.error:
        return Result(Outcome.REFUSED, reason=entry.error)
    prepared = ahead.result() if ahead is not None else None
    if prepared is None:
        try:
            data = entry.load()
        except Exception as exc:  # noqa: BLE001 - any read failure is this entry's, not the batch's
            return Result(Outcome.REFUSED, reason=_cannot_read(exc))
    elif prepared.read_error is not None:
        return Result(Outcome.REFUSED, reason=_cannot_read(prepared.read_error))
    else:
        data = b""  # `prepared` stands for the bytes: their hash, and what processing them gave
    meta = entry.meta
    try:
        licence = resolve_licence(meta.get("licence"), job.licence or job.source.default_licence)
    except imaging.ImageRefused as exc:
        return Result(Outcome.REFUSED, reason=exc.reason)
    category = meta.get("category") or job.category
    subcategory = meta.get("subcategory") or (job.subcategory if not meta.get("category") else None)
    return ingest_one(
        data,
        source=job.source,
        licence=licence,
        category=category,
        subcategory=subcategory,
        original_name=meta.get("original_name", entry.name.rsplit("/", 1)[-1]),
        author=meta.get("author") or job.author,
        original_url=meta.get("original_url", ""),
        title=meta.get("title", ""),
        external_id=meta.get("external_id", ""),
        job=job,
        limits=limits,
        on_accept=on_accept,
        prepared=prepared,
        batch=batch,
    )


def _cannot_read(exc: BaseException) -> Reason:
    """An entry's read failure as its refusal: the reader's own reason where it has one."""
    if (reason := reason_of(exc)) is not None:
        detail = reason
    elif isinstance(exc, FileNotFoundError):
        detail = Reason("file_missing")
    elif isinstance(exc, PermissionError):
        detail = Reason("permission_denied")
    else:
        detail = str(exc) or exc.__class__.__name__
    return Reason("cannot_read", detail=detail)


def _worker_threads() -> int:
    """INGEST_WORKER_THREADS: how many files an import reads, judges and writes at once, in worker
    threads, beside the thread that stores their rows and report lines."""
    return max(1, int(settings.INGEST["WORKER_THREADS"]))


def _worker_kind() -> str:
    """INGEST_WORKER_KIND as it can be here: "processes" only where this process may fork children
    (not a daemonic one, as a Celery prefork worker's processes are: they may have none), else
    "threads"."""
    if settings.INGEST.get("WORKER_KIND", "threads") != "processes":
        return "threads"
    if "fork" not in multiprocessing.get_all_start_methods():
        return "threads"
    daemonic = multiprocessing.current_process().daemon
    billiard = sys.modules.get("billiard.process")  # Celery's own multiprocessing
    if billiard is not None and billiard.current_process().daemon:
        daemonic = True
    if daemonic:
        log.info("INGEST_WORKER_KIND=processes, but this is a daemonic process, which may not have "
                 "children: the import judges its files in worker threads.")
        return "threads"
    return "processes"


_PR_SET_PDEATHSIG = 1  # linux/prctl.h

# The parent's database connections, as a forked worker process inherited them: kept referenced
# and never used there (closing or collecting one would end the parent's session on its socket).
_INHERITED_CONNECTIONS: list = []


def _start_worker_process(parent: int) -> None:
    """A forked worker process's start: it ends with the import that forked it, even killed
    outright (SIGKILL, the OOM killer: Linux's parent-death signal; elsewhere the executor's own
    shutdown only); no database connection of the parent's is ever used in it (should anything
    there ask for one, it opens its own); Ctrl-C is the parent's to handle (it ends its workers on
    the way out), and SIGTERM ends it (not a Celery handler inherited)."""
    from django.db import connections

    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            log.warning("could not ask to end this import worker process with its parent", exc_info=True)
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    for conn in connections.all(initialized_only=True):
        _INHERITED_CONNECTIONS.append(conn.connection)
        conn.connection = None


def _process_in_worker(data: bytes, limits: imaging.Limits) -> imaging.Processed:
    """imaging.process in a worker process (bytes in, what it made of them or raised, out)."""
    return imaging.process(data, limits)


def _judge_in(pool: ProcessPoolExecutor, data: bytes, limits: imaging.Limits) -> imaging.Processed:
    return pool.submit(_process_in_worker, data, limits).result()


# Entries an import with worker threads stores per transaction: its files' duplicate check is one
# query, each target's quota one count, its images and report lines one insert each, its counters
# one update. A crash loses at most the batch being decided; it is judged again on resume.
BATCH_SIZE = 32


class _ReadAhead:
    """An import's entries in order, each with its `prepare` (read, judge, write its two files)
    started in one of `threads` worker threads, a bounded window (a batch and twice the threads)
    ahead of the caller, which does everything that touches the database, a batch of entries at a
    time. Reading, decoding, resizing, encoding, hashing and writing release the GIL, so they run
    beside the caller's queries.

    Files a worker wrote are removed unless the caller stored their row: when the caller is done
    with the entry (`finished`), and for entries it never got to, at `close`. Closing does not
    wait for files not yet started (they are never read), only for the few being judged, each
    bounded by the file, pixel and URL limits. A process killed meanwhile leaves at most the
    window's files without a row, which `remove_orphan_files` finds.
    """

    def __init__(self, pending: Iterable[tuple[int, readers.Entry]], limits: imaging.Limits, threads: int,
                 kind: str = "threads"):
        self._todo = iter(pending)
        self._limits = limits
        self._judge = None
        self._processes: ProcessPoolExecutor | None = None
        if kind == "processes":
            # Forked before this import starts threads of its own; all of them at once (the
            # executor does so with fork), so none is forked while a worker thread holds a lock.
            self._processes = ProcessPoolExecutor(max_workers=threads, mp_context=multiprocessing.get_context("fork"),
                                                  initializer=_start_worker_process, initargs=(os.getpid(),))
            try:
                self._processes.submit(int).result()
            except BaseException:
                self._processes.shutdown(wait=True, cancel_futures=True)
                raise
            self._judge = functools.partial(_judge_in, self._processes)
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="ingest")
        self._window: deque[tuple[int, readers.Entry, Future | None]] = deque()
        self._unfinished: set[Future] = set()
        try:
            for _ in range(BATCH_SIZE + 2 * threads):
                self._start_next()
        except BaseException:
            self.close()
            raise

    def _start_next(self) -> None:
        for position, entry in self._todo:
            future = None
            if not entry.error:
                future = self._pool.submit(prepare, entry, self._limits, True, self._judge)
                self._unfinished.add(future)
            self._window.append((position, entry, future))
            return

    def batches(self) -> Iterator[list[tuple[int, readers.Entry, Future | None]]]:
        """The entries in order, BATCH_SIZE at a time."""
        while self._window:
            batch = []
            while self._window and len(batch) < BATCH_SIZE:
                batch.append(self._window.popleft())
                self._start_next()
            yield batch

    def finished(self, future: Future | None) -> None:
        if future is not None and future.done():
            self._unfinished.discard(future)
            _discard(future)

    def close(self) -> None:
        try:
            self._pool.shutdown(wait=True, cancel_futures=True)
        finally:
            if self._processes is not None:  # its processes are ended and reaped here, whatever happened
                self._processes.shutdown(wait=True, cancel_futures=True)
        for future in self._unfinished:
            _discard(future)
        self._unfinished.clear()


def _discard(future: Future) -> None:
    if not future.cancelled() and future.exception() is None:
        future.result().discard()


@contextmanager
def _read_ahead(pending: list[tuple[int, readers.Entry]], limits: imaging.Limits,
                threads: int) -> Iterator[_ReadAhead | None]:
    """A _ReadAhead over `pending`, closed however the caller stops; None with one thread: then
    the caller does everything itself, one file at a time, as before worker threads existed."""
    if threads <= 1:
        yield None
        return
    ahead = _ReadAhead(pending, limits, threads, _worker_kind())
    try:
        yield ahead
    finally:
        ahead.close()


class _Batch:
    """A batch of an import's entries, each prepared ahead in a worker thread, judged in entry
    order by ingest_one as on their own, then stored in one transaction: the accepted images, every
    report line and the job's counters, together or not at all (`commit`).

    It stands for the catalogue while they are judged: the rows there with the same bytes or pixels
    as any of them (one query), each target's active photos (one count each), plus the images the
    batch accepted before, so a copy later in the batch is its duplicate, and a target that refuses
    past its quota refuses exactly the files past it, in entry order.
    """

    def __init__(self, job: ImportJob, entries: list[tuple[int, readers.Entry, Future | None]]):
        self.job = job
        prepared = [future.result() for _, _, future in entries if future is not None]
        shas = {p.sha256 for p in prepared if p.sha256}
        pixels = {p.processed.pixel_sha256 for p in prepared if p.processed is not None}
        self._by_sha: dict[str, Image] = {}
        self._by_pixels: dict[str, Image] = {}
        # Most files are new: their pks first (cheaper than whole rows), the rows of those that match.
        pks = []
        if shas or pixels:
            matches = Q(sha256__in=shas) | Q(pixel_sha256__in=pixels)
            pks = list(Image.objects.filter(matches).order_by().values_list("pk", flat=True))
        for image in Image.objects.filter(pk__in=pks) if pks else ():
            self._by_sha[image.sha256], self._by_pixels[image.pixel_sha256] = image, image
        self._counted: dict[tuple, int] = {}
        self.images: list[Image] = []
        self._kept: list[Prepared] = []
        self.items: list[ImportItem] = []
        self._outcomes: list[Result] = []

    def same_bytes(self, sha: str) -> Image | None:
        return self._by_sha.get(sha)

    def same_pixels(self, pixel_sha: str) -> Image | None:
        return self._by_pixels.get(pixel_sha)

    def active_images(self, category: Category, subcategory: Subcategory | None) -> int:
        key = (category.pk, subcategory.pk if subcategory is not None else None)
        if key not in self._counted:
            self._counted[key] = _active_images(category, subcategory)
        if subcategory is not None:
            ours = sum(image.subcategory_id == subcategory.pk for image in self.images)
        else:
            ours = sum(image.category_id == category.pk for image in self.images)
        return self._counted[key] + ours

    def add(self, image: Image, prepared: Prepared) -> None:
        """An accepted image, stored at `commit` (its files are written already)."""
        self.images.append(image)
        self._kept.append(prepared)
        self._by_sha[image.sha256], self._by_pixels[image.pixel_sha256] = image, image

    def record(self, position: int, entry: readers.Entry, result: Result) -> None:
        self.items.append(ImportItem(**_report_line(self.job, position, entry, result)))
        self._outcomes.append(result)

    def commit(self) -> bool:
        """Store the batch; False, storing nothing, if a row broke a unique constraint (another
        import stored the same bytes or pixels meanwhile, or another run of this one reported an
        entry): then its entries are to be judged again one at a time."""
        if not self.items:
            return True
        try:
            with transaction.atomic():
                Image.objects.bulk_create(self.images)
                ImportItem.objects.bulk_create(self.items)
                ImportJob.objects.filter(pk=self.job.pk).update(**_counters(self._outcomes))
        except IntegrityError:
            return False
        for prepared in self._kept:
            prepared.kept = True
        return True


COUNTER = {Outcome.ACCEPTED: "accepted", Outcome.DUPLICATE: "duplicates", Outcome.REFUSED: "refused"}
# Exceptions that are not one file's fault: the database or the media storage is failing. They stop
# the batch (the task retries it, then marks it interrupted, resumable); anything else raised while
# one file is judged becomes that file's refusal and the batch goes on.
INFRASTRUCTURE_ERRORS = (DatabaseError, StorageUnavailable)


class ImportStopped(Exception):
    """run_import reached its deadline between two files; the rest is left for a new run."""


def run_import(job_id: int, progress: Callable[[ImportJob], None] | None = None,
               deadline: float | None = None) -> ImportJob:
    """Run (or resume) an import: each entry gets exactly one report line.

    A retried or resumed run skips the entries already reported, so a worker that died mid-way
    finishes the batch without storing or reporting anything twice. One file can never stop the
    batch: whatever goes wrong while it is read or judged becomes its own refusal. `deadline`
    (time.monotonic()) makes the run stop between two files once it has passed and raise
    ImportStopped, the job still running, so that a new run takes over (the Celery task does).

    With worker threads, entries are stored BATCH_SIZE at a time (see _Batch); what stops the run
    part-way through a batch (the deadline, a crash) stores the entries of it judged before.
    """
    job = ImportJob.objects.select_related("source__default_licence", "licence", "category", "subcategory").get(pk=job_id)
    if job.status in (ImportStatus.DONE, ImportStatus.FAILED):
        return job
    now = timezone.now()
    ImportJob.objects.filter(pk=job.pk).update(
        status=ImportStatus.RUNNING, started_at=job.started_at or now, heartbeat_at=now, error="", error_code="",
        error_params={}, finished_at=None,
    )
    job.refresh_from_db()
    try:
        entries = list_entries(job)
    except (readers.ReaderError, OSError) as exc:
        return _finish(job, ImportStatus.FAILED, error=reason_of(exc) or str(exc))
    job.total = len(entries)
    job.heartbeat_at = timezone.now()
    job.save(update_fields=["total", "heartbeat_at"])
    done = set(job.items.values_list("position", flat=True))
    limits = imaging.Limits.from_settings()
    pending = [(position, entry) for position, entry in enumerate(entries) if position not in done]
    with _read_ahead(pending, limits, _worker_threads()) as ahead:
        batches = ahead.batches() if ahead is not None else ([(p, e, None)] for p, e in pending)
        judged = 0
        for entries in batches:
            batch = _Batch(job, entries) if ahead is not None else None
            decided = []
            try:
                for position, entry, future in entries:
                    # At least one entry per run, so that a chain of runs always gets to the end.
                    if deadline is not None and judged and time.monotonic() > deadline:
                        raise ImportStopped(f"import {job.pk} reached its deadline; the rest is left for a new run")
                    judged += _judge_one(job, position, entry, future, limits, batch)
                    decided.append((position, entry, future))
            finally:
                try:
                    if batch is not None and not batch.commit():
                        for position, entry, future in decided:  # one at a time, as with one thread
                            _judge_one(job, position, entry, future, limits)
                finally:
                    for _, _, future in entries:
                        if ahead is not None:
                            ahead.finished(future)
            if progress:
                job.refresh_from_db()
                progress(job)
    return _finish(job, ImportStatus.DONE)


def _judge_one(job: ImportJob, position: int, entry: readers.Entry, future: Future | None,
               limits: imaging.Limits, batch: _Batch | None = None) -> bool:
    """One entry's report line (and image): whatever goes wrong with the file becomes its refusal.
    False if another run of the import reported it meanwhile. With `batch`, both are the batch's
    to store."""

    def record(result: Result) -> None:
        if batch is not None:
            batch.record(position, entry, result)
        else:
            _record_item(job, position, entry, result)

    # An accepted image's report line is written in the transaction that inserts its row
    # (a crash between the two would otherwise report it as a duplicate of itself on resume).
    # What the entry's worker thread raised is raised here, and handled as if raised here.
    try:
        result = _ingest_entry(job, entry, limits, on_accept=record, ahead=future, batch=batch)
    except (MemoryError, BrokenProcessPool):
        raise  # the process (or a worker process) is in trouble: stop; the task retries, or a resume goes on
    except INFRASTRUCTURE_ERRORS:
        if ImportItem.objects.filter(job=job, position=position).exists():
            return False  # another run of this import reported it first
        raise
    except SoftTimeLimitExceeded:
        result = Result(Outcome.REFUSED, reason=Reason("time_limit"))
    except Exception as exc:  # noqa: BLE001 - one file's failure is that file's, never the batch's
        log.exception("import %s: unexpected error while judging %r", job.pk, entry.name)
        result = Result(Outcome.REFUSED, reason=Reason("unexpected_error", error=exc.__class__.__name__))
    if result.outcome != Outcome.ACCEPTED:
        record(result)
    return True


def _report_line(job: ImportJob, position: int, entry: readers.Entry, result: Result) -> dict:
    """The fields of an entry's ImportItem."""
    code, params = code_of(result.reason)
    return dict(job=job, position=position, name=entry.name[:1000], outcome=result.outcome,
                reason=result.reason[:1000], reason_code=code, reason_params=params,
                image=result.image, duplicate_of=result.duplicate_of)


def _counters(results: list[Result]) -> dict:
    """The job's counters moved by these entries' outcomes, and its heartbeat."""
    counters = {"processed": F("processed") + len(results), "heartbeat_at": timezone.now()}
    for outcome, field in COUNTER.items():
        if n := sum(r.outcome == outcome for r in results):
            counters[field] = F(field) + n
    if warnings := sum(r.outcome == Outcome.ACCEPTED and bool(r.reason) for r in results):
        counters["warnings"] = F("warnings") + warnings
    return counters


def _record_item(job: ImportJob, position: int, entry: readers.Entry, result: Result) -> None:
    """The entry's report line and the job's counters, together; a line another run of the same
    import already wrote is left as it is (and counted once)."""
    try:
        with transaction.atomic():
            ImportItem.objects.create(**_report_line(job, position, entry, result))
            ImportJob.objects.filter(pk=job.pk).update(**_counters([result]))
    except IntegrityError:
        if result.outcome == Outcome.ACCEPTED:
            raise  # rolls the image row back with it; ingest_one removes its files


def _finish(job: ImportJob, status: str, error: Reason | str = "") -> ImportJob:
    code, params = code_of(error)
    ImportJob.objects.filter(pk=job.pk).update(status=status, error=error[:5000], error_code=code, error_params=params,
                                               finished_at=timezone.now())
    if status != ImportStatus.INTERRUPTED:  # an interrupted import keeps its staged files for a resume
        _remove_staging(job)
    job.refresh_from_db()
    _announce_images(job)
    return job


def _announce_images(job: ImportJob) -> None:
    """Tell the apps built on the catalogue (labeling's open projects) that the import stored
    photos, once its state is committed. Also when it failed or was interrupted part-way: the
    photos it stored are in the catalogue either way; a resumed import announces again at its end
    and receivers add only what is new."""
    if job.accepted:
        transaction.on_commit(lambda: _send_images_added(job.pk))


def _send_images_added(job_id: int) -> None:
    """A receiver that fails (say, the broker is down when labeling queues its task) is logged and
    costs the import nothing: its photos are stored, and saving a project's settings adds them."""
    for receiver, result in images_added.send_robust(sender=ImportJob, import_job_id=job_id):
        if isinstance(result, Exception):
            log.error("import %s: %r failed on images_added", job_id, receiver, exc_info=result)


def _remove_staging(job: ImportJob) -> None:
    p = job.params
    keys = [s["key"] for s in p.get("staged", [])]
    if p.get("manifest_key"):
        keys.append(p["manifest_key"])
    _delete_files(keys)
    if p.get("staging_prefix") and isinstance(default_storage, FileSystemStorage):  # S3 has no folders
        try:
            os.rmdir(default_storage.path(p["staging_prefix"]))  # only once empty
        except OSError:
            pass


def fail_import(job_id: int, error: Reason | str) -> None:
    """The import cannot go on at all (its files are gone, or it was given up): staged files removed."""
    job = ImportJob.objects.get(pk=job_id)
    if job.status not in (ImportStatus.DONE, ImportStatus.FAILED):
        _finish(job, ImportStatus.FAILED, error=error)


def interrupt_import(job_id: int, error: Reason | str) -> ImportJob:
    """The run stopped before the end (worker lost, time limit, Ctrl-C, storage or database down):
    the import keeps its report and staged files, and `resume_import` finishes it."""
    job = ImportJob.objects.get(pk=job_id)
    if job.status in (ImportStatus.QUEUED, ImportStatus.RUNNING):
        job = _finish(job, ImportStatus.INTERRUPTED, error=error)
    return job


class NotResumable(Exception):
    """Only an interrupted import can be resumed."""


def resume_import(job: ImportJob, *, enqueue: bool = True) -> ImportJob:
    """Queue an interrupted import again; the new run reads only the entries not yet reported."""
    updated = ImportJob.objects.filter(pk=job.pk, status=ImportStatus.INTERRUPTED).update(
        status=ImportStatus.QUEUED, error="", error_code="", error_params={}, finished_at=None,
    )
    job.refresh_from_db()
    if not updated:
        raise NotResumable(f"Import {job.pk} is {job.get_status_display().lower()}; only an interrupted import can be resumed.")
    if enqueue:
        from .tasks import run_import_task

        transaction.on_commit(lambda: run_import_task.delay(job.pk))
    return job


def sweep_stalled_imports() -> int:
    """Mark running imports that show no sign of life for INGEST_STALE_SECONDS as interrupted
    (the worker or command running them was killed). Returns how many."""
    stale = settings.INGEST["STALE_SECONDS"]
    cutoff = timezone.now() - timedelta(seconds=stale)
    stalled = ImportJob.objects.filter(status=ImportStatus.RUNNING).filter(
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff)
    )
    message = Reason("stalled", minutes=stale // 60)
    return stalled.update(status=ImportStatus.INTERRUPTED, error=message, error_code=message.code,
                          error_params=message.params, finished_at=timezone.now())


_last_stall_sweep: float | None = None


def sweep_stalled_imports_now_and_then() -> None:
    """sweep_stalled_imports at most once a minute per process: the pages and the API that show
    imports call it, so a dead worker's import is marked without a scheduler."""
    global _last_stall_sweep
    now = time.monotonic()
    if _last_stall_sweep is not None and now - _last_stall_sweep < 60:
        return
    _last_stall_sweep = now
    sweep_stalled_imports()


def save_source(*, name: str, kind: str, default_licence: Licence, description: str = "", location: dict | None = None,
                user=None, instance: Source | None = None) -> Source:
    source = instance or Source(created_by=user)
    source.name, source.kind, source.default_licence = name, kind, default_licence
    source.description, source.location = description, location or {}
    source.full_clean(exclude=["created_by"])  # sources made by commands or migrations have no creator
    source.save()
    return source
