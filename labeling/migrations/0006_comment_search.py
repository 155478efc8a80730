"""The comment browser: indexes for its orders, every comment's text in NFC (what the search
looks for), and on PostgreSQL a trigram GIN index for its text search (pg_trgm).

The search (labeling.selectors.ContainsText) is `text LIKE '%q%'` or `text ILIKE '%q%'`; a
`gin_trgm_ops` index on the column answers both: a substring of three or more characters is
looked up in the index instead of read from every comment. Other databases (SQLite) get no
trigram index: the RunPython below does nothing there.
"""
import unicodedata

from django.db import migrations, models

TRGM_INDEX = "comment_text_trgm"


def nfc_texts(apps, schema_editor):
    """Store every comment's text in NFC, as services.submit has stored new ones: the search
    NFC-normalises what it looks for, so a text kept decomposed (NFD, from before the service
    normalised) would never match. Canonically equivalent: the same characters to a reader."""
    connection = schema_editor.connection
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_encoding")
            if cursor.fetchone()[0] == "UTF8":  # normalize() needs it
                cursor.execute("UPDATE labeling_comment SET text = normalize(text, NFC) "
                               "WHERE text IS NOT NFC NORMALIZED")
                return
    Comment = apps.get_model("labeling", "Comment")
    changed = [
        Comment(pk=pk, text=unicodedata.normalize("NFC", text))
        for pk, text in Comment.objects.values_list("pk", "text").iterator(chunk_size=5000)
        if not unicodedata.is_normalized("NFC", text)
    ]
    Comment.objects.bulk_update(changed, ["text"], batch_size=1000)


def create_trigram_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {TRGM_INDEX} ON labeling_comment USING gin (text gin_trgm_ops)"
    )


def drop_trigram_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP INDEX IF EXISTS {TRGM_INDEX}")


class Migration(migrations.Migration):

    dependencies = [
        ("labeling", "0005_project_photo_intake"),
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
        migrations.RunPython(nfc_texts, migrations.RunPython.noop, elidable=True),
        migrations.RunPython(create_trigram_index, drop_trigram_index, elidable=False),
    ]
