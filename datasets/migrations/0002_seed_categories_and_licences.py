from django.db import migrations


def forwards(apps, schema_editor):
    from datasets.seed import seed

    seed(apps.get_model("datasets", "Category"), apps.get_model("datasets", "Subcategory"), apps.get_model("datasets", "Licence"))


class Migration(migrations.Migration):
    dependencies = [("datasets", "0001_initial")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
