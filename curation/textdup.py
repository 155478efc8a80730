"""Duplicate and template comments: exact after normalisation, near-duplicates by character
n-gram MinHash LSH (datasketch), clusters with counts and shares, and per labeler the share of
their comments that copy their own earlier ones.

Pure functions over plain rows (comment id, image id, labeler, text), in time order; no Django
(labeling.text's NFC `normalise` is reused: it imports Django's lazy gettext only). A Celery task
reads the project's comments in order and calls `analyse` once (150,000 comments: the work is
per distinct normalised text, so a project full of "맛있겠다" costs what one of it does).

Normalisation (`normalise`): NFC with invisible characters removed, case folded, runs of
ㅋ ㅎ ㅠ ㅜ ㄷ (2 or more) collapsed to two, repeated punctuation (!!!, ???, ..., ~~~) to one, white
space to single spaces. `exact_key` also drops the spaces (Korean spacing is loose: "맛있 겠다"
is "맛있겠다"). Near-duplicates (ml-facts "Curation"): character 2-grams of the key, MinHash of
128 permutations, LSH at a Jaccard threshold of 0.6, every candidate then checked on the exact
Jaccard of the 2-gram sets (LSH only proposes). The n-grams are of the key's `content`: letters
and digits, without laugh/cry jamo and punctuation (they would weigh a third of a short comment). Clusters join exact and near pairs (union-find:
chains join, so a cluster's examples are shown to the reviewer).
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from datasketch import MinHash, MinHashLSH

from labeling.text import normalise as _nfc

NGRAM = 2
NUM_PERM = 128
THRESHOLD = 0.6
TEMPLATE_MIN_PHOTOS = 5
EXAMPLES = 5

_RUNS = re.compile(r"([ㅋㅎㅠㅜㄷ])\1+")
_PUNCT = re.compile(r"([!?.~^,;…·*\-_=+])\1+")
_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    text = _nfc(text).casefold()
    text = _RUNS.sub(r"\1\1", text)
    text = _PUNCT.sub(r"\1", text)
    return _SPACE.sub(" ", text).strip()


def exact_key(text: str) -> str:
    return normalise(text).replace(" ", "")


_JAMO = re.compile(r"[\u1100-\u11ff\u3130-\u318f\ua960-\ua97f\ud7b0-\ud7ff]")


def content(key: str) -> str:
    """What near-duplicate search compares: the key's letters and digits, without bare jamo
    (ㅋㅋ, ㅠㅠ) and punctuation, so "맛있겠다ㅋㅋ" and "맛있겠다!" meet; the key itself when
    nothing is left ("ㅋㅋ")."""
    kept = "".join(ch for ch in key if ch.isalnum() and not _JAMO.match(ch))
    return kept or key


def shingles(key: str, n: int = NGRAM) -> set[str]:
    key = content(key)
    if len(key) <= n:
        return {key} if key else set()
    return {key[i:i + n] for i in range(len(key) - n + 1)}


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0


@dataclass(frozen=True)
class CommentRow:
    comment_id: object
    image_id: object
    labeler: object
    text: str


def near_duplicate_pairs(keys: list[str], *, threshold: float = THRESHOLD, ngram: int = NGRAM,
                         num_perm: int = NUM_PERM) -> list[tuple[int, int, float]]:
    """(i, j, Jaccard) for i < j over distinct `keys`, Jaccard of their n-gram sets >= threshold."""
    sets = [shingles(k, ngram) for k in keys]
    usable = [i for i, s in enumerate(sets) if s]
    hashes = MinHash.bulk([[g.encode() for g in sets[i]] for i in usable], num_perm=num_perm, seed=1)
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    with lsh.insertion_session() as session:
        for i, m in zip(usable, hashes):
            session.insert(i, m)
    pairs = []
    for i, m in zip(usable, hashes):
        for j in lsh.query(m):
            if j > i:
                score = jaccard(sets[i], sets[j])
                if score >= threshold:
                    pairs.append((i, j, round(score, 4)))
    pairs.sort()
    return pairs


@dataclass
class TextCluster:
    """Comments whose texts are the same or near the same. `text`: the most frequent normalised
    text; `examples`: distinct raw texts, most frequent first; `share`: count / all comments."""
    text: str
    comment_ids: list
    count: int
    photos: int
    labelers: int
    share: float
    examples: list[str]
    exact: bool
    is_template: bool

    def evidence(self) -> dict:
        return {"text": self.text, "count": self.count, "photos": self.photos, "labelers": self.labelers,
                "share": self.share, "examples": self.examples, "exact": self.exact}


@dataclass
class LabelerCopying:
    """`copies`: [(comment id, the labeler's earlier comment id it copies)]."""
    labeler: object
    comments: int
    self_copies: int
    share: float
    copies: list[tuple] = field(default_factory=list)

    def evidence(self) -> dict:
        return {"comments": self.comments, "self_copies": self.self_copies, "share": self.share,
                "examples": [list(c) for c in self.copies[:EXAMPLES]]}


@dataclass
class TextReport:
    clusters: list[TextCluster]          # two or more comments; most repeated first
    labelers: list[LabelerCopying]       # every labeler; highest share first
    near_pairs: list[tuple[str, str, float]]  # (normalised text, normalised text, Jaccard)
    total: int

    @property
    def templates(self) -> list[TextCluster]:
        return [c for c in self.clusters if c.is_template]


def analyse(rows: Iterable, *, threshold: float = THRESHOLD, ngram: int = NGRAM, num_perm: int = NUM_PERM,
            template_min_photos: int = TEMPLATE_MIN_PHOTOS, examples: int = EXAMPLES) -> TextReport:
    """`rows`: CommentRow or (comment_id, image_id, labeler, text) tuples, in time order."""
    rows = [r if isinstance(r, CommentRow) else CommentRow(*r) for r in rows]
    keys: list[str] = []
    key_index: dict[str, int] = {}
    row_key = []
    for r in rows:
        k = exact_key(r.text)
        if k not in key_index:
            key_index[k] = len(keys)
            keys.append(k)
        row_key.append(key_index[k])
    pairs = near_duplicate_pairs(keys, threshold=threshold, ngram=ngram, num_perm=num_perm)
    neighbours: dict[int, set[int]] = {}
    parent = list(range(len(keys)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, j, _ in pairs:
        neighbours.setdefault(i, set()).add(j)
        neighbours.setdefault(j, set()).add(i)
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)

    # Clusters.
    by_root: dict[int, list[int]] = {}
    for n, k in enumerate(row_key):
        by_root.setdefault(find(k), []).append(n)
    total = len(rows)
    clusters = []
    for members in by_root.values():
        if len(members) < 2:
            continue
        norm = Counter(normalise(rows[n].text) for n in members)
        raw = Counter(rows[n].text.strip() for n in members)
        photos = len({rows[n].image_id for n in members})
        clusters.append(TextCluster(
            text=norm.most_common(1)[0][0], comment_ids=[rows[n].comment_id for n in members], count=len(members),
            photos=photos, labelers=len({rows[n].labeler for n in members}), share=round(len(members) / total, 4),
            examples=[t for t, _ in raw.most_common(examples)], exact=len({row_key[n] for n in members}) == 1,
            is_template=photos >= template_min_photos,
        ))
    clusters.sort(key=lambda c: (-c.count, c.text))

    # Per labeler: near-copies of their own earlier comments.
    seen: dict[object, dict[int, object]] = {}
    stats: dict[object, LabelerCopying] = {}
    for n, r in enumerate(rows):
        mine = seen.setdefault(r.labeler, {})
        entry = stats.setdefault(r.labeler, LabelerCopying(r.labeler, 0, 0, 0.0))
        entry.comments += 1
        k = row_key[n]
        source = mine.get(k)
        if source is None:
            for other in sorted(neighbours.get(k, ())):
                if other in mine:
                    source = mine[other]
                    break
        if source is not None:
            entry.self_copies += 1
            entry.copies.append((r.comment_id, source))
        mine.setdefault(k, r.comment_id)
    labelers = list(stats.values())
    for entry in labelers:
        entry.share = round(entry.self_copies / entry.comments, 4)
    labelers.sort(key=lambda e: (-e.share, -e.comments, str(e.labeler)))
    return TextReport(clusters=clusters, labelers=labelers,
                      near_pairs=[(keys[i], keys[j], s) for i, j, s in pairs], total=total)
