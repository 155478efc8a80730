"""REST API of the datasets app: categories and quotas, licences, sources, images and imports.
Every change goes through datasets.services; its refusals answer as datasets.apps registers them
(IngestError 400, InUseError and NotResumable 409: config.api.exception_handler).

Who may do what (accounts.permissions.HasRole): planners and ML engineers read, planners write,
admins do everything, labelers get 403 (their own endpoints come with labeling).

Categories, subcategories and licences are named by slug / code in request bodies and filters
(`"category": "food"`, `"subcategory": "korean"`, `"licence": "cc-by-4.0"`); a subcategory slug
is looked up inside the category given with it. Sources and imports are named by id.
"""
from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import generics, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.validators import UniqueValidator
from rest_framework.views import APIView

from accounts.models import Role
from accounts.permissions import HasRole
from config.api import FormParser, JSONParser, MultiPartParser, Pagination, file_url

from . import filters, selectors, services
from .models import (
    Category,
    Export,
    Image,
    ImportItem,
    ImportJob,
    Licence,
    RunKind,
    Snapshot,
    Source,
    SourceKind,
    Subcategory,
    TrainingRun,
)

CONFLICT_RESPONSE = OpenApiResponse(description="In use (images, sources or imports point to it); retire it instead.")


def resolve_target(attrs: dict, *, category: Category | None = None) -> tuple[Category | None, Subcategory | None]:
    """Category (a row, from a SlugRelatedField) and subcategory (a slug) of a request body.

    `category` is the current one, used when the body names only a subcategory. Errors are field
    errors: an unknown subcategory, a subcategory without a category, a retired target.
    """
    if "category" in attrs:
        category = attrs["category"]
    slug = attrs.get("subcategory") or ""
    subcategory = None
    if slug:
        if category is None:
            raise serializers.ValidationError({"subcategory": "Give the category this subcategory belongs to."})
        subcategory = category.subcategories.filter(slug=slug).first()
        if subcategory is None:
            raise serializers.ValidationError(
                {"subcategory": f"Category {category.slug!r} has no subcategory {slug!r}."}
            )
        if not subcategory.is_active:
            raise serializers.ValidationError({"subcategory": f"Subcategory {slug!r} is retired and takes no images."})
    if category is not None and not category.is_active:
        raise serializers.ValidationError({"category": f"Category {category.slug!r} is retired and takes no images."})
    return category, subcategory


# ---------------------------------------------------------------- categories and subcategories


class SubcategoryBriefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Subcategory
        fields = ["id", "slug", "name", "quota", "is_active", "position"]


class CategorySerializer(serializers.ModelSerializer):
    subcategories = SubcategoryBriefSerializer(many=True, read_only=True)

    class Meta:
        model = Category
        fields = ["id", "slug", "name", "quota", "full_policy", "is_active", "position", "subcategories"]
        read_only_fields = ["position"]
        # The model's default (0) would make a category nobody plans for: a planner names it.
        extra_kwargs = {"quota": {"required": True}}

    def create(self, validated_data):
        return services.save_category(**validated_data)

    def update(self, instance, validated_data):
        values = {f: getattr(instance, f) for f in ("slug", "name", "quota", "full_policy", "is_active")}
        return services.save_category(**{**values, **validated_data}, instance=instance)


class SubcategorySerializer(serializers.ModelSerializer):
    category = serializers.SlugRelatedField(slug_field="slug", queryset=Category.objects.all(), help_text="Category slug.")

    class Meta:
        model = Subcategory
        fields = ["id", "category", "slug", "name", "quota", "is_active", "position"]
        read_only_fields = ["position"]
        extra_kwargs = {"quota": {"required": True}}

    def validate_category(self, value):
        if self.instance is not None and value.pk != self.instance.category_id:
            raise serializers.ValidationError("A subcategory cannot move to another category; create a new one.")
        return value

    def create(self, validated_data):
        return services.save_subcategory(**validated_data)

    def update(self, instance, validated_data):
        values = {f: getattr(instance, f) for f in ("category", "slug", "name", "quota", "is_active")}
        return services.save_subcategory(**{**values, **validated_data}, instance=instance)


