"""Labeler pages: my projects, the labeling page, my history and the guideline.

The labeling page is a server-rendered shell (comment types, rules, messages and examples are
in the page, so nothing waits on the network but the photos); static/js/label.js drives it
through the labeler flow of the API (next, submit, skip, report).
"""
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import F, Prefetch
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import get_script_prefix
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.models import Role
from accounts.permissions import role_required

from . import markup, selectors, services
from . import text as text_rules
from .models import RULE_FIELDS, Assignment, AssignmentStatus, Comment, Project, ProjectMember, ReportReason

HISTORY_PER_PAGE = 20


@login_required
def home(request):
    """Planners, engineers and admins start at the quota dashboard; labelers at their own page."""
    if request.user.effective_role == Role.LABELER:
        return redirect("labeler-home")
    return redirect("quota-dashboard")


@role_required(Role.LABELER)
def labeler_home(request):
    """The labeler's open projects, each with done / cap."""
    members = (
        ProjectMember.objects.filter(user=request.user, is_active=True, project__is_active=True)
        .select_related("project")
        .order_by(F("last_active_at").desc(nulls_last=True), "-project__created_at", "pk")
    )
    projects = []
    for m in members:
        cap = m.cap
        done = m.submitted_count
        projects.append({
            "project": m.project, "done": done, "cap": cap, "finished": done >= cap,
            "percent": min(100, round(100 * done / cap)) if cap else 100,
        })
    return render(request, "labeling/home.html", {
        "projects": projects, "labeler_messages": selectors.unread_messages(request.user),
    })


@require_POST
@role_required(Role.LABELER)
def message_read(request, pk: int):
    """Dismiss a planner's message (the form without script; with script the page asks the API)."""
    services.mark_messages_read(request.user, [pk])
    target = request.POST.get("next") or ""
    if not (target.startswith("/") and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()})):
        target = "labeler-home"
    return redirect(target)


def _labeler_project(request, pk: int) -> tuple[Project, ProjectMember | None]:
    """The project and the user's active membership. Labelers must be active members (else
    403); admins may look at any project's pages (membership None when they are not one)."""
    project = get_object_or_404(Project, pk=pk)
    member = ProjectMember.objects.filter(project=project, user=request.user, is_active=True).first()
    if member is None and request.user.effective_role != Role.ADMIN:
        raise PermissionDenied(_("You are not an active labeler of this project."))
    if member is not None:
        member.project = project
    return project, member


def _ui_strings() -> dict[str, str]:
    """Everything label.js says, in the page's language."""
    return {
        "counter_min": _("%(n)s / min. %(min)s"),
        "counter_max": _("%(n)s / max. %(max)s"),
        "counter_ok": _("%(n)s characters"),
        "loading": _("Loading the photo…"),
        "sending": _("Sending…"),
        "saved": _("Saved. Here is the next photo."),
        "skipped": _("Skipped. Here is the next photo."),
        "reported": _("Thank you for the report. Here is the next photo."),
        "network": _("Could not reach the server. Your text is kept; try again."),
        "server": _("Something went wrong on the server. Your text is kept; try again."),
        "fix_first": _("Fix the marked comments first."),
        "empty": _("Write this comment: at least %(min)s characters."),
        "lease_lost": _("Your time for this photo ran out and other labelers have taken it. Please take the next photo."),
        "not_member": _("You are not an active labeler of this project."),
        "photo_alt": _("Photo to comment on"),
        "photo_broken": _("The photo did not load. You can skip it or report it as broken."),
        "retry": _("Try again"),
    }


def _examples(version) -> list[dict]:
    return selectors.published_examples(version)


def _verdict_counts(examples: list[dict]) -> tuple[int, int]:
    good = sum(1 for ex in examples for c in ex.get("comments", []) if c.get("verdict") == "good")
    bad = sum(1 for ex in examples for c in ex.get("comments", []) if c.get("verdict") == "bad")
    return good, bad


@role_required(Role.LABELER)
def label(request, pk: int):
    """The labeling page: one photo, a text box per comment type with live rule checks."""
    project, member = _labeler_project(request, pk)
    comment_types = list(project.comment_types.order_by("position", "id"))
    version = services.current_guideline(project)
    examples = _examples(version)
    prefix = get_script_prefix()
    config = {
        "project": project.pk,
        "member": member is not None,
        "active": project.is_active,
        "done": member.submitted_count if member else 0,
        "cap": member.cap if member else project.cap_per_labeler,
        "rules": {name: getattr(project, name) for name in RULE_FIELDS},
        "comment_types": [
            {"slug": ct.slug, "name": ct.name, "min_length": ct.min_length, "max_length": ct.max_length}
            for ct in comment_types
        ],
        "example_texts": version.example_texts() if version and project.reject_copied_examples else [],
        "messages": {code: str(message) for code, message in text_rules.MESSAGES.items()},
        "pii": text_rules.pii.page_config(),  # the server's PII patterns, run live by textrules.js
        "strings": _ui_strings(),
        # The API's labeler flow (common contract); "{id}" is the assignment's id.
        "urls": {
            "next": f"{prefix}api/projects/{project.pk}/next/",
            "assignment": f"{prefix}api/assignments/{{id}}/",
        },
    }
    return render(request, "labeling/label.html", {
        "project": project, "member": member, "comment_types": comment_types, "version": version,
        "examples": examples, "config": config, "report_reasons": ReportReason.choices,
        "percent": min(100, round(100 * config["done"] / config["cap"])) if config["cap"] else 100,
        "labeler_messages": selectors.unread_messages(request.user, project),
    })


@role_required(Role.LABELER)
def label_history(request, pk: int):
    """The labeler's own submitted comment sets in this project, newest first."""
    project, member = _labeler_project(request, pk)
    sets = (
        Assignment.objects.filter(project=project, labeler=request.user, status=AssignmentStatus.SUBMITTED)
        .select_related("image")
        .prefetch_related(Prefetch(
            "comments", queryset=Comment.objects.select_related("comment_type").order_by("comment_type__position", "id")
        ))
        .order_by("-submitted_at", "-id")
    )
    page = Paginator(sets, HISTORY_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "labeling/label_history.html", {"project": project, "member": member, "page": page})


@role_required(Role.LABELER)
def label_guide(request, pk: int):
    """The current published guideline and all its examples."""
    project, member = _labeler_project(request, pk)
    version = services.current_guideline(project)
    examples = _examples(version)
    good, bad = _verdict_counts(examples)
    return render(request, "labeling/label_guide.html", {
        "project": project, "member": member, "version": version, "examples": examples,
        "html": markup.render(version.body) if version else "", "good_count": good, "bad_count": bad,
    })
