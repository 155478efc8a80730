"""Import comments made elsewhere into a project (labeling.external), e.g.

    manage.py import_comments 3 export.json --format labelstudio --source-name "Vendor A 2025" \
        --photo-source "Vendor A" --images /data/vendor-a/photos --type-map caption=specific
    manage.py import_comments "Food chat" captions.json --format coco --source-name coco-ko \
        --photo-source "COCO" --url-prefix https://images.example.org/val2017 --comment-type reaction
    manage.py import_comments 3 comments.csv --format csv --source-name legacy --photo-source legacy

runs it here (photos through the normal ingest, then the sets) and prints the report's counts and
every line that was refused or has warnings. As the operator's own command, --images may be any
folder (the web page and API keep to INGEST_ALLOWED_ROOTS).
"""
from __future__ import annotations

from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q

from datasets.models import Licence, Source
from labeling import external
from labeling.models import CommentImportOutcome, Project


class Command(BaseCommand):
    help = "Import comments made elsewhere (Label Studio JSON, COCO captions, CSV, JSON Lines) into a project."

    def add_arguments(self, parser):
        parser.add_argument("project", help="Project id or name.")
        parser.add_argument("file")
        parser.add_argument("--format", required=True, choices=external.FORMATS)
        parser.add_argument("--source-name", required=True, help="Who made the comments (the external source).")
        parser.add_argument("--photo-source", default=None,
                            help="Catalogue source the photos are filed under (default: the one named as --source-name).")
        parser.add_argument("--images", default=None, help="Folder that relative photo paths are in.")
        parser.add_argument("--url-prefix", default="", help="URL that file names are joined to (COCO, Label Studio).")
        parser.add_argument("--type-map", default="", help="Label Studio from_name=comment_type pairs, comma-separated.")
        parser.add_argument("--comment-type", default="", help="COCO: the comment type of the captions (default: the first).")
        parser.add_argument("--licence", default=None, help="Licence code for photos whose record names none.")

    def handle(self, *args, **o):
        ref = o["project"]
        project = Project.objects.filter(Q(name=ref) | Q(pk=int(ref)) if ref.isdigit() else Q(name=ref)).first()
        if project is None:
            raise CommandError(f"No project {ref!r}.")
        photo_source_name = o["photo_source"] or o["source_name"]
        photo_source = Source.objects.filter(name=photo_source_name).first()
        if photo_source is None:
            raise CommandError(f"No catalogue source {photo_source_name!r}: make it on the sources page, or name one "
                               "with --photo-source.")
        licence = None
        if o["licence"]:
            licence = Licence.objects.filter(code=o["licence"]).first()
            if licence is None:
                raise CommandError(f"No licence {o['licence']!r}.")
        try:
            data = Path(o["file"]).read_bytes()
        except OSError as exc:
            raise CommandError(f"Cannot read {o['file']}: {exc.strerror or exc}") from None
        try:
            ci = external.start_comment_import(
                project, data=data, fmt=o["format"], source_name=o["source_name"], photo_source=photo_source,
                file_name=Path(o["file"]).name, images_dir=o["images"], url_prefix=o["url_prefix"],
                type_map=external.parse_type_map(o["type_map"]), comment_type=o["comment_type"], licence=licence,
                trusted=True, enqueue=False,
            )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        ci = external.run_comment_import(ci.pk)
        for line in ci.rows.exclude(outcome=CommentImportOutcome.IMPORTED, warnings=[]).order_by("position"):
            said = line.reason_text or ""
            if line.warnings:
                said = f"{said} warnings: {line.warnings_text}".strip()
            self.stdout.write(f"  {line.name}: {line.outcome}. {said}")
        job = ci.import_job
        photos = f"photos: {job.accepted} new, {job.duplicates} already stored, {job.refused} refused. " if job else ""
        self.stdout.write(f"Comment import {ci.pk} into {project.name}: {ci.total} records; {ci.imported} sets imported "
                          f"({ci.comments} comments, {ci.warnings} with warnings), {ci.already} already imported, "
                          f"{ci.refused} refused. {photos}")
