from django.apps import AppConfig


class LabelingConfig(AppConfig):
    name = "labeling"
    verbose_name = "Labeling"

    def ready(self):
        # The image detail page (datasets) shows the comment sets written on the photo.
        from datasets.panels import register_image_panel

        from .panels import image_comments_panel

        register_image_panel(image_comments_panel)
