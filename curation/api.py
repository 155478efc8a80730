"""The review queue's API under /api/curation/: flags (list with the page's filters, detail),
decisions on one flag or many, the decision history and undo; duplicate-photo groups and
choosing another keeper; curation runs (list, start, detail with progress per step, cancel,
resume).

Who: planners and admins decide; ML engineers read; labelers get 403 (accounts.permissions.HasRole
defaults). Service refusals (a flag decided already, a reject on a photo flag) answer 409
(curation.services.CurationError, registered in CurationConfig.ready); bad input 400.
"""
from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import generics, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import HasRole
from config.api import Pagination, file_url
from labeling.api.common import ProjectChildMixin
from labeling.models import Project

from . import runs, scorecard, selectors, services
from . import steps as registry
from .forms import MatchingForm
from .models import (
    DECIDE_ACTIONS,
    DUPLICATE_PHOTO_KINDS,
    CurationRun,
    Decision,
    Flag,
    FlagKind,
    FlagStatus,
    RunTrigger,
)

CONFLICT = OpenApiResponse(description="The flag's state refuses the decision (decided already, wrong subject).")


class PhotoSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    thumbnail = serializers.SerializerMethodField()
    width = serializers.IntegerField(source="original_width")
    height = serializers.IntegerField(source="original_height")
    bytes = serializers.IntegerField(source="original_bytes")
    phash = serializers.SerializerMethodField(help_text="The 64-bit perceptual hash, 16 hex digits.")
    status = serializers.CharField()
    category = serializers.CharField(source="category.slug", default=None)

    def get_thumbnail(self, obj) -> str:
        return file_url(obj.thumbnail, self.context)

    def get_phash(self, obj) -> str:
        return format(obj.phash & 0xFFFFFFFFFFFFFFFF, "016x")


class CommentBriefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    text = serializers.CharField()
    comment_type = serializers.CharField(source="comment_type.slug")
    assignment = serializers.IntegerField(source="assignment_id")
    set_status = serializers.CharField(source="assignment.status")
    author = serializers.CharField(source="assignment.author_name")
    image = serializers.UUIDField(source="assignment.image_id")


class FlagSerializer(serializers.ModelSerializer):
    image = PhotoSerializer(allow_null=True)
    comment = CommentBriefSerializer(allow_null=True)
    keeper = serializers.UUIDField(source="keeper_id", allow_null=True)

    class Meta:
        model = Flag
        fields = ["id", "kind", "status", "image", "comment", "project", "score", "evidence", "detector",
                  "detector_version", "group_key", "keeper", "created_at", "updated_at"]


class DecisionSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor.username", default=None)
    duplicate_of = serializers.UUIDField(source="duplicate_of_id", allow_null=True)
    undoes = serializers.IntegerField(source="undoes_id", allow_null=True)

    class Meta:
        model = Decision
        fields = ["id", "flag", "action", "actor", "at", "reason", "status_before", "status_after", "duplicate_of",
                  "changes", "undoes", "batch"]


class DecideSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=DECIDE_ACTIONS)
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")
    duplicate_of = serializers.UUIDField(required=False, allow_null=True, default=None,
                                         help_text="mark_duplicate: the photo kept (default: the flag's keeper).")


class BulkDecideSerializer(DecideSerializer):
    flags = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
                                  min_length=1, max_length=services.BULK_MAX)


class DecisionsSerializer(serializers.Serializer):
    decisions = DecisionSerializer(many=True)


class UndoSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")


FLAG_FILTERS = [
    OpenApiParameter("kind", OpenApiTypes.STR, enum=FlagKind.values),
    OpenApiParameter("status", OpenApiTypes.STR, enum=FlagStatus.values, description="Default: open."),
    OpenApiParameter("project", OpenApiTypes.INT, description="Comment flags of the project, photo flags of its queue."),
    OpenApiParameter("category", OpenApiTypes.INT),
    OpenApiParameter("detector", OpenApiTypes.STR),
    OpenApiParameter("score_min", OpenApiTypes.NUMBER),
    OpenApiParameter("score_max", OpenApiTypes.NUMBER),
    OpenApiParameter("group", OpenApiTypes.STR, description="One duplicate group or comment cluster (group_key)."),
    OpenApiParameter("labeler", OpenApiTypes.INT, description="Comment flags on one labeler's comments (user id)."),
]


class CurationAccess:
    permission_classes = [HasRole]


