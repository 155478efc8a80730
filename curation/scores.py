"""Hallucination and specificity scores of comments (issue 12, items 1 and 2), from the vectors
the embedding steps stored (curation.embedding): no model is loaded here, only numpy.

For a comment c with its own photo p, in project P, by the embedding model M:

- the *sample*: a fixed random sample of P's photos that M embedded (CURATION["SCORE_SAMPLE"],
  default 256): the photos with the smallest sha256("<P>|<M>|<photo id>"), so it is the same for
  every comment and every run, and a photo added later joins it only where its hash is small;
  the comment's own photo is left out of its sample.
- hallucination(c) = the share of the sample whose cosine with c is above cos(c, p): 0 when its
  own photo fits best, near 1 when almost any photo of the project fits it better. A rank, so it
  does not depend on the model's scale of cosines.
- specificity(c) = cos(c, p) - mean cos(c, sample): how much better the comment fits its photo
  than the average photo of the project; about 0 for "맛있겠다", "어디야?".

Calibration (`calibrate`), per model, on the null distribution: pairs (comment, another random
photo of the same project) scored exactly as above, i.e. comments about the wrong photo. The
rule: the hallucination threshold is the (1 - target_rate) quantile of the shuffled pairs'
scores, so that a share `target_rate` (CURATION["HALLUCINATION_TARGET_RATE"], default 0.5) of
wrong-photo comments reach it and are flagged: the target is the recall on wrong pairs, measured
on the model's own null distribution, not a guess about a cosine. Why recall and not a false-flag
rate: the true pairs' distribution is unknown (it is what is being checked), the wrong pairs'
is known by construction. For a rank score the null is close to uniform for any model (the wrong
photo is one more random project photo), so with 0.5 the threshold is near 0.5: a comment is
flagged when its own photo fits it worse than about half of the project's photos. A correct,
specific comment sits near 0 (the tiny test model: mean 0.04 against 0.5 for swapped pairs,
ROC AUC 0.97+). What no rank can tell apart: a bland comment that fits every photo equally has a
uniformly random rank too. So a third number decides: the comment's *reach*, how much better its
best-fitting photos (the top REACH_SHARE of the sample) fit it than the average photo. A comment
about something definite reaches some photos clearly, whether or not its own photo is among them;
a bland one reaches none. A comment whose reach is in its project's lowest
CURATION["HALLUCINATION_REACH_QUANTILE"] (default 0.25) is bland and never called a
hallucination, whatever its rank; LOW_SPECIFICITY is the flag for it.

Specificity is no flag by default: a project's `specificity_flag_below` turns comments below it
into LOW_SPECIFICITY flags. The SPECIFICITY calibration row keeps the null's quantiles for the
specificity page (what a wrong photo scores).
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db.models import Exists, OuterRef
from django.utils.translation import gettext_lazy

from .steps import Step

DETECTOR = "scores"
# Evidence: at most this many sample photos that fit the comment better.
BETTER_PHOTOS = 5
# A comment's reach: how much better its best-fitting photos (this share of the sample, at least
# one) fit it than the average photo. A bland comment ("맛있겠다") fits every photo about alike:
# low reach. A comment about something definite reaches some photos clearly: high reach.
REACH_SHARE = 0.05
QUANTILES = (0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99)


@dataclass
class PairScores:
    hallucination: np.ndarray  # (n,)
    specificity: np.ndarray    # (n,)
    similarity: np.ndarray     # (n,) cos(comment, own photo)
    sample_size: np.ndarray    # (n,) sample photos counted for each
    better: list               # per comment: sample positions fitting better, best first (<= BETTER_PHOTOS)
    reach: np.ndarray | None = None  # (n,) mean cos of the best-fitting REACH_SHARE of the sample - mean cos


def score_pairs(comments: np.ndarray, photos: np.ndarray, sample: np.ndarray, exclude: np.ndarray | None = None,
                better: int = BETTER_PHOTOS) -> PairScores:
    """Scores of n (comment, photo) pairs against one sample: `comments` and `photos` (n, d) unit
    vectors row by row, `sample` (m, d) unit vectors, `exclude` (n, m) True where a sample photo is
    not to be counted for that pair (its own photo)."""
    c = np.asarray(comments, dtype=np.float32)
    sim = np.einsum("nd,nd->n", c, np.asarray(photos, dtype=np.float32))
    cos = c @ np.asarray(sample, dtype=np.float32).T
    keep = np.ones_like(cos, dtype=bool) if exclude is None else ~exclude
    counted = keep.sum(axis=1)
    above = (cos > sim[:, None]) & keep
    n = np.maximum(counted, 1)
    hallucination = above.sum(axis=1) / n
    mean = np.where(keep, cos, 0).sum(axis=1) / n
    specificity = sim - mean
    k = max(1, int(round(REACH_SHARE * cos.shape[1]))) if cos.shape[1] else 0
    if k:
        best = -np.partition(-np.where(keep, cos, -np.inf), k - 1, axis=1)[:, :k]
        finite = np.isfinite(best)
        reach = np.where(finite, best, 0).sum(axis=1) / np.maximum(finite.sum(axis=1), 1) - mean
        reach = np.where(finite.any(axis=1), reach, 0.0)
    else:
        reach = np.zeros(len(c))
    tops = []
    if better:
        masked = np.where(above, cos, -np.inf)
        order = np.argsort(-masked, axis=1)[:, :better]
        for row, idx in enumerate(order):
            tops.append([int(i) for i in idx if np.isfinite(masked[row, i])])
    return PairScores(hallucination.astype(np.float64), specificity.astype(np.float64), sim.astype(np.float64),
                      counted, tops, reach.astype(np.float64))


def _rank_key(project_id, model: str, image_id) -> str:
    return hashlib.sha256(f"{project_id}|{model}|{image_id}".encode()).hexdigest()


def sample_ids(project_id, model: str, photo_ids, size: int | None = None) -> list:
    """The fixed sample: the `size` photos of `photo_ids` with the smallest hash of (project,
    model, photo), in that order."""
    size = size or settings.CURATION["SCORE_SAMPLE"]
    return sorted(photo_ids, key=lambda pk: _rank_key(project_id, model, pk))[:size]


def _project_photos(project_id, model: str) -> list:
    """The project's photos (not excluded) that `model` embedded."""
    from datasets.models import ImageStatus
    from labeling.models import ProjectImage

    from .models import Embedding

    return list(Embedding.objects.filter(
        model=model, image_id__in=ProjectImage.objects.filter(project_id=project_id).values("image_id"))
        .exclude(image__status=ImageStatus.EXCLUDED).values_list("image_id", flat=True))


