"""Celery adapters for pre-labelling; routed to the `gpu` queue (settings.CELERY_TASK_ROUTES)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from celery import shared_task
from django.db import InterfaceError, OperationalError
from kombu.exceptions import OperationalError as KombuOperationalError

from inference import services
from inference.runtime import PipelineUnavailable

# Transient failures worth another delivery: the database or broker blinked. Bad images fail their field only.
RETRY_ON = (OperationalError, InterfaceError, ConnectionError)


@shared_task(
    name="inference.prelabel_fields",
    acks_late=True,
    autoretry_for=RETRY_ON,
    retry_backoff=True,
    retry_backoff_max=300,
    max_retries=5,
)
def prelabel_fields(job_id: int, field_ids: list[int]) -> dict[str, Any]:
    """Pre-label a chunk of a job's fields (chunk size: the profile's prelabel_chunk, or AICELL_PRELABEL_CHUNK;
    1 gives one task per field). Returns the outcome counts and the chunk's timings (seconds, SQL queries)."""
    timings = services.PrelabelTimings()
    try:
        outcomes = services.prelabel_fields_run(field_ids=field_ids, job_id=job_id, timings=timings)
    except PipelineUnavailable as exc:
        services.prelabel_job_fail(job_id, str(exc))
        return {"failed": len(field_ids)}
    return {**Counter(outcome.status.value for outcome in outcomes), "timings": timings.as_dict()}


def enqueue_prelabel_job(job_id: int, field_ids: Sequence[int], chunk: int) -> None:
    """Send the job's chunks; when the broker cannot take them, the job fails at once (with the reason) instead of
    waiting "queued" forever. Chunks sent before the failure find the job finished and do nothing."""
    try:
        for start in range(0, len(field_ids), chunk):
            prelabel_fields.delay(job_id, list(field_ids[start : start + chunk]))
    except (KombuOperationalError, OSError) as exc:
        services.prelabel_job_fail(job_id, f"the task queue is unreachable ({exc}); ask again later")
