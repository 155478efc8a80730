"""The planners' review queue (mounted at /curation/): flags by kind with their evidence, filters,
bulk and keyboard decisions, and the decision history (the audit trail); the curation runs (a
list with a start form, a page per run whose progress refreshes itself).

Planners (and admins) decide; ML engineers read the queue and the history (no buttons). Every
decision is one call of curation.services.decide / undo.
"""
from __future__ import annotations

import uuid
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from accounts.models import Role
from accounts.permissions import role_required
from datasets.models import Category
from labeling import services as labeling_services
from labeling.models import Project
from labeling.services import MESSAGE_MAX_CHARS, LabelingError

from . import runs as run_services
from . import scorecard, selectors, services
from .forms import MatchingForm, RunForm
from .models import (
    DECIDE_ACTIONS,
    DUPLICATE_PHOTO_KINDS,
    PHOTO_KINDS,
    CurationRun,
    Decision,
    DecisionAction,
    Flag,
    FlagKind,
    FlagStatus,
    RunTrigger,
)

READERS = (Role.PLANNER, Role.ENGINEER)
PLANNERS = (Role.PLANNER,)
FLAGS_PER_PAGE = 30
DECISIONS_PER_PAGE = 50
# The session's last decision on the review page (one flag), offered for undo on the next page.
UNDO_KEY = "curation_undo"
FILTER_FIELDS = ("kind", "status", "project", "category", "detector", "score_min", "score_max", "group", "labeler")


def _back(request, default: str) -> str:
    target = request.POST.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return default


def _num(value):
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _shape(flag, groups) -> dict:
    """What the page shows of one flag: its type of evidence, the photos to compare and the
    evidence's numbers as (label, value) pairs."""
    shape = "duplicate" if flag.kind in DUPLICATE_PHOTO_KINDS else "quality" if flag.kind in PHOTO_KINDS else (
        "comment" if flag.comment_id else "photo")
    others = []
    if shape == "duplicate":
        member_flags = [f for f in groups.get(flag.group_key, []) if f.image_id and f.image_id != flag.image_id]
        members = [(f.image, f.pk if f.kind in DUPLICATE_PHOTO_KINDS else None) for f in member_flags]
        if flag.keeper_id and flag.keeper_id != flag.image_id and all(m.pk != flag.keeper_id for m, _f in members):
            members.insert(0, (flag.keeper, None))
        members.sort(key=lambda m: m[0] is None or m[0].pk != flag.keeper_id)  # the keeper first
        others = [{"img": m, "keeper": m.pk == flag.keeper_id, "flag": f} for m, f in members if m is not None][:4]
    ev = flag.evidence if isinstance(flag.evidence, dict) else {}
    facts = []
    for key, label, fmt in (
        ("distance", _("Hamming distance"), "{:g}"), ("similarity", _("Similarity"), "{:.3f}"),
        ("value", _("Measured"), "{:g}"), ("threshold", _("Threshold"), "{:g}"),
        ("count", _("Photos with this text"), "{:,}"), ("share", _("Share"), "{:.1%}"),
        ("hallucination", _("Hallucination score"), "{:.3f}"), ("specificity", _("Specificity"), "{:.3f}"),
        ("reach", _("Reach"), "{:.3f}"), ("reach_floor", _("Bland below"), "{:.3f}"),
    ):
        if _num(ev.get(key)) is not None:
            facts.append((label, fmt.format(ev[key])))
    shown = {"distance", "similarity", "value", "threshold", "count", "share", "text", "examples", "hallucination",
             "specificity", "reach", "reach_floor"}
    return {
        "flag": flag, "shape": shape, "others": others, "facts": facts,
        "subject_is_keeper": shape == "duplicate" and flag.keeper_id == flag.image_id,
        "keep_flag": flag.pk if shape == "duplicate" and flag.group_key else None,
        "cluster_size": len(groups.get(flag.group_key, [])) if flag.group_key else 0,
        "cluster_text": str(ev.get("text") or ""),
        "examples": [str(e) for e in ev["examples"]][:5] if isinstance(ev.get("examples"), list) else [],
        "extra": sorted((k, v) for k, v in ev.items() if k not in shown and isinstance(v, (str, int, float, bool))),
        "better": _better_photos(ev),
    }


