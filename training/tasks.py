"""Celery adapters: a training job runs on the `gpu` queue; the schedule's check is light and runs anywhere."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from training import jobs, pretraining, schedule

GPU_QUEUE = "gpu"


@shared_task(name="training.run_training_job", bind=True, acks_late=True, queue=GPU_QUEUE)
def run_training_job(self: Any, job_id: int) -> str:
    """Train the job's stages. acks_late: a worker that dies mid-run leaves the message to be delivered again
    (training resumes from the last epoch checkpoint); a job whose worker went silent is failed by the reaper."""
    return str(jobs.training_job_run(job_id, task_id=self.request.id or ""))


def enqueue_training_job(job_id: int) -> None:
    run_training_job.apply_async(args=[job_id], queue=GPU_QUEUE)


@shared_task(name="training.retrain_check")
def retrain_check(policy_id: int) -> int | None:
    """The retraining schedule's periodic check (django-celery-beat); returns the id of a started job."""
    job = schedule.retrain_policy_check(policy_id)
    return job.pk if job is not None else None


@shared_task(name="training.run_pretraining_job", bind=True, acks_late=True, queue=GPU_QUEUE)
def run_pretraining_job(self: Any, job_id: int) -> str:
    """Pretrain a stage's networks and register them as starting points (see training.pretraining)."""
    return str(pretraining.pretraining_job_run(job_id, task_id=self.request.id or ""))


def enqueue_pretraining_job(job_id: int) -> None:
    run_pretraining_job.apply_async(args=[job_id], queue=GPU_QUEUE)
