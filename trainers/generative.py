"""The generative baseline: a photo in, a comment out (issue 13, item 3).

ClipCap (rmokady/CLIP_prefix_caption, Mokady et al. 2021): an image encoder from open_clip's
factory turns a photo into one vector, a mapper turns that vector into `prefix_length` embeddings
of a causal language model from Hugging Face transformers (GPT-2 class), and the language model
learns to continue that prefix with the photo's comment. The loss counts only the comment's tokens
(and the end-of-text token after it), never the prefix.

Two shapes, as in ClipCap:
  --mapper mlp          an MLP (Linear-Tanh-Linear) to the prefix; the LM is tuned (its default)
  --mapper transformer  a transformer over learned prefix constants; the LM is frozen (its default)
The image encoder is tuned unless --freeze-vision.

Models are configuration, never downloaded here (HF_HUB_OFFLINE=1 unless the environment says 0):
  --vision NAME [--pretrained TAG_OR_PATH]  any open_clip model (ViT, ConvNeXt, timm's Swin...)
  --vision-config JSON                      or an open_clip model config (a file or inline JSON)
  --lm gpt2 | skt/kogpt2-base-v2 | PATH    a causal LM by Hugging Face name or local folder
  --lm tiny                                 a 2-layer GPT-2 with a byte-level BPE tokenizer
                                            trained on the snapshot's training comments (tests)

One run writes a run folder (trainers/runs.py): run.json, metrics.csv, checkpoints/ (resume with
--resume RUN_DIR, exactly: model, optimizer, schedule, scaler, RNG and data position) and model/:
  caption.json   how to rebuild the model (vision, mapper, prefix length, LM settings)
  lm/            the LM's config and tokenizer (save_pretrained): no download needed to load it
  model.pt       every weight (vision, mapper, LM) as one state dict, written when training ends
`load(run_dir)` gives a CaptionModel with .generate() (greedy, beam, nucleus; repetition penalty)
and .perplexity(). Read top to bottom: options, the model, loading and saving, training, CLI.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
import warnings
from pathlib import Path

# Trainers run on machines that may not reach the internet: never hang trying it. A user who
# wants open_clip tags or Hugging Face names downloaded sets HF_HUB_OFFLINE=0 themselves.
OFFLINE = os.environ.setdefault("HF_HUB_OFFLINE", "1").upper() in {"1", "ON", "YES", "TRUE"}

import huggingface_hub.constants  # noqa: E402
import numpy as np  # noqa: E402
import open_clip  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from trainers import data, runs  # noqa: E402

huggingface_hub.constants.HF_HUB_OFFLINE = OFFLINE  # also when it was imported before this module

KIND = "generative"
PAD = -100  # token ids are padded with this: no embedding row, ignored by the loss
TINY_LM = {"n_layer": 2, "n_embd": 64, "n_head": 2, "n_positions": 128}
TINY_VOCAB = 1000


class Unavailable(RuntimeError):
    """A named model, file or option cannot be used here. The CLI prints it on one line, exit 2."""


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
        return self.mapper(self.visual(images).float())

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
        if texts is None:
            raise Unavailable("--lm tiny builds its tokenizer from the training comments: none given")
        tokenizer = tiny_tokenizer(texts)
        config = GPT2Config(vocab_size=len(tokenizer), bos_token_id=tokenizer.eos_token_id,
                            eos_token_id=tokenizer.eos_token_id, **TINY_LM)
        return GPT2LMHeadModel(config), tokenizer
    try:
        tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=OFFLINE)
        lm = AutoModelForCausalLM.from_pretrained(name, local_files_only=OFFLINE)
    except OSError:
        raise Unavailable(
            f"language model {name!r} is not on this machine and cannot be downloaded here: pass --lm "
            "a local folder holding it (save_pretrained), or --lm tiny") from None
    if tokenizer.eos_token_id is None and "</s>" in tokenizer.get_vocab():
        tokenizer.eos_token = "</s>"  # skt/kogpt2-base-v2's tokenizer names no special tokens
    if tokenizer.eos_token_id is None:
        raise Unavailable(f"the tokenizer of {name!r} has no end-of-text token")
    return lm, tokenizer


def vision_name(spec: dict) -> str:
    """Register an inline open_clip config (if any) and return the model name to build."""
    if spec.get("vision_config"):
        name = spec["vision"] or "generative-vision"
        open_clip.factory._MODEL_CONFIGS[name] = spec["vision_config"]  # open_clip has no public dict API
        return name
    return spec["vision"]


def build_vision(spec: dict, pretrained: str | None):
    """(open_clip image tower, its eval preprocessing, its output width)."""
    name = vision_name(spec)
    if open_clip.get_model_config(name) is None:
        raise Unavailable(f"open_clip has no model {name!r}: see open_clip.list_models(), or pass --vision-config")
    if pretrained and pretrained not in open_clip.list_pretrained_tags_by_model(name) and not Path(pretrained).is_file():
        raise Unavailable(f"--pretrained {pretrained!r} is neither a tag of {name} "
                          f"({', '.join(open_clip.list_pretrained_tags_by_model(name)) or 'none'}) nor a file")
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=pretrained or None,
                                                                     pretrained_text=False)
    except RuntimeError as e:
        if "download" not in str(e).lower():
            raise
        raise Unavailable(f"open_clip weights {name}/{pretrained} are not on this machine and cannot be "
                          "downloaded here: pass --pretrained a local checkpoint file") from None
    return model.visual, preprocess, open_clip.get_model_config(name)["embed_dim"]


def build(spec: dict, lm_source, *, texts=None, pretrained: str | None = None) -> CaptionModel:
    """A CaptionModel from a spec. `lm_source` is the LM name (new run) or a saved lm/ folder."""
    visual, preprocess, d_image = build_vision(spec, pretrained)
    if isinstance(lm_source, Path):  # a saved model: config and tokenizer from disk, weights later
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
        tokenizer = AutoTokenizer.from_pretrained(lm_source, local_files_only=True)
        lm = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(lm_source, local_files_only=True))
    else:
        lm, tokenizer = build_lm(lm_source, texts)
    positions = getattr(lm.config, "max_position_embeddings", None)
    if positions and spec["prefix_length"] + spec["max_tokens"] > positions:
        raise Unavailable(f"--prefix-length {spec['prefix_length']} + --max-tokens {spec['max_tokens']} exceed the "
                          f"{positions} positions of the language model")
    return CaptionModel(visual, lm, tokenizer, preprocess, spec, d_image)


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
        raise Unavailable(f"{path} is neither a generative run folder nor its model/ folder (no caption.json)")
    spec = json.loads((folder / "caption.json").read_text())
    model = build(spec, folder / "lm")
    weights = folder / "model.pt"
    if weights.is_file():
        state = torch.load(weights, map_location="cpu", weights_only=True)
    elif (folder.parent / "checkpoints" / "last.pt").is_file():
        state = torch.load(folder.parent / "checkpoints" / "last.pt", map_location="cpu", weights_only=False)["model"]
    else:
        raise Unavailable(f"{folder} has no weights yet (model.pt or ../checkpoints/last.pt)")
    model.load_state_dict(state)
    return model.to(device).eval()


# ------------------------------------------------------------------------------------------------
# Training


def rng_state() -> dict:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def set_rng_state(state: dict):
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@torch.no_grad()
def evaluate_loss(model, snapshot, split, config, autocast) -> float:
    """Mean NLL per text token over a whole split."""
    model.eval()
    nll, count = 0.0, 0
    for batch in data.loader(snapshot, split, model.preprocess, model.tokenize, config["batch_size"],
                             num_workers=config["workers"]):
        with autocast():
            s, n = model(batch["image"].to(model.device), batch["text"].to(model.device))
        nll, count = nll + s.item(), count + n.item()
    model.train()
    return nll / max(count, 1)


def train(config: dict, *, resume: str | None = None) -> Path:
    """Train (or resume) one run; returns its folder."""
    from transformers import get_cosine_schedule_with_warmup

    snapshot = data.open_snapshot(config["snapshot"])
    if "train" not in snapshot.splits:
        raise Unavailable(f"snapshot {config['snapshot']} has no train split")
    device = torch.device(config["device"])
    if device.type == "cuda" and not torch.cuda.is_available():
        raise Unavailable("--device cuda, but torch sees no CUDA device here: pass --device cpu")
    if resume:
        run = runs.RunFolder.open(resume)
        checkpoint = run.load_checkpoint("last")
        run.update(status="running", finished_at=None)
        model = build(json.loads((run.model_dir / "caption.json").read_text()), run.model_dir / "lm")
    else:
        torch.manual_seed(config["seed"])
        random.seed(config["seed"])
        np.random.seed(config["seed"])
        spec = {key: config[key] for key in ("vision", "vision_config", "pretrained", "lm", "mapper", "prefix_length",
                                              "mapper_layers", "freeze_vision", "freeze_lm", "max_tokens")}
        texts = snapshot.manifest.loc[snapshot.manifest["split"] == "train", "text"].tolist()
        model = build(spec, config["lm"], texts=texts, pretrained=config["pretrained"])
        run = runs.new_run(config["runs_root"], KIND, config, snapshot, run_name=config["run_name"],
                           model={"vision": config["vision"], "text": config["lm"], "pretrained": config["pretrained"]},
                           device=device.type)
        save_spec(model, run.model_dir)
        checkpoint = None
    model.to(device).train()

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config["lr"], weight_decay=config["weight_decay"])
    batches = len(data.loader(snapshot, "train", None, None, config["batch_size"]))  # micro-batches an epoch
    if batches == 0:
        raise Unavailable(f"the train split has {snapshot.size('train')} comments: fewer than one batch "
                          f"of {config['batch_size']}")
    steps_per_epoch = math.ceil(batches / config["accum"])
    scheduler = get_cosine_schedule_with_warmup(optimizer, config["warmup"], steps_per_epoch * config["epochs"])
    use_amp = config["amp"] and device.type == "cuda"
    dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and dtype == torch.float16)

    def autocast():
        return torch.autocast(device.type, dtype=dtype, enabled=use_amp)

    epoch, batch_in_epoch, step = 0, 0, 0  # where training stands: epoch, micro-batch, optimizer step
    total, tokens = 0.0, 0  # the epoch's summed token NLL and token count so far
    rng = None
    if checkpoint:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        scaler.load_state_dict(checkpoint["scaler"])
        epoch, batch_in_epoch, step = checkpoint["epoch"], checkpoint["batch_in_epoch"], checkpoint["step"]
        total, tokens = checkpoint["epoch_nll"]
        rng = checkpoint["rng"]

    def save(epoch_done: int | None):
        run.save_checkpoint({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                             "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(),
                             "rng": rng_state(), "epoch": epoch, "batch_in_epoch": batch_in_epoch,
                             "step": step, "epoch_nll": (total, tokens), "config": config}, epoch_done)

    print(f"{run.path.name}: {snapshot.size('train')} training comments, {steps_per_epoch} steps an epoch, "
          f"{sum(p.numel() for p in params):,} trained parameters, {device}{', amp' if use_amp else ''}",
          file=sys.stderr)
    try:
        while epoch < config["epochs"]:
            started, first_batch = time.time(), batch_in_epoch
            stream = data.loader(snapshot, "train", model.preprocess, model.tokenize, config["batch_size"],
                                 shuffle_buffer=config["shuffle_buffer"], seed=config["seed"], epoch=epoch,
                                 num_workers=config["workers"], start_step=batch_in_epoch)
            stream = iter(stream)  # a DataLoader draws its seed from torch's RNG here, every epoch
            if rng:  # resuming: the RNG as it was after that draw, so dropout draws as it would have
                set_rng_state(rng)
                rng = None
            for batch in stream:
                with autocast():
                    nll, count = model(batch["image"].to(device), batch["text"].to(device))
                    loss = nll / count
                scaler.scale(loss / config["accum"]).backward()
                total, tokens = total + nll.item(), tokens + count.item()
                batch_in_epoch += 1
                if batch_in_epoch % config["accum"] and batch_in_epoch < batches:
                    continue
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(params, config["clip"])
                scaler.step(optimizer)
                scaler.update()
                optimizer.zero_grad(set_to_none=True)
                scheduler.step()
                step += 1
                if config["log_every"] and step % config["log_every"] == 0:
                    run.log_metrics(epoch + 1, step, "train", {"batch_loss": loss.item(), "lr": scheduler.get_last_lr()[0]})
                if config["stop_after_steps"] and step >= config["stop_after_steps"]:
                    save(None)
                    print(f"stopped after {step} steps as asked; resume with --resume {run.path}", file=sys.stderr)
                    return run.path
            epoch, batch_in_epoch = epoch + 1, 0
            seconds = time.time() - started
            metrics = {"loss": total / max(tokens, 1), "seconds": seconds,
                       "comments_per_second": (batches - first_batch) * config["batch_size"] / seconds}
            total, tokens = 0.0, 0
            run.log_metrics(epoch, step, "train", metrics)
            if "val" in snapshot.splits and snapshot.size("val"):
                val = evaluate_loss(model, snapshot, "val", config, autocast)
                run.log_metrics(epoch, step, "val", {"loss": val, "perplexity": math.exp(val)})
                metrics["val_perplexity"] = math.exp(val)
            save(epoch)
            run.update(epochs_done=epoch, steps_done=step)
            print(f"epoch {epoch}: " + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()), file=sys.stderr)
    except BaseException:
        run.finish("failed")
        raise
    torch.save(model.state_dict(), run.model_dir / "model.pt")
    run.finish("finished")
    return run.path


# ------------------------------------------------------------------------------------------------
# Command line


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m trainers.generative", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--snapshot", help="snapshot folder or s3:// url (required unless --resume)")
    p.add_argument("--runs-root", help="folder the run folder is made in (required unless --resume)")
    p.add_argument("--run-name", help="the run folder's name (default: generative-<UTC time>-<hex>)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue this run from its last checkpoint")
    g = p.add_argument_group("model")
    g.add_argument("--vision", default="ViT-B-32", help="open_clip model name (default ViT-B-32)")
    g.add_argument("--vision-config", metavar="JSON",
                   help="an open_clip model config instead (a .json file or inline JSON); --vision names it")
    g.add_argument("--pretrained", help="open_clip pretrained tag or local checkpoint for the image encoder")
    g.add_argument("--lm", default="gpt2", help="causal LM: Hugging Face name, local folder, or 'tiny' (default gpt2)")
    g.add_argument("--mapper", choices=["mlp", "transformer"], default="mlp")
    g.add_argument("--prefix-length", type=int, help="prefix embeddings (default, ClipCap's: 10 mlp, 40 transformer)")
    g.add_argument("--mapper-layers", type=int, default=8, help="transformer mapper layers (default 8)")
    g.add_argument("--freeze-vision", action=argparse.BooleanOptionalAction, default=False)
    g.add_argument("--freeze-lm", action=argparse.BooleanOptionalAction, default=None,
                   help="default: tuned with --mapper mlp, frozen with --mapper transformer (ClipCap)")
    g.add_argument("--max-tokens", type=int, default=64, help="comment tokens kept, end-of-text included")
    t = p.add_argument_group("training")
    t.add_argument("--epochs", type=int, default=10)
    t.add_argument("--batch-size", type=int, default=40, help="comments per micro-batch (default 40, ClipCap's)")
    t.add_argument("--accum", type=int, default=1, help="micro-batches per optimizer step")
    t.add_argument("--lr", type=float, default=2e-5)
    t.add_argument("--weight-decay", type=float, default=0.01)
    t.add_argument("--warmup", type=int, default=5000, help="warm-up steps of the cosine schedule")
    t.add_argument("--clip", type=float, default=1.0, help="gradient norm clip")
    t.add_argument("--amp", action=argparse.BooleanOptionalAction, default=True, help="mixed precision on cuda")
    t.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    t.add_argument("--workers", type=int, default=2, help="data loader processes")
    t.add_argument("--shuffle-buffer", type=int, default=1000)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--log-every", type=int, default=50, help="log the training loss every N steps (0: per epoch only)")
    t.add_argument("--stop-after-steps", type=int, default=0, help="stop (with a checkpoint) after N optimizer steps")
    return p


def config_from(args) -> dict:
    config = {k: v for k, v in vars(args).items() if k != "resume"}
    if not config["snapshot"] or not config["runs_root"]:
        raise Unavailable("--snapshot and --runs-root are required (or --resume RUN_DIR)")
    if config["vision_config"]:
        text = config["vision_config"]
        try:
            config["vision_config"] = json.loads(Path(text).read_text() if Path(text).is_file() else text)
        except (OSError, ValueError) as e:
            raise Unavailable(f"--vision-config is neither a JSON file nor JSON: {e}") from None
        if not isinstance(config["vision_config"], dict) or not {"embed_dim", "vision_cfg", "text_cfg"} <= config[
                "vision_config"].keys():
            raise Unavailable("--vision-config needs open_clip's embed_dim, vision_cfg and text_cfg (a small "
                              "text tower: open_clip builds one, the generative model drops it)")
    if config["freeze_lm"] is None:
        config["freeze_lm"] = config["mapper"] == "transformer"
    if config["prefix_length"] is None:
        config["prefix_length"] = 40 if config["mapper"] == "transformer" else 10
    for key in ("epochs", "batch_size", "accum", "prefix_length", "max_tokens"):
        if config[key] < 1:
            raise Unavailable(f"--{key.replace('_', '-')} must be at least 1")
    return config


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.resume:
            config = runs.RunFolder.open(args.resume).info["config"]
            config["stop_after_steps"] = args.stop_after_steps
            path = train(config, resume=args.resume)
        else:
            path = train(config_from(args))
    except (Unavailable, data.SnapshotError, FileNotFoundError, FileExistsError) as e:
        print(f"trainers.generative: error: {e}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
