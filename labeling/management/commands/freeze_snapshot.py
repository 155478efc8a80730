"""Freeze a snapshot from the command line (labeling.snapshots.freeze_snapshot), e.g.

    manage.py freeze_snapshot demo --project 1 --category food --min-sets 2 --seed 7
    manage.py freeze_snapshot demo --project 1 --val-count 500 --test-count 500 --keep-splits-from 3

and print its counts per split and category.
"""
from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from datasets.selectors import snapshot_counts
from labeling.snapshots import freeze_snapshot


def _ratios(value: str) -> dict:
    try:
        train, val, test = (float(v) for v in value.split(","))
    except ValueError:
        raise CommandError("--ratios takes three fractions: train,val,test (e.g. 0.8,0.1,0.1).") from None
    return {"train": train, "val": val, "test": test}


class Command(BaseCommand):
    help = "Freeze the next version of a named snapshot from labeling projects."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--project", type=int, action="append", required=True, help="Project id (repeat).")
        parser.add_argument("--category", action="append", default=[], help="Category slug (repeat; none: all).")
        parser.add_argument("--comment-type", action="append", default=[], help="Comment type slug (repeat).")
        parser.add_argument("--min-sets", type=int, default=None,
                            help="Submitted comment sets a photo needs (default: the projects' overlap).")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--ratios", type=_ratios, default=None, help="train,val,test (default 0.8,0.1,0.1).")
        parser.add_argument("--val-count", type=int, default=None, help="Val photos in all (instead of ratios).")
        parser.add_argument("--test-count", type=int, default=None, help="Test photos in all (instead of ratios).")
        parser.add_argument("--keep-splits-from", type=int, default=None,
                            help="Snapshot id whose val and test photos keep their split.")

    def handle(self, *args, **o):
        counts = None
        if o["val_count"] is not None or o["test_count"] is not None:
            counts = {"val": o["val_count"] or 0, "test": o["test_count"] or 0}
        try:
            snapshot = freeze_snapshot(
                o["name"], projects=o["project"], categories=o["category"], comment_types=o["comment_type"],
                min_sets=o["min_sets"], seed=o["seed"], ratios=o["ratios"], counts=counts,
                keep_splits_from=o["keep_splits_from"],
            )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        self.stdout.write(f"Froze {snapshot.label} (id {snapshot.pk}): {snapshot.image_count} photos, "
                          f"{snapshot.comment_count} comments.")
        for row in snapshot_counts(snapshot):
            self.stdout.write(f"  {row['split']:5} {row['category'] or '-':20} {row['photos']:8} photos "
                              f"{row['comments']:9} comments")
