"""The run page's start form."""
from __future__ import annotations

import math

from django import forms
from django.utils.translation import gettext_lazy as _

from config.api import BIGINT_MAX
from labeling.models import Project

from . import steps as registry
from .models import FlagKind, FlagStatus
from .selectors import FlagFilters


class RunForm(forms.Form):
    project = forms.ModelChoiceField(queryset=Project.objects.order_by("name"), required=False,
                                     empty_label=_("The whole catalogue"), label=_("Scope"))
    steps = forms.MultipleChoiceField(label=_("Steps"), widget=forms.CheckboxSelectMultiple,
                                      help_text=_("Steps a chosen step needs (the window hashes of near-duplicates) "
                                                  "are added."))
    new_only = forms.BooleanField(required=False, label=_("Only what is new"),
                                  help_text=_("Photos and comments that arrived since the last finished run of "
                                              "the same scope."))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        choices = [(step.name, step.label) for step in registry.STEPS]
        self.fields["steps"].choices = choices
        self.fields["steps"].initial = [name for name, _label in choices if name != "signatures"]


class MatchingForm(forms.Form):
    """The review queue's filters as a decision by filters takes them (curation.services.
    decide_matching): the same fields as the queue's filter form, checked strictly (a decision
    must not silently ignore a filter that makes no sense), a kind required. The page's "Decide
    all N matching" panel, its preview and the API (POST /api/curation/flags/decide-matching/)
    all read them through this form."""

    kind = forms.ChoiceField(label=_("Kind"), choices=FlagKind.choices)
    project = forms.IntegerField(label=_("Project"), required=False, min_value=1, max_value=BIGINT_MAX)
    category = forms.IntegerField(label=_("Category"), required=False, min_value=1, max_value=BIGINT_MAX)
    detector = forms.CharField(label=_("Detector"), required=False, max_length=100)
    score_min = forms.FloatField(label=_("Score from"), required=False)
    score_max = forms.FloatField(label=_("Score to"), required=False)

    def clean(self):
        data = super().clean()
        for name in ("score_min", "score_max"):
            if data.get(name) is not None and not math.isfinite(data[name]):
                self.add_error(name, _("A finite number, please."))
        low, high = data.get("score_min"), data.get("score_max")
        if low is not None and high is not None and low > high:
            self.add_error("score_max", _("The upper end is below the lower one."))
        return data

    def filters(self) -> FlagFilters:
        d = self.cleaned_data
        return FlagFilters(kind=d["kind"], status=FlagStatus.OPEN, project=d.get("project"),
                           category=d.get("category"), detector=d.get("detector") or "",
                           score_min=d.get("score_min"), score_max=d.get("score_max"))

    @classmethod
    def from_filters(cls, f: FlagFilters, data: dict | None = None) -> MatchingForm:
        """A bound form holding the page's current filters (and `data`: the panel's fields)."""
        values = {k: v for k, v in (("kind", f.kind), ("project", f.project), ("category", f.category),
                                    ("detector", f.detector), ("score_min", f.score_min),
                                    ("score_max", f.score_max)) if v not in (None, "")}
        return cls({**values, **(data or {})})
class SpecificityForm(forms.Form):
    specificity_flag_below = forms.FloatField(
        required=False, min_value=-2.0, max_value=2.0, label=_("Flag comments with a specificity below"),
        help_text=_("Empty: no low-specificity flags. Specificity is the comment's similarity to its own photo minus "
                    "its mean similarity to a sample of the project's photos; about 0 for a comment that fits any photo."))
