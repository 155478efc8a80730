from django.conf import settings
from django.contrib import admin
from django.shortcuts import redirect
from django.templatetags.static import static
from django.urls import include, path, register_converter
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView

from accounts.permissions import DocsAccess, docs_page
from config.api import IdConverter
from config.csp import redoc_policy
from curation import views as curation_views
from datasets.media import serve_media


def favicon(request):
    """Browsers ask for /favicon.ico on pages without a <link rel=icon> (the admin, JSON): the SVG."""
    return redirect(static("favicon.svg"))


# `<id:...>`: ids that fit a bigint (config.api.IdConverter); registered before the includes use it.
register_converter(IdConverter, "id")

urlpatterns = [
    path("favicon.ico", favicon, name="favicon"),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    # Public in the embedded default, behind a sign-in in production (API_DOCS_PUBLIC).
    path("api/schema/", SpectacularAPIView.as_view(permission_classes=[DocsAccess]), name="schema"),
    # Under the CSP (config/csp.py): Swagger UI's init script comes as a file (?script), not inline;
    # Redoc needs a little more (redoc_policy). Both pages' templates are in templates/drf_spectacular/.
    path("api/docs/", docs_page(SpectacularSwaggerSplitView.as_view(url_name="schema")), name="api-docs"),
    path("api/redoc/", docs_page(redoc_policy(SpectacularRedocView.as_view(url_name="schema"))),
         name="api-redoc"),
    path("api/", include("config.api_urls")),
    path("accounts/", include("accounts.urls")),
    path("datasets/", include("datasets.urls")),
    # The labeler scorecard: a project tab served by curation (it reads flags, decisions and scores).
    path("projects/<id:pk>/labelers/quality/", curation_views.labeler_quality, name="project-labeler-quality"),
    path("projects/<id:pk>/labelers/<id:user_id>/message/", curation_views.labeler_message,
         name="project-labeler-message"),
    path("projects/", include("labeling.planner_urls")),
    path("snapshots/", include("labeling.snapshot_urls")),
    path("curation/", include("curation.urls")),
    path("", include("labeling.urls")),
]

if not settings.S3_BUCKET:
    # Media on local disk: only to people allowed to see the photo (never a public folder; in
    # production the web server sends the bytes after this check, see datasets.media).
    urlpatterns.append(path("media/<path:path>", serve_media, name="media"))

# Unknown URLs under /api/ answer JSON like the rest of the API (config.api).
handler404 = "config.api.page_not_found"