def _group_item(flag, group) -> dict:
    """One card for a whole duplicate-photo group: every member side by side (the keeper first),
    each with its own flag's status; the group's open flags are what its buttons decide."""
    members = list(group["members"])
    keeper = getattr(flag, "keeper", None)
    if keeper is not None and not any(m["is_keeper"] for m in members):  # a keeper with no flag of its own
        members.insert(0, {"flag": None, "image": keeper, "is_keeper": True, "labeled": False, "distance": None,
                           "confirmation": None})
    return {
        "flag": flag, "shape": "group", "group": group, "members": members,
        "open": sum(1 for m in members if m["flag"] is not None and m["flag"].status == FlagStatus.OPEN),
    }


# The actions of a decision by filters, per kind of subject (the panel's select).
MATCHING_ACTIONS = {
    "comment": (DecisionAction.KEEP, DecisionAction.REJECT_COMMENT, DecisionAction.EXCLUDE_PHOTO),
    "photo": (DecisionAction.KEEP, DecisionAction.EXCLUDE_PHOTO),
    "duplicate": (DecisionAction.MARK_DUPLICATE, DecisionAction.KEEP, DecisionAction.EXCLUDE_PHOTO),
}


def _matching_panel(filters) -> dict | None:
    """The "Decide all N matching" panel of a kind's queue: the preview (count, a few examples),
    the actions that fit the kind and the filters to post back."""
    if not filters.kind:
        return None
    preview = services.preview_matching(filters, examples=3)
    subject = ("duplicate" if filters.kind in DUPLICATE_PHOTO_KINDS else "photo" if filters.kind in PHOTO_KINDS
               else "comment")
    labels = dict(DECIDE_ACTIONS)
    hidden = [(k, v) for k, v in (("kind", filters.kind), ("project", filters.project),
                                  ("category", filters.category), ("detector", filters.detector),
                                  ("score_min", filters.score_min), ("score_max", filters.score_max))
              if v not in (None, "")]
    return {**preview, "actions": [(a, labels[a]) for a in MATCHING_ACTIONS[subject]], "hidden": hidden,
            "status_differs": filters.status != FlagStatus.OPEN}
def _better_photos(evidence: dict) -> list:
    """A hallucination flag's sample photos that fit the comment better (curation.scores), best first."""
    from datasets.models import Image

    ids = evidence.get("better_photos")
    if not isinstance(ids, list) or not ids:
        return []
    ids = [str(i) for i in ids[:5]]
    try:
        found = {str(img.pk): img for img in Image.objects.filter(pk__in=ids).only("pk", "thumbnail", "original_name")}
    except ValidationError:
        return []
    return [found[i] for i in ids if i in found]


@role_required(*READERS)
def review(request):
    filters = selectors.filters_from(request.GET)
    page = Paginator(selectors.flags(filters, one_per_group=True), FLAGS_PER_PAGE).get_page(request.GET.get("page"))
    flags = list(page.object_list)
    groups = selectors.group_members(flags)
    duplicate_groups = {g["group_key"]: g for g in selectors.duplicate_groups(
        {f.group_key for f in flags if f.kind in DUPLICATE_PHOTO_KINDS and f.group_key})}
    items = [_group_item(f, duplicate_groups[f.group_key]) if f.group_key in duplicate_groups
             and f.kind in DUPLICATE_PHOTO_KINDS else _shape(f, groups) for f in flags]
    query = {k: request.GET[k] for k in FILTER_FIELDS if request.GET.get(k) not in (None, "") and k != "kind"}
    undo = request.session.pop(UNDO_KEY, None)
    kinds = selectors.kind_counts(filters)
    can_decide = request.user.has_role(*PLANNERS)
    return render(request, "curation/review.html", {
        "page": page, "items": items, "filters": filters,
        "matching": _matching_panel(filters) if can_decide else None,
        "kinds": kinds, "total": sum(k["count"] for k in kinds),
        "base_query": urlencode(query), "query": urlencode({**query, **({"kind": filters.kind} if filters.kind else {})}),
        "statuses": FlagStatus.choices, "projects": Project.objects.order_by("name").only("pk", "name"),
        "categories": Category.objects.order_by("name").only("pk", "name"), "detectors": selectors.detectors(),
        "can_decide": can_decide, "here": request.get_full_path(),
        "actions": DECIDE_ACTIONS, "undo": undo,
        "labeler": _labeler(filters.labeler),
        "without_labeler": urlencode({k: v for k, v in query.items() if k != "labeler"}
                                     | ({"kind": filters.kind} if filters.kind else {})),
    })


