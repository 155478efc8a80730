"""Reading a snapshot's shards (DESIGN.md, "Shard contract"), local or on S3, for training and
evaluation. No Django: a snapshot folder is all it needs.

    snap = open_snapshot("exports/food/v3")          # or "s3://bucket/exports/food/v3"
    for s in samples(snap, "test", per_image=True):  # one photo with every one of its comments
        s["image"], s["texts"]
    for batch in loader(snap, "train", preprocess, tokenizer, batch_size=64, shuffle_buffer=1000, seed=0):
        batch["image"], batch["text"]

The sample stream of a split is one global sequence, the same in every process: the shards in
an order drawn from (seed, epoch), their samples through a shuffle buffer drawn from the same
seed, as raw bytes. A process (rank of world_size) takes every world_size-th sample of it, and
a data loader worker of it every num_workers-th batch; only taken samples are decoded. So the
batches are the same whatever the number of workers, and `start_step` skips the first steps'
samples without decoding them: a resumed run sees exactly the batches it would have seen.

Tar members are read with webdataset's own tar iterator and grouping (open_clip's reader); the
streams they read are opened here: local files, or S3 objects through boto3 (AWS_* variables,
AWS_S3_ENDPOINT_URL for another endpoint, as the platform's export writes them).
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import torch
import torch.utils.data

SPLITS = ("train", "val", "test")
SUMS = "SHA256SUMS"


class SnapshotError(ValueError):
    """A snapshot that cannot be read as the shard contract says; the message says why."""


# ---------------------------------------------------------------- where the bytes are


def _is_s3(url: str) -> bool:
    return str(url).startswith("s3://")


def _s3_parts(url: str) -> tuple[str, str]:
    bucket, _, key = str(url)[len("s3://"):].partition("/")
    if not bucket:
        raise SnapshotError(f"{url} is not an s3://bucket/prefix address.")
    return bucket, key


_S3: dict = {}


def s3_client():
    """A boto3 client on the AWS_* variables (AWS_S3_ENDPOINT_URL for MinIO and the like,
    AWS_S3_REGION_NAME or AWS_DEFAULT_REGION for the region), one per process and settings."""
    endpoint = os.environ.get("AWS_S3_ENDPOINT_URL") or None
    region = os.environ.get("AWS_S3_REGION_NAME") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    ident = (os.getpid(), endpoint, region, os.environ.get("AWS_ACCESS_KEY_ID"))
    if ident not in _S3:
        import boto3

        _S3[ident] = boto3.session.Session().client("s3", endpoint_url=endpoint, region_name=region)
    return _S3[ident]


def open_stream(url: str):
    """A readable binary stream of a local file or an S3 object."""
    if _is_s3(url):
        bucket, key = _s3_parts(url)
        try:
            return s3_client().get_object(Bucket=bucket, Key=key)["Body"]
        except Exception as exc:  # botocore's errors: no such key, access denied, no endpoint
            raise SnapshotError(f"Cannot read {url}: {exc.__class__.__name__}: {exc}") from exc
    return open(url, "rb")


def read_bytes(url: str) -> bytes:
    with open_stream(url) as f:
        return f.read()


def _exists(url: str) -> bool:
    if _is_s3(url):
        bucket, key = _s3_parts(url)
        from botocore.exceptions import ClientError

        try:
            s3_client().head_object(Bucket=bucket, Key=key)
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise SnapshotError(f"Cannot read {url}: {exc}") from exc
        except Exception as exc:  # no credentials, no endpoint: say so rather than "missing"
            raise SnapshotError(f"Cannot read {url}: {exc.__class__.__name__}: {exc}") from exc
    return os.path.isfile(url)


def _join(base: str, rel: str) -> str:
    return f"{base.rstrip('/')}/{rel}" if _is_s3(base) else str(Path(base) / rel)


# ---------------------------------------------------------------- the snapshot


@dataclass
class Snapshot:
    """A finished export folder: its identity (name, version, checksum of SHA256SUMS) and files."""

    path: str
    name: str
    version: int | None
    checksum: str
    splits: list[str]
    sizes: dict[str, dict[str, int]] = field(repr=False)  # split -> {shard file name: samples}

    def url(self, rel: str) -> str:
        return _join(self.path, rel)

    def shards(self, split: str) -> list[str]:
        return [self.url(f"{split}/{name}") for name in sorted(self._sizes(split))]

    def size(self, split: str) -> int:
        return sum(self._sizes(split).values())

    def _sizes(self, split: str) -> dict[str, int]:
        if split not in self.sizes:
            raise SnapshotError(f"The snapshot {self.name} v{self.version} has no {split!r} split "
                                f"(it has: {', '.join(self.splits) or 'none'}).")
        return self.sizes[split]

    @cached_property
    def manifest(self):
        """manifest.parquet as a pandas DataFrame: one row per comment."""
        import pandas as pd

        return pd.read_parquet(io.BytesIO(read_bytes(self.url("manifest.parquet"))))

    def comments_by_image(self, split: str) -> dict[str, list[str]]:
        """Every comment of each photo of `split` that has samples, in comment id order."""
        self._sizes(split)
        m = self.manifest
        rows = m[(m["split"] == split) & m["shard"].notna()].sort_values(["image_id", "comment_id"])
        out: dict[str, list[str]] = {}
        for image_id, text in zip(rows["image_id"], rows["text"], strict=True):
            out.setdefault(image_id, []).append(text)
        return out

    def describe(self) -> dict:
        """What a run records of the data it trained on."""
        return {"name": self.name, "version": self.version, "checksum": self.checksum, "path": self.path}


def open_snapshot(path) -> Snapshot:
    """A snapshot folder, local or s3://bucket/prefix. A folder without SHA256SUMS is not a finished
    export and is refused, as is one without any split's sizes.json."""
    path = str(path).rstrip("/") if _is_s3(str(path)) else str(Path(path).expanduser())
    if not _is_s3(path) and not os.path.isdir(path):
        raise SnapshotError(f"No snapshot folder at {path}: pass the folder an export wrote (it holds SHA256SUMS, "
                            "manifest.parquet and train/val/test shards).")
    sums_url = _join(path, SUMS)
    if not _exists(sums_url):
        raise SnapshotError(f"{path} holds no {SUMS}: it is not a finished snapshot export.")
    sums = read_bytes(sums_url)
    checksum = hashlib.sha256(sums).hexdigest()
    listed = {line.split("  ", 1)[1] for line in sums.decode("utf-8").splitlines() if "  " in line}
    sizes = {}
    for split in SPLITS:
        rel = f"{split}/sizes.json"
        if rel in listed or _exists(_join(path, rel)):
            sizes[split] = {k: int(v) for k, v in json.loads(read_bytes(_join(path, rel))).items()}
    if not sizes:
        raise SnapshotError(f"{path} has no split with shards (no train/val/test sizes.json).")
    name, version = None, None
    if "stats.json" in listed:
        info = json.loads(read_bytes(_join(path, "stats.json"))).get("snapshot") or {}
        name, version = info.get("name"), info.get("version")
    if name is None:  # <dataset>/v<N>
        parts = path.rstrip("/").split("/")
        name = parts[-2] if len(parts) > 1 and parts[-1][:1] == "v" else parts[-1]
        version = int(parts[-1][1:]) if parts[-1][:1] == "v" and parts[-1][1:].isdigit() else None
    return Snapshot(path=path, name=name, version=version, checksum=checksum, splits=list(sizes), sizes=sizes)


