"""REST API of the labeler's flow: next photos, an assignment, submit, skip, report, history and
the rules the page mirrors (for the labeler page and custom clients such as a mobile app:
session + CSRF, or `Authorization: Token <key>`). Access and error bodies: labeling.api.common."""
from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import generics, permissions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import Pagination
from datasets.models import Image

from .. import selectors, services
from .. import text as text_rules
from ..models import (
    RULE_FIELDS,
    Assignment,
    AssignmentStatus,
    CommentType,
    LabelerMessage,
    Project,
    ProjectMember,
    ReportReason,
    RuleCode,
)
from .common import (
    CONFLICT,
    NOT_MEMBER,
    NOT_YOURS,
    AssignmentSerializer,
    CommentOutSerializer,
    ProgressSerializer,
    ProjectChildMixin,
    RulesErrorSerializer,
    TaskImageSerializer,
    comments_out,
    is_staff_reader,
    member_progress,
    progress_of,
    project_for,
)


class NextRequestSerializer(serializers.Serializer):
    count = serializers.IntegerField(
        required=False, default=1, min_value=1, max_value=5,
        help_text="How many photos: the first to show, the rest fetched ahead (each is a lease and counts "
                  "towards the cap).",
    )


class NextResponseSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=[("ok", "ok"), ("cap_reached", "cap_reached"), ("no_work", "no_work")])
    detail = serializers.CharField(help_text="Translated message for cap_reached and no_work; empty for ok.")
    assignments = AssignmentSerializer(many=True)
    progress = ProgressSerializer()


class SubmitRequestSerializer(serializers.Serializer):
    comments = serializers.DictField(
        child=serializers.CharField(allow_blank=True, trim_whitespace=False),
        help_text='{"<comment type slug>": "text", ...}: one text per comment type of the project.',
    )


class SubmitResponseSerializer(serializers.Serializer):
    assignment = AssignmentSerializer()
    comments = CommentOutSerializer(many=True)
    progress = ProgressSerializer()
    already_submitted = serializers.BooleanField(
        help_text="True when an earlier request with another (or no) Idempotency-Key had stored the set (another "
                  "tab or device): these texts were not stored; `comments` are the stored ones.")


class AssignmentProgressSerializer(serializers.Serializer):
    assignment = AssignmentSerializer()
    progress = ProgressSerializer()


class ReportRequestSerializer(serializers.Serializer):
    reason = serializers.ChoiceField(choices=ReportReason.choices)
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000)


class HistorySerializer(serializers.ModelSerializer):
    assignment_id = serializers.IntegerField(source="pk", read_only=True)
    image = TaskImageSerializer(read_only=True)
    comments = serializers.SerializerMethodField()

    class Meta:
        model = Assignment
        fields = ["assignment_id", "image", "submitted_at", "comments"]
        read_only_fields = fields

    @extend_schema_field(CommentOutSerializer(many=True))
    def get_comments(self, obj: Assignment):
        return comments_out(obj.comments.all())


class RulesCommentTypeSerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    min_length = serializers.IntegerField()
    max_length = serializers.IntegerField()


class RuleSwitchesSerializer(serializers.Serializer):
    count_whitespace = serializers.BooleanField()
    reject_jamo_or_emoji_only = serializers.BooleanField()
    max_repeat_run = serializers.IntegerField(help_text="0: off.")
    reject_copied_examples = serializers.BooleanField()
    reject_own_repeats = serializers.BooleanField()
    reject_urls = serializers.BooleanField()
    reject_emails = serializers.BooleanField()
    reject_phone_numbers = serializers.BooleanField()
    reject_personal_info = serializers.BooleanField()


class RulesSerializer(serializers.Serializer):
    comment_types = RulesCommentTypeSerializer(many=True)
    rules = RuleSwitchesSerializer()
    example_texts = serializers.ListField(child=serializers.CharField(),
                                         help_text="Texts of the current guideline's examples (copy check).")
    messages = serializers.DictField(child=serializers.CharField(),
                                     help_text="Rule code -> translated message template (%(min)d, %(max)d, %(n)d).")
    pii = serializers.JSONField(help_text="curation.pii's recognizers (regexes, validators by name, context words), "
                                          "folding and kind names: what static/js/textrules.js runs live.")
    guideline_version = serializers.IntegerField()


def _own_assignment(request, pk) -> Assignment:
    """The caller's assignment (with its photo), else 404."""
    return get_object_or_404(Assignment.objects.select_related("image"), pk=pk, labeler=request.user)


def _assignment_data(assignment: Assignment, request) -> dict:
    return AssignmentSerializer(assignment, context={"request": request}).data


def _next(project: Project, user, count: int) -> tuple[str, str, list[Assignment]]:
    """(state, message, leases): running out of cap or of photos is a state, not an error."""
    try:
        return "ok", "", services.next_assignments(project, user, count)
    except (services.CapReached, services.NoWorkLeft) as exc:
        return exc.code, str(exc), []


