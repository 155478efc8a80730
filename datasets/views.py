"""HTML pages for the catalogue: quotas, categories, sources and licences, imports, images."""
from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from accounts.models import Role
from accounts.permissions import role_required
from config.forms import add_service_errors

from . import panels, selectors, services
from .forms import CategoryForm, ImageBulkForm, ImportForm, SourceForm, SubcategoryForm
from .models import Category, Image, ImageStatus, ImportItem, ImportJob, ImportStatus, Licence, Outcome, Source, Subcategory

READERS = (Role.PLANNER, Role.ENGINEER)
IMAGES_PER_PAGE = 60
ITEMS_PER_PAGE = 200
PROGRESS_ITEMS = 100


# ---------------------------------------------------------------- quotas


@role_required(*READERS)
def quota_dashboard(request):
    rows, totals = selectors.quota_dashboard()
    totals["percent"] = min(100, round(100 * totals["collected"] / totals["quota"])) if totals["quota"] else 0
    return render(request, "datasets/quotas.html", {"rows": rows, "totals": totals})


# ---------------------------------------------------------------- categories


@role_required(Role.PLANNER)
def categories(request):
    form = CategoryForm(prefix="new")
    if request.method == "POST":
        form = CategoryForm(request.POST, prefix="new")
        if form.is_valid():
            try:
                category = services.save_category(**form.cleaned_data)
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, _("Category “%(name)s” added.") % {"name": category.name})
                return redirect("category-edit", category.pk)
    cats = Category.objects.annotate(n_subs=Count("subcategories", distinct=True)).order_by("position", "id")
    return render(request, "datasets/categories.html", {"categories": cats, "form": form})


@role_required(Role.PLANNER)
def category_edit(request, pk: int):
    category = get_object_or_404(Category, pk=pk)
    form = CategoryForm(instance=category, prefix="cat")
    sub_form = SubcategoryForm(category=category, prefix="newsub")
    subs = list(category.subcategories.order_by("position", "id"))
    sub_forms = {s.pk: SubcategoryForm(instance=s, category=category, prefix=f"sub{s.pk}") for s in subs}
    if request.method == "POST":
        action = request.POST.get("action", "")
        if action == "category":
            form = CategoryForm(request.POST, instance=category, prefix="cat")
            if form.is_valid():
                try:
                    services.save_category(**form.cleaned_data, is_active=category.is_active, instance=category)
                except ValidationError as exc:
                    add_service_errors(form, exc)
                else:
                    messages.success(request, _("Category saved."))
                    return redirect("category-edit", category.pk)
        elif action == "add-subcategory":
            sub_form = SubcategoryForm(request.POST, category=category, prefix="newsub")
            if sub_form.is_valid():
                try:
                    sub = services.save_subcategory(category=category, **sub_form.cleaned_data)
                except ValidationError as exc:
                    add_service_errors(sub_form, exc)
                else:
                    messages.success(request, _("Subcategory “%(name)s” added.") % {"name": sub.name})
                    return redirect("category-edit", category.pk)
        elif action.startswith("sub-"):
            sub = next((s for s in subs if f"sub-{s.pk}" == action), None)
            if sub is None:
                raise Http404
            bound = SubcategoryForm(request.POST, instance=sub, category=category, prefix=f"sub{sub.pk}")
            sub_forms[sub.pk] = bound
            if bound.is_valid():
                try:
                    services.save_subcategory(category=category, **bound.cleaned_data, is_active=sub.is_active,
                                              instance=sub)
                except ValidationError as exc:
                    add_service_errors(bound, exc)
                else:
                    messages.success(request, _("Subcategory saved."))
                    return redirect("category-edit", category.pk)
    # Forms that failed keep their values; reload the rest from the database.
    category.refresh_from_db()
    return render(request, "datasets/category_edit.html", {
        "category": category, "form": form, "sub_form": sub_form,
        "subs": [(s, sub_forms[s.pk]) for s in subs],
    })


