"""Forms for the datasets pages. They validate input; services do the saving."""
import uuid

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from . import readers
from .models import Category, Licence, Source, Subcategory


class CategoryForm(forms.ModelForm):
    class Meta:
        model = Category
        fields = ["name", "slug", "quota", "full_policy"]
        labels = {"name": _("Name"), "slug": _("Slug"), "quota": _("Quota"), "full_policy": _("When full")}
        help_texts = {"slug": _("Short id used in URLs and manifests (letters, digits, hyphens).")}
        widgets = {"quota": forms.NumberInput(attrs={"min": 0})}


class SubcategoryForm(forms.ModelForm):
    class Meta:
        model = Subcategory
        fields = ["name", "slug", "quota"]
        labels = {"name": _("Name"), "slug": _("Slug"), "quota": _("Quota")}
        widgets = {"quota": forms.NumberInput(attrs={"min": 0})}

    def __init__(self, *args, category: Category, **kwargs):
        super().__init__(*args, **kwargs)
        self.category = category
        self.instance.category = category

    def clean_slug(self):
        slug = self.cleaned_data["slug"]
        clash = Subcategory.objects.filter(category=self.category, slug=slug).exclude(pk=self.instance.pk)
        if clash.exists():
            raise forms.ValidationError(_("This category already has a subcategory with this slug."))
        return slug


class SourceForm(forms.ModelForm):
    class Meta:
        model = Source
        fields = ["name", "kind", "default_licence", "description"]
        labels = {"name": _("Name"), "kind": _("Kind"), "default_licence": _("Default licence"),
                  "description": _("Description")}
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Many files in one field (Django's documented pattern). An empty file is let through: the
    import reports it on its own line ("Empty file") like any other bad file, and the rest of the
    selection is imported."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": "image/*,.zip,application/zip,.heic,.heif,.avif"}))
        kwargs.setdefault("allow_empty_file", True)
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single = super().clean
        if isinstance(data, (list, tuple)):
            return [single(d, initial) for d in data]
        return [single(data, initial)] if data else []


