"""Evaluate a finished run on a snapshot split and write its eval.json.

    python -m trainers.evaluate RUN_DIR [--snapshot PATH] [--split test] [--tokenizer kiwi|mecab|whitespace]

A retrieval run gets Recall@1/5/10 both ways (Flickr30k protocol: every comment of a photo is a
hit); a generative run gets BLEU-1..4, METEOR, ROUGE-L and CIDEr of one generated reply per photo
against all the photo's comments, and the perplexity of those comments. trainers/metrics.py says
how each is computed. The scores are printed beside the known build's (DESIGN.md) with the
signature of their tokenizer and settings, and written to RUN_DIR/eval.json:

    {"format": 1, "kind", "split", "metrics": {name: value}, "signature": {"tokenizer", ...settings, "text"},
     "evaluated_at", "checkpoint", "snapshot": {"name", "version", "checksum", "path"}}

The snapshot defaults to the one the run trained on (run.json); another one is allowed (a newer
version's test split) and said so on the way.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from trainers import metrics
from trainers.data import Snapshot, SnapshotError, open_snapshot, samples
from trainers.runs import RunFolder, _dump, _write_atomic, now

FORMAT = 1
# The known build's published figures (DESIGN.md), in the units this module reports. Its recall
# direction is not stated; it is printed beside image -> text, the reply task.
KNOWN_BUILD = {
    "retrieval": {"image_to_text_R@1": 0.24, "image_to_text_R@5": 0.53, "image_to_text_R@10": 0.64},
    "generative": {"BLEU-1": 21.3, "BLEU-4": 2.7, "METEOR": 8.2, "ROUGE-L": 15.5, "CIDEr": 10.3, "PPL": 29.2},
}
GENERATION_DEFAULTS = {"strategy": "greedy", "num_beams": 3, "top_p": 0.9, "temperature": 1.0,
                       "repetition_penalty": 1.2, "max_new_tokens": 30, "seed": 0}


def add_generation_arguments(p: argparse.ArgumentParser) -> None:
    """The decoding options of a generative run (evaluate and predict take the same)."""
    g = p.add_argument_group("generation (generative runs)")
    g.add_argument("--strategy", default="greedy", choices=("greedy", "beam", "nucleus"))
    g.add_argument("--num-beams", type=int, default=GENERATION_DEFAULTS["num_beams"])
    g.add_argument("--top-p", type=float, default=GENERATION_DEFAULTS["top_p"])
    g.add_argument("--temperature", type=float, default=GENERATION_DEFAULTS["temperature"])
    g.add_argument("--repetition-penalty", type=float, default=GENERATION_DEFAULTS["repetition_penalty"])
    g.add_argument("--max-new-tokens", type=int, default=GENERATION_DEFAULTS["max_new_tokens"])
    g.add_argument("--seed", type=int, default=GENERATION_DEFAULTS["seed"])


class UsageError(Exception):
    """Bad input or something missing on this machine: the message is one line for the user."""


def load_model(kind: str, path, device: str = "cpu"):
    """The run's trained model through its trainer's `load` (trainers.retrieval / trainers.generative)."""
    if kind == "retrieval":
        from trainers.retrieval import load
    elif kind == "generative":
        from trainers.generative import load
    else:
        raise UsageError(f"run kind {kind!r} is neither retrieval nor generative")
    return load(path, device=device)


def weights_of(run_dir: Path) -> Path:
    """Where the evaluated weights come from: the final model/, or the last checkpoint of a run
    that has not saved one yet (what the trainers' `load` falls back to)."""
    run_dir = Path(run_dir).resolve()
    model = run_dir / "model"
    if model.is_dir() and any(model.iterdir()):
        return model
    last = run_dir / "checkpoints" / "last.pt"
    return last if last.is_file() else model


def photos_of(snapshot: Snapshot, split: str, limit: int | None = None) -> list[dict]:
    """One sample per photo of the split ({"image", "image_id", "texts", ...}), in the export's order."""
    out = []
    for sample in samples(snapshot, split, per_image=True):
        out.append(sample)
        if limit and len(out) >= limit:
            break
    if not out:
        raise UsageError(f"the {split} split of {snapshot.name} v{snapshot.version} holds no photos")
    return out


def evaluate_retrieval(model, photos: Sequence[dict], batch_size: int = 64) -> metrics.Report:
    """Recall@K both ways of a model with encode_images / encode_texts (L2-normalised arrays)."""
    images = [p["image"] for p in photos]
    texts, owner = [], []
    for row, photo in enumerate(photos):
        texts.extend(photo["texts"])
        owner.extend([row] * len(photo["texts"]))
    import numpy as np

    image_emb = np.concatenate([model.encode_images(images[i:i + batch_size]) for i in range(0, len(images), batch_size)])
    text_emb = np.concatenate([model.encode_texts(texts[i:i + batch_size]) for i in range(0, len(texts), batch_size)])
    report = metrics.retrieval_recall(image_emb, text_emb, owner)
    signature = metrics.Signature(None, {"model": getattr(model, "model_name", "?"), **report.signature.settings})
    return metrics.Report(report.scores, signature)


def evaluate_generative(model, photos: Sequence[dict], tokenizer: str = "kiwi", batch_size: int = 32,
                        generation: dict | None = None) -> metrics.Report:
    """Caption metrics of one reply per photo (model.generate) and the perplexity of the photos'
    comments (model.perplexity over every comment, token-level)."""
    options = {**GENERATION_DEFAULTS, **(generation or {})}
    replies = {}
    for i in range(0, len(photos), batch_size):
        batch = photos[i:i + batch_size]
        for photo, reply in zip(batch, model.generate([p["image"] for p in batch], **options), strict=True):
            replies[photo["image_id"]] = reply
    references = {p["image_id"]: list(p["texts"]) for p in photos}
    report = metrics.caption_metrics(replies, references, tokenizer=tokenizer)
    pairs = [(p["image"], text) for p in photos for text in p["texts"]]
    scores = {**report.scores, "PPL": float(model.perplexity([im for im, _ in pairs], [t for _, t in pairs]))}
    generation_sig = options["strategy"]
    if options["strategy"] == "beam":
        generation_sig += f"{options['num_beams']}"
    elif options["strategy"] == "nucleus":
        generation_sig += f"-p{options['top_p']}-t{options['temperature']}-seed{options['seed']}"
    generation_sig += f"-rp{options['repetition_penalty']}-max{options['max_new_tokens']}"
    settings = {**report.signature.settings, "generation": generation_sig, "ppl": "token-level-over-every-comment"}
    return metrics.Report(scores, metrics.Signature(report.signature.tokenizer, settings))


def evaluate_run(run_dir, *, snapshot=None, split: str = "test", tokenizer: str = "kiwi", device: str = "cpu",
                 batch_size: int = 32, limit: int | None = None, generation: dict | None = None,
                 say=print) -> dict:
    """Evaluate the run in `run_dir` and write its eval.json; returns what was written."""
    try:
        folder = RunFolder.open(run_dir)
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from None
    info = folder.info
    kind = info.get("kind")
    trained_on = info.get("snapshot") or {}
    source = snapshot or trained_on.get("path")
    if not source:
        raise UsageError("the run does not say which snapshot it trained on: pass --snapshot PATH")
    snap = open_snapshot(source)
    if trained_on.get("checksum") and snap.checksum != trained_on["checksum"]:
        say(f"note: evaluating on {snap.name} v{snap.version}, not the snapshot the run trained on "
            f"({trained_on.get('name')} v{trained_on.get('version')})")
    if kind == "generative":
        metrics.get_tokenizer(tokenizer)  # an unknown name fails before the model loads
    model = load_model(kind, folder.path, device)
    photos = photos_of(snap, split, limit)
    if kind == "retrieval":
        report = evaluate_retrieval(model, photos, batch_size)
    else:
        report = evaluate_generative(model, photos, tokenizer, batch_size, generation)
    result = {
        "format": FORMAT,
        "kind": kind,
        "split": split,
        "metrics": report.scores,
        "signature": report.signature.as_dict(),
        "evaluated_at": now(),
        "checkpoint": str(weights_of(folder.path)),
        "snapshot": snap.describe(),
    }
    _write_atomic(folder.path / "eval.json", _dump(result))
    return result


def table(result: dict) -> str:
    """The scores beside the known build's, and the signature, as printed by the command."""
    known = KNOWN_BUILD.get(result["kind"], {})
    snap = result["snapshot"]
    lines = [f"{result['kind']} run, {result['split']} split of {snap['name']} v{snap['version']}",
             f"{'metric':<22}{'this run':>12}{'known build':>14}"]
    fmt = ".4f" if result["kind"] == "retrieval" else ".2f"
    for name, value in result["metrics"].items():
        ref = known.get(name)
        lines.append(f"{name:<22}{value:>12{fmt}}{'' if ref is None else format(ref, fmt):>14}")
    lines.append(f"signature: {result['signature']['text']}")
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m trainers.evaluate", description=(
        "Evaluate a run folder on a snapshot split: Recall@1/5/10 for a retrieval run; BLEU-1..4, METEOR, "
        "ROUGE-L, CIDEr and perplexity for a generative run. Prints them beside the known build's, with the "
        "tokenizer signature, and writes RUN_DIR/eval.json."))
    p.add_argument("run_dir", metavar="RUN_DIR", help="the run folder (it holds run.json and model/)")
    p.add_argument("--snapshot", help="snapshot folder or s3:// url (default: the one the run trained on)")
    p.add_argument("--split", default="test", choices=("train", "val", "test"), help="default: test")
    p.add_argument("--tokenizer", default="kiwi", choices=metrics.TOKENIZERS,
                   help="how Korean text is cut for the text metrics (default: kiwi morphemes)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--limit", type=int, help="evaluate only the first N photos (a quick look)")
    add_generation_arguments(p)
    return p


def generation_options(args) -> dict:
    return {key: getattr(args, key) for key in GENERATION_DEFAULTS}


def usage_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean bad input or a missing piece, reported in one line with exit status 2."""
    errors: list[type[BaseException]] = [UsageError, SnapshotError, FileNotFoundError, ValueError,
                                         metrics.TokenizerUnavailable]
    for module, name in (("trainers.retrieval", "UsageError"), ("trainers.generative", "Unavailable")):
        error = getattr(sys.modules.get(module), name, None)  # only a trainer that was loaded can raise its own
        if isinstance(error, type) and issubclass(error, BaseException):
            errors.append(error)
    return tuple(errors)


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if args.batch_size < 1 or (args.limit is not None and args.limit < 1):
        print("error: --batch-size and --limit must be at least 1", file=sys.stderr)
        return 2
    try:
        result = evaluate_run(args.run_dir, snapshot=args.snapshot, split=args.split, tokenizer=args.tokenizer,
                              device=args.device, batch_size=args.batch_size, limit=args.limit,
                              generation=generation_options(args), say=lambda m: print(m, file=sys.stderr))
    except usage_errors() as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(table(result))
    print(f"wrote {Path(args.run_dir) / 'eval.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
