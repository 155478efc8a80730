"""Reads of curation state: the review queue's flags with their filters, counts per kind, the
evidence a page shows, and the decision history."""
from __future__ import annotations

import math
from dataclasses import dataclass

from django.db.models import Count, Q
from django.utils.translation import gettext_lazy as _

from config.api import BIGINT_MAX

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
    labeler: int | None = None  # comment flags of one labeler's comments (user id)


def _number(value, cast):
    """A query-string number, or None: also for an id past the database's bigint (2**63 and up
    were a 500 on SQLite) and for a float that is no finite number."""
    if value in (None, ""):
        return None
    try:
        number = cast(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if cast is int and not -BIGINT_MAX - 1 <= number <= BIGINT_MAX:
        return None
    if cast is float and not math.isfinite(number):
        return None
    return number


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
        labeler=_number(params.get("labeler"), int),
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
    if f.labeler is not None:
        qs = qs.filter(comment__assignment__labeler_id=f.labeler)
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


# ---------------------------------------------------------------- duplicate groups


def duplicate_group_keys(*, kind: str = "", status: str = FlagStatus.OPEN, image=None):
    """The group keys of duplicate-photo groups (sorted), those with a flag of `status` ("" any),
    of `kind`, or holding `image`."""
    from .models import DUPLICATE_PHOTO_KINDS

    qs = Flag.objects.filter(kind__in=DUPLICATE_PHOTO_KINDS).exclude(group_key="")
    if kind:
        qs = qs.filter(kind=kind)
    if status:
        qs = qs.filter(status=status)
    if image:
        qs = qs.filter(group_key__in=Flag.objects.filter(image_id=image).values("group_key"))
    return qs.order_by("group_key").values_list("group_key", flat=True).distinct()


def duplicate_groups(keys) -> list[dict]:
    """Each group: {group_key, kind, keeper (image id), score, members: [{flag, image, is_keeper,
    labeled, distance, confirmation}]} with the keeper first, then the largest photos."""
    from labeling.models import Assignment, AssignmentStatus

    from .models import DUPLICATE_PHOTO_KINDS

    keys = list(keys)
    rows = list(Flag.objects.filter(group_key__in=keys, kind__in=DUPLICATE_PHOTO_KINDS).select_related(
        "image", "image__category", "image__licence", "image__source").order_by("group_key", "id"))
    labeled = set(Assignment.objects.filter(image_id__in=[f.image_id for f in rows], status=AssignmentStatus.SUBMITTED)
                  .values_list("image_id", flat=True))
    groups: dict[str, dict] = {}
    for f in rows:
        g = groups.setdefault(f.group_key, {"group_key": f.group_key, "kind": f.kind, "keeper": f.keeper_id,
                                            "score": f.score, "members": []})
        g["score"] = max(g["score"], f.score)
        ev = f.evidence if isinstance(f.evidence, dict) else {}
        g["members"].append({
            "flag": f, "image": f.image, "is_keeper": f.image_id == f.keeper_id, "labeled": f.image_id in labeled,
            "distance": ev.get("distance"), "confirmation": ev.get("confirmation"),
        })
    for g in groups.values():
        g["members"].sort(key=lambda m: (not m["is_keeper"], -(m["image"].original_width * m["image"].original_height),
                                         str(m["image"].pk)))
    return [groups[k] for k in keys if k in groups]


# ---------------------------------------------------------------- runs


def runs(*, project=None):
    from .models import CurationRun

    qs = CurationRun.objects.select_related("project", "created_by").prefetch_related("run_steps")
    if project is not None:
        qs = qs.filter(project_id=project)
    return qs.order_by("-created_at", "-id")


# What the counts of the steps are called on the run page (a step's other counts show by key).
COUNT_LABELS = {
    "photos": _("photos"), "comments": _("comments"), "flags_new": _("new flags"),
    "flags_updated": _("flags updated"), "candidates": _("candidate pairs"), "pairs": _("confirmed pairs"),
    "groups": _("duplicate groups"), "clusters": _("comment clusters"), "templates": _("template clusters"),
    "self_copiers": _("labelers copying themselves"), "unreadable": _("unreadable photos"),
    "no_signature": _("photos without window hashes"),
}


SUBJECT_LABELS = {"photos": _("photos"), "comments": _("comments"), "projects": _("projects")}


def step_rows(run) -> list[dict]:
    """A run's steps as the page and the API show them: name, label, state, reason, done of
    total, subject, percent and counts."""
    from . import steps as registry

    known = registry.by_name()
    out = []
    for row in sorted(run.run_steps.all(), key=lambda r: r.position):
        step = known.get(row.name)
        out.append({
            "name": row.name, "label": str(step.label) if step else row.name, "state": row.state,
            "state_label": str(row.get_state_display()), "reason": row.reason, "total": row.total, "done": row.done,
            "subject": step.subject if step else "",
            "subject_label": str(SUBJECT_LABELS.get(step.subject, step.subject)) if step else "", "counts": row.counts or {},
            "count_items": [(str(COUNT_LABELS.get(k, k)), v) for k, v in (row.counts or {}).items()],
            "percent": 100 if row.state == "done" else (round(100 * row.done / row.total) if row.total else 0),
            "started_at": row.started_at, "finished_at": row.finished_at,
        })
    return out


# ---------------------------------------------------------------- toxicity training data (issue 12)


def toxicity_decision_rows() -> list:
    """The planners' decisions on toxicity and bias flags as labeled rows for the next training
    (curation.toxicity.Row, source "decision"): a kept flag says the comment is none, a rejected
    one that it is what the flag said (its evidence's label). A decision taken back (undo) counts
    no more: the flag's status is what the latest standing decision made it."""
    from . import toxicity

    rows = []
    flags = (Flag.objects.filter(kind__in=(FlagKind.TOXICITY, FlagKind.BIAS),
                                 status__in=(FlagStatus.KEPT, FlagStatus.REJECTED), comment__isnull=False)
             .select_related("comment").order_by("pk"))
    for flag in flags:
        allowed = toxicity.LABELS if flag.kind == FlagKind.TOXICITY else toxicity.BIAS_LABELS
        label = "none" if flag.status == FlagStatus.KEPT else str(flag.evidence.get("label", ""))
        if label not in allowed or label == "none" and flag.status == FlagStatus.REJECTED:
            continue  # a rejected flag of another detector that names no label of ours
        text = flag.comment.text
        if flag.kind == FlagKind.TOXICITY:
            rows.append(toxicity.Row(text=text, label=label, bias=None, source="decision"))
        else:
            rows.append(toxicity.Row(text=text, label=None, bias=label, source="decision"))
    return rows


# ---------------------------------------------------------------- specificity per labeler (issue 12, item 2)


# scorecard's minimal version; the scores branch's replaces it at merge
def specificity_by_labeler(project) -> dict:
    """{labeler user id: {"scored", "generic", "generic_share", "median_specificity"}} over the
    project's CommentScore rows of one model: the configured comment model
    (curation.embedding.current_identity("comment")) when the project has scores of it, else the
    model with the most scores in the project. A comment is generic when its specificity is
    below the project's `specificity_flag_below`, or (no threshold set) below the project's own
    10th percentile. Imported sets (no labeler) count nowhere. {} when the project has no
    scores (the embedding model has not run)."""
    import statistics

    from .embedding import current_identity
    from .models import CommentScore

    scores = CommentScore.objects.filter(project=project).order_by()
    try:
        model = current_identity("comment")
    except Exception:  # noqa: BLE001 - a broken model setting must not break a planner's page
        model = None
    if not model or not scores.filter(model=model).exists():
        model = (scores.values_list("model").annotate(n=Count("pk")).order_by("-n", "model")
                 .values_list("model", flat=True).first())
    if model is None:
        return {}
    rows = list(scores.filter(model=model, comment__assignment__labeler__isnull=False)
                .values_list("comment__assignment__labeler_id", "specificity"))
    if not rows:
        return {}
    threshold = project.specificity_flag_below
    if threshold is None:
        values = sorted(s for _u, s in scores.filter(model=model).values_list("pk", "specificity"))
        threshold = statistics.quantiles(values, n=10, method="inclusive")[0] if len(values) > 1 else values[0]
    by_user: dict[int, list[float]] = {}
    for user_id, s in rows:
        by_user.setdefault(user_id, []).append(s)
    out = {}
    for user_id, values in by_user.items():
        generic = sum(1 for s in values if s < threshold)
        out[user_id] = {"scored": len(values), "generic": generic, "generic_share": generic / len(values),
                        "median_specificity": float(statistics.median(values))}
    return out
