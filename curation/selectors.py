"""Reads of curation state: the review queue's flags with their filters, counts per kind, the
evidence a page shows, and the decision history."""
from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Q

from .models import Decision, Flag, FlagKind, FlagStatus


@dataclass
class FlagFilters:
    kind: str = ""
    status: str = FlagStatus.OPEN  # "" for any
    project: int | None = None
    category: int | None = None
    detector: str = ""
    score_min: float | None = None
    score_max: float | None = None
    group: str = ""  # one duplicate group or comment cluster (Flag.group_key)


def _number(value, cast):
    if value in (None, ""):
        return None
    try:
        return cast(value)
    except (TypeError, ValueError):
        return None


def filters_from(params) -> FlagFilters:
    """Filters from a query string; values that make no sense are ignored (the page and the API
    list answer with everything else applied)."""
    kind = params.get("kind", "")
    status = params.get("status", FlagStatus.OPEN)
    return FlagFilters(
        kind=kind if kind in FlagKind.values else "",
        status=status if status in FlagStatus.values else "",
        project=_number(params.get("project"), int),
        category=_number(params.get("category"), int),
        detector=str(params.get("detector", ""))[:100],
        score_min=_number(params.get("score_min"), float),
        score_max=_number(params.get("score_max"), float),
        group=str(params.get("group", ""))[:200],
    )


def flags(filters: FlagFilters | None = None, *, with_kind: bool = True):
    f = filters or FlagFilters()
    qs = Flag.objects.select_related(
        "image", "image__category", "keeper", "project", "comment", "comment__comment_type",
        "comment__assignment", "comment__assignment__image", "comment__assignment__labeler",
        "comment__assignment__external_source",
    )
    if f.status:
        qs = qs.filter(status=f.status)
    if f.kind and with_kind:
        qs = qs.filter(kind=f.kind)
    if f.project is not None:
        qs = qs.filter(Q(project_id=f.project) | Q(image__in=_project_images(f.project)))
    if f.category is not None:
        qs = qs.filter(Q(image__category_id=f.category) | Q(comment__assignment__image__category_id=f.category))
    if f.detector:
        qs = qs.filter(detector=f.detector)
    if f.group:
        qs = qs.filter(group_key=f.group)
    if f.score_min is not None:
        qs = qs.filter(score__gte=f.score_min)
    if f.score_max is not None:
        qs = qs.filter(score__lte=f.score_max)
    return qs.order_by("kind", "group_key", "-score", "id")


def _project_images(project_id: int):
    from labeling.models import ProjectImage

    return ProjectImage.objects.filter(project_id=project_id).values("image_id")


def kind_counts(filters: FlagFilters | None = None) -> list[dict]:
    """[{kind, label, count}] of the flags the filters (all but the kind) leave, in FlagKind's order."""
    counts = dict(flags(filters, with_kind=False).order_by().values_list("kind").annotate(n=Count("pk")))
    return [{"kind": k, "label": label, "count": counts[k]} for k, label in FlagKind.choices if counts.get(k)]


def detectors() -> list[str]:
    return list(Flag.objects.order_by("detector").values_list("detector", flat=True).distinct())


def group_members(flag_list) -> dict[str, list[Flag]]:
    """The flags of each duplicate group among `flag_list`'s group keys (any status), by key."""
    keys = {f.group_key for f in flag_list if f.group_key}
    groups: dict[str, list[Flag]] = {}
    for f in Flag.objects.filter(group_key__in=keys).select_related("image").order_by("group_key", "id"):
        groups.setdefault(f.group_key, []).append(f)
    return groups


def decisions(*, flag=None, actor=None):
    qs = Decision.objects.select_related("flag", "actor", "flag__image", "flag__comment", "duplicate_of")
    if flag is not None:
        qs = qs.filter(flag=flag)
    if actor is not None:
        qs = qs.filter(actor=actor)
    return qs.order_by("-at", "-id")
