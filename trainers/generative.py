"""The generative baseline: a photo in, a comment out (issue 13, item 3).

    python -m trainers.generative --snapshot exports/food/v3 --runs-root runs --vision ViT-B-32 \\
        --pretrained /models/vit-b-32.bin --lm /models/kogpt2-base-v2 --epochs 10 --amp
    torchrun --nproc_per_node 4 -m trainers.generative --snapshot ...      # DistributedDataParallel
    python -m trainers.generative --resume runs/generative-20261129-101500-a1b2c3

ClipCap (rmokady/CLIP_prefix_caption, Mokady et al. 2021): an image encoder from open_clip's
factory turns a photo into one vector, a mapper turns that vector into `prefix_length` embeddings
of a causal language model from Hugging Face transformers (GPT-2 class), and the language model
learns to continue that prefix with the photo's comment. The loss counts only the comment's tokens
(and the end-of-text token after it), never the prefix.

Two shapes, as in ClipCap:
  --mapper mlp          an MLP (Linear-Tanh-Linear), prefix 10; the LM is tuned
  --mapper transformer  a transformer over learned prefix constants, prefix 40; the LM is frozen
(--prefix-length and --freeze-lm/--no-freeze-lm override). The image encoder is tuned unless
--freeze-vision.

Models are configuration, never downloaded here (HF_HUB_OFFLINE=1 unless the environment says 0):
  --vision NAME | timm:NAME | --config JSON   the image tower, chosen as trainers.retrieval does
  --pretrained TAG_OR_PATH                    open_clip weights for it (a tag or a local file)
  --lm gpt2 | skt/kogpt2-base-v2 | PATH      a causal LM by Hugging Face name or local folder
  --lm tiny                                   a 2-layer GPT-2 with a byte-level BPE tokenizer
                                              trained on the snapshot's training comments (tests)
What is missing is said in one line (exit status 2).

One optimizer step is --accum micro-batches of --batch-size comments in every process; AdamW, a
linear warm-up then a cosine schedule, gradient clipping, AMP on CUDA (--amp: bfloat16 where the
GPU has it, else float16 with a gradient scaler). The run folder (trainers/runs.py) gets run.json,
metrics.csv (train loss every --log-every steps and per epoch, val loss and perplexity per epoch),
checkpoints/ (model, optimizer, schedule, scaler, RNG and data position: --resume makes exactly
the steps the run would have made) and model/:
  caption.json   how to rebuild the model (the open_clip config, mapper, prefix length, LM settings)
  lm/            the LM's config and tokenizer (save_pretrained): no download needed to load it
  model.pt       every weight (vision, mapper, LM) as one state dict, written when training ends
`load(run_dir)` gives a CaptionModel with .generate() (greedy, beam, nucleus; repetition penalty)
and .perplexity(). Read top to bottom: the model, building and loading it, training, command line.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import tempfile
import time
import warnings
from contextlib import nullcontext
from pathlib import Path

# Trainers run on machines that may not reach the internet: never hang trying it. A user who
# wants open_clip tags or Hugging Face names downloaded sets HF_HUB_OFFLINE=0 themselves.
OFFLINE = os.environ.setdefault("HF_HUB_OFFLINE", "1").upper() in {"1", "ON", "YES", "TRUE"}

import huggingface_hub.constants  # noqa: E402
import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from trainers import data, retrieval  # noqa: E402
from trainers.retrieval import UsageError  # noqa: E402
from trainers.runs import RunFolder, new_run  # noqa: E402

huggingface_hub.constants.HF_HUB_OFFLINE = OFFLINE  # also when it was imported before this module

log = logging.getLogger("trainers.generative")

PAD = -100  # token ids are padded with this: no embedding row, ignored by the loss
TINY_LM = {"n_layer": 2, "n_embd": 64, "n_head": 2, "n_positions": 128}
TINY_VOCAB = 1000
# Options that describe the run (run.json's config); the others say where and whether to stop.
NOT_CONFIG = ("resume", "runs_root", "run_name", "stop_after", "device", "workers", "snapshot")


# ------------------------------------------------------------------------------------------------
# The model


class MLPMapper(nn.Module):
    """ClipCap's MLP: image vector -> prefix_length LM embeddings (hidden width half the output)."""

    def __init__(self, d_image: int, d_lm: int, prefix_length: int):
        super().__init__()
        self.prefix_length = prefix_length
        hidden = d_lm * prefix_length // 2
        self.net = nn.Sequential(nn.Linear(d_image, hidden), nn.Tanh(),
                                 nn.Linear(hidden, d_lm * prefix_length))

    def forward(self, x):
        return self.net(x).view(x.shape[0], self.prefix_length, -1)


