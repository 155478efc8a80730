"""Start a curation run (or resume one) and, with --wait or --here, follow it step by step with a
progress bar: on the Celery workers (the default), or in this process (--here)."""
from __future__ import annotations

import time

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from curation import runs
from curation import steps as registry
from curation.models import CurationRun, RunStatus, RunTrigger
from curation.selectors import step_rows
from curation.services import CurationError
from labeling.models import Project

POLL_SECONDS = 1.0


class Command(BaseCommand):
    help = ("Run the curation steps (quality, near-duplicate photos, duplicate and template comments, ...) over a "
            "project or the whole catalogue: queued to the Celery workers, or here with --here.")

    def add_arguments(self, parser):
        scope = parser.add_mutually_exclusive_group()
        scope.add_argument("--project", type=int, help="The project's id.")
        scope.add_argument("--all", action="store_true", help="The whole catalogue (the default).")
        scope.add_argument("--resume", type=int, metavar="RUN", help="Go on with a failed, cancelled or stalled run.")
        parser.add_argument("--steps", nargs="+", metavar="STEP",
                            help="Steps to run (default: all): " + ", ".join(registry.by_name()) + ".")
        parser.add_argument("--new-only", action="store_true",
                            help="Only photos and comments that arrived since the last finished run of the scope.")
        parser.add_argument("--wait", action="store_true", help="Follow the run on the workers until it ends.")
        parser.add_argument("--here", action="store_true", help="Run every step in this process (no worker needed).")
        parser.add_argument("--timeout", type=float, default=None,
                            help="With --wait: stop following after this many seconds (the run goes on).")

    def handle(self, *args, **options):
        here = options["here"]
        if options["resume"] is not None:
            run = CurationRun.objects.filter(pk=options["resume"]).first()
            if run is None:
                raise CommandError(f"There is no curation run {options['resume']}.")
            try:
                run = runs.resume_run(run, enqueue=not here)
            except CurationError as exc:
                raise CommandError(str(exc)) from None
        else:
            project = None
            if options["project"] is not None:
                project = Project.objects.filter(pk=options["project"]).first()
                if project is None:
                    raise CommandError(f"There is no project {options['project']}.")
            try:
                run = runs.start_run(project, options["steps"], new_only=options["new_only"],
                                     trigger=RunTrigger.COMMAND, enqueue=not here)
            except ValidationError as exc:
                raise CommandError(" ".join(exc.messages)) from None
        scope = run.project.name if run.project else "the whole catalogue"
        self.stdout.write(f"Curation run {run.pk} over {scope}: {', '.join(run.steps)}.")
        if not here and not options["wait"]:
            self.stdout.write(f"Queued; follow it on /curation/runs/{run.pk}/ or at /api/curation/runs/{run.pk}/.")
            return
        bars: dict[str, tqdm] = {}
        stream = getattr(self.stderr, "_out", self.stderr)
        quiet = options["verbosity"] == 0

        def update(current: CurationRun) -> None:
            for n, s in enumerate(step_rows(current)):
                bar = bars.get(s["name"])
                if bar is None:
                    bar = bars[s["name"]] = tqdm(desc=s["label"], total=s["total"] or None, unit=s["subject"] or "it",
                                                 file=stream, disable=quiet, dynamic_ncols=True, position=n, leave=True)
                bar.total = s["total"]
                bar.n = s["done"]
                bar.set_postfix_str(s["state"] if not s["reason"] else f"skipped: {s['reason']}", refresh=False)
                bar.refresh()

        try:
            if here:
                try:
                    run = runs.run_here(run, progress=update)
                except KeyboardInterrupt:
                    runs.cancel_run(run)
                    raise CommandError(f"Run {run.pk} stopped; `manage.py curate --resume {run.pk} --here` goes on "
                                       "where it stopped.") from None
            else:
                run = self.follow(run, update, options["timeout"])
            update(run)
        finally:
            for bar in bars.values():
                bar.close()
        for s in step_rows(run):
            counts = ", ".join(f"{k} {v}" for k, v in s["counts"].items())
            reason = f" ({s['reason']})" if s["reason"] else ""
            self.stdout.write(f"  {s['name']}: {s['state']}{reason}{': ' + counts if counts else ''}")
        if run.status != RunStatus.DONE:
            raise CommandError(f"Run {run.pk} {run.status}: {run.error}")

    def follow(self, run: CurationRun, update, timeout: float | None) -> CurationRun:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            run.refresh_from_db()
            update(run)
            if not run.is_active:
                return run
            if deadline is not None and time.monotonic() > deadline:
                raise CommandError(f"Run {run.pk} is still {run.status} after {timeout:g} s; it goes on in the "
                                   "workers. Is a Celery worker running?")
            time.sleep(POLL_SECONDS)
