"""The demo's workers, as `make demo` starts them (one process per queue, rundemo.worker_argv), on the test database
and the configured broker: health lists each queue with its own consumer, and an export finishes while a training
run occupies the `gpu` worker (with one worker for both queues it would wait for the whole run)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.db import connection
from rest_framework.test import APIClient

from aicell.celery import app
from aicell.jobs import job_request_cancel
from aicell.management.commands.rundemo import DEMO_QUEUES, worker_argv
from aicell.models import JobStatus
from tests.models_on_disk import TEST_PROFILE, write_profiles_file
from tests.reliability.stack import Process, wait_until
from tests.training.platform_data import synthetic_truth
from training.jobs import training_job_create
from training.models import TrainingJob

pytestmark = [pytest.mark.worker, pytest.mark.services, pytest.mark.slow]


def worker_database_url() -> str:
    """The test database as DATABASE_URL, for worker processes (on SQLite a file: see settings.DATABASES)."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        assert not connection.is_in_memory_db(), "worker processes cannot share an in-memory database"
        return f"sqlite:///{db['NAME']}"
    user, password = quote(db.get("USER") or "", safe=""), quote(db.get("PASSWORD") or "", safe="")
    credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    return f"postgres://{credentials}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


@pytest.fixture
def demo_workers(committed_db: None, settings: Any, tmp_path: Path) -> Iterator[dict[str, Process]]:
    """The demo's worker processes, sharing this test's database, media, models and profiles."""
    settings.AICELL_MODEL_DIR = tmp_path / "models"
    settings.AICELL_DATASET_DIR = tmp_path / "datasets"
    settings.AICELL_PROFILES_FILE = write_profiles_file(tmp_path)
    settings.AICELL_PROFILE = TEST_PROFILE
    settings.AICELL_DEVICE = "cpu"
    env = {
        **os.environ,
        "DJANGO_ENV": "test",
        "DJANGO_SECRET_KEY": settings.SECRET_KEY,
        "AICELL_VAR_DIR": str(settings.VAR_DIR),
        "DATABASE_URL": worker_database_url(),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "AICELL_MODEL_DIR": str(settings.AICELL_MODEL_DIR),
        "AICELL_DATASET_DIR": str(settings.AICELL_DATASET_DIR),
        "AICELL_PROFILES_FILE": str(settings.AICELL_PROFILES_FILE),
        "AICELL_PROFILE": TEST_PROFILE,
        "AICELL_DEVICE": "cpu",
        "AICELL_AUTO_PRELABEL": "false",
        "OMP_NUM_THREADS": "1",
        "PYTHONUNBUFFERED": "1",
    }
    app.control.purge()  # nothing an earlier, interrupted run left may run against this test's database
    workers = {
        queue: Process(f"{queue}-worker", [*worker_argv(queue), "-l", "info"], env, tmp_path) for queue in DEMO_QUEUES
    }
    try:
        for worker in workers.values():
            worker.start()
        yield workers
    finally:
        for worker in workers.values():
            worker.stop(timeout=30)


def _poll(read: Callable[[], Any], until: Callable[[Any], bool], timeout: float, what: str) -> Any:
    """`read()` once `until` holds for it."""

    def ready() -> Any:
        value = read()
        return value if until(value) else None

    return wait_until(ready, timeout, what, interval=0.5)


def test_each_queue_has_its_own_worker_and_an_export_never_waits_behind_training(
    demo_workers: dict[str, Process], client_for: Any, researcher: Any
) -> None:
    def health() -> dict[str, Any]:
        for name, worker in demo_workers.items():
            assert worker.alive(), f"the {name} worker exited:\n{worker.log_tail()}"
        return APIClient().get("/api/v1/health").json()

    report = _poll(health, lambda r: r["workers"]["ok"], 180, "both demo workers to answer the health check")
    consumers = report["workers"]["consumers"]
    assert set(consumers) == set(DEMO_QUEUES)
    assert [name.split("@")[0] for name in consumers["default"]] == ["default"]
    assert [name.split("@")[0] for name in consumers["gpu"]] == ["gpu"]
    assert report["status"] == "ok"

    synthetic_truth(patients=12)
    # Many epochs: the run occupies the gpu worker for far longer than the export takes.
    training = training_job_create(stages="detector", profile=TEST_PROFILE, epochs=500)
    _poll(
        lambda: TrainingJob.objects.get(pk=training.pk),
        lambda job: job.status == JobStatus.RUNNING and job.epoch is not None,
        240,
        "the gpu worker to be training",
    )

    client = client_for(researcher)
    export = client.post("/api/v1/exports", {}, format="json").json()
    done = _poll(
        lambda: client.get(f"/api/v1/exports/{export['id']}").json(),
        lambda state: state["status"] not in ("queued", "running"),
        120,
        "the export to finish on the default worker",
    )
    assert done["status"] == "succeeded", (done, demo_workers["default"].log_tail())
    training.refresh_from_db()
    assert training.status == JobStatus.RUNNING, "the export finished while the training was still running"

    job_request_cancel(TrainingJob, training.pk)
    stopped = _poll(lambda: TrainingJob.objects.get(pk=training.pk), lambda job: job.is_finished, 180, "the cancel")
    assert stopped.status == JobStatus.CANCELLED