class TransformerMapper(nn.Module):
    """ClipCap's transformer mapper: the image vector becomes prefix_length tokens, learned
    constants are appended, a transformer mixes them, and the constants' outputs are the prefix."""

    def __init__(self, d_image: int, d_lm: int, prefix_length: int, layers: int):
        super().__init__()
        self.prefix_length = prefix_length
        self.linear = nn.Linear(d_image, prefix_length * d_lm)
        self.constants = nn.Parameter(torch.randn(prefix_length, d_lm))
        heads = 8 if d_lm % 8 == 0 else 1
        layer = nn.TransformerEncoderLayer(d_lm, heads, dim_feedforward=2 * d_lm, dropout=0.0,
                                           batch_first=True, norm_first=True)
        self.transformer = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)

    def forward(self, x):
        x = self.linear(x).view(x.shape[0], self.prefix_length, -1)
        x = torch.cat([x, self.constants.expand(x.shape[0], -1, -1)], dim=1)
        return self.transformer(x)[:, self.prefix_length:]


class CaptionModel(nn.Module):
    """visual (open_clip image tower) -> mapper -> prefix -> lm (transformers causal LM).

    Also carries what using it needs: the tokenizer, the image preprocessing, and `spec` (the
    caption.json that rebuilds it)."""

    def __init__(self, visual, lm, tokenizer, preprocess, spec: dict, d_image: int):
        super().__init__()
        self.visual, self.lm, self.tokenizer, self.preprocess, self.spec = visual, lm, tokenizer, preprocess, spec
        d_lm = lm.get_input_embeddings().embedding_dim
        if spec["mapper"] == "mlp":
            self.mapper = MLPMapper(d_image, d_lm, spec["prefix_length"])
        else:
            self.mapper = TransformerMapper(d_image, d_lm, spec["prefix_length"], spec["mapper_layers"])
        self.eos = tokenizer.eos_token_id
        for part, frozen in ((self.visual, spec["freeze_vision"]), (self.lm, spec["freeze_lm"])):
            part.requires_grad_(not frozen)

    def train(self, mode: bool = True):
        # A frozen part stays in eval mode (no dropout), as ClipCap keeps its frozen GPT-2.
        super().train(mode)
        for part, frozen in ((self.visual, self.spec["freeze_vision"]), (self.lm, self.spec["freeze_lm"])):
            if frozen:
                part.eval()
        return self

    @property
    def device(self):
        return next(self.parameters()).device

    def tokenize(self, texts: list[str]) -> torch.Tensor:
        """Comments -> token ids [B, T], each ending with the end-of-text token, padded with PAD."""
        ids = [self.tokenizer(t, add_special_tokens=False)["input_ids"][: self.spec["max_tokens"] - 1] + [self.eos]
               for t in texts]
        out = torch.full((len(ids), max(map(len, ids))), PAD, dtype=torch.long)
        for i, row in enumerate(ids):
            out[i, : len(row)] = torch.tensor(row)
        return out

    def prefix(self, images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad() if self.spec["freeze_vision"] else nullcontext():  # frozen: keep no graph
            features = self.visual(images)
        return self.mapper(features.float())

    def forward(self, images: torch.Tensor, ids: torch.Tensor):
        """Returns (summed negative log-likelihood of the text tokens, number of text tokens)."""
        prefix = self.prefix(images)
        mask = ids != PAD
        tokens = self.lm.get_input_embeddings()(ids.clamp(min=0))
        embeds = torch.cat([prefix.to(tokens.dtype), tokens], dim=1)
        attention = torch.cat([torch.ones(prefix.shape[:2], dtype=torch.long, device=ids.device),
                               mask.long()], dim=1)
        logits = self.lm(inputs_embeds=embeds, attention_mask=attention).logits
        # The last prefix position predicts the first text token; the last text token predicts nothing.
        logits = logits[:, prefix.shape[1] - 1: -1]
        nll = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), ids.reshape(-1),
                              ignore_index=PAD, reduction="sum")
        return nll, mask.sum()

    def _images(self, images) -> torch.Tensor:
        return torch.stack([self.preprocess(im.convert("RGB")) for im in images]).to(self.device)

    @torch.no_grad()
    def perplexity(self, images, texts, batch_size: int = 32) -> float:
        """Token-level perplexity of `texts` given their photos: exp(total NLL / total tokens)."""
        if len(images) != len(texts) or not texts:
            raise ValueError(f"perplexity needs one photo per text, and texts: got {len(images)} and {len(texts)}")
        was_training = self.training
        self.eval()
        nll, count = 0.0, 0
        for i in range(0, len(texts), batch_size):
            s, n = self(self._images(images[i: i + batch_size]),
                        self.tokenize(texts[i: i + batch_size]).to(self.device))
            nll, count = nll + s.item(), count + n.item()
        self.train(was_training)
        return math.exp(nll / count)

    @torch.no_grad()
    def generate(self, images, *, strategy: str = "greedy", num_beams: int = 3, top_p: float = 0.9,
                 temperature: float = 1.0, repetition_penalty: float = 1.2, max_new_tokens: int = 30,
                 seed: int = 0, batch_size: int = 32) -> list[str]:
        """One comment per photo. transformers' `generate` from the prefix embeddings
        (`inputs_embeds`, no prompt tokens): greedy, beam search, or nucleus sampling (top_k off);
        the repetition penalty (CTRL's: divide a positive logit, multiply a negative one) acts on
        the tokens generated so far."""
        from transformers import GenerationConfig

        modes = {"greedy": {"do_sample": False, "num_beams": 1},
                 "beam": {"do_sample": False, "num_beams": num_beams, "early_stopping": True},
                 "nucleus": {"do_sample": True, "top_p": top_p, "top_k": 0, "temperature": temperature}}
        if strategy not in modes:
            raise ValueError(f"unknown strategy {strategy!r}: choose greedy, beam or nucleus")
        config = GenerationConfig(max_new_tokens=max_new_tokens, repetition_penalty=repetition_penalty,
                                  eos_token_id=self.eos, pad_token_id=self.eos, **modes[strategy])
        was_training = self.training
        self.eval()
        texts = []
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*repetition_penalty.*inputs_embeds.*")
            torch.manual_seed(seed)
            for i in range(0, len(images), batch_size):
                prefix = self.prefix(self._images(images[i: i + batch_size]))
                prefix = prefix.to(self.lm.get_input_embeddings().weight.dtype)
                attention = torch.ones(prefix.shape[:2], dtype=torch.long, device=prefix.device)
                out = self.lm.generate(inputs_embeds=prefix, attention_mask=attention, generation_config=config)
                texts += [t.strip() for t in self.tokenizer.batch_decode(out, skip_special_tokens=True)]
        self.train(was_training)
        return texts


