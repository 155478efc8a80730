"""REST API of labeling for planners: projects and their configuration (comment types, members,
guideline and examples), reported photos and progress. Planners write, planners and engineers
read, labelers read the projects they are members of and their published guideline (see
labeling.api.common, which also says how service errors answer)."""
from __future__ import annotations

import copy

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import F
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import exceptions, generics, serializers, status, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Role, User
from config.api import FormParser, JSONParser, MultiPartParser, Pagination, file_url, page_number
from datasets.models import Category, Image, Source, Subcategory

from .. import markup, selectors, services
from ..models import (
    RULE_FIELDS,
    Assignment,
    AssignmentStatus,
    CommentType,
    GuidelineExample,
    GuidelineVersion,
    Project,
    ProjectMember,
    Verdict,
)
from .common import (
    CONFLICT,
    IN_USE,
    NOT_MEMBER,
    ProgressSerializer,
    ProjectChildMixin,
    ProjectPermission,
    TaskImageSerializer,
    is_staff_reader,
    project_for,
)

# ---------------------------------------------------------------- projects and comment types


class CommentTypeSerializer(serializers.ModelSerializer):
    class Meta:
        model = CommentType
        fields = ["id", "slug", "name", "description", "min_length", "max_length", "position"]
        extra_kwargs = {"position": {"required": False}}

    def validate(self, attrs):
        """The model's own checks (max >= min, a slug unique in the project) as field errors."""
        project = self.context.get("project")
        if self.instance is not None:
            candidate = copy.copy(self.instance)
            for name, value in attrs.items():
                setattr(candidate, name, value)
        else:
            candidate = CommentType(project=project, **attrs)
        try:
            candidate.full_clean(exclude=None if project is not None else ["project"])
        except DjangoValidationError as exc:
            raise serializers.ValidationError(serializers.as_serializer_error(exc)) from None
        return attrs

    def create(self, validated_data):
        return services.add_comment_type(self.context["project"], **validated_data)

    def update(self, instance, validated_data):
        return services.update_comment_type(instance, **validated_data)


class ProjectSerializer(serializers.ModelSerializer):
    categories = serializers.SlugRelatedField(
        slug_field="slug", many=True, queryset=Category.objects.all(), required=False,
        help_text="Category slugs (with subcategories: photos in any of them; both empty: every category).",
    )
    subcategories = serializers.PrimaryKeyRelatedField(
        many=True, queryset=Subcategory.objects.all(), required=False, help_text="Subcategory ids."
    )
    sources = serializers.PrimaryKeyRelatedField(
        many=True, queryset=Source.objects.all(), required=False, help_text="Source ids (empty: every source)."
    )
    comment_types = CommentTypeSerializer(
        many=True, required=False,
        help_text="On create only (default: the short reaction and the specific comment); "
                  "later use /api/projects/{id}/comment-types/.",
    )
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    my_progress = serializers.SerializerMethodField()

    class Meta:
        model = Project
        fields = [
            "id", "name", "description", "is_active", "overlap", "cap_per_labeler", "lease_minutes",
            "categories", "subcategories", "sources", "photo_set", "last_joined_at", "last_joined_count",
            *RULE_FIELDS, "guideline_version", "comment_types", "created_by", "created_at", "my_progress",
        ]
        read_only_fields = ["guideline_version", "created_at"]

    @extend_schema_field(ProgressSerializer(allow_null=True))
    def get_my_progress(self, obj: Project):
        """The caller's done/cap when they are a member of the project, else null."""
        member = self.context.get("memberships", {}).get(obj.pk)
        if member is None:
            return None
        cap = obj.cap_per_labeler if member["cap_override"] is None else member["cap_override"]
        return {"done": member["submitted_count"], "cap": cap}

    def to_internal_value(self, data):
        # The count first: each nested type is checked on its own, which for 10,000 took 30 s.
        types = data.get("comment_types") if hasattr(data, "get") else None
        if isinstance(types, list):
            services.check_comment_type_count(len(types))
        return super().to_internal_value(data)

    def validate_comment_types(self, value):
        if self.instance is not None:
            raise serializers.ValidationError("Change comment types at /api/projects/{id}/comment-types/.")
        if not value:
            raise serializers.ValidationError("A project needs at least one comment type.")
        slugs = [ct["slug"] for ct in value]
        if len(set(slugs)) != len(slugs):
            raise serializers.ValidationError("Each comment type needs its own slug.")
        return value

    def create(self, validated_data):
        kwargs = {
            "categories": validated_data.pop("categories", []),
            "subcategories": validated_data.pop("subcategories", []),
            "sources": validated_data.pop("sources", []),
        }
        types = validated_data.pop("comment_types", None)
        if types is not None:
            kwargs["comment_types"] = [
                {**ct, "position": ct.get("position", i)} for i, ct in enumerate(types)
            ]
        project, _sync = services.create_project_with_queue(
            validated_data.pop("name"), created_by=self.context["request"].user, **kwargs, **validated_data)
        return project

    def update(self, instance, validated_data):
        services.update_project(instance, **validated_data)
        return instance


