"""Every change to curation state: detectors record flags, planners decide on them.

- `record_flags(detector, version, flags)`: what detectors call (idempotent per detector, kind
  and subject).
- `lexicon_findings(texts)` / `flag_lexicon_inline(comments, found)`: the korcen lexicon at submit
  (labeling.services.submit: the check before its transaction, the flags inside).
- `decide(flags, action, actor, reason, duplicate_of=None)`: a planner's decision on one or many
  flags, in one transaction, each with its Decision row (the audit trail). The decisions act
  through the services that own the state: a photo is excluded by datasets.services.set_image_status
  (it leaves every labeling queue and every future snapshot), a comment set is rejected by
  labeling.services.reject_set (its slot reopens; snapshots leave it out).
- `undo(decision, actor)`: take back the latest decision on a flag.
- `choose_keeper(flag, actor, reason)`: keep another photo of a duplicate group than the one
  suggested (audited as a Decision on that photo's flag; undone like any decision).
- `store_signatures(rows)`: the perceptual step's window hashes.
Curation runs (start, chunks, finish, cancel, resume) are in curation/runs.py.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from datasets.models import Image, ImageStatus
from datasets.services import set_image_status
from labeling import services as labeling_services
from labeling.models import AssignmentStatus, Comment

from .models import (
    DUPLICATE_PHOTO_KINDS,
    PHOTO_KINDS,
    Decision,
    DecisionAction,
    Flag,
    FlagKind,
    FlagStatus,
    PhotoSignature,
    ToxicityModel,
)

# Most flags one decision may take (the review page's bulk selection, the API's bulk decide).
BULK_MAX = 500


class CurationError(Exception):
    """A decision the flag's state refuses (the API answers 409)."""

    status_code = 409

    def __init__(self, message=None):
        super().__init__(message or _("This decision cannot be made on this flag."))
        self.message = message


@dataclass
class FlagData:
    """One finding as a detector reports it. Exactly one of `image` / `comment` (objects or ids).
    For duplicate groups: `group_key` (the same for every member) and `keeper` (the suggested
    photo to keep: object or id)."""

    kind: str
    image: object = None
    comment: object = None
    score: float = 0.0
    evidence: dict = field(default_factory=dict)
    group_key: str = ""
    keeper: object = None


def _pk(value):
    return getattr(value, "pk", value)


def _as_data(item) -> FlagData:
    if isinstance(item, FlagData):
        return item
    if isinstance(item, dict):
        unknown = set(item) - set(FlagData.__dataclass_fields__)
        if unknown:
            raise ValidationError({"flags": _("Unknown flag fields: %(names)s.") % {"names": ", ".join(sorted(unknown))}})
        return FlagData(**item)
    raise ValidationError({"flags": _("A flag is a dict or a FlagData.")})


def _evidence_digest(evidence: dict) -> str:
    return hashlib.sha256(json.dumps(evidence, sort_keys=True, default=str).encode()).hexdigest()


