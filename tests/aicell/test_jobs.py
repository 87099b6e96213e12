"""The job state machine of aicell.jobs, walked with the export job: queued -> running -> succeeded / failed /
cancelled, cancels of queued and running jobs, the runner shared by the tasks, and the stale-job reaper."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from aicell.errors import StateConflict, ValidationFailed
from aicell.jobs import (
    JobCancelled,
    job_fail,
    job_mark_running,
    job_report_progress,
    job_request_cancel,
    job_run,
    job_succeed,
    jobs_fail_stale,
)
from aicell.models import JobStatus
from annotations.models import ExportJob

pytestmark = pytest.mark.django_db


def fresh(job: ExportJob) -> ExportJob:
    return ExportJob.objects.get(pk=job.pk)


def test_a_job_runs_reports_progress_and_succeeds() -> None:
    job = ExportJob.objects.create()
    assert (job.status, job.progress, job.started_at) == (JobStatus.QUEUED, 0.0, None)
    running = job_mark_running(ExportJob, job.pk, task_id="task-1")
    assert running is not None
    stored = fresh(job)
    assert (stored.status, stored.celery_task_id) == (JobStatus.RUNNING, "task-1")
    assert stored.started_at is not None
    assert stored.heartbeat_at is not None
    job_report_progress(running, 140, "past the end")
    assert (fresh(job).progress, fresh(job).message) == (100.0, "past the end")  # clamped to 0..100
    job_report_progress(running, -5, "before the start")
    assert fresh(job).progress == 0.0
    job_succeed(running, result={"images": 3})
    done = fresh(job)
    assert (done.status, done.progress, done.result, done.is_finished) == (
        JobStatus.SUCCEEDED,
        100.0,
        {"images": 3},
        True,
    )
    assert done.finished_at is not None
    assert job_mark_running(ExportJob, job.pk) is None  # a finished job never runs again


def test_a_failed_job_keeps_its_error_and_result() -> None:
    job = job_mark_running(ExportJob, ExportJob.objects.create().pk)
    assert job is not None
    job_fail(job, "the disk is full", result={"errors": [1]})
    stored = fresh(job)
    assert (stored.status, stored.error, stored.result, stored.message) == (
        JobStatus.FAILED,
        "the disk is full",
        {"errors": [1]},
        "failed",
    )


def test_cancelling_a_queued_job_ends_it_at_once() -> None:
    job = ExportJob.objects.create()
    job_request_cancel(ExportJob, job.pk)
    assert (fresh(job).status, fresh(job).cancel_requested) == (JobStatus.CANCELLED, True)
    assert job_mark_running(ExportJob, job.pk) is None
    with pytest.raises(StateConflict, match="already ended"):
        job_request_cancel(ExportJob, job.pk)


def test_a_cancel_requested_before_the_worker_starts_is_honoured_when_it_starts() -> None:
    job = ExportJob.objects.create()
    ExportJob.objects.filter(pk=job.pk).update(cancel_requested=True)  # e.g. asked while the message was in flight
    assert job_mark_running(ExportJob, job.pk) is None
    assert fresh(job).status == JobStatus.CANCELLED


def test_cancelling_a_running_job_stops_it_at_its_next_progress_report() -> None:
    job = job_mark_running(ExportJob, ExportJob.objects.create().pk)
    assert job is not None
    job_request_cancel(ExportJob, job.pk)
    assert fresh(job).status == JobStatus.RUNNING  # it keeps running until it reports
    with pytest.raises(JobCancelled):
        job_report_progress(job, 50, "half way")


def test_the_runner_maps_every_outcome_to_a_state() -> None:
    def succeed(job: Any) -> dict[str, Any]:
        job_report_progress(job, 50, "working")
        return {"ok": True}

    def refuse(job: Any) -> dict[str, Any]:
        raise ValidationFailed("Nothing to export.", field="sources")

    def cancel_midway(job: Any) -> dict[str, Any]:
        job_request_cancel(ExportJob, job.pk)
        job_report_progress(job, 10, "working")
        return {}

    def crash(job: Any) -> dict[str, Any]:
        raise OSError("storage unreachable")

    outcomes = {}
    for work in (succeed, refuse, cancel_midway):
        job = ExportJob.objects.create()
        outcomes[work.__name__] = (job_run(ExportJob, job.pk, work), fresh(job))
    assert outcomes["succeed"][0] == JobStatus.SUCCEEDED
    assert outcomes["succeed"][1].result == {"ok": True}
    refused = outcomes["refuse"][1]
    assert (refused.status, refused.error) == (JobStatus.FAILED, "Nothing to export.")
    assert refused.result["errors"] == [{"field": "sources", "reason": "Nothing to export."}]
    assert outcomes["cancel_midway"][1].status == JobStatus.CANCELLED
    crashed = ExportJob.objects.create()
    with pytest.raises(OSError, match="unreachable"):
        job_run(ExportJob, crashed.pk, crash)
    assert (fresh(crashed).status, fresh(crashed).error) == (JobStatus.FAILED, "OSError: storage unreachable")
    assert job_run(ExportJob, 10**9, succeed) == "skipped"


def test_the_reaper_fails_running_jobs_whose_worker_went_silent() -> None:
    silent, alive, queued = (ExportJob.objects.create() for _ in range(3))
    for job in (silent, alive):
        job_mark_running(ExportJob, job.pk)
    ExportJob.objects.filter(pk=silent.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=11))
    ExportJob.objects.filter(pk=alive.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=9))
    assert jobs_fail_stale(timedelta(minutes=10)) == {"annotations.ExportJob": [silent.pk]}
    assert fresh(silent).status == JobStatus.FAILED
    assert "stopped responding" in fresh(silent).error
    assert (fresh(alive).status, fresh(queued).status) == (JobStatus.RUNNING, JobStatus.QUEUED)
    assert jobs_fail_stale(timedelta(minutes=10)) == {}
