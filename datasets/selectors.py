"""Read queries for the datasets app."""
from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db.models import Count, Exists, F, OuterRef, Value
from django.db.models.functions import Length, Replace

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


# The length histograms' bucket widths (characters): the smallest that needs at most
# LENGTH_BUCKETS buckets from the shortest comment to the longest.
LENGTH_BUCKETS = 12
# What the database leaves out of a comment's length: spaces and line breaks (the labeler page's
# text boxes give "\n"). Each REPLACE costs a pass over every text (SQLite: ~0.1 s a pass for
# 150,000 comments), so tabs and carriage returns, rare in comments, are counted.
WHITESPACE = (" ", "\n")
_NICE_WIDTHS = (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000)


def _share(rows: list[dict], total: int) -> list[dict]:
    """Adds `percent` (of `total`, one decimal) and `width` (of the largest row, for a bar)."""
    top = max((r["n"] for r in rows), default=0)
    for r in rows:
        r["percent"] = round(100 * r["n"] / total, 1) if total else 0.0
        r["width"] = round(100 * r["n"] / top, 1) if top else 0.0
    return rows


def _histogram(lengths: Counter) -> dict:
    """{count, min, max, mean, median, buckets: [{low, high, n, percent, width}]} of a Counter
    {length: comments}."""
    total = sum(lengths.values())
    if not total:
        return {"count": 0, "min": 0, "max": 0, "mean": 0, "median": 0, "buckets": []}
    lo, hi = min(lengths), max(lengths)
    width = next((w for w in _NICE_WIDTHS if math.ceil((hi - lo + 1) / w) <= LENGTH_BUCKETS), _NICE_WIDTHS[-1])
    start = lo - lo % width
    counts: Counter = Counter()
    for value, n in lengths.items():
        counts[(value - start) // width] += n
    buckets = [{"low": start + i * width, "high": start + (i + 1) * width - 1, "n": counts.get(i, 0)}
               for i in range((hi - start) // width + 1)]
    seen, median = 0, lo
    for value in sorted(lengths):
        seen += lengths[value]
        if seen * 2 >= total:
            median = value
            break
    return {"count": total, "min": lo, "max": hi, "width": width,
            "mean": round(sum(v * n for v, n in lengths.items()) / total, 1), "median": median,
            "buckets": _share(buckets, total)}


def snapshot_stats(snapshot, *, length: Callable[[str], int] | None = None, top_labelers: int = 10) -> dict:
    """The figures of a snapshot's page and card, from its frozen rows, in four GROUP BY queries
    (photos; comments by split, category, type and guideline version; lengths; labelers):

    - `splits`: snapshot_counts() rows with the category's name, and `split_totals` per split
    - `categories`: [{slug, name, photos, comments, percent, width}] (comments' share)
    - `types`: [{slug, n, percent, width}] comments per comment type
    - `category_types`: [{slug, name, counts}]: per category, its comments of each of `types`
    - `lengths`: {type slug: _histogram()} comment lengths per comment type. Without `length`
      the database counts them: LENGTH of the text without spaces and line breaks, grouped, so
      no text is read into Python. That counts code points: the same as
      labeling.text.count_length (graphemes, as a reader counts) for Hangul syllables, jamo and
      ASCII, but an emoji sequence (ZWJ, skin tone, variation selector) or a letter with
      combining marks counts more than one, and invisible format characters count. With
      `length` (a function of the text, e.g. count_length) every text is read and counted in
      Python: exact, but slow: 150,000 comments take 2.3 s against 0.47 s for all the figures
      counted in the database (bench/snapshot_stats.py, PostgreSQL).
    - `labelers`: the `top_labelers` pseudonymous labelers with the most comments, then one row
      for the others ({labeler, n, percent, width, others}); `labeler_count`
    - `guideline_versions`: [{version, n}]; `licences`: [{code, n, attribution_required}]
    - `photos`, `comments`: totals
    `length` is passed in because this app may not import labeling's text rules."""
    images = SnapshotImage.objects.filter(snapshot=snapshot).order_by()
    comments = SnapshotComment.objects.filter(snapshot=snapshot).order_by()
    # Photos: one GROUP BY gives the counts per split and category, the names and the licences.
    photo_counts: Counter = Counter()
    names: dict[str, str] = {}
    licences: Counter = Counter()
    for r in images.values("split", "category_slug", "category_name", "licence_code", "attribution_required") \
            .annotate(n=Count("pk")):
        photo_counts[(r["split"], r["category_slug"])] += r["n"]
        names.setdefault(r["category_slug"], r["category_name"])
        licences[(r["licence_code"], r["attribution_required"])] += r["n"]
    # Comments: one GROUP BY for the counts per split, category, type and guideline version.
    comment_counts: Counter = Counter()
    types_n: Counter = Counter()
    category_types: Counter = Counter()
    versions: Counter = Counter()
    for r in comments.values("split", "category_slug", "comment_type", "guideline_version").annotate(n=Count("pk")):
        comment_counts[(r["split"], r["category_slug"])] += r["n"]
        types_n[r["comment_type"]] += r["n"]
        category_types[(r["category_slug"], r["comment_type"])] += r["n"]
        versions[r["guideline_version"]] += r["n"]
    types = [{"slug": slug, "n": n} for slug, n in sorted(types_n.items(), key=lambda kv: (-kv[1], kv[0]))]

    order = {s: i for i, s in enumerate(Split.values)}
    keys = sorted(set(photo_counts) | set(comment_counts), key=lambda k: (order.get(k[0], 9), k[1]))
    splits = [{"split": s, "category": c, "name": names.get(c, ""), "photos": photo_counts.get((s, c), 0),
               "comments": comment_counts.get((s, c), 0)} for s, c in keys]
    split_totals: dict[str, dict] = {}
    per_category: dict[str, dict] = {}
    for row in splits:
        total = split_totals.setdefault(row["split"], {"split": row["split"], "photos": 0, "comments": 0})
        total["photos"] += row["photos"]
        total["comments"] += row["comments"]
        cat = per_category.setdefault(row["category"], {"slug": row["category"], "name": row["name"],
                                                        "photos": 0, "n": 0})
        cat["photos"] += row["photos"]
        cat["n"] += row["comments"]
    photos = sum(t["photos"] for t in split_totals.values())
    n_comments = sum(t["comments"] for t in split_totals.values())

    per_type_lengths: dict[str, Counter] = defaultdict(Counter)
    if length is None:
        chars = F("text")
        for blank in WHITESPACE:
            chars = Replace(chars, Value(blank), Value(""))
        rows = comments.annotate(chars=Length(chars)).values("comment_type", "chars").annotate(n=Count("pk"))
        for slug, n_chars, n in rows.values_list("comment_type", "chars", "n"):
            per_type_lengths[slug][n_chars] += n
    else:
        for slug, text in comments.values_list("comment_type", "text").iterator(chunk_size=5000):
            per_type_lengths[slug][length(text)] += 1

    by_labeler = list(comments.values("labeler").annotate(n=Count("pk")).order_by("-n", "labeler"))
    labelers = [{"labeler": r["labeler"], "n": r["n"], "others": 0} for r in by_labeler[:top_labelers]]
    rest = by_labeler[top_labelers:]
    if rest:
        labelers.append({"labeler": "", "n": sum(r["n"] for r in rest), "others": len(rest)})

    return {
        "photos": photos,
        "comments": n_comments,
        "splits": splits,
        "split_totals": [split_totals[s] for s in Split.values if s in split_totals],
        "categories": _share(sorted(per_category.values(), key=lambda c: (-c["n"], c["slug"])), n_comments),
        "types": _share(types, n_comments),
        "category_types": [{"slug": c["slug"], "name": c["name"],
                            "counts": [category_types.get((c["slug"], t["slug"]), 0) for t in types]}
                           for c in sorted(per_category.values(), key=lambda c: (-c["n"], c["slug"]))],
        "lengths": {slug: _histogram(per_type_lengths[slug]) for slug in sorted(per_type_lengths)},
        "labelers": _share(labelers, n_comments),
        "labeler_count": len(by_labeler),
        "guideline_versions": [{"version": v, "n": n}
                               for v, n in sorted(versions.items(), key=lambda kv: (kv[0] is None, kv[0] or 0))],
        "licences": [{"licence_code": code, "attribution_required": required, "n": n}
                     for (code, required), n in sorted(licences.items(), key=lambda kv: (-kv[1], kv[0][0]))],
    }


def snapshot_split_totals(snapshots) -> dict[int, dict[str, int]]:
    """Photos per split of each of `snapshots`: {snapshot id: {split: photos}}, one GROUP BY."""
    out: dict[int, dict[str, int]] = {}
    rows = (SnapshotImage.objects.filter(snapshot__in=[s.pk for s in snapshots]).order_by()
            .values("snapshot_id", "split").annotate(n=Count("pk")))
    for r in rows:
        out.setdefault(r["snapshot_id"], {})[r["split"]] = r["n"]
    return out


def snapshot_category_names(snapshots) -> dict[str, str]:
    """{category slug: name} as frozen in `snapshots` (the later one's name wins)."""
    names: dict[str, str] = {}
    for s in sorted(snapshots, key=lambda s: s.pk):
        names.update(SnapshotImage.objects.filter(snapshot=s).order_by()
                     .values_list("category_slug", "category_name").distinct())
    return names


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
