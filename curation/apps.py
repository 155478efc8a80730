from django.apps import AppConfig


class CurationConfig(AppConfig):
    name = "curation"
    verbose_name = "Curation"

    def ready(self) -> None:
        from rest_framework import status

        from config.api import register_service_error

        from .services import CurationError

        # A decision the flag's state refuses (decided already, wrong subject): 409 {"detail"}.
        register_service_error(CurationError, status.HTTP_409_CONFLICT)
