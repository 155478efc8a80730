"""Read queries for the datasets app."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from django.db.models import Count, Exists, OuterRef

from .models import Category, Image, ImageStatus, SnapshotComment, SnapshotImage, Split, Subcategory


@dataclass
class QuotaRow:
    id: int
    slug: str
    name: str
    quota: int
    collected: int
    labeled: int | None
    is_active: bool
    subcategories: list[QuotaRow] = field(default_factory=list)
    uncategorised: int = 0  # images in the category with no subcategory

    @property
    def percent(self) -> int:
        return min(100, round(100 * self.collected / self.quota)) if self.quota else 0

    @property
    def over(self) -> bool:
        return bool(self.quota) and self.collected > self.quota

    @property
    def full(self) -> bool:
        return bool(self.quota) and self.collected >= self.quota


# Who counts labeled images: datasets knows nothing of labeling (labeling depends on datasets, not
# the reverse), so labeling registers its counter when it loads (labeling.apps).
_labeled_counts_provider: Callable[[], dict[tuple[int | None, int | None], int]] | None = None


def register_labeled_counts(provider: Callable[[], dict[tuple[int | None, int | None], int]] | None) -> None:
    """Set the function that counts images with at least one comment set, per (category,
    subcategory); None removes it (the dashboard then shows no labeled column)."""
    global _labeled_counts_provider
    _labeled_counts_provider = provider


def labeled_counts() -> dict[tuple[int | None, int | None], int] | None:
    """Images with at least one comment, per (category, subcategory): None while no app counts them."""
    return _labeled_counts_provider() if _labeled_counts_provider is not None else None


def quota_dashboard(include_retired: bool = False) -> tuple[list[QuotaRow], dict]:
    """Target, collected and labeled for every category and subcategory, in two queries.

    One GROUP BY over the (category, subcategory, status) index counts every active image; the rest is in Python
    over a few dozen rows, so the page stays fast however many images there are.
    """
    counts: dict[tuple[int | None, int | None], int] = {}
    withdrawn = 0
    for r in Image.objects.order_by().values("category_id", "subcategory_id", "status").annotate(n=Count("*")):
        if r["status"] == ImageStatus.ACTIVE:  # only active photos count towards a quota
            counts[(r["category_id"], r["subcategory_id"])] = r["n"]
        else:
            withdrawn += r["n"]
    labeled = labeled_counts()
    cats = Category.objects.all() if include_retired else Category.objects.filter(is_active=True)
    subs = Subcategory.objects.all() if include_retired else Subcategory.objects.filter(is_active=True)
    subs_by_cat: dict[int, list[Subcategory]] = {}
    for s in subs.order_by("position", "id"):
        subs_by_cat.setdefault(s.category_id, []).append(s)
    rows = []
    for c in cats:
        sub_rows = [
            QuotaRow(
                s.id, s.slug, s.name, s.quota, counts.get((c.id, s.id), 0),
                None if labeled is None else labeled.get((c.id, s.id), 0), s.is_active,
            )
            for s in subs_by_cat.get(c.id, [])
        ]
        collected = sum(n for (cid, _), n in counts.items() if cid == c.id)
        lab = None if labeled is None else sum(n for (cid, _), n in labeled.items() if cid == c.id)
        rows.append(
            QuotaRow(c.id, c.slug, c.name, c.quota, collected, lab, c.is_active, sub_rows,
                     uncategorised=counts.get((c.id, None), 0))
        )
    totals = {
        "quota": sum(r.quota for r in rows),
        "collected": sum(counts.values()),
        "uncategorised": counts.get((None, None), 0),
        "withdrawn": withdrawn,  # retired or excluded photos, counted nowhere else
        "labeled": None if labeled is None else sum(labeled.values()),
    }
    return rows, totals


# The grid's and the API's status filter: one status, or every photo.
STATUS_ALL = "all"


def images(*, category: str | None = None, subcategory: str | None = None, source: int | None = None,
           status: str | None = ImageStatus.ACTIVE):
    """The catalogue: active photos unless `status` names another (or STATUS_ALL / None: every one)."""
    qs = Image.objects.select_related("category", "subcategory", "source", "licence")
    if status and status != STATUS_ALL:
        qs = qs.filter(status=status)
    if category:
        qs = qs.filter(category__slug=category)
    if subcategory:
        qs = qs.filter(subcategory__slug=subcategory)
    if source:
        qs = qs.filter(source_id=source)
    return qs


# ---------------------------------------------------------------- snapshots


def snapshot_counts(snapshot) -> list[dict]:
    """Photos and comments of a snapshot per split and category: [{split, category, photos,
    comments}], ordered by split (train, val, test) then category slug. Two GROUP BY queries."""
    photos = _grouped(SnapshotImage.objects.filter(snapshot=snapshot))
    comments = _grouped(SnapshotComment.objects.filter(snapshot=snapshot))
    order = {s: i for i, s in enumerate(Split.values)}
    keys = sorted(set(photos) | set(comments), key=lambda k: (order.get(k[0], 9), k[1]))
    return [{"split": s, "category": c, "photos": photos.get((s, c), 0), "comments": comments.get((s, c), 0)}
            for s, c in keys]


def _grouped(qs) -> dict[tuple[str, str], int]:
    return {(r["split"], r["category_slug"]): r["n"]
            for r in qs.order_by().values("split", "category_slug").annotate(n=Count("pk"))}


def snapshot_diff(old, new) -> list[dict]:
    """What changed from snapshot `old` to `new` (any two, usually two versions of one name):
    photos and comments added and removed, per split and category: [{split, category,
    photos_added, photos_removed, comments_added, comments_removed}]. A photo that moved from one
    split to another counts as removed from the old split and added to the new one; a comment
    likewise. Added rows are counted under their split and category in `new`, removed ones under
    theirs in `old`. Four GROUP BY queries over the snapshots' (snapshot, id) indexes."""
    def changed(model, key: str, a, b) -> dict:
        others = model.objects.filter(snapshot=b, split=OuterRef("split"), **{key: OuterRef(key)})
        return _grouped(model.objects.filter(snapshot=a).exclude(Exists(others)))

    parts = {
        "photos_added": changed(SnapshotImage, "image_id", new, old),
        "photos_removed": changed(SnapshotImage, "image_id", old, new),
        "comments_added": changed(SnapshotComment, "comment_id", new, old),
        "comments_removed": changed(SnapshotComment, "comment_id", old, new),
    }
    order = {s: i for i, s in enumerate(Split.values)}
    keys = sorted({k for counts in parts.values() for k in counts}, key=lambda k: (order.get(k[0], 9), k[1]))
    return [{"split": s, "category": c, **{name: counts.get((s, c), 0) for name, counts in parts.items()}}
            for s, c in keys]


