"""What curation does when photos arrive and comment sets are submitted (connected in
CurationConfig.ready): start the automatic runs of curation.runs, on commit, cheaply."""
from __future__ import annotations


def on_images_added(sender, import_job_id: int, **kwargs) -> None:
    """An import stored photos (sent after its commit): a photo run over them, started on a worker."""
    from django.conf import settings

    if settings.CURATION["RUN_AFTER_IMPORT"]:
        from .tasks import run_after_import_task

        run_after_import_task.delay(import_job_id)


def on_sets_submitted(sender, project_id: int, **kwargs) -> None:
    """Comment sets were submitted (sent after their commit): every CURATION["TEXT_RUN_EVERY_SETS"]
    of a project, a text run over its new comments."""
    from . import runs

    runs.maybe_run_text(project_id)
