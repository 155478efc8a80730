"""The steps of a curation run: what each does to a chunk of photos (or projects), and once at the end.

The runner (curation/runs.py) calls, for each step of a run in the order of `STEPS`:
`unavailable(run)` (a reason to skip it here, or None), `plan(run)` (the ids still to do), then
`process(run, ids)` once per chunk of `chunk_size` ids, each in a Celery task on `queue` (any
number of workers; a chunk delivered twice must be harmless), then `finish(run)` once. process and
finish return counts ({"flags": 3, ...}) that the run page adds up per step. Flags are written
only through curation.services.record_flags (one flag per detector, kind and subject: running a
step again over the same data changes nothing).

Stale flags: a step that checks subjects again passes what it checked, so the open flags it no
longer finds are withdrawn (FlagStatus.WITHDRAWN; decided flags stay; one found again reopens):

    record_flags(DETECTOR, VERSION, flags, checked_comments=ids, kinds=[FlagKind.PII])
    record_flags(DETECTOR, VERSION, flags, checked_images=ids, kinds=[FlagKind.FACE, ...])

`checked_*`: every subject the chunk looked at (flagged or not, not the unreadable ones);
`kinds`: every kind the step can raise there. quality, perceptual (a group whose members no
longer match), text (per project), pii and toxicity do so; a new detector (scores, photo_pii)
does the same.

The steps here:
- quality: curation.quality's statistics of each photo's stored thumbnail, flags below the
  thresholds of settings.CURATION["QUALITY_THRESHOLDS"] (evidence: the number and the threshold).
- signatures: each photo's 25 window hashes (curation.perceptual.signature), stored once per
  photo (PhotoSignature) for the whole catalogue, as the perceptual search is against everything.
- perceptual: each photo of the run searched against every stored signature (multi-index
  hashing), candidates confirmed on the thumbnails, pairs joined into groups with a suggested
  keeper (largest, best licence, already labeled, oldest), every member flagged
  NEAR_DUPLICATE_PHOTO. Across categories, sources and projects.
- text: per project, curation.textdup over its submitted comments: DUPLICATE_COMMENT and
  TEMPLATE_COMMENT clusters (count, share, examples) and SELF_COPY_COMMENT per labeler.

The detectors of other modules join the list when the app loads (CurationConfig.ready, after
the ones here, since they subclass Step): photo_pii (curation.photo_pii: faces and licence plates),
pii (curation.pii_step), toxicity (curation.toxicity).

Exact duplicates: ingest refuses the same bytes (Image.sha256) and the same decoded pixels
(Image.pixel_sha256), both unique in the database, so no exact copy reaches the catalogue; the same
photo at another size or encoding is a perceptual duplicate at distance 0-2. No step writes
DUPLICATE_PHOTO.
"""
from __future__ import annotations

import abc
import hashlib
import logging

import numpy as np
from django.conf import settings
from django.core.files.storage import default_storage
from django.utils.translation import gettext_lazy as _
from PIL import Image as PILImage

from datasets.models import Image, Licence
from labeling.models import Assignment, AssignmentStatus

from . import perceptual, quality, textdup
from .models import Decision, DecisionAction, Flag, FlagKind, PhotoSignature
from .services import FlagData, record_flags

log = logging.getLogger(__name__)


class Step(abc.ABC):
    """The interface of a step (see the module's doc). Subclasses set the class attributes and
    implement plan/process (and override finish, unavailable where they need to)."""

    name: str = ""
    label = ""
    queue: str = "curation"
    subject: str = "photos"   # what the ids are: "photos", "comments" or "projects"
    chunk_size: int = 0       # 0: settings.CURATION["CHUNK_SIZE"]
    requires: tuple[str, ...] = ()  # steps that must run before this one in the same run

    def unavailable(self, run) -> str | None:
        return None

    @abc.abstractmethod
    def plan(self, run) -> list:
        """The ids still to do."""

    @abc.abstractmethod
    def process(self, run, ids: list) -> dict[str, int]:
        """Do one chunk (idempotent); the counts to add."""

    def finish(self, run) -> dict[str, int]:
        return {}

    def process_chunk(self, run, ids: list) -> tuple[dict[str, int], list]:
        """What the runner calls: process's counts, and what the chunk keeps for finish (a JSON
        list, RunChunk.result; nothing by default)."""
        return self.process(run, ids), []

    def size(self) -> int:
        return self.chunk_size or settings.CURATION["CHUNK_SIZE"]


