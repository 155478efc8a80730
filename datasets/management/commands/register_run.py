"""Register training run folders (written by trainers/, see trainers/runs.py) in the platform,
from a local path or s3://bucket/prefix; registering a run again updates it."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from datasets.runs import services
from datasets.runs.errors import RunError


class Command(BaseCommand):
    help = ("Register training run folders (run.json, metrics.csv, eval.json, checkpoints/, model/, predictions/) "
            "from local paths or s3://bucket/prefix. A run registered before (same run_id) is updated: run it "
            "again after evaluating. A run whose snapshot name, version and checksum match a snapshot version "
            "here (one of its finished exports) is listed under it; otherwise it is kept as an unknown snapshot.")

    def add_arguments(self, parser):
        parser.add_argument("folders", nargs="+", metavar="FOLDER", help="A run folder: a path or s3://bucket/prefix.")

    def handle(self, *args, **options):
        failed = 0
        for folder in options["folders"]:
            try:
                run, created = services.register_run(folder, trusted=True)
            except RunError as exc:
                failed += 1
                self.stderr.write(self.style.ERROR(f"{folder}: {exc}"))
                continue
            verb = "Registered" if created else "Updated"
            self.stdout.write(f"{verb} run {run.run_id} ({run.kind}, {run.status}) from {run.location}")
            if run.snapshot_id:
                self.stdout.write(f"  snapshot {run.snapshot.label}")
            else:
                self.stderr.write(self.style.WARNING(f"  {run.snapshot_problem_text}"))
        if failed:
            raise CommandError(f"{failed} of {len(options['folders'])} folders were not registered.")