@require_POST
@role_required(Role.PLANNER)
def category_active(request, pk: int):
    category = get_object_or_404(Category, pk=pk)
    active = request.POST.get("active") == "1"
    services.save_category(slug=category.slug, name=category.name, quota=category.quota,
                           full_policy=category.full_policy, is_active=active, instance=category)
    if active:
        messages.success(request, _("Category “%(name)s” is active again.") % {"name": category.name})
    else:
        messages.success(request, _("Category “%(name)s” retired: it takes no new images.") % {"name": category.name})
    if request.POST.get("back") == "edit":
        return redirect("category-edit", category.pk)
    return redirect("categories")


@require_POST
@role_required(Role.PLANNER)
def subcategory_active(request, pk: int):
    sub = get_object_or_404(Subcategory.objects.select_related("category"), pk=pk)
    active = request.POST.get("active") == "1"
    services.save_subcategory(category=sub.category, slug=sub.slug, name=sub.name, quota=sub.quota,
                              is_active=active, instance=sub)
    if active:
        messages.success(request, _("Subcategory “%(name)s” is active again.") % {"name": sub.name})
    else:
        messages.success(request, _("Subcategory “%(name)s” retired: it takes no new images.") % {"name": sub.name})
    return redirect("category-edit", sub.category_id)


# ---------------------------------------------------------------- sources and licences


@role_required(*READERS)
def sources(request):
    form = SourceForm()
    can_edit = request.user.has_role(Role.PLANNER)
    if request.method == "POST":
        if not can_edit:
            raise PermissionDenied
        form = SourceForm(request.POST)
        if form.is_valid():
            try:
                source = services.save_source(**form.cleaned_data, user=request.user)
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                messages.success(request, _("Source “%(name)s” created.") % {"name": source.name})
                return redirect("sources")
    return render(request, "datasets/sources.html", {
        "sources": Source.objects.select_related("default_licence").annotate(n_images=Count("images")).order_by("name"),
        "licences": Licence.objects.all(),
        "commercial_only": settings.INGEST["COMMERCIAL_ONLY"],
        "form": form,
        "can_edit": can_edit,
    })


# ---------------------------------------------------------------- imports


@role_required(*READERS)
def imports(request):
    services.sweep_stalled_imports_now_and_then()
    jobs = ImportJob.objects.select_related("source", "category", "subcategory", "created_by")
    page = Paginator(jobs, 50).get_page(request.GET.get("page"))
    return render(request, "datasets/imports.html", {"page": page})


@role_required(Role.PLANNER)
def import_new(request):
    form = ImportForm(initial={"mode": "files"})
    if request.method == "POST":
        form = ImportForm(request.POST, request.FILES)
        if form.is_valid():
            d = form.cleaned_data
            mode = d["mode"]
            what = {
                "files": {"files": d["files"]},
                "manifest": {"manifest": d["manifest"], "manifest_base": d["manifest_base"] or None},
                "s3": {"s3_bucket": d["s3_bucket"], "s3_prefix": d["s3_prefix"],
                       "s3_endpoint_url": d["s3_endpoint_url"] or None},
                "folder": {"folder": d["folder"]},
            }[mode]
            try:
                job = services.create_import(
                    source=d["source"], user=request.user, category=d["category"],
                    subcategory=d["subcategory"], licence=d["licence"], author=d["author"], **what,
                )
            except services.IngestError as exc:
                form.add_error(None, str(exc))
            else:
                return redirect("import-detail", job.pk)
    # The page's script refuses a selection over the limit before uploading anything; past it the
    # server answers 413 (config.middleware.RequestSizeLimitMiddleware).
    return render(request, "datasets/import_new.html", {"form": form, "upload_max_bytes": settings.UPLOAD_MAX_BYTES})


