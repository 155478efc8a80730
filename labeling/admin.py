from django.contrib import admin

from .models import (
    Assignment,
    Comment,
    CommentType,
    ExampleComment,
    ExternalSource,
    GuidelineExample,
    GuidelineVersion,
    Project,
    ProjectImage,
    ProjectMember,
    RuleHit,
)


class CommentTypeInline(admin.TabularInline):
    model = CommentType
    extra = 0


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ("name", "is_active", "photo_set", "overlap", "cap_per_labeler", "lease_minutes", "last_joined_at",
                    "created_at")
    list_filter = ("is_active", "photo_set")
    search_fields = ("name",)
    filter_horizontal = ("categories", "subcategories", "sources")
    inlines = [CommentTypeInline]


@admin.register(ProjectMember)
class ProjectMemberAdmin(admin.ModelAdmin):
    list_display = ("user", "project", "cap_override", "is_active", "submitted_count", "rejection_count", "last_active_at")
    list_filter = ("project", "is_active")
    search_fields = ("user__username",)
    raw_id_fields = ("user",)


@admin.register(RuleHit)
class RuleHitAdmin(admin.ModelAdmin):
    """Read only: services.record_blocked_submit and services.submit keep these counts."""

    list_display = ("member", "project", "code", "count")
    list_filter = ("project", "code")
    search_fields = ("member__user__username",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ProjectImage)
class ProjectImageAdmin(admin.ModelAdmin):
    list_display = ("image", "project", "category", "slots_taken", "submitted_count", "priority", "excluded")
    list_filter = ("project",)
    raw_id_fields = ("image",)


class CommentInline(admin.TabularInline):
    model = Comment
    extra = 0
    readonly_fields = ("comment_type", "text", "length", "guideline_version", "created_at")


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ("image", "labeler", "external_source", "project", "status", "leased_at", "expires_at", "report_reason")
    list_filter = ("project", "status", "report_reason")
    search_fields = ("labeler__username",)
    raw_id_fields = ("image", "labeler")
    list_select_related = ("labeler", "external_source", "project")
    inlines = [CommentInline]


@admin.register(GuidelineVersion)
class GuidelineVersionAdmin(admin.ModelAdmin):
    """Published versions are history: shown, never edited."""

    list_display = ("project", "version", "published_at", "published_by")
    list_filter = ("project",)
    readonly_fields = ("project", "version", "body", "examples", "published_at", "published_by")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ExampleCommentInline(admin.TabularInline):
    model = ExampleComment
    extra = 0


@admin.register(GuidelineExample)
class GuidelineExampleAdmin(admin.ModelAdmin):
    list_display = ("image", "project", "note", "position")
    list_filter = ("project",)
    raw_id_fields = ("image",)
    inlines = [ExampleCommentInline]


@admin.register(ExternalSource)
class ExternalSourceAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "created_at")
    search_fields = ("name", "slug")
