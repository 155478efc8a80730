"""Snapshots through the API: list and freeze (`/api/snapshots/`), one snapshot with its counts
per split and category (`/api/snapshots/{id}/`), archive (`.../archive/`), the diff against
another version (`.../diff/?against={id}`) and a live count of what a freeze would include
(`/api/snapshots/preview/?projects=1&projects=2&categories=food&min_sets=2`).

Engineers, planners and admins read and freeze; labelers get 403. A snapshot is never edited
(no PUT, PATCH or DELETE): archiving is its only change. The views call labeling.snapshots (the
freeze) and datasets' services and selectors; bad input answers 400 from the services' errors.
"""
from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import generics, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import Role
from accounts.permissions import HasRole
from config.api import BIGINT_MAX
from datasets import selectors as dataset_selectors
from datasets import services as dataset_services
from datasets.models import Snapshot

from .. import snapshots

SNAPSHOT_ROLES = (Role.PLANNER, Role.ENGINEER)
SLUG = r"^[-a-zA-Z0-9_]+$"


class SnapshotAccess:
    permission_classes = [HasRole]
    read_roles = SNAPSHOT_ROLES
    write_roles = SNAPSHOT_ROLES


class RatiosSerializer(serializers.Serializer):
    train = serializers.FloatField(min_value=0, max_value=1)
    val = serializers.FloatField(min_value=0, max_value=1)
    test = serializers.FloatField(min_value=0, max_value=1)


class CountsSerializer(serializers.Serializer):
    val = serializers.IntegerField(min_value=0, max_value=10**9)
    test = serializers.IntegerField(min_value=0, max_value=10**9)


class ProjectRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class SnapshotSerializer(serializers.ModelSerializer):
    label = serializers.CharField(read_only=True, help_text='"<name> v<version>".')
    created_by = serializers.CharField(source="created_by.username", read_only=True, allow_null=True, default=None)
    projects = ProjectRefSerializer(many=True, read_only=True)
    categories = serializers.ListField(child=serializers.CharField(), read_only=True)
    comment_types = serializers.ListField(child=serializers.CharField(), read_only=True)
    ratios = RatiosSerializer(read_only=True, allow_null=True)
    counts = CountsSerializer(read_only=True, allow_null=True)
    status = serializers.CharField(read_only=True, help_text="frozen or archived.")

    class Meta:
        model = Snapshot
        fields = ["id", "name", "version", "label", "status", "created_by", "created_at", "archived_at", "projects",
                  "categories", "comment_types", "min_sets", "seed", "ratios", "counts", "kept_from", "image_count",
                  "comment_count"]
        read_only_fields = fields


class SplitCountSerializer(serializers.Serializer):
    split = serializers.CharField()
    category = serializers.CharField(help_text='Category slug ("" for none).')
    photos = serializers.IntegerField()
    comments = serializers.IntegerField()


class SnapshotDetailSerializer(SnapshotSerializer):
    splits = serializers.SerializerMethodField()

    class Meta(SnapshotSerializer.Meta):
        fields = [*SnapshotSerializer.Meta.fields, "splits"]
        read_only_fields = fields

    @extend_schema_field(SplitCountSerializer(many=True))
    def get_splits(self, obj) -> list[dict]:
        return dataset_selectors.snapshot_counts(obj)


class FreezeSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    projects = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=BIGINT_MAX),
                                     min_length=1, max_length=100)
    categories = serializers.ListField(child=serializers.RegexField(SLUG, max_length=50), required=False,
                                       default=list, max_length=100, help_text="Category slugs; empty: all.")
    comment_types = serializers.ListField(child=serializers.RegexField(SLUG, max_length=50), required=False,
                                          default=list, max_length=100, help_text="Comment type slugs; empty: all.")
    min_sets = serializers.IntegerField(min_value=1, max_value=1000, required=False, allow_null=True, default=None,
                                        help_text="Submitted comment sets a photo needs (default: the smallest "
                                                  "overlap of the projects).")
    seed = serializers.IntegerField(min_value=0, max_value=snapshots.MAX_SEED, required=False, default=0)
    ratios = RatiosSerializer(required=False, allow_null=True, default=None,
                              help_text="Fractions adding up to 1 (default 0.8/0.1/0.1).")
    counts = CountsSerializer(required=False, allow_null=True, default=None,
                              help_text="Absolute numbers of val and test photos, instead of ratios.")
    keep_splits_from = serializers.IntegerField(min_value=1, max_value=BIGINT_MAX, required=False, allow_null=True,
                                                default=None, help_text="A snapshot whose val and test photos keep "
                                                                        "their split.")


