"""The snapshot pages' forms (labeling/snapshot_views.py): the create form, whose cleaned data is
what labeling.snapshots.freeze_snapshot and preview take, and the diff page's choice of version."""
from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from datasets.models import Category, Snapshot

from .models import CommentType, Project
from .snapshots import MAX_SEED

MODE_RATIOS, MODE_COUNTS = "ratios", "counts"


class ProjectChoices(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj):
        return _("%(name)s (overlap %(overlap)d)") % {"name": obj.name, "overlap": obj.overlap}


class KeepChoices(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return _("Keep val and test photos of %(label)s") % {"label": obj.label}


class TypeCheckboxes(forms.CheckboxSelectMultiple):
    """Comment type checkboxes, each with data-projects="<ids>": the projects that have the type
    (the page's script shows only the chosen projects' types)."""

    option_projects: dict[str, list[int]] = {}

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        option["attrs"]["data-projects"] = " ".join(map(str, self.option_projects.get(str(value), [])))
        return option


class SnapshotForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100,
                           help_text=_("A new name starts at v1; an existing name gets its next version."))
    projects = ProjectChoices(label=_("Projects"), queryset=Project.objects.none(),
                              widget=forms.CheckboxSelectMultiple)
    categories = forms.MultipleChoiceField(label=_("Categories"), required=False, widget=forms.CheckboxSelectMultiple,
                                           help_text=_("None chosen: every category, and photos without one."))
    comment_types = forms.MultipleChoiceField(label=_("Comment types"), required=False, widget=TypeCheckboxes,
                                              help_text=_("None chosen: every comment type of the chosen projects."))
    min_sets = forms.IntegerField(label=_("Minimum complete comment sets"), required=False, min_value=1,
                                  max_value=1000,
                                  help_text=_("Only photos with at least this many submitted comment sets. Empty: "
                                              "the chosen projects' overlap (the smallest, if they differ)."))
    seed = forms.IntegerField(label=_("Seed"), min_value=0, max_value=MAX_SEED, initial=0,
                              help_text=_("The same seed and photos give the same splits."))
    split_mode = forms.ChoiceField(label=_("Split by"), widget=forms.RadioSelect, initial=MODE_RATIOS,
                                   choices=[(MODE_RATIOS, _("Ratios of train, val and test")),
                                            (MODE_COUNTS, _("Numbers of val and test photos"))])
    train = forms.DecimalField(label=_("Train"), required=False, min_value=0, max_value=1, decimal_places=3,
                               initial="0.8")
    val = forms.DecimalField(label=_("Validation"), required=False, min_value=0, max_value=1, decimal_places=3,
                             initial="0.1")
    test = forms.DecimalField(label=_("Test"), required=False, min_value=0, max_value=1, decimal_places=3,
                              initial="0.1")
    val_count = forms.IntegerField(label=_("Validation photos"), required=False, min_value=0, max_value=10**9)
    test_count = forms.IntegerField(label=_("Test photos"), required=False, min_value=0, max_value=10**9)
    keep_splits_from = KeepChoices(label=_("Keep splits from"), required=False, queryset=Snapshot.objects.none(),
                                   empty_label=_("No: split every photo afresh"),
                                   help_text=_("Photos of that version's val and test splits stay in them, so "
                                               "scores stay comparable across versions."))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["projects"].queryset = Project.objects.order_by("-is_active", "name", "pk")
        self.fields["categories"].choices = list(Category.objects.order_by("position", "name")
                                                 .values_list("slug", "name"))
        # Each slug once, named as in the first project that has it; the page's script shows only
        # those of the chosen projects (data-projects on each choice).
        self.type_projects: dict[str, list[int]] = {}
        names: dict[str, str] = {}
        for slug, name, project_id in CommentType.objects.order_by("project_id", "position", "pk").values_list(
                "slug", "name", "project_id"):
            names.setdefault(slug, name)
            self.type_projects.setdefault(slug, []).append(project_id)
        self.fields["comment_types"].widget.option_projects = self.type_projects
        self.fields["comment_types"].choices = [(slug, f"{name} ({slug})") for slug, name in names.items()]
        self.fields["keep_splits_from"].queryset = Snapshot.objects.order_by("name", "-version")

    def clean(self):
        data = super().clean()
        projects = data.get("projects")
        if projects and data.get("comment_types"):
            ids = {p.pk for p in projects}
            stray = [s for s in data["comment_types"] if not ids & set(self.type_projects.get(s, []))]
            if stray:
                self.add_error("comment_types", _("Not a comment type of the chosen projects: %(slugs)s.")
                               % {"slugs": ", ".join(stray)})
        if data.get("split_mode") == MODE_COUNTS:
            for name in ("val_count", "test_count"):
                if data.get(name) is None and name not in self.errors:
                    self.add_error(name, _("Give a number of photos (0 or more)."))
        elif data.get("split_mode") == MODE_RATIOS:
            for name in ("train", "val", "test"):
                if data.get(name) is None and name not in self.errors:
                    self.add_error(name, _("Give a fraction from 0 to 1."))
            if not self.errors and abs(sum(data[n] for n in ("train", "val", "test")) - 1) > 1e-6:
                self.add_error(None, _("Train, val and test ratios add up to %(sum)s; they must add up to 1.")
                               % {"sum": f"{sum(data[n] for n in ('train', 'val', 'test')):g}"})
        return data

    def preview_args(self) -> dict:
        """labeling.snapshots.preview's arguments from the valid form's data (the live count's, too)."""
        d = self.cleaned_data
        return {"projects": list(d["projects"]), "categories": d["categories"], "comment_types": d["comment_types"],
                "min_sets": d["min_sets"]}

    def freeze_args(self) -> dict:
        """labeling.snapshots.freeze_snapshot's arguments from the valid form's data."""
        d = self.cleaned_data
        ratios = counts = None
        if d["split_mode"] == MODE_COUNTS:
            counts = {"val": d["val_count"], "test": d["test_count"]}
        else:
            ratios = {n: float(d[n]) for n in ("train", "val", "test")}
        return {"name": d["name"], **self.preview_args(), "seed": d["seed"], "ratios": ratios, "counts": counts,
                "keep_splits_from": d["keep_splits_from"]}

    @staticmethod
    def initial_from(snapshot: Snapshot) -> dict:
        """The form's starting values for the next version of `snapshot`: its parameters, and its
        val and test photos kept."""
        initial = {
            "name": snapshot.name, "projects": [p["id"] for p in snapshot.projects],
            "categories": snapshot.categories, "comment_types": snapshot.comment_types,
            "min_sets": snapshot.min_sets, "seed": snapshot.seed, "keep_splits_from": snapshot.pk,
        }
        if snapshot.counts:
            initial.update(split_mode=MODE_COUNTS, val_count=snapshot.counts.get("val"),
                           test_count=snapshot.counts.get("test"))
        elif snapshot.ratios:
            initial.update(split_mode=MODE_RATIOS, **{n: snapshot.ratios.get(n) for n in ("train", "val", "test")})
        return initial


class DiffForm(forms.Form):
    against = forms.TypedChoiceField(label=_("Compare with"), coerce=int)

    def __init__(self, snapshot: Snapshot, *args, **kwargs):
        super().__init__(*args, **kwargs)
        others = Snapshot.objects.exclude(pk=snapshot.pk).order_by("name", "-version")
        same = [(s.pk, s.label) for s in others if s.name == snapshot.name]
        rest = [(s.pk, s.label) for s in others if s.name != snapshot.name]
        choices = []
        if same:
            choices.append((_("Versions of %(name)s") % {"name": snapshot.name}, same))
        if rest:
            choices.append((_("Other snapshots"), rest))
        self.fields["against"].choices = choices
