"""Planner pages for labeling projects (mounted at /projects/): the project list, settings with
comment types and rules, the progress dashboard, the guideline editor with examples, labelers
and reported photos.

Planners (and admins) change things; engineers may read the list and the dashboard. Every
change is one call of labeling.services (the settings page hands its form and its comment-type
formset's changes to services.update_project), every list is paginated, and every figure comes
from the counters and indexed GROUP BY queries in labeling.selectors, so each page stays fast at
500,000 photos.
"""
from __future__ import annotations

import uuid
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import F
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from accounts.models import Role
from accounts.permissions import role_required
from config.forms import add_service_errors
from datasets.models import Category, Image

from . import markup, selectors, services
from .forms import (
    AddMemberForm,
    CapForm,
    ExampleCommentFormSet,
    ExampleForm,
    GuidelineForm,
    ImportLabelersForm,
    NewLabelerForm,
    ProjectForm,
    comment_type_formset,
)
from .models import (
    Assignment,
    AssignmentStatus,
    GuidelineExample,
    GuidelineVersion,
    Project,
    ProjectImage,
    ProjectMember,
)

READERS = (Role.PLANNER, Role.ENGINEER)
PLANNERS = (Role.PLANNER,)
PROJECTS_PER_PAGE = 50
LABELERS_PER_PAGE = 50
REPORTS_PER_PAGE = 50
# The session's last exclusion on a reports page, offered for undo once, on the next reports page.
REPORT_UNDO_KEY = "report_undo"
PHOTOS_PER_PAGE = 48
CSV_HEADER = ",".join(services.CSV_COLUMNS)


def _project(pk: int) -> Project:
    return get_object_or_404(Project, pk=pk)


def _context(request, project: Project, tab: str, **extra) -> dict:
    """What the project pages' shared head needs: the tabs, and open reports for a badge."""
    return {"project": project, "tab": tab, "open_reports": selectors.open_report_count(project),
            "can_edit": request.user.has_role(Role.PLANNER), **extra}


