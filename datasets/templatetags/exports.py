"""The snapshot page's export section (templates/datasets/_snapshot_exports.html) gets its rows
and its form here, so that a page only includes the template with `snapshot`."""
from django import template

from .. import selectors
from ..forms import ExportForm

register = template.Library()


@register.simple_tag
def snapshot_exports(snapshot, only=None):
    """The snapshot's exports (or just `only`, on an export's own page)."""
    if only is not None:
        return selectors.snapshot_exports(snapshot, only=only)
    return selectors.snapshot_exports(snapshot)


@register.simple_tag
def export_files(export):
    return selectors.export_files(export)


@register.simple_tag
def export_form():
    return ExportForm()


@register.simple_tag
def snapshot_runs(snapshot):
    """The training runs of the snapshot version, newest first (the snapshot page's run section)."""
    from ..runs.selectors import runs

    return list(runs(snapshot.pk).order_by("-started_at", "-id")[:20])
