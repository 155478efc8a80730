"""Sections other apps add to the image detail page, without datasets importing them.

`labeling` depends on `datasets`, never the reverse; yet a photo's page should show what
labelers wrote about it. An app registers a panel in its AppConfig.ready():

    datasets.panels.register_image_panel(render)   # render(request, image) -> HTML or ""

and `datasets.views.image_detail` shows every panel's HTML below the photo's facts, in the order
the apps were registered.
"""
from __future__ import annotations

from collections.abc import Callable

_IMAGE_PANELS: list[Callable] = []


def register_image_panel(render: Callable) -> None:
    """Add `render(request, image) -> str` (HTML, already escaped: a rendered template) to the
    image detail page. Registering the same function twice adds it once."""
    if render not in _IMAGE_PANELS:
        _IMAGE_PANELS.append(render)


def image_panels(request, image) -> list[str]:
    """The HTML of every registered panel for this photo; empty ones left out."""
    return [html for html in (render(request, image) for render in _IMAGE_PANELS) if html]
