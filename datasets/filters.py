"""django-filter FilterSets for the datasets API (query parameters of the list endpoints)."""
from __future__ import annotations

import django_filters

from .models import Category, Image, ImportItem, ImportJob, ImportStatus, Outcome, Source, SourceKind, Subcategory


class SubcategoryFilter(django_filters.FilterSet):
    category = django_filters.CharFilter(field_name="category__slug", help_text="Category slug.")
    is_active = django_filters.BooleanFilter()

    class Meta:
        model = Subcategory
        fields = ["category", "is_active"]


class CategoryFilter(django_filters.FilterSet):
    is_active = django_filters.BooleanFilter()

    class Meta:
        model = Category
        fields = ["is_active"]


class SourceFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=SourceKind.choices)
    licence = django_filters.CharFilter(field_name="default_licence__code", help_text="Default licence code.")

    class Meta:
        model = Source
        fields = ["kind", "licence"]


class ImageFilter(django_filters.FilterSet):
    category = django_filters.CharFilter(field_name="category__slug", help_text="Category slug.")
    subcategory = django_filters.CharFilter(field_name="subcategory__slug", help_text="Subcategory slug.")
    source = django_filters.NumberFilter(field_name="source_id", help_text="Source id.")
    licence = django_filters.CharFilter(field_name="licence__code", help_text="Licence code, e.g. cc-by-4.0.")
    import_job = django_filters.NumberFilter(field_name="import_job_id", help_text="Import id.")
    created_after = django_filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="gte", help_text="ISO 8601 date-time, inclusive."
    )
    created_before = django_filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="lt", help_text="ISO 8601 date-time, exclusive."
    )
    sha256 = django_filters.CharFilter(help_text="SHA-256 of the original bytes (hex).")
    uncategorised = django_filters.BooleanFilter(
        field_name="category", lookup_expr="isnull", help_text="true: only images with no category."
    )

    class Meta:
        model = Image
        fields = {"phash": ["exact"]}


class ImportJobFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=ImportStatus.choices)
    kind = django_filters.ChoiceFilter(choices=SourceKind.choices)
    source = django_filters.NumberFilter(field_name="source_id", help_text="Source id.")

    class Meta:
        model = ImportJob
        fields = ["status", "kind", "source"]


class ImportItemFilter(django_filters.FilterSet):
    outcome = django_filters.ChoiceFilter(choices=Outcome.choices)

    class Meta:
        model = ImportItem
        fields = ["outcome"]
