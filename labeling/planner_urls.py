"""Planner pages for labeling projects, under /projects/ (see labeling/planner_views.py)."""
from django.urls import path

from . import planner_views as views

urlpatterns = [
    path("", views.project_list, name="projects"),
    path("new/", views.project_new, name="project-new"),
    path("<int:pk>/", views.project_detail, name="project-detail"),
    path("<int:pk>/edit/", views.project_edit, name="project-edit"),
    path("<int:pk>/guideline/", views.project_guideline, name="project-guideline"),
    path("<int:pk>/guideline/preview/", views.guideline_preview, name="project-guideline-preview"),
    path("<int:pk>/guideline/v<int:version>/", views.guideline_version, name="project-guideline-version"),
    path("<int:pk>/examples/pick/", views.example_pick, name="project-example-pick"),
    path("<int:pk>/examples/new/", views.example_new, name="project-example-new"),
    path("<int:pk>/examples/<int:example_id>/", views.example_edit, name="project-example-edit"),
    path("<int:pk>/examples/<int:example_id>/delete/", views.example_delete, name="project-example-delete"),
    path("<int:pk>/examples/<int:example_id>/move/", views.example_move, name="project-example-move"),
    path("<int:pk>/labelers/", views.project_labelers, name="project-labelers"),
    path("<int:pk>/labelers/<int:user_id>/cap/", views.member_cap, name="project-member-cap"),
    path("<int:pk>/labelers/<int:user_id>/active/", views.member_active, name="project-member-active"),
    path("<int:pk>/reports/", views.project_reports, name="project-reports"),
    path("<int:pk>/reports/<int:assignment_id>/resolve/", views.report_resolve, name="project-report-resolve"),
]