# ------------------------------------------------------------------------------------------------
# Building, saving and loading


def tiny_tokenizer(texts, vocab_size: int = TINY_VOCAB):
    """A byte-level BPE (GPT-2's scheme: any text encodes, nothing is unknown) trained on `texts`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from tokenizers import trainers as bpe
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(texts, bpe.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>"],
                                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                                  show_progress=False))
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>",
                                   eos_token="<|endoftext|>", pad_token="<|endoftext|>")


def build_lm(name: str, texts=None):
    """(language model, tokenizer) for `name`: "tiny", a Hugging Face name, or a local folder."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, GPT2Config, GPT2LMHeadModel

    if name == "tiny":
        tokenizer = tiny_tokenizer(texts)
        config = GPT2Config(vocab_size=len(tokenizer), bos_token_id=tokenizer.eos_token_id,
                            eos_token_id=tokenizer.eos_token_id, **TINY_LM)
        return GPT2LMHeadModel(config), tokenizer
    try:
        tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=OFFLINE)
        lm = AutoModelForCausalLM.from_pretrained(name, local_files_only=OFFLINE)
    except OSError:
        raise UsageError(
            f"The language model {name!r} is not on this machine and cannot be downloaded here: pass --lm a "
            "local folder holding it (what save_pretrained writes), or --lm tiny.") from None
    if tokenizer.eos_token_id is None and "</s>" in tokenizer.get_vocab():
        tokenizer.eos_token = "</s>"  # skt/kogpt2-base-v2's tokenizer names no special tokens
    if tokenizer.eos_token_id is None:
        raise UsageError(f"The tokenizer of {name!r} has no end-of-text token.")
    return lm, tokenizer


