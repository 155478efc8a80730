"""Django's admin for the catalogue (admins only). The pages under /datasets/ are the planners'
tools; here an admin can look anything up. Images and imports are read-mostly: their files, hashes
and reports come from the ingest path, and a photo's status changes through the actions below,
which call datasets.services so that quotas and labeling queues follow."""
from django.contrib import admin, messages
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from . import services
from .models import Category, Image, ImageStatus, ImportItem, ImportJob, Licence, Source, Subcategory


class SubcategoryInline(admin.TabularInline):
    model = Subcategory
    extra = 0
    fields = ("name", "slug", "quota", "is_active", "position")


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "quota", "full_policy", "is_active", "position")
    list_filter = ("is_active", "full_policy")
    search_fields = ("name", "slug")
    inlines = [SubcategoryInline]


@admin.register(Subcategory)
class SubcategoryAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "category", "quota", "is_active", "position")
    list_filter = ("category", "is_active")
    search_fields = ("name", "slug")


@admin.register(Licence)
class LicenceAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "commercial_use", "attribution_required", "share_alike")
    list_filter = ("commercial_use", "attribution_required", "share_alike")
    search_fields = ("code", "name")
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}


@admin.register(Source)
class SourceAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "default_licence", "created_by", "created_at")
    list_filter = ("kind",)
    search_fields = ("name",)
    raw_id_fields = ("created_by",)


def _status_action(status: str, description: str):
    def act(modeladmin, request, queryset):
        ids = list(queryset.values_list("pk", flat=True))
        changed = 0
        for start in range(0, len(ids), services.BULK_MAX):
            changed += services.set_image_status(ids[start:start + services.BULK_MAX], status, user=request.user)
        modeladmin.message_user(request, ngettext("%(n)d image changed.", "%(n)d images changed.", changed)
                                % {"n": changed}, messages.SUCCESS)

    act.__name__ = f"make_{status}"
    act.short_description = description
    return act


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ("id", "original_name", "category", "subcategory", "status", "source", "licence", "created_at")
    list_filter = ("status", "category", "subcategory", "source", "licence", "original_format")
    search_fields = ("id", "original_name", "title", "author", "sha256", "external_id")
    date_hierarchy = "created_at"
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_select_related = ("category", "subcategory", "source", "licence")
    actions = [
        _status_action(ImageStatus.RETIRED, _("Retire the selected images")),
        _status_action(ImageStatus.EXCLUDED, _("Exclude the selected images")),
        _status_action(ImageStatus.ACTIVE, _("Restore the selected images")),
    ]
    # What the ingest path wrote, and the status (changed by the actions, through the service).
    readonly_fields = (
        "id", "file", "thumbnail", "sha256", "pixel_sha256", "phash", "width", "height", "original_width",
        "original_height", "original_format", "original_bytes", "original_name", "category", "subcategory",
        "source", "import_job", "created_at", "status", "status_reason", "status_changed_at", "status_changed_by",
    )

    def has_add_permission(self, request):
        return False  # photos come in through imports


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = ("id", "kind", "source", "status", "total", "processed", "accepted", "duplicates", "refused",
                    "created_by", "created_at", "finished_at")
    list_filter = ("status", "kind", "source")
    readonly_fields = [f.name for f in ImportJob._meta.fields]

    def has_add_permission(self, request):
        return False  # imports start from the import page or the API


@admin.register(ImportItem)
class ImportItemAdmin(admin.ModelAdmin):
    list_display = ("job", "position", "name", "outcome", "reason")
    list_filter = ("outcome",)
    search_fields = ("name",)
    readonly_fields = ("job", "position", "name", "outcome", "reason", "image", "duplicate_of")

    def has_add_permission(self, request):
        return False
