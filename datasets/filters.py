"""django-filter FilterSets for the datasets API (query parameters of the list endpoints).

Every FilterSet here derives from `FilterSet`, whose number and date-time filters refuse values
the database cannot compare with (an id past bigint, a time before year 1 once in UTC) with a
400 naming the parameter, where they used to reach the query and end in a 500.
"""
from __future__ import annotations

from datetime import UTC, timedelta

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _
from django_filters.fields import IsoDateTimeField as BaseIsoDateTimeField
from django_filters.filterset import FILTER_FOR_DBFIELD_DEFAULTS
from drf_spectacular.utils import extend_schema_field

from config.api import BIGINT_MAX

from .models import Category, Image, ImageStatus, ImportItem, ImportJob, ImportStatus, Outcome, Source, SourceKind, Subcategory


class IsoDateTimeField(BaseIsoDateTimeField):
    """An ISO 8601 date-time the database can compare with, handed on in UTC: its offset within
    the ones in use (Python takes up to a day, PostgreSQL refused past 15:59 with a 500) and,
    with that offset (or the current time zone's), still between years 1 and 9999 in UTC."""

    MAX_OFFSET = timedelta(hours=14)  # Kiribati; the farthest west is -12:00
    default_error_messages = {
        "offset": _("Give a UTC offset between -14:00 and +14:00."),
        "range": _("Enter a date and time between the years 1 and 9999 (in UTC)."),
    }

    def to_python(self, value):
        value = super().to_python(value)
        if value is None:
            return value
        offset = value.utcoffset()
        if offset is not None and abs(offset) > self.MAX_OFFSET:
            raise ValidationError(self.error_messages["offset"], code="offset")
        try:
            return value.astimezone(UTC)
        except OverflowError:
            raise ValidationError(self.error_messages["range"], code="range") from None


class IsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = IsoDateTimeField


@extend_schema_field({"type": "integer", "format": "int64"})
class IntegerFilter(django_filters.NumberFilter):
    """A whole number within bigint (ids, hashes): NumberFilter's decimals of any size overflow
    the query."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", -BIGINT_MAX - 1)
        kwargs.setdefault("max_value", BIGINT_MAX)
        super().__init__(*args, **kwargs)


class FilterSet(django_filters.FilterSet):
    """The base of these FilterSets: filters generated from model fields get the safe classes too."""

    FILTER_DEFAULTS = {
        **FILTER_FOR_DBFIELD_DEFAULTS,
        **{field: {"filter_class": IntegerFilter} for field in (
            models.AutoField, models.IntegerField, models.SmallIntegerField, models.BigIntegerField,
            models.PositiveIntegerField, models.PositiveSmallIntegerField, models.PositiveBigIntegerField,
        )},
        models.DateTimeField: {"filter_class": IsoDateTimeFilter},
    }


class SubcategoryFilter(FilterSet):
    category = django_filters.CharFilter(field_name="category__slug", help_text="Category slug.")
    is_active = django_filters.BooleanFilter()

    class Meta:
        model = Subcategory
        fields = ["category", "is_active"]


class CategoryFilter(FilterSet):
    is_active = django_filters.BooleanFilter()

    class Meta:
        model = Category
        fields = ["is_active"]


class SourceFilter(FilterSet):
    kind = django_filters.ChoiceFilter(choices=SourceKind.choices)
    licence = django_filters.CharFilter(field_name="default_licence__code", help_text="Default licence code.")

    class Meta:
        model = Source
        fields = ["kind", "licence"]


class ImageFilter(FilterSet):
    category = django_filters.CharFilter(field_name="category__slug", help_text="Category slug.")
    subcategory = django_filters.CharFilter(field_name="subcategory__slug", help_text="Subcategory slug.")
    source = IntegerFilter(field_name="source_id", help_text="Source id.")
    licence = django_filters.CharFilter(field_name="licence__code", help_text="Licence code, e.g. cc-by-4.0.")
    import_job = IntegerFilter(field_name="import_job_id", help_text="Import id.")
    created_after = IsoDateTimeFilter(
        field_name="created_at", lookup_expr="gte", help_text="ISO 8601 date-time, inclusive."
    )
    created_before = IsoDateTimeFilter(
        field_name="created_at", lookup_expr="lt", help_text="ISO 8601 date-time, exclusive."
    )
    sha256 = django_filters.CharFilter(help_text="SHA-256 of the original bytes (hex).")
    uncategorised = django_filters.BooleanFilter(
        field_name="category", lookup_expr="isnull", help_text="true: only images with no category."
    )
    status = django_filters.ChoiceFilter(
        choices=[*ImageStatus.choices, ("all", "All")], method="filter_status",
        help_text="active (the default), retired, excluded, or all.",
    )

    def filter_status(self, queryset, name, value):
        return queryset if value == "all" else queryset.filter(status=value)

    class Meta:
        model = Image
        fields = {"phash": ["exact"]}


class ImportJobFilter(FilterSet):
    status = django_filters.ChoiceFilter(choices=ImportStatus.choices)
    kind = django_filters.ChoiceFilter(choices=SourceKind.choices)
    source = IntegerFilter(field_name="source_id", help_text="Source id.")

    class Meta:
        model = ImportJob
        fields = ["status", "kind", "source"]


class ImportItemFilter(FilterSet):
    outcome = django_filters.ChoiceFilter(choices=Outcome.choices)

    class Meta:
        model = ImportItem
        fields = ["outcome"]
