"""The REST API under /api/ (namespace "api"). The schema is at /api/schema/, its docs at
/api/docs/ and /api/redoc/ (config/urls.py)."""
from django.urls import path
from rest_framework.routers import DefaultRouter

from accounts.api import ApiTokenViewSet, MeView
from datasets.api import (
    CategoryViewSet,
    ImageViewSet,
    ImportItemList,
    ImportJobViewSet,
    LicenceViewSet,
    QuotaView,
    SourceViewSet,
    SubcategoryViewSet,
)

app_name = "api"

router = DefaultRouter()
router.include_format_suffixes = False
router.register("categories", CategoryViewSet, basename="category")
router.register("subcategories", SubcategoryViewSet, basename="subcategory")
router.register("licences", LicenceViewSet, basename="licence")
router.register("sources", SourceViewSet, basename="source")
router.register("images", ImageViewSet, basename="image")
router.register("imports", ImportJobViewSet, basename="import")
router.register("tokens", ApiTokenViewSet, basename="token")

urlpatterns = [
    path("me/", MeView.as_view(), name="me"),
    path("quotas/", QuotaView.as_view(), name="quotas"),
    path("imports/<int:job_pk>/items/", ImportItemList.as_view(), name="import-items"),
    *router.urls,
]
