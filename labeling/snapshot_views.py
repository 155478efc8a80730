"""Snapshot pages (mounted at /snapshots/): the list, the create form with a live count, a
snapshot's figures and card, archiving, and the diff between two versions.

Planners, engineers and admins; labelers get 403. The freeze is labeling.snapshots'
(freeze_snapshot, run in the request: about 13 s for 50,000 photos), archiving datasets.services';
every figure comes from datasets.selectors (GROUP BY queries over the frozen rows).
"""
from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from accounts.models import Role
from accounts.permissions import role_required
from config.forms import add_service_errors
from datasets import selectors as dataset_selectors
from datasets import services as dataset_services
from datasets.models import Snapshot, SnapshotStatus, Split

from . import snapshots
from .models import Project
from .snapshot_forms import DiffForm, SnapshotForm

SNAPSHOT_ROLES = (Role.PLANNER, Role.ENGINEER)
TOP_LABELERS = 10
SPLIT_NAMES = dict(Split.choices)


def _snapshot(pk: int) -> Snapshot:
    return get_object_or_404(Snapshot.objects.select_related("created_by", "kept_from"), pk=pk)


@role_required(*SNAPSHOT_ROLES)
def snapshot_list(request):
    snapshots_ = list(Snapshot.objects.select_related("created_by", "kept_from").order_by("name", "-version"))
    groups: list[dict] = []
    for s in snapshots_:
        if not groups or groups[-1]["name"] != s.name:
            groups.append({"name": s.name, "rows": []})
        groups[-1]["rows"].append(s)
    splits = dataset_selectors.snapshot_split_totals(snapshots_)
    for s in snapshots_:
        s.split_cells = [splits.get(s.pk, {}).get(value, 0) for value in Split.values]
    return render(request, "labeling/snapshots/list.html", {"groups": groups, "splits": Split.choices})


@role_required(*SNAPSHOT_ROLES)
def snapshot_new(request):
    source = None
    if request.method == "POST":
        form = SnapshotForm(request.POST)
    else:
        from_id = request.GET.get("from", "")
        source = Snapshot.objects.filter(pk=int(from_id)).first() if from_id.isdigit() and len(from_id) < 19 else None
        form = SnapshotForm(initial=SnapshotForm.initial_from(source) if source else None)
    count = None
    if request.method == "POST" and form.is_valid():
        try:
            if request.POST.get("action") == "count":
                count = snapshots.preview(**form.preview_args())
            else:
                snapshot = snapshots.freeze_snapshot(created_by=request.user, **form.freeze_args())
                messages.success(request, _("%(label)s frozen: %(photos)s photos, %(comments)s comments.") % {
                    "label": snapshot.label, "photos": f"{snapshot.image_count:,}",
                    "comments": f"{snapshot.comment_count:,}"})
                return redirect("snapshot-page", snapshot.pk)
        except ValidationError as exc:
            add_service_errors(form, exc)
    overlaps = list(Project.objects.order_by("name").values_list("pk", "name", "overlap"))
    return render(request, "labeling/snapshots/new.html", {
        "form": form, "source": source, "count": count, "overlaps": overlaps,
    })


def _labels(rows: list[dict], names: dict[str, str]) -> list[dict]:
    for row in rows:
        row["name"] = names.get(row["category"], "")
        row["split_name"] = SPLIT_NAMES.get(row["split"], row["split"])
    return rows


def _bars(rows: list[dict], label) -> list[dict]:
    """Rows of a bar chart: {label, n, percent, width} from a selector's rows."""
    return [{"label": label(r), "n": r["n"], "percent": r["percent"], "width": r["width"]} for r in rows]


def _split_table(stats: dict) -> dict:
    """Photos and comments per category (rows) and split (columns), with totals."""
    splits = [t["split"] for t in stats["split_totals"]]
    cells: dict[str, dict] = {}
    for r in stats["splits"]:
        row = cells.setdefault(r["category"], {"slug": r["category"], "name": r["name"], "cells": {},
                                               "photos": 0, "comments": 0})
        row["cells"][r["split"]] = r
        row["photos"] += r["photos"]
        row["comments"] += r["comments"]
    rows = sorted(cells.values(), key=lambda r: (-r["photos"], r["slug"]))
    for row in rows:
        row["cells"] = [row["cells"].get(s, {"photos": 0, "comments": 0}) for s in splits]
    return {"splits": [{"value": s, "name": SPLIT_NAMES.get(s, s)} for s in splits], "rows": rows,
            "totals": stats["split_totals"]}


@role_required(*SNAPSHOT_ROLES)
def snapshot_detail(request, pk: int):
    snapshot = _snapshot(pk)
    stats = dataset_selectors.snapshot_stats(snapshot, top_labelers=TOP_LABELERS)
    for row in stats["split_totals"]:
        row["split_name"] = SPLIT_NAMES.get(row["split"], row["split"])
    none = _("(no category)")
    others = stats["labelers"][-1]["others"] if stats["labelers"] else 0
    charts = {
        "categories": _bars(stats["categories"], lambda r: r["name"] or r["slug"] or none),
        "types": _bars(stats["types"], lambda r: r["slug"]),
        "labelers": _bars(stats["labelers"], lambda r: r["labeler"] or ngettext(
            "%(n)d other labeler", "%(n)d other labelers", r["others"]) % {"n": r["others"]}),
        "lengths": [{"type": slug, **h, "bars": [
            {"label": str(b["low"]) if b["low"] == b["high"] else f"{b['low']}–{b['high']}", "n": b["n"],
             "percent": b["percent"], "width": b["width"]} for b in h["buckets"]]}
            for slug, h in stats["lengths"].items()],
    }
    return render(request, "labeling/snapshots/detail.html", {
        "snapshot": snapshot, "stats": stats, "charts": charts, "table": _split_table(stats),
        "top_labelers": TOP_LABELERS, "other_labelers": others,
        "attribution_count": sum(r["n"] for r in stats["licences"] if r["attribution_required"]),
        "can_archive": snapshot.status == SnapshotStatus.FROZEN,
    })


@role_required(*SNAPSHOT_ROLES)
@require_POST
def snapshot_archive(request, pk: int):
    snapshot = dataset_services.archive_snapshot(_snapshot(pk))
    messages.success(request, _("%(label)s archived. Its rows stay as they were.") % {"label": snapshot.label})
    return redirect("snapshot-page", snapshot.pk)


@role_required(*SNAPSHOT_ROLES)
def snapshot_diff(request, pk: int):
    snapshot = _snapshot(pk)
    data = request.GET if "against" in request.GET else None
    if data is None:  # first visit: against the version before, if there is one
        previous = Snapshot.objects.filter(name=snapshot.name, version__lt=snapshot.version) \
            .order_by("-version").first()
        data = {"against": previous.pk} if previous else None
    form = DiffForm(snapshot, data)
    other = rows = totals = None
    if form.is_bound and form.is_valid():
        other = _snapshot(form.cleaned_data["against"])
        names = dataset_selectors.snapshot_category_names([snapshot, other])
        rows = _labels(dataset_selectors.snapshot_diff(other, snapshot), names)
        totals = {k: sum(r[k] for r in rows) for k in ("photos_added", "photos_removed", "comments_added",
                                                        "comments_removed")}
    status = 400 if form.is_bound and not form.is_valid() else 200
    return render(request, "labeling/snapshots/diff.html", {
        "snapshot": snapshot, "form": form, "other": other, "rows": rows, "totals": totals,
    }, status=status)
