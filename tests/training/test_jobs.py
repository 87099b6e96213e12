"""Training jobs without training: creation and validation, one open job at a time (service and database), the
retraining schedule never double-starts, and a job whose worker died is failed by the reaper."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from aicell.celery import app
from aicell.errors import StateConflict, ValidationFailed
from aicell.jobs import job_request_cancel, job_succeed, jobs_fail_stale
from aicell.models import JobStatus
from aicell.roles import Role
from annotations.models import Cell
from tests.factories import AnnotationSetFactory
from tests.training.platform_data import truth_field
from training import jobs, schedule
from training.datasets import dataset_snapshot_create
from training.jobs import training_job_create
from training.models import RetrainPolicy, TrainingJob, TriggeredBy
from training.schedule import retrain_policy_check, retrain_policy_ensure_task

pytestmark = pytest.mark.django_db


def test_a_job_is_created_queued_and_enqueued_after_commit(
    training_env: Path, make_user: Any, django_capture_on_commit_callbacks: Any
) -> None:
    admin = make_user(Role.ADMIN)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job = training_job_create(stages="classifier", epochs=2, seed=7, promote="never", actor=admin)
    assert len(callbacks) == 1, "the task is sent only once the job is committed"
    assert job.status == JobStatus.QUEUED
    assert job.stages == ["classifier"]
    assert job.profile == "test-tiny"
    assert job.parameters == {"epochs": 2, "seed": 7, "promote": "never", "overrides": {}}
    assert job.triggered_by == TriggeredBy.USER
    assert job.created_by == admin


def test_stages_come_in_training_order_and_all_means_three(training_env: Path) -> None:
    assert jobs.stages_parse("all") == ["detector", "countability", "classifier"]
    assert jobs.stages_parse(["classifier", "detector"]) == ["detector", "classifier"]
    with pytest.raises(ValidationFailed):
        jobs.stages_parse(["detector", "segmenter"])


def test_bad_parameters_are_refused_with_every_field_named(training_env: Path) -> None:
    with pytest.raises(ValidationFailed) as refused:
        training_job_create(
            profile="huge",
            epochs=0,
            promote="maybe",
            overrides={"lr": -1, "momentum": 0.9, "batch_size": "8"},
            nproc=0,
        )
    fields = {error.field for error in refused.value.errors}
    assert fields == {
        "profile",
        "epochs",
        "promote",
        "overrides.lr",
        "overrides.momentum",
        "overrides.batch_size",
        "nproc",
    }
    assert not TrainingJob.objects.exists()


def test_only_one_training_job_is_open_at_a_time(training_env: Path) -> None:
    first = training_job_create(stages="detector", enqueue=False)
    with pytest.raises(StateConflict) as refused:
        training_job_create(stages="classifier", enqueue=False)
    assert refused.value.details == {"training_job": first.pk}
    job_request_cancel(TrainingJob, first.pk)  # queued: cancelled at once, the lane is free again
    assert training_job_create(stages="classifier", enqueue=False).status == JobStatus.QUEUED


def test_the_database_refuses_a_second_open_training_job() -> None:
    TrainingJob.objects.create(stages=["detector"], profile="cpu", status=JobStatus.RUNNING)
    TrainingJob.objects.create(stages=["detector"], profile="cpu", status=JobStatus.SUCCEEDED)
    TrainingJob.objects.create(stages=["detector"], profile="cpu", status=JobStatus.FAILED)
    with pytest.raises(IntegrityError), transaction.atomic():
        TrainingJob.objects.create(stages=["classifier"], profile="cpu", status=JobStatus.QUEUED)


def test_a_race_past_the_check_is_stopped_by_the_constraint(
    training_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    training_job_create(stages="detector", enqueue=False)
    # Two requests at the same moment: both passed the "is one open?" check before either committed.
    monkeypatch.setattr(jobs, "open_training_job", lambda: None)
    with pytest.raises(StateConflict):
        training_job_create(stages="classifier", enqueue=False)
    assert TrainingJob.objects.count() == 1


def test_a_job_whose_worker_died_is_marked_failed_by_the_reaper(training_env: Path) -> None:
    job = training_job_create(stages="detector", enqueue=False)
    silent = timezone.now() - timedelta(minutes=30)
    TrainingJob.objects.filter(pk=job.pk).update(status=JobStatus.RUNNING, started_at=silent, heartbeat_at=silent)
    alive = TrainingJob.objects.create(stages=["detector"], profile="cpu", status=JobStatus.SUCCEEDED)
    assert jobs_fail_stale(timedelta(minutes=10)) == {"training.TrainingJob": [job.pk]}
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert "stopped responding" in job.error
    alive.refresh_from_db()
    assert alive.status == JobStatus.SUCCEEDED
    # The failed job no longer blocks the lane.
    assert training_job_create(stages="detector", enqueue=False).status == JobStatus.QUEUED


# --- the schedule -------------------------------------------------------------------------------------------------


@pytest.fixture
def policy(training_env: Path) -> RetrainPolicy:
    made = RetrainPolicy.objects.get(name="nightly")  # seeded by the migration
    made.min_new_cells = 4
    made.save()
    return made


def cells(count: int, patient: str = "S1") -> None:
    truth_field(patient, [(1 + 10 * (i % 9), 1 + 10 * (i // 9), 8, 8, 12, True) for i in range(count)])


def test_the_migration_seeds_a_nightly_periodic_task_for_the_policy() -> None:
    policy = RetrainPolicy.objects.get(name="nightly")
    task = PeriodicTask.objects.get(pk=policy.periodic_task_id)
    assert task.task == "training.retrain_check"
    assert task.task in app.tasks, "beat would send a task no worker knows"
    assert json.loads(task.kwargs) == {"policy_id": policy.pk}
    assert task.enabled
    assert task.crontab is not None
    assert (task.crontab.minute, task.crontab.hour, task.crontab.day_of_week) == ("0", "2", "*")
    assert retrain_policy_ensure_task(policy) == task, "idempotent"


def test_the_schedule_starts_a_run_only_with_enough_new_truth_cells(
    policy: RetrainPolicy, django_capture_on_commit_callbacks: Any
) -> None:
    cells(3)
    assert retrain_policy_check(policy.pk) is None
    policy.refresh_from_db()
    assert policy.last_check.startswith("3 new truth cells since the last run (< 4)")
    cells(1, "S2")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job = retrain_policy_check(policy.pk)
    assert job is not None
    assert len(callbacks) == 1
    assert job.triggered_by == TriggeredBy.SCHEDULE
    assert job.schedule == policy
    assert job.stages == ["detector", "countability", "classifier"]
    policy.refresh_from_db()
    assert policy.last_job == job
    assert "started training job" in policy.last_check


def test_the_schedule_never_starts_a_second_run_while_one_is_queued_or_running(policy: RetrainPolicy) -> None:
    cells(10)
    first = retrain_policy_check(policy.pk)
    assert first is not None
    assert retrain_policy_check(policy.pk) is None
    TrainingJob.objects.filter(pk=first.pk).update(status=JobStatus.RUNNING)
    cells(10, "S2")
    assert retrain_policy_check(policy.pk) is None
    policy.refresh_from_db()
    assert policy.last_check == f"training job {first.pk} is running; not starting another"
    assert TrainingJob.objects.count() == 1


def test_the_schedule_loses_a_race_to_the_constraint_without_a_second_job(
    policy: RetrainPolicy, monkeypatch: pytest.MonkeyPatch
) -> None:
    cells(10)
    training_job_create(stages="detector", enqueue=False)
    # As if both checks (the schedule's, then the job service's) ran before the other job committed.
    monkeypatch.setattr(schedule, "open_training_job", lambda: None)
    monkeypatch.setattr(jobs, "open_training_job", lambda: None)
    assert retrain_policy_check(policy.pk) is None
    policy.refresh_from_db()
    assert "only one runs at a time" in policy.last_check
    assert TrainingJob.objects.count() == 1


def test_new_cells_are_counted_since_the_last_successful_run(policy: RetrainPolicy) -> None:
    cells(6)
    job = retrain_policy_check(policy.pk)
    assert job is not None
    job.dataset_snapshot = dataset_snapshot_create()
    job.save()
    job_succeed(job)
    assert schedule.new_truth_cells_since(schedule.last_run_reference()) == 0
    assert retrain_policy_check(policy.pk) is None
    cells(4, "S2")
    assert schedule.new_truth_cells_since(schedule.last_run_reference()) == 4
    # Cells of annotators' sets never count; only truth does.
    annotator_set = AnnotationSetFactory(status="submitted")
    Cell.objects.create(annotation_set=annotator_set, x=5, y=5, width=5, height=5)
    assert schedule.new_truth_cells_since(schedule.last_run_reference()) == 4
    assert retrain_policy_check(policy.pk) is not None


def test_the_service_and_the_runner_read_one_overrides_schema(training_env: Path) -> None:
    # warmup_epochs once drifted (a whole number for the service, a float for the runner) while the schema was
    # written twice; now a value the service accepts is the value the runner trains with.
    from training.core.config import TrainConfig, resolve_settings

    job = training_job_create(overrides={"warmup_epochs": 0.5, "augment": False}, enqueue=False)
    config = TrainConfig(stage="detector", profile="cpu", device="cpu", overrides=job.parameters["overrides"])
    settings = resolve_settings(config)
    assert (settings.warmup_epochs, settings.augment) == (0.5, False)


def test_overrides_of_zero_and_booleans_are_checked_by_kind(training_env: Path) -> None:
    with pytest.raises(ValidationFailed) as refused:
        training_job_create(overrides={"lr": 0, "augment": 1, "optimizer": "lbfgs"}, enqueue=False)
    assert {error.field for error in refused.value.errors} == {
        "overrides.lr",
        "overrides.augment",
        "overrides.optimizer",
    }
    job = training_job_create(overrides={"weight_decay": 0, "augment": False, "members": [0]}, enqueue=False)
    assert job.parameters["overrides"] == {"weight_decay": 0, "augment": False, "members": [0]}


# The module's plain django_db mark would hide committed_db's serialized rollback from the database setup
# (pytest-django reads the closest mark), so the seeded rows would not come back after this test's flush.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
# The module's plain django_db mark would hide committed_db's serialized rollback from the database setup
# (pytest-django reads the closest mark), so the seeded rows would not come back after this test's flush.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_schedule_checks_at_the_same_moment_start_one_run(committed_db: None, training_env: Path) -> None:
    policy = RetrainPolicy.objects.get(name="nightly")
    RetrainPolicy.objects.filter(pk=policy.pk).update(min_new_cells=1)
    cells(3)
    barrier = threading.Barrier(4)
    started: list[int | None] = []
    errors: list[BaseException] = []

    def check() -> None:
        try:
            barrier.wait()
            job = retrain_policy_check(policy.pk)
            started.append(job.pk if job else None)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=check) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert len([job for job in started if job is not None]) == 1
    assert TrainingJob.objects.count() == 1
