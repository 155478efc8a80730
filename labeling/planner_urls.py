"""Planner pages for labeling projects, under /projects/ (see labeling/planner_views.py)."""
from django.urls import path

from . import comment_views, external_views
from . import planner_views as views

urlpatterns = [
    path("", views.project_list, name="projects"),
    path("new/", views.project_new, name="project-new"),
    path("<id:pk>/", views.project_detail, name="project-detail"),
    path("<id:pk>/edit/", views.project_edit, name="project-edit"),
    path("<id:pk>/guideline/", views.project_guideline, name="project-guideline"),
    path("<id:pk>/guideline/preview/", views.guideline_preview, name="project-guideline-preview"),
    path("<id:pk>/guideline/v<id:version>/", views.guideline_version, name="project-guideline-version"),
    path("<id:pk>/examples/pick/", views.example_pick, name="project-example-pick"),
    path("<id:pk>/examples/new/", views.example_new, name="project-example-new"),
    path("<id:pk>/examples/<id:example_id>/", views.example_edit, name="project-example-edit"),
    path("<id:pk>/examples/<id:example_id>/delete/", views.example_delete, name="project-example-delete"),
    path("<id:pk>/examples/<id:example_id>/move/", views.example_move, name="project-example-move"),
    path("<id:pk>/labelers/", views.project_labelers, name="project-labelers"),
    path("<id:pk>/labelers/<id:user_id>/cap/", views.member_cap, name="project-member-cap"),
    path("<id:pk>/labelers/<id:user_id>/active/", views.member_active, name="project-member-active"),
    path("<id:pk>/comments/", comment_views.project_comments, name="project-comments"),
    path("<id:pk>/comments/export/", comment_views.project_comments_export, name="project-comments-export"),
    path("<id:pk>/comment-imports/", external_views.comment_imports, name="project-comment-imports"),
    path("<id:pk>/comment-imports/<id:import_id>/", external_views.comment_import_detail,
         name="project-comment-import"),
    path("<id:pk>/reports/", views.project_reports, name="project-reports"),
    path("<id:pk>/reports/<id:assignment_id>/resolve/", views.report_resolve, name="project-report-resolve"),
    path("<id:pk>/reports/<id:assignment_id>/exclude/", views.report_exclude, name="project-report-exclude"),
    path("<id:pk>/reports/<id:assignment_id>/undo/", views.report_undo, name="project-report-undo"),
]
