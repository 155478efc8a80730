from django.urls import path

from . import export_views, run_views, views

urlpatterns = [
    path("quotas/", views.quota_dashboard, name="quota-dashboard"),
    path("categories/", views.categories, name="categories"),
    path("categories/<id:pk>/", views.category_edit, name="category-edit"),
    path("categories/<id:pk>/active/", views.category_active, name="category-active"),
    path("subcategories/<id:pk>/active/", views.subcategory_active, name="subcategory-active"),
    path("sources/", views.sources, name="sources"),
    path("imports/", views.imports, name="imports"),
    path("imports/new/", views.import_new, name="import-new"),
    path("imports/<id:pk>/", views.import_detail, name="import-detail"),
    path("imports/<id:pk>/progress.json", views.import_progress, name="import-progress"),
    path("imports/<id:pk>/resume/", views.import_resume, name="import-resume"),
    path("images/", views.images, name="images"),
    path("images/bulk/", views.images_bulk, name="images-bulk"),
    path("images/<uuid:pk>/", views.image_detail, name="image-detail"),
    path("exports/", export_views.export_list, name="export-list"),
    path("exports/<id:pk>/", export_views.export_detail, name="export-detail"),
    path("exports/<id:pk>/progress.json", export_views.export_progress, name="export-progress"),
    path("exports/<id:pk>/resume/", export_views.export_resume, name="export-resume"),
    path("exports/<id:pk>/cancel/", export_views.export_cancel, name="export-cancel"),
    path("exports/<id:pk>/files/<path:path>", export_views.export_file, name="export-file"),
    path("runs/", run_views.run_list, name="runs"),
    path("runs/<id:pk>/", run_views.run_detail, name="run-detail"),
    path("runs/<id:pk>/remove/", run_views.run_remove, name="run-remove"),
    path("snapshots/<id:pk>/exports/", export_views.snapshot_exports, name="snapshot-exports"),
]
