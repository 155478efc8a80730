"""Planner pages for importing comments made elsewhere into a project (labeling.external): the
project's comment imports with the import form, and one import's report.

Planners import; planners and engineers read the imports and their reports.
"""
from __future__ import annotations

from urllib.parse import urlencode

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render

from accounts.models import Role
from accounts.permissions import role_required
from config.forms import add_service_errors

from . import external
from .forms import CommentImportForm
from .models import CommentImport, CommentImportOutcome
from .planner_views import READERS, _context, _project

ROWS_PER_PAGE = 100
IMPORTS_PER_PAGE = 20


@role_required(*READERS)
def comment_imports(request, pk: int):
    project = _project(pk)
    can_edit = request.user.has_role(Role.PLANNER)
    form = CommentImportForm(project)
    if request.method == "POST":
        if not can_edit:
            raise PermissionDenied
        form = CommentImportForm(project, request.POST, request.FILES)
        if form.is_valid():
            d = form.cleaned_data
            try:
                ci = external.start_comment_import(
                    project, data=d["file"].read(), fmt=d["format"], source_name=d["source_name"],
                    photo_source=d["photo_source"], file_name=d["file"].name, images_dir=d["images_dir"] or None,
                    url_prefix=d["url_prefix"], type_map=external.parse_type_map(d["type_map"]),
                    comment_type=d["comment_type"], user=request.user,
                )
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                return redirect("project-comment-import", project.pk, ci.pk)
    imports = Paginator(CommentImport.objects.filter(project=project).select_related("external_source", "created_by"),
                        IMPORTS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "labeling/planner/comment_imports.html",
                  _context(request, project, "imports", form=form, page=imports))


@role_required(*READERS)
def comment_import_detail(request, pk: int, import_id: int):
    project = _project(pk)
    ci = get_object_or_404(CommentImport.objects.select_related("external_source", "import_job"), pk=import_id,
                           project=project)
    outcome = request.GET.get("outcome", "")
    rows = ci.rows.select_related("image")
    if outcome in CommentImportOutcome.values:
        rows = rows.filter(outcome=outcome)
    elif outcome == "warnings":
        rows = rows.filter(outcome=CommentImportOutcome.IMPORTED).exclude(warnings=[])
    else:
        outcome = ""
    page = Paginator(rows.order_by("position"), ROWS_PER_PAGE).get_page(request.GET.get("page"))
    outcomes = [("", None, ci.total), (CommentImportOutcome.IMPORTED, CommentImportOutcome.IMPORTED.label, ci.imported),
                (CommentImportOutcome.ALREADY, CommentImportOutcome.ALREADY.label, ci.already),
                (CommentImportOutcome.REFUSED, CommentImportOutcome.REFUSED.label, ci.refused),
                ("warnings", None, ci.warnings)]
    return render(request, "labeling/planner/comment_import_detail.html",
                  _context(request, project, "imports", ci=ci, page=page, outcome=outcome, outcomes=outcomes,
                           query=urlencode({"outcome": outcome}) if outcome else ""))
