"""What labeling does when the catalogue changes (datasets.signals; connected in LabelingConfig.ready).

datasets does not import labeling: it announces, and these receivers call labeling's services.
"""
from __future__ import annotations


def on_images_added(sender, import_job_id: int, **kwargs) -> None:
    """An import finished with stored photos (sent after its commit): they join the open projects
    that follow new photos, on a worker, so the import's own task is not held up by every project."""
    from .tasks import join_imported_images_task

    join_imported_images_task.delay(import_job_id)


def on_images_changed(sender, image_ids, **kwargs) -> None:
    """Photos changed status or category: queues follow inside the same transaction, so no
    retired or excluded photo can be handed out after the change commits."""
    from . import services

    services.follow_image_changes(image_ids)
