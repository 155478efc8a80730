"""The comment browser's filters, read from a query string: one form for the planner page, its
download and the API (`labeling.comment_views`, `labeling.api.comments`), so each checks the same
way and says the same thing about bad input."""
from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from datasets.models import Category, Subcategory

from .models import Project
from .selectors import COMMENT_ORDERS, CommentFilters

ORDER_LABELS = {
    "newest": _("Newest first"),
    "oldest": _("Oldest first"),
    "longest": _("Longest first"),
    "shortest": _("Shortest first"),
    "labeler": _("By labeler"),
}
MAX_QUERY = 200


class CommentFilterForm(forms.Form):
    q = forms.CharField(label=_("Text contains"), required=False, max_length=MAX_QUERY, strip=True)
    category = forms.ChoiceField(label=_("Category"), required=False)
    subcategory = forms.ChoiceField(label=_("Subcategory"), required=False)
    comment_type = forms.ChoiceField(label=_("Comment type"), required=False)
    labeler = forms.CharField(label=_("Labeler"), required=False, max_length=150,
                              help_text=_("Username."))
    guideline_version = forms.IntegerField(label=_("Guideline version"), required=False, min_value=0,
                                           max_value=2**31 - 1)
    min_length = forms.IntegerField(label=_("Length from"), required=False, min_value=0, max_value=100_000)
    max_length = forms.IntegerField(label=_("Length to"), required=False, min_value=0, max_value=100_000)
    since = forms.DateField(label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    order = forms.ChoiceField(label=_("Order"), required=False,
                              choices=[(k, ORDER_LABELS[k]) for k in COMMENT_ORDERS])

    def __init__(self, project: Project, data=None):
        super().__init__(data)
        self.project = project
        any_ = [("", _("Any"))]
        self.fields["category"].choices = any_ + list(Category.objects.values_list("slug", "name"))
        seen: dict[str, str] = {}  # a slug used in two categories is one choice (the filter matches both)
        for s in Subcategory.objects.select_related("category"):
            seen.setdefault(s.slug, f"{s.category.name} / {s.name}")
        self.fields["subcategory"].choices = any_ + list(seen.items())
        self.fields["comment_type"].choices = any_ + list(
            project.comment_types.order_by("position", "id").values_list("slug", "name"))

    def clean(self):
        data = super().clean()
        lo, hi = data.get("min_length"), data.get("max_length")
        if lo is not None and hi is not None and lo > hi:
            self.add_error("max_length", _("Give a length to that is not below the length from."))
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            self.add_error("until", _("Give an end date that is not before the start date."))
        return data

    def filters(self) -> CommentFilters:
        """The valid form's filters (call is_valid() first)."""
        d = self.cleaned_data
        return CommentFilters(
            q=d.get("q") or "", category=d.get("category") or "", subcategory=d.get("subcategory") or "",
            comment_type=d.get("comment_type") or "", labeler=(d.get("labeler") or "").strip(),
            guideline_version=d.get("guideline_version"), min_length=d.get("min_length"),
            max_length=d.get("max_length"), since=d.get("since"), until=d.get("until"),
        )

    def ordering(self) -> str:
        return self.cleaned_data.get("order") or "newest"
