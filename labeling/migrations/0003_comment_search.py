"""The comment browser: indexes for its orders, and on PostgreSQL a trigram GIN index for its
text search (pg_trgm).

Django's `icontains` on PostgreSQL is `UPPER(text) LIKE UPPER('%q%')`, so the index is on that
expression with `gin_trgm_ops`; a substring of three or more characters is then looked up in the
index instead of read from every comment. Other databases (SQLite) get no trigram index: both
operations below do nothing there.
"""
from django.db import migrations, models

TRGM_INDEX = "comment_text_trgm"


def create_trigram_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {TRGM_INDEX} ON labeling_comment USING gin ((UPPER(text)) gin_trgm_ops)"
    )


def drop_trigram_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP INDEX IF EXISTS {TRGM_INDEX}")


class Migration(migrations.Migration):

    dependencies = [
        ("labeling", "0003_assignment_reported_at"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="comment",
            index=models.Index(fields=["created_at", "id"], name="comment_created"),
        ),
        migrations.AddIndex(
            model_name="comment",
            index=models.Index(fields=["length", "id"], name="comment_length"),
        ),
        migrations.RunPython(create_trigram_index, drop_trigram_index, elidable=False),
    ]
