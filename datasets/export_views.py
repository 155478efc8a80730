"""The export pages: an export's own status page, its progress as JSON for the live bar, its
files (local exports; S3 links are signed), and the POSTs of the snapshot page's export section
(start, resume, cancel), which go back to `next` when it is a local URL, else to the export."""
from __future__ import annotations

from django.contrib import messages
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.models import Role
from accounts.permissions import role_required

from .export import services
from .export.errors import ExportError
from .forms import ExportForm
from .models import ACTIVE_EXPORT_STATUSES, Export, Snapshot, SnapshotStatus

EXPORTERS = (Role.PLANNER, Role.ENGINEER)


def _back(request, export: Export | None) -> str:
    target = request.POST.get("next") or ""
    if target.startswith("/") and url_has_allowed_host_and_scheme(
            target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    if export is not None:
        return reverse("export-detail", args=[export.pk])
    return reverse("export-list")


@role_required(*EXPORTERS)
def export_list(request):
    exports = Export.objects.select_related("snapshot", "created_by")[:100]
    return render(request, "datasets/exports.html", {"exports": exports})


@role_required(*EXPORTERS)
def export_detail(request, pk: int):
    export = get_object_or_404(Export.objects.select_related("snapshot"), pk=pk)
    return render(request, "datasets/export_detail.html", {"export": export, "snapshot": export.snapshot})


@role_required(*EXPORTERS)
def export_progress(request, pk: int):
    export = get_object_or_404(Export, pk=pk)
    return JsonResponse({
        "id": export.pk,
        "status": export.status,
        "status_display": export.get_status_display(),
        "finished": export.status not in ACTIVE_EXPORT_STATUSES,
        "stalled": services.is_stalled(export),
        "percent": export.percent,
        "shards_done": export.shards_done,
        "shards_total": export.shards_total,
        "samples_done": export.samples_done,
        "samples_total": export.samples_total,
        "error": export.error_text,
    })


@role_required(*EXPORTERS)
def export_file(request, pk: int, path: str):
    """A file of a done local export, to planners and engineers (the path must be one the export
    listed, inside its folder)."""
    export = get_object_or_404(Export, pk=pk)
    full = services.download_path(export, path)
    if full is None:
        raise Http404(_("No such file in this export."))
    return FileResponse(open(full, "rb"), as_attachment=True, filename=full.name)


@role_required(*EXPORTERS)
def snapshot_exports(request, pk: int):
    """GET: the snapshot's export section on a page of its own. POST: start an export."""
    snapshot = get_object_or_404(Snapshot, pk=pk)
    if request.method != "POST":
        return render(request, "datasets/snapshot_exports.html", {"snapshot": snapshot})
    form = ExportForm(request.POST)
    if not form.is_valid():
        for field, errors in form.errors.items():
            label = form.fields[field].label if field in form.fields else ""
            for error in errors:
                messages.error(request, f"{label}: {error}" if label else error)
        return redirect(_back(request, None))
    try:
        export = services.start_export(snapshot, form.cleaned_data["destination"], form.options(), request.user)
    except ExportError as exc:
        messages.error(request, exc.text())
        return redirect(_back(request, None))
    messages.success(request, _("Export %(n)s of %(label)s started.") % {"n": export.pk, "label": snapshot.label})
    if snapshot.status == SnapshotStatus.ARCHIVED:
        messages.info(request, _("This version is archived; it is exported as it was frozen."))
    return redirect(_back(request, export))


@require_POST
@role_required(*EXPORTERS)
def export_resume(request, pk: int):
    export = get_object_or_404(Export, pk=pk)
    try:
        services.resume_export(export)
    except ExportError as exc:
        messages.error(request, exc.text())
    else:
        messages.success(request, _("Export %(n)s resumed: it writes only the shards not yet written.") % {"n": export.pk})
    return redirect(_back(request, export))


@require_POST
@role_required(*EXPORTERS)
def export_cancel(request, pk: int):
    export = get_object_or_404(Export, pk=pk)
    try:
        services.cancel_export(export, request.user)
    except ExportError as exc:
        messages.error(request, exc.text())
    else:
        messages.success(request, _("Export %(n)s cancelled.") % {"n": export.pk})
    return redirect(_back(request, export))
