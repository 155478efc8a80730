from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("label/", views.labeler_home, name="labeler-home"),
]
