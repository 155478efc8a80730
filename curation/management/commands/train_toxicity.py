"""Train a new version of the toxicity and bias classifier (curation.toxicity) from a labeled
TSV or CSV file, plus the planners' keep/reject decisions on earlier toxicity and bias flags:

    manage.py train_toxicity labeled.tsv [--text-col text] [--label-col label] [--bias-col bias]
    manage.py train_toxicity beep-train.tsv --text-col comments --label-col hate --bias-col bias
    manage.py train_toxicity --activate 2        # make an earlier version current again

Labels: hate / offensive / none; bias: gender / other / none. The new version becomes current;
its held-out scores are printed. A bad file changes nothing.
"""
from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from curation import services
from curation.toxicity import TrainingDataError


class Command(BaseCommand):
    help = "Train the toxicity and bias classifier from a labeled TSV/CSV file and the planners' decisions."

    def add_arguments(self, parser):
        parser.add_argument("file", nargs="?", help="Labeled TSV or CSV (UTF-8, header row).")
        parser.add_argument("--text-col", default="text")
        parser.add_argument("--label-col", default="label", help="hate / offensive / none")
        parser.add_argument("--bias-col", default=None,
                            help="gender / other / none (default: a 'bias' column where the file has one)")
        parser.add_argument("--no-decisions", action="store_true", help="Leave out the planners' decisions.")
        parser.add_argument("--activate", type=int, default=None, help="Make this trained version current.")

    def handle(self, *args, **o):
        if o["activate"] is not None:
            try:
                row = services.activate_toxicity_model(o["activate"])
            except ValidationError as exc:
                raise CommandError(" ".join(exc.messages)) from None
            self.stdout.write(f"toxicity model v{row.version} is current ({row.file})")
            return
        if not o["file"]:
            raise CommandError("Give the labeled file (or --activate VERSION).")
        try:
            row = services.train_toxicity_model(
                o["file"], text_col=o["text_col"], label_col=o["label_col"], bias_col=o["bias_col"] or "bias",
                bias_required=o["bias_col"] is not None, use_decisions=not o["no_decisions"])
        except TrainingDataError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"toxicity model v{row.version} trained and current: {row.file}")
        self.stdout.write(f"rows: {row.rows}  data sha256: {row.data_sha256}")
        for head in ("toxicity", "bias"):
            m = row.metrics.get(head)
            if not m:
                self.stdout.write(f"{head}: no labels in the data (no {head} head)")
            elif "scores" not in m:
                self.stdout.write(f"{head}: {m['trained_on']} rows, too few to hold any out: not measured")
            else:
                self.stdout.write(f"{head}: held out {m['held_out']} of {m['trained_on']} rows")
                for label, s in m["scores"].items():
                    name = "toxic (any)" if label == "any" and head == "toxicity" else (
                        "biased (any)" if label == "any" else label)
                    self.stdout.write(f"  {name:<13} P {s['precision']:.3f}  R {s['recall']:.3f}  "
                                      f"F1 {s['f1']:.3f}  n {s['support']}")
