from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("label/", views.labeler_home, name="labeler-home"),
    path("label/<int:pk>/", views.label, name="label"),
    path("label/<int:pk>/history/", views.label_history, name="label-history"),
    path("label/<int:pk>/guide/", views.label_guide, name="label-guide"),
]