class FlagList(CurationAccess, generics.ListAPIView):
    """The review queue's flags, with the page's filters (open ones unless `status` says otherwise)."""

    serializer_class = FlagSerializer
    pagination_class = Pagination
    filter_backends: list = []

    def get_queryset(self):
        return selectors.flags(selectors.filters_from(self.request.query_params))

    @extend_schema(parameters=FLAG_FILTERS)
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class FlagDetail(CurationAccess, generics.RetrieveAPIView):
    serializer_class = FlagSerializer
    queryset = selectors.flags(selectors.FlagFilters(status=""))


class FlagDecide(CurationAccess, APIView):
    """A planner's decision on one flag: keep, reject_comment, exclude_photo or mark_duplicate."""

    @extend_schema(request=DecideSerializer, responses={200: DecisionsSerializer, 409: CONFLICT})
    def post(self, request, pk: int):
        flag = get_object_or_404(Flag, pk=pk)
        form = DecideSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        decisions = services.decide([flag], actor=request.user, **form.validated_data)
        return Response(DecisionsSerializer({"decisions": decisions}).data)


class BulkDecide(CurationAccess, APIView):
    """One decision on many flags, all or nothing (at most 500)."""

    @extend_schema(request=BulkDecideSerializer, responses={200: DecisionsSerializer, 409: CONFLICT})
    def post(self, request):
        form = BulkDecideSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = dict(form.validated_data)
        decisions = services.decide(data.pop("flags"), actor=request.user, **data)
        return Response(DecisionsSerializer({"decisions": decisions}).data)


class DecideMatchingSerializer(serializers.Serializer):
    """A decision by filters. The filter fields are the review queue's (curation.forms.MatchingForm
    checks them: the same form as the page's panel)."""

    kind = serializers.ChoiceField(choices=FlagKind.values)
    project = serializers.IntegerField(required=False, allow_null=True)
    category = serializers.IntegerField(required=False, allow_null=True)
    detector = serializers.CharField(required=False, allow_blank=True)
    score_min = serializers.FloatField(required=False, allow_null=True)
    score_max = serializers.FloatField(required=False, allow_null=True)
    preview = serializers.BooleanField(default=False, help_text="true: only count (and show a few examples).")
    action = serializers.ChoiceField(choices=DECIDE_ACTIONS, required=False)
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")
    expect = serializers.IntegerField(required=False, min_value=0, max_value=2**31 - 1,
                                      help_text="The preview's count: the decision is refused (409) when the "
                                                "matching flags are not as many any more.")

    def validate(self, data):
        form = MatchingForm({k: v for k, v in self.initial_data.items() if k in MatchingForm.base_fields
                             and v is not None})
        if not form.is_valid():
            raise serializers.ValidationError({k: [str(e) for e in v] for k, v in form.errors.items()})
        if not data["preview"]:
            missing = {name: ["Required unless preview is true."] for name in ("action", "expect") if name not in data}
            if missing:
                raise serializers.ValidationError(missing)
        data["filters"] = form.filters()
        return data


class MatchingPreviewSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    max = serializers.IntegerField(help_text="The most flags one decision by filters takes.")
    too_many = serializers.BooleanField()
    examples = FlagSerializer(many=True)


class MatchingResultSerializer(serializers.Serializer):
    batch = serializers.UUIDField(help_text="Every decision of this bulk carries it; undo them all at "
                                            "decision-batches/<batch>/undo/.")
    count = serializers.IntegerField()
    by_action = serializers.DictField(child=serializers.IntegerField(),
                                      help_text="Decisions per action (a group's keeper is kept).")


class FlagDecideMatching(CurationAccess, APIView):
    """One decision on every open flag the review queue's filters match (a kind required): first
    `preview: true` for the count, then the decision with `expect` = that count. All or nothing,
    in one transaction; refused (409) when the matching set changed since the preview, 400 past
    settings CURATION["BULK_MATCH_MAX"]."""

    @extend_schema(request=DecideMatchingSerializer,
                   responses={200: OpenApiResponse(MatchingPreviewSerializer, description="preview: true"),
                              201: OpenApiResponse(MatchingResultSerializer, description="decided"),
                              409: CONFLICT})
    def post(self, request):
        form = DecideMatchingSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        if data["preview"]:
            preview = services.preview_matching(data["filters"])
            return Response(MatchingPreviewSerializer(preview, context={"request": request}).data)
        result = services.decide_matching(data["filters"], data["action"], request.user, data["reason"],
                                          expect=data["expect"])
        return Response(MatchingResultSerializer(result).data, status=201)


