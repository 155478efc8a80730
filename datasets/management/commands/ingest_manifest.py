"""Import the rows of a CSV or JSON Lines manifest of file paths or URLs."""
from pathlib import Path

from django.core.files import File
from django.core.management.base import CommandError

from datasets.models import SourceKind

from ._ingest import IngestCommand


class Command(IngestCommand):
    help = (
        "Import a CSV or JSON Lines manifest: one row per image with a path or url, and optional category, "
        "subcategory, licence, author, original_url, title (Open Images' metadata columns work as they are)."
    )
    source_kind = SourceKind.MANIFEST

    def add_arguments(self, parser):
        parser.add_argument("file", help="Manifest file (.csv, .jsonl).")
        parser.add_argument("--base", default=None,
                            help="Folder that relative paths in the manifest start from (default: the manifest's folder).")
        self.add_common_arguments(parser, category_required=False)

    def handle(self, *args, **options):
        path = Path(options["file"]).expanduser()
        if not path.is_file():
            raise CommandError(f"Manifest not found: {path}")
        base = Path(options["base"]).expanduser() if options["base"] else path.resolve().parent
        if not base.is_dir():
            raise CommandError(f"--base folder not found: {base}")
        with open(path, "rb") as fh:
            self.run(options, manifest=File(fh, name=path.name), manifest_base=str(base.resolve()))
