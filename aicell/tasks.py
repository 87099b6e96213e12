"""Platform-wide periodic tasks."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.conf import settings

from aicell.jobs import jobs_fail_stale


@shared_task(name="aicell.fail_stale_jobs")
def fail_stale_jobs() -> dict[str, list[int]]:
    return jobs_fail_stale(timedelta(seconds=settings.AICELL_JOB_STALE_AFTER))
