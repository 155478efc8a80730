from django.apps import AppConfig


class LabelingConfig(AppConfig):
    name = "labeling"
    verbose_name = "Labeling"

    def ready(self) -> None:
        from datasets import signals

        from . import receivers

        signals.images_added.connect(receivers.on_images_added, dispatch_uid="labeling.images_added")
        signals.images_changed.connect(receivers.on_images_changed, dispatch_uid="labeling.images_changed")
