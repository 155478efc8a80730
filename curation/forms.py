"""The run page's start form."""
from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from labeling.models import Project

from . import steps as registry


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


class SpecificityForm(forms.Form):
    specificity_flag_below = forms.FloatField(
        required=False, min_value=-2.0, max_value=2.0, label=_("Flag comments with a specificity below"),
        help_text=_("Empty: no low-specificity flags. Specificity is the comment's similarity to its own photo minus "
                    "its mean similarity to a sample of the project's photos; about 0 for a comment that fits any photo."))