@extend_schema_view(
    list=extend_schema(description="Planners, engineers and admins see every project; a labeler the projects "
                                   "where they are an active member, with `my_progress`."),
    destroy=extend_schema(responses={204: None, 409: IN_USE}),
)
class ProjectViewSet(viewsets.ModelViewSet):
    """Labeling projects: photos by category, subcategory and source; overlap; caps; leases; rules."""

    serializer_class = ProjectSerializer
    permission_classes = [ProjectPermission]
    pagination_class = Pagination
    search_fields = ["name", "description"]
    ordering_fields = ["created_at", "name"]
    ordering = ["-created_at", "-id"]
    filterset_fields = ["is_active"]

    def get_queryset(self):
        qs = Project.objects.select_related("created_by").prefetch_related(
            "categories", "subcategories", "sources", "comment_types"
        )
        user = self.request.user
        if getattr(self, "swagger_fake_view", False) or is_staff_reader(user) or self.action != "list":
            return qs
        return qs.filter(members__user=user, members__is_active=True)

    def get_object(self):
        project = super().get_object()
        if not is_staff_reader(self.request.user):
            project_for(self.request.user, project.pk, members=True)
        return project

    def get_serializer_context(self):
        context = super().get_serializer_context()
        user = self.request.user
        if user.is_authenticated:
            context["memberships"] = {
                m["project_id"]: m for m in ProjectMember.objects.filter(user=user, is_active=True)
                .values("project_id", "cap_override", "submitted_count")
            }
        return context

    def perform_destroy(self, instance):
        services.delete_project(instance)


@extend_schema_view(destroy=extend_schema(responses={204: None, 409: IN_USE}))
class CommentTypeViewSet(ProjectChildMixin, viewsets.ModelViewSet):
    """A project's comment types (one text box each on the labeler page) with their lengths."""

    serializer_class = CommentTypeSerializer
    pagination_class = None
    filter_backends: list = []

    def project_queryset(self, project):
        return CommentType.objects.filter(project=project).order_by("position", "id")

    def perform_destroy(self, instance):
        services.delete_comment_type(instance)


# ---------------------------------------------------------------- members


class MemberSerializer(serializers.ModelSerializer):
    user_id = serializers.IntegerField(read_only=True)
    username = serializers.CharField(source="user.username", read_only=True)
    name = serializers.CharField(source="user.get_full_name", read_only=True)
    cap = serializers.IntegerField(read_only=True, help_text="cap_override, or the project's cap.")

    class Meta:
        model = ProjectMember
        fields = [
            "user_id", "username", "name", "is_active", "cap_override", "cap", "submitted_count",
            "rejection_count", "work_seconds_total", "joined_at", "last_active_at", "last_submitted_at",
        ]
        read_only_fields = fields


class MemberAddSerializer(serializers.Serializer):
    username = serializers.CharField(required=False, help_text="The labeler's username (or give `user`).")
    user = serializers.IntegerField(required=False, help_text="The labeler's user id (or give `username`).")
    cap_override = serializers.IntegerField(required=False, allow_null=True, min_value=0,
                                            help_text="Empty: the project's cap.")

    def validate(self, attrs):
        if ("username" in attrs) == ("user" in attrs):
            raise serializers.ValidationError({"non_field_errors": ["Give either username or user."]})
        field, lookup = ("username", {"username": attrs.get("username")}) if "username" in attrs else \
            ("user", {"pk": attrs.get("user")})
        user = User.objects.filter(**lookup).first()
        if user is None:
            raise serializers.ValidationError({field: ["No such user."]})
        if user.role != Role.LABELER:
            raise serializers.ValidationError({field: [f"{user.username} is not a labeler."]})
        attrs["user_obj"] = user
        return attrs


class MemberCapSerializer(serializers.Serializer):
    cap_override = serializers.IntegerField(allow_null=True, min_value=0, help_text="null: the project's cap.")