def record_flags(detector: str, version: str, flags: Iterable, *, checked_images: Iterable | None = None,
                 checked_comments: Iterable | None = None, kinds: Iterable | None = None) -> dict:
    """Store a detector's findings: one Flag per (detector, kind, subject), in one transaction.

    Idempotent: running the detector again over the same data changes nothing. For a flag that
    exists already:
    - open: score, evidence, version, group key and keeper are updated;
    - withdrawn (see below): reopened, the detector finds it again;
    - decided (kept, rejected, excluded, duplicate): the planner's decision stands. It is updated
      and reopened only when the evidence changed (a new duplicate partner, another cluster):
      the decision was about other evidence. Same evidence: only the version is updated.

    Stale flags: a step that looked at subjects again says which (`checked_images` /
    `checked_comments`: every photo or comment it checked, flagged or not) and which `kinds` it
    can raise. The OPEN flags of this detector, of those kinds, on those subjects, that `flags`
    does not hold any more become WITHDRAWN (the detector no longer finds them; the review queue
    leaves them out). Decided flags stay as they are.

    Every flag is checked before anything is written (bad input writes nothing). Returns counts:
    {"created", "updated", "reopened", "unchanged"} (and "withdrawn" when subjects were checked).
    """
    detector = str(detector or "").strip()
    if not detector or len(detector) > 100:
        raise ValidationError({"detector": _("Give the detector's name (at most 100 characters).")})
    version = str(version or "")[:50]
    checking = checked_images is not None or checked_comments is not None
    kinds = sorted(set(kinds or ()))
    if checking and (not kinds or any(k not in FlagKind.values for k in kinds)):
        raise ValidationError({"kinds": _("Say which flag kinds the detector checked for.")})
    if checked_images is not None:
        try:
            checked_images = {str(Image._meta.pk.to_python(_pk(i))) for i in checked_images}
        except ValidationError:
            raise ValidationError({"checked_images": _("Photo ids, please.")}) from None
    if checked_comments is not None:
        checked_comments = {_int_or_none(_pk(c)) for c in checked_comments} - {None}
    items = [_as_data(item) for item in flags]
    for d in items:  # photo ids as the database has them (a UUID given as text in any spelling)
        for name in ("image", "keeper"):
            value = getattr(d, name)
            if value is not None:
                try:
                    setattr(d, name, Image._meta.pk.to_python(_pk(value)))
                except ValidationError:
                    raise ValidationError({name: _("No such photo: %(id)s.") % {"id": _pk(value)}}) from None
    comment_ids = {_pk(d.comment) for d in items if d.comment is not None}
    comments = dict(
        Comment.objects.filter(pk__in=comment_ids).values_list("pk", "assignment__project_id")
    )
    image_ids = {_pk(d.image) for d in items if d.image is not None} | {_pk(d.keeper) for d in items if d.keeper is not None}
    known_images = {str(pk) for pk in Image.objects.filter(pk__in=image_ids).values_list("pk", flat=True)}
    for d in items:
        if d.kind not in FlagKind.values:
            raise ValidationError({"kind": _("Unknown flag kind: %(kind)s.") % {"kind": d.kind}})
        if (d.image is None) == (d.comment is None):
            raise ValidationError({"flags": _("A flag is about a photo or a comment: give exactly one.")})
        if d.image is not None and d.kind not in PHOTO_KINDS and d.kind not in (
            FlagKind.HALLUCINATION, FlagKind.BIAS, FlagKind.TOXICITY, FlagKind.PII
        ):
            raise ValidationError({"kind": _("%(kind)s flags are about comments, not photos.") % {"kind": d.kind}})
        if d.comment is not None and d.kind in PHOTO_KINDS:
            raise ValidationError({"kind": _("%(kind)s flags are about photos, not comments.") % {"kind": d.kind}})
        if d.image is not None and str(_pk(d.image)) not in known_images:
            raise ValidationError({"image": _("No such photo: %(id)s.") % {"id": _pk(d.image)}})
        if d.keeper is not None and str(_pk(d.keeper)) not in known_images:
            raise ValidationError({"keeper": _("No such photo: %(id)s.") % {"id": _pk(d.keeper)}})
        if d.comment is not None and _pk(d.comment) not in comments:
            raise ValidationError({"comment": _("No such comment: %(id)s.") % {"id": _pk(d.comment)}})
        if not isinstance(d.evidence, dict):
            raise ValidationError({"evidence": _("Evidence is a JSON object.")})
        try:
            d.score = float(d.score)
        except (TypeError, ValueError):
            raise ValidationError({"score": _("The score is a number.")}) from None
    # One flag per subject and kind: a later item for the same one wins.
    latest: dict[tuple, FlagData] = {}
    for d in items:
        subject = ("image", str(_pk(d.image))) if d.image is not None else ("comment", _pk(d.comment))
        latest[(d.kind, *subject)] = d
    counts = {"created": 0, "updated": 0, "reopened": 0, "unchanged": 0, **({"withdrawn": 0} if checking else {})}
    with transaction.atomic():
        for start in range(0, len(latest), RECORD_BATCH):
            _record_batch(detector, version, list(latest.items())[start:start + RECORD_BATCH], comments, counts)
        found = set(latest)
        if checked_images:
            counts["withdrawn"] += _withdraw(detector, kinds, "image", checked_images, found)
        if checked_comments:
            counts["withdrawn"] += _withdraw(detector, kinds, "comment", checked_comments, found)
    return counts


def _withdraw(detector: str, kinds: list, subject: str, checked: set, found: set) -> int:
    """Open flags of `detector` and `kinds` on the `checked` subjects ("image" or "comment" ids)
    that this pass did not find again (`found`: record_flags' (kind, subject, id) keys): withdrawn."""
    field = f"{subject}_id"
    stale = []
    ordered = sorted(checked, key=str)
    for start in range(0, len(ordered), RECORD_BATCH):
        rows = Flag.objects.filter(detector=detector, kind__in=kinds, status=FlagStatus.OPEN,
                                   **{f"{field}__in": ordered[start:start + RECORD_BATCH]}).values_list(
            "pk", "kind", field)
        for pk, kind, value in rows:
            if (kind, subject, str(value) if subject == "image" else value) not in found:
                stale.append(pk)
    for start in range(0, len(stale), RECORD_BATCH):
        Flag.objects.filter(pk__in=stale[start:start + RECORD_BATCH]).update(
            status=FlagStatus.WITHDRAWN, updated_at=timezone.now())
    return len(stale)


# Flags read and written per query by record_flags.
RECORD_BATCH = 1000