@extend_schema_view(destroy=extend_schema(responses={204: None, 409: CONFLICT_RESPONSE}))
class CategoryViewSet(viewsets.ModelViewSet):
    """Categories with their quota and subcategories. Retire one with PATCH `{"is_active": false}`;
    DELETE works only for a category no image or import uses."""

    queryset = Category.objects.prefetch_related("subcategories")
    serializer_class = CategorySerializer
    permission_classes = [HasRole]
    filterset_class = filters.CategoryFilter
    search_fields = ["slug", "name"]
    ordering_fields = ["position", "slug", "quota"]
    ordering = ["position", "id"]
    pagination_class = Pagination

    def perform_destroy(self, instance):
        services.delete_category(instance)


@extend_schema_view(destroy=extend_schema(responses={204: None, 409: CONFLICT_RESPONSE}))
class SubcategoryViewSet(viewsets.ModelViewSet):
    """Subcategories; `?category=<slug>` lists one category's. Retire with PATCH `{"is_active": false}`."""

    queryset = Subcategory.objects.select_related("category")
    serializer_class = SubcategorySerializer
    permission_classes = [HasRole]
    filterset_class = filters.SubcategoryFilter
    search_fields = ["slug", "name"]
    ordering_fields = ["position", "slug", "quota"]
    ordering = ["category__position", "position", "id"]
    pagination_class = Pagination

    def perform_destroy(self, instance):
        services.delete_subcategory(instance)


# ---------------------------------------------------------------- licences and sources


class LicenceSerializer(serializers.ModelSerializer):
    # Codes carry versions ("cc-by-4.0"), so dots are allowed on top of a slug's characters.
    code = serializers.RegexField(
        r"^[-a-z0-9_.]+$", max_length=40, validators=[UniqueValidator(queryset=Licence.objects.all())],
        error_messages={"invalid": "Use lower-case letters, digits, '-', '_' and '.', e.g. cc-by-4.0."},
    )

    class Meta:
        model = Licence
        fields = ["id", "code", "name", "url", "commercial_use", "attribution_required", "share_alike"]

    def create(self, validated_data):
        return services.save_licence(**validated_data)

    def update(self, instance, validated_data):
        values = {f: getattr(instance, f) for f in ("code", "name", "url", "commercial_use", "attribution_required",
                                                    "share_alike")}
        return services.save_licence(**{**values, **validated_data}, instance=instance)


@extend_schema_view(destroy=extend_schema(responses={204: None, 409: CONFLICT_RESPONSE}))
class LicenceViewSet(viewsets.ModelViewSet):
    """Licences, addressed by code (`/api/licences/cc-by-4.0/`)."""

    queryset = Licence.objects.all()
    serializer_class = LicenceSerializer
    permission_classes = [HasRole]
    lookup_field = "code"
    lookup_value_regex = "[^/]+"
    search_fields = ["code", "name"]
    ordering_fields = ["code", "name"]
    ordering = ["code"]
    pagination_class = Pagination

    def perform_destroy(self, instance):
        services.delete_licence(instance)


class SourceSerializer(serializers.ModelSerializer):
    default_licence = serializers.SlugRelatedField(
        slug_field="code", queryset=Licence.objects.all(), help_text="Licence code."
    )
    # Null where the user was deleted (SET_NULL): the schema says so (allow_null).
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = Source
        fields = ["id", "kind", "name", "default_licence", "description", "location", "created_by", "created_at"]

    def validate_location(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("Give an object, e.g. {\"bucket\": ..., \"prefix\": ...}.")
        return value

    def create(self, validated_data):
        return services.save_source(**validated_data, user=self.context["request"].user)

    def update(self, instance, validated_data):
        values = {f: getattr(instance, f) for f in ("name", "kind", "default_licence", "description", "location")}
        return services.save_source(**{**values, **validated_data}, instance=instance)


@extend_schema_view(destroy=extend_schema(responses={204: None, 409: CONFLICT_RESPONSE}))
class SourceViewSet(viewsets.ModelViewSet):
    """Where photos come from, with their default licence. DELETE works only for a source no image
    or import uses."""

    queryset = Source.objects.select_related("default_licence", "created_by")
    serializer_class = SourceSerializer
    permission_classes = [HasRole]
    filterset_class = filters.SourceFilter
    search_fields = ["name", "description"]
    ordering_fields = ["name", "created_at"]
    ordering = ["name"]
    pagination_class = Pagination

    def perform_destroy(self, instance):
        services.delete_source(instance)


# ---------------------------------------------------------------- images


class ImageSerializer(serializers.ModelSerializer):
    file_url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()
    category = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)
    subcategory = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)
    licence = serializers.SlugRelatedField(slug_field="code", read_only=True)
    source_name = serializers.CharField(source="source.name", read_only=True)
    attribution = serializers.CharField(read_only=True)
    # Read-only model fields lose allow_blank, and the schema then called "" a bad URI.
    original_url = serializers.URLField(read_only=True, allow_blank=True)

    class Meta:
        model = Image
        fields = [
            "id", "file_url", "thumbnail_url", "width", "height", "original_width", "original_height",
            "original_format", "original_bytes", "original_name", "sha256", "pixel_sha256", "phash",
            "category", "subcategory", "source", "source_name", "licence", "author", "original_url", "title",
            "external_id", "attribution", "import_job", "created_at", "status", "status_reason", "status_changed_at",
        ]
        read_only_fields = fields

    def get_file_url(self, obj: Image) -> str:
        return file_url(obj.file, self.context)

    def get_thumbnail_url(self, obj: Image) -> str:
        return file_url(obj.thumbnail, self.context)


