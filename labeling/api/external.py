"""Comment imports through the API (labeling.external): a project's imports and a new one
(`GET|POST /api/projects/{project_pk}/comment-imports/`, the file as multipart), one import
(`.../comment-imports/{id}/`) and its report lines (`.../comment-imports/{id}/rows/`).

Planners import; planners and engineers read; labelers get 403. A file that cannot be read at all
answers 400 and writes nothing; bad records are report lines of the import (refused, with the
reason). The import runs on a worker: poll the import until `status` is done or failed.
"""
from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.response import Response

from config.api import FormParser, JSONParser, MultiPartParser
from datasets.models import Licence, Source

from .. import external
from ..models import CommentImport, CommentImportRow
from .common import ProjectChildMixin


class CommentImportSerializer(serializers.ModelSerializer):
    external_source = serializers.CharField(source="external_source.name", read_only=True)
    external_pseudonym = serializers.CharField(source="external_source.pseudonym", read_only=True,
                                               help_text="How snapshots name the source in their labeler column.")
    photo_import = serializers.IntegerField(source="import_job_id", read_only=True, allow_null=True,
                                            help_text="The photo import (/api/imports/{id}/) with its per-photo report.")
    status = serializers.CharField(read_only=True, help_text="queued, running, done or failed.")

    class Meta:
        model = CommentImport
        fields = ["id", "project", "external_source", "external_pseudonym", "photo_import", "format", "file_name",
                  "status", "error", "total", "imported", "already", "refused", "warnings", "comments",
                  "created_at", "finished_at"]
        read_only_fields = fields


class CommentImportCreateSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="The export: Label Studio JSON, COCO captions JSON, CSV or JSON Lines.")
    format = serializers.ChoiceField(choices=external.FORMATS)
    source_name = serializers.CharField(max_length=200, help_text="Who made the comments (the external source).")
    photo_source = serializers.PrimaryKeyRelatedField(queryset=Source.objects.all(),
                                                      help_text="Catalogue source id the photos are filed under.")
    images_dir = serializers.CharField(required=False, allow_blank=True, default="",
                                       help_text="Server folder of relative photo paths (under INGEST_ALLOWED_ROOTS).")
    url_prefix = serializers.CharField(required=False, allow_blank=True, default="",
                                       help_text="URL that file names are joined to (COCO, Label Studio).")
    type_map = serializers.CharField(required=False, allow_blank=True, default="",
                                     help_text="Label Studio: from_name=comment_type pairs, comma-separated.")
    comment_type = serializers.CharField(required=False, allow_blank=True, default="",
                                         help_text="COCO: the comment type of the captions (default: the first).")
    licence = serializers.SlugRelatedField(slug_field="code", queryset=Licence.objects.all(), required=False,
                                           allow_null=True, default=None,
                                           help_text="Licence code for photos whose record names none.")


class CommentImportRowSerializer(serializers.ModelSerializer):
    reason = serializers.CharField(source="reason_text", read_only=True, help_text="In the request's language.")
    outcome = serializers.CharField(read_only=True, help_text="imported, already or refused.")
    warnings = serializers.ListField(child=serializers.CharField(), read_only=True,
                                     help_text="Rule codes the stored texts break.")

    class Meta:
        model = CommentImportRow
        fields = ["position", "name", "outcome", "reason_code", "reason_params", "reason", "warnings", "image",
                  "assignment"]
        read_only_fields = fields


class CommentImportList(ProjectChildMixin, generics.ListAPIView):
    """The project's comment imports, newest first; POST a file to import one."""

    serializer_class = CommentImportSerializer
    parser_classes = [MultiPartParser, FormParser, JSONParser]  # JSON: only to say that `file` is missing

    def project_queryset(self, project):
        return CommentImport.objects.filter(project=project).select_related("external_source")

    @extend_schema(
        request={"multipart/form-data": CommentImportCreateSerializer},
        responses={201: CommentImportSerializer,
                   400: OpenApiResponse(description="The file cannot be read at all, or a field is wrong; nothing "
                                                    "written.")},
    )
    def post(self, request, project_pk):
        body = CommentImportCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        d = body.validated_data
        ci = external.start_comment_import(
            self.project, data=d["file"].read(), fmt=d["format"], source_name=d["source_name"],
            photo_source=d["photo_source"], file_name=d["file"].name, images_dir=d["images_dir"] or None,
            url_prefix=d["url_prefix"], type_map=external.parse_type_map(d["type_map"]),
            comment_type=d["comment_type"], licence=d["licence"], user=request.user,
        )
        ci.refresh_from_db()
        return Response(CommentImportSerializer(ci).data, status=status.HTTP_201_CREATED)


class CommentImportDetail(ProjectChildMixin, generics.RetrieveAPIView):
    """One comment import: its status and counts."""

    serializer_class = CommentImportSerializer

    def project_queryset(self, project):
        return CommentImport.objects.filter(project=project).select_related("external_source")


class CommentImportRows(ProjectChildMixin, generics.ListAPIView):
    """The report lines of one comment import, in file order."""

    serializer_class = CommentImportRowSerializer

    def project_queryset(self, project):
        ci = get_object_or_404(CommentImport, pk=self.kwargs["pk"], project=project)
        return ci.rows.order_by("position")
