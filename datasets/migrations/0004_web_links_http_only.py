"""Issue 9: stored links (an image's original URL, a licence's URL) are http(s) only.

The fields get the shared validator, and rows stored before it with any other scheme (a manifest's
`javascript:` URL ran script when clicked) are blanked: the photo and licence stay, the link goes.
"""
from urllib.parse import urlsplit

import datasets.weblinks
from django.db import migrations, models


def is_web_link(value) -> bool:
    """datasets.weblinks.is_web_link as it was when this migration was written: frozen here, so a
    later change to the live check cannot change what this migration did."""
    if not isinstance(value, str) or not value:
        return False
    if any(c.isspace() or ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in value):
        return False
    scheme, sep, rest = value.partition(":")
    if not sep or scheme.lower() not in ("http", "https") or not rest.startswith("//"):
        return False
    try:
        return bool(urlsplit(value).hostname)
    except ValueError:
        return False


def blank_other_schemes(apps, schema_editor):
    for model, field in (("Image", "original_url"), ("Licence", "url")):
        manager = apps.get_model("datasets", model)._default_manager
        rows = manager.exclude(**{field: ""}).values_list("pk", field)
        bad = [pk for pk, value in rows.iterator(chunk_size=2000) if not is_web_link(value)]
        for start in range(0, len(bad), 500):
            manager.filter(pk__in=bad[start:start + 500]).update(**{field: ""})


class Migration(migrations.Migration):

    dependencies = [
        ("datasets", "0003_import_interrupted_heartbeat"),
    ]

    operations = [
        migrations.AlterField(
            model_name="image",
            name="original_url",
            field=models.URLField(blank=True, max_length=1000, validators=[datasets.weblinks.validate_web_link]),
        ),
        migrations.AlterField(
            model_name="licence",
            name="url",
            field=models.URLField(blank=True, validators=[datasets.weblinks.validate_web_link]),
        ),
        migrations.RunPython(blank_other_schemes, migrations.RunPython.noop),
    ]
