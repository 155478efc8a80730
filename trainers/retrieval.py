"""The retrieval baseline: a CLIP-style dual encoder trained contrastively on a snapshot's shards.

    python -m trainers.retrieval --snapshot exports/food/v3 --runs-root runs --vision ViT-B-32 \\
        --pretrained /models/vit-b-32.bin --epochs 10 --batch-size 128 --amp
    python -m trainers.retrieval --snapshot ... --vision swin_base_patch4_window7_224 --text-tower hf:klue/roberta-base
    torchrun --nproc_per_node 4 -m trainers.retrieval --snapshot ...      # DistributedDataParallel
    python -m trainers.retrieval --resume runs/retrieval-20261129-101500-a1b2c3

The model comes from open_clip's factory: any open_clip model name (ViT, ConvNeXt, timm towers
such as Swin), `timm:<name>` for another timm vision tower, or a whole config (--config JSON);
the text tower is that model's own, or a Hugging Face encoder (`--text-tower hf:NAME_OR_PATH`,
the Korean case: a RoBERTa-type or XLM-R model), as open_clip's `hf-*` configs build it. Weights
come from an open_clip pretrained tag or a local checkpoint; nothing is downloaded when the
machine is offline, and what is missing is said in one line (exit status 2).

One training step is one optimizer step over batch_size x accum x world_size pairs: the loss is
open_clip's ClipLoss over all of them (with --accum, features of the other micro-batches are
computed first without gradients, as open_clip's trainer does, so the step equals one big batch).
AdamW (no weight decay on gains, biases and the logit scale), a linear warm-up then a cosine
schedule, AMP on CUDA (fp16 with a gradient scaler), towers frozen on request, the logit scale
learned and clamped at 100 (or fixed).

Checkpoints (the run folder's checkpoints/: every epoch, and every --checkpoint-every steps)
hold the model, optimizer, scheduler, scaler, RNG states and the step; the data position follows
from the step (trainers.data), so --resume makes exactly the steps the run would have made. The
final model is saved open_clip-loadable in <run>/model/ (see save_model); load() reads it back.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import random
import re
import shutil
import sys
import time
from contextlib import nullcontext
from copy import deepcopy
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from trainers import data as shards
from trainers.metrics import retrieval_recall
from trainers.runs import RunFolder, new_run

log = logging.getLogger("trainers.retrieval")

MODEL_FILE = "open_clip_model.pt"  # the final weights (a state dict), as the run folder contract names them
LOCAL_DIR_FILE = "open_clip_pytorch_model.bin"  # the same bytes (a hard link) under the name open_clip's local-dir: finds


class UsageError(Exception):
    """Bad input or something missing on this machine: the message is one line for the user."""


# ---------------------------------------------------------------- the command line


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m trainers.retrieval",
        description="Train a CLIP-style retrieval model (open_clip) on a snapshot's shards.")
    p.add_argument("--snapshot", help="the snapshot folder (local path or s3://bucket/prefix/<name>/v<N>)")
    p.add_argument("--runs-root", default="runs", help="where the run folder is made (default: runs)")
    p.add_argument("--run-name", help="the run folder's name (default: retrieval-<UTC time>-<6 hex>)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its last checkpoint, with its own config")
    model = p.add_mutually_exclusive_group()
    model.add_argument("--vision", help="an open_clip model name (e.g. ViT-B-32, convnext_base, "
                                        "swin_base_patch4_window7_224) or timm:<timm model> (default: ViT-B-32)")
    model.add_argument("--config", help="a whole open_clip model config: a JSON file or inline JSON")
    p.add_argument("--text-tower", default="open_clip",
                   help="open_clip (the model's own) or hf:NAME_OR_PATH (a Hugging Face encoder)")
    p.add_argument("--pretrained", help="an open_clip pretrained tag of --vision, or a local checkpoint file")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=64, help="pairs per micro-batch per process")
    p.add_argument("--accum", type=int, default=1, help="micro-batches per optimizer step")
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--wd", type=float, default=0.1, help="AdamW weight decay (not on gains, biases, logit scale)")
    p.add_argument("--warmup", type=int, default=100, help="optimizer steps of linear warm-up before the cosine")
    p.add_argument("--amp", action="store_true", help="mixed precision (fp16 with a gradient scaler; CUDA only)")
    p.add_argument("--freeze-vision", action="store_true", help="train no vision tower weights")
    p.add_argument("--freeze-text", action="store_true", help="train no text tower weights")
    p.add_argument("--logit-scale", type=float, help="initial logit scale, 1/temperature (default open_clip's 1/0.07)")
    p.add_argument("--fixed-logit-scale", action="store_true", help="do not learn the logit scale")
    p.add_argument("--shuffle-buffer", type=int, default=1000, help="samples in the shuffle buffer (0: export order)")
    p.add_argument("--workers", type=int, default=2, help="data loader processes per training process")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto (cuda when there is one), cpu or cuda")
    p.add_argument("--eval-split", default="val", help="the split evaluated after each epoch ('' for none)")
    p.add_argument("--checkpoint-every", type=int, default=0, help="also checkpoint every N optimizer steps")
    p.add_argument("--stop-after", type=int, default=0,
                   help="stop (with a checkpoint) after N optimizer steps in all; --resume continues")
    p.add_argument("--log-every", type=int, default=10, help="log the training loss every N steps")
    args = p.parse_args(argv)
    for name in ("epochs", "batch_size", "accum"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if not args.resume and not args.snapshot:
        p.error("--snapshot is required (or --resume RUN_DIR)")
    return args


# Options that describe the run (run.json's config); the others say where and whether to stop.
NOT_CONFIG = ("resume", "runs_root", "run_name", "stop_after", "device", "workers", "snapshot")


# ---------------------------------------------------------------- the model


def _sanitize(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "model"


def model_config(vision: str | None, config: str | None, text_tower: str) -> tuple[str, dict, bool]:
    """(name, open_clip model config, whether it is open_clip's own config unchanged)."""
    import open_clip

    if config:
        inline = config.lstrip().startswith("{")
        if not inline and not os.path.isfile(config):
            raise UsageError(f"--config {config}: no such file (give a JSON file or inline JSON).")
        try:
            cfg = json.loads(config if inline else Path(config).read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise UsageError(f"--config is not valid JSON: {exc}") from None
        if not isinstance(cfg, dict) or not all(k in cfg for k in ("embed_dim", "vision_cfg", "text_cfg")):
            raise UsageError("--config must be an open_clip model config with embed_dim, vision_cfg and text_cfg.")
        name, builtin = ("custom" if inline else _sanitize(Path(config).stem)), False
    else:
        vision = vision or "ViT-B-32"
        if vision.startswith("timm:"):
            import timm

            timm_name = vision[len("timm:"):]
            if not timm.list_models(timm_name):
                raise UsageError(f"Unknown timm model {timm_name!r} (see timm.list_models()).")
            cfg = {"embed_dim": 512,
                   "vision_cfg": {"timm_model_name": timm_name, "timm_model_pretrained": False, "timm_pool": "avg",
                                  "timm_proj": "linear", "image_size": 224},
                   "text_cfg": deepcopy(open_clip.get_model_config("ViT-B-32")["text_cfg"])}
            name, builtin = _sanitize(timm_name), False
        else:
            cfg = open_clip.get_model_config(vision)
            if cfg is None:
                raise UsageError(f"Unknown open_clip model {vision!r}: use one of open_clip.list_models() "
                                 "(e.g. ViT-B-32, convnext_base, swin_base_patch4_window7_224), timm:<name> or --config.")
            name, builtin = vision, True
    cfg = deepcopy(cfg)
    if text_tower != "open_clip":
        if not text_tower.startswith("hf:") or len(text_tower) == 3:
            raise UsageError(f"--text-tower must be open_clip or hf:NAME_OR_PATH (got {text_tower!r}).")
        hf = text_tower[3:]
        cfg["text_cfg"] = {"hf_model_name": hf, "hf_tokenizer_name": hf, "hf_pooler_type": "mean_pooler",
                           "hf_proj_type": "linear",
                           "context_length": cfg.get("text_cfg", {}).get("context_length", 77)}
        name, builtin = _sanitize(f"{name}-hf-{Path(hf).name or hf}"), False
    return name, cfg, builtin


def register_config(name: str, cfg: dict, folder: Path) -> None:
    """Make `name` known to open_clip (its factory, tokenizer and transforms) for this process."""
    import open_clip

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(cfg, indent=2) + "\n", encoding="utf-8")
    open_clip.add_model_config(path)


def create_model(name: str, cfg: dict, builtin: bool, pretrained: str | None, device: str):
    """open_clip's model and transforms (train, eval) and tokenizer, with clear errors for weights,
    Hugging Face models or libraries that are not on this machine."""
    import open_clip

    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never hang on the network: what is not cached is missing
    if pretrained and not os.path.isfile(pretrained):
        tags = open_clip.list_pretrained_tags_by_model(name) if builtin else []
        if pretrained not in tags:
            known = f"its tags: {', '.join(tags)}" if tags else "this model has no open_clip tags"
            raise UsageError(f"--pretrained {pretrained!r} is neither a file nor an open_clip tag of {name} ({known}); "
                             "pass a local checkpoint file.")
        tag = open_clip.get_pretrained_cfg(name, pretrained)
        cached = Path(os.path.expanduser("~/.cache/clip")) / os.path.basename(tag.get("url") or "none")
        if not tag.get("hf_hub") and not cached.is_file():  # a plain URL download would wait on the network
            raise UsageError(f"The pretrained weights {pretrained!r} of {name} are not on this machine and cannot be "
                             "downloaded here: pass a local checkpoint file with --pretrained PATH.")
    hf = cfg["text_cfg"].get("hf_model_name")
    try:
        model, preprocess_train, preprocess_val = open_clip.create_model_and_transforms(
            name, pretrained=pretrained, device=device, output_dict=True)
        tokenizer = open_clip.get_tokenizer(name)
    except ImportError as exc:
        raise UsageError(f"A library the model needs is not installed ({exc}); for hf: text towers install "
                         "transformers (requirements-ml.txt).") from None
    except (OSError, RuntimeError, ValueError) as exc:
        text = str(exc)
        if pretrained and "Failed to download" in text:
            raise UsageError(f"The pretrained weights {pretrained!r} of {name} are not on this machine and cannot be "
                             "downloaded here: pass a local checkpoint file with --pretrained PATH.") from None
        if hf and (isinstance(exc, OSError) or hf in text):
            raise UsageError(f"The Hugging Face model {hf!r} is not on this machine (offline): pass a local folder "
                             "with --text-tower hf:/path/to/model (config, weights and tokenizer files).") from None
        raise UsageError(f"open_clip could not build {name}: {text.splitlines()[0] if text else exc!r}") from None
    return model, preprocess_train, preprocess_val, tokenizer


def save_model(model, name: str, cfg: dict, folder: Path, tokenizer=None) -> Path:
    """The final model, open_clip-loadable three ways:
    open_clip.create_model_and_transforms("local-dir:<folder>"), or by name with
    pretrained="<folder>/open_clip_model.pt" (after open_clip.add_model_config("<folder>/<name>.json")
    when the model is not one of open_clip's own). A Hugging Face text tower's tokenizer files are
    saved beside it (open_clip's local-dir: reads them there); its model config is still read from
    the name or path the run was given."""
    folder.mkdir(parents=True, exist_ok=True)
    hf_tokenizer = getattr(tokenizer, "tokenizer", None)
    if hasattr(hf_tokenizer, "save_pretrained"):
        hf_tokenizer.save_pretrained(folder)
    preprocess = getattr(model.visual, "preprocess_cfg", None) or {}
    (folder / "open_clip_config.json").write_text(json.dumps(
        {"model_name": name, "model_cfg": cfg, "preprocess_cfg": preprocess}, indent=2) + "\n", encoding="utf-8")
    (folder / f"{name}.json").write_text(json.dumps(cfg, indent=2) + "\n", encoding="utf-8")
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save(state, folder / MODEL_FILE)
    link = folder / LOCAL_DIR_FILE
    link.unlink(missing_ok=True)
    try:
        os.link(folder / MODEL_FILE, link)
    except OSError:
        torch.save(state, link)
    return folder / MODEL_FILE


class RetrievalModel:
    """A trained model for evaluation, replies and curation: L2-normalised embeddings as numpy."""

    def __init__(self, model, preprocess, tokenizer, model_name: str, device: str = "cpu"):
        self.model, self.preprocess, self.tokenizer = model.eval(), preprocess, tokenizer
        self.model_name, self.device = model_name, device

    @torch.no_grad()
    def encode_images(self, images, batch_size: int = 64) -> np.ndarray:
        out = []
        for i in range(0, len(images), batch_size):
            x = torch.stack([self.preprocess(im.convert("RGB")) for im in images[i:i + batch_size]]).to(self.device)
            out.append(F.normalize(self.model.encode_image(x).float(), dim=-1).cpu())
        return torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)

    @torch.no_grad()
    def encode_texts(self, texts, batch_size: int = 256) -> np.ndarray:
        out = []
        for i in range(0, len(texts), batch_size):
            tokens = self.tokenizer(list(texts[i:i + batch_size])).to(self.device)
            out.append(F.normalize(self.model.encode_text(tokens).float(), dim=-1).cpu())
        return torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)


