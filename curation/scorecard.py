"""The labeler quality scorecard (issue 12, item 5): per labeler of a project, what the curation
detectors and the planners said about their comments, and how close their comments are to the
other labelers' comments on the same photos.

Everything comes from a fixed number of GROUP BY queries over the project (members, comment sets
by status, comments, comment flags by kind, comment scores, messages, open leases, and the
comments of the photos with two labelers or more for the agreement), whatever the number of
labelers: no query per row. Sorting happens here, over the whole project (a project has tens to
hundreds of labelers), so every column sorts.

Definitions (the page and docs/README say the same):

- sets: comment sets the labeler submitted in the project, including those a planner rejected
  later in the review queue (AssignmentStatus.REJECTED, set only by curation's reject decision);
  `rejected_share` = rejected / sets.
- comments: the comments of those sets. `flags[kind].share` = comments with a flag of that kind
  (open or decided; a flag the detector withdrew does not count) / comments; `flagged_share` the
  same for a flag of any kind; `self_copy_share` is the share flagged as near-copies of the
  labeler's own text (curation part 1, FlagKind.SELF_COPY_COMMENT).
- generic share and median specificity: curation.selectors.specificity_by_labeler (None when
  the project has no comment scores: the scores need the embedding model).
- agreement: on the photos where two labelers or more submitted a set (rejected sets left out),
  each of the labeler's comments is compared with the other labelers' comments of the same
  comment type on that photo: cosine similarity of TF-IDF character n-gram profiles
  (scikit-learn, `char_wb`, 2-3 grams, sublinear tf, fitted on those comments' distinct texts), averaged over the
  other labelers, then over the comment types of the photo, then over the photos. 0 is nothing
  in common, 1 the same text. None ("—") when fewer than AGREEMENT_MIN_PHOTOS photos are shared.
  It is the costly part (about 1-2 s at 20,000 comments: bench/scorecard.py), so it is cached
  until the project's submitted sets change.
"""
from __future__ import annotations

from collections import defaultdict

from django.core.cache import cache
from django.db.models import CharField, Count, Max, Q
from django.db.models.functions import Cast
from django.utils import timezone

from labeling.models import Assignment, AssignmentStatus, Comment, LabelerMessage, Project, ProjectMember

from .models import PHOTO_KINDS, Flag, FlagKind, FlagStatus
from .selectors import specificity_by_labeler

# Photos shared with other labelers below which the agreement is not shown.
AGREEMENT_MIN_PHOTOS = 5
# The messages each row lists (the newest); the counts cover all of them.
RECENT_MESSAGES = 3

# Comment flag kinds with a column of their own (self-copies have theirs: self_copy_share).
COMMENT_KINDS = [k for k in FlagKind.values
                 if k not in PHOTO_KINDS and k not in (FlagKind.FACE, FlagKind.LICENCE_PLATE)]
KIND_COLUMNS = [k for k in COMMENT_KINDS if k != FlagKind.SELF_COPY_COMMENT]

