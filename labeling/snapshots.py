"""Freezing snapshots: labeling's comments into datasets' frozen rows (Snapshot, SnapshotImage,
SnapshotComment). What is in comes from `labeling.selectors.snapshot_candidates` alone; the
splits from `datasets.splits.assign_splits`. A version never changes once frozen (the rows
refuse saves: datasets.models.FrozenRow); archiving is datasets.services.archive_snapshot."""
from __future__ import annotations

import math
from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext_lazy as _

from datasets.models import (
    Category,
    Snapshot,
    SnapshotComment,
    SnapshotImage,
    SnapshotStatus,
    Split,
    attribution_text,
)
from datasets.splits import DEFAULT_RATIOS, SplitRow, assign_splits

from .models import Project
from .selectors import SnapshotCandidates, snapshot_candidates

BATCH = 2000
MAX_SEED = 2**31 - 1
PSEUDONYM_SALT = "datasets.snapshot.labeler"


def labeler_pseudonym(user_id) -> str:
    """A labeler's id in snapshots: a keyed hash of the user id (key derived from SECRET_KEY), the
    same in every snapshot, telling nothing of who it is without the key. 16 hex digits."""
    return salted_hmac(PSEUDONYM_SALT, str(user_id), algorithm="sha256").hexdigest()[:16]


def author_pseudonym(user_id, external_slug: str | None) -> str:
    """The `labeler` column of a frozen comment: the labeler's pseudonym, or for a set imported
    from elsewhere (labeling.external) `ext:<source slug>`: stable, readable, and never a person's
    (a labeler's is 16 hex digits, never holding a colon)."""
    if user_id is None:
        return f"ext:{external_slug or 'unknown'}"
    return labeler_pseudonym(user_id)


def _check_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": _("Give the snapshot a name.")})
    if len(name) > 100:
        raise ValidationError({"name": _("A name has at most 100 characters.")})
    return name


def _projects(projects) -> list[Project]:
    ids = [getattr(p, "pk", p) for p in projects or []]
    if not ids:
        raise ValidationError({"projects": _("Choose at least one project.")})
    found = list(Project.objects.filter(pk__in=ids).order_by("pk"))
    missing = sorted(set(ids) - {p.pk for p in found})
    if missing:
        raise ValidationError({"projects": _("No such project: %(ids)s.") % {"ids": ", ".join(map(str, missing))}})
    return found


def _categories(slugs) -> list[Category]:
    slugs = list(dict.fromkeys(slugs or []))
    found = list(Category.objects.filter(slug__in=slugs).order_by("slug"))
    missing = sorted(set(slugs) - {c.slug for c in found})
    if missing:
        raise ValidationError({"categories": _("No such category: %(slugs)s.") % {"slugs": ", ".join(missing)}})
    return found


def _check_min_sets(min_sets):
    if min_sets is not None and not (isinstance(min_sets, int) and 1 <= min_sets <= 1000):
        raise ValidationError({"min_sets": _("Give a whole number of comment sets from 1 to 1000.")})


def _check_split_options(ratios, counts, seed) -> tuple[dict | None, dict | None]:
    if not (isinstance(seed, int) and 0 <= seed <= MAX_SEED):
        raise ValidationError({"seed": _("Give a seed from 0 to %(max)d.") % {"max": MAX_SEED}})
    if ratios is not None and counts is not None:
        raise ValidationError({"ratios": _("Give ratios or counts, not both.")})
    if counts is not None:
        clean = {}
        for split in (Split.VAL, Split.TEST):
            value = counts.get(split, 0)
            if not (isinstance(value, int) and 0 <= value <= 10**9):
                raise ValidationError({"counts": _("Counts of val and test photos are whole numbers, 0 or more.")})
            clean[str(split)] = value
        return None, clean
    ratios = dict(DEFAULT_RATIOS) if ratios is None else ratios
    try:
        clean = {str(s): float(ratios.get(s, 0)) for s in (Split.TRAIN, Split.VAL, Split.TEST)}
    except (TypeError, ValueError, AttributeError):
        clean = None
    if (clean is None or not all(math.isfinite(v) and 0 <= v <= 1 for v in clean.values())
            or abs(sum(clean.values()) - 1) > 1e-6):
        raise ValidationError({"ratios": _("Ratios of train, val and test are fractions from 0 to 1 that add up to 1.")})
    return clean, None


def preview(projects, *, categories=(), comment_types=(), min_sets: int | None = None) -> dict:
    """What a freeze with these parameters would hold now: {"photos", "comments", "min_sets"}."""
    candidates = _candidates(projects, categories, comment_types, min_sets)
    return {"photos": candidates.images.count(), "comments": candidates.comments.count(),
            "min_sets": candidates.min_sets}


def _candidates(projects, categories, comment_types, min_sets) -> SnapshotCandidates:
    _check_min_sets(min_sets)
    return snapshot_candidates(_projects(projects), categories=_categories(categories),
                               comment_types=list(dict.fromkeys(comment_types or [])), min_sets=min_sets)


def _kept_splits(keep_splits_from) -> tuple[Snapshot | None, dict[str, str]]:
    if keep_splits_from is None:
        return None, {}
    pk = getattr(keep_splits_from, "pk", keep_splits_from)
    kept = Snapshot.objects.filter(pk=pk).first()
    if kept is None:
        raise ValidationError({"keep_splits_from": _("No such snapshot: %(id)s.") % {"id": pk}})
    fixed = dict(SnapshotImage.objects.filter(snapshot=kept, split__in=[Split.VAL, Split.TEST])
                 .values_list("image_id", "split"))
    return kept, {str(k): v for k, v in fixed.items()}


