"""The review queue's API under /api/curation/: flags (list with the page's filters, detail),
decisions on one flag or many, the decision history and undo.

Who: planners and admins decide; ML engineers read; labelers get 403 (accounts.permissions.HasRole
defaults). Service refusals (a flag decided already, a reject on a photo flag) answer 409
(curation.services.CurationError, registered in CurationConfig.ready); bad input 400.
"""
from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import HasRole
from config.api import Pagination, file_url

from . import selectors, services
from .models import DECIDE_ACTIONS, Decision, Flag, FlagKind, FlagStatus

CONFLICT = OpenApiResponse(description="The flag's state refuses the decision (decided already, wrong subject).")


class PhotoSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    thumbnail = serializers.SerializerMethodField()
    width = serializers.IntegerField(source="original_width")
    height = serializers.IntegerField(source="original_height")
    bytes = serializers.IntegerField(source="original_bytes")
    phash = serializers.SerializerMethodField(help_text="The 64-bit perceptual hash, 16 hex digits.")
    status = serializers.CharField()
    category = serializers.CharField(source="category.slug", default=None)

    def get_thumbnail(self, obj) -> str:
        return file_url(obj.thumbnail, self.context)

    def get_phash(self, obj) -> str:
        return format(obj.phash & 0xFFFFFFFFFFFFFFFF, "016x")


class CommentBriefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    text = serializers.CharField()
    comment_type = serializers.CharField(source="comment_type.slug")
    assignment = serializers.IntegerField(source="assignment_id")
    set_status = serializers.CharField(source="assignment.status")
    author = serializers.CharField(source="assignment.author_name")
    image = serializers.UUIDField(source="assignment.image_id")


class FlagSerializer(serializers.ModelSerializer):
    image = PhotoSerializer(allow_null=True)
    comment = CommentBriefSerializer(allow_null=True)
    keeper = serializers.UUIDField(source="keeper_id", allow_null=True)

    class Meta:
        model = Flag
        fields = ["id", "kind", "status", "image", "comment", "project", "score", "evidence", "detector",
                  "detector_version", "group_key", "keeper", "created_at", "updated_at"]


class DecisionSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor.username", default=None)
    duplicate_of = serializers.UUIDField(source="duplicate_of_id", allow_null=True)
    undoes = serializers.IntegerField(source="undoes_id", allow_null=True)

    class Meta:
        model = Decision
        fields = ["id", "flag", "action", "actor", "at", "reason", "status_before", "status_after", "duplicate_of",
                  "changes", "undoes"]


class DecideSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=DECIDE_ACTIONS)
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")
    duplicate_of = serializers.UUIDField(required=False, allow_null=True, default=None,
                                         help_text="mark_duplicate: the photo kept (default: the flag's keeper).")


class BulkDecideSerializer(DecideSerializer):
    flags = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
                                  min_length=1, max_length=services.BULK_MAX)


class DecisionsSerializer(serializers.Serializer):
    decisions = DecisionSerializer(many=True)


class UndoSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")


FLAG_FILTERS = [
    OpenApiParameter("kind", OpenApiTypes.STR, enum=FlagKind.values),
    OpenApiParameter("status", OpenApiTypes.STR, enum=FlagStatus.values, description="Default: open."),
    OpenApiParameter("project", OpenApiTypes.INT, description="Comment flags of the project, photo flags of its queue."),
    OpenApiParameter("category", OpenApiTypes.INT),
    OpenApiParameter("detector", OpenApiTypes.STR),
    OpenApiParameter("score_min", OpenApiTypes.NUMBER),
    OpenApiParameter("score_max", OpenApiTypes.NUMBER),
    OpenApiParameter("group", OpenApiTypes.STR, description="One duplicate group or comment cluster (group_key)."),
]


class CurationAccess:
    permission_classes = [HasRole]


class FlagList(CurationAccess, generics.ListAPIView):
    """The review queue's flags, with the page's filters (open ones unless `status` says otherwise)."""

    serializer_class = FlagSerializer
    pagination_class = Pagination
    filter_backends: list = []

    def get_queryset(self):
        return selectors.flags(selectors.filters_from(self.request.query_params))

    @extend_schema(parameters=FLAG_FILTERS)
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class FlagDetail(CurationAccess, generics.RetrieveAPIView):
    serializer_class = FlagSerializer
    queryset = selectors.flags(selectors.FlagFilters(status=""))


class FlagDecide(CurationAccess, APIView):
    """A planner's decision on one flag: keep, reject_comment, exclude_photo or mark_duplicate."""

    @extend_schema(request=DecideSerializer, responses={200: DecisionsSerializer, 409: CONFLICT})
    def post(self, request, pk: int):
        flag = get_object_or_404(Flag, pk=pk)
        form = DecideSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        decisions = services.decide([flag], actor=request.user, **form.validated_data)
        return Response(DecisionsSerializer({"decisions": decisions}).data)


class BulkDecide(CurationAccess, APIView):
    """One decision on many flags, all or nothing (at most 500)."""

    @extend_schema(request=BulkDecideSerializer, responses={200: DecisionsSerializer, 409: CONFLICT})
    def post(self, request):
        form = BulkDecideSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = dict(form.validated_data)
        decisions = services.decide(data.pop("flags"), actor=request.user, **data)
        return Response(DecisionsSerializer({"decisions": decisions}).data)


class DecisionList(CurationAccess, generics.ListAPIView):
    """The audit trail, newest first; `?flag=` one flag's decisions."""

    serializer_class = DecisionSerializer
    pagination_class = Pagination
    filter_backends: list = []

    def get_queryset(self):
        flag = selectors._number(self.request.query_params.get("flag"), int)
        return selectors.decisions(flag=flag)

    @extend_schema(parameters=[OpenApiParameter("flag", OpenApiTypes.INT)])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class DecisionUndo(CurationAccess, APIView):
    """Take back a decision (the latest on its flag)."""

    @extend_schema(request=UndoSerializer, responses={200: DecisionSerializer, 409: CONFLICT})
    def post(self, request, pk: int):
        decision = get_object_or_404(Decision, pk=pk)
        form = UndoSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        undo = services.undo(decision, request.user, form.validated_data["reason"])
        return Response(DecisionSerializer(undo).data)