class DeactivatedSerializer(serializers.Serializer):
    returned_leases = serializers.IntegerField(help_text="Open leases given back to the queue.")


class CsvImportSerializer(serializers.Serializer):
    file = serializers.FileField(
        help_text="UTF-8 CSV with a header row: username (required), password (new accounts; the same password "
                  "rules as every form: 8+ characters, not a common password), "
                  "name, email, cap."
    )


class CsvImportResultSerializer(serializers.Serializer):
    created = serializers.IntegerField(help_text="New labeler accounts.")
    added = serializers.IntegerField(help_text="Labelers who became (or became again) active members.")
    rows = serializers.IntegerField()


class MemberList(ProjectChildMixin, generics.ListCreateAPIView):
    """A project's labelers (active and deactivated; `?is_active=true`). POST adds (or re-activates) one."""

    serializer_class = MemberSerializer
    pagination_class = Pagination
    search_fields = ["user__username", "user__first_name", "user__last_name"]
    ordering_fields = ["joined_at", "submitted_count", "user__username"]
    ordering = ["user__username"]
    filterset_fields = ["is_active"]

    def project_queryset(self, project):
        return ProjectMember.objects.filter(project=project).select_related("user", "project")

    @extend_schema(request=MemberAddSerializer, responses={201: MemberSerializer})
    def post(self, request, project_pk):
        form = MemberAddSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        member = services.add_member(self.project, form.validated_data["user_obj"],
                                     cap_override=form.validated_data.get("cap_override"))
        return Response(MemberSerializer(member).data, status=status.HTTP_201_CREATED)


class MemberDetail(ProjectChildMixin, APIView):
    """One labeler of the project, by user id: PATCH sets the cap override; DELETE deactivates
    them and returns their open leases to the queue."""

    def get_member(self, user_id) -> ProjectMember:
        return get_object_or_404(
            ProjectMember.objects.select_related("user", "project"), project=self.project, user_id=user_id
        )

    @extend_schema(responses=MemberSerializer)
    def get(self, request, project_pk, user_id: int):
        return Response(MemberSerializer(self.get_member(user_id)).data)

    @extend_schema(request=MemberCapSerializer, responses=MemberSerializer)
    def patch(self, request, project_pk, user_id: int):
        member = self.get_member(user_id)
        form = MemberCapSerializer(data=request.data, partial=True)
        form.is_valid(raise_exception=True)
        if "cap_override" in form.validated_data:
            member = services.set_member_cap(self.project, member.user, form.validated_data["cap_override"])
        return Response(MemberSerializer(member).data)

    @extend_schema(responses={200: DeactivatedSerializer})  # a body, so 200 (not DELETE's usual 204)
    def delete(self, request, project_pk, user_id: int):
        member = self.get_member(user_id)
        returned = services.deactivate_member(self.project, member.user)
        return Response({"returned_leases": returned})


class MemberImport(ProjectChildMixin, APIView):
    """Create or reuse labeler accounts from a CSV and make them members. All rows are checked
    first: with any bad row nothing is written and the 400 lists every bad line."""

    parser_classes = [MultiPartParser, FormParser, JSONParser]  # JSON: only to say that `file` is missing

    @extend_schema(
        request={"multipart/form-data": CsvImportSerializer},
        responses={200: CsvImportResultSerializer, 400: OpenApiResponse(description="Bad rows, by line; nothing written.")},
    )
    def post(self, request, project_pk):
        form = CsvImportSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        result = services.import_labelers_csv(self.project, form.validated_data["file"].read())
        return Response(result)


# ---------------------------------------------------------------- guidelines and examples


class GuidelineVersionListSerializer(serializers.ListSerializer):
    def to_representation(self, data):
        versions = list(data.all() if hasattr(data, "all") else data)
        self.child.context["example_images"] = selectors.example_images(versions)  # one query per page
        return super().to_representation(versions)


class GuidelineVersionSerializer(serializers.ModelSerializer):
    html = serializers.SerializerMethodField(help_text="The body as sanitised HTML.")
    published_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    examples = serializers.JSONField(
        read_only=True,
        help_text='The examples as published: [{"image_id", "image_url", "thumbnail_url", "note", '
                  '"comments": [{"comment_type", "comment_type_name", "text", "verdict", "why"}]}].',
    )

    class Meta:
        model = GuidelineVersion
        fields = ["version", "body", "html", "examples", "published_at", "published_by"]
        read_only_fields = fields
        list_serializer_class = GuidelineVersionListSerializer

    def get_html(self, obj: GuidelineVersion) -> str:
        return str(markup.render(obj.body))

    def to_representation(self, instance):
        data = super().to_representation(instance)
        # The photos' URLs made now, not the ones frozen at publishing.
        data["examples"] = selectors.published_examples(instance, images=self.context.get("example_images"))
        return data


