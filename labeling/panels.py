"""What labeling adds to other apps' pages (registered in LabelingConfig.ready)."""
from __future__ import annotations

from django.template.loader import render_to_string

from . import selectors


def image_comments_panel(request, image) -> str:
    """The image detail page's section (through datasets.panels): every comment set submitted on
    the photo, in every project, with labeler, project, comment types and time. That page is for
    planners and engineers only."""
    return render_to_string("labeling/_image_comments.html",
                            {"sets": selectors.image_comment_sets(image.pk)}, request=request)
