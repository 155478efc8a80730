"""A run's replies to photos, as JSON Lines for the human evaluation to import.

    python -m trainers.predict RUN_DIR (--photos DIR | --snapshot PATH [--split test]) [--top-k 5] [--out FILE]

One line per photo:

    {"photo": "cat/01.jpg" (a folder's file, relative) or the image id (a snapshot's photo),
     "image_id": ... (snapshot photos only), "sha256": the photo's (the file's bytes; a snapshot's from
     its manifest), "model": "retrieval" | "generative", "run": the run id,
     "replies": [{"text": ..., "score": ...}, ...]}    best first

A retrieval run answers with the top-k comments of a reply bank by cosine similarity (the score):
the train split's comments of the snapshot it trained on (or --bank-snapshot), deduplicated after
normalisation (NFC, invisible characters dropped, case folded, white space collapsed; the first
spelling is kept). A generative run answers with its generated reply (greedy by default; with
--strategy nucleus, up to top-k distinct samples, seeds seed..seed+k-1), scored by its mean token
log-likelihood under the model (log 1/perplexity: higher is likelier).

Without --photos or --snapshot the run's own snapshot is used. The file goes to
RUN_DIR/predictions/<snapshot>-v<N>-<split>.jsonl or photos-<folder>.jsonl unless --out says
otherwise; it is written through a temporary file, so a failure leaves no half-written file.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from datasets.textlength import normalise
from trainers import evaluate
from trainers.data import Snapshot, open_snapshot, samples
from trainers.evaluate import (
    GENERATION_DEFAULTS,
    UsageError,
    add_generation_arguments,
    generation_options,
    usage_errors,
)
from trainers.runs import RunFolder

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif"}
_SPACE = re.compile(r"\s+")


def bank_key(text: str) -> str:
    """What makes two comments the same reply."""
    return _SPACE.sub(" ", normalise(text).casefold())


def reply_bank(snapshot: Snapshot, split: str = "train") -> list[str]:
    """The split's comments, deduplicated after normalisation, in the export's order."""
    seen, bank = set(), []
    for texts in snapshot.comments_by_image(split).values():
        for text in texts:
            key = bank_key(text)
            if key and key not in seen:
                seen.add(key)
                bank.append(normalise(text))
    if not bank:
        raise UsageError(f"the {split} split of {snapshot.name} v{snapshot.version} has no comments for a reply bank")
    return bank


def encode_bank(model, bank: Sequence[str], batch_size: int = 256) -> np.ndarray:
    return np.concatenate([model.encode_texts(list(bank[i:i + batch_size])) for i in range(0, len(bank), batch_size)])


def retrieval_replies(model, images, bank: Sequence[str], bank_embeddings: np.ndarray, top_k: int) -> list[list[dict]]:
    """For each image, the top_k bank texts by cosine similarity, best first."""
    sims = model.encode_images(list(images)) @ bank_embeddings.T  # [images, bank]
    k = min(top_k, sims.shape[1])
    out = []
    for row in sims:
        top = np.argpartition(-row, k - 1)[:k]
        top = top[np.lexsort((top, -row[top]))]  # by score, then bank order
        out.append([{"text": bank[j], "score": round(float(row[j]), 6)} for j in top])
    return out


def generative_replies(model, images, top_k: int, generation: dict) -> list[list[dict]]:
    """For each image its generated reply (nucleus sampling: up to top_k distinct ones), scored by
    the mean token log-likelihood, best first."""
    options = {**GENERATION_DEFAULTS, **generation}
    draws = top_k if options["strategy"] == "nucleus" else 1
    candidates = [[] for _ in images]
    for d in range(draws):
        for row, text in enumerate(model.generate(list(images), **{**options, "seed": options["seed"] + d})):
            if text not in candidates[row]:
                candidates[row].append(text)
    out = []
    for image, texts in zip(images, candidates):
        replies = []
        for text in texts:
            score = None
            if text.strip():
                score = round(-math.log(model.perplexity([image], [text])), 6)
            replies.append({"text": text, "score": score})
        replies.sort(key=lambda r: -math.inf if r["score"] is None else -r["score"])
        out.append(replies)
    return out


def folder_photos(folder: Path) -> Iterator[dict]:
    """The image files under `folder` (any depth), by path; an unreadable one stops the run."""
    from PIL import Image, UnidentifiedImageError

    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise UsageError(f"{folder} holds no photos ({', '.join(sorted(IMAGE_SUFFIXES))})")

    def read():
        for path in files:
            data = path.read_bytes()
            try:
                with Image.open(path) as img:
                    image = img.convert("RGB")
            except (UnidentifiedImageError, OSError) as exc:
                raise UsageError(f"{path} is not a readable image: {exc}") from None
            yield {"photo": path.relative_to(folder).as_posix(), "image": image,
                   "sha256": hashlib.sha256(data).hexdigest()}

    return read()


def snapshot_photos(snapshot: Snapshot, split: str) -> Iterator[dict]:
    manifest = snapshot.manifest
    sha = dict(zip(manifest["image_id"].astype(str), manifest["image_sha256"])) if "image_sha256" in manifest else {}
    for sample in samples(snapshot, split, per_image=True):
        image_id = str(sample["image_id"])
        yield {"photo": image_id, "image_id": image_id, "image": sample["image"], "sha256": sha.get(image_id)}


def _batches(items: Iterator[dict], size: int) -> Iterator[list[dict]]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def predict_run(run_dir, *, photos=None, snapshot=None, split: str = "test", top_k: int = 5, out=None,
                bank_snapshot=None, device: str = "cpu", batch_size: int = 32, limit: int | None = None,
                generation: dict | None = None, say=print) -> Path:
    """Write the run's replies for a folder of photos or a snapshot split; returns the file."""
    if photos is not None and snapshot is not None:
        raise UsageError("give --photos or --snapshot, not both")
    try:
        folder = RunFolder.open(run_dir)
    except FileNotFoundError as exc:
        raise UsageError(str(exc)) from None
    info = folder.info
    kind, trained_on = info.get("kind"), (info.get("snapshot") or {}).get("path")
    if photos is not None:
        photo_dir = Path(photos)
        if not photo_dir.is_dir():
            raise UsageError(f"no folder of photos at {photo_dir}")
        source, default_name = folder_photos(photo_dir), f"photos-{photo_dir.resolve().name}"
    else:
        if not (snapshot or trained_on):
            raise UsageError("the run does not say which snapshot it trained on: pass --snapshot PATH or --photos DIR")
        snap = open_snapshot(snapshot or trained_on)
        snap.size(split)  # a missing split fails here
        source, default_name = snapshot_photos(snap, split), f"{snap.name}-v{snap.version}-{split}"
    target = Path(out) if out else folder.path / "predictions" / f"{default_name}.jsonl"

    model = evaluate.load_model(kind, folder.path, device)
    if kind == "retrieval":
        bank_source = bank_snapshot or trained_on
        if not bank_source:
            raise UsageError("no reply bank: the run does not say which snapshot it trained on; pass --bank-snapshot PATH")
        bank = reply_bank(open_snapshot(bank_source))
        say(f"reply bank: {len(bank)} distinct train comments")
        bank_embeddings = encode_bank(model, bank)

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    written = 0
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            for batch in _batches(source, batch_size):
                if limit is not None:
                    batch = batch[:max(0, limit - written)]
                    if not batch:
                        break
                images = [p["image"] for p in batch]
                if kind == "retrieval":
                    replies = retrieval_replies(model, images, bank, bank_embeddings, top_k)
                else:
                    replies = generative_replies(model, images, top_k, generation or {})
                for photo, answer in zip(batch, replies, strict=True):
                    record = {"photo": photo["photo"]}
                    if "image_id" in photo:
                        record["image_id"] = photo["image_id"]
                    record.update(sha256=photo["sha256"], model=kind, run=folder.run_id, replies=answer)
                    f.write(json.dumps(record, ensure_ascii=False) + "\n")
                written += len(batch)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    say(f"{written} photos answered")
    return target


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m trainers.predict", description=(
        "Write a run's replies to photos as JSON Lines: a retrieval run's top-k comments from a reply bank (the "
        "train split's comments, deduplicated), a generative run's generated replies."))
    p.add_argument("run_dir", metavar="RUN_DIR", help="the run folder (it holds run.json and model/)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--photos", metavar="DIR", help="a folder of photos (jpg, png, webp; any depth)")
    where.add_argument("--snapshot", metavar="PATH", help="a snapshot folder or s3:// url (default: the run's own)")
    p.add_argument("--split", default="test", choices=("train", "val", "test"), help="the snapshot's split (default: test)")
    p.add_argument("--top-k", type=int, default=5, help="replies per photo (default: 5)")
    p.add_argument("--out", metavar="FILE", help="default: RUN_DIR/predictions/<source>.jsonl")
    p.add_argument("--bank-snapshot", metavar="PATH", help="reply bank from this snapshot's train split "
                   "(default: the snapshot the run trained on)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--limit", type=int, help="answer only the first N photos")
    add_generation_arguments(p)
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if args.top_k < 1 or args.batch_size < 1 or (args.limit is not None and args.limit < 1):
        print("error: --top-k, --batch-size and --limit must be at least 1", file=sys.stderr)
        return 2
    try:
        path = predict_run(args.run_dir, photos=args.photos, snapshot=args.snapshot, split=args.split,
                           top_k=args.top_k, out=args.out, bank_snapshot=args.bank_snapshot, device=args.device,
                           batch_size=args.batch_size, limit=args.limit, generation=generation_options(args),
                           say=lambda m: print(m, file=sys.stderr))
    except usage_errors() as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