class DraftSerializer(serializers.Serializer):
    body = serializers.CharField(allow_blank=True, trim_whitespace=False, help_text="Markdown.")
    html = serializers.CharField(read_only=True, help_text="Preview: the body as sanitised HTML.")
    version = serializers.IntegerField(read_only=True, help_text="The current published version (0: none).")


class PublishSerializer(serializers.Serializer):
    body = serializers.CharField(required=False, trim_whitespace=False, help_text="Left out: publish the draft.")


class CurrentGuideline(ProjectChildMixin, APIView):
    """The guideline labelers work under: the current published version with its examples.
    Members of the project, planners, engineers and admins; 404 while none is published."""

    members_may_read = True

    @extend_schema(responses={200: GuidelineVersionSerializer, 403: NOT_MEMBER, 404: OpenApiResponse(description="None published yet.")})
    def get(self, request, project_pk: int):
        version = services.current_guideline(self.project)
        if version is None:
            raise exceptions.NotFound("No guideline has been published for this project yet.")
        return Response(GuidelineVersionSerializer(version).data)


class GuidelineDraft(ProjectChildMixin, APIView):
    """The planners' working copy of the guideline (Markdown); labelers never see it."""

    def _out(self, project):
        return {"body": project.guideline_draft, "html": str(markup.render(project.guideline_draft)),
                "version": project.guideline_version}

    @extend_schema(responses=DraftSerializer)
    def get(self, request, project_pk: int):
        return Response(self._out(self.project))

    @extend_schema(request=DraftSerializer, responses=DraftSerializer)
    def put(self, request, project_pk: int):
        form = DraftSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        project = services.save_guideline_draft(self.project, form.validated_data["body"])
        return Response(self._out(project))


class GuidelinePublish(ProjectChildMixin, APIView):
    """Publish the draft (or `body`) with a frozen copy of the current examples as the next
    version. Comments already written keep the version they were written under."""

    @extend_schema(request=PublishSerializer, responses={201: GuidelineVersionSerializer})
    def post(self, request, project_pk: int):
        form = PublishSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        version = services.publish_guideline(self.project, form.validated_data.get("body"),
                                             published_by=request.user)
        return Response(GuidelineVersionSerializer(version).data, status=status.HTTP_201_CREATED)


class GuidelineVersions(ProjectChildMixin, generics.ListAPIView):
    """Every published version, newest first."""

    serializer_class = GuidelineVersionSerializer
    pagination_class = Pagination
    filter_backends: list = []

    def project_queryset(self, project):
        return GuidelineVersion.objects.filter(project=project).select_related("published_by").order_by("-version")


class ExampleCommentSerializer(serializers.Serializer):
    comment_type = serializers.CharField(allow_null=True, required=False, help_text="Comment type slug, or null.")
    text = serializers.CharField()
    verdict = serializers.ChoiceField(choices=Verdict.choices)
    why = serializers.CharField(allow_blank=True, required=False, max_length=300)


class ExampleSerializer(serializers.ModelSerializer):
    image = serializers.PrimaryKeyRelatedField(queryset=Image.objects.all(), help_text="Image id.")
    image_url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()
    comments = ExampleCommentSerializer(many=True, required=False)

    class Meta:
        model = GuidelineExample
        fields = ["id", "image", "image_url", "thumbnail_url", "note", "position", "comments"]
        extra_kwargs = {"position": {"required": False}}

    def get_image_url(self, obj: GuidelineExample) -> str:
        return file_url(obj.image.file, self.context)

    def get_thumbnail_url(self, obj: GuidelineExample) -> str:
        return file_url(obj.image.thumbnail, self.context)

    def validate_image(self, value):
        # services.save_example catches a repeated photo only when creating (see the API report).
        others = GuidelineExample.objects.filter(project=self.context["project"], image=value)
        if self.instance is not None:
            others = others.exclude(pk=self.instance.pk)
        if others.exists():
            raise serializers.ValidationError(_("This photo is already an example."))
        return value

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["comments"] = [
            {"comment_type": c.comment_type.slug if c.comment_type else None, "text": c.text,
             "verdict": c.verdict, "why": c.why}
            for c in instance.comments.all()
        ]
        return data

    def _save(self, validated_data, example=None):
        if example is not None:
            current = {
                "image": example.image, "note": example.note,
                "comments": [{"comment_type": c.comment_type.slug if c.comment_type else None, "text": c.text,
                              "verdict": c.verdict, "why": c.why} for c in example.comments.all()],
            }
            validated_data = {**current, **validated_data}
        return services.save_example(
            self.context["project"], validated_data["image"],
            note=validated_data.get("note", ""), comments=validated_data.get("comments", []),
            example=example, position=validated_data.get("position"),
        )

    def create(self, validated_data):
        return self._save(validated_data)

    def update(self, instance, validated_data):
        return self._save(validated_data, instance)