# ?sort= values: a column name, "-" first for descending. Empty values sort last both ways.
SORT_COLUMNS = (
    "username", "is_active", "cap", "sets", "comments", "rejected_share", "flagged_share", "self_copy_share",
    "generic_share", "median_specificity", "agreement", "unread_messages",
    *(f"flag_{k}" for k in KIND_COLUMNS),
)
SORTS = frozenset(SORT_COLUMNS) | {f"-{c}" for c in SORT_COLUMNS}
DEFAULT_SORT = "-flagged_share"


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def labeler_scorecard(project: Project, *, sort: str = DEFAULT_SORT) -> list[dict]:
    """One row per member of the project (active or not), sorted by `sort` (one of SORTS)."""
    members = list(ProjectMember.objects.filter(project=project).select_related("user").order_by("user__username"))
    user_ids = [m.user_id for m in members]

    sets: dict[int, dict[str, int]] = defaultdict(dict)
    for labeler_id, status, n in (
        Assignment.objects.filter(project=project, labeler_id__in=user_ids,
                                  status__in=(AssignmentStatus.SUBMITTED, AssignmentStatus.REJECTED))
        .order_by().values_list("labeler_id", "status").annotate(n=Count("pk"))
    ):
        sets[labeler_id][status] = n

    comments = dict(
        Comment.objects.filter(assignment__project=project, assignment__labeler_id__in=user_ids,
                               assignment__status__in=(AssignmentStatus.SUBMITTED, AssignmentStatus.REJECTED))
        .order_by().values_list("assignment__labeler_id").annotate(n=Count("pk"))
    )

    counted = Flag.objects.filter(project=project, comment__isnull=False, kind__in=COMMENT_KINDS).exclude(
        status=FlagStatus.WITHDRAWN).order_by()
    by_kind: dict[int, dict[str, int]] = defaultdict(dict)
    for labeler_id, kind, n in counted.values_list("comment__assignment__labeler_id", "kind").annotate(
            n=Count("comment_id", distinct=True)):
        if labeler_id is not None:
            by_kind[labeler_id][kind] = n
    flagged = dict(counted.values_list("comment__assignment__labeler_id").annotate(n=Count("comment_id", distinct=True)))

    specificity = specificity_by_labeler(project)
    agreement = comment_agreement(project)
    messages = _messages(project)
    leases = dict(
        Assignment.objects.filter(project=project, status=AssignmentStatus.LEASED, expires_at__gt=timezone.now())
        .order_by().values_list("labeler_id").annotate(n=Count("pk"))
    )

    rows = []
    for m in members:
        u = m.user_id
        submitted = sets[u].get(AssignmentStatus.SUBMITTED, 0)
        rejected = sets[u].get(AssignmentStatus.REJECTED, 0)
        n_comments = comments.get(u, 0)
        kinds = by_kind.get(u, {})
        spec = specificity.get(u) or {}
        agree, shared = agreement.get(u, (None, 0))
        msg = messages.get(u, {"sent": 0, "unread": 0, "last_sent_at": None, "recent": []})
        row = {
            "user_id": u, "username": m.user.username, "name": m.user.get_full_name(), "is_active": m.is_active,
            "cap": m.cap_override if m.cap_override is not None else project.cap_per_labeler,
            "cap_override": m.cap_override, "submitted_count": m.submitted_count, "open_leases": leases.get(u, 0),
            "sets": submitted + rejected, "rejected": rejected, "rejected_share": _share(rejected, submitted + rejected),
            "comments": n_comments, "flagged": flagged.get(u, 0), "flagged_share": _share(flagged.get(u, 0), n_comments),
            "flags": {k: {"count": kinds.get(k, 0), "share": _share(kinds.get(k, 0), n_comments)} for k in KIND_COLUMNS},
            "self_copy": kinds.get(FlagKind.SELF_COPY_COMMENT, 0),
            "self_copy_share": _share(kinds.get(FlagKind.SELF_COPY_COMMENT, 0), n_comments),
            "scored": spec.get("scored", 0), "generic": spec.get("generic", 0),
            "generic_share": spec.get("generic_share"), "median_specificity": spec.get("median_specificity"),
            "agreement": agree if shared >= AGREEMENT_MIN_PHOTOS else None, "shared_photos": shared,
            "messages_sent": msg["sent"], "unread_messages": msg["unread"], "last_message_at": msg["last_sent_at"],
            "recent_messages": msg["recent"],
        }
        for k in KIND_COLUMNS:
            row[f"flag_{k}"] = row["flags"][k]["share"]
        rows.append(row)
    return sort_rows(rows, sort)


def sort_rows(rows: list[dict], sort: str) -> list[dict]:
    """Rows sorted by `sort` (SORTS; anything else: DEFAULT_SORT), empty values last, then by
    username."""
    if sort not in SORTS:
        sort = DEFAULT_SORT
    key, descending = sort.lstrip("-"), sort.startswith("-")
    rows = sorted(rows, key=lambda r: r["username"])
    present = [r for r in rows if r.get(key) is not None]
    empty = [r for r in rows if r.get(key) is None]
    if key == "username":
        present.sort(key=lambda r: r["username"].casefold(), reverse=descending)
    else:
        present.sort(key=lambda r: r[key], reverse=descending)  # stable: ties stay by username
    return present + empty


AGREEMENT_CACHE_SECONDS = 3600


