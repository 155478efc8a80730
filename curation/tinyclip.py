"""A tiny CLIP trained in seconds on generated scenes with Korean descriptions, for the tests and
the benchmark of the comment scores (curation.scores): coloured shapes drawn with Pillow ("빨간
동그라미", "파란 네모 두 개" ...), an open_clip model from a tiny config, a short contrastive
training on one CPU thread, saved as a local checkpoint the embedding steps load
(CURATION_EMBED_CHECKPOINT, with the model's config beside it as <name>.json, as the retrieval
trainer writes it).

Not for production: it knows 4 colours x 3 shapes x 2 counts. torch and open_clip are imported
inside the functions.
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

NAME = "scores-tiny-clip"
CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "head_width": 32, "patch_size": 8},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}
COLOURS = {"빨간": (220, 30, 30), "파란": (30, 60, 220), "초록": (30, 170, 60), "노란": (235, 210, 30)}
SHAPES = ("동그라미", "네모", "세모")
COUNTS = {1: ("{c} {s}", "{c} {s} 하나", "{c} {s}가 있어요"), 2: ("{c} {s} 두 개", "{c} {s}가 두 개", "{c} {s} 두 개가 있어요")}
CLASSES = [(c, s, n) for c in COLOURS for s in SHAPES for n in COUNTS]


@dataclass(frozen=True)
class Scene:
    cls: int      # index into CLASSES
    seed: int

    @property
    def colour(self) -> str:
        return CLASSES[self.cls][0]

    def description(self, variant: int | None = None) -> str:
        c, s, n = CLASSES[self.cls]
        templates = COUNTS[n]
        v = self.seed % len(templates) if variant is None else variant % len(templates)
        return templates[v].format(c=c, s=s)


def draw(scene: Scene, size: int = 64) -> Image.Image:
    """The scene: a grey-ish noisy background and 1 or 2 shapes of one colour."""
    rng = np.random.default_rng(scene.seed)
    colour_name, shape, count = CLASSES[scene.cls]
    base = rng.uniform(90, 200)
    bg = (np.full((size, size, 3), base) + rng.normal(0, 12, (size, size, 3))).clip(0, 255).astype(np.uint8)
    img = Image.fromarray(bg)
    d = ImageDraw.Draw(img)
    colour = tuple(int(np.clip(v + rng.normal(0, 15), 0, 255)) for v in COLOURS[colour_name])
    cells = [(0, 0), (size // 2, 0), (0, size // 2), (size // 2, size // 2)]
    for cx, cy in [cells[i] for i in rng.choice(4, count, replace=False)]:
        r = int(rng.uniform(0.28, 0.45) * size / 2)
        x, y = cx + size // 4 + int(rng.integers(-3, 4)), cy + size // 4 + int(rng.integers(-3, 4))
        if shape == "동그라미":
            d.ellipse((x - r, y - r, x + r, y + r), fill=colour)
        elif shape == "네모":
            d.rectangle((x - r, y - r, x + r, y + r), fill=colour)
        else:
            d.polygon([(x, y - r), (x - r, y + r), (x + r, y + r)], fill=colour)
    return img


def jpeg(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=92)
    return buf.getvalue()


def scenes(n: int, seed: int) -> list[Scene]:
    rng = np.random.default_rng(seed)
    return [Scene(int(rng.integers(len(CLASSES))), int(seed * 1_000_003 + i)) for i in range(n)]


def register() -> None:
    import open_clip

    if open_clip.get_model_config(NAME) is None:
        import tempfile

        path = Path(tempfile.mkdtemp()) / f"{NAME}.json"
        path.write_text(json.dumps(CONFIG))
        open_clip.add_model_config(path)


def train(steps: int = 160, batch: int = 64, seed: int = 0, threads: int = 1):
    """A tiny open_clip model trained on generated scenes (contrastive, AdamW). Returns (model,
    preprocess, tokenizer) in eval mode."""
    import open_clip
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    register()
    model, _train_tf, preprocess = open_clip.create_model_and_transforms(NAME, pretrained=None)
    tokenizer = open_clip.get_tokenizer(NAME)
    # Pre-render a pool of scenes once (drawing is the slow part on one core).
    pool = scenes(768, seed=seed + 7)
    images = torch.stack([preprocess(draw(s)) for s in pool])
    texts = [s.description() for s in pool]
    tokens = tokenizer(texts)
    # The token table (49408 x width) is most of the weights: left at its random start, the
    # training step is several times faster and the 100-odd tokens these texts use stay distinct.
    model.token_embedding.weight.requires_grad_(False)
    loss_fn = open_clip.ClipLoss()
    optimiser = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-3, weight_decay=0.05)
    rng = np.random.default_rng(seed)
    model.train()
    for step in range(steps):
        idx = torch.as_tensor(rng.choice(len(pool), batch, replace=False))
        for group in optimiser.param_groups:  # short warm-up, then cosine decay
            group["lr"] = 2e-3 * min(1.0, (step + 1) / 30) * 0.5 * (1 + np.cos(np.pi * step / steps))
        image_features, text_features, logit_scale = model(images[idx], tokens[idx])[:3]
        loss = loss_fn(image_features, text_features, logit_scale)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.eval()
    return model, preprocess, tokenizer


def save(model, folder: Path) -> str:
    """The checkpoint file (open_clip's format) with the config beside it: the path to set as
    CURATION_EMBED_CHECKPOINT (with CURATION_EMBED_MODEL = NAME)."""
    import torch

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{NAME}.json").write_text(json.dumps(CONFIG))
    path = folder / "open_clip_model.pt"
    torch.save({"epoch": 1, "state_dict": model.state_dict()}, path)
    return str(path)


def embed(model, preprocess, tokenizer, images: list[Image.Image], texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors of the images and the texts."""
    import torch

    with torch.inference_mode():
        iv = model.encode_image(torch.stack([preprocess(i) for i in images])).float().numpy()
        tv = model.encode_text(tokenizer(texts)).float().numpy()
    iv /= np.linalg.norm(iv, axis=1, keepdims=True)
    tv /= np.linalg.norm(tv, axis=1, keepdims=True)
    return iv, tv


def held_out_pairs(n: int = 200, seed: int = 99) -> tuple[list[Scene], list[str], np.ndarray]:
    """Held-out scenes and one comment each: its own description (label 0) or, for every other
    scene, the description of a scene of another class (swapped: label 1)."""
    pool = scenes(n, seed=seed)
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i, s in enumerate(pool):
        if i % 2:
            other = int(rng.integers(len(CLASSES) - 1))
            other += other >= s.cls
            texts.append(Scene(other, s.seed + 1).description())
            labels.append(1)
        else:
            texts.append(s.description())
            labels.append(0)
    return pool, texts, np.asarray(labels)