def _error_text(exc) -> str:
    return " ".join(getattr(exc, "messages", None) or [str(getattr(exc, "message", None) or exc)])
def _labeler(user_id):
    """The labeler the queue is narrowed to (the scorecard's link), for the page to name."""
    if user_id is None:
        return None
    from accounts.models import User

    return User.objects.filter(pk=user_id).only("pk", "username", "first_name", "last_name").first()


@require_POST
@role_required(*PLANNERS)
def decide(request):
    back = _back(request, reverse("curation-review"))
    single = request.POST.get("single", "")
    group = request.POST.get("group_action", "")
    if single:
        action, _sep, flag_id = single.partition(":")
        ids = [flag_id]
    elif group:  # a duplicate group's card: every open flag of the group (the keeper's is kept)
        action, _sep, key = group.partition(":")
        ids = services.group_flag_ids([key])
    else:
        action = request.POST.get("action", "")
        ids = request.POST.getlist("flag") + services.group_flag_ids(request.POST.getlist("group"))
    try:
        decisions = services.decide(ids, action, request.user, request.POST.get("reason", ""),
                                    duplicate_of=request.POST.get("duplicate_of") or None)
    except (ValidationError, services.CurationError, LabelingError) as exc:
        messages.error(request, _error_text(exc))
        return redirect(back)
    label = dict(DECIDE_ACTIONS).get(action, action)
    if len(decisions) == 1:  # the next page says so, with Undo
        request.session[UNDO_KEY] = {"decision": decisions[0].pk, "action": str(label)}
    else:
        messages.success(request, ngettext("%(action)s: %(count)d flag decided.", "%(action)s: %(count)d flags decided.",
                                           len(decisions)) % {"action": label, "count": len(decisions)})
    return redirect(back)


@require_POST
@role_required(*PLANNERS)
def decide_matching(request):
    """The review queue's "Decide all N matching": one decision on every open flag the filters
    match, refused when their number is not the one the planner saw (services.decide_matching)."""
    back = _back(request, reverse("curation-review"))
    form = MatchingForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(str(e) for errors in form.errors.values() for e in errors))
        return redirect(back)
    action = request.POST.get("action", "")
    try:
        result = services.decide_matching(form.filters(), action, request.user, request.POST.get("reason", ""),
                                          expect=request.POST.get("expect"))
    except (ValidationError, services.CurationError, LabelingError) as exc:
        messages.error(request, _error_text(exc))
        return redirect(back)
    label = dict(DECIDE_ACTIONS).get(action, action)
    request.session[UNDO_KEY] = {"batch": str(result.batch), "action": str(label), "count": result.count}
    return redirect(back)


@require_POST
@role_required(*PLANNERS)
def undo_batch(request):
    """Take back a whole decision by filters (its batch id), all or nothing."""
    back = _back(request, reverse("curation-review"))
    try:
        batch = uuid.UUID(str(request.POST.get("batch", "")))
        undone = services.undo_batch(batch, request.user, request.POST.get("reason", ""))
    except ValueError:
        messages.error(request, _("No such bulk decision."))
        return redirect(back)
    except (services.CurationError, LabelingError) as exc:
        messages.error(request, _error_text(exc))
        return redirect(back)
    messages.success(request, ngettext("%(count)d decision undone: its flag is open again.",
                                       "%(count)d decisions undone: their flags are open again.",
                                       len(undone)) % {"count": len(undone)})
    return redirect(back)