class ProjectSample:
    """One project's sample photos and their vectors by one model."""

    def __init__(self, project_id, model: str):
        from datasets.models import Image

        from .embedding import stored_vectors

        self.project_id, self.model = project_id, model
        self.photos = _project_photos(project_id, model)
        chosen = sample_ids(project_id, model, self.photos)
        ids, matrix = stored_vectors("image", model, Image.objects.filter(pk__in=chosen))
        position = {str(pk): n for n, pk in enumerate(ids)}
        order = [position[str(pk)] for pk in chosen if str(pk) in position]
        self.ids = [str(ids[n]) for n in order]
        self.vectors = matrix[order].astype(np.float32) if order else np.zeros((0, 0), dtype=np.float32)

    def exclude(self, photo_ids: list) -> np.ndarray:
        ids = np.asarray(self.ids)
        return np.stack([ids == str(p) for p in photo_ids]) if photo_ids else np.zeros((0, len(ids)), dtype=bool)


def _comment_rows(comment_ids) -> dict:
    """{project id: [(comment id, photo id)]} of the comments."""
    from labeling.models import Comment

    out: dict = {}
    for pk, project, image in (Comment.objects.filter(pk__in=comment_ids).order_by("pk")
                               .values_list("pk", "assignment__project_id", "assignment__image_id")):
        out.setdefault(project, []).append((pk, image))
    return out


def _vectors(kind: str, model: str, ids) -> dict:
    from datasets.models import Image
    from labeling.models import Comment

    from .embedding import stored_vectors

    subjects = (Image if kind == "image" else Comment).objects.filter(pk__in=list(ids))
    got, matrix = stored_vectors(kind, model, subjects)
    return {str(pk): matrix[n].astype(np.float32) for n, pk in enumerate(got)}