def load(path, device: str = "cpu") -> RetrievalModel:
    """A run folder (its model/) or a model folder save_model wrote."""
    import open_clip

    path = Path(path)
    folder = path / "model" if (path / "model" / "open_clip_config.json").is_file() else path
    config = folder / "open_clip_config.json"
    if not config.is_file():
        raise FileNotFoundError(f"{path} holds no trained retrieval model (no model/open_clip_config.json): "
                                "has the run finished?")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    name = json.loads(config.read_text(encoding="utf-8")).get("model_name") or folder.name
    model, _, preprocess = open_clip.create_model_and_transforms(f"local-dir:{folder}", device=device)
    tokenizer = open_clip.get_tokenizer(f"local-dir:{folder}")
    return RetrievalModel(model, preprocess, tokenizer, name, device)


# ---------------------------------------------------------------- evaluation during training


@torch.no_grad()
def embed_split(model, snapshot, split: str, preprocess, tokenizer, device, batch_size: int = 128):
    """Image embeddings (one per photo), text embeddings (every comment) and each text's photo, for
    trainers.metrics.retrieval_recall (the Flickr30k protocol: every comment of a photo counts)."""
    images, texts, owner = [], [], []
    for i, s in enumerate(shards.samples(snapshot, split, per_image=True)):
        images.append(preprocess(s["image"]))
        texts.extend(s["texts"])
        owner.extend([i] * len(s["texts"]))
    img = torch.cat([model.encode_image(torch.stack(images[i:i + batch_size]).to(device)).float()
                     for i in range(0, len(images), batch_size)])
    txt = torch.cat([model.encode_text(tokenizer(texts[i:i + batch_size]).to(device)).float()
                     for i in range(0, len(texts), batch_size)])
    return F.normalize(img, dim=-1).cpu(), F.normalize(txt, dim=-1).cpu(), torch.tensor(owner)