class NextView(APIView):
    """The labeler's next photos: their own unexpired leases first, topped up with new ones.
    Always 200 with a state: ok, cap_reached or no_work."""

    @extend_schema(
        request=NextRequestSerializer,
        responses={200: NextResponseSerializer, 403: NOT_MEMBER, 409: CONFLICT},
    )
    def post(self, request, project_pk: int):
        form = NextRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        member = ProjectMember.objects.select_related("project").filter(project_id=project_pk, user=request.user).first()
        if member is None:
            get_object_or_404(Project.objects.only("pk"), pk=project_pk)
            raise services.NotAMember()
        state, detail, leases = _next(member.project, request.user, form.validated_data["count"])
        if leases:
            images = Image.objects.only("id", "file", "thumbnail", "width", "height").in_bulk(
                [a.image_id for a in leases]
            )
            for a in leases:
                a.image = images[a.image_id]
        return Response({
            "state": state,
            "detail": detail,
            "assignments": AssignmentSerializer(leases, many=True, context={"request": request}).data,
            "progress": progress_of(member),
        })


class AssignmentDetail(APIView):
    """One assignment: the labeler's own; planners, engineers and admins read any."""

    @extend_schema(responses={200: AssignmentSerializer, 403: NOT_MEMBER, 404: NOT_YOURS})
    def get(self, request, pk: int):
        qs = Assignment.objects.select_related("image")
        if not is_staff_reader(request.user):
            qs = qs.filter(labeler=request.user)
        assignment = get_object_or_404(qs, pk=pk)
        # A removed labeler gets no photo URL (on S3 a signed one) for their old work.
        project_for(request.user, assignment.project_id, members=True)
        return Response(_assignment_data(assignment, request))


