"""The comment browser through the API: a project's comments, filtered, searched, ordered and
paginated (`GET /api/projects/{project_pk}/comments/`), and the whole filtered selection as a
CSV or JSON Lines download (`.../comments/export/?format=csv|jsonl`).

Planners and engineers read; labelers get 403. The query parameters are the planner page's
filters, checked by the same form (labeling.comment_filters): bad values answer 400 with the
form's messages, by parameter.
"""
from __future__ import annotations

from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, generics, serializers
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.views import APIView

from config.api import Pagination

from .. import comment_export, selectors
from ..comment_filters import CommentFilterForm
from ..models import Comment
from .common import ProjectChildMixin


class CommentRowSerializer(serializers.ModelSerializer):
    comment_type = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    comment_type_name = serializers.CharField(source="comment_type.name", read_only=True)
    labeler = serializers.SerializerMethodField(
        help_text="The labeler's username, or ext:<slug> for a set imported from an external source.")
    external_source = serializers.SerializerMethodField(help_text="The external source's name for an imported set.")
    image = serializers.UUIDField(source="assignment.image_id", read_only=True)
    category = serializers.SerializerMethodField()
    subcategory = serializers.SerializerMethodField()

    class Meta:
        model = Comment
        fields = ["id", "text", "length", "comment_type", "comment_type_name", "labeler", "image", "category",
                  "subcategory", "guideline_version", "created_at", "assignment", "external_source"]
        read_only_fields = fields

    def get_labeler(self, obj) -> str:
        a = obj.assignment
        return a.labeler.username if a.labeler_id is not None else f"ext:{a.external_source.slug}"

    def get_external_source(self, obj) -> str | None:
        a = obj.assignment
        return a.external_source.name if a.external_source_id is not None else None

    def get_category(self, obj) -> str | None:
        c = obj.assignment.image.category
        return c.slug if c else None

    def get_subcategory(self, obj) -> str | None:
        s = obj.assignment.image.subcategory
        return s.slug if s else None


FILTER_PARAMETERS = [
    OpenApiParameter("q", OpenApiTypes.STR, description="Text contains (case-insensitive, NFC; Korean works)."),
    OpenApiParameter("category", OpenApiTypes.STR, description="Category slug of the photo."),
    OpenApiParameter("subcategory", OpenApiTypes.STR, description="Subcategory slug of the photo."),
    OpenApiParameter("comment_type", OpenApiTypes.STR, description="Comment type slug."),
    OpenApiParameter("labeler", OpenApiTypes.STR, description="Labeler's username."),
    OpenApiParameter("guideline_version", OpenApiTypes.INT, description="Guideline version written under."),
    OpenApiParameter("min_length", OpenApiTypes.INT, description="Length at least (characters as the rules count)."),
    OpenApiParameter("max_length", OpenApiTypes.INT, description="Length at most."),
    OpenApiParameter("since", OpenApiTypes.DATE, description="Written on or after this day."),
    OpenApiParameter("until", OpenApiTypes.DATE, description="Written on or before this day."),
    OpenApiParameter("order", OpenApiTypes.STR, enum=list(selectors.COMMENT_ORDERS),
                     description="newest (default), oldest, longest, shortest, labeler."),
]


class _ProjectComments(ProjectChildMixin):
    """The project in the URL (404 if none; planners and engineers read, labelers 403) and the
    filters in the query string (400 if bad)."""

    def filter_form(self) -> CommentFilterForm:
        form = CommentFilterForm(self.project, self.request.query_params)
        if not form.is_valid():
            raise exceptions.ValidationError(
                {field: [e["message"] for e in errors] for field, errors in form.errors.get_json_data().items()})
        return form


class CommentList(_ProjectComments, generics.ListAPIView):
    """A project's comments with the comment browser's filters, newest first unless `order`."""

    serializer_class = CommentRowSerializer
    pagination_class = Pagination
    filter_backends: list = []

    def project_queryset(self, project):
        form = self.filter_form()
        return selectors.project_comments(project, form.filters(), order=form.ordering())

    @extend_schema(parameters=FILTER_PARAMETERS)
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class _IgnoreFormatParameter(BaseContentNegotiation):
    """`?format=` here names the download's format, not a DRF renderer: answers are JSON (the
    download itself is a streamed response, not rendered)."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class CommentExport(_ProjectComments, APIView):
    """The whole filtered selection, streamed: CSV (UTF-8 with BOM, cells safe from spreadsheet
    formulas) or JSON Lines, one comment a line."""

    content_negotiation_class = _IgnoreFormatParameter

    @extend_schema(
        parameters=[OpenApiParameter("format", OpenApiTypes.STR, enum=list(comment_export.FORMATS),
                                     description="csv (default) or jsonl."), *FILTER_PARAMETERS],
        responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="CSV download."),
                   (200, "application/x-ndjson"): OpenApiResponse(OpenApiTypes.STR, description="JSON Lines.")},
    )
    def get(self, request, project_pk: int):
        fmt = request.query_params.get("format", "csv")
        if fmt not in comment_export.FORMATS:
            raise exceptions.ValidationError(
                {"format": [_("Give one of: %(formats)s.") % {"formats": ", ".join(comment_export.FORMATS)}]})
        form = self.filter_form()
        return comment_export.response(self.project, form.filters(), form.ordering(), fmt)