# ---------------------------------------------------------------- exports


def snapshot_exports(snapshot, limit: int = 20, only=None) -> list:
    """The snapshot's exports, newest first (or just `only`), each with `can_resume`,
    `can_cancel` and `stalled` set for the page."""
    from .export.services import can_resume, is_stalled
    from .models import ACTIVE_EXPORT_STATUSES, Export

    rows = Export.objects.filter(snapshot=snapshot).select_related("created_by")
    if only is not None:
        rows = rows.filter(pk=only.pk)
    exports = list(rows[:limit])
    for export in exports:
        export.stalled = is_stalled(export)
        export.can_resume = can_resume(export)
        export.can_cancel = export.status in ACTIVE_EXPORT_STATUSES
    return exports


def export_files(export, *, api: bool = False) -> list[dict]:
    """A done export's files with a download link each ({"path", "size", "url", "folder"}):
    signed for S3 (valid EXPORT["SIGNED_URL_SECONDS"]), the export-file page (or, with `api`, the
    API route that takes a token) for a local folder.
    Folder is "" for the top-level files, else the shard folder ("train", "eval/clip_benchmark/test")."""
    from django.urls import reverse

    from .export.targets import S3Target
    from .models import ExportStatus

    if export.status != ExportStatus.DONE:
        return []
    s3 = S3Target(export.folder) if export.on_s3 else None
    rows = []
    for f in export.files:
        path = f["path"]
        url = s3.signed_url(path) if s3 else reverse("api:export-file" if api else "export-file", args=[export.pk, path])
        folder, _, name = path.rpartition("/")
        rows.append({"path": path, "name": name, "size": f["size"], "sha256": f["sha256"], "url": url,
                     "folder": folder})
    return rows