class ImageCategoriseSerializer(serializers.Serializer):
    """PATCH body: a new category (slug, or null) and/or subcategory (slug within it, or null).

    Changing the category without naming a subcategory clears the subcategory."""

    category = serializers.SlugRelatedField(
        slug_field="slug", queryset=Category.objects.all(), allow_null=True, required=False
    )
    subcategory = serializers.CharField(allow_null=True, allow_blank=True, required=False)

    def validate(self, attrs):
        image = self.instance
        if "subcategory" not in attrs and "category" in attrs and attrs["category"] != image.category:
            attrs["subcategory"] = None
        elif "subcategory" not in attrs and image.subcategory_id:
            attrs["subcategory"] = image.subcategory.slug
        category, subcategory = resolve_target(attrs, category=image.category)
        return {"category": category, "subcategory": subcategory}


class ImageBulkSerializer(serializers.Serializer):
    """POST /api/images/bulk/: one action on up to BULK_MAX photos, in one transaction."""

    action = serializers.ChoiceField(
        choices=["move", "retire", "exclude", "restore"],
        help_text="move: to `category` (and `subcategory`); retire: out of use; exclude: must not be used; "
                  "restore: active again. Retired and excluded photos leave quotas and labeling queues.",
    )
    ids = serializers.ListField(child=serializers.UUIDField(), min_length=1, max_length=services.BULK_MAX,
                                help_text=f"Image ids (at most {services.BULK_MAX}).")
    category = serializers.SlugRelatedField(slug_field="slug", queryset=Category.objects.all(), allow_null=True,
                                            required=False, help_text="move: category slug (null: no category).")
    subcategory = serializers.CharField(allow_null=True, allow_blank=True, required=False,
                                        help_text="move: subcategory slug within the category.")
    reason = serializers.CharField(allow_blank=True, required=False, max_length=300,
                                   help_text="retire / exclude: why (kept with the photo).")

    def validate(self, attrs):
        if attrs["action"] == "move":
            if "category" not in attrs:
                raise serializers.ValidationError({"category": "Give the category to move the photos to (null: none)."})
            attrs["category"], attrs["subcategory"] = resolve_target(attrs)
        unknown = set(attrs["ids"]) - set(Image.objects.filter(pk__in=attrs["ids"]).values_list("pk", flat=True))
        if unknown:
            raise serializers.ValidationError({"ids": f"No image with id {sorted(map(str, unknown))[0]} "
                                                      f"({len(unknown)} unknown); nothing was changed."})
        return attrs

    def apply(self, user) -> int:
        """How many photos the action changed (datasets.services)."""
        data = self.validated_data
        if data["action"] == "move":
            return services.recategorise_images(data["ids"], category=data["category"],
                                                subcategory=data["subcategory"])
        status_ = {"retire": "retired", "exclude": "excluded", "restore": "active"}[data["action"]]
        return services.set_image_status(data["ids"], status=status_, reason=data.get("reason", ""), user=user)


class ImageBulkResultSerializer(serializers.Serializer):
    action = serializers.CharField()
    changed = serializers.IntegerField(help_text="Photos that changed (the others already were so).")
    unchanged = serializers.IntegerField()


