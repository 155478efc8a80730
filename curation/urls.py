"""The review queue's pages, under /curation/ (see curation/views.py)."""
from django.urls import path

from . import views

urlpatterns = [
    path("review/", views.review, name="curation-review"),
    path("review/decide/", views.decide, name="curation-review-decide"),
    path("decisions/", views.decisions, name="curation-decisions"),
    path("decisions/<id:pk>/undo/", views.undo, name="curation-undo"),
]