def _back(request, default: str) -> str:
    """The `next` URL a form came from, if it is one of ours, else `default`."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}) \
            and target.startswith("/projects/"):
        return target
    return default


def _page_of(total: int, per_page: int, number):
    """A Paginator page over `total` rows that are fetched separately (offset = start_index - 1)."""
    return Paginator(range(total), per_page).get_page(number)


# ---------------------------------------------------------------- list, new, edit


@role_required(*READERS)
def project_list(request):
    page = Paginator(Project.objects.order_by("-created_at", "-id"), PROJECTS_PER_PAGE).get_page(request.GET.get("page"))
    stats = selectors.project_list_stats(page.object_list)
    rows = [(p, stats[p.pk]) for p in page.object_list]
    return render(request, "labeling/planner/projects.html", {"page": page, "rows": rows})


def _sync_message(request, added: int, removed: int) -> None:
    if added or removed:
        messages.info(request, _("Queue updated: %(added)s photos added, %(removed)s removed.")
                      % {"added": f"{added:,}", "removed": f"{removed:,}"})
    else:
        messages.info(request, _("The queue already matched the filters: no photos added or removed."))


@role_required(*PLANNERS)
def project_new(request):
    FormSet = comment_type_formset(new=True)
    initial = [dict(spec) for spec in services.DEFAULT_COMMENT_TYPES]
    form = ProjectForm(request.POST or None, instance=Project())
    formset = FormSet(request.POST or None, instance=Project(), prefix="types", initial=initial)
    if request.method == "POST" and form.is_valid() and formset.is_valid():
        data = dict(form.cleaned_data)
        try:
            project, (added, removed) = services.create_project_with_queue(
                data.pop("name"), created_by=request.user, comment_types=formset.specs(), **data)
        except (ValidationError, services.LabelingError) as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, _("Project “%(name)s” created.") % {"name": project.name})
            _sync_message(request, added, removed)
            return redirect("project-detail", project.pk)
    return render(request, "labeling/planner/project_form.html", {
        "form": form, "formset": formset, "project": None, "tab": "edit",
    })


@role_required(*PLANNERS)
def project_edit(request, pk: int):
    project = _project(pk)
    FormSet = comment_type_formset(new=False)
    form = ProjectForm(request.POST or None, instance=project)
    formset = FormSet(request.POST or None, instance=project, prefix="types")
    if request.method == "POST" and form.is_valid() and formset.is_valid():
        try:
            added, removed = services.update_project(project, comment_types=formset.changes(), **form.cleaned_data)
        except (ValidationError, services.LabelingError) as exc:
            add_service_errors(form, exc)
        else:
            messages.success(request, _("Project settings saved."))
            _sync_message(request, added, removed)
            return redirect("project-edit", project.pk)
    if request.method == "POST":
        project = _project(pk)  # the name in the head is the stored one, not the failed input
    return render(request, "labeling/planner/project_form.html",
                  _context(request, project, "edit", form=form, formset=formset))


# ---------------------------------------------------------------- dashboard


@role_required(*READERS)
def project_detail(request, pk: int):
    project = _project(pk)
    sort = request.GET.get("sort", "-submitted_count")
    if sort not in selectors.LABELER_ORDERS:
        sort = "-submitted_count"
    total = ProjectMember.objects.filter(project=project).count()
    page = _page_of(total, LABELERS_PER_PAGE, request.GET.get("page"))
    _total, labelers = selectors.labeler_stats(project, order=sort, offset=page.start_index() - 1 if total else 0,
                                               limit=LABELERS_PER_PAGE)
    types = list(project.comment_types.order_by("position", "id"))
    for row in labelers:
        row["lengths"] = [row["median_length"].get(ct.slug) for ct in types]
        row["cap_percent"] = min(100, round(100 * row["submitted_count"] / row["cap"])) if row["cap"] else 100
    query = urlencode({"sort": sort}) if sort != "-submitted_count" else ""
    ctx = _context(request, project, "dashboard", dashboard=selectors.project_dashboard(project),
                   labelers=labelers, page=page, sort=sort, query=query, types=types,
                   refresh_url=request.path + "?" + urlencode({"partial": 1, "sort": sort, "page": page.number}),
                   refresh_seconds=getattr(settings, "PLANNER_DASHBOARD_REFRESH_SECONDS", 10), sorts=_sort_links(sort))
    if request.GET.get("partial"):
        return render(request, "labeling/planner/_dashboard.html", ctx)
    return render(request, "labeling/planner/detail.html", ctx)


def _sort_links(current: str) -> dict:
    """For each sortable column: the sort to link to (descending first) and the arrow shown."""
    out = {}
    for key in ("submitted_count", "rejection_count", "seconds_per_photo", "username"):
        first = key if key == "username" else "-" + key
        other = first[1:] if first.startswith("-") else "-" + first
        if current == first:
            out[key] = {"sort": other, "arrow": "↓" if first.startswith("-") else "↑"}
        elif current == other:
            out[key] = {"sort": first, "arrow": "↑" if first.startswith("-") else "↓"}
        else:
            out[key] = {"sort": first, "arrow": ""}
    return out


# ---------------------------------------------------------------- guideline and examples


def _examples(project: Project):
    return list(GuidelineExample.objects.filter(project=project).select_related("image")
                .prefetch_related("comments__comment_type").order_by("position", "id"))


@role_required(*PLANNERS)
def project_guideline(request, pk: int):
    project = _project(pk)
    form = GuidelineForm(request.POST or None, initial={"body": project.guideline_draft})
    if request.method == "POST" and form.is_valid():
        body = form.cleaned_data["body"]
        action = request.POST.get("action", "save")
        if action == "publish":
            try:
                version = services.publish_guideline(project, body, published_by=request.user)
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, _("Published as version %(n)d. Labelers see it from their next photo.")
                                 % {"n": version.version})
                return redirect("project-guideline", project.pk)
        else:
            try:
                services.save_guideline_draft(project, body)
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, _("Draft saved. Labelers still see version %(n)d until you publish.")
                                 % {"n": project.guideline_version} if project.guideline_version
                                 else _("Draft saved. Labelers see nothing until you publish."))
                return redirect("project-guideline", project.pk)
    body = form.data.get("body", project.guideline_draft) if form.is_bound else project.guideline_draft
    # No preview of a refused, oversized body: rendering megabytes of Markdown takes seconds.
    previewed = body if len(body) <= settings.LABELING_MAX_GUIDELINE_CHARS else ""
    current = services.current_guideline(project)
    versions = GuidelineVersion.objects.filter(project=project).select_related("published_by").defer("body", "examples")
    return render(request, "labeling/planner/guideline.html", _context(
        request, project, "guideline", form=form, preview=markup.render(previewed), examples=_examples(project),
        versions=versions, next_version=project.guideline_version + 1,
        draft_changed=current is None or current.body != project.guideline_draft,
    ))


@require_POST
@role_required(*PLANNERS)
def guideline_preview(request, pk: int):
    _project(pk)
    body = request.POST.get("body", "")
    try:
        services.check_guideline_size(body)  # rendering megabytes of Markdown costs seconds
    except ValidationError as exc:
        return JsonResponse({"error": " ".join(exc.messages)}, status=400)
    return JsonResponse({"html": str(markup.render(body))})


@role_required(*PLANNERS)
def guideline_version(request, pk: int, version: int):
    project = _project(pk)
    gv = get_object_or_404(GuidelineVersion.objects.select_related("published_by"), project=project, version=version)
    gv.examples = selectors.published_examples(gv)  # photo URLs made now (never saved)
    return render(request, "labeling/planner/guideline_version.html", _context(
        request, project, "guideline", version=gv, html=markup.render(gv.body),
    ))


@role_required(*PLANNERS)
def example_pick(request, pk: int):
    project = _project(pk)
    category = request.GET.get("category", "")
    queue = ProjectImage.objects.filter(project=project).select_related("image").order_by("id")
    if category == "none":
        queue = queue.filter(category__isnull=True)
    elif category.isdecimal() and len(category) <= 18:  # int() takes it and it fits a bigint
        queue = queue.filter(category_id=int(category))
    else:
        category = ""
    page = Paginator(queue, PHOTOS_PER_PAGE).get_page(request.GET.get("page"))
    chosen = set(GuidelineExample.objects.filter(project=project).values_list("image_id", flat=True))
    return render(request, "labeling/planner/example_pick.html", _context(
        request, project, "guideline", page=page, category=category, chosen=chosen,
        categories=Category.objects.order_by("position", "id"),
        query=urlencode({"category": category}) if category else "",
    ))


def _example_formset(project: Project, data=None, initial=None):
    types = list(project.comment_types.order_by("position", "id"))
    return ExampleCommentFormSet(data, initial=initial, prefix="c", form_kwargs={"comment_types": types})


def _example_page(request, project: Project, image: Image, example: GuidelineExample | None):
    if example is not None:
        initial = [{"comment_type": c.comment_type.slug if c.comment_type else "", "text": c.text,
                    "verdict": c.verdict, "why": c.why} for c in example.comments.select_related("comment_type")]
        form = ExampleForm(request.POST or None, initial={"note": example.note})
    else:
        initial = [{"verdict": "good"}, {"verdict": "bad"}]
        form = ExampleForm(request.POST or None)
    formset = _example_formset(project, request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid() and formset.is_valid():
        rows = [f for i, f in enumerate(formset.forms)
                if (i < formset.initial_form_count() or f.has_changed()) and not formset._should_delete_form(f)]
        comments = [{"comment_type": f.cleaned_data["comment_type"] or None, "text": f.cleaned_data["text"],
                     "verdict": f.cleaned_data["verdict"], "why": f.cleaned_data["why"]} for f in rows]
        if not comments:
            formset._non_form_errors = formset.error_class([_("Add at least one comment.")])
        else:
            try:
                services.save_example(project, image, note=form.cleaned_data["note"], comments=comments,
                                      example=example)
            except ValidationError as exc:
                for key, errors in exc.message_dict.items():
                    if key.startswith("comments[") and "]." in key:
                        i, field = key[len("comments["):].split("].", 1)
                        rows[int(i)].add_error(field if field in rows[int(i)].fields else None, errors)
                    else:
                        form.add_error(None, errors)
            else:
                messages.success(request, _("Example saved. Labelers see it after the next publish."))
                return redirect(reverse("project-guideline", args=[project.pk]) + "#examples")
    return render(request, "labeling/planner/example_form.html", _context(
        request, project, "guideline", image=image, example=example, form=form, formset=formset,
    ))


@role_required(*PLANNERS)
def example_new(request, pk: int):
    project = _project(pk)
    image_id = request.GET.get("image", "")
    if not _is_uuid(image_id):
        return redirect("project-example-pick", project.pk)
    image = get_object_or_404(Image, pk=image_id)
    existing = GuidelineExample.objects.filter(project=project, image=image).first()
    if existing is not None:
        return redirect("project-example-edit", project.pk, existing.pk)
    return _example_page(request, project, image, None)


def _is_uuid(value) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


@role_required(*PLANNERS)
def example_edit(request, pk: int, example_id: int):
    project = _project(pk)
    example = get_object_or_404(GuidelineExample.objects.select_related("image"), project=project, pk=example_id)
    return _example_page(request, project, example.image, example)


@require_POST
@role_required(*PLANNERS)
def example_delete(request, pk: int, example_id: int):
    project = _project(pk)
    example = get_object_or_404(GuidelineExample, project=project, pk=example_id)
    services.delete_example(example)
    messages.success(request, _("Example removed. Labelers stop seeing it after the next publish."))
    return redirect(reverse("project-guideline", args=[project.pk]) + "#examples")


@require_POST
@role_required(*PLANNERS)
def example_move(request, pk: int, example_id: int):
    """Move an example one place up or down (services.move_example)."""
    project = _project(pk)
    if not services.move_example(project, example_id, request.POST.get("direction", "")):
        raise Http404
    return redirect(reverse("project-guideline", args=[project.pk]) + "#examples")


# ---------------------------------------------------------------- labelers


@role_required(*PLANNERS)
def project_labelers(request, pk: int):
    project = _project(pk)
    add_form, new_form, import_form = AddMemberForm(prefix="add"), NewLabelerForm(prefix="new"), ImportLabelersForm(prefix="csv")
    csv_errors: list[str] = []
    open_panel = ""
    if request.method == "POST":
        action = request.POST.get("action", "")
        open_panel = action
        if action == "add":
            add_form = AddMemberForm(request.POST, prefix="add")
            if add_form.is_valid():
                was = ProjectMember.objects.filter(project=project, user=add_form.user, is_active=True).exists()
                services.add_member(project, add_form.user, cap_override=add_form.cleaned_data["cap_override"])
                if was:
                    messages.info(request, _("%(user)s was already a labeler here; the cap was updated.")
                                  % {"user": add_form.user.username})
                else:
                    messages.success(request, _("%(user)s added.") % {"user": add_form.user.username})
                return redirect("project-labelers", project.pk)
        elif action == "create":
            new_form = NewLabelerForm(request.POST, prefix="new")
            if new_form.is_valid():
                d = new_form.cleaned_data
                try:
                    user = services.add_new_labeler(project, username=d["username"], password=d["password"],
                                                    name=d["name"], cap_override=d["cap_override"])
                except ValidationError as exc:
                    add_service_errors(new_form, exc)
                else:
                    messages.success(request, _("Account %(user)s created and added to the project.")
                                     % {"user": user.username})
                    return redirect("project-labelers", project.pk)
        elif action == "import":
            import_form = ImportLabelersForm(request.POST, request.FILES, prefix="csv")
            if import_form.is_valid():
                try:
                    result = services.import_labelers_csv(project, import_form.cleaned_data["file"].read())
                except ValidationError as exc:
                    errors = exc.message_dict.get("file") if hasattr(exc, "error_dict") else exc.messages
                    csv_errors = list(errors or exc.messages)
                else:
                    messages.success(request, _("Imported %(rows)d rows: %(created)d accounts created, %(added)d "
                                                "labelers added to the project.") % result)
                    return redirect("project-labelers", project.pk)
        else:
            raise Http404
    q = request.GET.get("q", "").strip()
    members = ProjectMember.objects.filter(project=project).select_related("user").order_by("user__username")
    if q:
        members = members.filter(user__username__icontains=q) | members.filter(user__first_name__icontains=q)
    page = Paginator(members, LABELERS_PER_PAGE).get_page(request.GET.get("page"))
    leases = selectors.open_lease_counts(project, [m.user_id for m in page.object_list])
    rows = [(m, leases.get(m.user_id, 0)) for m in page.object_list]
    counts = {"active": ProjectMember.objects.filter(project=project, is_active=True).count(),
              "all": ProjectMember.objects.filter(project=project).count()}
    return render(request, "labeling/planner/labelers.html", _context(
        request, project, "labelers", add_form=add_form, new_form=new_form, import_form=import_form,
        csv_errors=csv_errors, open_panel=open_panel, page=page, rows=rows, q=q, counts=counts,
        query=urlencode({"q": q}) if q else "", csv_header=CSV_HEADER,
        here=request.get_full_path(),
    ))


def _member(project: Project, user_id: int) -> ProjectMember:
    return get_object_or_404(ProjectMember.objects.select_related("user"), project=project, user_id=user_id)


@require_POST
@role_required(*PLANNERS)
def member_cap(request, pk: int, user_id: int):
    project = _project(pk)
    member = _member(project, user_id)
    form = CapForm(request.POST)
    if form.is_valid():
        services.set_member_cap(project, member.user, form.cleaned_data["cap_override"])
        cap = form.cleaned_data["cap_override"]
        messages.success(request, _("Cap of %(user)s set to %(cap)s.") % {
            "user": member.user.username, "cap": cap if cap is not None else _("the project's (%(n)d)")
            % {"n": project.cap_per_labeler}})
    else:
        messages.error(request, _("The cap must be a whole number of 0 or more."))
    return redirect(_back(request, reverse("project-labelers", args=[project.pk])))


@require_POST
@role_required(*PLANNERS)
def member_active(request, pk: int, user_id: int):
    project = _project(pk)
    member = _member(project, user_id)
    if request.POST.get("active") == "1":
        services.add_member(project, member.user, cap_override=member.cap_override)
        messages.success(request, _("%(user)s is active again.") % {"user": member.user.username})
    else:
        returned = services.deactivate_member(project, member.user)
        messages.success(request, ngettext(
            "%(user)s deactivated; %(n)d open lease returned to the queue.",
            "%(user)s deactivated; %(n)d open leases returned to the queue.", returned,
        ) % {"user": member.user.username, "n": returned})
    return redirect(_back(request, reverse("project-labelers", args=[project.pk])))


# ---------------------------------------------------------------- reports


@role_required(*PLANNERS)
def project_reports(request, pk: int):
    project = _project(pk)
    state = request.GET.get("state", "open")
    reports = Assignment.objects.filter(project=project, status=AssignmentStatus.REPORTED)
    counts = {"open": reports.filter(report_resolution="").count(),
              "resolved": reports.exclude(report_resolution="").count()}
    counts["all"] = counts["open"] + counts["resolved"]
    if state == "open":
        reports = reports.filter(report_resolution="")
    elif state == "resolved":
        reports = reports.exclude(report_resolution="")
    else:
        state = "all"
    reports = reports.select_related("image", "labeler").order_by(F("reported_at").desc(nulls_last=True), "-leased_at", "-id")
    page = Paginator(reports, REPORTS_PER_PAGE).get_page(request.GET.get("page"))
    undo = request.session.pop(REPORT_UNDO_KEY, None)
    if undo and undo.get("project") != project.pk:
        undo = None
    return render(request, "labeling/planner/reports.html", _context(
        request, project, "reports", page=page, state=state, counts=counts, undo=undo,
        query=urlencode({"state": state}), here=request.get_full_path(),
        states=[("open", _("Open")), ("resolved", _("Resolved")), ("all", _("All"))],
    ))


def _reported(project: Project, assignment_id: int) -> Assignment:
    return get_object_or_404(Assignment.objects.select_related("image", "labeler"), project=project,
                             pk=assignment_id, status=AssignmentStatus.REPORTED)


def _service_error(request, exc) -> None:
    messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))


@require_POST
@role_required(*PLANNERS)
def report_resolve(request, pk: int, assignment_id: int):
    project = _project(pk)
    assignment = _reported(project, assignment_id)
    resolution = request.POST.get("resolution", "")
    back = _back(request, reverse("project-reports", args=[project.pk]))
    if resolution == "excluded" and not request.POST.get("confirm"):
        # Nothing asked first (no script in the page): a page that asks.
        confirm_url = reverse("project-report-exclude", args=[project.pk, assignment.pk])
        return redirect(f"{confirm_url}?{urlencode({'next': back})}")
    previous = assignment.report_resolution
    try:
        services.resolve_report(assignment, resolution)
    except (ValidationError, services.LabelingError) as exc:
        _service_error(request, exc)
    else:
        if resolution == "excluded" and previous != "excluded":
            # The reports page says so itself, with an Undo button.
            request.session[REPORT_UNDO_KEY] = {"project": project.pk, "assignment": assignment.pk,
                                                "previous": previous}
        elif resolution == "excluded":
            messages.success(request, _("The photo is out of the project: nobody gets it again."))
        else:
            messages.success(request, _("The photo stays in the project for other labelers."))
    return redirect(back)


@role_required(*PLANNERS)
def report_exclude(request, pk: int, assignment_id: int):
    """Asks before excluding a reported photo, for a page without script (with script, the
    reports page asks in a dialog and posts straight to report_resolve)."""
    project = _project(pk)
    assignment = _reported(project, assignment_id)
    return render(request, "labeling/planner/report_exclude.html", _context(
        request, project, "reports", a=assignment,
        back=_back(request, reverse("project-reports", args=[project.pk])),
    ))


@require_POST
@role_required(*PLANNERS)
def report_undo(request, pk: int, assignment_id: int):
    """Takes back an exclusion: the report is open (or kept) again and the photo back in the queue."""
    project = _project(pk)
    assignment = _reported(project, assignment_id)
    request.session.pop(REPORT_UNDO_KEY, None)
    try:
        services.undo_report_resolution(assignment, request.POST.get("previous", ""))
    except (ValidationError, services.LabelingError) as exc:
        _service_error(request, exc)
    else:
        messages.success(request, _("Undone: the photo is back in the project's queue."))
    return redirect(_back(request, reverse("project-reports", args=[project.pk])))