def freeze_snapshot(name: str, *, projects, categories: Iterable[str] = (), comment_types: Iterable[str] = (),
                    min_sets: int | None = None, seed: int = 0, ratios: dict | None = None,
                    counts: dict | None = None, keep_splits_from=None, created_by=None,
                    duplicate_groups: Iterable[Iterable[str]] | None = None, batch_size: int = BATCH) -> Snapshot:
    """Freeze `<name> v<next>`: every photo snapshot_candidates() selects now, with its comments,
    copied into the snapshot's own rows and split (datasets.splits). Categories and comment types
    are slugs (empty: all). `duplicate_groups`: sets of image ids that must share a split (the
    hook for curation's near-duplicates; same pixels are grouped always). Nothing matching is a
    ValidationError and nothing is written; the whole freeze is one transaction."""
    name = _check_name(name)
    ratios, counts = _check_split_options(ratios, counts, seed)
    project_rows = _projects(projects)
    candidates = _candidates(project_rows, categories, comment_types, min_sets)
    kept, fixed = _kept_splits(keep_splits_from)
    with transaction.atomic():
        images = list(candidates.images.order_by("pk").values(
            "pk", "file", "sha256", "pixel_sha256", "width", "height", "category__slug", "category__name",
            "subcategory__slug", "subcategory__name", "licence__code", "licence__name", "licence__url",
            "licence__attribution_required", "title", "author", "original_url", "source__name",
        ))
        if not images:
            raise ValidationError(_("Nothing matches: no photo of these projects and categories has enough "
                                    "submitted comment sets (or all are excluded). Nothing was frozen."))
        if counts is not None and counts["val"] + counts["test"] > len(images):
            raise ValidationError({"counts": _("Photos that match: %(n)d, fewer than the val and test counts ask for.")
                                   % {"n": len(images)}})
        splits = assign_splits(
            [SplitRow(str(i["pk"]), i["sha256"], i["pixel_sha256"], i["category__slug"] or "") for i in images],
            seed=seed, ratios=ratios, counts=counts, fixed=fixed, duplicate_groups=duplicate_groups,
        )
        # Every comment of the counted sets, streamed; those of the photos frozen above are kept.
        comments = candidates.set_comments.order_by("pk").values_list(
            "pk", "assignment__image_id", "text", "comment_type__slug", "guideline_version", "assignment__labeler_id",
            "assignment__external_source__slug",
        )
        version = (Snapshot.objects.filter(name=name).aggregate(v=Max("version"))["v"] or 0) + 1
        try:
            with transaction.atomic():
                snapshot = Snapshot.objects.create(
                    name=name, version=version, status=SnapshotStatus.FROZEN, created_by=created_by,
                    projects=[{"id": p.pk, "name": p.name} for p in project_rows],
                    categories=sorted(dict.fromkeys(categories or [])),
                    comment_types=sorted(dict.fromkeys(comment_types or [])),
                    min_sets=candidates.min_sets, seed=seed, ratios=ratios, counts=counts, kept_from=kept,
                    licences={i["licence__code"]: {"name": i["licence__name"], "url": i["licence__url"]}
                              for i in sorted(images, key=lambda i: i["licence__code"])},
                )
        except IntegrityError:
            raise ValidationError({"name": _("Another version of this snapshot is being frozen right now; "
                                             "try again.")}) from None
        category_of = {}
        rows = []
        for i in images:
            image_id = str(i["pk"])
            category_of[image_id] = i["category__slug"] or ""
            rows.append(SnapshotImage(
                snapshot=snapshot, image_id=i["pk"], split=splits[image_id], file=str(i["file"]),
                sha256=i["sha256"], pixel_sha256=i["pixel_sha256"], width=i["width"], height=i["height"],
                category_slug=i["category__slug"] or "", category_name=i["category__name"] or "",
                subcategory_slug=i["subcategory__slug"] or "", subcategory_name=i["subcategory__name"] or "",
                licence_code=i["licence__code"], attribution_required=i["licence__attribution_required"],
                attribution=attribution_text(i["title"], i["author"], i["original_url"], i["licence__name"]),
                source_name=i["source__name"],
            ))
        SnapshotImage.objects.bulk_create(rows, batch_size=batch_size)
        n_comments = 0
        batch = []
        pseudonyms: dict = {}
        for pk, image_id, text, slug, guideline_version, labeler_id, external in comments.iterator(chunk_size=batch_size):
            key = str(image_id)
            if key not in splits:  # not a photo of this version
                continue
            author = labeler_id if labeler_id is not None else ("ext", external)
            if author not in pseudonyms:
                pseudonyms[author] = author_pseudonym(labeler_id, external)
            batch.append(SnapshotComment(
                snapshot=snapshot, comment_id=pk, image_id=image_id, split=splits[key], category_slug=category_of[key],
                text=text, comment_type=slug, guideline_version=guideline_version, labeler=pseudonyms[author],
            ))
            if len(batch) >= batch_size:
                SnapshotComment.objects.bulk_create(batch, batch_size=batch_size)
                n_comments += len(batch)
                batch = []
        SnapshotComment.objects.bulk_create(batch, batch_size=batch_size)
        n_comments += len(batch)
        Snapshot.objects.filter(pk=snapshot.pk).update(image_count=len(rows), comment_count=n_comments)
    snapshot.image_count, snapshot.comment_count = len(rows), n_comments
    return snapshot
