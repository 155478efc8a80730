"""Curation runs: start, split into chunks on Celery, finish each step once, cancel, resume.

A run (CurationRun) has its steps (RunStep, in curation.steps.STEPS order). The runner works one
step at a time:

1. `advance(run)`: the first step not done is planned (`step.plan(run)`: the ids still to do),
   its ids cut into chunks of `step.size()` (RunChunk rows) and one Celery task per chunk sent to
   `step.queue` (curation/tasks.py; acks late, so a chunk whose worker dies is delivered again).
   Planning and claiming the step are one transaction: a step is planned once.
2. `run_chunk(chunk)`: `step.process_chunk(run, ids)`, then the chunk is marked done by a
   conditional UPDATE (done=False -> True): a chunk delivered twice counts once (the steps are
   idempotent: a second pass writes the same flags). The step's progress and counts grow.
3. the task that sees no chunk left pending moves the step to "finishing" (a conditional UPDATE,
   as datasets/export/services.py does for exports: one winner) and queues `finish_step`, which
   calls `step.finish(run)` (grouping, record_flags), marks the step done (again conditionally)
   and advances to the next step. When none is left the run is done.

A step whose `unavailable(run)` gives a reason is "skipped: <reason>" and the run goes on. A task
that fails marks the run failed with the error (the chunks done stay done). A cancelled, failed or
stalled run (no sign of life for CURATION["STALE_SECONDS"]: its worker was killed) can be resumed:
pending chunks are queued again, a step caught finishing finishes, the rest follows.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from . import steps as registry
from .models import (
    ACTIVE_RUN_STATUSES,
    CurationRun,
    RunChunk,
    RunStatus,
    RunStep,
    RunTrigger,
    StepState,
)
from .services import CurationError

log = logging.getLogger(__name__)
Progress = Callable[[CurationRun], None]


# ---------------------------------------------------------------- starting


def start_run(project=None, steps=None, *, new_only: bool = False, user=None, trigger: str = RunTrigger.PAGE,
              options: dict | None = None, enqueue: bool = True) -> CurationRun:
    """A new run over `project` (None: the whole catalogue) of `steps` (names; all by default;
    steps they require are added). Its first step is planned on a worker (or by `run_here`)."""
    try:
        names = registry.resolve(steps)
    except KeyError as exc:
        raise ValidationError({"steps": _("Unknown step: %(name)s. Choose among: %(names)s.") % {
            "name": exc.args[0], "names": ", ".join(registry.by_name())}}) from None
    if trigger not in RunTrigger.values:
        raise ValidationError({"trigger": _("Unknown trigger.")})
    with transaction.atomic():
        run = CurationRun.objects.create(project=project, steps=names, new_only=bool(new_only), options=options or {},
                                         trigger=trigger, created_by=user if getattr(user, "pk", None) else None,
                                         heartbeat_at=timezone.now())
        RunStep.objects.bulk_create([RunStep(run=run, name=name, position=n) for n, name in enumerate(names)])
        if enqueue:
            _queue_advance(run.pk)
    return run


def _queue_advance(run_id: int) -> None:
    from .tasks import advance_run_task

    transaction.on_commit(lambda: advance_run_task.delay(run_id))


def _beat(run_id: int) -> None:
    CurationRun.objects.filter(pk=run_id, status__in=ACTIVE_RUN_STATUSES).update(heartbeat_at=timezone.now())


def _active(run_id: int) -> bool:
    return CurationRun.objects.filter(pk=run_id, status__in=ACTIVE_RUN_STATUSES).exists()


def advance(run_id: int, *, enqueue: bool = True) -> CurationRun:
    """Plan the first step not done yet and queue its chunks (or finish the run when none is
    left). Steps that are unavailable here are skipped; steps with nothing to do go straight to
    their finish. A step running or finishing already is left to its tasks."""
    now = timezone.now()
    CurationRun.objects.filter(pk=run_id, status=RunStatus.QUEUED).update(status=RunStatus.RUNNING, heartbeat_at=now)
    CurationRun.objects.filter(pk=run_id, started_at__isnull=True).update(started_at=now)
    known = registry.by_name()
    while True:
        run = CurationRun.objects.select_related("project").get(pk=run_id)
        if not run.is_active:
            return run
        row = run.run_steps.exclude(state__in=[StepState.DONE, StepState.SKIPPED]).order_by("position").first()
        if row is None:
            CurationRun.objects.filter(pk=run_id, status__in=ACTIVE_RUN_STATUSES).update(
                status=RunStatus.DONE, finished_at=timezone.now(), heartbeat_at=timezone.now())
            return CurationRun.objects.get(pk=run_id)
        if row.state != StepState.PENDING:
            return run  # running or finishing: its own tasks carry it on (resume_run when they died)
        step = known.get(row.name)
        reason = (str(_("This step is not installed here.")) if step is None else step.unavailable(run))
        if reason:
            RunStep.objects.filter(pk=row.pk, state=StepState.PENDING).update(
                state=StepState.SKIPPED, reason=str(reason), started_at=now, finished_at=timezone.now())
            continue
        ids = list(step.plan(run))
        size = step.size()
        with transaction.atomic():
            won = RunStep.objects.filter(pk=row.pk, state=StepState.PENDING).update(
                state=StepState.RUNNING, total=len(ids), done=0, started_at=timezone.now())
            if not won:
                return run  # another advance planned it
            RunChunk.objects.bulk_create([
                RunChunk(step_id=row.pk, position=n, ids=ids[start:start + size])
                for n, start in enumerate(range(0, len(ids), size))
            ])
            _beat(run_id)
            if enqueue:
                _queue_chunks(row.pk, step.queue)
        if not ids:
            _maybe_finish_step(row.pk, enqueue=enqueue)
        return CurationRun.objects.get(pk=run_id)


def _queue_chunks(step_id: int, queue: str) -> None:
    from .tasks import run_chunk_task

    pending = list(RunChunk.objects.filter(step_id=step_id, done=False).order_by("position")
                   .values_list("pk", flat=True))
    if pending:
        transaction.on_commit(lambda: [run_chunk_task.apply_async((pk,), queue=queue) for pk in pending])


# ---------------------------------------------------------------- chunks


def run_chunk(chunk_id: int, *, enqueue: bool = True) -> bool:
    """Process one chunk (nothing when it is done already or its run is not active); returns
    whether this call counted it."""
    chunk = RunChunk.objects.select_related("step__run").filter(pk=chunk_id).first()
    if chunk is None:
        return False
    row, run = chunk.step, chunk.step.run
    if not run.is_active or row.state != StepState.RUNNING:
        return False
    if chunk.done:  # delivered again after it was counted: only make sure the step moves on
        _maybe_finish_step(row.pk, enqueue=enqueue)
        return False
    step = registry.by_name()[row.name]
    _beat(run.pk)
    counts, result = step.process_chunk(run, list(chunk.ids))
    counted = _record_chunk(chunk, counts, result)
    _maybe_finish_step(row.pk, enqueue=enqueue)
    return counted


def _add_counts(total: dict, counts: dict) -> dict:
    out = dict(total)
    for key, value in (counts or {}).items():
        out[key] = out.get(key, 0) + int(value)
    return out


def _record_chunk(chunk: RunChunk, counts: dict, result: list) -> bool:
    with transaction.atomic():
        won = RunChunk.objects.filter(pk=chunk.pk, done=False).update(done=True, counts=counts, result=result or [])
        if not won:
            return False
        row = RunStep.objects.select_for_update().get(pk=chunk.step_id)
        RunStep.objects.filter(pk=row.pk).update(done=F("done") + len(chunk.ids),
                                                 counts=_add_counts(row.counts, counts))
        _beat(row.run_id)
    return True


def _maybe_finish_step(step_id: int, *, enqueue: bool = True) -> bool:
    """Move a running step whose chunks are all done to "finishing" and queue its finish: one
    caller wins the conditional UPDATE."""
    if RunChunk.objects.filter(step_id=step_id, done=False).exists():
        return False
    with transaction.atomic():
        won = RunStep.objects.filter(pk=step_id, state=StepState.RUNNING).update(state=StepState.FINISHING)
        if won and enqueue:
            from .tasks import finish_step_task

            transaction.on_commit(lambda: finish_step_task.delay(step_id))
    return bool(won)


def finish_step(step_id: int, *, enqueue: bool = True) -> CurationRun:
    """`step.finish(run)` of a step in "finishing" (again, harmlessly, if a worker died during
    it), the step done, the next one planned."""
    row = RunStep.objects.select_related("run").get(pk=step_id)
    run = row.run
    if not run.is_active or row.state != StepState.FINISHING:
        return run
    _beat(run.pk)
    counts = registry.by_name()[row.name].finish(run) or {}
    with transaction.atomic():
        current = RunStep.objects.select_for_update().get(pk=step_id)
        won = RunStep.objects.filter(pk=step_id, state=StepState.FINISHING).update(
            state=StepState.DONE, finished_at=timezone.now(), counts=_add_counts(current.counts, counts))
        _beat(run.pk)
        if won and enqueue:
            _queue_advance(run.pk)
    if won and not enqueue:
        return advance(run.pk, enqueue=False)
    return CurationRun.objects.get(pk=run.pk)


# ---------------------------------------------------------------- failing, cancelling, resuming


def fail_run(run_id: int, error: str) -> None:
    """A task failed: the run stops with the error (chunks done stay done; it can be resumed)."""
    now = timezone.now()
    with transaction.atomic():
        CurationRun.objects.filter(pk=run_id, status__in=ACTIVE_RUN_STATUSES).update(
            status=RunStatus.FAILED, error=str(error)[:2000], finished_at=now)


def fail_unexpectedly(run_id: int | None, exc: BaseException) -> None:
    log.error("curation run %s: task failed", run_id, exc_info=exc)
    if run_id is None:
        return
    try:
        fail_run(run_id, f"{exc.__class__.__name__}: {exc}")
    except Exception:  # noqa: BLE001 - the database itself may be what failed: the page offers Resume
        log.exception("curation run %s: could not record the failure", run_id)


def cancel_run(run: CurationRun, user=None) -> CurationRun:
    """Stop a queued or running run: its tasks stop before their next chunk (one being processed
    finishes). It can be resumed."""
    who = getattr(user, "username", "") or "?"
    updated = CurationRun.objects.filter(pk=run.pk, status__in=ACTIVE_RUN_STATUSES).update(
        status=RunStatus.CANCELLED, error=str(_("Cancelled by %(user)s.") % {"user": who}), finished_at=timezone.now())
    run.refresh_from_db()
    if not updated:
        raise CurationError(_("Run %(id)s is %(status)s: only a queued or running run can be cancelled.")
                            % {"id": run.pk, "status": run.get_status_display().lower()})
    return run


def is_stalled(run: CurationRun) -> bool:
    if run.status not in ACTIVE_RUN_STATUSES:
        return False
    last = run.heartbeat_at or run.created_at
    return last < timezone.now() - timedelta(seconds=settings.CURATION["STALE_SECONDS"])


def can_resume(run: CurationRun) -> bool:
    return run.status in (RunStatus.FAILED, RunStatus.CANCELLED) or is_stalled(run)


def resume_run(run: CurationRun, *, enqueue: bool = True) -> CurationRun:
    """Go on with a failed, cancelled or stalled run where it stopped: the pending chunks of the
    running step are queued again, a step caught finishing finishes, then the steps after."""
    if not can_resume(run):
        raise CurationError(_("Run %(id)s is %(status)s and has shown a sign of life lately: nothing to resume.")
                            % {"id": run.pk, "status": run.get_status_display().lower()})
    with transaction.atomic():
        updated = CurationRun.objects.filter(pk=run.pk, status=run.status).update(
            status=RunStatus.RUNNING, error="", finished_at=None, heartbeat_at=timezone.now())
        if not updated:
            raise CurationError(_("Run %(id)s changed meanwhile: reload the page.") % {"id": run.pk})
        RunStep.objects.filter(run=run, state=StepState.FAILED).update(state=StepState.PENDING, reason="")
        row = run.run_steps.filter(state__in=[StepState.RUNNING, StepState.FINISHING]).order_by("position").first()
        if enqueue:
            if row is None:
                _queue_advance(run.pk)
            elif row.state == StepState.FINISHING:
                from .tasks import finish_step_task

                step_id = row.pk
                transaction.on_commit(lambda: finish_step_task.delay(step_id))
            elif RunChunk.objects.filter(step=row, done=False).exists():
                _queue_chunks(row.pk, registry.by_name()[row.name].queue)
            else:
                _maybe_finish_step(row.pk)
    run.refresh_from_db()
    return run


# ---------------------------------------------------------------- in one process (manage.py curate --here)


def run_here(run: CurationRun, progress: Progress | None = None) -> CurationRun:
    """Do every step of `run` in this process (no worker): the command's --here, and tests."""
    while True:
        run = advance(run.pk, enqueue=False)
        if not run.is_active:
            return run
        row = run.run_steps.filter(state__in=[StepState.RUNNING, StepState.FINISHING]).order_by("position").first()
        if row is None:
            continue
        for chunk_id in RunChunk.objects.filter(step=row, done=False).order_by("position").values_list("pk", flat=True):
            if not _active(run.pk):
                return CurationRun.objects.get(pk=run.pk)
            run_chunk(chunk_id, enqueue=False)
            if progress:
                progress(CurationRun.objects.get(pk=run.pk))
        _maybe_finish_step(row.pk, enqueue=False)
        run = finish_step(row.pk, enqueue=False)
        if progress:
            progress(run)
        if not run.is_active:
            return run