def open_thumbnail(image: Image) -> PILImage.Image:
    with default_storage.open(image.thumbnail.name, "rb") as fh:
        img = PILImage.open(fh)
        img.load()
    return img


def _add(counts: dict, other: dict) -> dict:
    for key, value in other.items():
        counts[key] = counts.get(key, 0) + value
    return counts


def _flag_counts(recorded: dict) -> dict[str, int]:
    counts = {"flags_new": recorded["created"], "flags_updated": recorded["updated"] + recorded["reopened"]}
    if recorded.get("withdrawn"):
        counts["flags_withdrawn"] = recorded["withdrawn"]
    return counts


# ---------------------------------------------------------------------------------------- quality

QUALITY_KINDS = {
    "dark": FlagKind.QUALITY_DARK,
    "light": FlagKind.QUALITY_OVEREXPOSED,
    "blurry": FlagKind.QUALITY_BLURRY,
    "low_information": FlagKind.QUALITY_LOW_INFORMATION,
    "odd_aspect": FlagKind.QUALITY_ODD_ASPECT,
    "grayscale": FlagKind.QUALITY_GRAYSCALE,
    "tiny": FlagKind.QUALITY_TINY,
}
QUALITY_DETECTOR = "quality"
QUALITY_VERSION = "1"


class Quality(Step):
    name = "quality"
    label = _("Image quality")

    def plan(self, run) -> list:
        return [str(pk) for pk in run.new_images(self.name).order_by("pk").values_list("pk", flat=True)]

    def process(self, run, ids: list) -> dict[str, int]:
        thresholds = settings.CURATION["QUALITY_THRESHOLDS"]
        flags, unreadable, checked = [], 0, []
        for image in Image.objects.filter(pk__in=ids).only("pk", "thumbnail", "original_width", "original_height"):
            try:
                report = quality.assess(open_thumbnail(image), width=image.original_width,
                                        height=image.original_height, thresholds=thresholds)
            except (OSError, ValueError):
                log.warning("quality: photo %s: thumbnail unreadable", image.pk, exc_info=True)
                unreadable += 1
                continue
            checked.append(image.pk)
            for name, (value, threshold) in report.flags.items():
                flags.append(FlagData(kind=QUALITY_KINDS[name], image=image.pk, score=value,
                                      evidence={"statistic": name, "value": value, "threshold": threshold}))
        counts = _flag_counts(record_flags(QUALITY_DETECTOR, QUALITY_VERSION, flags, checked_images=checked,
                                           kinds=QUALITY_KINDS.values()))
        counts["photos"] = len(ids) - unreadable
        if unreadable:
            counts["unreadable"] = unreadable
        return counts


# ---------------------------------------------------------------------------------------- signatures

def pack_windows(windows) -> bytes:
    return np.asarray(windows, dtype="<i8").tobytes()


def unpack_windows(data) -> np.ndarray:
    return np.frombuffer(bytes(data), dtype="<i8")


class Signatures(Step):
    name = "signatures"
    label = _("Window hashes")

    def plan(self, run) -> list:
        # The whole catalogue, whatever the run's scope: the perceptual search is against everything.
        missing = Image.objects.exclude(pk__in=PhotoSignature.objects.values("image_id"))
        return [str(pk) for pk in missing.order_by("pk").values_list("pk", flat=True)]

    def process(self, run, ids: list) -> dict[str, int]:
        from .services import store_signatures

        rows, unreadable = {}, 0
        for image in Image.objects.filter(pk__in=ids).only("pk", "thumbnail"):
            try:
                rows[image.pk] = pack_windows(perceptual.signature(open_thumbnail(image)).windows)
            except (OSError, ValueError):
                log.warning("signatures: photo %s: thumbnail unreadable", image.pk, exc_info=True)
                unreadable += 1
        counts = {"photos": store_signatures(rows)}
        if unreadable:
            counts["unreadable"] = unreadable
        return counts


