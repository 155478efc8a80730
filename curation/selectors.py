"""Reads of curation state: the review queue's flags with their filters, counts per kind, the
evidence a page shows, and the decision history."""
from __future__ import annotations

import math
from dataclasses import dataclass

from django.db.models import Count, Min, Q
from django.utils.translation import gettext_lazy as _

from config.api import BIGINT_MAX

from .models import DUPLICATE_PHOTO_KINDS, Decision, Flag, FlagKind, FlagStatus


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


def flags(filters: FlagFilters | None = None, *, with_kind: bool = True, one_per_group: bool = False):
    """The flags the filters leave, by kind, group and score. `one_per_group`: of the flags of a
    duplicate-photo group (same group_key), only the first (lowest id) of those the filters leave:
    the review page shows one card per group."""
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
    if one_per_group:
        firsts = (qs.filter(kind__in=DUPLICATE_PHOTO_KINDS).exclude(group_key="").order_by()
                  .values("group_key").annotate(first=Min("pk")).values("first"))
        qs = qs.filter(~Q(kind__in=DUPLICATE_PHOTO_KINDS) | Q(group_key="") | Q(pk__in=firsts))
    return qs.order_by("kind", "group_key", "-score", "id")


def _project_images(project_id: int):
    from labeling.models import ProjectImage

    return ProjectImage.objects.filter(project_id=project_id).values("image_id")


def kind_counts(filters: FlagFilters | None = None) -> list[dict]:
    """[{kind, label, count, groups}] of the flags the filters (all but the kind) leave, in
    FlagKind's order. Withdrawn flags are not counted (unless the status filter asks for them);
    duplicate-photo kinds count groups (one card each; `groups` is true)."""
    qs = flags(filters, with_kind=False, one_per_group=True)
    if not (filters and filters.status == FlagStatus.WITHDRAWN):
        qs = qs.exclude(status=FlagStatus.WITHDRAWN)
    counts = dict(qs.order_by().values_list("kind").annotate(n=Count("pk")))
    return [{"kind": k, "label": label, "count": counts[k], "groups": k in DUPLICATE_PHOTO_KINDS}
            for k, label in FlagKind.choices if counts.get(k)]


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
    "flags_updated": _("flags updated"), "flags_withdrawn": _("flags withdrawn"), "candidates": _("candidate pairs"), "pairs": _("confirmed pairs"),
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


# ---------------------------------------------------------------- specificity (issue 12, item 2)

HISTOGRAM_BINS = 20
LEAST_SPECIFIC_CLUSTERS = 15


def score_model(project) -> str | None:
    """The model whose scores the project's pages show: the configured one where it scored any
    of the project's comments, else the one that scored most recently."""
    from .embedding import current_identity
    from .models import CommentScore

    identity = current_identity("comment")
    scores = CommentScore.objects.filter(project=project)
    if identity and scores.filter(model=identity).exists():
        return identity
    return scores.order_by("-created_at", "-id").values_list("model", flat=True).first()


def _scores(project, model):
    from .models import CommentScore

    return CommentScore.objects.filter(project=project, model=model)


def generic_threshold(project, model=None) -> tuple[float | None, str]:
    """The specificity below which a comment of the project counts as generic, and where it
    comes from: "project" (its specificity_flag_below) or "quantile" (the
    CURATION["GENERIC_QUANTILE"] quantile of the project's own scores)."""
    import numpy as np
    from django.conf import settings

    if project.specificity_flag_below is not None:
        return float(project.specificity_flag_below), "project"
    model = model or score_model(project)
    values = list(_scores(project, model).values_list("specificity", flat=True)) if model else []
    if not values:
        return None, "quantile"
    return float(np.quantile(values, settings.CURATION["GENERIC_QUANTILE"])), "quantile"


def specificity_by_labeler(project) -> dict:
    """{labeler user id: {"scored", "generic", "generic_share", "median_specificity"}} of the
    project's scored comments (by the model its pages show; generic: below generic_threshold).
    Imported comment sets (no labeler) are left out."""
    import numpy as np

    model = score_model(project)
    if model is None:
        return {}
    threshold, _source = generic_threshold(project, model)
    values: dict = {}
    for labeler, spec in _scores(project, model).filter(comment__assignment__labeler__isnull=False).values_list(
            "comment__assignment__labeler_id", "specificity"):
        values.setdefault(labeler, []).append(spec)
    out = {}
    for labeler, specs in values.items():
        generic = sum(1 for s in specs if threshold is not None and s < threshold)
        out[labeler] = {"scored": len(specs), "generic": generic, "generic_share": generic / len(specs),
                        "median_specificity": float(np.median(specs)) if specs else None}
    return out


def specificity_report(project) -> dict:
    """What the specificity page and its API show: the model, counts, the generic threshold and
    its source, a histogram, the least specific comment clusters (curation.textdup's exact key:
    text, count, mean specificity) and the generic share per labeler."""
    import numpy as np

    from accounts.models import User

    from . import textdup
    from .models import ScoreCalibration, ScoreKind

    model = score_model(project)
    report = {"project": project.pk, "model": model, "scored": 0, "threshold": None, "threshold_source": "quantile",
              "generic": 0, "generic_share": None, "median_specificity": None, "histogram": [], "clusters": [],
              "labelers": [], "null_quantiles": {}, "null_median": None, "flag_below": project.specificity_flag_below}
    if model is None:
        return report
    rows = list(_scores(project, model).values_list("specificity", "comment__text"))
    specs = np.asarray([r[0] for r in rows], dtype=float)
    threshold, source = generic_threshold(project, model)
    generic = int((specs < threshold).sum()) if threshold is not None else 0
    report.update(scored=len(rows), threshold=threshold, threshold_source=source, generic=generic,
                  generic_share=generic / len(rows) if rows else None,
                  median_specificity=float(np.median(specs)) if len(specs) else None)
    if len(specs):
        lo, hi = float(specs.min()), float(specs.max())
        counts, edges = np.histogram(specs, bins=HISTOGRAM_BINS, range=(lo, hi if hi > lo else lo + 1e-6))
        top = int(counts.max()) or 1
        report["histogram"] = [{"low": round(float(edges[n]), 4), "high": round(float(edges[n + 1]), 4),
                                "count": int(c), "percent": round(100 * int(c) / top),
                                "generic": threshold is not None and float(edges[n]) < threshold}
                               for n, c in enumerate(counts)]
    clusters: dict = {}
    for spec, text in rows:
        c = clusters.setdefault(textdup.exact_key(text), {"text": text, "count": 0, "total": 0.0})
        c["count"] += 1
        c["total"] += spec
    ranked = sorted(({"text": c["text"], "count": c["count"], "mean_specificity": round(c["total"] / c["count"], 4)}
                     for c in clusters.values()), key=lambda c: (c["mean_specificity"], -c["count"], c["text"]))
    report["clusters"] = ranked[:LEAST_SPECIFIC_CLUSTERS]
    per = specificity_by_labeler(project)
    names = {u.pk: u for u in User.objects.filter(pk__in=per)}
    report["labelers"] = sorted(
        ({"labeler": pk, "username": names[pk].username if pk in names else str(pk),
          "name": (names[pk].get_full_name() or names[pk].username) if pk in names else str(pk), **v}
         for pk, v in per.items()), key=lambda r: (-r["generic_share"], r["username"]))
    calibration = ScoreCalibration.objects.filter(model=model, kind=ScoreKind.SPECIFICITY).first()
    report["null_quantiles"] = calibration.null_quantiles if calibration else {}
    report["null_median"] = report["null_quantiles"].get("0.5")
    return report