class DecisionBatchUndo(CurationAccess, APIView):
    """Take back every decision of one decision by filters (its batch id), all or nothing."""

    @extend_schema(request=UndoSerializer, responses={200: DecisionsSerializer, 409: CONFLICT})
    def post(self, request, batch):
        form = UndoSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        undone = services.undo_batch(batch, request.user, form.validated_data["reason"])
        return Response(DecisionsSerializer({"decisions": undone}).data)


class DecisionList(CurationAccess, generics.ListAPIView):
    """The audit trail, newest first; `?flag=` one flag's decisions."""

    serializer_class = DecisionSerializer
    pagination_class = Pagination
    filter_backends: list = []

    def get_queryset(self):
        flag = selectors._number(self.request.query_params.get("flag"), int)
        return selectors.decisions(flag=flag)

    @extend_schema(parameters=[OpenApiParameter("flag", OpenApiTypes.INT)])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class DecisionUndo(CurationAccess, APIView):
    """Take back a decision (the latest on its flag)."""

    @extend_schema(request=UndoSerializer, responses={200: DecisionSerializer, 409: CONFLICT})
    def post(self, request, pk: int):
        decision = get_object_or_404(Decision, pk=pk)
        form = UndoSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        undo = services.undo(decision, request.user, form.validated_data["reason"])
        return Response(DecisionSerializer(undo).data)


# ---------------------------------------------------------------- duplicate groups


class GroupMemberSerializer(serializers.Serializer):
    flag = serializers.IntegerField(source="flag.pk")
    status = serializers.CharField(source="flag.status")
    image = PhotoSerializer()
    licence = serializers.CharField(source="image.licence.code")
    source = serializers.CharField(source="image.source.name")
    is_keeper = serializers.BooleanField()
    labeled = serializers.BooleanField(help_text="The photo has a submitted comment set.")
    distance = serializers.IntegerField(allow_null=True, help_text="Hamming distance to its nearest partner.")
    confirmation = serializers.FloatField(allow_null=True, help_text="Thumbnail correlation of that pair.")


class DuplicateGroupSerializer(serializers.Serializer):
    group_key = serializers.CharField()
    kind = serializers.CharField()
    keeper = serializers.UUIDField(allow_null=True)
    score = serializers.FloatField()
    members = GroupMemberSerializer(many=True)


class DuplicateGroupList(CurationAccess, generics.GenericAPIView):
    """Duplicate-photo groups (those with an open flag unless `status` says otherwise), each
    with its members' facts and the keeper, paginated by group (the schema's paged list)."""

    pagination_class = Pagination
    serializer_class = DuplicateGroupSerializer
    queryset = Flag.objects.none()  # for the schema: the groups are read by curation.selectors

    @extend_schema(parameters=[
        OpenApiParameter("kind", OpenApiTypes.STR, enum=sorted(DUPLICATE_PHOTO_KINDS)),
        OpenApiParameter("status", OpenApiTypes.STR, enum=FlagStatus.values, description="Default: open."),
        OpenApiParameter("image", OpenApiTypes.UUID, description="The groups holding this photo."),
        OpenApiParameter("page", OpenApiTypes.INT), OpenApiParameter("page_size", OpenApiTypes.INT),
    ], responses=DuplicateGroupSerializer(many=True))
    def get(self, request):
        params = request.query_params
        kind = params.get("kind", "")
        status = params.get("status", FlagStatus.OPEN)
        image = params.get("image") or None
        if image is not None:
            try:
                image = serializers.UUIDField().to_internal_value(image)
            except serializers.ValidationError:
                raise serializers.ValidationError({"image": ["Not a photo id."]}) from None
        keys = selectors.duplicate_group_keys(
            kind=kind if kind in DUPLICATE_PHOTO_KINDS else "", status=status if status in FlagStatus.values else "",
            image=image)
        groups = selectors.duplicate_groups(self.paginate_queryset(keys))
        return self.get_paginated_response(self.get_serializer(groups, many=True).data)


class FlagKeepInstead(CurationAccess, APIView):
    """Keep this flag's photo instead of its duplicate group's suggested keeper (audited as a
    "choose_keeper" decision; undo it like any decision)."""

    @extend_schema(request=UndoSerializer, responses={200: DecisionSerializer, 409: CONFLICT})
    def post(self, request, pk: int):
        flag = get_object_or_404(Flag, pk=pk)
        form = UndoSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        decision = services.choose_keeper(flag, request.user, form.validated_data["reason"])
        return Response(DecisionSerializer(decision).data)


# ---------------------------------------------------------------- runs