# ---------------------------------------------------------------------------------------- perceptual

PERCEPTUAL_DETECTOR = "perceptual"
PERCEPTUAL_VERSION = "1"

# One index per process and run: the chunks of a run on one worker build it once.
_index_cache: dict = {}


def perceptual_index(run) -> perceptual.PerceptualIndex:
    """Every stored signature in one index, built once per process for a run (and again when
    signatures were added meanwhile)."""
    key = (run.pk, run.created_at, PhotoSignature.objects.count())
    cached = _index_cache.get("index")
    if cached is not None and _index_cache.get("key") == key:
        return cached
    ids, full, windows = [], [], []
    rows = PhotoSignature.objects.values_list("image_id", "image__phash", "windows").order_by("image_id")
    for image_id, phash, data in rows.iterator(chunk_size=5000):
        ids.append(image_id)
        full.append(phash)
        windows.append(unpack_windows(data))
    index = perceptual.PerceptualIndex(
        ids, np.asarray(full, dtype=np.int64),
        np.stack(windows) if windows else np.zeros((0, perceptual.WINDOWS), dtype=np.int64))
    _index_cache.clear()
    _index_cache.update(key=key, index=index)
    return index


def licence_rank() -> dict[str, int]:
    """Licences from the most permissive (commercial use, no attribution, no share-alike) down."""
    rows = Licence.objects.values_list("code", "commercial_use", "attribution_required", "share_alike")
    ordered = sorted(rows, key=lambda r: (not r[1], r[2], r[3], r[0]))
    return {code: n for n, (code, *_rest) in enumerate(ordered)}


def photo_facts(image_ids) -> dict[str, perceptual.PhotoFacts]:
    ids = list(image_ids)
    labeled = {str(pk) for pk in Assignment.objects.filter(
        image_id__in=ids, status=AssignmentStatus.SUBMITTED).values_list("image_id", flat=True)}
    facts = {}
    for pk, w, h, licence, created in Image.objects.filter(pk__in=ids).values_list(
            "pk", "original_width", "original_height", "licence__code", "created_at"):
        facts[str(pk)] = perceptual.PhotoFacts(str(pk), w * h, licence, str(pk) in labeled, created.isoformat())
    return facts


def _pair_dict(p: perceptual.PerceptualPair) -> dict:
    return {"a": p.a, "b": p.b, "distance": p.distance, "via": p.via, "confirmation": p.confirmation}


def _pair(d: dict) -> perceptual.PerceptualPair:
    return perceptual.PerceptualPair(str(d["a"]), str(d["b"]), int(d["distance"]), d.get("via", "full"),
                                     d.get("confirmation"))


def chosen_keeper(members: list[str]) -> str | None:
    """The keeper a planner chose for this group (the latest choice not taken back), if any."""
    latest = (Decision.objects.filter(action=DecisionAction.CHOOSE_KEEPER, undone_by__isnull=True,
                                      duplicate_of_id__in=members).order_by("-at", "-id")
              .values_list("duplicate_of_id", flat=True).first())
    return str(latest) if latest is not None else None


def group_key(members) -> str:
    return "near:" + min(str(m) for m in members)


