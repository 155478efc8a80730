from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("label/", views.labeler_home, name="labeler-home"),
    path("label/<id:pk>/", views.label, name="label"),
    path("label/<id:pk>/history/", views.label_history, name="label-history"),
    path("label/<id:pk>/guide/", views.label_guide, name="label-guide"),
    path("label/messages/<id:pk>/read/", views.message_read, name="labeler-message-read"),
]
