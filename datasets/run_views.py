"""The engineer's training-run pages: runs by snapshot version with their metrics side by side
(sortable, filtered by snapshot and kind, the best value of each column marked) and a run's own
page (config, metrics per epoch, evaluation signature, where its files are). Runs are
registered with `manage.py register_run` or the API; engineers may forget one here."""
from __future__ import annotations

import json
from urllib.parse import urlencode

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.models import Role
from accounts.permissions import role_required

from .models import RunKind, TrainingRun
from .runs import selectors, services
from .runs.metrics import COLUMNS

READERS = (Role.PLANNER, Role.ENGINEER)


def _sort_links(table: selectors.Table, query: dict) -> dict:
    """For each sortable head: the link that sorts by it (again: the other way) and its arrow
    and aria-sort value."""
    out = {}
    keys = [*selectors.SORTS, *(c.key for c in table.columns)]
    for key in keys:
        current = table.sort == key
        params = {**query, f"sort_{table.kind}": f"-{key}" if current and not table.descending else key}
        arrow, aria = "", "none"
        if current:
            metric = key not in selectors.SORTS
            higher = next((c.higher_is_better for c in table.columns if c.key == key), True)
            # What the reader sees: the values going down or up the column.
            down = (higher != table.descending) if metric else table.descending
            arrow, aria = ("↓", "descending") if down else ("↑", "ascending")
        out[key] = {"href": "?" + urlencode({k: v for k, v in params.items() if v}), "arrow": arrow, "aria": aria}
    return out


@role_required(*READERS)
def run_list(request):
    snapshot = request.GET.get("snapshot") or ""
    kind = request.GET.get("kind") or ""
    choices = selectors.snapshot_choices()
    if snapshot not in {value for value, _label in choices} | {selectors.UNKNOWN, ""}:
        snapshot = ""
    if kind not in RunKind.values:
        kind = ""
    query = {"snapshot": snapshot, "kind": kind}
    for k in COLUMNS:
        if request.GET.get(f"sort_{k}"):
            query[f"sort_{k}"] = request.GET[f"sort_{k}"]
    tables = []
    for k in (kind,) if kind else tuple(COLUMNS):
        table = selectors.table(k, snapshot=snapshot or None, sort=request.GET.get(f"sort_{k}") or "snapshot")
        sorts = _sort_links(table, query)
        tables.append({"table": table, "sorts": sorts, "title": RunKind(k).label,
                       "heads": [{"column": c, "link": sorts[c.key]} for c in table.columns]})
    return render(request, "datasets/runs.html", {
        "tables": tables, "snapshots": choices, "kinds": RunKind.choices, "filters": {"snapshot": snapshot, "kind": kind},
        "filtered": bool(snapshot or kind), "can_remove": request.user.has_role(Role.ENGINEER),
    })


@role_required(*READERS)
def run_detail(request, pk: int):
    run = get_object_or_404(TrainingRun.objects.select_related("snapshot", "registered_by"), pk=pk)
    columns = COLUMNS.get(run.kind, [])
    headline = [{"column": c, "value": run.scores.get(c.key)} for c in columns]
    known = {c.key for c in columns}
    from .runs.metrics import column_key, flatten

    others = sorted((name, value) for name, value in flatten(run.metrics or {}).items() if column_key(name) not in known)
    evaluation = run.evaluation or {}
    signature = evaluation.get("signature") if isinstance(evaluation.get("signature"), dict) else {}
    evaluated_on = evaluation.get("snapshot") if isinstance(evaluation.get("snapshot"), dict) else {}
    other_data = bool(evaluated_on.get("checksum")) and evaluated_on.get("checksum") != run.snapshot_checksum
    return render(request, "datasets/run_detail.html", {
        "run": run, "headline": headline, "other_metrics": others, "signature": _items(signature),
        "evaluation": _items({k: v for k, v in evaluation.items() if k not in ("signature", "snapshot")}),
        "evaluated_on": evaluated_on if other_data else None,
        "config": _items(run.config), "model_info": _items(run.model_info),
        "can_remove": request.user.has_role(Role.ENGINEER),
    })


def _items(values) -> list[tuple[str, str]]:
    """(name, value as shown) of a JSON object from a run folder: nested values as JSON."""
    if not isinstance(values, dict):
        return []
    return [(str(k), "—" if v is None else json.dumps(v, ensure_ascii=False, sort_keys=True)
             if isinstance(v, (dict, list, bool)) else str(v)) for k, v in values.items()]


@require_POST
@role_required(Role.ENGINEER)
def run_remove(request, pk: int):
    run = get_object_or_404(TrainingRun, pk=pk)
    services.remove_run(run)
    messages.success(request, _("Run %(run)s was removed from the list; its folder was left as it is.") % {"run": run.run_id})
    return redirect("runs")
