"""Export a snapshot (the shard contract of DESIGN.md) to a folder or s3://bucket/prefix, with a
progress bar: here in this process, or on the Celery workers (--queue) while the bar follows."""
from __future__ import annotations

import re
import time

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from datasets.export import services
from datasets.export.errors import ExportError
from datasets.models import ACTIVE_EXPORT_STATUSES, Export, ExportStatus, Snapshot

POLL_SECONDS = 0.5


def find_snapshot(value: str) -> Snapshot:
    """A snapshot by id ("12") or by label ("food v2")."""
    if value.isdecimal():
        snapshot = Snapshot.objects.filter(pk=int(value)).first()
    else:
        match = re.fullmatch(r"\s*(.+?)\s+v(\d+)\s*", value)
        snapshot = Snapshot.objects.filter(name=match[1], version=int(match[2])).first() if match else None
    if snapshot is None:
        raise CommandError(f'There is no snapshot {value!r} (give its id or "<name> v<version>").')
    return snapshot


class Command(BaseCommand):
    help = ("Export a snapshot as WebDataset shards, Parquet and metadata files to a folder or s3://bucket/prefix "
            "(files go to <destination>/<name>/v<version>/). Runs here with a progress bar, or on the Celery "
            "workers with --queue. Exporting the same version again writes the same bytes.")

    def add_arguments(self, parser):
        parser.add_argument("snapshot", nargs="?", help='The snapshot: its id or "<name> v<version>".')
        parser.add_argument("--to", dest="destination", help="A folder (any path: this is the operator's command) "
                                                            "or s3://bucket/prefix.")
        parser.add_argument("--max-samples", type=int, default=1000, help="Samples (comments) per shard.")
        parser.add_argument("--max-bytes", type=int, default=512 * 1024**2, help="Target bytes per shard.")
        parser.add_argument("--image", choices=["stored", "resized"], default="stored",
                            help="stored: the stored copy as it is; resized: JPEG with the shortest side below.")
        parser.add_argument("--shortest-side", type=int, default=512)
        parser.add_argument("--jpeg-quality", type=int, default=90)
        parser.add_argument("--queue", action="store_true", help="Send the shard groups to Celery and follow them.")
        parser.add_argument("--no-wait", action="store_true", help="With --queue: return once queued.")
        parser.add_argument("--timeout", type=float, default=None,
                            help="With --queue: stop following after this many seconds (the export goes on).")
        parser.add_argument("--resume", type=int, metavar="EXPORT", help="Resume this failed, cancelled or "
                                                                         "stalled export instead.")

    def handle(self, *args, **options):
        if options["resume"] is not None:
            export = Export.objects.filter(pk=options["resume"]).first()
            if export is None:
                raise CommandError(f"There is no export {options['resume']}.")
            try:
                export = services.resume_export(export, enqueue=options["queue"])
            except ExportError as exc:
                raise CommandError(str(exc)) from None
        else:
            if not options["snapshot"] or not options["destination"]:
                raise CommandError("Give the snapshot and --to DESTINATION (or --resume EXPORT).")
            snapshot = find_snapshot(options["snapshot"])
            opts = {"max_samples": options["max_samples"], "max_bytes": options["max_bytes"],
                    "image_mode": options["image"], "shortest_side": options["shortest_side"],
                    "jpeg_quality": options["jpeg_quality"]}
            try:
                export = services.start_export(snapshot, options["destination"], opts, trusted=True,
                                               enqueue=options["queue"])
            except ExportError as exc:
                raise CommandError(str(exc)) from None
        self.stdout.write(f"Export {export.pk} of {export.snapshot.label} to {export.folder}: "
                          f"{export.shards_total} shards, {export.samples_total} samples.")
        if options["queue"] and options["no_wait"]:
            self.stdout.write(f"Queued; follow it on the snapshot's page or at /api/exports/{export.pk}/.")
            return
        stream = getattr(self.stderr, "_out", self.stderr)
        bar = tqdm(desc=f"Export {export.pk}", total=export.shards_total, unit="shard", file=stream,
                   disable=options["verbosity"] == 0, dynamic_ncols=True)
        try:
            if options["queue"]:
                export = self.follow(export, bar, options["timeout"])
            else:
                try:
                    export = services.run_export(export, progress=lambda e: self.update(bar, e))
                except KeyboardInterrupt:
                    services.cancel_export(export)
                    raise CommandError(f"Export {export.pk} stopped; `manage.py export_snapshot --resume {export.pk}` "
                                       "writes the shards not yet written.") from None
            self.update(bar, export)
        finally:
            bar.close()
        self.report(export)

    def follow(self, export: Export, bar, timeout: float | None) -> Export:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            export.refresh_from_db()
            self.update(bar, export)
            if export.status not in ACTIVE_EXPORT_STATUSES:
                return export
            if deadline is not None and time.monotonic() > deadline:
                raise CommandError(f"Export {export.pk} is still {export.status} after {timeout:g} s "
                                   f"({export.shards_done} of {export.shards_total} shards); it goes on in the "
                                   "workers. Is a Celery worker running?")
            time.sleep(POLL_SECONDS)

    @staticmethod
    def update(bar, export: Export) -> None:
        bar.total = export.shards_total
        bar.n = export.shards_done
        bar.set_postfix(samples=export.samples_done, refresh=False)
        bar.refresh()

    def report(self, export: Export) -> None:
        for problem in export.problems:
            self.stdout.write(f"  problem: {problem.get('image_id')}: {problem.get('message')}")
        if export.status != ExportStatus.DONE:
            raise CommandError(f"Export {export.pk} {export.status}: {export.error}")
        self.stdout.write(self.style.SUCCESS(
            f"Export {export.pk} done: {len(export.files)} files in {export.folder}; "
            f"SHA256SUMS {export.sums_sha256[:16]}…"))