class RunStepSerializer(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField()
    state = serializers.CharField()
    state_label = serializers.CharField()
    reason = serializers.CharField(help_text="Why it was skipped.")
    subject = serializers.CharField(help_text="What `done` and `total` count: photos, comments or projects.")
    done = serializers.IntegerField()
    total = serializers.IntegerField()
    percent = serializers.IntegerField()
    counts = serializers.DictField(child=serializers.IntegerField())
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


class RunSerializer(serializers.ModelSerializer):
    project_name = serializers.CharField(source="project.name", default=None, allow_null=True, read_only=True)
    created_by = serializers.CharField(source="created_by.username", default=None)
    progress = serializers.SerializerMethodField()
    can_cancel = serializers.SerializerMethodField()
    can_resume = serializers.SerializerMethodField()

    class Meta:
        model = CurationRun
        fields = ["id", "project", "project_name", "steps", "new_only", "options", "trigger", "status", "error",
                  "created_by", "created_at", "started_at", "finished_at", "heartbeat_at", "progress", "can_cancel",
                  "can_resume"]

    @extend_schema_field(RunStepSerializer(many=True))
    def get_progress(self, obj) -> list:
        return RunStepSerializer(selectors.step_rows(obj), many=True).data

    def get_can_cancel(self, obj) -> bool:
        return obj.is_active

    def get_can_resume(self, obj) -> bool:
        return runs.can_resume(obj)


class RunCreateSerializer(serializers.Serializer):
    project = serializers.PrimaryKeyRelatedField(queryset=Project.objects.all(), required=False, allow_null=True,
                                                 default=None, help_text="Empty: the whole catalogue.")
    steps = serializers.ListField(child=serializers.ChoiceField(choices=[]), min_length=1,
                                  help_text="Steps to run (those they require are added).")
    new_only = serializers.BooleanField(required=False, default=False,
                                        help_text="Only what arrived since the last finished run of the scope.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["steps"].child.choices = list(registry.by_name())


class RunList(CurationAccess, generics.ListAPIView):
    """Curation runs, newest first (`?project=`); POST starts one (planners)."""

    serializer_class = RunSerializer
    pagination_class = Pagination
    filter_backends: list = []

    def get_queryset(self):
        return selectors.runs(project=selectors._number(self.request.query_params.get("project"), int))

    @extend_schema(parameters=[OpenApiParameter("project", OpenApiTypes.INT)])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(request=RunCreateSerializer, responses={201: RunSerializer})
    def post(self, request):
        form = RunCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        run = runs.start_run(user=request.user, trigger=RunTrigger.API, **form.validated_data)
        return Response(RunSerializer(run).data, status=201)


class RunDetail(CurationAccess, generics.RetrieveAPIView):
    """One run with its progress and counts per step (the run page polls this)."""

    serializer_class = RunSerializer

    def get_queryset(self):
        return selectors.runs()


class RunCancel(CurationAccess, APIView):
    """Stop a queued or running run (its tasks stop before their next chunk)."""

    @extend_schema(request=None, responses={200: RunSerializer, 409: CONFLICT})
    def post(self, request, pk: int):
        run = runs.cancel_run(get_object_or_404(CurationRun, pk=pk), request.user)
        return Response(RunSerializer(run).data)


class RunResume(CurationAccess, APIView):
    """Go on with a failed, cancelled or stalled run where it stopped."""

    @extend_schema(request=None, responses={200: RunSerializer, 409: CONFLICT})
    def post(self, request, pk: int):
        run = runs.resume_run(get_object_or_404(CurationRun, pk=pk))
        return Response(RunSerializer(run).data)


# ---------------------------------------------------------------- specificity (issue 12, item 2)

class HistogramBinSerializer(serializers.Serializer):
    low = serializers.FloatField()
    high = serializers.FloatField()
    count = serializers.IntegerField()
    generic = serializers.BooleanField(help_text="The bin starts below the generic threshold (it holds generic comments).")


class ClusterSerializer(serializers.Serializer):
    text = serializers.CharField(help_text="One of the cluster's texts (the same after curation.textdup's normalisation).")
    count = serializers.IntegerField()
    mean_specificity = serializers.FloatField()


class LabelerSpecificitySerializer(serializers.Serializer):
    labeler = serializers.IntegerField()
    username = serializers.CharField()
    scored = serializers.IntegerField()
    generic = serializers.IntegerField()
    generic_share = serializers.FloatField()
    median_specificity = serializers.FloatField(allow_null=True)


class SpecificitySerializer(serializers.Serializer):
    project = serializers.IntegerField()
    model = serializers.CharField(allow_null=True, help_text="The embedding model whose scores these are (none yet: null).")
    scored = serializers.IntegerField()
    threshold = serializers.FloatField(allow_null=True, help_text="Specificity below which a comment counts as generic.")
    threshold_source = serializers.ChoiceField(choices=["project", "quantile"], help_text=(
        "project: the project's specificity_flag_below; quantile: CURATION_GENERIC_QUANTILE of the project's scores."))
    flag_below = serializers.FloatField(allow_null=True, help_text="The project's specificity_flag_below.")
    generic = serializers.IntegerField()
    generic_share = serializers.FloatField(allow_null=True)
    median_specificity = serializers.FloatField(allow_null=True)
    histogram = HistogramBinSerializer(many=True)
    clusters = ClusterSerializer(many=True, help_text="The least specific comment texts, by mean specificity.")
    labelers = LabelerSpecificitySerializer(many=True)
    null_quantiles = serializers.DictField(child=serializers.FloatField(), help_text=(
        "Quantiles of the specificity of shuffled (comment, wrong photo) pairs, by quantile."))


class ProjectSpecificity(CurationAccess, APIView):
    """A project's specificity scores: the numbers of the specificity page."""

    @extend_schema(responses=SpecificitySerializer)
    def get(self, request, pk: int):
        project = get_object_or_404(Project, pk=pk)
        return Response(SpecificitySerializer(selectors.specificity_report(project)).data)
# ---------------------------------------------------------------- the labeler scorecard (issue 12, item 5)


class KindShareSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    share = serializers.FloatField(allow_null=True)


class ScorecardMessageSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    body = serializers.CharField()
    sent_by = serializers.CharField(source="sent_by.username", read_only=True, allow_null=True)
    created_at = serializers.DateTimeField()
    read_at = serializers.DateTimeField(allow_null=True)


class ScorecardRowSerializer(serializers.Serializer):
    user_id = serializers.IntegerField()
    username = serializers.CharField()
    name = serializers.CharField()
    is_active = serializers.BooleanField()
    cap = serializers.IntegerField()
    cap_override = serializers.IntegerField(allow_null=True)
    submitted_count = serializers.IntegerField()
    open_leases = serializers.IntegerField()
    sets = serializers.IntegerField(help_text="Comment sets submitted, including those rejected since.")
    rejected = serializers.IntegerField(help_text="Sets a planner rejected in the review queue.")
    rejected_share = serializers.FloatField(allow_null=True)
    comments = serializers.IntegerField()
    flagged = serializers.IntegerField(help_text="Comments with a flag of any kind (open or decided, not withdrawn).")
    flagged_share = serializers.FloatField(allow_null=True)
    flags = serializers.DictField(child=KindShareSerializer(), help_text="Per comment flag kind (self-copies apart).")
    self_copy = serializers.IntegerField()
    self_copy_share = serializers.FloatField(allow_null=True)
    scored = serializers.IntegerField(help_text="Comments with a specificity score.")
    generic = serializers.IntegerField()
    generic_share = serializers.FloatField(allow_null=True, help_text="null: no scores (the embedding model has not run).")
    median_specificity = serializers.FloatField(allow_null=True)
    agreement = serializers.FloatField(allow_null=True, help_text="Mean character n-gram cosine similarity with the "
                                       "other labelers' comments of the same type on the same photos; null below "
                                       f"{scorecard.AGREEMENT_MIN_PHOTOS} shared photos.")
    shared_photos = serializers.IntegerField()
    messages_sent = serializers.IntegerField()
    unread_messages = serializers.IntegerField()
    last_message_at = serializers.DateTimeField(allow_null=True)
    recent_messages = ScorecardMessageSerializer(many=True)


class LabelerQuality(ProjectChildMixin, APIView):
    """The labeler quality scorecard of a project: one row per labeler (active or not), sorted by
    `sort` (a column, "-" first for descending; empty values last). Planners and engineers read;
    labelers 403. Actions: PATCH/DELETE /api/projects/{id}/members/{user_id}/ (cap, deactivate)
    and POST .../labelers/{user_id}/message/."""

    @extend_schema(parameters=[OpenApiParameter("sort", OpenApiTypes.STR, enum=sorted(scorecard.SORTS),
                                                description=f"Default: {scorecard.DEFAULT_SORT}.")],
                   responses=ScorecardRowSerializer(many=True))
    def get(self, request, project_pk):
        sort = request.query_params.get("sort", scorecard.DEFAULT_SORT)
        if sort not in scorecard.SORTS:
            raise serializers.ValidationError({"sort": [f"One of: {', '.join(sorted(scorecard.SORTS))}."]})
        rows = scorecard.labeler_scorecard(self.project, sort=sort)
        return Response(ScorecardRowSerializer(rows, many=True).data)