@require_POST
@role_required(*PLANNERS)
def undo(request, pk: int):
    decision = get_object_or_404(Decision, pk=pk)
    back = _back(request, reverse("curation-decisions"))
    try:
        services.undo(decision, request.user, request.POST.get("reason", ""))
    except (services.CurationError, LabelingError) as exc:
        messages.error(request, str(getattr(exc, "message", None) or exc))
        return redirect(back)
    messages.success(request, _("The decision was undone: the flag is open again."))
    return redirect(back)


@role_required(*READERS)
def decisions(request):
    qs = selectors.decisions()
    page = Paginator(qs, DECISIONS_PER_PAGE).get_page(request.GET.get("page"))
    rows = list(page.object_list)
    # The latest decision still standing of each flag on the page, the only one that can be undone.
    latest = {}
    for d in Decision.objects.filter(flag_id__in={r.flag_id for r in rows}, undone_by__isnull=True).exclude(
            action=DecisionAction.UNDO).order_by("flag_id", "-at", "-id"):
        latest.setdefault(d.flag_id, d.pk)
    for r in rows:
        r.can_undo = r.action != DecisionAction.UNDO and latest.get(r.flag_id) == r.pk
    return render(request, "curation/decisions.html", {
        "page": page, "rows": rows, "can_decide": request.user.has_role(*PLANNERS),
        "undo_action": DecisionAction.UNDO, "here": request.get_full_path(),
    })


@require_POST
@role_required(*PLANNERS)
def keep_instead(request):
    """The review page's "Keep this one instead" on a member of a duplicate group (its flag)."""
    back = _back(request, reverse("curation-review"))
    flag = get_object_or_404(Flag, pk=selectors._number(request.POST.get("keep_instead"), int) or 0)
    try:
        services.choose_keeper(flag, request.user, request.POST.get("reason", ""))
    except services.CurationError as exc:
        messages.error(request, str(getattr(exc, "message", None) or exc))
        return redirect(back)
    messages.success(request, _("This photo is now the keeper of its group; the others are its duplicates."))
    return redirect(back)


# ---------------------------------------------------------------- runs

RUNS_PER_PAGE = 20


@role_required(*READERS)
def runs(request):
    can_start = request.user.has_role(*PLANNERS)
    form = RunForm(request.POST or None) if can_start else None
    if request.method == "POST":
        if not can_start:
            raise PermissionDenied
        if form.is_valid():
            try:
                run = run_services.start_run(form.cleaned_data["project"], form.cleaned_data["steps"],
                                             new_only=form.cleaned_data["new_only"], user=request.user,
                                             trigger=RunTrigger.PAGE)
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                messages.success(request, _("Run %(id)s started: the workers take it from here.") % {"id": run.pk})
                return redirect("curation-run", pk=run.pk)
    page = Paginator(selectors.runs(), RUNS_PER_PAGE).get_page(request.GET.get("page"))
    rows = list(page.object_list)
    for run in rows:
        run.step_rows = selectors.step_rows(run)
    return render(request, "curation/runs.html", {"page": page, "rows": rows, "form": form, "can_start": can_start})


@role_required(*READERS)
def run_detail(request, pk: int):
    run = get_object_or_404(selectors.runs(), pk=pk)
    return render(request, "curation/run.html", {
        "run": run, "steps": selectors.step_rows(run), "can_decide": request.user.has_role(*PLANNERS),
        "stalled": run_services.is_stalled(run), "can_resume": run_services.can_resume(run),
        "api_url": reverse("api:curation-run-detail", args=[run.pk]),
    })


@require_POST
@role_required(*PLANNERS)
def run_cancel(request, pk: int):
    run = get_object_or_404(CurationRun, pk=pk)
    try:
        run_services.cancel_run(run, request.user)
        messages.success(request, _("Run %(id)s cancelled: it can be resumed.") % {"id": run.pk})
    except services.CurationError as exc:
        messages.error(request, str(getattr(exc, "message", None) or exc))
    return redirect("curation-run", pk=run.pk)


@require_POST
@role_required(*PLANNERS)
def run_resume(request, pk: int):
    run = get_object_or_404(CurationRun, pk=pk)
    try:
        run_services.resume_run(run)
        messages.success(request, _("Run %(id)s goes on where it stopped.") % {"id": run.pk})
    except services.CurationError as exc:
        messages.error(request, str(getattr(exc, "message", None) or exc))
    return redirect("curation-run", pk=run.pk)


