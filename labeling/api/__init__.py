"""REST API of labeling: the planner API (`planner`: projects, comment types, members, guideline,
examples, reports, progress), the comment browser (`comments`), the labeler's flow (`labeler`:
next, assignment, submit, skip, report, blocked submits, history, rules) and snapshots
(`snapshots`: list, freeze, detail, archive, diff, preview); what they share is in `common`.
config/api_urls.py uses the names below."""
from .comments import CommentExport, CommentList
from .external import CommentImportDetail, CommentImportList, CommentImportRows
from .labeler import (
    AssignmentDetail,
    BlockedSubmitView,
    HistoryView,
    MyMessageRead,
    MyMessages,
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
    LabelerMessageCreate,
    MemberDetail,
    MemberImport,
    MemberList,
    ProgressView,
    ProjectViewSet,
    ReportList,
    ReportResolve,
)
from .snapshots import SnapshotArchive, SnapshotDetail, SnapshotDiff, SnapshotList, SnapshotPreview

__all__ = [
    "AssignmentDetail", "BlockedSubmitView", "CommentExport", "CommentImportDetail", "CommentImportList",
    "CommentImportRows", "CommentList", "CommentTypeViewSet", "CurrentGuideline", "ExampleViewSet", "GuidelineDraft",
    "GuidelinePublish", "GuidelineVersions", "HistoryView", "LabelerMessageCreate", "MemberDetail", "MemberImport", "MemberList",
    "MyMessageRead", "MyMessages", "NextView", "ProgressView", "ProjectViewSet", "ReportList", "ReportResolve", "ReportView", "RulesView",
    "SkipView", "SnapshotArchive", "SnapshotDetail", "SnapshotDiff", "SnapshotList", "SnapshotPreview", "SubmitView",
]