@extend_schema_view(
    partial_update=extend_schema(request=ImageCategoriseSerializer, responses={200: ImageSerializer}),
)
class ImageViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin, viewsets.GenericViewSet):
    """The image catalogue. Planners move an image to another category with PATCH."""

    serializer_class = ImageSerializer
    permission_classes = [HasRole]
    filterset_class = filters.ImageFilter
    search_fields = ["original_name", "title", "author"]
    ordering_fields = ["created_at"]
    ordering = ["-created_at"]
    pagination_class = Pagination
    http_method_names = ["get", "post", "patch", "head", "options"]  # post: the bulk action only

    def get_queryset(self):
        # The list shows active photos unless ?status= asks for others; one photo is found whatever its status.
        if self.action == "list" and not self.request.query_params.get("status"):
            return selectors.images()
        return selectors.images(status=None)

    @extend_schema(request=ImageBulkSerializer, responses={200: ImageBulkResultSerializer})
    # JSON only: a list of up to BULK_MAX ids as form fields would pass Django's form-field limit.
    @action(detail=False, methods=["post"], parser_classes=[JSONParser])
    def bulk(self, request):
        """Move, retire, exclude or restore many photos at once (planners). Quotas and labeling
        queues follow: a retired or excluded photo leaves every queue where nobody has worked on it,
        and is never handed out again. Unknown ids change nothing."""
        serializer = ImageBulkSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        changed = serializer.apply(request.user)
        ids = serializer.validated_data["ids"]
        return Response({"action": serializer.validated_data["action"], "changed": changed,
                         "unchanged": len(set(ids)) - changed})

    def partial_update(self, request, *args, **kwargs):
        image = self.get_object()
        serializer = ImageCategoriseSerializer(image, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        image = services.recategorise_image(image=image, **serializer.validated_data)
        return Response(ImageSerializer(image, context=self.get_serializer_context()).data)


# ---------------------------------------------------------------- imports


class ImportJobSerializer(serializers.ModelSerializer):
    source_name = serializers.CharField(source="source.name", read_only=True)
    category = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)
    subcategory = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)
    licence = serializers.SlugRelatedField(slug_field="code", read_only=True, allow_null=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    percent = serializers.IntegerField(read_only=True)
    error = serializers.CharField(source="error_text", read_only=True,
                                  help_text="Why it failed or stopped, in the request's language (error_code: its code).")
    input = serializers.SerializerMethodField()
    links = serializers.SerializerMethodField()

    class Meta:
        model = ImportJob
        fields = [
            "id", "source", "source_name", "kind", "input", "category", "subcategory", "licence", "author",
            "status", "error", "error_code", "error_params", "total", "processed", "accepted", "duplicates", "refused", "warnings", "percent",
            "created_by", "created_at", "started_at", "finished_at", "heartbeat_at", "links",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_input(self, obj: ImportJob) -> dict:
        """What the import reads, without its internal staging keys."""
        p = obj.params
        if obj.kind == SourceKind.UPLOAD:
            return {"files": [s["name"] for s in p.get("staged", [])]}
        if obj.kind == SourceKind.FOLDER:
            return {"folder": p.get("path", "")}
        if obj.kind == SourceKind.S3:
            return {"s3_bucket": p.get("bucket", ""), "s3_prefix": p.get("prefix", ""),
                    "s3_endpoint_url": p.get("endpoint_url", "")}
        return {"manifest": p.get("manifest_name", ""), "format": p.get("format", "")}

    @extend_schema_field(
        {"type": "object", "properties": {"self": {"type": "string"}, "items": {"type": "string"}}}
    )
    def get_links(self, obj: ImportJob) -> dict:
        request = self.context.get("request")
        return {
            "self": reverse("api:import-detail", kwargs={"pk": obj.pk}, request=request),
            "items": reverse("api:import-items", kwargs={"job_pk": obj.pk}, request=request),
        }


class ImportCreateSerializer(serializers.Serializer):
    """Start an import. Give exactly one of `files`, `manifest`, `s3_bucket` or `folder`."""

    source = serializers.PrimaryKeyRelatedField(queryset=Source.objects.all(), help_text="Source id.")
    category = serializers.SlugRelatedField(
        slug_field="slug", queryset=Category.objects.all(), required=False, allow_null=True,
        help_text="Category slug for every file (a manifest row's own category wins).",
    )
    subcategory = serializers.CharField(
        required=False, allow_blank=True, help_text="Subcategory slug within `category`."
    )
    licence = serializers.SlugRelatedField(
        slug_field="code", queryset=Licence.objects.all(), required=False, allow_null=True,
        help_text="Licence code; the source's default licence when left out.",
    )
    author = serializers.CharField(required=False, allow_blank=True, max_length=300)
    files = serializers.ListField(
        child=serializers.FileField(allow_empty_file=True, use_url=False), required=False, allow_empty=True,
        help_text="Image files and/or .zip archives (multipart, the field repeated).",
    )
    manifest = serializers.FileField(
        required=False, allow_empty_file=True, use_url=False,
        help_text="A CSV or JSON Lines manifest of paths or URLs (Open Images' columns work).",
    )
    manifest_base = serializers.CharField(
        required=False, allow_blank=True, help_text="Server folder that relative manifest paths start from."
    )
    s3_bucket = serializers.CharField(required=False, allow_blank=True, max_length=255)
    s3_prefix = serializers.CharField(required=False, allow_blank=True, max_length=1024)
    s3_endpoint_url = serializers.CharField(
        required=False, allow_blank=True, max_length=2000,
        help_text="Blank: the server's default S3 endpoint (AWS_S3_ENDPOINT_URL, else AWS). Otherwise one of the "
        "endpoints the operator allows (INGEST_S3_ENDPOINT_URLS); any other address is refused with a 400.",
    )
    folder = serializers.CharField(
        required=False, allow_blank=True, help_text="A server folder under INGEST_ALLOWED_ROOTS."
    )

    INPUTS = ("files", "manifest", "s3_bucket", "folder")

    def validate(self, attrs):
        given = [name for name in self.INPUTS if attrs.get(name)]
        if len(given) != 1:
            raise serializers.ValidationError(
                {"non_field_errors": [
                    "Give exactly one of: files, manifest, s3_bucket (with s3_prefix) or folder"
                    + (f"; got {', '.join(given)}." if given else "; got none.")
                ]}
            )
        if (attrs.get("s3_prefix") or attrs.get("s3_endpoint_url")) and not attrs.get("s3_bucket"):
            raise serializers.ValidationError({"s3_bucket": "s3_prefix and s3_endpoint_url need s3_bucket."})
        if attrs.get("manifest_base") and not attrs.get("manifest"):
            raise serializers.ValidationError({"manifest_base": "manifest_base goes with a manifest."})
        attrs["category"], attrs["subcategory"] = resolve_target(attrs)
        if attrs.get("licence") is not None:
            try:
                services.check_licence(attrs["licence"])
            except services.imaging.ImageRefused as exc:
                raise serializers.ValidationError({"licence": str(exc)}) from None
        return attrs


class ImportItemSerializer(serializers.ModelSerializer):
    """One report line. `reason` is said in the request's language (Accept-Language); `reason_code`
    and `reason_params` are the same reason for programs (datasets.refusals; blank for lines
    written before codes, whose `reason` is their stored English text)."""

    reason = serializers.CharField(source="reason_text", read_only=True,
                                   help_text="Why it was refused, or a warning, in the request's language.")

    class Meta:
        model = ImportItem
        fields = ["position", "name", "outcome", "reason", "reason_code", "reason_params", "image", "duplicate_of"]
        read_only_fields = fields


@extend_schema_view(
    create=extend_schema(
        request={"multipart/form-data": ImportCreateSerializer, "application/json": ImportCreateSerializer},
        responses={201: ImportJobSerializer, 400: OpenApiResponse(description="Bad input; nothing was created.")},
    )
)
class ImportJobViewSet(mixins.CreateModelMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                       viewsets.GenericViewSet):
    """Imports: start one (files and .zip, a manifest, an S3 prefix or a server folder) and follow its
    progress; `/api/imports/{id}/items/` is its per-file report."""

    queryset = ImportJob.objects.select_related("source", "category", "subcategory", "licence", "created_by")
    serializer_class = ImportJobSerializer
    permission_classes = [HasRole]
    filterset_class = filters.ImportJobFilter
    ordering_fields = ["created_at"]
    ordering = ["-created_at"]
    pagination_class = Pagination
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    def create(self, request, *args, **kwargs):
        form = ImportCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        d = form.validated_data
        job = services.create_import(
            source=d["source"],
            user=request.user,
            files=d.get("files") or None,
            manifest=d.get("manifest") or None,
            manifest_base=d.get("manifest_base") or None,
            s3_bucket=d.get("s3_bucket") or None,
            s3_prefix=d.get("s3_prefix", ""),
            s3_endpoint_url=d.get("s3_endpoint_url") or None,
            folder=d.get("folder") or None,
            category=d["category"],
            subcategory=d["subcategory"],
            licence=d.get("licence"),
            author=d.get("author", ""),
            trusted=False,
        )
        data = self.get_serializer(job).data
        return Response(data, status=status.HTTP_201_CREATED, headers={"Location": data["links"]["self"]})

    def list(self, request, *args, **kwargs):
        services.sweep_stalled_imports_now_and_then()
        return super().list(request, *args, **kwargs)

    def retrieve(self, request, *args, **kwargs):
        services.sweep_stalled_imports_now_and_then()
        return super().retrieve(request, *args, **kwargs)

    @extend_schema(request=None, responses={
        200: ImportJobSerializer,
        409: OpenApiResponse(description="The import is not interrupted; nothing changed."),
    })
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        """Queue an interrupted import again (its worker died, it hit a time limit or an error that
        was not one file's fault); the new run reads only the entries not yet reported."""
        job = services.resume_import(self.get_object())
        return Response(self.get_serializer(job).data)


class ImportItemList(generics.ListAPIView):
    """The per-file report of one import: accepted, duplicate (of which image) or refused (why)."""

    serializer_class = ImportItemSerializer
    permission_classes = [HasRole]
    filterset_class = filters.ImportItemFilter
    ordering_fields = ["position"]
    ordering = ["position"]
    search_fields = ["name", "reason"]
    pagination_class = Pagination

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ImportItem.objects.none()
        job = get_object_or_404(ImportJob, pk=self.kwargs["job_pk"])
        return job.items.all()


# ---------------------------------------------------------------- quota dashboard


class SubcategoryQuotaSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    slug = serializers.CharField()
    name = serializers.CharField()
    target = serializers.IntegerField(source="quota")
    collected = serializers.IntegerField()
    labeled = serializers.IntegerField(allow_null=True, help_text="Null until labeling exists.")
    percent = serializers.IntegerField()
    full = serializers.BooleanField()
    over = serializers.BooleanField()
    is_active = serializers.BooleanField()


class CategoryQuotaSerializer(SubcategoryQuotaSerializer):
    uncategorised = serializers.IntegerField(help_text="Images in the category with no subcategory.")
    subcategories = SubcategoryQuotaSerializer(many=True)


class QuotaTotalsSerializer(serializers.Serializer):
    quota = serializers.IntegerField()
    collected = serializers.IntegerField()
    uncategorised = serializers.IntegerField(help_text="Images with no category.")
    labeled = serializers.IntegerField(allow_null=True)
    withdrawn = serializers.IntegerField(help_text="Retired or excluded images, counted nowhere else.")


class QuotaDashboardSerializer(serializers.Serializer):
    categories = CategoryQuotaSerializer(many=True)
    totals = QuotaTotalsSerializer()


class QuotaView(APIView):
    """Target, collected and labeled per category and subcategory (`?include_retired=true` adds retired ones)."""

    permission_classes = [HasRole]

    @extend_schema(
        responses=QuotaDashboardSerializer,
        parameters=[OpenApiParameter("include_retired", OpenApiTypes.BOOL, description="Add retired categories.")],
    )
    def get(self, request):
        include_retired = request.query_params.get("include_retired", "").lower() in {"1", "true", "yes"}
        rows, totals = selectors.quota_dashboard(include_retired=include_retired)
        return Response(QuotaDashboardSerializer({"categories": rows, "totals": totals}).data)



# ---------------------------------------------------------------- exports


class ExportOptionsSerializer(serializers.Serializer):
    max_samples = serializers.IntegerField(min_value=1, max_value=10_000_000, default=1000,
                                           help_text="Samples (comments) per shard.")
    max_bytes = serializers.IntegerField(min_value=1024**2, max_value=1024**4, default=512 * 1024**2,
                                         help_text="Target bytes per shard (a photo's samples are never split).")
    image_mode = serializers.ChoiceField(choices=["stored", "resized"], default="stored",
                                         help_text="stored: the stored copy's bytes; resized: JPEG, shortest side "
                                                   "at most `shortest_side`.")
    shortest_side = serializers.IntegerField(min_value=32, max_value=8192, default=512)
    jpeg_quality = serializers.IntegerField(min_value=1, max_value=100, default=90)


class ExportStartSerializer(serializers.Serializer):
    destination = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="",
                                        help_text="A folder under the server's EXPORT_ROOT (relative, or blank for "
                                                  "the root) or s3://bucket/prefix.")
    options = ExportOptionsSerializer(required=False, default=None, allow_null=True)


class ExportFileSerializer(serializers.Serializer):
    path = serializers.CharField()
    size = serializers.IntegerField()
    sha256 = serializers.CharField()
    url = serializers.CharField(help_text="Download link: signed (and expiring) on S3; for a local folder "
                                          "/api/exports/{id}/files/{path} (same authentication as the API).")


class ExportProblemSerializer(serializers.Serializer):
    image_id = serializers.CharField()
    comment_id = serializers.IntegerField(required=False, help_text="For a comment whose text was cleaned.")
    code = serializers.CharField()
    message = serializers.CharField()
    shard = serializers.CharField(required=False)


class ExportSerializer(serializers.ModelSerializer):
    snapshot_label = serializers.CharField(source="snapshot.label", read_only=True)
    created_by = serializers.CharField(source="created_by.username", read_only=True, allow_null=True, default=None)
    options = ExportOptionsSerializer(read_only=True)
    percent = serializers.IntegerField(read_only=True)
    error = serializers.CharField(source="error_text", read_only=True)
    problems = ExportProblemSerializer(many=True, read_only=True)
    stalled = serializers.SerializerMethodField()
    files = serializers.SerializerMethodField()

    class Meta:
        model = Export
        fields = ["id", "snapshot", "snapshot_label", "destination", "folder", "options", "status", "percent",
                  "shards_total", "shards_done", "samples_total", "samples_done", "problems", "error", "error_code",
                  "sums_sha256", "stalled", "created_by", "created_at", "started_at", "finished_at", "heartbeat_at",
                  "files"]
        read_only_fields = fields

    def get_stalled(self, obj) -> bool:
        from .export.services import is_stalled

        return is_stalled(obj)

    @extend_schema_field(ExportFileSerializer(many=True))
    def get_files(self, obj) -> list[dict]:
        request = self.context.get("request")
        rows = selectors.export_files(obj, api=True)
        for row in rows:
            if request is not None and row["url"].startswith("/"):
                row["url"] = request.build_absolute_uri(row["url"])
        return [{k: row[k] for k in ("path", "size", "sha256", "url")} for row in rows]


class ExportAccess:
    permission_classes = [HasRole]
    read_roles = (Role.PLANNER, Role.ENGINEER)
    write_roles = (Role.PLANNER, Role.ENGINEER)


class SnapshotExportList(ExportAccess, generics.ListAPIView):
    """A snapshot's exports, newest first. POST starts one: the shards are planned now and written
    by Celery tasks per shard group; follow `/api/exports/{id}/`."""

    serializer_class = ExportSerializer
    pagination_class = Pagination

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema generator
            return Export.objects.none()
        snapshot = get_object_or_404(Snapshot, pk=self.kwargs["pk"])
        return Export.objects.filter(snapshot=snapshot).select_related("snapshot", "created_by").order_by(
            "-created_at", "-pk")

    @extend_schema(request=ExportStartSerializer, responses={
        201: ExportSerializer,
        409: OpenApiResponse(description="The destination holds a finished export of this version with other "
                                         "options, or one with other options is being written."),
    })
    def post(self, request, pk):
        from .export import services as export_services

        snapshot = get_object_or_404(Snapshot, pk=pk)
        body = ExportStartSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        export = export_services.start_export(snapshot, body.validated_data["destination"],
                                              body.validated_data["options"] or None, request.user)
        return Response(ExportSerializer(export, context={"request": request}).data, status=status.HTTP_201_CREATED)


class ExportDetail(ExportAccess, generics.RetrieveAPIView):
    """An export's status and progress, the problems its shards reported (a photo whose file is
    gone) and, once done, its files with download links (signed on S3)."""

    serializer_class = ExportSerializer
    queryset = Export.objects.select_related("snapshot", "created_by")


class ExportResume(ExportAccess, APIView):
    @extend_schema(request=None, responses={
        200: ExportSerializer,
        409: OpenApiResponse(description="Only a failed, cancelled or stalled export can be resumed."),
    })
    def post(self, request, pk):
        """Queue again the shard groups not yet written (or the finishing step)."""
        from .export import services as export_services

        export = export_services.resume_export(get_object_or_404(Export, pk=pk))
        return Response(ExportSerializer(export, context={"request": request}).data)


class ExportCancel(ExportAccess, APIView):
    @extend_schema(request=None, responses={
        200: ExportSerializer,
        409: OpenApiResponse(description="Only a queued or running export can be cancelled."),
    })
    def post(self, request, pk):
        """Stop a queued or running export before its next shard; it can be resumed later."""
        from .export import services as export_services

        export = export_services.cancel_export(get_object_or_404(Export, pk=pk), request.user)
        return Response(ExportSerializer(export, context={"request": request}).data)


class ExportFileDownload(ExportAccess, APIView):
    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY,
                              404: OpenApiResponse(description="Not a file of a done export on a local folder.")})
    def get(self, request, pk, path):
        """One file of a done export written to a local folder (S3 exports link to signed URLs)."""
        from django.http import FileResponse, Http404

        from .export import services as export_services

        full = export_services.download_path(get_object_or_404(Export, pk=pk), path)
        if full is None:
            raise Http404
        return FileResponse(open(full, "rb"), as_attachment=True, filename=full.name)