def score_comments(model: str, comment_ids) -> tuple[list[dict], int]:
    """Scores of the comments (those whose vector and photo's vector `model` stored; the others
    are counted as missing): rows for services.store_comment_scores, and how many were missing."""
    rows, missing = [], 0
    for project_id, pairs in _comment_rows(comment_ids).items():
        sample = ProjectSample(project_id, model)
        cvec = _vectors("comment", model, [c for c, _p in pairs])
        pvec = _vectors("image", model, {p for _c, p in pairs})
        ready = [(c, p) for c, p in pairs if str(c) in cvec and str(p) in pvec]
        missing += len(pairs) - len(ready)
        if not ready or not len(sample.ids):
            missing += len(ready)
            continue
        s = score_pairs(np.stack([cvec[str(c)] for c, _p in ready]), np.stack([pvec[str(p)] for _c, p in ready]),
                        sample.vectors, sample.exclude([p for _c, p in ready]), better=0)
        for n, (c, _p) in enumerate(ready):
            rows.append({"comment": c, "project": project_id, "hallucination": round(float(s.hallucination[n]), 6),
                         "specificity": round(float(s.specificity[n]), 6), "similarity": round(float(s.similarity[n]), 6),
                         "reach": round(float(s.reach[n]), 6), "sample_size": int(s.sample_size[n])})
    return rows, missing


def better_photos(model: str, comment_ids) -> dict:
    """{comment id: [photo ids of the sample that fit it better, best first]} (<= BETTER_PHOTOS)."""
    out = {}
    for project_id, pairs in _comment_rows(comment_ids).items():
        sample = ProjectSample(project_id, model)
        cvec = _vectors("comment", model, [c for c, _p in pairs])
        pvec = _vectors("image", model, {p for _c, p in pairs})
        ready = [(c, p) for c, p in pairs if str(c) in cvec and str(p) in pvec]
        if not ready or not len(sample.ids):
            continue
        s = score_pairs(np.stack([cvec[str(c)] for c, _p in ready]), np.stack([pvec[str(p)] for _c, p in ready]),
                        sample.vectors, sample.exclude([p for _c, p in ready]))
        for n, (c, _p) in enumerate(ready):
            out[c] = [sample.ids[i] for i in s.better[n]]
    return out


# ---------------------------------------------------------------------------------------- calibration

def null_scores(model: str, project=None, pairs: int | None = None) -> PairScores | None:
    """Scores of shuffled pairs: comments that `model` scored (of `project`, or of every project),
    each with another random photo of its project (seeded: the same pairs on the same data).

    A project gets its share of `pairs` (by its number of scored comments). Where that share is
    more than it has comments (a small project, or few comments in all), each comment is paired
    with several distinct other photos, so the threshold rests on the pairs asked for, not on as
    few as the comments (whose quantile would move with the seed alone)."""
    from .models import CommentScore

    pairs = pairs or settings.CURATION["CALIBRATION_PAIRS"]
    scored = CommentScore.objects.filter(model=model)
    if project is not None:
        scored = scored.filter(project=project)
    by_project: dict = {}
    for comment, proj, photo in scored.order_by("comment_id").values_list("comment_id", "project_id",
                                                                          "comment__assignment__image_id"):
        by_project.setdefault(proj, []).append((comment, photo))
    parts = []
    total = sum(len(v) for v in by_project.values()) or 1
    for proj, rows in sorted(by_project.items()):
        seed = int(_rank_key(proj, model, "null")[:12], 16)
        rng = np.random.default_rng(seed)
        sample = ProjectSample(proj, model)
        if len(sample.photos) < 3 or not len(sample.ids):
            continue
        take = max(1, round(pairs * len(rows) / total))
        chosen = [rows[i] for i in sorted(rng.choice(len(rows), min(take, len(rows)), replace=False))]
        photos = sorted(sample.photos, key=str)
        # Other photos per comment: one, or where the share is larger, as many as it asks for.
        per_comment = min(math.ceil(take / len(rows)), len(photos) - 1)
        shuffled = []
        for comment, own in chosen:
            picked = rng.choice(len(photos), per_comment + 1, replace=False)
            others = [photos[int(i)] for i in picked if str(photos[int(i)]) != str(own)][:per_comment]
            shuffled.extend((comment, own, other) for other in others)
        cvec = _vectors("comment", model, [c for c, _o, _x in shuffled])
        pvec = _vectors("image", model, {x for _c, _o, x in shuffled})
        ready = [t for t in shuffled if str(t[0]) in cvec and str(t[2]) in pvec]
        if not ready:
            continue
        ids = np.asarray(sample.ids)
        exclude = np.stack([(ids == str(own)) | (ids == str(other)) for _c, own, other in ready])
        parts.append(score_pairs(np.stack([cvec[str(c)] for c, _o, _x in ready]),
                                 np.stack([pvec[str(x)] for _c, _o, x in ready]), sample.vectors, exclude, better=0))
    if not parts:
        return None
    return PairScores(*(np.concatenate([getattr(p, f) for p in parts]) for f in
                        ("hallucination", "specificity", "similarity", "sample_size")), [])