def build(spec: dict, lm_source, *, texts=None, pretrained: str | None = None) -> CaptionModel:
    """A CaptionModel from a spec (caption.json). `lm_source` is the LM to load (a name, a folder or
    "tiny", built from `texts`), or a saved lm/ folder as a Path: its config and tokenizer only,
    the weights to be loaded after. The image tower comes from trainers.retrieval's factory."""
    name, cfg = spec["vision_name"], spec["open_clip_config"]
    if not spec["builtin"]:
        with tempfile.TemporaryDirectory() as tmp:  # open_clip registers a config from a file
            retrieval.register_config(name, cfg, Path(tmp))
    clip, _, preprocess, _ = retrieval.create_model(name, cfg, spec["builtin"], pretrained, "cpu")
    if isinstance(lm_source, Path):
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
        tokenizer = AutoTokenizer.from_pretrained(lm_source, local_files_only=True)
        lm = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(lm_source, local_files_only=True))
    else:
        lm, tokenizer = build_lm(lm_source, texts)
    positions = getattr(lm.config, "max_position_embeddings", None)
    if positions and spec["prefix_length"] + spec["max_tokens"] > positions:
        raise UsageError(f"--prefix-length {spec['prefix_length']} + --max-tokens {spec['max_tokens']} exceed the "
                         f"{positions} positions of the language model.")
    return CaptionModel(clip.visual, lm, tokenizer, preprocess, spec, cfg["embed_dim"])


