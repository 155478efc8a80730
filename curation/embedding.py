"""Embeddings for curation: the model (configuration), the embedding pipeline, and three steps of
a curation run: EmbedImages and EmbedComments (queue "embeddings", so GPU workers can take them)
and SemanticDuplicates (queue "curation").

The model (settings.CURATION_EMBED, README "Embeddings") is an open_clip model name with either a
pretrained tag (default: the multilingual `xlm-roberta-base-ViT-B-32` / `laion5b_s13b_b90k`,
which reads Korean) or a local checkpoint file, e.g. one written by the project's retrieval
trainer (loaded as open_clip does: `create_model_and_transforms(name, pretrained=<path>)`).
Nothing is downloaded (unless CURATION_EMBED_ALLOW_DOWNLOAD): a tag's weights are looked up in
the local Hugging Face / open_clip caches first and Hugging Face is put offline, so a machine
without the weights answers at once with `WeightsUnavailable` (its message says what to set),
which the steps turn into their `unavailable()` reason.

Every vector records the model that made it: its identity (`model_identity`):
`open_clip:<name>|<tag>` or `open_clip:<name>|sha256:<first 16 hex of the checkpoint>`, and the
segment it lies in records the vectors' length.

Import-safe without torch: torch and open_clip are imported inside the functions that need them.
"""
from __future__ import annotations

import hashlib
import io
import logging
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db.models import Exists, OuterRef
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from . import vectors as V
from .steps import Step

log = logging.getLogger(__name__)

DETECTOR = "semantic"
DETECTOR_VERSION = "1"


class WeightsUnavailable(Exception):
    """The configured model cannot be loaded on this machine (no weights, no torch, ...)."""


@dataclass(frozen=True)
class EmbedSpec:
    """Which model: an open_clip `model` name and either a `pretrained` tag or a `checkpoint`
    path (the checkpoint wins). Neither: random weights (benchmarks only: `build_model(...,
    allow_random=True)`)."""
    model: str
    pretrained: str = ""
    checkpoint: str = ""
    device: str = "auto"

    @classmethod
    def from_settings(cls) -> EmbedSpec:
        cfg = settings.CURATION_EMBED
        return cls(model=cfg["MODEL"], pretrained=cfg["PRETRAINED"] or "", checkpoint=cfg["CHECKPOINT"] or "",
                   device=cfg["DEVICE"] or "auto")

    @property
    def what(self) -> str:
        return self.checkpoint or f"{self.model} ({self.pretrained})"


def unavailable_message(spec: EmbedSpec, why: str) -> str:
    return _("No weights for %(what)s on this machine (%(why)s): set CURATION_EMBED_CHECKPOINT to a local file "
             "(or put the weights in the Hugging Face cache); semantic duplicates and the part-2 hallucination "
             "check are off.") % {"what": spec.what, "why": why}


@lru_cache(maxsize=8)
def _file_sha256(path: str, size: int, mtime: float) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def checkpoint_sha256(path: str) -> str:
    st = os.stat(path)
    return _file_sha256(os.path.abspath(path), st.st_size, st.st_mtime)


def model_identity(spec: EmbedSpec | None = None) -> str | None:
    """The identity every vector made by `spec`'s model records (no torch needed). None when a
    checkpoint is configured that this machine does not have (its digest is unknown here)."""
    spec = spec or EmbedSpec.from_settings()
    if spec.checkpoint:
        if not os.path.isfile(spec.checkpoint):
            return None
        return f"open_clip:{spec.model}|sha256:{checkpoint_sha256(spec.checkpoint)[:16]}"
    return f"open_clip:{spec.model}|{spec.pretrained or 'random'}"


def current_identity(kind: str = "image") -> str | None:
    """The configured model's identity; on a machine without the configured checkpoint file (a
    platform worker, while the GPU workers hold it) the newest stored segment's identity made
    from a checkpoint of the same model name."""
    spec = EmbedSpec.from_settings()
    identity = model_identity(spec)
    if identity is None:
        from .models import EmbeddingSegment

        seg = (EmbeddingSegment.objects.filter(kind=kind, model__startswith=f"open_clip:{spec.model}|sha256:")
               .order_by("-id").first())
        identity = seg.model if seg else None
    return identity


