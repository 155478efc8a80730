"""The engineer's comparison: runs by snapshot version, their metrics side by side, sortable,
with the best value of each column marked."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..models import Snapshot, TrainingRun
from .metrics import COLUMNS, Column

SORTS = ("snapshot", "started", "run")
UNKNOWN = "unknown"
MAX_ROWS = 500


@dataclass
class Table:
    kind: str
    columns: list[Column]
    rows: list[dict] = field(default_factory=list)
    sort: str = "snapshot"
    descending: bool = False


def runs(snapshot: str | int | None = None, kind: str | None = None):
    """Runs, filtered by snapshot (its id, or "unknown" for runs attached to none) and kind."""
    qs = TrainingRun.objects.select_related("snapshot")
    if snapshot == UNKNOWN:
        qs = qs.filter(snapshot__isnull=True)
    elif snapshot:
        qs = qs.filter(snapshot_id=snapshot)
    if kind:
        qs = qs.filter(kind=kind)
    return qs


def snapshot_choices() -> list[tuple[str, str]]:
    """(value, label) of each snapshot version with runs, newest first."""
    ids = TrainingRun.objects.filter(snapshot__isnull=False).values_list("snapshot_id", flat=True).distinct()
    return [(str(s.pk), s.label) for s in Snapshot.objects.filter(pk__in=list(ids)).order_by("name", "-version")]


def _sort_key(sort: str):
    """The order of the runs by "started", "run" or (else) snapshot version."""
    if sort == "started":
        return lambda r: (r["run"].started_at is None, r["run"].started_at.timestamp() if r["run"].started_at else 0)
    if sort == "run":
        return lambda r: r["run"].run_id
    # By snapshot version: name, newest version first, then the newest run.
    return lambda r: (r["run"].snapshot_name, -(r["run"].snapshot_version or 0),
                      -(r["run"].started_at.timestamp() if r["run"].started_at else 0), r["run"].run_id)


def table(kind: str, *, snapshot: str | int | None = None, sort: str = "snapshot") -> Table:
    """The comparison table of one kind. `sort`: "snapshot" (default), "started", "run" or a
    column key, "-" in front for the other direction (a metric sorts best first by default)."""
    columns = COLUMNS[kind]
    by_key = {c.key: c for c in columns}
    descending = sort.startswith("-")
    key = sort.lstrip("-")
    if key not in by_key and key not in SORTS:
        key, descending = "snapshot", False
    rows = [{"run": run, "scores": run.scores or {}} for run in runs(snapshot, kind)[:MAX_ROWS]]
    best = {}
    for column in columns:
        values = [r["scores"][column.key] for r in rows if isinstance(r["scores"].get(column.key), (int, float))]
        if len(set(values)) >= 2:  # a column where every run scored the same has no best
            best[column.key] = max(values) if column.higher_is_better else min(values)
    for r in rows:
        r["cells"] = [{"key": c.key, "value": r["scores"].get(c.key),
                       "best": c.key in best and r["scores"].get(c.key) == best[c.key]} for c in columns]
    if key in by_key:
        # Best first unless asked otherwise; runs without the metric always last.
        column = by_key[key]
        reverse = column.higher_is_better != descending
        with_value = [r for r in rows if r["scores"].get(key) is not None]
        without = [r for r in rows if r["scores"].get(key) is None]
        rows = sorted(with_value, key=lambda r: r["scores"][key], reverse=reverse) + without
    else:
        rows.sort(key=_sort_key(key), reverse=descending)
    return Table(kind=kind, columns=columns, rows=rows, sort=key, descending=descending)