class SubmitView(APIView):
    """Store the comment set of the caller's assignment. Idempotent: a repeat (a double click, a
    retried request; send the same `Idempotency-Key`) stores nothing and answers 200 with the
    stored set; the first store answers 201. A repeat with another key (a second tab) answers
    200 with `already_submitted: true` and the stored set."""

    @extend_schema(
        request=SubmitRequestSerializer,
        parameters=[OpenApiParameter("Idempotency-Key", OpenApiTypes.STR, OpenApiParameter.HEADER,
                                     description="Any string up to 100 characters, the same on retries.")],
        responses={
            201: SubmitResponseSerializer,
            200: OpenApiResponse(SubmitResponseSerializer, description="A repeat: the set stored before."),
            400: OpenApiResponse(RulesErrorSerializer, description="The rules refuse the texts; nothing stored."),
            403: NOT_MEMBER, 404: NOT_YOURS, 409: CONFLICT,
        },
    )
    def post(self, request, pk: int):
        assignment = _own_assignment(request, pk)
        form = SubmitRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        before = assignment.status
        key = request.headers.get("Idempotency-Key", "")
        comments = services.submit(assignment, request.user, form.validated_data["comments"], key)
        # services.submit copies the stored state onto `assignment` only when this call stored
        # the set; a repeat (also one that raced this call) leaves the instance as it was.
        created = before != AssignmentStatus.SUBMITTED and assignment.status == AssignmentStatus.SUBMITTED
        if created:
            out = comments_out(comments)
        else:
            if assignment.status != AssignmentStatus.SUBMITTED:
                assignment.refresh_from_db(fields=["status", "submitted_at", "expires_at", "idempotency_key"])
            out = comments_out(comments, dict(CommentType.objects.filter(project_id=assignment.project_id)
                                           .values_list("pk", "slug")))
        return Response(
            {"assignment": _assignment_data(assignment, request), "comments": out,
             "progress": member_progress(assignment.project_id, request.user),
             "already_submitted": not created and not (key and key[:100] == assignment.idempotency_key)},
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class SkipView(APIView):
    """Give the photo back; it never comes back to this labeler. A repeat is harmless."""

    @extend_schema(request=None, responses={200: AssignmentProgressSerializer, 403: NOT_MEMBER, 404: NOT_YOURS, 409: CONFLICT})
    def post(self, request, pk: int):
        assignment = _own_assignment(request, pk)
        services.skip(assignment, request.user)
        return Response({"assignment": _assignment_data(assignment, request),
                         "progress": member_progress(assignment.project_id, request.user)})


class ReportView(APIView):
    """Report the photo (inappropriate, broken, personal information) for planners; like a skip,
    it never comes back to this labeler."""

    @extend_schema(request=ReportRequestSerializer,
                   responses={200: AssignmentProgressSerializer, 403: NOT_MEMBER, 404: NOT_YOURS, 409: CONFLICT})
    def post(self, request, pk: int):
        assignment = _own_assignment(request, pk)
        form = ReportRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        services.report(assignment, request.user, form.validated_data["reason"],
                        form.validated_data.get("note", ""))
        return Response({"assignment": _assignment_data(assignment, request),
                         "progress": member_progress(assignment.project_id, request.user)})


class HistoryView(ProjectChildMixin, generics.ListAPIView):
    """The caller's own submitted comment sets in the project, newest first."""

    members_may_read = True
    serializer_class = HistorySerializer
    pagination_class = Pagination
    filter_backends: list = []

    def project_queryset(self, project):
        return (
            Assignment.objects.filter(project=project, labeler=self.request.user, status=AssignmentStatus.SUBMITTED)
            .select_related("image").prefetch_related("comments__comment_type").order_by("-submitted_at", "-id")
        )

    @extend_schema(responses={200: HistorySerializer(many=True), 403: NOT_MEMBER})
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class RulesView(ProjectChildMixin, APIView):
    """What the labeler page mirrors before submit: comment types with their lengths, the rule
    switches, the guideline's example texts and the translated messages. The server still judges."""

    members_may_read = True

    @extend_schema(responses={200: RulesSerializer, 403: NOT_MEMBER})
    def get(self, request, project_pk: int):
        project = self.project
        version = services.current_guideline(project)
        data = {
            "comment_types": project.comment_types.order_by("position", "id").values(
                "slug", "name", "description", "min_length", "max_length"
            ),
            "rules": {name: getattr(project, name) for name in RULE_FIELDS},
            "example_texts": version.example_texts() if version else [],
            "messages": {code: str(message) for code, message in text_rules.MESSAGES.items()},
            "pii": text_rules.pii.page_config(),
            "guideline_version": project.guideline_version,
        }
        return Response(RulesSerializer(data).data)


# --- Submits the page blocked ----------------------------------------------------------------
# The page checks the text rules before it sends anything, so texts that break them never reach
# services.submit. So that planners see what labelers actually meet, the page sends the codes of
# the rules that stopped each submit attempt (one request per attempt, not per keystroke); the
# service counts them like a refused submit (ProjectMember.rejection_count and RuleHit per rule).


class BlockedRequestSerializer(serializers.Serializer):
    rules = serializers.ListField(
        child=serializers.ChoiceField(choices=RuleCode.choices), min_length=1, max_length=2 * len(RuleCode.values),
        help_text="Codes of the rules that stopped this submit attempt (each counted once).",
    )


class BlockedResponseSerializer(serializers.Serializer):
    counted = serializers.BooleanField(help_text="False once this photo has reported "
                                                 f"{services.MAX_BLOCKED_REPORTS_PER_ASSIGNMENT} attempts.")


class BlockedSubmitView(APIView):
    """Count a submit attempt the labeler page blocked, with the rules that blocked it. Only the
    assignment's own labeler (anyone else: 404), while the photo is still theirs to submit."""

    @extend_schema(
        request=BlockedRequestSerializer,
        responses={
            200: BlockedResponseSerializer,
            400: OpenApiResponse(description="No rules, too many or unknown codes; nothing counted."),
            403: NOT_MEMBER,
            404: NOT_YOURS,
            409: CONFLICT,
        },
    )
    def post(self, request, pk: int):
        assignment = get_object_or_404(Assignment, pk=pk, labeler=request.user)
        form = BlockedRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        counted = services.record_blocked_submit(assignment, request.user, form.validated_data["rules"])
        return Response({"counted": counted})


# ---------------------------------------------------------------- the planners' messages to me


class LabelerMessageSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    project = serializers.IntegerField(source="project_id")
    project_name = serializers.CharField(source="project.name")
    body = serializers.CharField()
    created_at = serializers.DateTimeField()
    read_at = serializers.DateTimeField(allow_null=True)


class MyMessages(APIView):
    """The planners' messages to the caller that they have not dismissed yet, oldest first (any
    signed-in user; only labelers get messages). `?project=` narrows to one project."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(parameters=[OpenApiParameter("project", OpenApiTypes.INT)],
                   responses=LabelerMessageSerializer(many=True))
    def get(self, request):
        project = request.query_params.get("project", "")
        project = Project.objects.filter(pk=int(project)).first() if project.isdecimal() and len(project) <= 18 else None
        messages = selectors.unread_messages(request.user, project)
        return Response(LabelerMessageSerializer(messages, many=True).data)


class MyMessageRead(APIView):
    """Mark one of the caller's messages read (dismissed); again is harmless. Another user's
    message: 404."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=None, responses={200: LabelerMessageSerializer, 404: NOT_YOURS})
    def post(self, request, pk: int):
        message = get_object_or_404(LabelerMessage.objects.select_related("project"), pk=pk, labeler=request.user)
        services.mark_messages_read(request.user, [message.pk])
        message.refresh_from_db(fields=["read_at"])
        return Response(LabelerMessageSerializer(message).data)