# ---------------------------------------------------------------- training runs


class RunRegisterSerializer(serializers.Serializer):
    location = serializers.CharField(max_length=1000, help_text="The run folder: a path under the server's RUNS_ROOT "
                                                                "(relative, or absolute inside it) or s3://bucket/prefix.")


class TrainingRunSerializer(serializers.ModelSerializer):
    snapshot_label = serializers.CharField(read_only=True, help_text="`<name> v<version>` as the run named it.")
    snapshot_problem_text = serializers.CharField(read_only=True, help_text="Why the run is not attached to a "
                                                                            "snapshot version (empty when it is).")
    scores = serializers.DictField(child=serializers.FloatField(), read_only=True,
                                   help_text="The comparison columns (i2t_r1 ... t2i_r10; bleu1 ... bleu4, meteor, "
                                             "rouge_l, cider, ppl) from eval.json's metrics.")
    tokenizer = serializers.CharField(read_only=True, help_text="The metrics' tokenizer (eval.json's signature).")
    registered_by = serializers.CharField(source="registered_by.username", read_only=True, allow_null=True,
                                          default=None)

    class Meta:
        model = TrainingRun
        fields = ["id", "run_id", "kind", "status", "location", "snapshot", "snapshot_label", "snapshot_name",
                  "snapshot_version", "snapshot_checksum", "snapshot_path", "snapshot_problem",
                  "snapshot_problem_text", "scores", "metrics", "evaluation", "tokenizer", "config", "model_info",
                  "epochs", "files", "epochs_done", "steps_done", "world_size", "device", "git_commit",
                  "started_at", "finished_at", "registered_by", "registered_at", "updated_at"]
        read_only_fields = fields