class ExampleViewSet(ProjectChildMixin, viewsets.ModelViewSet):
    """The project's working set of examples (a photo with good and bad comments and why). Labelers
    see them with the next published guideline version."""

    serializer_class = ExampleSerializer
    pagination_class = None
    filter_backends: list = []

    def project_queryset(self, project):
        return (GuidelineExample.objects.filter(project=project).select_related("image")
                .prefetch_related("comments__comment_type").order_by("position", "id"))

    def perform_destroy(self, instance):
        services.delete_example(instance)


# ---------------------------------------------------------------- reports


class ReportSerializer(serializers.ModelSerializer):
    assignment_id = serializers.IntegerField(source="pk", read_only=True)
    image = TaskImageSerializer(read_only=True)
    labeler = serializers.SlugRelatedField(slug_field="username", read_only=True)
    reason = serializers.CharField(source="report_reason", read_only=True,
                                   help_text="inappropriate, broken or personal_info.")
    note = serializers.CharField(source="report_note", read_only=True)
    resolution = serializers.CharField(source="report_resolution", read_only=True,
                                       help_text='Empty while open; "kept" or "excluded".')

    class Meta:
        model = Assignment
        fields = ["assignment_id", "image", "labeler", "reason", "note", "resolution", "reported_at", "leased_at"]
        read_only_fields = fields


class ResolveSerializer(serializers.Serializer):
    resolution = serializers.ChoiceField(
        choices=[("kept", "kept"), ("excluded", "excluded")],
        help_text="kept: the photo stays for others; excluded: it is never handed out again in this project.",
    )


class ReportList(ProjectChildMixin, generics.ListAPIView):
    """Photos labelers reported; `?resolved=false` the open ones, `?resolved=true` the decided ones."""

    serializer_class = ReportSerializer
    pagination_class = Pagination
    filter_backends: list = []

    def project_queryset(self, project):
        qs = Assignment.objects.filter(project=project, status=AssignmentStatus.REPORTED).select_related(
            "image", "labeler"
        ).order_by(F("reported_at").desc(nulls_last=True), "-leased_at", "-id")
        resolved = self.request.query_params.get("resolved", "").lower()
        if resolved in {"false", "0", "no"}:
            qs = qs.filter(report_resolution="")
        elif resolved in {"true", "1", "yes"}:
            qs = qs.exclude(report_resolution="")
        return qs

    @extend_schema(parameters=[OpenApiParameter("resolved", OpenApiTypes.BOOL, description="Open (false) or decided (true).")])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class ReportResolve(ProjectChildMixin, APIView):
    """A planner's decision on a reported photo."""

    @extend_schema(request=ResolveSerializer, responses={200: ReportSerializer, 409: CONFLICT})
    def post(self, request, project_pk: int, assignment_id: int):
        assignment = get_object_or_404(
            Assignment.objects.select_related("image", "labeler"), pk=assignment_id, project=self.project
        )
        form = ResolveSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        assignment = services.resolve_report(assignment, form.validated_data["resolution"])
        return Response(ReportSerializer(assignment, context={"request": request}).data)


# ---------------------------------------------------------------- progress


class CategoryBriefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    slug = serializers.CharField()
    name = serializers.CharField()


class CategoryProgressSerializer(serializers.Serializer):
    category = CategoryBriefSerializer(allow_null=True, help_text="null: photos with no category.")
    counts = serializers.ListField(child=serializers.IntegerField(), help_text="counts[k]: photos with k comment sets.")
    total = serializers.IntegerField()


class ProgressTotalsSerializer(serializers.Serializer):
    photos = serializers.IntegerField()
    sets = serializers.IntegerField(help_text="Submitted comment sets.")
    done = serializers.IntegerField(help_text="Photos with `overlap` sets.")
    percent_done = serializers.FloatField()
    open_leases = serializers.IntegerField()
    active_labelers = serializers.IntegerField()
    open_reports = serializers.IntegerField()
    overlap = serializers.IntegerField()