def _item_json(item: ImportItem) -> dict:
    image = item.image or item.duplicate_of
    return {
        "position": item.position,
        "name": item.name,
        "outcome": item.outcome,
        "outcome_display": item.get_outcome_display(),
        "reason": item.reason_text,
        "image_url": reverse("image-detail", args=[image.pk]) if image else None,
        "thumbnail_url": image.thumbnail.url if image else None,
        "is_duplicate": item.duplicate_of_id is not None,
    }


@role_required(*READERS)
def import_progress(request, pk: int):
    """Progress as JSON for the detail page to poll: counts and report lines after `after`."""
    services.sweep_stalled_imports_now_and_then()
    job = get_object_or_404(ImportJob, pk=pk)
    try:
        after = int(request.GET.get("after", -1))
    except ValueError:
        after = -1
    items = (job.items.filter(position__gt=after).select_related("image", "duplicate_of")
             .order_by("position")[:PROGRESS_ITEMS])
    return JsonResponse({
        "id": job.pk,
        "status": job.status,
        "status_display": job.get_status_display(),
        "finished": job.finished,
        "error": job.error_text,
        "total": job.total,
        "processed": job.processed,
        "percent": job.percent,
        "counts": {"accepted": job.accepted, "duplicate": job.duplicates, "refused": job.refused,
                   "warnings": job.warnings},
        "items": [_item_json(i) for i in items],
    })


@role_required(*READERS)
def import_detail(request, pk: int):
    services.sweep_stalled_imports_now_and_then()
    job = get_object_or_404(ImportJob.objects.select_related("source", "category", "subcategory", "licence"), pk=pk)
    outcome = request.GET.get("outcome", "")
    items = job.items.select_related("image", "duplicate_of").order_by("position")
    if outcome == "warning":
        items = items.filter(outcome=Outcome.ACCEPTED).exclude(reason="")
    elif outcome in Outcome.values:
        items = items.filter(outcome=outcome)
    else:
        outcome = ""
    page = Paginator(items, ITEMS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "datasets/import_detail.html", {
        "job": job, "page": page, "outcome": outcome, "query": urlencode({"outcome": outcome}) if outcome else "",
        "finished": job.finished,
        "can_resume": job.status == ImportStatus.INTERRUPTED and request.user.has_role(Role.PLANNER),
        "last_position": max((i.position for i in page.object_list), default=-1),
        "outcomes": [("", _("All"), job.processed), (Outcome.ACCEPTED, _("Accepted"), job.accepted),
                     (Outcome.DUPLICATE, _("Duplicate"), job.duplicates), (Outcome.REFUSED, _("Refused"), job.refused),
                     ("warning", _("Warnings"), job.warnings)],
    })


@require_POST
@role_required(Role.PLANNER)
def import_resume(request, pk: int):
    job = get_object_or_404(ImportJob, pk=pk)
    try:
        services.resume_import(job)
    except services.NotResumable:
        messages.error(request, _("Only an interrupted import can be resumed."))
    else:
        messages.success(request, _("Import %(n)s resumed: it reads only the files not yet reported.") % {"n": job.pk})
    return redirect("import-detail", job.pk)


# ---------------------------------------------------------------- images


STATUS_FILTERS = (ImageStatus.ACTIVE, ImageStatus.RETIRED, ImageStatus.EXCLUDED, selectors.STATUS_ALL)


@role_required(*READERS)
def images(request):
    f = {k: request.GET.get(k, "").strip() for k in ("category", "subcategory", "source", "licence", "status")}
    if f["status"] not in STATUS_FILTERS:
        f["status"] = ""  # the default: active photos
    # isdecimal, not isdigit ("²" is a digit int() refuses); 18 digits stay inside bigint.
    source_id = int(f["source"]) if f["source"].isdecimal() and len(f["source"]) <= 18 else None
    qs = selectors.images(category=f["category"] or None, subcategory=f["subcategory"] or None, source=source_id,
                          status=f["status"] or ImageStatus.ACTIVE)
    if f["licence"]:
        qs = qs.filter(licence__code=f["licence"])
    page = Paginator(qs, IMAGES_PER_PAGE).get_page(request.GET.get("page"))
    query = urlencode({k: v for k, v in f.items() if v})
    categories = list(Category.objects.prefetch_related("subcategories"))
    can_edit = request.user.has_role(Role.PLANNER)
    return render(request, "datasets/images.html", {
        "page": page, "filters": f, "query": query,
        "categories": categories,
        "subcategories": [s for c in categories for s in c.subcategories.all()],
        "sources": Source.objects.all(), "licences": Licence.objects.all(),
        "statuses": [(ImageStatus.RETIRED, ImageStatus.RETIRED.label), (ImageStatus.EXCLUDED, ImageStatus.EXCLUDED.label),
                     (selectors.STATUS_ALL, _("All"))],
        "bulk_form": ImageBulkForm() if can_edit else None,
        "back": request.get_full_path(),
    })