class RunAccess:
    """Engineers register and remove runs; planners read them (admins do everything)."""

    permission_classes = [HasRole]
    read_roles = (Role.PLANNER, Role.ENGINEER)
    write_roles = (Role.ENGINEER,)


@extend_schema_view(get=extend_schema(parameters=[
    OpenApiParameter("snapshot", str, description="A snapshot's id, or `unknown` for runs attached to no snapshot "
                                                  "version here."),
    OpenApiParameter("kind", str, enum=["retrieval", "generative"]),
]))
class TrainingRunList(RunAccess, generics.ListAPIView):
    """Training runs, by snapshot version (name, newest version first), then newest first. POST
    registers a run folder, or updates the run registered under its run_id (read it again)."""

    serializer_class = TrainingRunSerializer
    pagination_class = Pagination

    def get_queryset(self):
        from .runs import selectors as run_selectors

        if getattr(self, "swagger_fake_view", False):  # the schema generator
            return TrainingRun.objects.none()
        snapshot = self.request.query_params.get("snapshot") or None
        kind = self.request.query_params.get("kind") or None
        if snapshot not in (None, run_selectors.UNKNOWN) and not (snapshot.isdecimal() and len(snapshot) < 19):
            raise serializers.ValidationError({"snapshot": "Give a snapshot id or `unknown`."})
        if kind not in (None, *RunKind.values):
            raise serializers.ValidationError({"kind": "Give retrieval or generative."})
        return run_selectors.runs(snapshot, kind).select_related("registered_by")

    @extend_schema(request=RunRegisterSerializer, responses={
        201: TrainingRunSerializer,
        200: OpenApiResponse(TrainingRunSerializer, description="The run was registered before: updated."),
    })
    def post(self, request):
        from .runs import services as run_services

        body = RunRegisterSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        run, created = run_services.register_run(body.validated_data["location"], request.user)
        return Response(TrainingRunSerializer(run).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class TrainingRunDetail(RunAccess, generics.RetrieveDestroyAPIView):
    """A run: what its folder said when last registered. DELETE forgets it (its folder stays)."""

    serializer_class = TrainingRunSerializer
    queryset = TrainingRun.objects.select_related("snapshot", "registered_by")

    def perform_destroy(self, instance):
        from .runs import services as run_services

        run_services.remove_run(instance)
