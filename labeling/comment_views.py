"""The planners' comment browser (/projects/<id>/comments/): a project's comments, filtered,
searched and ordered, a page at a time, and the same selection as a CSV or JSON Lines download.
Planners and engineers read it; labelers never (403)."""
from __future__ import annotations

from urllib.parse import urlencode

from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import render

from accounts.permissions import role_required

from . import comment_export, selectors
from .comment_filters import CommentFilterForm
from .planner_views import READERS, _context, _project

COMMENTS_PER_PAGE = 50
# The page counts matches up to this many; past it, it says "more than" and pages that far.
COUNT_CAP = 10_000


class _CappedPaginator(Paginator):
    """A Paginator whose count stops at COUNT_CAP + 1 (selectors.count_at_most)."""

    @property
    def count(self):
        if not hasattr(self, "_count"):
            self._count = selectors.count_at_most(self.object_list, COUNT_CAP)
        return self._count


def _form(request, project):
    form = CommentFilterForm(project, request.GET)
    return form, form.is_valid()


@role_required(*READERS)
def project_comments(request, pk: int):
    project = _project(pk)
    form, valid = _form(request, project)
    page = None
    query = ""
    if valid:
        qs = selectors.project_comments(project, form.filters(), order=form.ordering())
        page = _CappedPaginator(qs, COMMENTS_PER_PAGE).get_page(request.GET.get("page"))
        query = urlencode({k: v for k, v in request.GET.items() if k != "page" and v})
    return render(request, "labeling/planner/comments.html", _context(
        request, project, "comments", form=form, page=page, query=query,
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

