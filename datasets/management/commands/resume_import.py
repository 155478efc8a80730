"""Finish an interrupted import: only the files not yet in its report are read."""
from django.core.management.base import CommandError

from datasets import services
from datasets.models import ImportJob, ImportStatus

from ._ingest import IngestCommand


class Command(IngestCommand):
    help = (
        "Resume an interrupted import (its worker or command was killed, hit a time limit, or met an error that "
        "was not one file's fault), with a progress bar and the per-file report."
    )

    def add_arguments(self, parser):
        parser.add_argument("job", type=int, help="The import's number.")
        parser.add_argument("--queue", action="store_true", help="Send it to Celery and follow its progress.")
        parser.add_argument("--timeout", type=float, default=None,
                            help="With --queue: give up waiting after this many seconds (the import goes on).")

    def handle(self, *args, **options):
        services.sweep_stalled_imports()  # a command killed a while ago leaves its import running
        job = ImportJob.objects.filter(pk=options["job"]).first()
        if job is None:
            raise CommandError(f"There is no import {options['job']}.")
        if job.status == ImportStatus.RUNNING:
            seen = job.heartbeat_at or job.started_at
            raise CommandError(
                f"Import {job.pk} is running (last sign of life {seen:%Y-%m-%d %H:%M:%S} UTC); it is marked "
                "interrupted once it shows none for INGEST_STALE_SECONDS."
            )
        try:
            job = services.resume_import(job, enqueue=options["queue"])
        except services.NotResumable as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Resuming import {job.pk}: {job.processed} of {job.total} already reported.")
        self.run_job(job, options)