def save_spec(model: CaptionModel, folder: Path):
    """model/caption.json and model/lm/ (config and tokenizer): all but the weights."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "caption.json").write_text(json.dumps(model.spec, indent=2, ensure_ascii=False) + "\n")
    model.lm.config.save_pretrained(folder / "lm")
    model.tokenizer.save_pretrained(folder / "lm")


def load(run_dir_or_model_path, device: str = "cpu") -> CaptionModel:
    """The trained model of a run folder (or of its model/ folder), in eval mode on `device`.
    Before training has finished, the weights come from checkpoints/last.pt."""
    path = Path(run_dir_or_model_path)
    folder = path / "model" if (path / "model" / "caption.json").is_file() else path
    if not (folder / "caption.json").is_file():
        raise FileNotFoundError(f"{path} is neither a generative run folder nor its model/ folder (no caption.json).")
    model = build(json.loads((folder / "caption.json").read_text()), folder / "lm")
    if (folder / "model.pt").is_file():
        state = torch.load(folder / "model.pt", map_location="cpu", weights_only=True)
    elif (folder.parent / "checkpoints" / "last.pt").is_file():
        state = torch.load(folder.parent / "checkpoints" / "last.pt", map_location="cpu", weights_only=False)["model"]
    else:
        raise FileNotFoundError(f"{folder} holds no weights yet (model.pt, or ../checkpoints/last.pt).")
    model.load_state_dict(state)
    return model.to(device).eval()


# ------------------------------------------------------------------------------------------------
# Training


@torch.no_grad()
def evaluate_loss(model, snapshot, split, args, autocast) -> float:
    """Mean negative log-likelihood per text token over a whole split."""
    model.eval()
    nll, count = 0.0, 0
    for batch in data.loader(snapshot, split, model.preprocess, model.tokenize, args.batch_size,
                             num_workers=args.workers):
        with autocast():
            s, n = model(batch["image"].to(model.device), batch["text"].to(model.device))
        nll, count = nll + s.item(), count + n.item()
    model.train()
    return nll / max(count, 1)


def train(args: argparse.Namespace) -> Path:
    rank, world, local_rank = retrieval.distributed()
    main = rank == 0
    if args.device == "auto":
        device = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    elif args.device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is visible here.")
    else:
        device = f"cuda:{local_rank}" if args.device == "cuda" else args.device
    if device.startswith("cuda"):
        torch.cuda.set_device(device)

    # The run: the one being resumed (its config wins), or a new one once its model is built.
    checkpoint, run = None, None
    if args.resume:
        run = RunFolder.open(args.resume)
        info = run.info
        vars(args).update(info["config"])
        args.snapshot = args.snapshot or info["snapshot"]["path"]
        if (run.path / "checkpoints" / "last.pt").is_file():
            checkpoint = run.load_checkpoint("last")
    snapshot = data.open_snapshot(args.snapshot)
    if "train" not in snapshot.splits:
        raise UsageError(f"The snapshot {snapshot.path} has no train split.")
    if args.resume and snapshot.checksum != info["snapshot"]["checksum"]:
        raise UsageError(f"{snapshot.path} is not the snapshot the run trained on (its SHA256SUMS differs).")

    retrieval.set_seed(args.seed)
    if args.resume:
        if checkpoint is None:
            raise UsageError(f"{run.path} has no checkpoint yet: start a new run instead.")
        if checkpoint["world_size"] != world:
            raise UsageError(f"{run.path} ran in {checkpoint['world_size']} process(es): resume it with as many.")
        model = build(json.loads((run.model_dir / "caption.json").read_text()), run.model_dir / "lm")
    else:
        name, cfg, builtin = retrieval.model_config(args.vision, args.config, "open_clip")
        spec = {"vision_name": name, "open_clip_config": cfg, "builtin": builtin,
                **{key: getattr(args, key) for key in ("mapper", "prefix_length", "mapper_layers", "freeze_vision",
                                                       "freeze_lm", "max_tokens")}}
        model, failed = None, None
        if main:  # builds the model with its pretrained weights (DDP gives them to the other processes)
            try:
                texts = snapshot.manifest.loc[snapshot.manifest["split"] == "train", "text"].tolist()
                model = build(spec, args.lm, texts=texts, pretrained=args.pretrained)
                run = new_run(args.runs_root, "generative",
                              {k: v for k, v in vars(args).items() if k not in NOT_CONFIG}, snapshot,
                              run_name=args.run_name, world_size=world, device=device.split(":")[0],
                              model={"vision": args.vision or name, "text": args.lm, "pretrained": args.pretrained})
                save_spec(model, run.model_dir)
            except (UsageError, FileExistsError, ValueError) as exc:
                failed = exc
        if world > 1:  # every process writes into rank 0's folder, and takes its tokenizer
            holder = [str(run.path) if run else None]
            dist.broadcast_object_list(holder, src=0)
            if holder[0] is None and not main:
                raise UsageError("rank 0 could not start the run (it says why).")
            if not main:
                run = RunFolder(holder[0])
                model = build(spec, run.model_dir / "lm")
        if failed:
            raise UsageError(str(failed)) from None
    model.to(device).train()

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=args.wd)
    batches = len(data.loader(snapshot, "train", None, None, args.batch_size, rank=rank, world_size=world))
    if batches == 0:
        raise UsageError(f"The train split has {snapshot.size('train')} comments: fewer than one batch of "
                         f"{args.batch_size} in each of {world} processes.")
    per_epoch = math.ceil(batches / args.accum)  # optimizer steps an epoch (the last may take fewer batches)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, retrieval.lr_lambda(args.warmup, per_epoch * args.epochs))
    amp = bool(args.amp) and device.startswith("cuda")
    if args.amp and not amp and main:
        log.info("--amp is for CUDA: training in fp32 on the CPU.")
    dtype = torch.bfloat16 if amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=amp and dtype == torch.float16)

    def autocast():
        return torch.autocast("cuda", dtype=dtype) if amp else nullcontext()

    epoch, batch_in_epoch, step = 0, 0, 0  # where training stands: epoch, micro-batch, optimizer step
    total, tokens = 0.0, 0  # the epoch's summed token NLL and token count so far (this process)
    rng = None
    if checkpoint:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        scaler.load_state_dict(checkpoint["scaler"])
        epoch, batch_in_epoch, step = checkpoint["epoch"], checkpoint["batch_in_epoch"], checkpoint["step"]
        total, tokens = checkpoint["epoch_nll"]
        rng = checkpoint["rng"][rank]
        if main:
            run.update(status="running", finished_at=None)
            log.info("resumed %s at step %d of %d", run.path, step, per_epoch * args.epochs)
    raw_model = model
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[local_rank] if device.startswith("cuda") else None)

    def save(epoch_done: int | None):
        states = [None] * world
        if world > 1:
            dist.all_gather_object(states, retrieval.rng_state())
        else:
            states = [retrieval.rng_state()]
        if main:
            run.save_checkpoint({"model": raw_model.state_dict(), "optimizer": optimizer.state_dict(),
                                 "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(), "rng": states,
                                 "epoch": epoch, "batch_in_epoch": batch_in_epoch, "step": step,
                                 "epoch_nll": (total, tokens), "world_size": world}, epoch_done)
            run.update(epochs_done=epoch, steps_done=step)

    if main:
        log.info("%s: %d training comments, %d steps an epoch, %s trained parameters, %d process(es) on %s%s",
                 run.path.name, snapshot.size("train"), per_epoch, f"{sum(p.numel() for p in params):,}", world,
                 device.split(":")[0], ", amp" if amp else "")
    while epoch < args.epochs:
        started, first_batch = time.perf_counter(), batch_in_epoch
        stream = iter(data.loader(snapshot, "train", raw_model.preprocess, raw_model.tokenize, args.batch_size,
                                  shuffle_buffer=args.shuffle_buffer, seed=args.seed, epoch=epoch,
                                  num_workers=args.workers, rank=rank, world_size=world, start_step=batch_in_epoch))
        if rng:  # resuming: the RNG as it was after the data loader drew its seed from it (above)
            retrieval.set_rng_state(rng)
            rng = None
        for batch in stream:
            batch_in_epoch += 1
            last = batch_in_epoch % args.accum == 0 or batch_in_epoch == batches
            with nullcontext() if last or world == 1 else model.no_sync(), autocast():
                nll, count = model(batch["image"].to(device), batch["text"].to(device))
                loss = nll / count
            scaler.scale(loss / args.accum).backward()
            total, tokens = total + nll.item(), tokens + count.item()
            if not last:
                continue
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(params, args.clip)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
            step += 1
            if main and args.log_every and step % args.log_every == 0:
                run.log_metrics(epoch + 1, step, "train", {"batch_loss": loss.item(), "lr": scheduler.get_last_lr()[0]})
            if args.stop_after and step >= args.stop_after:
                save(None)
                if main:
                    log.info("stopped after step %d (--stop-after); --resume %s continues", step, run.path)
                return run.path
        del stream
        seconds = time.perf_counter() - started
        epoch, batch_in_epoch = epoch + 1, 0
        if main:
            metrics = {"loss": total / max(tokens, 1), "seconds": seconds,
                       "comments_per_second": (batches - first_batch) * args.batch_size * world / seconds}
            run.log_metrics(epoch, step, "train", metrics)
            if "val" in snapshot.splits and snapshot.size("val"):
                val = evaluate_loss(raw_model, snapshot, "val", args, autocast)
                metrics["val_perplexity"] = math.exp(val)
                run.log_metrics(epoch, step, "val", {"loss": val, "perplexity": math.exp(val)})
            log.info("epoch %d: %s", epoch, ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
        total, tokens = 0.0, 0
        save(epoch)

    if main:
        torch.save(raw_model.state_dict(), run.model_dir / "model.pt")
        run.finish("finished")
        log.info("finished: %s", run.path)
    if world > 1:
        dist.barrier()
    return run.path


# ------------------------------------------------------------------------------------------------
# Command line


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m trainers.generative", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--snapshot", help="the snapshot folder (local path or s3://bucket/prefix/<name>/v<N>)")
    p.add_argument("--runs-root", default="runs", help="where the run folder is made (default: runs)")
    p.add_argument("--run-name", help="the run folder's name (default: generative-<UTC time>-<6 hex>)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its last checkpoint, with its own config")
    model = p.add_argument_group("model")
    vision = model.add_mutually_exclusive_group()
    vision.add_argument("--vision", help="an open_clip model name (default ViT-B-32), or timm:<name>")
    vision.add_argument("--config", help="a whole open_clip model config: a JSON file or inline JSON")
    model.add_argument("--pretrained", help="an open_clip pretrained tag of --vision, or a local checkpoint file")
    model.add_argument("--lm", default="gpt2", help="the causal LM: a Hugging Face name, a local folder, or tiny")
    model.add_argument("--mapper", choices=["mlp", "transformer"], default="mlp")
    model.add_argument("--prefix-length", type=int, help="prefix embeddings (default ClipCap's: 10 mlp, 40 transformer)")
    model.add_argument("--mapper-layers", type=int, default=8, help="transformer mapper layers (default 8)")
    model.add_argument("--freeze-vision", action="store_true", help="train no image tower weights")
    model.add_argument("--freeze-lm", action=argparse.BooleanOptionalAction,
                       help="train no LM weights (default: tuned with --mapper mlp, frozen with transformer)")
    model.add_argument("--max-tokens", type=int, default=64, help="comment tokens kept, end-of-text included")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=40, help="comments per micro-batch per process (ClipCap's 40)")
    p.add_argument("--accum", type=int, default=1, help="micro-batches per optimizer step")
    p.add_argument("--lr", type=float, default=2e-5)
    p.add_argument("--wd", type=float, default=0.01, help="AdamW weight decay")
    p.add_argument("--warmup", type=int, default=5000, help="optimizer steps of linear warm-up before the cosine")
    p.add_argument("--clip", type=float, default=1.0, help="gradient norm clip")
    p.add_argument("--amp", action="store_true", help="mixed precision (CUDA only: bf16, or fp16 with a scaler)")
    p.add_argument("--shuffle-buffer", type=int, default=1000, help="samples in the shuffle buffer (0: export order)")
    p.add_argument("--workers", type=int, default=2, help="data loader processes per training process")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto (cuda when there is one), cpu or cuda")
    p.add_argument("--stop-after", type=int, default=0,
                   help="stop (with a checkpoint) after N optimizer steps in all; --resume continues")
    p.add_argument("--log-every", type=int, default=50, help="log the training loss every N steps (0: never)")
    args = p.parse_args(argv)
    for name in ("epochs", "batch_size", "accum", "mapper_layers", "max_tokens"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if not args.resume and not args.snapshot:
        p.error("--snapshot is required (or --resume RUN_DIR)")
    if args.freeze_lm is None:
        args.freeze_lm = args.mapper == "transformer"
    if args.prefix_length is None:
        args.prefix_length = 40 if args.mapper == "transformer" else 10
    if args.prefix_length < 1:
        p.error("--prefix-length must be at least 1")
    return args


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    args = parse_args(argv)
    try:
        path = train(args)
    except (UsageError, data.SnapshotError, FileNotFoundError, FileExistsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
