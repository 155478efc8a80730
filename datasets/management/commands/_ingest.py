"""What the ingest_* commands share: source/licence/category options, running the import in this
process with a progress bar (or queueing it and following it), and the printed report."""
from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError
from django.utils import translation
from tqdm import tqdm

from datasets import imaging, services
from datasets.models import ImportJob, ImportStatus, Outcome, Source
from datasets.readers import display_name
from datasets.refusals import Reason, reason_of

POLL_SECONDS = 0.5


class IngestCommand(BaseCommand):
    source_kind: str = ""

    def add_common_arguments(self, parser, category_required: bool) -> None:
        parser.add_argument("--source", required=True, help="Source name; created if missing (needs --licence then).")
        parser.add_argument(
            "--licence",
            help="Licence code (e.g. cc-by-4.0): the new source's default licence, and this import's licence "
            "unless a manifest row names one.",
        )
        parser.add_argument(
            "--category", required=category_required,
            help="Category slug for every image" + ("" if category_required else " (a manifest row may name its own)."),
        )
        parser.add_argument("--subcategory", help="Subcategory slug within --category.")
        parser.add_argument("--author", default="", help="Author recorded on every image unless a row names one.")
        parser.add_argument("--queue", action="store_true", help="Send the import to Celery and follow its progress.")
        parser.add_argument("--timeout", type=float, default=None,
                            help="With --queue: give up waiting after this many seconds (the import goes on).")

    # ------------------------------------------------------------ arguments

    def resolve_source(self, options) -> tuple[Source, object]:
        code = options.get("licence")
        try:
            licence = services.resolve_licence(code, None) if code else None
        except imaging.ImageRefused as exc:
            raise CommandError(str(exc)) from None
        source = Source.objects.filter(name=options["source"]).first()
        if source is None:
            if licence is None:
                raise CommandError(
                    f"Source {options['source']!r} does not exist; give --licence CODE to create it with that default licence."
                )
            source = services.save_source(name=options["source"], kind=self.source_kind, default_licence=licence)
            self.stdout.write(f"Created source {source.name!r} ({source.kind}, default licence {licence.code}).")
        return source, licence

    def create(self, options, **inputs) -> ImportJob:
        source, licence = self.resolve_source(options)
        try:
            with translation.override("en"):  # its refusals are for the operator, in English
                return services.create_import(
                    source=source,
                    category=options.get("category") or None,
                    subcategory=options.get("subcategory") or None,
                    licence=licence,
                    author=options.get("author") or "",
                    trusted=True,
                    enqueue=options["queue"],
                    **inputs,
                )
        except services.IngestError as exc:
            raise CommandError(str(exc)) from None

    # ------------------------------------------------------------ running

    def run(self, options, **inputs) -> ImportJob:
        return self.run_job(self.create(options, **inputs), options)

    def run_job(self, job: ImportJob, options) -> ImportJob:
        """Run a queued import here with a progress bar (or follow it on the workers), then print
        its report. Ctrl-C or an error that is not one file's fault leaves it interrupted, so
        `manage.py resume_import` finishes it."""
        # The raw stream: Django's OutputWrapper would end every redraw with a newline.
        stream = getattr(self.stderr, "_out", self.stderr)
        bar = tqdm(desc=f"Import {job.pk}", unit="file", file=stream, disable=options["verbosity"] == 0,
                   dynamic_ncols=True)
        try:
            if options["queue"]:
                self.stdout.write(f"Import {job.pk} queued; waiting for a Celery worker.")
                job = self.follow(job, bar, options["timeout"])
            else:
                try:
                    job = services.run_import(job.pk, progress=lambda j: self.update(bar, j))
                except KeyboardInterrupt:
                    services.interrupt_import(job.pk, Reason("stopped_by_ctrl_c"))
                    raise CommandError(
                        f"Import {job.pk} interrupted; `manage.py resume_import {job.pk}` reads the files not yet reported."
                    ) from None
                except Exception as exc:
                    services.interrupt_import(job.pk, Reason("stopped_by_error", error=exc.__class__.__name__,
                                                             detail=reason_of(exc) or str(exc)))
                    raise CommandError(
                        f"Import {job.pk} interrupted by {exc.__class__.__name__}: {exc}. Once the cause is fixed, "
                        f"`manage.py resume_import {job.pk}` reads the files not yet reported."
                    ) from exc
            self.update(bar, job)
        finally:
            bar.close()
        self.summary(job)
        return job

    def follow(self, job: ImportJob, bar: tqdm, timeout: float | None) -> ImportJob:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job.refresh_from_db()
            self.update(bar, job)
            if job.finished:
                return job
            if deadline is not None and time.monotonic() > deadline:
                raise CommandError(
                    f"Import {job.pk} is still {job.status} after {timeout:g} s ({job.processed} processed); "
                    "it goes on in the worker. Is a Celery worker running?"
                )
            time.sleep(POLL_SECONDS)

    @staticmethod
    def update(bar: tqdm, job: ImportJob) -> None:
        if job.total is not None and bar.total != job.total:
            bar.total = job.total
        bar.n = job.processed
        bar.set_postfix(accepted=job.accepted, duplicates=job.duplicates, refused=job.refused, refresh=False)
        bar.refresh()

    def summary(self, job: ImportJob) -> None:
        # One line per file, and per error, whatever its name or reason holds (readers already
        # escape names; this also covers reports written before they did, and texts quoting a name).
        # For the operator, in English: the text stored with each line and the job is the English
        # of its code (datasets.refusals).
        error = display_name(job.error)
        if job.status == ImportStatus.FAILED:
            raise CommandError(f"Import {job.pk} failed: {error}")
        if job.status == ImportStatus.INTERRUPTED:
            raise CommandError(
                f"Import {job.pk} interrupted after {job.processed} of {job.total} files: {error} "
                f"`manage.py resume_import {job.pk}` reads the files not yet reported."
            )
        warned = f" ({job.warnings} with warnings)" if job.warnings else ""
        self.stdout.write(self.style.SUCCESS(
            f"Import {job.pk} done: {job.accepted} accepted{warned}, {job.duplicates} duplicates, {job.refused} refused."
        ))
        for item in job.items.exclude(outcome=Outcome.ACCEPTED, reason="").order_by("position"):
            name, reason = display_name(item.name), display_name(item.reason)
            if item.outcome == Outcome.REFUSED:
                self.stdout.write(f"  refused    {name}: {reason}")
            elif item.outcome == Outcome.DUPLICATE:
                self.stdout.write(f"  duplicate  {name}: of image {item.duplicate_of_id}")
            else:
                self.stdout.write(f"  warning    {name}: {reason}")