class PreviewSerializer(serializers.Serializer):
    photos = serializers.IntegerField()
    comments = serializers.IntegerField()
    min_sets = serializers.IntegerField()


class PreviewQuerySerializer(serializers.Serializer):
    projects = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=BIGINT_MAX),
                                     min_length=1, max_length=100)
    categories = serializers.ListField(child=serializers.RegexField(SLUG, max_length=50), required=False,
                                       default=list, max_length=100)
    comment_types = serializers.ListField(child=serializers.RegexField(SLUG, max_length=50), required=False,
                                          default=list, max_length=100)
    min_sets = serializers.IntegerField(min_value=1, max_value=1000, required=False, allow_null=True, default=None)


class DiffRowSerializer(serializers.Serializer):
    split = serializers.CharField()
    category = serializers.CharField()
    photos_added = serializers.IntegerField()
    photos_removed = serializers.IntegerField()
    comments_added = serializers.IntegerField()
    comments_removed = serializers.IntegerField()


class DiffSerializer(serializers.Serializer):
    old = SnapshotSerializer()
    new = SnapshotSerializer()
    rows = DiffRowSerializer(many=True)


class SnapshotList(SnapshotAccess, generics.ListAPIView):
    """Every snapshot, newest first. POST freezes a new version of `name`."""

    serializer_class = SnapshotSerializer

    def get_queryset(self):
        return Snapshot.objects.select_related("created_by").order_by("-created_at", "-pk")

    @extend_schema(request=FreezeSerializer, responses={201: SnapshotDetailSerializer})
    def post(self, request):
        body = FreezeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        snapshot = snapshots.freeze_snapshot(created_by=request.user, **body.validated_data)
        return Response(SnapshotDetailSerializer(snapshot).data, status=status.HTTP_201_CREATED)


class SnapshotDetail(SnapshotAccess, generics.RetrieveAPIView):
    """A snapshot's parameters and its photos and comments per split and category."""

    serializer_class = SnapshotDetailSerializer
    queryset = Snapshot.objects.select_related("created_by")


class SnapshotArchive(SnapshotAccess, APIView):
    @extend_schema(request=None, responses={200: SnapshotSerializer})
    def post(self, request, pk):
        snapshot = dataset_services.archive_snapshot(get_object_or_404(Snapshot, pk=pk))
        return Response(SnapshotSerializer(snapshot).data)


class SnapshotDiff(SnapshotAccess, APIView):
    @extend_schema(
        parameters=[OpenApiParameter("against", OpenApiTypes.INT, required=True,
                                     description="The snapshot to compare with (the older one).")],
        responses={200: DiffSerializer},
    )
    def get(self, request, pk):
        """Photos and comments added and removed from `against` to this snapshot, per split and category."""
        new = get_object_or_404(Snapshot, pk=pk)
        field = serializers.IntegerField(min_value=1, max_value=BIGINT_MAX)
        try:
            against = field.run_validation(request.query_params.get("against"))
        except serializers.ValidationError as exc:
            raise serializers.ValidationError({"against": exc.detail}) from None
        old = get_object_or_404(Snapshot, pk=against)
        return Response(DiffSerializer({"old": old, "new": new,
                                        "rows": dataset_selectors.snapshot_diff(old, new)}).data)


class SnapshotPreview(SnapshotAccess, APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("projects", OpenApiTypes.INT, many=True, required=True, description="Project ids."),
            OpenApiParameter("categories", OpenApiTypes.STR, many=True, description="Category slugs."),
            OpenApiParameter("comment_types", OpenApiTypes.STR, many=True, description="Comment type slugs."),
            OpenApiParameter("min_sets", OpenApiTypes.INT, description="Submitted comment sets a photo needs."),
        ],
        responses={200: PreviewSerializer},
    )
    def get(self, request):
        """How many photos and comments a freeze with these parameters would include now."""
        query = PreviewQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response(PreviewSerializer(snapshots.preview(**query.validated_data)).data)