# ---------------------------------------------------------------------------------------- loading

def _offline() -> None:
    """Keep Hugging Face from reaching for the network (these machines have none; a hung
    request would hang a worker)."""
    if settings.CURATION_EMBED["ALLOW_DOWNLOAD"]:
        return
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    try:  # read at import time: set it on the module too when it is imported already
        import huggingface_hub.constants as hf_constants

        hf_constants.HF_HUB_OFFLINE = True
    except ImportError:
        pass


def _cached_pretrained(open_clip, spec: EmbedSpec) -> tuple[str, dict]:
    """The local file of `spec`'s pretrained tag and its preprocess config, from the caches only."""
    cfg = open_clip.get_pretrained_cfg(spec.model, spec.pretrained)
    if not cfg:
        raise WeightsUnavailable(unavailable_message(
            spec, _("open_clip knows no pretrained tag %(tag)s for %(model)s") % {"tag": spec.pretrained,
                                                                                  "model": spec.model}))
    if settings.CURATION_EMBED["ALLOW_DOWNLOAD"]:
        return open_clip.download_pretrained(cfg), cfg
    candidates: list[str] = []
    if cfg.get("hf_hub"):
        from huggingface_hub import try_to_load_from_cache

        repo, filename = os.path.split(cfg["hf_hub"])
        for name in ("open_clip_model.safetensors", "open_clip_pytorch_model.bin") if not filename else (
                str(Path(filename).with_suffix(".safetensors")), filename):
            found = try_to_load_from_cache(repo, name)
            if isinstance(found, str):
                candidates.append(found)
    if cfg.get("url"):
        candidates.append(os.path.join(os.path.expanduser("~/.cache/clip"), os.path.basename(cfg["url"])))
    for path in candidates:
        if os.path.isfile(path):
            return path, cfg
    raise WeightsUnavailable(unavailable_message(spec, _("not in the local cache, and this machine downloads nothing")))


@dataclass
class LoadedModel:
    spec: EmbedSpec
    model: object
    preprocess: object
    tokenizer: object
    identity: str
    dim: int
    device: str
    image_size: int


