"""A real Celery worker (Redis in CI, the file-system broker otherwise) runs real tasks; health sees it."""

import time
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from annotations.models import AuditEvent
from annotations.tasks import verify_storage
from tests.factories import FieldFactory

pytestmark = [pytest.mark.worker, pytest.mark.services]


def test_a_real_worker_verifies_stored_originals(celery_worker_thread: Any) -> None:
    intact, damaged = FieldFactory(), FieldFactory()
    assert verify_storage.delay([intact.pk, damaged.pk]).get(timeout=60) == {
        "checked": 2,
        "missing": [],
        "altered": [],
    }
    Path(damaged.image.path).write_bytes(b"overwritten by a faulty disk")
    result = verify_storage.delay([intact.pk, damaged.pk]).get(timeout=60)
    assert result == {"checked": 2, "missing": [], "altered": [damaged.pk]}
    fault = AuditEvent.objects.get(action="field.storage_fault")
    assert (fault.field_id, fault.after) == (damaged.pk, {"fault": "altered"})


def _health_once_workers_answer() -> tuple[int, dict[str, Any]]:
    # A worker answers broadcasts once its control consumer is up, a moment after it accepts tasks; on a loaded
    # machine a single one-second ping can miss it.
    deadline = time.monotonic() + 20
    while True:
        response = APIClient().get("/api/v1/health")
        report = response.json()
        if report["workers"]["workers"] or time.monotonic() > deadline:
            return response.status_code, report


def test_health_reports_database_broker_and_the_queues_workers_serve(celery_worker_thread: Any) -> None:
    status, report = _health_once_workers_answer()
    assert status == 200
    assert report["database"]["ok"] is True
    assert report["broker"]["ok"] is True
    assert report["workers"]["ok"] is True
    assert {"default", "gpu"} <= set(report["workers"]["queues_served"])
    (name,) = [worker["name"] for worker in report["workers"]["workers"]]
    assert report["workers"]["consumers"] == {"default": [name], "gpu": [name]}
    assert report["workers"]["unserved_queues"] == []
    assert report["status"] == "ok"


def test_health_names_a_queue_no_worker_consumes(committed_db: None) -> None:
    from celery.contrib.testing.worker import start_worker

    from aicell.celery import app

    app.control.purge()
    with start_worker(app, pool="solo", concurrency=1, queues=["default"], perform_ping_check=False):
        status, report = _health_once_workers_answer()
    assert status == 200
    (name,) = [worker["name"] for worker in report["workers"]["workers"]]
    assert report["workers"]["consumers"] == {"default": [name], "gpu": []}
    assert report["workers"]["unserved_queues"] == ["gpu"]
    assert report["workers"]["ok"] is False
    assert report["status"] == "degraded", "pre-labels and training would wait for ever"


def test_health_without_a_worker_is_degraded_not_failed(committed_db: None) -> None:
    from aicell.celery import app

    if app.control.inspect(timeout=0.5).ping():
        pytest.skip("a worker outside this test answers on the same broker")
    report = APIClient().get("/api/v1/health").json()
    assert report["workers"]["ok"] is False
    assert report["status"] == "degraded"
