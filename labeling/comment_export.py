"""The comment browser's download: the filtered comments of a project as CSV or JSON Lines,
streamed (a server-side cursor on PostgreSQL, a few thousand rows in memory at a time), for the
planner page and the API alike.

CSV is UTF-8 with a byte-order mark, so Excel opens Korean text as such, and every cell passes
through `datasets.csvsafe`, so no comment a labeler typed runs as a spreadsheet formula. JSON
Lines is one object per comment, text as written (JSON has no formulas).
"""
from __future__ import annotations

import io
import json
from collections.abc import Iterator

from django.http import StreamingHttpResponse
from django.utils import timezone

from datasets import csvsafe

from .models import Project
from .selectors import CommentFilters, project_comments

FORMATS = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson; charset=utf-8"}
# `labeler` is the username, or `ext:<slug>` for a set imported from an external source
# (labeling.external), whose name is in `external_source`.
COLUMNS = ("comment_id", "image_id", "comment_type", "text", "length", "labeler", "category", "subcategory",
           "guideline_version", "created_at", "external_source")
CHUNK = 2000
BOM = "\ufeff"


def _rows(project: Project, filters: CommentFilters, order: str) -> Iterator[tuple]:
    qs = project_comments(project, filters, order=order).values_list(
        "id", "assignment__image_id", "comment_type__slug", "text", "length", "assignment__labeler__username",
        "assignment__image__category__slug", "assignment__image__subcategory__slug", "guideline_version",
        "created_at", "assignment__external_source__slug", "assignment__external_source__name",
    )
    for row in qs.iterator(chunk_size=CHUNK):
        labeler = row[5] if row[5] is not None else f"ext:{row[10]}"
        yield (row[0], str(row[1]), *row[2:5], labeler, *row[6:9], timezone.localtime(row[9]).isoformat(), row[11] or "")


def csv_lines(project: Project, filters: CommentFilters, order: str = "newest") -> Iterator[str]:
    buf = io.StringIO()
    writer = csvsafe.writer(buf)
    writer.writerow(COLUMNS)
    yield BOM + _drain(buf)
    for n, row in enumerate(_rows(project, filters, order), 1):
        writer.writerow(["" if v is None else v for v in row])
        if n % 500 == 0:
            yield _drain(buf)
    yield _drain(buf)


def _drain(buf: io.StringIO) -> str:
    """What was written to `buf` since the last call; `buf` is emptied for the next lines."""
    text = buf.getvalue()
    buf.seek(0)
    buf.truncate(0)
    return text


def jsonl_lines(project: Project, filters: CommentFilters, order: str = "newest") -> Iterator[str]:
    for row in _rows(project, filters, order):
        yield json.dumps(dict(zip(COLUMNS, row)), ensure_ascii=False) + "\n"


def response(project: Project, filters: CommentFilters, order: str, fmt: str) -> StreamingHttpResponse:
    """A download of the filtered comments; `fmt` is one of FORMATS."""
    lines = csv_lines(project, filters, order) if fmt == "csv" else jsonl_lines(project, filters, order)
    resp = StreamingHttpResponse(lines, content_type=FORMATS[fmt])
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    resp["Content-Disposition"] = f'attachment; filename="project-{project.pk}-comments-{stamp}.{fmt}"'
    return resp
