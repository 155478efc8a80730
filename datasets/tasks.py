"""Thin Celery wrappers around datasets.services."""
from celery import shared_task

from . import services


@shared_task(bind=True, acks_late=True, max_retries=2)
def run_import_task(self, job_id: int) -> None:
    try:
        services.run_import(job_id)
    except Exception as exc:
        if self.request.retries >= self.max_retries:
            services.fail_import(job_id, f"{exc.__class__.__name__}: {exc}")
            raise
        raise self.retry(exc=exc, countdown=5) from exc
