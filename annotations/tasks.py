"""Celery adapters for annotation services (ids in, one service call, retries owned here)."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task

from aicell.jobs import job_run
from annotations import services
from annotations.interchange.jobs import export_job_run, import_job_run
from annotations.models import ExportJob, ImportJob


@shared_task(
    name="annotations.verify_storage", acks_late=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=3
)
def verify_storage(field_ids: list[int] | None = None) -> dict[str, Any]:
    return services.fields_verify_storage(field_ids=field_ids).to_dict()


# Export and import jobs are not retried automatically: a failure is reported on the job for a person to read;
# a worker lost mid-job redelivers the message (acks_late) and `job_run` restarts the job from scratch.
@shared_task(bind=True, name="annotations.export_dataset", acks_late=True)
def export_dataset(self: Task, job_id: int) -> str:
    return job_run(ExportJob, job_id, export_job_run, task_id=self.request.id or "")


@shared_task(bind=True, name="annotations.import_dataset", acks_late=True)
def import_dataset(self: Task, job_id: int) -> str:
    return job_run(ImportJob, job_id, import_job_run, task_id=self.request.id or "")
