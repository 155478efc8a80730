"""The planners' comment browser (/projects/<id>/comments/): a project's comments, filtered,
searched and ordered, a page at a time, and the same selection as a CSV or JSON Lines download.
Planners and engineers read it; labelers never (403)."""
from __future__ import annotations

from urllib.parse import urlencode

from django.http import Http404
from django.shortcuts import render

from accounts.permissions import role_required

from . import comment_export, selectors
from .comment_filters import CommentFilterForm
from .planner_views import READERS, _context, _page_of, _project

COMMENTS_PER_PAGE = 50
# The page counts matches up to this many; past it, it says "more than" and pages that far.
COUNT_CAP = 1_000


def _form(request, project):
    form = CommentFilterForm(project, request.GET)
    return form, form.is_valid()


def _page(qs, number):
    """(page, rows) for a page of `qs`. The count stops at COUNT_CAP + 1
    (selectors.count_at_most); on the first page, when every match fits on it, there is no
    count query at all (a search for a rare phrase reads the comments once, not twice)."""
    if str(number or "1") == "1":
        rows = list(qs[: COMMENTS_PER_PAGE + 1])
        if len(rows) <= COMMENTS_PER_PAGE:
            return _page_of(len(rows), COMMENTS_PER_PAGE, 1), rows
        page = _page_of(selectors.count_at_most(qs, COUNT_CAP), COMMENTS_PER_PAGE, 1)
        return page, rows[:COMMENTS_PER_PAGE]
    page = _page_of(selectors.count_at_most(qs, COUNT_CAP), COMMENTS_PER_PAGE, number)
    start = page.start_index() - 1 if page.paginator.count else 0
    return page, list(qs[start:start + COMMENTS_PER_PAGE])


@role_required(*READERS)
def project_comments(request, pk: int):
    project = _project(pk)
    form, valid = _form(request, project)
    page, rows, query = None, [], ""
    if valid:
        qs = selectors.project_comments(project, form.filters(), order=form.ordering())
        page, rows = _page(qs, request.GET.get("page"))
        query = urlencode({k: v for k, v in request.GET.items() if k != "page" and v})
    return render(request, "labeling/planner/comments.html", _context(
        request, project, "comments", form=form, page=page, rows=rows, query=query,
        capped=page is not None and page.paginator.count > COUNT_CAP, cap=COUNT_CAP,
    ))


@role_required(*READERS)
def project_comments_export(request, pk: int):
    """?format=csv|jsonl plus the page's filters: the whole filtered selection, streamed."""
    project = _project(pk)
    fmt = request.GET.get("format", "csv")
    if fmt not in comment_export.FORMATS:
        raise Http404
    form, valid = _form(request, project)
    if not valid:
        return render(request, "labeling/planner/comments.html", _context(
            request, project, "comments", form=form, page=None, query=""), status=400)
    return comment_export.response(project, form.filters(), form.ordering(), fmt)

