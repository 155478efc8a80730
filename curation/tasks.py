"""Thin Celery wrappers around curation.runs (routed to the "curation" queue in settings; a
step's chunks go to the step's own queue). Acked when done and put back on the queue when their
worker is lost (SIGKILL, OOM): a chunk delivered twice is counted once and its step's work is
idempotent (curation/runs.py)."""
from celery import shared_task


def _run_of_chunk(chunk_id: int):
    from .models import RunChunk

    return RunChunk.objects.filter(pk=chunk_id).values_list("step__run_id", flat=True).first()


def _run_of_step(step_id: int):
    from .models import RunStep

    return RunStep.objects.filter(pk=step_id).values_list("run_id", flat=True).first()


@shared_task(acks_late=True, reject_on_worker_lost=True)
def advance_run_task(run_id: int) -> None:
    """Plan a run's next step and queue its chunks (or finish the run)."""
    from . import runs

    try:
        runs.advance(run_id)
    except Exception as exc:
        runs.fail_unexpectedly(run_id, exc)
        raise


@shared_task(acks_late=True, reject_on_worker_lost=True)
def run_chunk_task(chunk_id: int) -> None:
    """One chunk of a step."""
    from . import runs

    try:
        runs.run_chunk(chunk_id)
    except Exception as exc:
        runs.fail_unexpectedly(_run_of_chunk(chunk_id), exc)
        raise


@shared_task(acks_late=True, reject_on_worker_lost=True)
def finish_step_task(step_id: int) -> None:
    """A step's finish (once its chunks are done), then the next step."""
    from . import runs

    try:
        runs.finish_step(step_id)
    except Exception as exc:
        runs.fail_unexpectedly(_run_of_step(step_id), exc)
        raise


@shared_task(acks_late=True, reject_on_worker_lost=True)
def run_after_import_task(import_job_id: int) -> None:
    """The photo steps over an import's photos (sent when the import finished)."""
    from . import runs

    runs.run_after_import(import_job_id)