def _device(requested: str) -> str:
    import torch

    if requested in ("", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


def build_model(spec: EmbedSpec, *, allow_random: bool = False) -> LoadedModel:
    """Load `spec`'s model for inference (eval mode, on its device), or raise WeightsUnavailable
    with a message a planner can act on."""
    _offline()
    try:
        import open_clip
        import torch  # noqa: F401
    except ImportError as exc:
        raise WeightsUnavailable(unavailable_message(
            spec, _("torch and open_clip are not installed here: install requirements-ml.txt (%(error)s)")
            % {"error": exc})) from None
    kwargs: dict = {}
    if spec.checkpoint:
        if not os.path.isfile(spec.checkpoint):
            raise WeightsUnavailable(unavailable_message(spec, _("no such file")))
        pretrained = spec.checkpoint
        # The retrieval trainer (trainers/retrieval.py save_model) writes the model's config as
        # <name>.json beside its open_clip_model.pt: register it when open_clip does not know the name.
        beside = Path(spec.checkpoint).with_name(f"{spec.model}.json")
        if beside.is_file() and open_clip.get_model_config(spec.model) is None:
            open_clip.add_model_config(beside)
    elif spec.pretrained:
        pretrained, cfg = _cached_pretrained(open_clip, spec)
        for key, arg in (("mean", "image_mean"), ("std", "image_std"), ("interpolation", "image_interpolation"),
                         ("resize_mode", "image_resize_mode")):
            if cfg.get(key) is not None:
                kwargs[arg] = cfg[key]
    elif allow_random:
        pretrained = None
    else:
        raise WeightsUnavailable(unavailable_message(spec, _("no pretrained tag and no checkpoint configured")))
    device = _device(spec.device)
    try:
        model, _train, preprocess = open_clip.create_model_and_transforms(spec.model, pretrained=pretrained,
                                                                          device=device, **kwargs)
        tokenizer = open_clip.get_tokenizer(spec.model)
    except WeightsUnavailable:
        raise
    except (OSError, RuntimeError, ValueError, KeyError) as exc:
        # Hugging Face text towers (xlm-roberta) need their config and tokenizer from the HF cache;
        # a checkpoint of another architecture does not fit the named model.
        raise WeightsUnavailable(unavailable_message(spec, str(exc).splitlines()[0][:300] if str(exc) else
                                                     type(exc).__name__)) from None
    model.eval()
    dim = _embed_dim(model)
    size = getattr(model.visual, "image_size", 224)
    size = size[0] if isinstance(size, (tuple, list)) else int(size)
    identity = model_identity(spec) if (spec.checkpoint or spec.pretrained) else f"open_clip:{spec.model}|random"
    return LoadedModel(spec, model, preprocess, tokenizer, identity, dim, device, size)


def _embed_dim(model) -> int:
    import torch

    proj = getattr(model, "text_projection", None)
    if isinstance(proj, torch.nn.Parameter):
        return int(proj.shape[-1])
    if hasattr(model, "embed_dim"):
        return int(model.embed_dim)
    with torch.inference_mode():
        size = model.visual.image_size
        size = size if isinstance(size, (tuple, list)) else (size, size)
        return int(model.encode_image(torch.zeros(1, 3, *size, device=next(model.parameters()).device)).shape[-1])


_LOADED: dict[EmbedSpec, LoadedModel] = {}


def load_model(spec: EmbedSpec | None = None) -> LoadedModel:
    """The configured model, loaded once per worker process."""
    spec = spec or EmbedSpec.from_settings()
    if spec not in _LOADED:
        _LOADED.clear()  # one model at a time in a worker's memory
        _LOADED[spec] = build_model(spec)
    return _LOADED[spec]


def weights_problem(spec: EmbedSpec | None = None) -> str | None:
    """Why the configured model cannot run here (a translated sentence), or None. Cheap: looks
    for torch, open_clip and the weights file, builds nothing."""
    spec = spec or EmbedSpec.from_settings()
    if spec in _LOADED:
        return None
    _offline()
    try:
        import open_clip
        import torch  # noqa: F401
    except ImportError as exc:
        return unavailable_message(spec, _("torch and open_clip are not installed here: install "
                                           "requirements-ml.txt (%(error)s)") % {"error": exc})
    if spec.checkpoint:
        return None if os.path.isfile(spec.checkpoint) else unavailable_message(spec, _("no such file"))
    if not spec.pretrained:
        return unavailable_message(spec, _("no pretrained tag and no checkpoint configured"))
    try:
        _cached_pretrained(open_clip, spec)
    except WeightsUnavailable as exc:
        return str(exc)
    return None


# ---------------------------------------------------------------------------------------- pipeline

def decode_threads() -> int:
    return settings.CURATION_EMBED["THREADS"] or min(8, os.cpu_count() or 1)


def _read_image(loaded: LoadedModel, name: str):
    """Read one photo from the default storage, decode (JPEG: at the smallest scale that still
    covers the model's input), convert and preprocess: a tensor, or None when it is unreadable."""
    from django.core.files.storage import default_storage
    from PIL import Image as PILImage

    try:
        with default_storage.open(name, "rb") as f:
            data = f.read()
        img = PILImage.open(io.BytesIO(data))
        img.draft("RGB", (loaded.image_size, loaded.image_size))
        return loaded.preprocess(img.convert("RGB"))
    except Exception as exc:  # a missing or broken file: skipped, said in the counts
        log.warning("embedding: cannot read %s: %s", name, exc)
        return None


def _forward(loaded: LoadedModel, fn, batch) -> np.ndarray:
    import torch

    with torch.inference_mode():
        if loaded.device.startswith("cuda"):
            with torch.autocast("cuda", dtype=torch.float16):
                out = fn(batch.to(loaded.device, non_blocking=True))
        else:
            out = fn(batch)
    return V.normalise(out.float().cpu().numpy())


def embed_images(loaded: LoadedModel, names: list[str], batch_size: int | None = None,
                 threads: int | None = None) -> tuple[np.ndarray, list[int]]:
    """Unit vectors of the photos stored under `names` (default storage), and the positions in
    `names` they belong to (unreadable photos are left out). Reading and decoding run in a thread
    pool ahead of the model (at most two batches ahead), so the forward pass rarely waits."""
    import torch

    batch_size = batch_size or settings.CURATION_EMBED["BATCH"]
    out: list[np.ndarray] = []
    done: list[int] = []
    with ThreadPoolExecutor(max_workers=threads or decode_threads(), thread_name_prefix="embed-decode") as pool:
        pending: deque = deque()
        position = 0
        tensors, places = [], []

        def fill():
            nonlocal position
            while position < len(names) and len(pending) < 2 * batch_size:
                pending.append((position, pool.submit(_read_image, loaded, names[position])))
                position += 1

        fill()
        while pending:
            n, future = pending.popleft()
            tensor = future.result()
            fill()
            if tensor is not None:
                tensors.append(tensor)
                places.append(n)
            if len(tensors) == batch_size or (not pending and tensors):
                out.append(_forward(loaded, loaded.model.encode_image, torch.stack(tensors)))
                done.extend(places)
                tensors, places = [], []
    vectors = np.concatenate(out) if out else np.zeros((0, loaded.dim), dtype=np.float32)
    return vectors, done


def embed_texts(loaded: LoadedModel, texts: list[str], batch_size: int | None = None) -> np.ndarray:
    """Unit vectors of `texts` (the model's own tokenizer), in batches."""
    batch_size = batch_size or settings.CURATION_EMBED["BATCH"]
    out = [_forward(loaded, loaded.model.encode_text, loaded.tokenizer(texts[i:i + batch_size]))
           for i in range(0, len(texts), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, loaded.dim), dtype=np.float32)


# ---------------------------------------------------------------------------------------- stored vectors

def stored_vectors(kind: str, model: str, subjects=None) -> tuple[list, np.ndarray]:
    """The vectors `model` made for photos (kind "image") or comments, limited to `subjects` (a
    queryset of Image or Comment) when given: (ids, float16 matrix), one segment file read once."""
    from django.core.files.storage import default_storage

    from .models import Embedding

    field = "image_id" if kind == "image" else "comment_id"
    rows = Embedding.objects.filter(model=model, **{f"{field}__isnull": False})
    if subjects is not None:
        rows = rows.filter(**{f"{field}__in": subjects.values("pk")})
    rows = list(rows.order_by("segment_id", "row").values_list(field, "segment_id", "row", "segment__path"))
    if not rows:
        return [], np.zeros((0, 0), dtype=np.float16)
    ids, parts = [], []
    start = 0
    while start < len(rows):
        seg, path = rows[start][1], rows[start][3]
        end = start
        while end < len(rows) and rows[end][1] == seg:
            end += 1
        with default_storage.open(path, "rb") as f:
            _ids, matrix = V.unpack(f.read())
        parts.append(matrix[[r[2] for r in rows[start:end]]])
        ids.extend(r[0] for r in rows[start:end])
        start = end
    return ids, np.concatenate(parts)


# ---------------------------------------------------------------------------------------- steps

def _scope_active_images(run):
    from datasets.models import ImageStatus

    return run.scope_images().exclude(status=ImageStatus.EXCLUDED)


def _embedding_unavailable() -> str | None:
    """The embedding steps' reason to be skipped: checked here unless CURATION_EMBED_REMOTE says
    the embeddings queue is served by other machines (GPU workers) that hold the model; there a
    missing model fails the chunk with WeightsUnavailable's message."""
    if settings.CURATION_EMBED.get("REMOTE"):
        return None
    return weights_problem()


class EmbedImages(Step):
    """Embed the run's photos that the configured model has not embedded yet (new photos, or
    photos embedded by another model), a segment per chunk."""

    name = "embed_images"
    label = gettext_lazy("Embed photos")
    queue = "embeddings"
    subject = "photos"

    @property
    def chunk_size(self) -> int:
        return settings.CURATION_EMBED["CHUNK"]

    def unavailable(self, run) -> str | None:
        return _embedding_unavailable()

    def _todo(self, run, identity: str):
        from .models import Embedding

        done = Embedding.objects.filter(model=identity, image_id=OuterRef("pk"))
        return _scope_active_images(run).filter(~Exists(done))

    def plan(self, run) -> list:
        # A checkpoint only the GPU workers hold: plan against the newest checkpoint vectors of the
        # same model (or everything); each chunk checks against the loaded model's own identity.
        identity = current_identity("image") or "-"
        return [str(pk) for pk in self._todo(run, identity).order_by("pk").values_list("pk", flat=True)]

    def process(self, run, ids: list) -> dict[str, int]:
        from datasets.models import Image

        from .models import Embedding
        from .services import store_embeddings

        loaded = load_model()
        done = Embedding.objects.filter(model=loaded.identity, image_id=OuterRef("pk"))
        todo = list(Image.objects.filter(pk__in=ids).filter(~Exists(done)).order_by("pk").values_list("pk", "file"))
        if not todo:
            return {"embedded": 0, "skipped": len(ids)}
        vectors, places = embed_images(loaded, [name for _pk, name in todo])
        made = store_embeddings("image", loaded.identity, [todo[n][0] for n in places], vectors)
        return {"embedded": made, "skipped": len(ids) - len(todo), "unreadable": len(todo) - len(places)}

    def finish(self, run) -> dict[str, int]:
        return {}


class EmbedComments(Step):
    """Embed the run's comments that the configured model has not embedded yet."""

    name = "embed_comments"
    label = gettext_lazy("Embed comments")
    queue = "embeddings"
    subject = "comments"

    @property
    def chunk_size(self) -> int:
        return settings.CURATION_EMBED["CHUNK"]

    def unavailable(self, run) -> str | None:
        return _embedding_unavailable()

    def plan(self, run) -> list:
        from .models import Embedding

        identity = current_identity("comment") or "-"
        done = Embedding.objects.filter(model=identity, comment_id=OuterRef("pk"))
        return list(run.scope_comments().filter(~Exists(done)).order_by("pk").values_list("pk", flat=True))

    def process(self, run, ids: list) -> dict[str, int]:
        from labeling.models import Comment

        from .models import Embedding
        from .services import store_embeddings

        loaded = load_model()
        done = Embedding.objects.filter(model=loaded.identity, comment_id=OuterRef("pk"))
        todo = list(Comment.objects.filter(pk__in=ids).filter(~Exists(done)).order_by("pk").values_list("pk", "text"))
        if not todo:
            return {"embedded": 0, "skipped": len(ids)}
        vectors = embed_texts(loaded, [text for _pk, text in todo])
        made = store_embeddings("comment", loaded.identity, [pk for pk, _t in todo], vectors)
        return {"embedded": made, "skipped": len(ids) - len(todo)}

    def finish(self, run) -> dict[str, int]:
        return {}


@dataclass(frozen=True)
class SemanticPair:
    """Two photos whose embeddings' cosine is `similarity` (duck-types perceptual.PerceptualPair
    for perceptual.group_pairs: smaller `distance` first)."""
    a: str
    b: str
    similarity: float

    @property
    def distance(self) -> float:
        return 1.0 - self.similarity


class SemanticDuplicates(Step):
    """Photos whose embeddings (by the configured model) are near-identical: SemDeDup-style
    search (curation.vectors.near_duplicates) of the run's photos against every photo of the
    catalogue that has a vector, grouped with a suggested keeper (curation.perceptual.group_pairs:
    largest, best-licensed, already labeled), a SEMANTIC_DUPLICATE_PHOTO flag per member.
    Excluded photos are left out. All the work is in `finish` (one search over all vectors)."""

    name = "semantic"
    label = gettext_lazy("Semantic duplicate photos")
    queue = "curation"
    subject = "photos"
    chunk_size = 1
    requires = ("embed_images",)

    def unavailable(self, run) -> str | None:
        try:
            import faiss  # noqa: F401
        except ImportError:
            return _("faiss-cpu is not installed here (requirements.txt): semantic duplicates are off.")
        identity = current_identity("image")
        if identity is None or not _has_vectors(identity):
            problem = _embedding_unavailable()
            if problem:
                return problem
        return None

    def plan(self, run) -> list:
        return []

    def process(self, run, ids: list) -> dict[str, int]:
        return {}

    def finish(self, run) -> dict[str, int]:
        from datasets.models import Image, ImageStatus

        from . import perceptual as P
        from .models import FlagKind
        from .services import FlagData, record_flags
        from .steps import licence_rank, photo_facts

        identity = current_identity("image")
        if identity is None:
            return {"photos": 0, "groups": 0}
        threshold = float(settings.CURATION_SEMANTIC["THRESHOLD"])
        everything = Image.objects.exclude(status=ImageStatus.EXCLUDED)
        ids, matrix = stored_vectors("image", identity, everything)
        if len(ids) < 2:
            return {"photos": len(ids), "groups": 0}
        ids, dim = [str(i) for i in ids], int(matrix.shape[1])
        scope = {str(pk) for pk in run.new_images(self.name).exclude(status=ImageStatus.EXCLUDED)
                 .values_list("pk", flat=True)}
        queries = None if scope >= set(ids) else [n for n, pk in enumerate(ids) if pk in scope]
        if queries == []:
            return {"photos": 0, "groups": 0}
        found = V.near_duplicates(matrix, threshold, queries=queries, probes=settings.CURATION_SEMANTIC["PROBES"])
        pairs = [SemanticPair(ids[a], ids[b], round(float(s), 4)) for a, b, s in
                 zip(found.a.tolist(), found.b.tolist(), found.similarity.tolist())]
        members = {p.a for p in pairs} | {p.b for p in pairs}
        groups = P.group_pairs(pairs, photo_facts(members), licence_rank())
        position = {pk: n for n, pk in enumerate(ids)}
        flags = []
        for group in groups:
            best: dict[str, float] = {}
            for p in group.pairs:
                for x in (p.a, p.b):
                    best[x] = max(best.get(x, 0.0), p.similarity)
            evidence_pairs = [{"a": p.a, "b": p.b, "similarity": p.similarity} for p in group.pairs[:20]]
            cluster = int(found.clusters[position[group.keeper]])
            for member in group.members:
                flags.append(FlagData(
                    kind=FlagKind.SEMANTIC_DUPLICATE_PHOTO, image=member, score=best[member],
                    group_key=f"semantic:{group.keeper}", keeper=group.keeper,
                    evidence={"similarity": best[member], "threshold": threshold, "model": identity, "dim": dim,
                              "cluster": cluster, "keeper": group.keeper, "members": group.members[:50],
                              "size": len(group.members), "pairs": evidence_pairs},
                ))
        counts = record_flags(DETECTOR, DETECTOR_VERSION, flags)
        return {"photos": len(queries) if queries is not None else len(ids), "pairs": len(pairs),
                "groups": len(groups), "flagged": len(flags), **{f"flags_{k}": v for k, v in counts.items()}}


def _has_vectors(identity: str) -> bool:
    from .models import EmbeddingSegment

    return EmbeddingSegment.objects.filter(model=identity, kind="image").exists()


STEPS = [EmbedImages(), EmbedComments(), SemanticDuplicates()]
