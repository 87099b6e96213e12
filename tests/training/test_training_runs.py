"""Real (tiny) training runs through the platform: the `train` command in-process, the promotion gate evaluating
the active version on the same snapshot, `evaluate --json`, and a real worker that starts a job and is cancelled.

Everything uses the tiny test profile on 96 px synthetic fields, one epoch, so each run takes seconds on a CPU.
"""

from __future__ import annotations

import json
import time
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from aicell.jobs import job_request_cancel
from aicell.models import JobStatus
from inference.models import PrelabelJob, PrelabelTrigger
from tests.factories import FieldFactory
from tests.training.platform_data import synthetic_truth
from training.jobs import training_job_create
from training.models import ModelStatus, ModelVersion, TrainingJob

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def run_command(*args: str) -> dict[str, Any]:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    result: dict[str, Any] = json.loads(out.getvalue().strip().splitlines()[-1])
    return result


def test_train_all_stages_in_process_then_gate_against_the_active_version(
    training_env: Path, django_capture_on_commit_callbacks: Any
) -> None:
    synthetic_truth(patients=12)
    new_field = FieldFactory(width=96, height=96)
    with django_capture_on_commit_callbacks(execute=True):
        report = run_command("train", "--stage", "all", "--profile", "test-tiny", "--epochs", "1", "--wait", "--json")
    assert report["status"] == "succeeded", report["error"]
    job = TrainingJob.objects.get(pk=report["training_job"])
    assert job.progress == 100.0
    assert set(job.timings) >= {"snapshot", "detector", "countability", "classifier", "classifier_gate"}
    assert "classifier: v" in job.log
    assert job.current_stage == "classifier"
    assert job.epoch == 1
    versions = {version.stage: version for version in job.model_versions.all()}
    assert set(versions) == {"detector", "countability", "classifier"}
    for version in versions.values():
        assert version.status == ModelStatus.ACTIVE, "nothing was active: the gate promotes"
        assert "no active version" in version.status_reason
        assert version.dataset_snapshot == job.dataset_snapshot
        assert version.parent is None
        for relative in version.checkpoints:
            assert not Path(relative).is_absolute()
            assert (Path(settings.AICELL_MODEL_DIR) / relative).is_file()
        for plot in version.plots:
            assert (Path(settings.AICELL_MODEL_DIR) / plot["path"]).read_bytes().startswith(b"\x89PNG")
        assert version.history
        assert version.metrics["split"] == "test"
    assert len(versions["classifier"].checkpoints) == 2, "one per ensemble member of the test profile"
    assert {"ap50", "ap50_95"} <= set(versions["detector"].metrics)
    assert {"accuracy", "macro_f1", "per_class", "confusion_matrix", "ece"} <= set(versions["classifier"].metrics)
    # The promotion completed the pipeline: fields without truth are pre-labelled again, queued.
    prelabel = PrelabelJob.objects.get(trigger=PrelabelTrigger.PROMOTION)
    assert list(prelabel.items.values_list("field_id", flat=True)) == [new_field.pk]

    # evaluate --json: the registry's metrics, recomputed from the checkpoints on the version's snapshot.
    evaluated = run_command("evaluate", "--model-version", str(versions["classifier"].pk), "--split", "test", "--json")
    assert evaluated["model_version"] == versions["classifier"].pk
    assert evaluated["split"] == "test"
    assert evaluated["dataset_snapshot"] == job.dataset_snapshot_id
    assert evaluated["fields"] == 2
    assert evaluated["metrics"]["accuracy"] == pytest.approx(versions["classifier"].metrics["accuracy"])

    # A second run of one stage: the gate really evaluates the active version on the same snapshot's test split.
    active = versions["countability"]
    evaluated = run_command("evaluate", "--model-version", str(active.pk), "--json")
    second = run_command(
        "train", "--stage", "countability", "--profile", "test-tiny", "--epochs", "1", "--seed", "3", "--wait", "--json"
    )
    assert second["status"] == "succeeded", second["error"]
    candidate = ModelVersion.objects.get(pk=second["model_versions"][0]["id"])
    assert candidate.parent == active
    assert candidate.gate["active_version"] == active.pk
    assert candidate.gate["split"] == "test"
    assert candidate.gate["active_metrics"]["accuracy"] == pytest.approx(evaluated["metrics"]["accuracy"])
    assert candidate.gate["decision"]["reason"] in candidate.status_reason
    assert ModelVersion.objects.filter(stage="countability", status=ModelStatus.ACTIVE).count() == 1


