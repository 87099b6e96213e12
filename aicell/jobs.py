"""Services that move a job (any concrete `aicell.models.Job`) through its states.

Progress writes double as heartbeats: a running job whose heartbeat is older than the stale limit belongs to a
worker that died (killed, out of memory, host lost) and is marked failed instead of staying "running" forever.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from django.apps import apps
from django.db import transaction
from django.utils import timezone

from aicell.errors import DomainError, StateConflict
from aicell.models import FINISHED_STATUSES, Job, JobStatus

J = TypeVar("J", bound=Job)


class JobCancelled(Exception):
    """Raised inside a job's work loop when a cancel was requested; the runner marks the job cancelled."""


def job_mark_running(job_model: type[J], job_id: int, *, task_id: str = "") -> J | None:
    """Start (or, after a redelivery, restart) a job. None when the job is gone or already finished."""
    with transaction.atomic():
        job = job_model._default_manager.select_for_update().filter(pk=job_id).first()
        if job is None or job.is_finished:
            return None
        if job.cancel_requested:
            _finish(job, JobStatus.CANCELLED, message="cancelled before it started")
            return None
        now = timezone.now()
        job.status = JobStatus.RUNNING
        job.started_at = job.started_at or now
        job.heartbeat_at = now
        job.celery_task_id = task_id or job.celery_task_id
        job.save(update_fields=["status", "started_at", "heartbeat_at", "celery_task_id"])
    return job


def job_report_progress(job: Job, progress: float, message: str = "", **fields: Any) -> None:
    """Record progress (0-100) and a heartbeat; raise JobCancelled when someone asked the job to stop."""
    job.progress = max(0.0, min(100.0, float(progress)))
    job.message = message[:255]
    job.heartbeat_at = timezone.now()
    for name, value in fields.items():
        setattr(job, name, value)
    type(job)._default_manager.filter(pk=job.pk).update(
        progress=job.progress, message=job.message, heartbeat_at=job.heartbeat_at, **fields
    )
    if type(job)._default_manager.filter(pk=job.pk, cancel_requested=True).exists():
        raise JobCancelled(f"{type(job).__name__} {job.pk} was cancelled")


def _finish(job: Job, status: JobStatus, *, message: str = "", error: str = "", result: dict | None = None) -> None:
    job.status = status
    job.finished_at = timezone.now()
    job.heartbeat_at = job.finished_at
    if status == JobStatus.SUCCEEDED:
        job.progress = 100.0
    job.message = message[:255] or job.message
    job.error = error
    if result is not None:
        job.result = result
    job.save(update_fields=["status", "finished_at", "heartbeat_at", "progress", "message", "error", "result"])


def job_succeed(job: Job, *, result: dict | None = None, message: str = "done") -> None:
    _finish(job, JobStatus.SUCCEEDED, message=message, result=result)


def job_fail(job: Job, error: str, *, result: dict | None = None) -> None:
    _finish(job, JobStatus.FAILED, message="failed", error=error, result=result)


def job_cancelled(job: Job) -> None:
    _finish(job, JobStatus.CANCELLED, message="cancelled")


def job_request_cancel(job_model: type[J], job_id: int) -> J:
    """A queued job is cancelled at once; a running one is asked to stop at its next progress report."""
    with transaction.atomic():
        job = job_model._default_manager.select_for_update().get(pk=job_id)
        if job.is_finished:
            raise StateConflict(f"The job already ended ({job.status}); there is nothing to cancel.")
        job.cancel_requested = True
        job.save(update_fields=["cancel_requested"])
        if job.status == JobStatus.QUEUED:
            job_cancelled(job)
    return job


def job_run(job_model: type[J], job_id: int, work: Callable[[J], dict[str, Any]], *, task_id: str = "") -> str:
    """Run a job's work the same way for every Celery task: mark it running; then succeeded with the work's result,
    cancelled when it raised JobCancelled, or failed: with the error's response body as result for a domain error
    (bad input, found only now), with the exception re-raised for Celery to log for anything else.
    Returns the job's final status ("skipped" when it was gone, finished or cancelled before it started)."""
    job = job_mark_running(job_model, job_id, task_id=task_id)
    if job is None:
        return "skipped"
    try:
        result = work(job)
    except JobCancelled:
        job_cancelled(job)
        return JobStatus.CANCELLED
    except DomainError as exc:
        job_fail(job, exc.message, result=exc.to_dict())
        return JobStatus.FAILED
    except Exception as exc:
        job_fail(job, f"{type(exc).__name__}: {exc}")
        raise
    job_succeed(job, result=result)
    return JobStatus.SUCCEEDED


def job_models() -> list[type[Job]]:
    return [model for model in apps.get_models() if issubclass(model, Job)]


def jobs_fail_stale(stale_after: timedelta) -> dict[str, list[int]]:
    """Mark failed every running job whose worker stopped sending heartbeats."""
    cutoff = timezone.now() - stale_after
    failed: dict[str, list[int]] = {}
    for model in job_models():
        stale = model._default_manager.filter(status=JobStatus.RUNNING, heartbeat_at__lt=cutoff)
        for job in stale:
            job_fail(job, f"the worker stopped responding (no heartbeat since {job.heartbeat_at:%Y-%m-%d %H:%M:%S})")
            failed.setdefault(model._meta.label, []).append(job.pk)
    return failed


__all__ = [
    "FINISHED_STATUSES",
    "JobCancelled",
    "job_fail",
    "job_mark_running",
    "job_report_progress",
    "job_request_cancel",
    "job_run",
    "job_succeed",
    "jobs_fail_stale",
]