def _record_batch(detector: str, version: str, batch: list, comments: dict, counts: dict) -> None:
    kinds = {key[0] for key, _d in batch}
    image_ids = [key[2] for key, _d in batch if key[1] == "image"]
    comment_ids = [key[2] for key, _d in batch if key[1] == "comment"]
    existing = {}
    rows = Flag.objects.select_for_update().filter(detector=detector, kind__in=kinds).filter(
        Q(image_id__in=image_ids) | Q(comment_id__in=comment_ids))
    for flag in rows:
        subject = ("image", str(flag.image_id)) if flag.image_id is not None else ("comment", flag.comment_id)
        existing[(flag.kind, *subject)] = flag
    new = []
    for key, d in batch:
        subject = {"image_id": _pk(d.image)} if d.image is not None else {"comment_id": _pk(d.comment)}
        values = {
            "score": d.score, "evidence": d.evidence, "detector_version": version,
            "group_key": str(d.group_key or "")[:200], "keeper_id": _pk(d.keeper) if d.keeper is not None else None,
            "project_id": comments.get(_pk(d.comment)) if d.comment is not None else None,
        }
        flag = existing.get(key)
        if flag is None:
            new.append(Flag(detector=detector, kind=d.kind, **subject, **values))
            continue
        same_evidence = _evidence_digest(flag.evidence) == _evidence_digest(d.evidence)
        if flag.status == FlagStatus.WITHDRAWN:  # found again
            Flag.objects.filter(pk=flag.pk).update(status=FlagStatus.OPEN, **values, updated_at=timezone.now())
            counts["reopened"] += 1
        elif (same_evidence and flag.score == d.score and flag.group_key == values["group_key"]
                and str(flag.keeper_id) == str(values["keeper_id"]) and flag.detector_version == version):
            counts["unchanged"] += 1
        elif flag.status == FlagStatus.OPEN:
            Flag.objects.filter(pk=flag.pk).update(**values, updated_at=timezone.now())
            counts["updated"] += 1
        elif not same_evidence:
            Flag.objects.filter(pk=flag.pk).update(status=FlagStatus.OPEN, **values, updated_at=timezone.now())
            counts["reopened"] += 1
        else:
            Flag.objects.filter(pk=flag.pk).update(detector_version=version)
            counts["unchanged"] += 1
    Flag.objects.bulk_create(new)
    counts["created"] += len(new)


def lexicon_findings(texts) -> dict[str, tuple[float, dict]]:
    """The korcen lexicon over texts (no database): {text: (score, evidence)} for those it matches,
    the evidence the toxicity step writes in lexicon-only mode plus "source": "inline at submit".
    labeling.services.submit calls this before its transaction (issue 12, item 7)."""
    from django.conf import settings

    from . import toxicity

    conf = settings.CURATION
    texts = list(dict.fromkeys(texts))
    detector = toxicity.Detector(threshold=conf["TOXICITY_THRESHOLD"], lexicon_score=conf["TOXICITY_LEXICON_SCORE"])
    return {text: (f.score, {**f.evidence, "source": "inline at submit"})
            for text, found in zip(texts, detector.check(texts)) for f in found if f.kind == "toxicity"}


def flag_lexicon_inline(comments, found: dict | None = None) -> dict:
    """An open TOXICITY flag for each just-submitted comment the lexicon matched (`found`:
    lexicon_findings of their texts, computed here when not given); labeling.services.submit calls
    this inside its transaction.

    Recorded under the toxicity step's own detector name ("toxicity", version korcen-x.y.z), so
    there is one flag (one review card) per comment and kind: the step's later run updates that
    flag (its classifier score and evidence replace these while it is open), and a flag a planner
    has decided meanwhile stays decided (the step skips decided flags). No query when nothing
    matched. Returns record_flags' counts ({} when nothing matched)."""
    from . import toxicity

    comments = [c for c in comments if c.pk is not None]
    if found is None:
        found = lexicon_findings([c.text for c in comments])
    flags = [FlagData(kind=FlagKind.TOXICITY, comment=c.pk, score=found[c.text][0], evidence=found[c.text][1])
             for c in comments if c.text in found]
    if not flags:
        return {}
    with transaction.atomic():  # a savepoint: a failure leaves the caller's transaction usable
        return record_flags(toxicity.DETECTOR, toxicity.LEXICON_VERSION, flags)


# ---------------------------------------------------------------- decisions

ACTION_STATUS = {
    DecisionAction.KEEP: FlagStatus.KEPT,
    DecisionAction.REJECT_COMMENT: FlagStatus.REJECTED,
    DecisionAction.EXCLUDE_PHOTO: FlagStatus.EXCLUDED,
    DecisionAction.MARK_DUPLICATE: FlagStatus.DUPLICATE,
}


def _exclude(image_id, actor, reason: str) -> dict:
    before = Image.objects.filter(pk=image_id).values_list("status", flat=True).get()
    set_image_status([image_id], ImageStatus.EXCLUDED, reason=reason or str(_("Excluded in the review queue")),
                     user=actor)
    return {"image": str(image_id), "image_status": [before, ImageStatus.EXCLUDED]}


