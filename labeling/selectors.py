"""Read queries for labeling: progress for planners and labeled counts for the quota dashboard."""
from __future__ import annotations

from django.db.models import Count

from datasets.models import Category

from .models import Assignment, AssignmentStatus, Project, ProjectImage


def labeled_image_counts() -> dict[tuple[int | None, int | None], int]:
    """Images with at least one submitted comment set (in any project), per (category,
    subcategory), in one GROUP BY query."""
    rows = (
        Assignment.objects.filter(status=AssignmentStatus.SUBMITTED)
        .order_by()
        .values("image__category_id", "image__subcategory_id")
        .annotate(n=Count("image_id", distinct=True))
    )
    return {(r["image__category_id"], r["image__subcategory_id"]): r["n"] for r in rows}


def project_progress(project: Project) -> list[dict]:
    """Per category of the project's photos: how many have 0, 1, ... overlap submitted comment
    sets (`counts[k]` = photos with k sets), and the total. Photos without a category come last
    with category None. One GROUP BY query plus the category names."""
    n = project.overlap
    histogram: dict[int | None, list[int]] = {}
    for r in (
        ProjectImage.objects.filter(project=project)
        .order_by()
        .values("image__category_id", "submitted_count")
        .annotate(c=Count("*"))
    ):
        counts = histogram.setdefault(r["image__category_id"], [0] * (n + 1))
        counts[min(r["submitted_count"], n)] += r["c"]
    cats = {c.pk: c for c in Category.objects.filter(pk__in=[k for k in histogram if k is not None])}
    ordered = sorted((k for k in histogram if k is not None), key=lambda k: (cats[k].position, k))
    if None in histogram:
        ordered.append(None)
    return [
        {"category": cats.get(k), "counts": histogram[k], "total": sum(histogram[k])}
        for k in ordered
    ]
