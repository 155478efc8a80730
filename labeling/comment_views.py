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
    """(page, rows, capped) for a page of `qs`. Counting stops past COUNT_CAP
    (selectors.count_at_most): then `capped` is true, the page says "more than", and the pager
    reaches the first COUNT_CAP rows (narrow the filters, change the order, or download for the
    rest). On the first page, when every match fits on it, no count runs at all: a search for a
    rare phrase reads the comments once, not twice."""
    if str(number or "1") == "1":
        rows = list(qs[: COMMENTS_PER_PAGE + 1])
        if len(rows) <= COMMENTS_PER_PAGE:
            return _page_of(len(rows), COMMENTS_PER_PAGE, 1), rows, False
        total = selectors.count_at_most(qs, COUNT_CAP)
        return _page_of(min(total, COUNT_CAP), COMMENTS_PER_PAGE, 1), rows[:COMMENTS_PER_PAGE], total > COUNT_CAP
    total = selectors.count_at_most(qs, COUNT_CAP)
    page = _page_of(min(total, COUNT_CAP), COMMENTS_PER_PAGE, number)
    start = page.start_index() - 1 if total else 0
    return page, list(qs[start:start + COMMENTS_PER_PAGE]), total > COUNT_CAP


@role_required(*READERS)
def project_comments(request, pk: int):
    project = _project(pk)
    form, valid = _form(request, project)
    page, rows, capped, query = None, [], False, ""
    if valid:
        qs = selectors.project_comments(project, form.filters(), order=form.ordering())
        page, rows, capped = _page(qs, request.GET.get("page"))
        query = urlencode({k: v for k, v in request.GET.items() if k != "page" and v})
    return render(request, "labeling/planner/comments.html", _context(
        request, project, "comments", form=form, page=page, rows=rows, query=query,
        capped=capped, cap=COUNT_CAP,
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