def _decide_one(flag: Flag, action: str, actor, reason: str, duplicate_of, batch=None, note=None) -> Decision:
    if flag.status == FlagStatus.WITHDRAWN:
        raise CurationError(_("Flag %(id)s was withdrawn by its detector (it no longer finds it): there is "
                              "nothing to decide.") % {"id": flag.pk})
    if flag.status != FlagStatus.OPEN:
        raise CurationError(_("Flag %(id)s is decided already (%(status)s): undo that decision first.")
                            % {"id": flag.pk, "status": flag.get_status_display()})
    changes: dict = dict(note or {})
    keeper_id = None
    if action == DecisionAction.REJECT_COMMENT:
        if flag.comment_id is None:
            raise CurationError(_("Flag %(id)s is about a photo: a comment set cannot be rejected there.") % {"id": flag.pk})
        assignment = flag.comment.assignment
        if assignment.status == AssignmentStatus.SUBMITTED:
            labeling_services.reject_set(assignment)
            changes = {**changes, "assignment": assignment.pk, "assignment_status": [AssignmentStatus.SUBMITTED,
                                                                          AssignmentStatus.REJECTED]}
        elif assignment.status != AssignmentStatus.REJECTED:
            raise CurationError(_("Flag %(id)s: the comment set is not submitted.") % {"id": flag.pk})
        else:
            changes = {**changes, "assignment": assignment.pk, "already": True}  # another flag rejected the same set
    elif action == DecisionAction.EXCLUDE_PHOTO:
        image_id = flag.image_id or (flag.comment.assignment.image_id if flag.comment_id else None)
        changes = {**changes, **_exclude(image_id, actor, reason)}
    elif action == DecisionAction.MARK_DUPLICATE:
        if flag.image_id is None:
            raise CurationError(_("Flag %(id)s is about a comment: only photos are duplicates of photos.") % {"id": flag.pk})
        keeper_id = _pk(duplicate_of) if duplicate_of is not None else flag.keeper_id
        if keeper_id is None:
            raise ValidationError({"duplicate_of": _("Say which photo this one duplicates.")})
        if str(keeper_id) == str(flag.image_id):
            raise CurationError(_("Flag %(id)s: a photo cannot be a duplicate of itself (it is the suggested keeper; "
                                  "keep it instead).") % {"id": flag.pk})
        if not Image.objects.filter(pk=keeper_id).exists():
            raise ValidationError({"duplicate_of": _("No such photo: %(id)s.") % {"id": keeper_id}})
        changes = {**changes, **_exclude(flag.image_id, actor, reason or str(_("Duplicate of %(id)s") % {"id": keeper_id}))}
        changes["duplicate_of"] = str(keeper_id)
    after = ACTION_STATUS[action]
    Flag.objects.filter(pk=flag.pk).update(status=after)
    return Decision.objects.create(flag=flag, action=action, actor=actor, reason=reason, status_before=flag.status,
                                   status_after=after, duplicate_of_id=keeper_id, changes=changes, batch=batch)


def decide(flags, action: str, actor=None, reason: str = "", duplicate_of=None) -> list[Decision]:
    """A planner's decision on one or many flags (Flag objects or ids, at most BULK_MAX), all in
    one transaction: one refused flag refuses them all and nothing is written.

    - keep: the flag is closed, nothing else changes.
    - reject_comment (comment flags): the comment's whole set is rejected (labeling.services.reject_set):
      it leaves every future snapshot, its slot on the photo reopens for another labeler, and its
      labeler never gets the photo again.
    - exclude_photo: the photo (a photo flag's, or a comment flag's photo) is excluded from the
      catalogue (datasets.services.set_image_status): it leaves every queue and future snapshot.
    - mark_duplicate (photo flags): the photo is excluded as a duplicate of `duplicate_of` (default:
      the flag's suggested keeper); the keeper stays. The keeper's own flag, when it is among the
      flags decided with others of its group, is kept instead; and once no other member of its
      group is open any more it is kept automatically (a Decision noting {"auto": true}). So the
      review page's one card per group decides the whole group with its members' flag ids.

    Returns the Decision rows written."""
    ids = _checked_ids(flags, action)
    if len(ids) > BULK_MAX:
        raise ValidationError({"flags": _("At most %(max)d flags at a time.") % {"max": BULK_MAX}})
    with transaction.atomic():
        return _decide_ids(ids, action, actor, _clean_reason(reason), duplicate_of)


def _clean_reason(reason) -> str:
    return " ".join(str(reason or "").split())[:2000]


def _checked_ids(flags, action: str) -> list:
    if action not in ACTION_STATUS:
        raise ValidationError({"action": _("Choose one of: %(choices)s.") % {"choices": ", ".join(ACTION_STATUS)}})
    ids = [_pk(f) for f in (flags if isinstance(flags, (list, tuple, set)) else list(flags))]
    if not ids:
        raise ValidationError({"flags": _("Choose at least one flag.")})
    return ids