# ---------------------------------------------------------------- automatic runs


def run_after_import(import_job_id: int) -> CurationRun | None:
    """The photo steps over an import's new photos (settings.CURATION["RUN_AFTER_IMPORT"])."""
    from datasets.models import Image

    if not settings.CURATION["RUN_AFTER_IMPORT"] or not Image.objects.filter(import_job_id=import_job_id).exists():
        return None
    return start_run(None, list(registry.PHOTO_STEPS), trigger=RunTrigger.IMPORT,
                     options={"import_job": import_job_id})


def maybe_run_text(project_id: int) -> CurationRun | None:
    """A new-only text run of the project once CURATION["TEXT_RUN_EVERY_SETS"] comment sets were
    submitted since its last text run started (none while one is queued or running). Two
    indexed queries per submitted set."""
    every = settings.CURATION["TEXT_RUN_EVERY_SETS"]
    if not every:
        return None
    from labeling.models import Assignment, AssignmentStatus

    last = (RunStep.objects.filter(name="text", run__project_id=project_id).order_by("-run__created_at")
            .values_list("run__created_at", "run__status").first())
    if last is not None and last[1] in ACTIVE_RUN_STATUSES:
        return None
    sets = Assignment.objects.filter(project_id=project_id, status=AssignmentStatus.SUBMITTED)
    if last is not None:
        sets = sets.filter(submitted_at__gte=last[0])
    if sets.count() < every:
        return None
    from labeling.models import Project

    return start_run(Project.objects.get(pk=project_id), list(registry.TEXT_STEPS), new_only=True,
                     trigger=RunTrigger.COMMENTS)