class Perceptual(Step):
    name = "perceptual"
    label = _("Near-duplicate photos")
    requires = ("signatures",)

    def plan(self, run) -> list:
        return [str(pk) for pk in run.new_images(self.name).order_by("pk").values_list("pk", flat=True)]

    def process(self, run, ids: list) -> dict[str, int]:
        return self.process_chunk(run, ids)[0]

    def process_chunk(self, run, ids: list) -> tuple[dict[str, int], list]:
        """Counts, and the confirmed pairs (kept in the chunk's result for finish)."""
        index = perceptual_index(run)
        queries = [i for i in ids if str(i) in index.position]
        candidates = index.find_pairs(queries)
        thumbs = {str(img.pk): img for img in Image.objects.filter(
            pk__in={p.a for p in candidates} | {p.b for p in candidates}).only("pk", "thumbnail")}
        confirmed = perceptual.confirm_pairs(candidates, lambda image_id: open_thumbnail(thumbs[image_id]))
        counts = {"photos": len(queries), "candidates": len(candidates), "pairs": len(confirmed)}
        if len(queries) < len(ids):
            counts["no_signature"] = len(ids) - len(queries)
        return counts, [_pair_dict(p) for p in confirmed]

    def finish(self, run, results: list | None = None) -> dict[str, int]:
        from .models import RunChunk

        if results is None:
            results = [r for chunk in RunChunk.objects.filter(step__run=run, step__name=self.name)
                       .values_list("result", flat=True) for r in chunk]
        pairs = {(min(d["a"], d["b"]), max(d["a"], d["b"])): _pair(d) for d in results}
        queried = set(self.plan_ids(run))
        touched = {x for key in pairs for x in key}
        # Pairs found by earlier runs around these photos stay, except those this run looked at
        # again (both photos queried now) and did not find.
        earlier = Flag.objects.filter(detector=PERCEPTUAL_DETECTOR, kind=FlagKind.NEAR_DUPLICATE_PHOTO,
                                      image_id__in=touched)
        keys = set(earlier.values_list("group_key", flat=True))
        for evidence in Flag.objects.filter(detector=PERCEPTUAL_DETECTOR, group_key__in=keys).values_list(
                "evidence", flat=True):
            for d in evidence.get("pairs", []):
                key = (min(d["a"], d["b"]), max(d["a"], d["b"]))
                if key not in pairs and not (key[0] in queried and key[1] in queried):
                    pairs[key] = _pair(d)
        members = {x for key in pairs for x in key}
        groups = perceptual.group_pairs(pairs.values(), photo_facts(members), licence_rank())
        flags = []
        for group in groups:
            keeper = chosen_keeper(group.members)
            if keeper not in group.members:
                keeper = group.keeper
            evidence = group.evidence()
            evidence["keeper"] = keeper
            best: dict[str, perceptual.PerceptualPair] = {}
            for p in group.pairs:
                for x in (p.a, p.b):
                    if x not in best or p.distance < best[x].distance:
                        best[x] = p
            for member in group.members:
                p = best[member]
                flags.append(FlagData(kind=FlagKind.NEAR_DUPLICATE_PHOTO, image=member, score=p.similarity,
                                      evidence={**evidence, "distance": p.distance, "confirmation": p.confirmation},
                                      group_key=group_key(group.members), keeper=keeper))
        # A photo queried now that is in no group any more: its open flag is withdrawn.
        counts = _flag_counts(record_flags(PERCEPTUAL_DETECTOR, PERCEPTUAL_VERSION, flags, checked_images=queried,
                                           kinds=[FlagKind.NEAR_DUPLICATE_PHOTO]))
        counts["groups"] = len(groups)
        return counts

    def plan_ids(self, run) -> list:
        from .models import RunChunk

        return [i for ids in RunChunk.objects.filter(step__run=run, step__name=self.name).values_list("ids", flat=True)
                for i in ids]


# ---------------------------------------------------------------------------------------- text

TEXT_DETECTOR = "textdup"
TEXT_VERSION = "1"


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:16]