def _decide_ids(ids: list, action: str, actor, reason: str, duplicate_of, batch=None,
                grouped: dict | None = None, keep_keepers: bool = True) -> list[Decision]:
    """decide's work, inside the caller's transaction. `grouped`: how many flags of each duplicate
    group the whole decision takes (decide_matching's batches: a group split over two batches)."""
    int_ids = [i for i in map(_int_or_none, ids) if i is not None and 0 < i < 2**63]
    # A write first: on SQLite a transaction that has read cannot wait for the write lock that
    # the decision's writes need (labeling's services start the same way).
    Flag.objects.filter(pk__in=int_ids).update(updated_at=timezone.now())
    rows = {f.pk: f for f in Flag.objects.select_for_update().filter(pk__in=int_ids)}
    missing = [pk for pk in ids if _int_or_none(pk) not in rows]  # also ids that are no ids
    if missing:
        raise ValidationError({"flags": _("No such flag: %(ids)s.") % {"ids": ", ".join(map(str, missing[:10]))}})
    # mark_duplicate on a group's keeper together with other members of its group: kept.
    if grouped is None:
        grouped = {}
        for f in rows.values():
            if f.group_key and f.kind in DUPLICATE_PHOTO_KINDS:
                grouped[f.group_key] = grouped.get(f.group_key, 0) + 1
    decisions = []
    seen = set()
    for pk in ids:
        flag = rows[int(pk)]
        if flag.pk in seen:
            continue
        seen.add(flag.pk)
        flag = Flag.objects.select_related("comment__assignment").get(pk=flag.pk)
        this, note = action, None
        if (action == DecisionAction.MARK_DUPLICATE and flag.group_key and grouped.get(flag.group_key, 0) > 1
                and flag.image_id is not None and str(flag.image_id) == str(_pk(duplicate_of) or flag.keeper_id)):
            this, note = DecisionAction.KEEP, {"as_keeper": True}
        decisions.append(_decide_one(flag, this, actor, reason, duplicate_of, batch, note))
    if action == DecisionAction.MARK_DUPLICATE and keep_keepers:
        decisions += _keep_lone_keepers({f.group_key for f in rows.values() if f.group_key}, actor, batch)
    return decisions


def _keep_lone_keepers(keys, actor, batch=None) -> list[Decision]:
    """The keeper's open flag of each group (of `keys`) whose other members are all decided: kept."""
    out = []
    for key in sorted(keys):
        members = list(Flag.objects.select_for_update().filter(group_key=key, kind__in=DUPLICATE_PHOTO_KINDS))
        open_members = [m for m in members if m.status == FlagStatus.OPEN]
        keepers = [m for m in open_members if m.image_id is not None and m.image_id == m.keeper_id]
        if keepers and len(keepers) == len(open_members) and len(members) > len(open_members):
            for m in keepers:
                out.append(_decide_one(m, DecisionAction.KEEP, actor,
                                       str(_("The keeper of its group: the others are marked duplicates.")),
                                       None, batch, {"auto": True, "as_keeper": True}))
    return out


def group_flag_ids(keys) -> list[int]:
    """The open flags of the duplicate groups `keys` (what the review page's one card per group
    decides: pass them to decide, and mark_duplicate keeps the keeper)."""
    keys = [str(k) for k in keys if k]
    if not keys:
        return []
    return list(Flag.objects.filter(group_key__in=keys, kind__in=DUPLICATE_PHOTO_KINDS, status=FlagStatus.OPEN)
                .order_by("group_key", "pk").values_list("pk", flat=True))


# ---------------------------------------------------------------- decisions by filters


def bulk_match_max() -> int:
    from django.conf import settings

    return int(settings.CURATION.get("BULK_MATCH_MAX", 20000))


def _matching_filters(filters):
    """The filters of a decision by filters: the review queue's own (selectors.FlagFilters), a
    kind required, open flags only (whatever status they name), no group filter."""
    from dataclasses import replace

    from .selectors import FlagFilters

    if not isinstance(filters, FlagFilters):
        raise ValidationError({"filters": _("Filters of the review queue, please.")})
    if filters.kind not in FlagKind.values:
        raise ValidationError({"kind": _("Choose a flag kind first: a decision by filters is about one kind.")})
    return replace(filters, status=FlagStatus.OPEN, group="")


def count_matching(filters) -> int:
    """How many open flags the filters match (the preview of decide_matching)."""
    from . import selectors

    return selectors.flags(_matching_filters(filters)).order_by().count()


def preview_matching(filters, examples: int = 5) -> dict:
    """{"count", "examples" (the first flags, highest score first), "max" (the cap), "too_many"}."""
    from . import selectors

    f = _matching_filters(filters)
    qs = selectors.flags(f)
    count = qs.order_by().count()
    return {"count": count, "examples": list(qs.order_by("-score", "id")[:examples]), "max": bulk_match_max(),
            "too_many": count > bulk_match_max()}


@dataclass
class BulkResult:
    batch: object
    count: int
    by_action: dict


