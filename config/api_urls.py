"""The REST API under /api/ (namespace "api"). The schema is at /api/schema/, its docs at
/api/docs/ and /api/redoc/ (config/urls.py)."""
from django.urls import include, path
from rest_framework.routers import DefaultRouter

from accounts.api import ApiTokenViewSet, LoginView, LogoutView, MeView
from curation import api as curation
from datasets.api import (
    CategoryViewSet,
    ExportCancel,
    ExportDetail,
    ExportFileDownload,
    ExportResume,
    ImageViewSet,
    ImportItemList,
    ImportJobViewSet,
    LicenceViewSet,
    QuotaView,
    SnapshotExportList,
    SourceViewSet,
    SubcategoryViewSet,
    TrainingRunDetail,
    TrainingRunList,
)
from labeling import api as labeling

app_name = "api"

router = DefaultRouter()
router.include_format_suffixes = False
router.register("categories", CategoryViewSet, basename="category")
router.register("subcategories", SubcategoryViewSet, basename="subcategory")
router.register("licences", LicenceViewSet, basename="licence")
router.register("sources", SourceViewSet, basename="source")
router.register("images", ImageViewSet, basename="image")
router.register("imports", ImportJobViewSet, basename="import")
router.register("tokens", ApiTokenViewSet, basename="token")
router.register("projects", labeling.ProjectViewSet, basename="project")

# Under /api/projects/{project_pk}/: configuration (planners) and the labeler's flow.
project_urls = [
    path("comment-types/", labeling.CommentTypeViewSet.as_view({"get": "list", "post": "create"}),
         name="project-comment-type-list"),
    path("comment-types/<id:pk>/", labeling.CommentTypeViewSet.as_view(
        {"get": "retrieve", "put": "update", "patch": "partial_update", "delete": "destroy"}),
        name="project-comment-type-detail"),
    path("members/", labeling.MemberList.as_view(), name="project-member-list"),
    path("members/import/", labeling.MemberImport.as_view(), name="project-member-import"),
    path("members/<id:user_id>/", labeling.MemberDetail.as_view(), name="project-member-detail"),
    path("labelers/quality/", curation.LabelerQuality.as_view(), name="project-labeler-quality"),
    path("labelers/<id:user_id>/message/", labeling.LabelerMessageCreate.as_view(), name="project-labeler-message"),
    path("guideline/", labeling.CurrentGuideline.as_view(), name="project-guideline"),
    path("guideline/draft/", labeling.GuidelineDraft.as_view(), name="project-guideline-draft"),
    path("guideline/publish/", labeling.GuidelinePublish.as_view(), name="project-guideline-publish"),
    path("guideline/versions/", labeling.GuidelineVersions.as_view(), name="project-guideline-versions"),
    path("examples/", labeling.ExampleViewSet.as_view({"get": "list", "post": "create"}),
         name="project-example-list"),
    path("examples/<id:pk>/", labeling.ExampleViewSet.as_view(
        {"get": "retrieve", "put": "update", "patch": "partial_update", "delete": "destroy"}),
        name="project-example-detail"),
    path("reports/", labeling.ReportList.as_view(), name="project-report-list"),
    path("reports/<id:assignment_id>/resolve/", labeling.ReportResolve.as_view(), name="project-report-resolve"),
    path("progress/", labeling.ProgressView.as_view(), name="project-progress"),
    path("comments/", labeling.CommentList.as_view(), name="project-comment-list"),
    path("comments/export/", labeling.CommentExport.as_view(), name="project-comment-export"),
    path("comment-imports/", labeling.CommentImportList.as_view(), name="project-comment-import-list"),
    path("comment-imports/<id:pk>/", labeling.CommentImportDetail.as_view(), name="project-comment-import-detail"),
    path("comment-imports/<id:pk>/rows/", labeling.CommentImportRows.as_view(), name="project-comment-import-rows"),
    path("next/", labeling.NextView.as_view(), name="project-next"),
    path("history/", labeling.HistoryView.as_view(), name="project-history"),
    path("rules/", labeling.RulesView.as_view(), name="project-rules"),
]
assignment_urls = [
    path("", labeling.AssignmentDetail.as_view(), name="assignment-detail"),
    path("submit/", labeling.SubmitView.as_view(), name="assignment-submit"),
    path("skip/", labeling.SkipView.as_view(), name="assignment-skip"),
    path("report/", labeling.ReportView.as_view(), name="assignment-report"),
    path("blocked/", labeling.BlockedSubmitView.as_view(), name="assignment-blocked"),
]

