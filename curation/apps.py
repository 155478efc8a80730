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

        # The detectors defined outside curation.steps join the runs' registry.
        from .steps import register_detectors

        register_detectors()

        # Automatic runs: new photos after each import, new comments in batches (curation.receivers).
        from datasets.signals import images_added
        from labeling.signals import sets_submitted

        from . import receivers

        images_added.connect(receivers.on_images_added, dispatch_uid="curation.images_added")
        sets_submitted.connect(receivers.on_sets_submitted, dispatch_uid="curation.sets_submitted")