def decide_matching(filters, action: str, actor=None, reason: str = "", *, expect: int,
                    duplicate_of=None) -> BulkResult:
    """One decision on every open flag the review queue's filters match ("reject every comment
    with toxicity >= 0.95"): selectors.FlagFilters with a kind (status is always open).

    `expect` is the count the planner saw in the preview (count_matching): when the matching set
    has another size now (a detector ran, another planner decided), nothing is decided and
    CurationError (409) says so: a planner never decides on more (or fewer) flags than they saw.
    More than settings.CURATION["BULK_MATCH_MAX"] flags: refused (narrow the filters).

    All or nothing: every flag is decided in ONE transaction (in batches of BULK_MAX flags, each
    through the same code as decide: a rejected comment reopens its slot, an excluded photo leaves
    the snapshots); one refused flag refuses the whole set. Every Decision carries the same `batch`
    id: undo_batch takes the whole bulk back, undo one decision at a time as ever. An empty reason
    becomes a description of the filters (the audit trail says what was matched)."""
    import uuid

    from . import selectors

    f = _matching_filters(filters)
    _checked_ids([0], action)
    try:
        expect = int(expect)
    except (TypeError, ValueError):
        raise ValidationError({"expect": _("Give the count of the preview.")}) from None
    cap = bulk_match_max()
    batch = uuid.uuid4()
    reason = _clean_reason(reason) or describe_filters(f)
    with transaction.atomic():
        rows = list(selectors.flags(f).order_by("group_key", "pk").values_list("pk", "group_key", "kind"))
        ids = [pk for pk, _key, _kind in rows]
        grouped: dict[str, int] = {}
        for _id, key, kind in rows:
            if key and kind in DUPLICATE_PHOTO_KINDS:
                grouped[key] = grouped.get(key, 0) + 1
        if len(ids) != expect:
            raise CurationError(_("The flags matching these filters changed since the preview: %(then)d then, "
                                  "%(now)d now. Nothing was decided: look at the preview again.")
                                % {"then": expect, "now": len(ids)})
        if not ids:
            raise ValidationError({"flags": _("No open flag matches these filters.")})
        if len(ids) > cap:
            raise ValidationError({"flags": _("%(count)d flags match; at most %(max)d are decided at a time. "
                                              "Narrow the filters (a score range, a project).")
                                   % {"count": len(ids), "max": cap}})
        decisions = []
        for start in range(0, len(ids), BULK_MAX):
            decisions += _decide_ids(ids[start:start + BULK_MAX], action, actor, reason, duplicate_of, batch,
                                     grouped, keep_keepers=False)
        if action == DecisionAction.MARK_DUPLICATE:
            decisions += _keep_lone_keepers(set(grouped), actor, batch)
    by_action: dict[str, int] = {}
    for d in decisions:
        by_action[d.action] = by_action.get(d.action, 0) + 1
    return BulkResult(batch=batch, count=len(decisions), by_action=by_action)


def describe_filters(f) -> str:
    """The filters in words, for the audit trail ("Bulk decision: Toxicity, score >= 0.95")."""
    parts = [str(FlagKind(f.kind).label)]
    for name, label in (("project", _("project")), ("category", _("category")), ("detector", _("detector"))):
        value = getattr(f, name)
        if value not in (None, ""):
            parts.append(f"{label} {value}")
    if f.score_min is not None:
        parts.append(f"{_('score')} >= {f.score_min:g}")
    if f.score_max is not None:
        parts.append(f"{_('score')} <= {f.score_max:g}")
    return str(_("Bulk decision: %(filters)s")) % {"filters": ", ".join(parts)}


def undo_batch(batch, actor=None, reason: str = "") -> list[Decision]:
    """Take back a whole bulk decision (decide_matching's batch id), all or nothing: each of its
    decisions not undone already is undone as `undo` does (newest first). One that cannot be
    (a later decision on its flag, a rejected set's slot taken by another labeler) refuses the
    whole undo with its reason; undo the others one by one then."""
    with transaction.atomic():
        rows = list(Decision.objects.filter(batch=batch, undone_by__isnull=True).exclude(
            action=DecisionAction.UNDO).order_by("-at", "-id"))
        if not rows:
            raise CurationError(_("Nothing of this bulk decision is left to undo."))
        return [undo(d, actor, reason) for d in rows]


