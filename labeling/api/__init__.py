"""REST API of labeling: the planner API (`planner`: projects, comment types, members, guideline,
examples, reports, progress) and the labeler's flow (`labeler`: next, assignment, submit, skip,
report, history, rules); what both share is in `common`. config/api_urls.py uses the names below."""
from .labeler import (
    AssignmentDetail,
    BlockedSubmitView,
    HistoryView,
    NextView,
    ReportView,
    RulesView,
    SkipView,
    SubmitView,
)
from .planner import (
    CommentTypeViewSet,
    CurrentGuideline,
    ExampleViewSet,
    GuidelineDraft,
    GuidelinePublish,
    GuidelineVersions,
    MemberDetail,
    MemberImport,
    MemberList,
    ProgressView,
    ProjectViewSet,
    ReportList,
    ReportResolve,
)

__all__ = [
    "AssignmentDetail", "BlockedSubmitView", "CommentTypeViewSet", "CurrentGuideline", "ExampleViewSet", "GuidelineDraft",
    "GuidelinePublish", "GuidelineVersions", "HistoryView", "MemberDetail", "MemberImport", "MemberList",
    "NextView", "ProgressView", "ProjectViewSet", "ReportList", "ReportResolve", "ReportView", "RulesView",
    "SkipView", "SubmitView",
]