# ---------------------------------------------------------------- the sample stream


def raw_samples(urls: Iterable[str]) -> Iterator[dict]:
    """Samples as webdataset groups them: {"__key__", "__url__", "jpg": bytes, "txt": bytes, "json": bytes}."""
    from webdataset.tariterators import group_by_keys, tar_file_iterator

    def members():
        for url in urls:
            with open_stream(url) as stream:
                for member in tar_file_iterator(stream):
                    member["__url__"] = url
                    yield member

    return group_by_keys(members())


def _rng(seed: int, epoch: int, what: str) -> random.Random:
    return random.Random(f"{seed}:{epoch}:{what}")


def shuffled(items: Iterable, buffer: int, rng: random.Random) -> Iterator:
    """A shuffle buffer: each item waits among `buffer` others and one drawn at random leaves."""
    if buffer <= 1:
        yield from items
        return
    pool = []
    for item in items:
        if len(pool) < buffer:
            pool.append(item)
            continue
        j = rng.randrange(buffer)
        yield pool[j]
        pool[j] = item
    rng.shuffle(pool)
    yield from pool


def sample_stream(snapshot: Snapshot, split: str, *, shuffle_buffer: int = 0, seed: int = 0,
                  epoch: int = 0) -> Iterator[dict]:
    """The split's global sequence of raw samples for `epoch`: shard order and shuffle buffer drawn
    from (seed, epoch) when shuffle_buffer > 0, else the export's order."""
    urls = snapshot.shards(split)
    if shuffle_buffer > 0:
        urls = list(urls)
        _rng(seed, epoch, "shards").shuffle(urls)
    return shuffled(raw_samples(urls), shuffle_buffer, _rng(seed, epoch, "buffer"))


def decode(raw: dict) -> dict:
    """A raw sample as the trainers use it: the image as an RGB PIL image, its comment and every
    comment of its photo."""
    from PIL import Image

    meta = json.loads(raw["json"]) if "json" in raw else {}
    with Image.open(io.BytesIO(raw["jpg"])) as img:
        image = img.convert("RGB")
    text = raw["txt"].decode("utf-8") if "txt" in raw else meta.get("text", "")
    image_id, _, comment_id = raw["__key__"].rpartition("_")
    return {"image": image, "text": text, "image_id": meta.get("image_id", image_id),
            "comment_id": int(meta.get("comment_id", comment_id)), "key": raw["__key__"],
            "texts": [c["text"] for c in meta.get("comments", [])] or [text]}


