"""Forms for the planner pages. They validate input; labeling.services does the saving (the
project settings page hands its form's data and its comment-type formset's changes to one
services.update_project call)."""
from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.forms import BaseInlineFormSet, formset_factory, inlineformset_factory
from django.utils.translation import gettext_lazy as _

from accounts.models import Role, User
from datasets.models import Category, Source, Subcategory

from . import services
from .models import RULE_FIELDS, Comment, CommentType, Project, Verdict


class ProjectForm(forms.ModelForm):
    class Meta:
        model = Project
        fields = [
            "name", "description", "is_active", "overlap", "cap_per_labeler", "lease_minutes",
            "categories", "subcategories", "sources", "photo_set", *RULE_FIELDS,
        ]
        labels = {
            "name": _("Name"), "description": _("Description"), "is_active": _("Open for labeling"),
            "overlap": _("Overlap (labelers per photo)"), "cap_per_labeler": _("Cap per labeler"),
            "lease_minutes": _("Lease (minutes)"), "categories": _("Categories"),
            "subcategories": _("Subcategories"), "sources": _("Sources"), "photo_set": _("New photos"),
            "count_whitespace": _("Count spaces in the length"),
            "reject_jamo_or_emoji_only": _("Refuse jamo-only or emoji-only text"),
            "max_repeat_run": _("Longest run of one repeated character"),
            "reject_copied_examples": _("Refuse text copied from a guideline example"),
            "reject_own_repeats": _("Refuse text the labeler already wrote"),
            "reject_urls": _("Refuse web addresses (URLs)"),
            "reject_emails": _("Refuse e-mail addresses"),
            "reject_phone_numbers": _("Refuse phone numbers"),
            "reject_personal_info": _("Refuse other personal information"),
        }
        help_texts = {
            "description": _("Labelers see it on their home page under the project's name (its first 160 characters)."),
            "is_active": _("Closed projects hand out no photos."),
            "overlap": _("Distinct labelers who comment on each photo."),
            "cap_per_labeler": _("Most photos one labeler may label here; set a different cap per person on the labelers page."),
            "lease_minutes": _("How long a photo stays reserved for the labeler who opened it."),
            "categories": _("Photos in any chosen category or subcategory. Choose none for every category."),
            "subcategories": _("Adds these subcategories (also from categories not chosen above)."),
            "sources": _("Only photos from these sources. Choose none for every source."),
            "photo_set": _("Follow: photos imported later (or moved or restored into the filters) join the queue while "
                           "the project is open. Frozen: they do not; saving these settings still brings the queue in "
                           "line with the filters."),
            "count_whitespace": _("Off: length counts letters, digits, punctuation and emoji, not spaces."),
            "reject_jamo_or_emoji_only": _("“ㅋㅋㅋ”, “ㅠㅠ” or only emoji are refused."),
            "max_repeat_run": _("More of one character in a row is refused (“와아아아아아아”). 0 turns the check off."),
            "reject_copied_examples": _("The text of an example comment in the published guideline is refused."),
            "reject_own_repeats": _("The same text twice from one labeler in this project is refused."),
            "reject_urls": _("Comments may not contain links."),
            "reject_emails": _("Comments may not contain e-mail addresses."),
            "reject_phone_numbers": _("Comments may not contain phone numbers."),
            "reject_personal_info": _("Comments may not contain resident registration, card, bank account, passport or "
                                      "driver's licence numbers, street addresses or social media IDs."),
        }
        widgets = {
            "description": forms.Textarea(attrs={"rows": 2}),
            "categories": forms.CheckboxSelectMultiple,
            "subcategories": forms.CheckboxSelectMultiple,
            "sources": forms.CheckboxSelectMultiple,
            "photo_set": forms.RadioSelect,
            "overlap": forms.NumberInput(attrs={"min": 1, "max": 20}),
            "cap_per_labeler": forms.NumberInput(attrs={"min": 0}),
            "lease_minutes": forms.NumberInput(attrs={"min": 1}),
            "max_repeat_run": forms.NumberInput(attrs={"min": 0}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["categories"].queryset = Category.objects.order_by("position", "id")
        self.fields["sources"].queryset = Source.objects.order_by("name")
        subs = Subcategory.objects.select_related("category").order_by("category__position", "category_id",
                                                                         "position", "id")
        self.fields["subcategories"].queryset = subs
        # Subcategories grouped under their category's name.
        groups: dict = {}
        for s in subs:
            groups.setdefault(s.category.name, []).append((s.pk, s.name))
        self.fields["subcategories"].widget.choices = list(groups.items())
        # A form posted without the option (older clients, scripts) keeps the project's setting.
        self.fields["photo_set"].required = False

    def clean_photo_set(self):
        return self.cleaned_data.get("photo_set") or self.instance.photo_set

    def rules(self):
        return [self[name] for name in RULE_FIELDS]

    def filters(self):
        return [self["categories"], self["subcategories"], self["sources"], self["photo_set"]]


TYPE_FIELDS = ("name", "slug", "description", "min_length", "max_length", "position")


class CommentTypeForm(forms.ModelForm):
    class Meta:
        model = CommentType
        fields = list(TYPE_FIELDS)
        labels = {"name": _("Name"), "slug": _("Slug"), "description": _("Description"),
                  "min_length": _("Min length"), "max_length": _("Max length"), "position": _("Position")}
        widgets = {
            "description": forms.Textarea(attrs={"rows": 2}),
            "min_length": forms.NumberInput(attrs={"min": 0}),
            "max_length": forms.NumberInput(attrs={"min": 1}),
            "position": forms.NumberInput(attrs={"min": 0}),
        }

    def __init__(self, *args, prefilled: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        # A new project starts with the default types filled in: they count even if untouched.
        self.prefilled = prefilled
        if prefilled:
            self.empty_permitted = False

    def has_changed(self):
        return self.prefilled or super().has_changed()

    def clean(self):
        data = super().clean()
        lo, hi = data.get("min_length"), data.get("max_length")
        if lo is not None and hi is not None and hi < lo:
            self.add_error("max_length", _("The maximum must be at least the minimum."))
        return data


class BaseCommentTypeFormSet(BaseInlineFormSet):
    def get_form_kwargs(self, index):
        kwargs = super().get_form_kwargs(index)
        extra = self.initial_extra or []
        if index is not None and 0 <= index - self.initial_form_count() < len(extra):
            kwargs["prefilled"] = True
        return kwargs

    def clean(self):
        super().clean()
        slugs, kept, rows = set(), [], 0
        for form in self.forms:
            if not hasattr(form, "cleaned_data") or not form.has_changed() and not form.instance.pk:
                continue
            if self.can_delete and self._should_delete_form(form):
                # A deleted form's own errors do not count, so this one is the formset's.
                if form.instance.pk and Comment.objects.filter(comment_type=form.instance).exists():
                    kept.append(_("“%(name)s” already has comments and cannot be removed.")
                                % {"name": form.instance.name})
                continue
            rows += 1
            slug = form.cleaned_data.get("slug")
            if slug in slugs:
                form.add_error("slug", _("Two comment types cannot share a slug."))
            slugs.add(slug)
        try:
            services.check_comment_type_count(rows)
        except forms.ValidationError as exc:
            kept.extend(exc.messages)
        if kept:
            raise forms.ValidationError(kept)

    def changes(self) -> list[dict]:
        """The rows as services.update_project's comment_types: deleted, changed and added types."""
        out = []
        for f in self.forms:
            pk = f.instance.pk
            if self.can_delete and self._should_delete_form(f):
                if pk:
                    out.append({"id": pk, "DELETE": True})
            elif f.has_changed():
                out.append({**({"id": pk} if pk else {}), **{k: f.cleaned_data[k] for k in TYPE_FIELDS}})
        return out

    def specs(self) -> list[dict]:
        """The kept rows as create_project's comment_types."""
        keep = [f for f in self.forms if f.has_changed() and not (self.can_delete and self._should_delete_form(f))]
        return [{k: f.cleaned_data[k] for k in TYPE_FIELDS} for f in keep]


def comment_type_formset(new: bool):
    # Past absolute_max rows the formset refuses without building a form per row; the limit's own
    # message comes from clean() (rows being deleted are posted too, hence the margin).
    limit = settings.LABELING_MAX_COMMENT_TYPES
    return inlineformset_factory(
        Project, CommentType, form=CommentTypeForm, formset=BaseCommentTypeFormSet,
        extra=1 if new else 0, min_num=1, validate_min=True, can_delete=True,
        max_num=limit, absolute_max=2 * limit + 10,
    )


# --- Guideline and examples -----------------------------------------------------------------

class GuidelineForm(forms.Form):
    body = forms.CharField(required=False, label=_("Guideline (Markdown)"),
                           widget=forms.Textarea(attrs={"rows": 18, "spellcheck": "false"}))


class ExampleForm(forms.Form):
    note = forms.CharField(max_length=300, required=False, label=_("What this example shows"))


class ExampleCommentForm(forms.Form):
    comment_type = forms.ChoiceField(label=_("Comment type"), required=False)
    text = forms.CharField(label=_("Comment"), widget=forms.Textarea(attrs={"rows": 2}))
    verdict = forms.ChoiceField(label=_("Verdict"), choices=Verdict.choices, widget=forms.RadioSelect)
    why = forms.CharField(label=_("Why"), max_length=300, required=False)

    def __init__(self, *args, comment_types=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["comment_type"].choices = [("", _("(any type)"))] + [(ct.slug, ct.name) for ct in comment_types]


ExampleCommentFormSet = formset_factory(ExampleCommentForm, extra=0, min_num=1, validate_min=True, can_delete=True)


# --- Labelers -------------------------------------------------------------------------------

class CapField(forms.IntegerField):
    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("min_value", 0)
        kwargs.setdefault("label", _("Cap override"))
        kwargs.setdefault("widget", forms.NumberInput(attrs={"min": 0, "placeholder": _("project's")}))
        super().__init__(**kwargs)


class AddMemberForm(forms.Form):
    username = forms.CharField(max_length=150, label=_("Username of an existing labeler"))
    cap_override = CapField(help_text=_("Empty: the project's cap."))

    def clean_username(self):
        username = self.cleaned_data["username"].strip()
        user = User.objects.filter(username=username).first()
        if user is None:
            raise forms.ValidationError(_("No account with this username."))
        if user.role != Role.LABELER:
            raise forms.ValidationError(_("This account is not a labeler."))
        self.user = user
        return username


class NewLabelerForm(forms.Form):
    username = forms.CharField(max_length=150, label=_("Username"))
    name = forms.CharField(max_length=150, required=False, label=_("Name"))
    password = forms.CharField(label=_("Password"), widget=forms.PasswordInput(render_value=True),
                               help_text=_("At least 8 characters; give it to the labeler."))
    cap_override = CapField(help_text=_("Empty: the project's cap."))

    def clean_username(self):
        username = self.cleaned_data["username"].strip()
        if User.objects.filter(username=username).exists():
            raise forms.ValidationError(_("This username is taken. Add the existing account instead."))
        User.username_validator(username)
        return username

    def clean(self):
        data = super().clean()
        if data.get("password"):
            try:
                validate_password(data["password"], User(username=data.get("username", ""),
                                                         first_name=data.get("name", "")))
            except forms.ValidationError as exc:
                self.add_error("password", exc)
        return data


class ImportLabelersForm(forms.Form):
    file = forms.FileField(label=_("CSV file"), widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}))


class CapForm(forms.Form):
    cap_override = CapField()


class CommentImportForm(forms.Form):
    """Import comments made elsewhere (labeling.external.start_comment_import)."""

    FORMAT_CHOICES = [
        ("labelstudio", _("Label Studio JSON export")),
        ("coco", _("COCO captions JSON")),
        ("csv", _("CSV")),
        ("jsonl", _("JSON Lines")),
    ]

    file = forms.FileField(label=_("File"), widget=forms.ClearableFileInput(
        attrs={"accept": ".json,.csv,.jsonl,.ndjson,application/json,text/csv"}))
    format = forms.ChoiceField(label=_("Format"), choices=FORMAT_CHOICES)
    source_name = forms.CharField(
        label=_("Made by (external source)"), max_length=200,
        help_text=_("Who wrote these comments: another tool, a vendor, an earlier campaign. Imported sets are "
                    "attributed to it, never to a labeler."))
    photo_source = forms.ModelChoiceField(
        label=_("Photo source"), queryset=Source.objects.order_by("name"),
        help_text=_("The catalogue source the photos are filed under; its licence applies unless a record names one."))
    images_dir = forms.CharField(
        label=_("Photo folder on the server"), required=False, max_length=1000,
        help_text=_("Where relative photo paths are (under the allowed ingest roots). Leave empty when the file "
                    "gives URLs."))
    url_prefix = forms.CharField(
        label=_("Photo URL prefix"), required=False, max_length=1000,
        help_text=_("COCO and Label Studio: a URL that file names are joined to (https://...)."))
    comment_type = forms.ChoiceField(
        label=_("Comment type of COCO captions"), required=False,
        help_text=_("COCO captions have no type: they become comments of this type (default: the first)."))
    type_map = forms.CharField(
        label=_("Label Studio text areas"), required=False, max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "caption=specific\nshort=reaction"}),
        help_text=_("from_name=comment type, one a line; a text area not named here goes to the comment type "
                    "with its name."))

    def __init__(self, project: Project, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["comment_type"].choices = [("", _("The first comment type"))] + [
            (ct.slug, ct.name) for ct in project.comment_types.order_by("position", "id")]
