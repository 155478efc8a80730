"""Delete stored files that no image row or running import points to."""
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from datasets import services


class Command(BaseCommand):
    help = (
        "Delete image and thumbnail files without an Image row, and staged uploads of imports that ended, "
        "as a crashed worker can leave them."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="List what would be deleted; delete nothing.")
        parser.add_argument("--min-age-minutes", type=float, default=60,
                            help="Leave files younger than this alone (a running import is about to record them).")

    def handle(self, *args, **options):
        if options["min_age_minutes"] < 0:
            raise CommandError("--min-age-minutes cannot be negative.")
        dry = options["dry_run"]
        names = services.remove_orphan_files(dry_run=dry, min_age=timedelta(minutes=options["min_age_minutes"]))
        for name in names:
            self.stdout.write(("would delete " if dry else "deleted ") + name)
        verb = "would be deleted" if dry else "deleted"
        self.stdout.write(self.style.SUCCESS(f"{len(names)} orphan file(s) {verb}."))