def calibrate(model: str, project=None, target_rate: float | None = None):
    """Choose and store the hallucination threshold of `model` (and the specificity null's
    quantiles) from shuffled pairs (see the module's doc: threshold = the (1 - target_rate)
    quantile of the null, so `target_rate` of wrong-photo comments are flagged). Returns the
    hallucination ScoreCalibration, or None when there are too few scored comments."""
    from .services import store_calibration

    target = settings.CURATION["HALLUCINATION_TARGET_RATE"] if target_rate is None else float(target_rate)
    null = null_scores(model, project)
    if null is None or not len(null.hallucination):
        return None
    rows = {}
    for kind, values in (("hallucination", null.hallucination), ("specificity", null.specificity)):
        q = {f"{p:g}": round(float(np.quantile(values, p)), 6) for p in QUANTILES}
        threshold = (float(np.quantile(values, 1 - target)) if kind == "hallucination"
                     else float(np.quantile(values, target)))
        rows[kind] = store_calibration(model, kind, threshold=round(threshold, 6), target_rate=target,
                                       null_pairs=len(values), null_quantiles=q)
    return rows["hallucination"]


# ---------------------------------------------------------------------------------------- the step

def _identity() -> str | None:
    from .embedding import current_identity

    return current_identity("comment")


class Scores(Step):
    """Score the run's comments that the current model has not scored (one CommentScore per model
    and comment: a rerun or a redelivered chunk scores nothing twice), then in `finish`: calibrate
    the model if it has no calibration yet, and flag HALLUCINATION (score >= threshold) and, where
    the project sets `specificity_flag_below`, LOW_SPECIFICITY."""

    name = "scores"
    label = gettext_lazy("Hallucination and specificity scores")
    queue = "embeddings"
    subject = "comments"
    requires = ("embed_images", "embed_comments")

    @property
    def chunk_size(self) -> int:
        return settings.CURATION_EMBED["CHUNK"]

    def unavailable(self, run) -> str | None:
        from .embedding import _embedding_unavailable

        return _embedding_unavailable()

    def plan(self, run) -> list:
        from .models import CommentScore, Embedding

        identity = _identity()
        if identity is None:
            return []
        done = CommentScore.objects.filter(model=identity, comment_id=OuterRef("pk"))
        has = Embedding.objects.filter(model=identity, comment_id=OuterRef("pk"))
        return list(run.new_comments(self.name).filter(Exists(has)).filter(~Exists(done))
                    .order_by("pk").values_list("pk", flat=True))

    def process(self, run, ids: list) -> dict[str, int]:
        from .models import CommentScore
        from .services import store_comment_scores

        identity = _identity()
        if identity is None:
            return {"comments": 0}
        done = set(CommentScore.objects.filter(model=identity, comment_id__in=ids).values_list("comment_id", flat=True))
        rows, missing = score_comments(identity, [pk for pk in ids if pk not in done])
        counts = {"scored": store_comment_scores(identity, rows), "skipped": len(done)}
        if missing:
            counts["no_vector"] = missing
        return counts

    def finish(self, run) -> dict[str, int]:
        from .models import CommentScore, ScoreCalibration, ScoreKind

        identity = _identity()
        if identity is None:
            return {}
        calibration = ScoreCalibration.objects.filter(model=identity, kind=ScoreKind.HALLUCINATION).first()
        if calibration is None or run.options.get("recalibrate"):
            calibration = calibrate(identity, run.project) or calibration
        scores = CommentScore.objects.filter(model=identity, comment__in=run.scope_comments())
        return flag_scores(identity, scores, calibration)


