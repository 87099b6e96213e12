"""Training jobs: validate a request, queue it, and run it stage by stage.

A training job builds one dataset snapshot of today's truth, then for each of its stages (in the order of
`training.core.stages.STAGES`) trains a candidate (`training.core.stage_run.train_stage`, in the worker of the
`gpu` queue), registers it and hands it to the promotion gate (`training.registry.gate_and_promote`), as the job's
promote mode allows (auto | never | force). When the run promoted something, it announces the promotion
(`training.events`) so the apps that care (inference: pre-label again) act after the commit.

torch is imported only inside the functions that train, so web processes stay light.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from aicell.errors import FieldError, NotFound, StateConflict, ValidationFailed
from aicell.jobs import job_report_progress, job_run
from inference.core.profiles import init_starting_point, load_profiles
from training.core.overrides import override_errors
from training.core.records import FieldRecord
from training.core.stages import STAGES
from training.datasets import dataset_snapshot_create, snapshot_records
from training.events import model_versions_announce_promoted
from training.models import (
    OPEN_JOB_STATUSES,
    DatasetSnapshot,
    ModelStatus,
    ModelVersion,
    PromoteMode,
    RetrainPolicy,
    TrainingJob,
    TriggeredBy,
)
from training.registry import gate_and_promote, profile_names
from training.selectors import starting_point_path, starting_points_by_name

if TYPE_CHECKING:
    from training.core.stage_run import Progress, StageResult

ALL_STAGES = "all"
LOG_LIMIT = 100_000  # characters of a job's log kept (the newest)
JobListener = Callable[[TrainingJob], None]

# --- validation ---------------------------------------------------------------------------------------------------


def stages_parse(value: Any) -> list[str]:
    """ "all", one stage, or a list of stages -> stages in training order (detector, countability, classifier)."""
    if value == ALL_STAGES or value is None:
        return list(STAGES)
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list | tuple) or not names or not all(isinstance(name, str) for name in names):
        raise ValidationFailed("Name a stage, a list of stages, or 'all'.", field="stages")
    unknown = [name for name in names if name not in STAGES]
    if unknown:
        raise ValidationFailed(
            f"Unknown stage(s) {', '.join(map(repr, unknown))}; valid: {', '.join(STAGES)} or 'all'.",
            field="stages",
        )
    return [stage for stage in STAGES if stage in names]


def _starting_point_names(profile: str, stages: list[str]) -> list[str]:
    """The starting points the profile's `init`s name for these stages (in training order)."""
    loaded = load_profiles(settings.AICELL_PROFILES_FILE)[profile]
    names = [init_starting_point(init) for stage in stages for init in STAGES[stage].model_config(loaded).inits]
    return list(dict.fromkeys(name for name in names if name))


def _check_parameters(
    profile: str, stages: list[str], epochs: Any, seed: Any, promote: Any, overrides: Mapping[str, Any]
) -> list[FieldError]:
    errors = []
    if profile not in profile_names():
        errors.append(FieldError("profile", f"unknown profile {profile!r}; valid: {', '.join(profile_names())}"))
    else:
        try:
            starting_points_by_name(_starting_point_names(profile, stages))
        except NotFound as error:
            errors.append(FieldError("profile", f"profile {profile!r}: {error.message}"))
    if epochs is not None and (not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1):
        errors.append(FieldError("epochs", "must be a whole number >= 1 (or empty for the profile's)"))
    if not isinstance(seed, int) or isinstance(seed, bool):
        errors.append(FieldError("seed", "must be a whole number"))
    if promote not in PromoteMode.values:
        errors.append(FieldError("promote", f"must be one of {', '.join(PromoteMode.values)}"))
    if not isinstance(overrides, Mapping):
        errors.append(FieldError("overrides", "must be an object"))
        return errors
    errors.extend(FieldError(f"overrides.{key}", reason) for key, reason in override_errors(overrides).items())
    return errors


# --- jobs ---------------------------------------------------------------------------------------------------------


def open_training_job() -> TrainingJob | None:
    return TrainingJob.objects.filter(status__in=OPEN_JOB_STATUSES).order_by("created_at").first()


