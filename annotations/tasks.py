"""Celery adapters for annotation services (ids in, one service call, retries owned here)."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from annotations import services


@shared_task(
    name="annotations.verify_storage", acks_late=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=3
)
def verify_storage(field_ids: list[int] | None = None) -> dict[str, Any]:
    return services.fields_verify_storage(field_ids=field_ids).to_dict()