def test_train_nproc_trains_data_parallel_and_registers_one_version(
    training_env: Path, django_capture_on_commit_callbacks: Any
) -> None:
    synthetic_truth(patients=12)
    with pytest.raises(CommandError, match="nproc"):
        run_command("train", "--stage", "countability", "--nproc", "0", "--wait", "--json")
    with django_capture_on_commit_callbacks(execute=True):
        report = run_command("train", "--stage", "countability", "--epochs", "2", "--nproc", "2", "--wait", "--json")
    assert report["status"] == "succeeded", report["error"]
    job = TrainingJob.objects.get(pk=report["training_job"])
    assert job.parameters["nproc"] == 2
    assert "countability: epoch 2/2 done" in job.log, "rank 0's progress reached the job"
    version = job.model_versions.get()  # one version, registered here from rank 0's result
    assert [row["epoch"] for row in version.history] == [1, 2]
    assert (Path(settings.AICELL_MODEL_DIR) / version.checkpoints[0]).is_file()
    written = (Path(settings.AICELL_MODEL_DIR) / "training" / f"job-{job.pk}").rglob("*.pt")
    assert sorted(path.name for path in written) == ["best.pt", "last.pt"]


def test_a_training_job_with_nothing_to_learn_fails_with_the_reason(training_env: Path) -> None:
    with pytest.raises(CommandError, match="detector"):
        run_command("train", "--stage", "detector", "--profile", "test-tiny", "--epochs", "1", "--wait", "--json")
    job = TrainingJob.objects.get()
    assert job.status == JobStatus.FAILED
    assert job.error.startswith("detector:")
    assert job.result["errors"][0]["field"] == "dataset_snapshot"


def test_evaluate_refuses_what_it_cannot_evaluate(training_env: Path) -> None:
    with pytest.raises(CommandError, match="does not exist"):
        call_command("evaluate", "--model-version", "999", "--json")
    bare = ModelVersion.objects.create(stage="detector", profile="test-tiny", architecture="x", checkpoints=["x.pt"])
    with pytest.raises(CommandError, match="no dataset snapshot"):
        call_command("evaluate", "--model-version", str(bare.pk), "--json")


def _wait(job: TrainingJob, until: Any, timeout: float = 180) -> TrainingJob:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if until(job):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job.pk} is still {job.status} ({job.message}) after {timeout} s")


# The module's plain django_db mark would hide committed_db's serialized rollback from the database setup
# (pytest-django reads the closest mark), so the seeded rows would not come back after this test's flush.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_real_worker_runs_the_job_and_a_cancel_stops_it(training_env: Path, celery_worker_thread: Any) -> None:
    synthetic_truth(patients=12)
    # Many epochs, so that the job is still training when the cancel arrives.
    job = training_job_create(stages="detector", profile="test-tiny", epochs=200)
    running = _wait(job, lambda j: j.status == JobStatus.RUNNING and j.epoch is not None)
    assert running.current_stage == "detector"
    assert running.celery_task_id
    job_request_cancel(TrainingJob, job.pk)
    cancelled = _wait(job, lambda j: j.is_finished)
    assert cancelled.status == JobStatus.CANCELLED
    assert cancelled.epoch is not None
    assert cancelled.epoch < 200
    assert not cancelled.model_versions.exists()
    # The lane is free again.
    assert training_job_create(stages="detector", profile="test-tiny", enqueue=False).status == JobStatus.QUEUED