def training_job_create(
    *,
    stages: Any = ALL_STAGES,
    profile: str | None = None,
    epochs: int | None = None,
    seed: int = 0,
    promote: str = PromoteMode.AUTO,
    overrides: Mapping[str, Any] | None = None,
    actor: Any = None,
    triggered_by: str = TriggeredBy.USER,
    schedule: RetrainPolicy | None = None,
    enqueue: bool = True,
) -> TrainingJob:
    """Queue a training run (the task starts after commit). One training job at a time: 409 while one is queued
    or running (checked here, and by the database's partial unique constraint for the races)."""
    stage_list = stages_parse(stages)
    profile = profile or settings.AICELL_PROFILE
    overrides = dict(overrides or {})
    errors = _check_parameters(profile, stage_list, epochs, seed, promote, overrides)
    if errors:
        raise ValidationFailed("The training parameters are not valid.", errors=errors)
    running = open_training_job()
    if running is not None:
        raise StateConflict(
            f"Training job {running.pk} is {running.status}; only one training job runs at a time.",
            details={"training_job": running.pk},
        )
    try:
        with transaction.atomic():
            job = TrainingJob.objects.create(
                stages=stage_list,
                profile=profile,
                parameters={"epochs": epochs, "seed": seed, "promote": promote, "overrides": overrides},
                triggered_by=triggered_by,
                schedule=schedule,
                created_by=actor if actor is not None and actor.is_authenticated else None,
                message=f"queued: {', '.join(stage_list)} ({profile})",
            )
    except IntegrityError:
        raise StateConflict("Another training job was queued at the same moment; only one runs at a time.") from None
    if enqueue:
        from training import tasks

        transaction.on_commit(lambda: tasks.enqueue_training_job(job.pk))
    return job


def _log(job: TrainingJob, line: str) -> None:
    stamp = timezone.now().strftime("%H:%M:%S")
    job.log = (job.log + f"[{stamp}] {line}\n")[-LOG_LIMIT:]


def _progress(job: TrainingJob, percent: float, message: str, listener: JobListener | None, **fields: Any) -> None:
    job_report_progress(job, percent, message, log=job.log, **fields)
    if listener is not None:
        listener(job)


def training_job_run(job_id: int, *, task_id: str = "", listener: JobListener | None = None) -> str:
    """Run a queued training job (the worker's task, or `manage.py train --wait` in-process). Cancel: a cancel
    request makes the next progress report raise JobCancelled inside `on_progress`, which stops the training."""
    return job_run(TrainingJob, job_id, lambda job: _train(job, listener), task_id=task_id)


def _train(job: TrainingJob, listener: JobListener | None) -> dict[str, Any]:
    timings = dict(job.timings)
    if job.dataset_snapshot is None:
        started = time.monotonic()
        _log(job, "building the dataset snapshot from consensus and imported truth")
        _progress(job, 0, "building the dataset snapshot", listener)
        job.dataset_snapshot = dataset_snapshot_create(actor=job.created_by)
        timings["snapshot"] = round(time.monotonic() - started, 3)
        job.timings = timings
        job.save(update_fields=["dataset_snapshot", "timings"])
    snapshot = job.dataset_snapshot
    records = snapshot_records(snapshot)
    _log(job, f"dataset snapshot {snapshot.pk}: {snapshot.field_count} fields, {snapshot.cell_count} cells")
    produced: dict[str, ModelVersion] = {}
    promoted: list[ModelVersion] = []
    for index, stage in enumerate(job.stages):
        # A redelivered task (the worker died after a stage finished) does not train that stage again.
        done = job.model_versions.filter(stage=stage).first()
        if done is not None:
            produced[stage] = done
            continue
        version = _train_stage(job, index, stage, records, snapshot, listener)
        produced[stage] = version
        if version.status == ModelStatus.ACTIVE:
            promoted.append(version)
    if promoted:
        model_versions_announce_promoted([version.pk for version in promoted])
    _log(job, "done")
    job.save(update_fields=["log"])
    return {
        "dataset_snapshot": snapshot.pk,
        "model_versions": {
            stage: {"id": version.pk, "status": version.status, "reason": version.status_reason}
            for stage, version in produced.items()
        },
        "promoted": [version.pk for version in promoted],
    }