@role_required(*READERS)
def image_detail(request, pk):
    image = get_object_or_404(Image.objects.select_related("category", "subcategory", "source", "licence",
                                                           "status_changed_by"), pk=pk)
    can_edit = request.user.has_role(Role.PLANNER)
    return render(request, "datasets/image_detail.html", {
        "image": image, "bulk_form": ImageBulkForm() if can_edit else None, "back": request.get_full_path(),
        # Sections other apps register (labeling: the comment sets written on this photo).
        "panels": panels.image_panels(request, image),
    })


def _images_back(request) -> str:
    """Where a bulk action returns: the grid page (with its filters) or image page it came from."""
    target = request.POST.get("next") or ""
    if target.startswith(reverse("images")) and url_has_allowed_host_and_scheme(
            target, allowed_hosts={request.get_host()}):
        return target
    return reverse("images")


@require_POST
@role_required(Role.PLANNER)
def images_bulk(request):
    """Move, retire, exclude or restore the chosen photos (datasets.services), then back."""
    back = _images_back(request)
    form = ImageBulkForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect(back)
    ids, action = form.cleaned_data["ids"], form.cleaned_data["action"]
    try:
        if action == ImageBulkForm.MOVE:
            category, subcategory = form.target_parts()
            n = services.recategorise_images(ids, category=category, subcategory=subcategory)
            label = _target_labels(form).get(form.cleaned_data["target"], "")
            message = ngettext("%(n)s photo moved to %(target)s.", "%(n)s photos moved to %(target)s.", n)
            messages.success(request, message % {"n": f"{n:,}", "target": label})
        else:
            status = {ImageBulkForm.RETIRE: ImageStatus.RETIRED, ImageBulkForm.EXCLUDE: ImageStatus.EXCLUDED,
                      ImageBulkForm.RESTORE: ImageStatus.ACTIVE}[action]
            n = services.set_image_status(ids, status, reason=form.cleaned_data["reason"], user=request.user)
            message = {
                ImageStatus.RETIRED: ngettext("%(n)s photo retired.", "%(n)s photos retired.", n),
                ImageStatus.EXCLUDED: ngettext("%(n)s photo excluded.", "%(n)s photos excluded.", n),
                ImageStatus.ACTIVE: ngettext("%(n)s photo restored.", "%(n)s photos restored.", n),
            }[status]
            messages.success(request, message % {"n": f"{n:,}"})
    except ValidationError as exc:
        for error in exc.messages:
            messages.error(request, error)
        return redirect(back)
    except services.IngestError as exc:
        messages.error(request, str(exc))
        return redirect(back)
    if n < len(ids):
        unchanged = len(ids) - n
        if action == ImageBulkForm.MOVE:
            message = ngettext("%(n)s photo was already there.", "%(n)s photos were already there.", unchanged)
        else:
            message = ngettext("%(n)s photo already had that status.", "%(n)s photos already had that status.", unchanged)
        messages.info(request, message % {"n": f"{unchanged:,}"})
    return redirect(back)


def _target_labels(form: ImageBulkForm) -> dict:
    return {value: label for _group, options in form.fields["target"].choices[1:] for value, label in options}