# ---------------------------------------------------------------- specificity (issue 12, item 2)

@role_required(*READERS)
def specificity(request, pk: int):
    """A project's specificity scores: the distribution, the least specific comment clusters, the
    generic share per labeler, and (planners) the threshold that turns low specificity into flags."""
    from .forms import SpecificityForm

    project = get_object_or_404(Project, pk=pk)
    can_edit = request.user.has_role(*PLANNERS)
    form = SpecificityForm(initial={"specificity_flag_below": project.specificity_flag_below})
    if request.method == "POST":
        if not can_edit:
            raise PermissionDenied
        form = SpecificityForm(request.POST)
        if form.is_valid():
            try:
                labeling_services.update_project(project, specificity_flag_below=form.cleaned_data["specificity_flag_below"])
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                messages.success(request, _("Saved. The next scores run flags the comments below the threshold."))
                return redirect("curation-specificity", project.pk)
    return render(request, "curation/specificity.html", {
        "project": project, "tab": "specificity", "can_edit": can_edit, "form": form,
        "report": selectors.specificity_report(project),
        "generic_quantile": settings.CURATION["GENERIC_QUANTILE"],
    })
# ---------------------------------------------------------------- the labeler scorecard (issue 12, item 5)

SCORECARD_PER_PAGE = 50


def _scorecard_sorts(current: str, columns) -> dict:
    """For each sortable column: the link that sorts by it (descending first; again: the other
    way), its arrow and its aria-sort value."""
    out = {}
    for key in columns:
        first = key if key == "username" else f"-{key}"
        other = first[1:] if first.startswith("-") else f"-{first}"
        if current in (first, other):
            target = other if current == first else first
            descending = current.startswith("-")
            out[key] = {"href": "?" + urlencode({"sort": target}), "arrow": "↓" if descending else "↑",
                        "aria": "descending" if descending else "ascending"}
        else:
            out[key] = {"href": "?" + urlencode({"sort": first}), "arrow": "", "aria": "none"}
    return out


@role_required(*READERS)
def labeler_quality(request, pk: int):
    """The labeler quality scorecard of a project (planners act, engineers read)."""
    from labeling.planner_views import _context

    project = get_object_or_404(Project, pk=pk)
    sort = request.GET.get("sort", scorecard.DEFAULT_SORT)
    if sort not in scorecard.SORTS:
        sort = scorecard.DEFAULT_SORT
    rows = scorecard.labeler_scorecard(project, sort=sort)
    sorts = _scorecard_sorts(sort, scorecard.SORT_COLUMNS)
    # A column per comment flag kind the project has (sorting by any of them works anyway).
    kinds = [{"kind": k, "label": label, "sort": sorts[f"flag_{k}"]} for k, label in FlagKind.choices
             if k in scorecard.KIND_COLUMNS and any(r["flags"][k]["count"] for r in rows)]
    for r in rows:
        r["kind_cells"] = [r["flags"][k["kind"]] for k in kinds]
    page = Paginator(rows, SCORECARD_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "curation/labeler_quality.html", _context(
        request, project, "quality", page=page, rows=page.object_list, kinds=kinds, sort=sort,
        sorts=sorts, query=urlencode({"sort": sort}),
        has_scores=any(r["scored"] for r in rows), min_photos=scorecard.AGREEMENT_MIN_PHOTOS,
        here=request.get_full_path(), max_message=MESSAGE_MAX_CHARS,
    ))


@require_POST
@role_required(*PLANNERS)
def labeler_message(request, pk: int, user_id: int):
    """Send a message to one labeler from the scorecard (labeling.services.send_labeler_message)."""
    from labeling.models import ProjectMember
    from labeling.services import send_labeler_message

    project = get_object_or_404(Project, pk=pk)
    member = get_object_or_404(ProjectMember.objects.select_related("user"), project=project, user_id=user_id)
    back = _back(request, reverse("project-labeler-quality", args=[project.pk]))
    try:
        send_labeler_message(project, member.user, request.POST.get("body", ""), sent_by=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, _("Message sent to %(user)s. They see it on their next page.")
                         % {"user": member.user.username})
    return redirect(back)
