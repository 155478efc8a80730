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


@shared_task(bind=True, acks_late=True, max_retries=2)
def run_comment_import_task(self, comment_import_id: int) -> None:
    """One run of a comment import (labeling.external): its photo import, then its sets. Near the
    photo import's time limit it goes on in a new task, as datasets' import task does; an error is
    retried, then the import is marked failed (running it again stores nothing twice)."""
    import time

    from celery.exceptions import SoftTimeLimitExceeded
    from django.conf import settings

    from datasets.services import ImportStopped

    from . import external

    deadline = time.monotonic() + 0.9 * settings.INGEST["TASK_SOFT_TIME_LIMIT"]
    try:
        external.run_comment_import(comment_import_id, deadline=deadline)
    except (ImportStopped, SoftTimeLimitExceeded):
        run_comment_import_task.delay(comment_import_id)
    except Exception as exc:
        if self.request.retries >= self.max_retries:
            external.fail_comment_import(comment_import_id, f"{exc.__class__.__name__}: {exc}")
            raise
        raise self.retry(exc=exc, countdown=5) from exc
