"""Thin Celery wrappers around datasets.services."""
import time

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from . import services
from .refusals import Reason, reason_of

# Stop starting new files at this share of the soft time limit; the rest goes to a new task.
DEADLINE_SHARE = 0.9


@shared_task(bind=True, acks_late=True, max_retries=2,
             soft_time_limit=settings.INGEST["TASK_SOFT_TIME_LIMIT"],
             time_limit=settings.INGEST["TASK_HARD_TIME_LIMIT"])
def run_import_task(self, job_id: int) -> None:
    """One run of an import, under the task time limits. A big import goes on in a new task when
    this one nears its soft limit (a file that is slow past it is refused on its own line); an
    error that is not one file's fault is retried, then leaves the import interrupted (staged files
    kept; a planner resumes it). A worker killed outright is found by the stalled-import sweep."""
    deadline = time.monotonic() + DEADLINE_SHARE * settings.INGEST["TASK_SOFT_TIME_LIMIT"]
    try:
        services.run_import(job_id, deadline=deadline)
    except (services.ImportStopped, SoftTimeLimitExceeded):
        run_import_task.delay(job_id)
    except Exception as exc:
        if self.request.retries >= self.max_retries:
            services.interrupt_import(job_id, Reason("stopped_not_file_fault", error=exc.__class__.__name__,
                                                     detail=reason_of(exc) or str(exc)))
            raise
        raise self.retry(exc=exc, countdown=5) from exc


@shared_task(acks_late=True, reject_on_worker_lost=True)
def export_group_task(export_id: int, group: int) -> None:
    """Write one shard group of an export (datasets.export.services.run_shard_group). Acked when
    done, and put back on the queue when its worker is lost (SIGKILL, OOM), so another worker
    writes the group again; shards already written with their recorded checksum are skipped."""
    from .export import services as export_services

    try:
        export_services.run_shard_group(export_id, group)
    except Exception as exc:
        export_services.fail_unexpectedly(export_id, exc)  # the export says why; a resume goes on
        raise


@shared_task(acks_late=True, reject_on_worker_lost=True)
def finalize_export_task(export_id: int) -> None:
    """The metadata files and SHA256SUMS of an export whose shards are all written."""
    from .export import services as export_services

    try:
        export_services.finalize_export(export_id)
    except Exception as exc:
        export_services.fail_unexpectedly(export_id, exc)
        raise