def samples(snapshot: Snapshot, split: str, *, shuffle_buffer: int = 0, seed: int = 0, per_image: bool = False,
            epoch: int = 0) -> Iterator[dict]:
    """Decoded samples of a split, one per comment; per_image=True: one per photo (its first
    comment as "text", all of them in "texts"), in the export's order, for evaluation."""
    if per_image:
        last = None
        for raw in raw_samples(snapshot.shards(split)):
            image_id = raw["__key__"].rpartition("_")[0]
            if image_id != last:  # an image's samples are contiguous in a shard
                last = image_id
                yield decode(raw)
        return
    for raw in sample_stream(snapshot, split, shuffle_buffer=shuffle_buffer, seed=seed, epoch=epoch):
        yield decode(raw)


# ---------------------------------------------------------------- batches


class SnapshotBatches(torch.utils.data.IterableDataset):
    """The batches of one process for one epoch (see loader())."""

    def __init__(self, snapshot, split, transform, tokenize, batch_size, shuffle_buffer, seed, epoch, rank,
                 world_size, start_step, drop_last):
        self.snapshot, self.split = snapshot, split
        self.transform, self.tokenize = transform, tokenize
        self.batch_size, self.shuffle_buffer, self.seed, self.epoch = batch_size, shuffle_buffer, seed, epoch
        self.rank, self.world_size, self.start_step, self.drop_last = rank, world_size, start_step, drop_last

    def __len__(self) -> int:
        """Batches of this process in the epoch, counting from start_step."""
        per_rank = self.snapshot.size(self.split) // self.world_size
        n = per_rank // self.batch_size if self.drop_last else -(-per_rank // self.batch_size)
        return max(0, n - self.start_step)

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        total = len(self) + self.start_step
        stream = sample_stream(self.snapshot, self.split, shuffle_buffer=self.shuffle_buffer, seed=self.seed,
                               epoch=self.epoch)
        group = self.batch_size * self.world_size  # global samples per step
        pending: list[dict] = []
        for i, raw in enumerate(stream):
            step, at = divmod(i, group)
            if step >= total:
                break
            # This process's samples of the step, in a worker that builds this step's batch.
            if at % self.world_size != self.rank or step < self.start_step or (step - self.start_step) % workers != worker:
                continue
            pending.append((i, raw))
            if len(pending) == self.batch_size:
                yield self._collate(pending)
                pending = []
        if pending and not self.drop_last:
            yield self._collate(pending)

    def _collate(self, pending: list[tuple[int, dict]]) -> dict:
        items = [decode(raw) for _, raw in pending]
        texts = [it["text"] for it in items]
        if self.transform:
            # Random augmentations (open_clip's RandomResizedCrop) are drawn from a seed of the sample's
            # place in the global sequence: the same in any process, worker or resumed run.
            # (The CPU generator itself: torch.manual_seed would also queue a CUDA seeding per call.)
            generator = torch.default_generator
            saved = generator.get_state()
            images = []
            try:
                for (i, _), it in zip(pending, items, strict=True):
                    generator.manual_seed(hash((self.seed, self.epoch, i)) & 0x7FFF_FFFF_FFFF_FFFF)
                    images.append(self.transform(it["image"]))
            finally:
                generator.set_state(saved)
        else:
            images = [it["image"] for it in items]
        return {
            "image": torch.stack(images) if self.transform else images,
            "text": self.tokenize(texts) if self.tokenize else texts,
            "image_id": [it["image_id"] for it in items],
            "comment_id": [it["comment_id"] for it in items],
        }


def loader(snapshot: Snapshot, split: str, transform: Callable | None, tokenize: Callable | None, batch_size: int, *,
           shuffle_buffer: int = 0, seed: int = 0, num_workers: int = 0, rank: int = 0, world_size: int = 1,
           start_step: int = 0, epoch: int = 0, drop_last: bool | None = None):
    """A torch DataLoader of this process's batches of `split` for `epoch`: {"image": [B,3,H,W]
    (through `transform`, e.g. open_clip's preprocess), "text": tokenize(list of comments) or the
    list itself, "image_id", "comment_id"}. Every process takes a disjoint 1/world_size of each
    step's samples; start_step skips the epoch's first steps. drop_last (default: for train)
    keeps whole batches only, so every process makes the same number of steps. len() = batches."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1.")
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not within world_size {world_size}.")
    drop_last = split == "train" if drop_last is None else drop_last
    dataset = SnapshotBatches(
        snapshot, split, transform, tokenize, batch_size, shuffle_buffer, seed, epoch, rank, world_size, start_step,
        drop_last)
    return torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=num_workers,
                                       persistent_workers=False, prefetch_factor=4 if num_workers else None)
