"""Issue 8: import refusals, warnings and stops carry a code and parameters (datasets.refusals),
so pages and the API say them in the reader's language.

The English text stays in `reason` / `error` (searched, and the fallback). Report lines written
before codes keep that text; those whose text was a fixed sentence get its code here (the
sentences frozen in this migration, so a later change to the live registry changes nothing).
The others (sentences with numbers or names in them) are shown as stored.
"""
from django.db import migrations, models

ITEM_CODES = {
    "Same bytes as an image already stored.": "same_bytes",
    "Same pixels as an image already stored.": "same_pixels",
    "Stored by a concurrent import.": "stored_concurrently",
    "Empty file (0 bytes).": "empty_file",
    "Unsafe path in zip (absolute or with ../); not read.": "zip_unsafe_path",
    "Encrypted zip member; not read.": "zip_encrypted",
    "A loop of symbolic links; not read.": "symlink_loop",
    "A symbolic link to a file outside the allowed ingest roots; not read.": "link_outside_roots",
    "Not a regular file (a named pipe); not read.": "not_regular_fifo",
    "Not a regular file (a socket); not read.": "not_regular_socket",
    "Not a regular file (a character device); not read.": "not_regular_char_device",
    "Not a regular file (a block device); not read.": "not_regular_block_device",
    "Not a regular file (a folder); not read.": "not_regular_folder",
    "Not a regular file (of an unknown kind); not read.": "not_regular_unknown",
    "Reading or judging this file went past the import task's time limit; it was skipped and the rest of "
    "the import went on.": "time_limit",
}
JOB_CODES = {"Stopped by Ctrl-C.": "stopped_by_ctrl_c"}


def code_known_sentences(apps, schema_editor):
    ImportItem = apps.get_model("datasets", "ImportItem")
    ImportJob = apps.get_model("datasets", "ImportJob")
    for text, code in ITEM_CODES.items():
        ImportItem._default_manager.filter(reason=text, reason_code="").update(reason_code=code)
    for text, code in JOB_CODES.items():
        ImportJob._default_manager.filter(error=text, error_code="").update(error_code=code)


class Migration(migrations.Migration):

    dependencies = [
        ("datasets", "0004_web_links_http_only"),
    ]

    operations = [
        migrations.AddField(
            model_name="importitem",
            name="reason_code",
            field=models.CharField(blank=True, max_length=40),
        ),
        migrations.AddField(
            model_name="importitem",
            name="reason_params",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name="importjob",
            name="error_code",
            field=models.CharField(blank=True, max_length=40),
        ),
        migrations.AddField(
            model_name="importjob",
            name="error_params",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.RunPython(code_known_sentences, migrations.RunPython.noop),
    ]
