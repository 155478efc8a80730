"""Snapshot pages, under /snapshots/ (see labeling/snapshot_views.py)."""
from django.urls import path

from . import snapshot_views as views

urlpatterns = [
    path("", views.snapshot_list, name="snapshots"),
    path("new/", views.snapshot_new, name="snapshot-new"),
    path("<id:pk>/", views.snapshot_detail, name="snapshot-page"),
    path("<id:pk>/archive/", views.snapshot_archive, name="snapshot-page-archive"),
    path("<id:pk>/diff/", views.snapshot_diff, name="snapshot-page-diff"),
]