def reach_floors(model: str, projects) -> dict:
    """{project id: the reach below which a comment of the project is bland} (the
    CURATION["HALLUCINATION_REACH_QUANTILE"] quantile of its scored comments' reach by `model`);
    no entry where the rule is off or the project has no reach values."""
    from .models import CommentScore

    share = settings.CURATION["HALLUCINATION_REACH_QUANTILE"]
    if not share:
        return {}
    values: dict = {}
    for project, reach in (CommentScore.objects.filter(model=model, project_id__in=list(projects), reach__isnull=False)
                           .values_list("project_id", "reach")):
        values.setdefault(project, []).append(reach)
    return {project: round(float(np.quantile(v, share)), 6) for project, v in values.items()}


def is_bland(reach: float | None, floor: float | None) -> bool:
    """A comment that reaches no photo clearly (its reach below its project's floor): its own
    photo's rank among the sample is noise, so it is not called a hallucination (its low
    specificity is what the specificity page and LOW_SPECIFICITY show)."""
    return reach is not None and floor is not None and reach < floor


def flag_scores(model: str, scores, calibration) -> dict[str, int]:
    """HALLUCINATION flags for `scores` at or above the calibration's threshold, unless the comment
    is bland (`is_bland`: its reach below its project's floor) (evidence: score, threshold, model,
    calibration id and date, specificity, reach and floor, the better-fitting sample photos) and
    LOW_SPECIFICITY flags below their project's `specificity_flag_below`."""
    from labeling.models import Project

    from .models import FlagKind
    from .services import FlagData, record_flags

    counts: dict[str, int] = {}
    below = dict(Project.objects.filter(specificity_flag_below__isnull=False).values_list("pk", "specificity_flag_below"))
    rows = list(scores.values_list("comment_id", "project_id", "hallucination", "specificity", "similarity",
                                   "sample_size", "reach"))
    floors = reach_floors(model, {r[1] for r in rows})
    high, low, bland = [], [], 0
    for pk, project, h, spec, sim, size, reach in rows:
        if calibration is not None and h >= calibration.threshold:
            if is_bland(reach, floors.get(project)):
                bland += 1
            else:
                high.append((pk, h, spec, sim, size, reach, floors.get(project)))
        if project in below and spec < below[project]:
            low.append((pk, project, spec, sim, size))
    # Every scored comment here was looked at again: a flag the rule no longer raises (a new
    # calibration, a comment found bland, a project threshold lowered or cleared) is withdrawn.
    checked = [r[0] for r in rows]
    if calibration is not None and checked:
        better = better_photos(model, [r[0] for r in high]) if high else {}
        flags = [FlagData(kind=FlagKind.HALLUCINATION, comment=pk, score=h, evidence={
            "hallucination": h, "threshold": calibration.threshold, "target_rate": calibration.target_rate,
            "model": model, "calibration": calibration.pk, "calibrated_at": calibration.created_at.isoformat(),
            "specificity": spec, "similarity": sim, "sample_size": size, "better_photos": better.get(pk, []),
            "reach": reach, "reach_floor": floor,
        }) for pk, h, spec, sim, size, reach, floor in high]
        recorded = record_flags(DETECTOR, f"{calibration.pk}:{model}"[:50], flags, checked_comments=checked,
                                kinds=[FlagKind.HALLUCINATION])
        counts.update(hallucination_new=recorded["created"], hallucination_updated=recorded["updated"] + recorded["reopened"])
        if recorded.get("withdrawn"):
            counts["hallucination_withdrawn"] = recorded["withdrawn"]
    if checked:
        flags = [FlagData(kind=FlagKind.LOW_SPECIFICITY, comment=pk, score=spec, evidence={
            "specificity": spec, "threshold": below[project], "model": model, "similarity": sim, "sample_size": size,
        }) for pk, project, spec, sim, size in low]
        recorded = record_flags(DETECTOR, model[:50], flags, checked_comments=checked, kinds=[FlagKind.LOW_SPECIFICITY])
        counts.update(low_specificity_new=recorded["created"],
                      low_specificity_updated=recorded["updated"] + recorded["reopened"])
        if recorded.get("withdrawn"):
            counts["low_specificity_withdrawn"] = recorded["withdrawn"]
    counts["hallucination_flags"] = len(high)
    if bland:
        counts["hallucination_bland"] = bland
    counts["low_specificity_flags"] = len(low)
    return counts


STEPS = [Scores()]