def _train_stage(
    job: TrainingJob,
    index: int,
    stage: str,
    records: list[FieldRecord],
    snapshot: DatasetSnapshot,
    listener: JobListener | None,
) -> ModelVersion:
    from training.core.config import StartingPointRef, TrainConfig
    from training.core.stage_run import train_stage

    count = len(job.stages)
    parameters = job.parameters
    try:
        points = starting_points_by_name(_starting_point_names(job.profile, [stage]))
    except NotFound as error:
        raise ValidationFailed(f"{stage}: {error.message}", field="profile") from None
    config = TrainConfig(
        stage=stage,
        profile=job.profile,
        epochs=parameters.get("epochs"),
        seed=int(parameters.get("seed", 0)),
        overrides=dict(parameters.get("overrides") or {}),
        device=settings.AICELL_DEVICE or None,
        profiles_file=str(settings.AICELL_PROFILES_FILE),
        starting_points={
            name: StartingPointRef(name, point.arch, str(starting_point_path(point)), point.sha256)
            for name, point in points.items()
        },
    )
    out_dir = Path(settings.AICELL_MODEL_DIR) / "training" / f"job-{job.pk}" / stage

    def on_progress(progress: Progress) -> None:
        if ", step " not in progress.message:  # the log keeps epoch ends and milestones, not every step
            _log(job, progress.message if progress.message.startswith(stage) else f"{stage}: {progress.message}")
        loss_value = progress.loss if progress.loss is not None and math.isfinite(progress.loss) else None
        _progress(
            job,
            99.0 * (index + min(max(progress.fraction, 0.0), 1.0)) / count,
            progress.message if progress.message.startswith(stage) else f"{stage}: {progress.message}",
            listener,
            current_stage=stage,
            epoch=progress.epoch,
            epochs=progress.epochs,
            loss=loss_value,
        )

    _log(job, f"training {stage} ({job.profile}) on snapshot {snapshot.pk}")
    _progress(job, 99.0 * index / count, f"{stage}: starting", listener, current_stage=stage, epoch=None, loss=None)
    started = time.monotonic()
    try:
        result = train_stage(
            config, records, out_dir, on_progress=on_progress, data_snapshot=f"{snapshot.pk}:{snapshot.content_hash}"
        )
    except ValueError as exc:
        raise ValidationFailed(f"{stage}: {exc}", field="dataset_snapshot") from exc
    job.timings = {**job.timings, stage: round(time.monotonic() - started, 3)}
    job.save(update_fields=["timings"])
    version = _register_candidate(job, stage, result, snapshot)
    _log(job, f"{stage}: candidate v{version.pk} ({result.architecture}); comparing with the active version")
    _progress(job, 99.0 * (index + 1) / count, f"{stage}: promotion gate", listener)
    started = time.monotonic()
    gate_and_promote(version, records, mode=job.parameters.get("promote", PromoteMode.AUTO), actor=job.created_by)
    job.timings = {**job.timings, f"{stage}_gate": round(time.monotonic() - started, 3)}
    version.refresh_from_db()
    _log(job, f"{stage}: v{version.pk} {version.status}: {version.status_reason}")
    job.save(update_fields=["timings", "log"])
    return version


def _relative_to_model_dir(path: Path) -> str:
    model_dir = Path(settings.AICELL_MODEL_DIR).resolve()
    try:
        return str(Path(path).resolve().relative_to(model_dir))
    except ValueError:
        raise ValidationFailed(f"{path} is not under AICELL_MODEL_DIR ({model_dir}).", field="checkpoints") from None


def _register_candidate(job: TrainingJob, stage: str, result: StageResult, snapshot: DatasetSnapshot) -> ModelVersion:
    active = ModelVersion.objects.filter(stage=stage, status=ModelStatus.ACTIVE).first()
    return ModelVersion.objects.create(
        stage=stage,
        profile=job.profile,
        architecture=result.architecture,
        checkpoints=[_relative_to_model_dir(path) for path in result.checkpoints],
        status=ModelStatus.CANDIDATE,
        metrics=result.metrics,
        val_metrics=result.val_metrics,
        history=result.history,
        best_epochs=list(result.best_epochs),
        plots=[{"name": Path(path).name, "path": _relative_to_model_dir(path)} for path in result.plots],
        parent=active,
        starting_points=list(result.starting_points),
        dataset_snapshot=snapshot,
        training_job=job,
        status_reason="candidate: awaiting the promotion gate",
    )