class ImportForm(forms.Form):
    MODES = [
        ("files", _("Files (photos and .zip archives)")),
        ("manifest", _("Manifest (CSV or JSON Lines)")),
        ("s3", _("S3 bucket and prefix")),
        ("folder", _("Server folder")),
    ]
    source = forms.ModelChoiceField(Source.objects.all(), label=_("Source"))
    category = forms.ModelChoiceField(Category.objects.filter(is_active=True), required=False, label=_("Category"),
                                      empty_label=_("(none)"))
    subcategory = forms.ModelChoiceField(Subcategory.objects.filter(is_active=True).select_related("category"),
                                         required=False, label=_("Subcategory"), empty_label=_("(none)"))
    licence = forms.ModelChoiceField(Licence.objects.all(), required=False, label=_("Licence override"),
                                     empty_label=_("(the source's default licence)"))
    author = forms.CharField(max_length=300, required=False, label=_("Author"))
    mode = forms.ChoiceField(choices=MODES, initial="files", widget=forms.RadioSelect, label=_("What to import"))
    files = MultipleFileField(required=False, label=_("Files"))
    manifest = forms.FileField(required=False, label=_("Manifest file"),
                               widget=forms.ClearableFileInput(attrs={"accept": ".csv,.jsonl,.json,.txt"}))
    manifest_base = forms.CharField(required=False, label=_("Base folder for relative paths in the manifest"))
    s3_bucket = forms.CharField(required=False, max_length=255, label=_("Bucket"))
    s3_prefix = forms.CharField(required=False, max_length=1024, label=_("Prefix"))
    s3_endpoint_url = forms.ChoiceField(
        required=False, label=_("S3 endpoint"),
        help_text=_("The server's operator sets which endpoints can be used (INGEST_S3_ENDPOINT_URLS)."),
        error_messages={"invalid_choice": _("This S3 endpoint is not allowed: choose one from the list.")},
    )
    folder = forms.CharField(required=False, max_length=1024, label=_("Folder path on the server"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The common case: one source, or one used last: start with it chosen.
        last = Source.objects.filter(imports__isnull=False).order_by("-imports__created_at").first()
        only = list(Source.objects.all()[:2])
        if last is not None:
            self.fields["source"].initial = last.pk
        elif len(only) == 1:
            self.fields["source"].initial = only[0].pk
        # Each subcategory option carries its category, so a little script can filter the list.
        self.fields["subcategory"].label_from_instance = lambda s: s.name
        self.subcategory_choices = [
            (s.pk, s.name, s.category_id) for s in self.fields["subcategory"].queryset
        ]
        # S3 endpoints are the operator's configuration, never an address typed here (the worker
        # signs its requests with the server's credentials): a choice when there is one to make.
        default = readers.default_s3_endpoint()
        endpoints = readers.s3_endpoint_choices()
        field = self.fields["s3_endpoint_url"]
        blank = _("Default: %(endpoint)s") % {"endpoint": default} if default else _("AWS (the default)")
        field.choices = [("", blank)] + [(url, url) for url in endpoints]
        if not endpoints:
            field.widget = forms.HiddenInput()

    def clean(self):
        data = super().clean()
        mode = data.get("mode")
        required = {
            "files": ("files", _("Choose at least one file.")),
            "manifest": ("manifest", _("Choose a manifest file.")),
            "s3": ("s3_bucket", _("Enter a bucket name.")),
            "folder": ("folder", _("Enter a folder path.")),
        }
        if mode in required:
            field, message = required[mode]
            if not data.get(field):
                self.add_error(field, message)
        category, subcategory = data.get("category"), data.get("subcategory")
        if subcategory is not None and category is not None and subcategory.category_id != category.pk:
            self.add_error("subcategory", _("This subcategory is not in the chosen category."))
        return data


class UUIDListField(forms.Field):
    """Several photo ids from one form (checkboxes named alike)."""

    widget = forms.MultipleHiddenInput
    default_error_messages = {"invalid": _("“%(value)s” is not a photo id."), "required": _("Choose at least one photo.")}

    def to_python(self, value):
        if not value:
            return []
        out = []
        for item in value if isinstance(value, (list, tuple)) else [value]:
            try:
                out.append(uuid.UUID(str(item)))
            except ValueError:
                raise ValidationError(self.error_messages["invalid"], code="invalid",
                                      params={"value": str(item)[:40]}) from None
        return list(dict.fromkeys(out))


class ImageBulkForm(forms.Form):
    """The image grid's (and an image page's) actions on chosen photos: move them to a category or
    subcategory, retire, exclude or restore them. datasets.services does the change."""

    MOVE, RETIRE, EXCLUDE, RESTORE = "move", "retire", "exclude", "restore"
    ACTIONS = [
        (MOVE, _("Move to…")), (RETIRE, _("Retire")), (EXCLUDE, _("Exclude")), (RESTORE, _("Restore")),
    ]

    ids = UUIDListField()
    action = forms.ChoiceField(choices=ACTIONS, label=_("Action"))
    target = forms.ChoiceField(required=False, label=_("Category"))
    reason = forms.CharField(required=False, max_length=300, label=_("Reason"),
                             widget=forms.TextInput(attrs={"placeholder": _("Why (optional)")}))

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        choices = [("", _("Choose a category"))]
        subs: dict[int, list[Subcategory]] = {}
        for s in Subcategory.objects.filter(is_active=True).order_by("position", "id"):
            subs.setdefault(s.category_id, []).append(s)
        for c in Category.objects.filter(is_active=True).order_by("position", "id"):
            choices.append((c.name, [(c.slug, c.name)] + [(f"{c.slug}/{s.slug}", f"{c.name} › {s.name}")
                                                           for s in subs.get(c.pk, [])]))
        self.fields["target"].choices = choices

    def clean(self):
        data = super().clean()
        if data.get("action") == self.MOVE and not data.get("target"):
            self.add_error("target", _("Choose where to move the photos."))
        return data

    def target_parts(self) -> tuple[str, str]:
        """(category slug, subcategory slug or '') of the chosen target."""
        category, _sep, subcategory = self.cleaned_data["target"].partition("/")
        return category, subcategory


class ExportForm(forms.Form):
    """Start an export of a snapshot (datasets.export.services.start_export checks the rest)."""

    destination = forms.CharField(
        label=_("Destination"), required=False, max_length=1000,
        help_text=_("A folder under the server's export folder (blank: the export folder itself), or "
                    "s3://bucket/prefix. The files go to <destination>/<snapshot name>/v<version>/."),
    )
    max_samples = forms.IntegerField(label=_("Samples per shard"), min_value=1, max_value=10_000_000, initial=1000)
    max_mib = forms.IntegerField(label=_("MiB per shard"), min_value=1, max_value=1024 * 1024, initial=512,
                                 help_text=_("A photo's comments are never split across two shards."))
    image_mode = forms.ChoiceField(label=_("Images"), initial="stored", choices=[
        ("stored", _("The stored copy, as it is")), ("resized", _("Resized JPEG (shortest side below)")),
    ])
    shortest_side = forms.IntegerField(label=_("Shortest side (px)"), min_value=32, max_value=8192, initial=512)
    jpeg_quality = forms.IntegerField(label=_("JPEG quality"), min_value=1, max_value=100, initial=90)

    def options(self) -> dict:
        d = self.cleaned_data
        return {"max_samples": d["max_samples"], "max_bytes": d["max_mib"] * 1024 * 1024, "image_mode": d["image_mode"],
                "shortest_side": d["shortest_side"], "jpeg_quality": d["jpeg_quality"]}
