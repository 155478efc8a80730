"""What the planner API (labeling.api.planner) and the labeler flow (labeling.api.labeler) share:
access to a project in the URL (ProjectChildMixin), the photo and assignment representations,
the error bodies and the service errors' registration (config.api.exception_handler answers them).

Who may do what:
- Planners write project configuration (projects, comment types, members, guidelines, examples,
  reports); planners and ML engineers read it; admins do everything (accounts.permissions.HasRole).
- A labeler lists and reads the projects where they are an active member and uses the labeler
  flow there. On any other project every project endpoint answers **403** (the project exists,
  they are just not in it: the same answer `next` gives, see NotAMember). An assignment that is
  not the caller's answers **404**, so ids of other labelers' work reveal nothing.

Service errors (registered in `register_service_errors`, called by labeling.apps):
SubmissionRejected -> 400 {"code": "rules", "errors": {slug: [{code, message}]}}; NotAMember ->
403 and the other LabelingErrors -> 409 {"code", "detail"}; Django ValidationError -> 400 field
errors (config.api).
"""
from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse
from rest_framework import permissions, serializers, status

from accounts.models import Role
from accounts.permissions import HasRole
from config.api import file_url, register_service_error
from datasets.models import Image

from .. import services
from ..models import Assignment, Project, ProjectMember

STAFF_READ = (Role.PLANNER, Role.ENGINEER)


# ---------------------------------------------------------------- errors


def rules_body(exc: services.SubmissionRejected) -> dict:
    errors = {
        slug: [{"code": code, "message": message} for code, message in zip(exc.codes[slug], messages)]
        for slug, messages in exc.message_dict.items()
    }
    return {"code": "rules", "errors": errors}


def register_service_errors() -> None:
    """labeling.apps calls this once: how config.api.exception_handler answers the engine's refusals."""
    register_service_error(services.SubmissionRejected, status.HTTP_400_BAD_REQUEST, rules_body)
    register_service_error(services.NotAMember, status.HTTP_403_FORBIDDEN)
    register_service_error(services.LabelingError, status.HTTP_409_CONFLICT)


class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    detail = serializers.CharField()


class RuleViolationSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="too_short, too_long, jamo_or_emoji_only, repeated_run, copied_example, "
                                           "own_repeat, url, email, phone, required, unknown_type")
    message = serializers.CharField()


class RulesErrorSerializer(serializers.Serializer):
    code = serializers.CharField(help_text='Always "rules".')
    errors = serializers.DictField(child=RuleViolationSerializer(many=True), help_text="Per comment type slug.")


NOT_MEMBER = OpenApiResponse(ErrorSerializer, description="Not an active labeler of this project (code not_member).")
NOT_YOURS = OpenApiResponse(description="No such assignment of yours.")
CONFLICT = OpenApiResponse(ErrorSerializer, description="The engine refuses: code lease_lost, closed, cap_reached, "
                                                        "project_inactive or error.")
IN_USE = OpenApiResponse(ErrorSerializer, description="Comments point to it (code in_use); it cannot be deleted.")


# ---------------------------------------------------------------- access


def is_staff_reader(user) -> bool:
    return user.has_role(*STAFF_READ)


def project_for(user, pk, *, members: bool) -> Project:
    """The project `pk`: 404 when there is none; planners, engineers and admins pass; with
    `members`, so does an active member; anyone else gets 403 (NotAMember)."""
    project = get_object_or_404(Project, pk=pk)
    if is_staff_reader(user):
        return project
    if members and ProjectMember.objects.filter(project=project, user=user, is_active=True).exists():
        return project
    raise services.NotAMember()


class ProjectChildMixin:
    """Every view under /api/projects/{project_pk}/: `self.project` is the project in the URL
    (404 when there is none), and list views define `project_queryset(project)`.

    By default planners write and planners and engineers read (HasRole). With
    `members_may_read`, active labelers of the project read too (anyone else signed in: 403)."""

    permission_classes = [HasRole]
    members_may_read = False

    def get_permissions(self):
        if self.members_may_read:
            return [permissions.IsAuthenticated()]
        return super().get_permissions()

    @property
    def project(self) -> Project:
        if not hasattr(self, "_project"):
            self._project = project_for(self.request.user, self.kwargs["project_pk"], members=self.members_may_read)
        return self._project

    def project_queryset(self, project: Project):
        raise NotImplementedError

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema generator has no project
            return self.get_serializer_class().Meta.model.objects.none()
        return self.project_queryset(self.project)

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if not getattr(self, "swagger_fake_view", False):
            context["project"] = self.project
        return context


class ProjectPermission(permissions.BasePermission):
    """Projects: labelers, planners and engineers read (labelers only their own projects, see
    ProjectViewSet.get_object); planners write; admins do everything."""

    def has_permission(self, request, view):
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if request.method in permissions.SAFE_METHODS:
            return user.has_role(Role.LABELER, *STAFF_READ)
        return user.has_role(Role.PLANNER)


# ---------------------------------------------------------------- shared representations


class TaskImageSerializer(serializers.Serializer):
    """The photo of an assignment: its stored copy and thumbnail, as absolute URLs."""

    id = serializers.UUIDField()
    url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()

    def get_url(self, obj: Image) -> str:
        return file_url(obj.file, self.context)

    def get_thumbnail_url(self, obj: Image) -> str:
        return file_url(obj.thumbnail, self.context)


class AssignmentSerializer(serializers.ModelSerializer):
    image = TaskImageSerializer(read_only=True)
    # A plain string (not an enum) in the schema: "status" names other enums in this API.
    status = serializers.CharField(read_only=True, help_text="leased, submitted, skipped, reported, expired or returned.")

    class Meta:
        model = Assignment
        fields = ["id", "project", "image", "status", "leased_at", "expires_at", "submitted_at"]
        read_only_fields = fields


class ProgressSerializer(serializers.Serializer):
    done = serializers.IntegerField(help_text="Photos this labeler submitted in the project.")
    cap = serializers.IntegerField(help_text="The most photos they may label in the project.")


class CommentOutSerializer(serializers.Serializer):
    comment_type = serializers.CharField(help_text="Comment type slug.")
    text = serializers.CharField()
    length = serializers.IntegerField(help_text="Characters as the rules count them.")
    guideline_version = serializers.IntegerField(allow_null=True)


def progress_of(member: ProjectMember) -> dict:
    return {"done": member.submitted_count, "cap": member.cap}


def member_progress(project_id: int, user) -> dict:
    member = ProjectMember.objects.select_related("project").get(project_id=project_id, user=user)
    return progress_of(member)


def comments_out(comments, slugs: dict[int, str] | None = None) -> list[dict]:
    out = []
    for c in comments:
        slug = slugs[c.comment_type_id] if slugs is not None else c.comment_type.slug
        out.append({"comment_type": slug, "text": c.text, "length": c.length, "guideline_version": c.guideline_version})
    return out
