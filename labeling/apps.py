from django.apps import AppConfig


class LabelingConfig(AppConfig):
    name = "labeling"
    verbose_name = "Labeling"

    def ready(self) -> None:
        # datasets never imports labeling (labeling builds on datasets): labeling tells it here
        # how to count labeled photos (the quota dashboard) and which photos a labeler may see.
        from datasets import signals
        from datasets.media import register_labeler_access
        from datasets.panels import register_image_panel
        from datasets.selectors import register_labeled_counts

        from . import receivers
        from .api.common import register_service_errors
        from .panels import image_comments_panel
        from .selectors import labeled_image_counts, labeler_may_see_image

        register_labeled_counts(labeled_image_counts)
        register_labeler_access(labeler_may_see_image)
        register_service_errors()  # how the API answers the engine's refusals (config.api)
        # New, moved and withdrawn photos reach the projects' queues (labeling.receivers).
        signals.images_added.connect(receivers.on_images_added, dispatch_uid="labeling.images_added")
        signals.images_changed.connect(receivers.on_images_changed, dispatch_uid="labeling.images_changed")
        # The photo page (datasets) shows the comment sets written on the photo.
        register_image_panel(image_comments_panel)
