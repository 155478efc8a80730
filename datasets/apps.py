from django.apps import AppConfig


class DatasetsConfig(AppConfig):
    name = "datasets"
    verbose_name = "Datasets"

    def ready(self):
        # How the API answers this app's refusals (config.api.exception_handler).
        from rest_framework import status

        from config.api import register_service_error

        from . import services
        from .export.errors import ExportConflict, ExportError
        from .runs.errors import RunError

        register_service_error(services.IngestError, status.HTTP_400_BAD_REQUEST)
        register_service_error(services.InUseError, status.HTTP_409_CONFLICT)
        register_service_error(services.NotResumable, status.HTTP_409_CONFLICT,
                               lambda exc: {"detail": str(exc), "code": "not_interrupted"})
        # Export refusals say their reason in the request's language, with a code.
        register_service_error(ExportError, status.HTTP_400_BAD_REQUEST,
                               lambda exc: {"detail": exc.text(), "code": exc.code})
        register_service_error(RunError, status.HTTP_400_BAD_REQUEST,
                               lambda exc: {"detail": exc.text(), "code": exc.code})
        register_service_error(ExportConflict, status.HTTP_409_CONFLICT,
                               lambda exc: {"detail": exc.text(), "code": exc.code})