urlpatterns = [
    path("me/", MeView.as_view(), name="me"),
    path("me/messages/", labeling.MyMessages.as_view(), name="me-messages"),
    path("me/messages/<id:pk>/read/", labeling.MyMessageRead.as_view(), name="me-message-read"),
    path("auth/login/", LoginView.as_view(), name="auth-login"),
    path("auth/logout/", LogoutView.as_view(), name="auth-logout"),
    path("quotas/", QuotaView.as_view(), name="quotas"),
    path("imports/<id:job_pk>/items/", ImportItemList.as_view(), name="import-items"),
    path("projects/<id:project_pk>/", include(project_urls)),
    path("assignments/<id:pk>/", include(assignment_urls)),
    path("snapshots/", labeling.SnapshotList.as_view(), name="snapshot-list"),
    path("snapshots/preview/", labeling.SnapshotPreview.as_view(), name="snapshot-preview"),
    path("snapshots/<id:pk>/", labeling.SnapshotDetail.as_view(), name="snapshot-detail"),
    path("snapshots/<id:pk>/archive/", labeling.SnapshotArchive.as_view(), name="snapshot-archive"),
    path("snapshots/<id:pk>/diff/", labeling.SnapshotDiff.as_view(), name="snapshot-diff"),
    path("snapshots/<id:pk>/exports/", SnapshotExportList.as_view(), name="snapshot-export-list"),
    path("exports/<id:pk>/", ExportDetail.as_view(), name="export-detail"),
    path("exports/<id:pk>/resume/", ExportResume.as_view(), name="export-resume"),
    path("exports/<id:pk>/cancel/", ExportCancel.as_view(), name="export-cancel"),
    path("exports/<id:pk>/files/<path:path>", ExportFileDownload.as_view(), name="export-file"),
    path("runs/", TrainingRunList.as_view(), name="run-list"),
    path("runs/<id:pk>/", TrainingRunDetail.as_view(), name="run-detail"),
    path("curation/flags/", curation.FlagList.as_view(), name="curation-flag-list"),
    path("curation/flags/decide-matching/", curation.FlagDecideMatching.as_view(), name="curation-flag-decide-matching"),
    path("curation/flags/<id:pk>/", curation.FlagDetail.as_view(), name="curation-flag-detail"),
    path("curation/flags/<id:pk>/decide/", curation.FlagDecide.as_view(), name="curation-flag-decide"),
    path("curation/decide/", curation.BulkDecide.as_view(), name="curation-decide"),
    path("curation/decisions/", curation.DecisionList.as_view(), name="curation-decision-list"),
    path("curation/decisions/<id:pk>/undo/", curation.DecisionUndo.as_view(), name="curation-decision-undo"),
    path("curation/decision-batches/<uuid:batch>/undo/", curation.DecisionBatchUndo.as_view(),
         name="curation-decision-batch-undo"),
    path("curation/flags/<id:pk>/keep-instead/", curation.FlagKeepInstead.as_view(), name="curation-flag-keep-instead"),
    path("curation/duplicate-groups/", curation.DuplicateGroupList.as_view(), name="curation-duplicate-groups"),
    path("curation/runs/", curation.RunList.as_view(), name="curation-run-list"),
    path("curation/runs/<id:pk>/", curation.RunDetail.as_view(), name="curation-run-detail"),
    path("curation/runs/<id:pk>/cancel/", curation.RunCancel.as_view(), name="curation-run-cancel"),
    path("curation/runs/<id:pk>/resume/", curation.RunResume.as_view(), name="curation-run-resume"),
    path("curation/projects/<id:pk>/specificity/", curation.ProjectSpecificity.as_view(),
         name="curation-project-specificity"),
    *router.urls,
]
