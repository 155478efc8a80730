"""Import every image under a server folder (subfolders and .zip files included)."""
from pathlib import Path

from django.core.management.base import CommandError

from datasets.models import SourceKind

from ._ingest import IngestCommand


class Command(IngestCommand):
    help = "Import the images under a folder on this server, with a progress bar and a per-file report."
    source_kind = SourceKind.FOLDER

    def add_arguments(self, parser):
        parser.add_argument("path", help="Folder to import (read recursively; hidden files are skipped).")
        self.add_common_arguments(parser, category_required=True)

    def handle(self, *args, **options):
        path = Path(options["path"]).expanduser()
        if not path.is_dir():
            raise CommandError(f"Folder not found: {path}")
        self.run(options, folder=str(path.resolve()))