# ---------------------------------------------------------------- training


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def lr_lambda(warmup: int, total: int):
    """Linear warm-up to the full rate over `warmup` steps, then a cosine down to zero at `total`."""
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return f


def param_groups(model, wd: float) -> list[dict]:
    """open_clip's rule: no weight decay on gains, biases, norms and the logit scale."""
    decay, no_decay = [], []
    for n, p in model.named_parameters():
        if not p.requires_grad:
            continue
        plain = p.ndim < 2 or "bn" in n or "ln" in n or "bias" in n or "logit_scale" in n
        (no_decay if plain else decay).append(p)
    return [{"params": no_decay, "weight_decay": 0.0}, {"params": decay, "weight_decay": wd}]


def train_step(model, raw_model, micro_batches, loss_fn, optimizer, scaler, autocast, device) -> float:
    """One optimizer step over the micro-batches (one big batch's loss, see the module doc)."""
    optimizer.zero_grad(set_to_none=True)
    moved = [(b["image"].to(device, non_blocking=True), b["text"].to(device, non_blocking=True)) for b in micro_batches]
    if len(moved) == 1:
        with autocast():
            out = model(*moved[0])
            loss = loss_fn(out["image_features"], out["text_features"], out["logit_scale"])
        scaler.scale(loss).backward()
        total = loss.item()
    else:
        with torch.no_grad(), autocast():
            cached = [model(images, texts) for images, texts in moved]
        imgs = [c["image_features"] for c in cached]
        txts = [c["text_features"] for c in cached]
        total = 0.0
        for j, (images, texts) in enumerate(moved):
            sync = nullcontext() if j == len(moved) - 1 or not hasattr(model, "no_sync") else model.no_sync()
            with sync:
                with autocast():
                    out = model(images, texts)
                    loss = loss_fn(torch.cat(imgs[:j] + [out["image_features"]] + imgs[j + 1:]),
                                   torch.cat(txts[:j] + [out["text_features"]] + txts[j + 1:]), out["logit_scale"])
                scaler.scale(loss).backward()
            total += loss.item() / len(moved)
    scaler.step(optimizer)
    scaler.update()
    with torch.no_grad():
        raw_model.logit_scale.clamp_(0, math.log(100))
    return total


