"""Planner pages for labeling projects, under /projects/ (see labeling/planner_views.py)."""
from django.urls import path  # noqa: F401

urlpatterns: list = []