def _int_or_none(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def undo(decision: Decision, actor=None, reason: str = "") -> Decision:
    """Take back a decision: the latest one still standing on its flag. The flag is open
    again; an excluded photo goes back to the status it had (set_image_status); a rejected set
    counts again (labeling.services.unreject_set; refused when its slot went to another labeler
    meanwhile). Writes a Decision row with action "undo"."""
    with transaction.atomic():
        Flag.objects.filter(pk=decision.flag_id).update(updated_at=timezone.now())  # a write first (see decide)
        decision = Decision.objects.select_for_update().get(pk=decision.pk)
        flag = Flag.objects.select_for_update().get(pk=decision.flag_id)
        # The latest decision still standing (not an undo, not undone): one taken back earlier
        # makes the one before it undoable (an automatic keep of a group's keeper, then its choice).
        latest = flag.decisions.exclude(action=DecisionAction.UNDO).filter(undone_by__isnull=True).order_by(
            "-at", "-id").first()
        if decision.action == DecisionAction.UNDO or latest is None or latest.pk != decision.pk:
            raise CurationError(_("Only the latest decision on a flag can be undone."))
        changes = decision.changes or {}
        if "image_status" in changes:
            before = changes["image_status"][0]
            other = Decision.objects.filter(
                changes__image=changes["image"], undone_by__isnull=True,
                action__in=[DecisionAction.EXCLUDE_PHOTO, DecisionAction.MARK_DUPLICATE],
            ).exclude(pk=decision.pk).exclude(action=DecisionAction.UNDO)
            if not other.exists():  # another live decision still wants the photo excluded
                set_image_status([changes["image"]], before, user=actor)
        if "keeper" in changes:
            Flag.objects.filter(group_key=changes["group"], kind__in=DUPLICATE_PHOTO_KINDS).update(
                keeper_id=changes["keeper"][0], updated_at=timezone.now())
        if "assignment_status" in changes:
            from labeling.models import Assignment

            labeling_services.unreject_set(Assignment.objects.get(pk=changes["assignment"]))
        Flag.objects.filter(pk=flag.pk).update(status=decision.status_before)
        return Decision.objects.create(flag=flag, action=DecisionAction.UNDO, actor=actor,
                                       reason=" ".join(str(reason or "").split())[:2000],
                                       status_before=flag.status, status_after=decision.status_before,
                                       changes=changes, undoes=decision)


# ---------------------------------------------------------------- duplicate groups


def choose_keeper(flag: Flag, actor=None, reason: str = "") -> Decision:
    """Keep `flag`'s photo instead of its group's suggested keeper: every flag of the group
    (same group_key) names it as keeper, so "mark as duplicate" now excludes the others in its
    favour, and later runs keep the choice (curation.steps.chosen_keeper). Audited as a Decision
    ("choose_keeper", the flag's status unchanged, `duplicate_of` the new keeper, `changes` the
    old and new keeper); undo puts the old keeper back."""
    reason = " ".join(str(reason or "").split())[:2000]
    with transaction.atomic():
        Flag.objects.filter(pk=flag.pk).update(updated_at=timezone.now())  # a write first (see decide)
        flag = Flag.objects.select_for_update().get(pk=flag.pk)
        if flag.kind not in DUPLICATE_PHOTO_KINDS or not flag.group_key or flag.image_id is None:
            raise CurationError(_("Flag %(id)s is not about a photo in a duplicate group.") % {"id": flag.pk})
        if flag.keeper_id == flag.image_id:
            raise CurationError(_("This photo is the group's keeper already."))
        if Image.objects.filter(pk=flag.image_id, status=ImageStatus.EXCLUDED).exists():
            raise CurationError(_("This photo is excluded: undo that decision before keeping it."))
        old = flag.keeper_id
        Flag.objects.filter(group_key=flag.group_key, kind__in=DUPLICATE_PHOTO_KINDS).update(
            keeper_id=flag.image_id, updated_at=timezone.now())
        return Decision.objects.create(
            flag=flag, action=DecisionAction.CHOOSE_KEEPER, actor=actor, reason=reason, status_before=flag.status,
            status_after=flag.status, duplicate_of_id=flag.image_id,
            changes={"keeper": [str(old) if old else None, str(flag.image_id)], "group": flag.group_key})


# ---------------------------------------------------------------- perceptual signatures


def store_signatures(rows: dict) -> int:
    """Store window hashes ({image id: 200 bytes}); photos that have them already keep theirs (a
    chunk delivered twice writes nothing twice). Returns how many were new."""
    if not rows:
        return 0
    with transaction.atomic():
        have = set(PhotoSignature.objects.filter(image_id__in=list(rows)).values_list("image_id", flat=True))
        new = [PhotoSignature(image_id=pk, windows=data) for pk, data in rows.items() if pk not in have]
        PhotoSignature.objects.bulk_create(new, ignore_conflicts=True)
    return len(new)


# ---------------------------------------------------------------- toxicity models (issue 12, item 3)


def train_toxicity_model(source, *, text_col: str = "text", label_col: str = "label", bias_col: str | None = "bias",
                         bias_required: bool = False, use_decisions: bool = True, name: str = "",
                         actor=None) -> ToxicityModel:
    """Train a new version of the toxicity and bias classifier from a TSV/CSV file (a path, or
    bytes with `name`) plus the planners' decisions on earlier flags, store it on the media
    storage and make it current. A bad file raises toxicity.TrainingDataError and writes nothing
    (no file, no row); the previous version stays current."""
    from django.conf import settings
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage
    from django.db.models import Max

    from . import selectors, toxicity

    rows = toxicity.read_table(source, text_col=text_col, label_col=label_col, bias_col=bias_col,
                               bias_required=bias_required, name=name)
    source_name = name or ("upload" if isinstance(source, (bytes, bytearray)) else Path(source).name)
    if use_decisions:
        rows += selectors.toxicity_decision_rows()
    version = (ToxicityModel.objects.aggregate(v=Max("version"))["v"] or 0) + 1
    model = toxicity.train(rows, version=version)
    path = f"{settings.CURATION['TOXICITY_MODEL_DIR'].rstrip('/')}/v{version}-{model.data_sha256[:12]}.joblib"
    saved = None
    try:
        with transaction.atomic():
            ToxicityModel.objects.select_for_update().filter(current=True).update(current=False)
            saved = default_storage.save(path, ContentFile(model.dumps()))
            return ToxicityModel.objects.create(
                version=version, file=saved, current=True, data_sha256=model.data_sha256,
                source=str(source_name)[-300:], rows=model.rows, labels=list(model.labels),
                bias_labels=list(model.bias_labels) if model.bias is not None else [],
                metrics=model.metrics, created_by=actor,
            )
    except BaseException:
        if saved:
            default_storage.delete(saved)
        raise


def activate_toxicity_model(version: int) -> ToxicityModel:
    """Make an earlier (or later) trained version the current one (a rollback)."""
    with transaction.atomic():
        row = ToxicityModel.objects.select_for_update().filter(version=version).first()
        if row is None:
            raise ValidationError({"version": _("No toxicity model version %(v)s.") % {"v": version}})
        ToxicityModel.objects.filter(current=True).exclude(pk=row.pk).update(current=False)
        ToxicityModel.objects.filter(pk=row.pk).update(current=True)
        row.current = True
    return row


# ---------------------------------------------------------------- embeddings (cur-embed)

def store_embeddings(kind: str, model: str, ids, vectors) -> int:
    """Store one chunk's vectors made by `model` (its identity string) for photos (kind "image",
    ids of Image) or comments (kind "comment", ids of Comment): one float16 segment file on the
    default storage (curation.vectors.pack), then in one transaction its EmbeddingSegment row and
    an Embedding row per subject. A subject this model has embedded already keeps its first
    vector (a redelivered chunk changes nothing). Checked before anything is written. Returns
    the number of new Embedding rows."""
    import uuid

    import numpy as np
    from django.conf import settings
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from . import vectors as V
    from .models import Embedding, EmbeddingKind, EmbeddingSegment

    if kind not in EmbeddingKind.values:
        raise ValidationError({"kind": _("Choose one of: %(choices)s.") % {"choices": ", ".join(EmbeddingKind.values)}})
    model = str(model or "").strip()
    if not model or len(model) > 200:
        raise ValidationError({"model": _("Give the model's identity (at most 200 characters).")})
    ids = list(ids)
    matrix = np.asarray(vectors)
    if matrix.ndim != 2 or matrix.shape[0] != len(ids) or not matrix.shape[1]:
        raise ValidationError({"vectors": _("One vector per id, all of one length.")})
    if not ids:
        return 0
    if not np.isfinite(matrix).all():
        raise ValidationError({"vectors": _("Vectors must be finite numbers.")})
    field = "image_id" if kind == EmbeddingKind.IMAGE else "comment_id"
    data = V.pack(ids, matrix)
    prefix = settings.CURATION_EMBED["PREFIX"].strip("/")
    name = default_storage.save(f"{prefix}/{kind}/{uuid.uuid4().hex}.npz", ContentFile(data))
    with transaction.atomic():
        segment = EmbeddingSegment.objects.create(model=model, kind=kind, dim=matrix.shape[1], count=len(ids), path=name)
        rows = [Embedding(model=model, segment=segment, row=n, **{field: pk}) for n, pk in enumerate(ids)]
        Embedding.objects.bulk_create(rows, ignore_conflicts=True, batch_size=1000)
        # bulk_create with ignore_conflicts cannot say which rows were new: count them.
        made = Embedding.objects.filter(segment=segment).count()
        if not made:  # all embedded meanwhile (the same chunk on two workers at once): drop the segment
            segment.delete()
    if not made:
        default_storage.delete(name)
    return made



# ---------------------------------------------------------------- comment scores (issue 12, items 1-2)

def store_comment_scores(model: str, rows) -> int:
    """Store one chunk's comment scores by `model` (curation.scores.score_comments' rows: comment,
    project, hallucination, specificity, similarity, sample_size, reach). One score per model and
    comment: a comment scored already keeps its first score (a redelivered chunk changes
    nothing). Returns the number of new rows."""
    from .models import CommentScore

    model = str(model or "").strip()
    if not model or len(model) > 200:
        raise ValidationError({"model": _("Give the model's identity (at most 200 characters).")})
    objs = [CommentScore(model=model, comment_id=r["comment"], project_id=r["project"],
                         hallucination=float(r["hallucination"]), specificity=float(r["specificity"]),
                         similarity=float(r["similarity"]), sample_size=int(r["sample_size"]),
                         reach=None if r.get("reach") is None else float(r["reach"])) for r in rows]
    if not objs:
        return 0
    with transaction.atomic():
        before = CommentScore.objects.filter(model=model, comment_id__in=[o.comment_id for o in objs]).count()
        CommentScore.objects.bulk_create(objs, ignore_conflicts=True, batch_size=1000)
        after = CommentScore.objects.filter(model=model, comment_id__in=[o.comment_id for o in objs]).count()
    return after - before


def store_calibration(model: str, kind: str, *, threshold: float, target_rate: float, null_pairs: int,
                      null_quantiles: dict):
    """Store (or replace) the calibration of one score for one model."""
    from .models import ScoreCalibration

    row, _created = ScoreCalibration.objects.update_or_create(
        model=model, kind=kind, defaults={"threshold": threshold, "target_rate": target_rate,
                                          "null_pairs": null_pairs, "null_quantiles": null_quantiles})
    return row