def distributed() -> tuple[int, int, int]:
    """(rank, world_size, local_rank) from torchrun's variables; the process group is started here."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, 0
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), world, int(os.environ.get("LOCAL_RANK", "0"))


def train(args: argparse.Namespace) -> Path:
    rank, world, local_rank = distributed()
    main = rank == 0
    if args.device == "auto":
        device = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    elif args.device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is visible here.")
    else:
        device = f"cuda:{local_rank}" if args.device == "cuda" else args.device
    if device.startswith("cuda"):
        torch.cuda.set_device(device)

    # The run: a new folder, or the one being resumed (its config wins).
    checkpoint = None
    if args.resume:
        try:
            run = RunFolder.open(args.resume)
        except FileNotFoundError as exc:
            raise UsageError(str(exc)) from None
        info = run.info
        stored = info["config"]
        for key, value in stored.items():
            setattr(args, key, value)
        args.snapshot = args.snapshot or info["snapshot"]["path"]
        if (run.path / "checkpoints" / "last.pt").is_file():
            checkpoint = run.load_checkpoint("last")
    try:
        snapshot = shards.open_snapshot(args.snapshot)
    except shards.SnapshotError as exc:
        raise UsageError(str(exc)) from None
    if "train" not in snapshot.splits:
        raise UsageError(f"The snapshot {snapshot.path} has no train split.")
    if args.resume and snapshot.checksum != info["snapshot"]["checksum"]:
        raise UsageError(f"{snapshot.path} is not the snapshot the run trained on (its SHA256SUMS differs).")

    name, cfg, builtin = model_config(args.vision, args.config, args.text_tower)
    if not args.resume:
        config = {k: v for k, v in vars(args).items() if k not in NOT_CONFIG}
        model_info = {"name": name, "vision": args.vision or ("config" if args.config else "ViT-B-32"),
                      "text": args.text_tower, "pretrained": args.pretrained, "open_clip_config": cfg}
        run = None
        if main:
            try:
                run = new_run(args.runs_root, "retrieval", config, snapshot, run_name=args.run_name, model=model_info,
                              world_size=world, device=device.split(":")[0])
            except (FileExistsError, ValueError) as exc:
                raise UsageError(str(exc)) from None
        if world > 1:  # every process writes into rank 0's folder
            holder = [str(run.path) if run else None]
            dist.broadcast_object_list(holder, src=0)
            run = RunFolder(holder[0])
    elif main:
        run.update(status="running", finished_at=None)  # again, if it had failed
    try:
        return _fit(args, run, snapshot, name, cfg, builtin, checkpoint, rank, world, local_rank, device)
    except UsageError:
        if main and not args.resume:  # bad input found while building the model: leave no run behind
            shutil.rmtree(run.path, ignore_errors=True)
        raise
    except BaseException:
        if main:
            run.finish("failed")
        raise


def _fit(args, run, snapshot, name, cfg, builtin, checkpoint, rank, world, local_rank, device) -> Path:
    """Build the model and train it: the rest of train()."""
    main = rank == 0
    if not builtin:
        register_config(name, cfg, run.path / "model")

    set_seed(args.seed)  # the same initial weights in every process (DDP also broadcasts rank 0's)
    model, preprocess_train, preprocess_val, tokenizer = create_model(
        name, cfg, builtin, None if checkpoint else args.pretrained, device)
    if args.logit_scale is not None and not checkpoint:
        with torch.no_grad():
            model.logit_scale.fill_(math.log(args.logit_scale))
    model.logit_scale.requires_grad_(not args.fixed_logit_scale)
    if args.freeze_vision:
        model.lock_image_tower(unlocked_groups=0, freeze_bn_stats=True)
    if args.freeze_text:
        model.lock_text_tower(unlocked_layers=0, freeze_layer_norm=True)

    per_epoch = snapshot.size("train") // world // args.batch_size // args.accum  # optimizer steps per epoch
    if per_epoch == 0:
        raise UsageError(f"The train split has {snapshot.size('train')} samples: fewer than one step of "
                         f"batch-size x accum x processes = {args.batch_size * args.accum * world}.")
    total = per_epoch * args.epochs
    optimizer = torch.optim.AdamW(param_groups(model, args.wd), lr=args.lr, betas=(0.9, 0.98), eps=1e-6)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(args.warmup, total))
    amp = bool(args.amp) and device.startswith("cuda")
    if args.amp and not amp and main:
        log.info("--amp is for CUDA: training in fp32 on the CPU.")
    scaler = torch.amp.GradScaler("cuda", enabled=amp)

    def autocast():
        return torch.autocast("cuda", dtype=torch.float16) if amp else nullcontext()

    step = 0
    if checkpoint:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        scaler.load_state_dict(checkpoint["scaler"])
        step = checkpoint["step"]
        set_rng_state(checkpoint["rng"][rank] if isinstance(checkpoint["rng"], list) else checkpoint["rng"])
        if main:
            log.info("resumed %s at step %d of %d", run.path, step, total)

    raw_model = model
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[local_rank] if device.startswith("cuda") else None)
    from open_clip.loss import ClipLoss

    loss_fn = ClipLoss(local_loss=False, gather_with_grad=True, cache_labels=True, rank=rank, world_size=world)

    def save(epoch_done: int | None) -> None:
        rng = rng_state()
        if world > 1:
            everyone = [None] * world
            dist.all_gather_object(everyone, rng)
            rng = everyone
        if main:
            run.save_checkpoint({"model": raw_model.state_dict(), "optimizer": optimizer.state_dict(),
                                 "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(), "rng": rng,
                                 "step": step, "epoch": step // per_epoch, "world_size": world,
                                 "samples_per_step": args.batch_size * args.accum * world}, epoch_done)
            run.update(steps_done=step, epochs_done=step // per_epoch)

    model.train()
    started, seen = time.perf_counter(), 0
    last_time, last_seen = started, 0
    while step < total:
        epoch, done_in_epoch = divmod(step, per_epoch)
        batches = iter(shards.loader(snapshot, "train", preprocess_train, tokenizer, args.batch_size,
                                     shuffle_buffer=args.shuffle_buffer, seed=args.seed, num_workers=args.workers,
                                     rank=rank, world_size=world, start_step=done_in_epoch * args.accum, epoch=epoch))
        losses = []
        for _ in range(done_in_epoch, per_epoch):
            micro = [next(batches) for _ in range(args.accum)]
            loss = train_step(model, raw_model, micro, loss_fn, optimizer, scaler, autocast, device)
            scheduler.step()
            step += 1
            seen += sum(len(b["image_id"]) for b in micro) * world
            losses.append(loss)
            if main and step % args.log_every == 0:
                now = time.perf_counter()
                rate = (seen - last_seen) / (now - last_time)  # since the last line, data waits included
                last_time, last_seen = now, seen
                log.info("epoch %d step %d/%d loss %.4f lr %.2e logit scale %.1f %.1f samples/s", epoch, step, total,
                         loss, scheduler.get_last_lr()[0], raw_model.logit_scale.exp().item(), rate)
            if args.checkpoint_every and step % args.checkpoint_every == 0 and step % per_epoch:
                save(None)
            if args.stop_after and step >= args.stop_after and step < total:
                save(None)
                if main:
                    log.info("stopped after step %d (--stop-after); --resume %s continues", step, run.path)
                return run.path
        del batches
        epoch_done = step // per_epoch
        if main:
            run.log_metrics(epoch_done, step, "train", {"loss": float(np.mean(losses)) if losses else float("nan"),
                                                        "lr": scheduler.get_last_lr()[0],
                                                        "logit_scale": raw_model.logit_scale.exp().item()})
            if args.eval_split and args.eval_split in snapshot.splits:
                raw_model.eval()
                img, txt, owner = embed_split(raw_model, snapshot, args.eval_split, preprocess_val, tokenizer, device)
                metrics = dict(retrieval_recall(img.numpy(), txt.numpy(), owner.numpy()).scores)
                metrics["mean_recall"] = float(np.mean(list(metrics.values())))
                raw_model.train()
                run.log_metrics(epoch_done, step, args.eval_split, metrics)
                log.info("epoch %d %s %s", epoch_done, args.eval_split,
                         " ".join(f"{k} {v:.3f}" for k, v in metrics.items()))
        save(epoch_done)

    if main:
        save_model(raw_model, name, cfg, run.path / "model", tokenizer)
        run.update(samples_per_second=round(seen / (time.perf_counter() - started), 2))
        run.finish("finished")
        log.info("finished: %s", run.path)
    if world > 1:
        dist.barrier()
    return run.path


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    args = parse_args(argv)
    try:
        path = train(args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