class LabelerStatsSerializer(serializers.Serializer):
    user_id = serializers.IntegerField()
    username = serializers.CharField()
    name = serializers.CharField()
    is_active = serializers.BooleanField()
    cap = serializers.IntegerField()
    submitted_count = serializers.IntegerField()
    rejection_count = serializers.IntegerField()
    median_length = serializers.DictField(child=serializers.FloatField(allow_null=True),
                                          help_text="Per comment type slug: median length, or null.")
    seconds_per_photo = serializers.FloatField(allow_null=True, help_text="Median work seconds per photo.")


class LabelerPageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.CharField(allow_null=True)
    previous = serializers.CharField(allow_null=True)
    results = LabelerStatsSerializer(many=True)


class ProjectProgressSerializer(serializers.Serializer):
    categories = CategoryProgressSerializer(many=True)
    totals = ProgressTotalsSerializer()
    labelers = LabelerPageSerializer()


class ProgressView(ProjectChildMixin, APIView):
    """Per category how many photos have 0, 1, ... N comment sets; totals; one page of labelers
    with count, median length, rule rejections and time per photo (`?order=`, `?page=`, `?page_size=`)."""

    @extend_schema(
        responses=ProjectProgressSerializer,
        parameters=[
            OpenApiParameter("order", OpenApiTypes.STR, enum=sorted(selectors.LABELER_ORDERS)
                             if hasattr(selectors, "LABELER_ORDERS") else None,
                             description="Labeler order (default -submitted_count)."),
            OpenApiParameter("page", OpenApiTypes.INT),
            OpenApiParameter("page_size", OpenApiTypes.INT, description="Labelers per page (default 50, at most 500)."),
        ],
    )
    def get(self, request, project_pk: int):
        project = self.project
        page = page_number(request.query_params.get("page", 1))  # an OFFSET below: never past bigint
        try:
            size = min(500, max(1, int(request.query_params.get("page_size", 50))))
        except ValueError:
            raise serializers.ValidationError({"page_size": ["Give whole numbers for page and page_size."]}) from None
        dashboard = selectors.project_dashboard(project)
        order = request.query_params.get("order", "-submitted_count")
        total, rows = selectors.labeler_stats(project, order=order, offset=(page - 1) * size, limit=size)

        def link(n):
            if n < 1 or (n - 1) * size >= total:
                return None
            params = request.query_params.copy()
            params["page"] = n
            return request.build_absolute_uri(f"{request.path}?{params.urlencode()}")

        data = {
            "categories": [
                {"category": ({"id": r["category"].pk, "slug": r["category"].slug, "name": r["category"].name}
                              if r["category"] is not None else None),
                 "counts": r["counts"], "total": r["total"]}
                for r in dashboard["categories"]
            ],
            "totals": dashboard["totals"],
            "labelers": {"count": total, "next": link(page + 1), "previous": link(page - 1) if page > 1 else None,
                         "results": rows},
        }
        return Response(ProjectProgressSerializer(data).data)


# ---------------------------------------------------------------- messages to labelers (the scorecard)


class MessageInSerializer(serializers.Serializer):
    body = serializers.CharField(max_length=services.MESSAGE_MAX_CHARS,
                                 help_text="Plain text, shown on the labeler's next page load until they dismiss it.")


class MessageOutSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    project = serializers.IntegerField(source="project_id")
    labeler = serializers.IntegerField(source="labeler_id")
    body = serializers.CharField()
    sent_by = serializers.CharField(source="sent_by.username", read_only=True, allow_null=True)
    created_at = serializers.DateTimeField()
    read_at = serializers.DateTimeField(allow_null=True, help_text="When the labeler dismissed it; null: unread.")


class LabelerMessageCreate(ProjectChildMixin, APIView):
    """Send a message to one labeler of the project (by user id; a member, active or not).
    Planners (and admins); engineers and labelers 403."""

    @extend_schema(request=MessageInSerializer, responses={201: MessageOutSerializer})
    def post(self, request, project_pk, user_id: int):
        member = get_object_or_404(ProjectMember.objects.select_related("user"), project=self.project, user_id=user_id)
        form = MessageInSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        message = services.send_labeler_message(self.project, member.user, form.validated_data["body"],
                                                sent_by=request.user)
        return Response(MessageOutSerializer(message).data, status=status.HTTP_201_CREATED)
