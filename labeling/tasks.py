"""Thin Celery wrappers around labeling.services."""
from celery import shared_task

from . import services
from .models import Project


@shared_task(acks_late=True, ignore_result=True)
def refresh_priorities_task(project_id: int) -> None:
    project = Project.objects.filter(pk=project_id).first()
    if project is not None:
        services.refresh_priorities(project)


@shared_task(acks_late=True, ignore_result=True)
def join_imported_images_task(import_job_id: int) -> None:
    """The photos an import stored join the open projects that follow new photos."""
    services.join_imported_images(import_job_id)
