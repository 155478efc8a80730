from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.static import serve
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="api-redoc"),
    path("api/", include("config.api_urls")),
    path("accounts/", include("accounts.urls")),
    path("datasets/", include("datasets.urls")),
    path("projects/", include("labeling.planner_urls")),
    path("", include("labeling.urls")),
]

if not settings.S3_BUCKET:
    # Media on local disk (the embedded default). Behind a real web server, let it serve /media/.
    urlpatterns.append(path("media/<path:path>", serve, {"document_root": settings.MEDIA_ROOT}))