def comment_agreement(project: Project) -> dict[int, tuple[float, int]]:
    """{labeler id: (mean agreement, photos shared with other labelers)} (see the module's
    docstring), cached (Django's cache) until the project's submitted sets change: their count,
    newest id and newest submit time are in the key, so a new, rejected or returned set
    recomputes it."""
    sets = Assignment.objects.filter(project=project, status=AssignmentStatus.SUBMITTED, labeler__isnull=False)
    stamp = sets.order_by().aggregate(n=Count("pk"), last=Max("pk"), at=Max("submitted_at"))
    at = stamp["at"].timestamp() if stamp["at"] else 0
    key = f"scorecard:agreement:{project.pk}:{stamp['n']}:{stamp['last']}:{at}"
    cached = cache.get(key)
    if cached is None:
        cached = _agreement(project, sets)
        cache.set(key, cached, AGREEMENT_CACHE_SECONDS)
    return cached


def _agreement(project: Project, sets) -> dict[int, tuple[float, int]]:
    """Vectorised: one sparse product for all the photos, not a loop over them; each distinct
    text is analysed once."""
    shared = (sets.order_by().values("image_id").annotate(n=Count("labeler_id", distinct=True)).filter(n__gte=2)
              .values("image_id"))
    rows = list(
        Comment.objects.filter(assignment__project=project, assignment__status=AssignmentStatus.SUBMITTED,
                               assignment__labeler__isnull=False, assignment__image_id__in=shared)
        # The photo's id as text: the same groups without making 20,000 UUID objects.
        .order_by().values_list(Cast("assignment__image_id", CharField()), "comment_type_id",
                                "assignment__labeler_id", "text")
    )
    # Groups: one (photo, comment type) with comments by two labelers or more.
    group_of: dict[tuple, int] = {}
    sizes: dict[int, int] = defaultdict(int)
    for image_id, type_id, _u, _t in rows:
        g = group_of.setdefault((image_id, type_id), len(group_of))
        sizes[g] += 1
    rows = [r for r in rows if sizes[group_of[(r[0], r[1])]] >= 2]
    if not rows:
        return {}
    # Imported here, once there is something to compare: scikit-learn takes seconds to import.
    import numpy as np
    from scipy import sparse
    from sklearn.feature_extraction.text import TfidfVectorizer

    distinct: dict[str, int] = {}
    text_index = np.array([distinct.setdefault(r[3], len(distinct)) for r in rows])
    try:
        # Fitted on the distinct texts (a generic text written 500 times is one document).
        X = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 3), sublinear_tf=True).fit_transform(
            list(distinct))[text_index]
    except ValueError:  # no n-gram at all (every text a single character)
        return {}
    groups = np.array([group_of[(r[0], r[1])] for r in rows])
    k = np.array([sizes[g] for g in groups], dtype=float)
    indicator = sparse.csr_matrix((np.ones(len(rows)), (groups, np.arange(len(rows)))), shape=(len(group_of), len(rows)))
    totals = indicator @ X  # each group's summed (unit) vectors
    with_group = np.asarray(X.multiply(totals[groups]).sum(axis=1)).ravel()
    with_self = np.asarray(X.multiply(X).sum(axis=1)).ravel()
    mean_with_others = (with_group - with_self) / (k - 1)
    per_photo: dict[tuple[int, object], list[float]] = defaultdict(list)
    for (image_id, _t, labeler_id, _text), value in zip(rows, mean_with_others):
        per_photo[(labeler_id, image_id)].append(float(value))
    per_labeler: dict[int, list[float]] = defaultdict(list)
    for (labeler_id, _image), values in per_photo.items():
        per_labeler[labeler_id].append(sum(values) / len(values))
    return {u: (sum(v) / len(v), len(v)) for u, v in per_labeler.items()}


def _messages(project: Project) -> dict[int, dict]:
    """{labeler id: {sent, unread, last_sent_at, recent: [LabelerMessage, newest first]}}."""
    qs = LabelerMessage.objects.filter(project=project).order_by()
    out = {
        u: {"sent": n, "unread": unread, "last_sent_at": last, "recent": []}
        for u, n, unread, last in qs.values_list("labeler_id").annotate(
            n=Count("pk"), unread=Count("pk", filter=Q(read_at__isnull=True)), last=Max("created_at"))
    }
    # The newest few per labeler (messages are few: a planner writes them by hand).
    for message in qs.select_related("sent_by").order_by("-created_at", "-id").iterator(chunk_size=2000):
        recent = out[message.labeler_id]["recent"]
        if len(recent) < RECENT_MESSAGES:
            recent.append(message)
    return out