class TextDuplicates(Step):
    """One chunk per project: templates and copies are about the whole project's comments."""

    name = "text"
    label = _("Duplicate and template comments")
    subject = "projects"
    chunk_size = 1

    def plan(self, run) -> list:
        comments = run.new_comments(self.name)
        return sorted(set(comments.values_list("assignment__project_id", flat=True)))

    def process(self, run, ids: list) -> dict[str, int]:
        from labeling.models import Comment

        cfg = settings.CURATION
        counts: dict[str, int] = {}
        for project_id in ids:
            rows = [
                textdup.CommentRow(pk, image_id, f"u{labeler}" if labeler else f"ext{source}", text)
                for pk, image_id, labeler, source, text in Comment.objects.filter(
                    assignment__project_id=project_id, assignment__status=AssignmentStatus.SUBMITTED,
                ).order_by("created_at", "id").values_list(
                    "pk", "assignment__image_id", "assignment__labeler_id", "assignment__external_source_id", "text")
            ]
            report = textdup.analyse(rows, threshold=cfg["TEXT_THRESHOLD"],
                                     template_min_photos=cfg["TEMPLATE_MIN_PHOTOS"])
            flags = []
            for cluster in report.clusters:
                kind = FlagKind.TEMPLATE_COMMENT if cluster.is_template else FlagKind.DUPLICATE_COMMENT
                key = f"text:{project_id}:{_digest(cluster.text)}"
                for comment_id in cluster.comment_ids:
                    flags.append(FlagData(kind=kind, comment=comment_id, score=cluster.share,
                                          evidence=cluster.evidence(), group_key=key))
            copiers = 0
            texts = {r.comment_id: r.text for r in rows}
            for entry in report.labelers:
                if not entry.self_copies or entry.share < cfg["SELF_COPY_MIN_SHARE"]:
                    continue
                copiers += 1
                # What the reviewer reads: the labeler's numbers and their copied texts.
                evidence = {**entry.evidence(), "threshold": cfg["SELF_COPY_MIN_SHARE"],
                            "examples": [texts[c] for c, _source in entry.copies[:textdup.EXAMPLES]]}
                for comment_id, source_id in entry.copies:
                    flags.append(FlagData(kind=FlagKind.SELF_COPY_COMMENT, comment=comment_id, score=entry.share,
                                          evidence={**evidence, "copy_of": source_id, "text": texts[source_id]},
                                          group_key=f"self:{project_id}:{entry.labeler}"))
            _add(counts, _flag_counts(record_flags(
                TEXT_DETECTOR, TEXT_VERSION, flags, checked_comments=[r.comment_id for r in rows],
                kinds=[FlagKind.TEMPLATE_COMMENT, FlagKind.DUPLICATE_COMMENT, FlagKind.SELF_COPY_COMMENT])))
            _add(counts, {"comments": report.total, "clusters": len(report.clusters),
                          "templates": len(report.templates), "self_copiers": copiers})
        return counts


# ---------------------------------------------------------------------------------------- registry

STEPS: list[Step] = [
    Quality(),
    Signatures(),
    Perceptual(),
    TextDuplicates(),
    # + curation.photo_pii.STEPS, curation.pii.STEPS, curation.toxicity.STEPS,
    # curation.embedding.STEPS and curation.scores.STEPS (after embed_comments and semantic):
    # added by register_detectors() at app load.
]

PHOTO_STEPS = ("quality", "signatures", "perceptual", "photo_pii")
# The automatic text run after new comment sets (runs.maybe_run_text). "scores" brings the
# embedding steps it requires; without weights all three are skipped at once with the reason.
TEXT_STEPS = ("text", "pii", "toxicity", "scores")


def register_detectors() -> None:
    """Add the steps other modules define (they import Step from here, so they cannot be listed
    above): once, when the app loads."""
    from . import embedding, photo_pii, pii, scores, toxicity

    known = {step.name for step in STEPS}
    STEPS.extend(step for step in [*photo_pii.STEPS, *pii.STEPS, *toxicity.STEPS, *embedding.STEPS, *scores.STEPS]
                 if step.name not in known)


def by_name() -> dict[str, Step]:
    return {step.name: step for step in STEPS}


def resolve(names) -> list[str]:
    """The steps to run for `names` (all when empty), with what they require, in STEPS order.
    Unknown names raise KeyError."""
    known = by_name()
    wanted = set(names or known)
    for name in list(wanted):
        if name not in known:
            raise KeyError(name)
    grow = True
    while grow:
        grow = False
        for name in list(wanted):
            for needed in known[name].requires:
                if needed not in wanted:
                    wanted.add(needed)
                    grow = True
    return [step.name for step in STEPS if step.name in wanted]

