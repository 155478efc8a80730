"""The review queue's pages, under /curation/ (see curation/views.py)."""
from django.urls import path

from . import views

urlpatterns = [
    path("review/", views.review, name="curation-review"),
    path("review/decide/", views.decide, name="curation-review-decide"),
    path("review/decide-matching/", views.decide_matching, name="curation-review-decide-matching"),
    path("review/undo-batch/", views.undo_batch, name="curation-review-undo-batch"),
    path("decisions/", views.decisions, name="curation-decisions"),
    path("decisions/<id:pk>/undo/", views.undo, name="curation-undo"),
    path("review/keep-instead/", views.keep_instead, name="curation-keep-instead"),
    path("runs/", views.runs, name="curation-runs"),
    path("runs/<id:pk>/", views.run_detail, name="curation-run"),
    path("runs/<id:pk>/cancel/", views.run_cancel, name="curation-run-cancel"),
    path("runs/<id:pk>/resume/", views.run_resume, name="curation-run-resume"),
    path("projects/<id:pk>/specificity/", views.specificity, name="curation-specificity"),
]
