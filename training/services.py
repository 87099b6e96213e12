"""Training jobs, the model registry (promotion gate, promote, roll back) and the retraining schedule.

A training job builds one dataset snapshot of today's truth, then for each of its stages trains a candidate
(`training.runner.train_stage`, in the worker of the `gpu` queue), registers it, evaluates the ACTIVE version of
that stage on the SAME snapshot's held-out split and lets the gate (`training.gate.promotion_decision`) decide,
as the job's promote mode allows (auto | never | force). Every promotion and rollback is audited (who, when, why);
after a promotion, fields without truth are pre-labelled again by the new pipeline (queued after commit).

torch is imported only inside the functions that train or evaluate, so web processes stay light.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from aicell.errors import DomainError, FieldError, NotFound, PermissionDenied, StateConflict, ValidationFailed
from aicell.jobs import job_report_progress, job_run
from aicell.models import JobStatus
from aicell.roles import Role, has_role
from annotations.audit import audit_record
from annotations.services import patient_splits_assign
from annotations.truth import fields_with_truth, truth_cells
from training.datasets import dataset_snapshot_create, snapshot_records, truth_fields
from training.models import (
    OPEN_JOB_STATUSES,
    DatasetSnapshot,
    ModelStatus,
    ModelVersion,
    PromoteMode,
    RetrainPolicy,
    Stage,
    TrainingJob,
    TriggeredBy,
)
from training.records import FieldRecord
from training.selectors import active_model_versions, checkpoint_paths, missing_active_stages

if TYPE_CHECKING:
    from training.runner import Progress, StageResult

logger = logging.getLogger(__name__)

STAGE_ORDER: tuple[str, ...] = tuple(stage.value for stage in Stage)
ALL_STAGES = "all"
# Overrides of the profile's training hyperparameters a job may carry (training.runner.OVERRIDES, mirrored here
# without importing torch): the type, and whether 0 is allowed. The runner checks the values again.
OVERRIDES: dict[str, tuple[tuple[type, ...], bool]] = {
    "lr": ((int, float), False),
    "batch_size": ((int,), False),
    "weight_decay": ((int, float), True),
    "cosine_t_max": ((int,), False),
    "optimizer": ((str,), True),
    "time_limit_s": ((int, float), False),
    "warmup_epochs": ((int,), True),
    "balance_power": ((int, float), True),
    "label_smoothing": ((int, float), True),
    "augment": ((bool,), True),
    "eval_every": ((int,), False),
    "num_workers": ((int,), True),
    "num_threads": ((int,), False),
    "progress_every": ((int,), False),
    "eval_score_threshold": ((int, float), True),
    "init_checkpoints": ((list, str), True),
    "members": ((list,), True),
}
LOG_LIMIT = 100_000  # characters of a job's log kept (the newest)
JobListener = Callable[[TrainingJob], None]


# --- validation ---------------------------------------------------------------------------------------------------


def stages_parse(value: Any) -> list[str]:
    """ "all", one stage, or a list of stages -> stages in training order (detector, countability, classifier)."""
    if value == ALL_STAGES or value is None:
        return list(STAGE_ORDER)
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list | tuple) or not names or not all(isinstance(name, str) for name in names):
        raise ValidationFailed("Name a stage, a list of stages, or 'all'.", field="stages")
    unknown = [name for name in names if name not in STAGE_ORDER]
    if unknown:
        raise ValidationFailed(
            f"Unknown stage(s) {', '.join(map(repr, unknown))}; valid: {', '.join(STAGE_ORDER)} or 'all'.",
            field="stages",
        )
    return [stage for stage in STAGE_ORDER if stage in names]


def profile_names() -> tuple[str, ...]:
    from inference.profiles import load_profiles

    return tuple(load_profiles(settings.AICELL_PROFILES_FILE))


def _out_of_range(value: Any, zero_ok: bool) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return value < 0 or (value == 0 and not zero_ok)


def _check_parameters(
    profile: str, epochs: Any, seed: Any, promote: Any, overrides: Mapping[str, Any]
) -> list[FieldError]:
    errors = []
    if profile not in profile_names():
        errors.append(FieldError("profile", f"unknown profile {profile!r}; valid: {', '.join(profile_names())}"))
    if epochs is not None and (not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1):
        errors.append(FieldError("epochs", "must be a whole number >= 1 (or empty for the profile's)"))
    if not isinstance(seed, int) or isinstance(seed, bool):
        errors.append(FieldError("seed", "must be a whole number"))
    if promote not in PromoteMode.values:
        errors.append(FieldError("promote", f"must be one of {', '.join(PromoteMode.values)}"))
    if not isinstance(overrides, Mapping):
        errors.append(FieldError("overrides", "must be an object"))
        return errors
    for key, value in overrides.items():
        spec = OVERRIDES.get(key)
        if spec is None:
            errors.append(FieldError(f"overrides.{key}", f"unknown; valid: {', '.join(OVERRIDES)}"))
            continue
        types, zero_ok = spec
        if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
            errors.append(FieldError(f"overrides.{key}", f"must be a {' or '.join(t.__name__ for t in types)}"))
        elif _out_of_range(value, zero_ok):
            errors.append(FieldError(f"overrides.{key}", "must be >= 0" if zero_ok else "must be > 0"))
        elif key == "optimizer" and value not in ("adam", "adamw", "sgd"):
            errors.append(FieldError(f"overrides.{key}", "must be adam, adamw or sgd"))
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
    errors = _check_parameters(profile, epochs, seed, promote, overrides)
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


def metrics_split(records: Sequence[FieldRecord]) -> str:
    """The held-out split a stage's final metrics (and the gate) use: test, or val when the test split is empty."""
    return "test" if any(record.split == "test" for record in records) else "val"


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
    prelabel: dict[str, Any] = {}
    if promoted:
        prelabel_after_promotion(prelabel)
    _log(job, "done")
    job.save(update_fields=["log"])
    return {
        "dataset_snapshot": snapshot.pk,
        "model_versions": {
            stage: {"id": version.pk, "status": version.status, "reason": version.status_reason}
            for stage, version in produced.items()
        },
        "promoted": [version.pk for version in promoted],
        "prelabel_job": prelabel.get("job"),
    }


def _train_stage(
    job: TrainingJob,
    index: int,
    stage: str,
    records: list[FieldRecord],
    snapshot: DatasetSnapshot,
    listener: JobListener | None,
) -> ModelVersion:
    from training.runner import TrainConfig, train_stage

    count = len(job.stages)
    parameters = job.parameters
    config = TrainConfig(
        stage=stage,
        profile=job.profile,
        epochs=parameters.get("epochs"),
        seed=int(parameters.get("seed", 0)),
        overrides=dict(parameters.get("overrides") or {}),
        device=settings.AICELL_DEVICE or None,
        profiles_file=str(settings.AICELL_PROFILES_FILE),
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
        dataset_snapshot=snapshot,
        training_job=job,
        status_reason="candidate: awaiting the promotion gate",
    )


# --- the promotion gate and the registry --------------------------------------------------------------------------


def evaluate_version(
    version: ModelVersion, records: Sequence[FieldRecord], *, split: str, plots_dir: Path | None = None
) -> dict[str, Any]:
    from training.runner import evaluate_checkpoints

    return evaluate_checkpoints(
        version.stage,
        checkpoint_paths(version),
        records,
        split=split,
        device=settings.AICELL_DEVICE or None,
        plots_dir=plots_dir,
    )


def gate_and_promote(
    version: ModelVersion,
    records: Sequence[FieldRecord],
    *,
    mode: str,
    actor: Any = None,
    active_metrics: Mapping[str, Any] | None = None,
) -> ModelVersion:
    """Compare a candidate with the stage's active version on the same held-out split of the same snapshot and
    promote it as `mode` says; the reason is recorded on `status_reason` (and the comparison on `gate`).
    `active_metrics` skips evaluating the active version (tests with hand-made metrics)."""
    from training.gate import promotion_decision

    split = metrics_split(records)
    active = ModelVersion.objects.filter(stage=version.stage, status=ModelStatus.ACTIVE).exclude(pk=version.pk).first()
    gate: dict[str, Any] = {"split": split, "mode": mode, "active_version": active.pk if active else None}
    if active is not None and active_metrics is None:
        try:
            active_metrics = evaluate_version(active, records, split=split)
        except Exception as exc:  # an unreadable active model must not be trusted over a fresh candidate blindly
            logger.warning("evaluating active %s failed: %s", active, exc)
            gate["active_error"] = f"{type(exc).__name__}: {exc}"
    if active is not None and active_metrics is None:
        decision_promote, decision_reason = False, f"the active version v{active.pk} could not be evaluated"
    else:
        compared = dict(active_metrics) if active is not None and active_metrics is not None else None
        decision = promotion_decision(version.stage, version.metrics, compared)
        decision_promote, decision_reason = decision.promote, decision.reason
    gate["active_metrics"] = dict(active_metrics) if active_metrics is not None else None
    gate["decision"] = {"promote": decision_promote, "reason": decision_reason}
    if mode == PromoteMode.FORCE:
        promote, reason = True, f"promoted by force (promote=force); the gate said: {decision_reason}"
    elif mode == PromoteMode.NEVER:
        verdict = "would promote" if decision_promote else "would not promote"
        promote, reason = False, f"kept as candidate (promote=never); the gate {verdict}: {decision_reason}"
    else:
        promote = decision_promote
        reason = f"{'promoted' if promote else 'not promoted'} by the gate on the {split} split: {decision_reason}"
    version.gate = gate
    version.status_reason = reason
    version.save(update_fields=["gate", "status_reason"])
    if promote:
        _activate(version, actor=actor, reason=reason, action="model_version.promote", set_replaced=True)
    else:
        audit_record(
            actor=actor,
            action="model_version.gate",
            entity="model_version",
            entity_id=version.pk,
            after=_version_snapshot(version),
            reason=reason,
        )
    version.refresh_from_db()
    return version


def _version_snapshot(version: ModelVersion) -> dict[str, Any]:
    return {
        "stage": version.stage,
        "status": version.status,
        "profile": version.profile,
        "architecture": version.architecture,
        "promoted_at": version.promoted_at.isoformat() if version.promoted_at else None,
        "status_reason": version.status_reason,
    }


def _activate(
    version: ModelVersion, *, actor: Any, reason: str, action: str, set_replaced: bool
) -> tuple[ModelVersion, ModelVersion | None]:
    """Make `version` the active one of its stage, retiring the current one, in one audited transaction."""
    with transaction.atomic():
        # Lock the whole stage: two promotions of one stage are serialised, never two active versions.
        stage_rows = {row.pk: row for row in ModelVersion.objects.select_for_update().filter(stage=version.stage)}
        version = stage_rows[version.pk]
        current = next((row for row in stage_rows.values() if row.status == ModelStatus.ACTIVE), None)
        if current is not None and current.pk == version.pk:
            raise StateConflict(f"Model version {version.pk} is already the active {version.stage}.")
        now = timezone.now()
        if current is not None:
            before_current = _version_snapshot(current)
            current.status = ModelStatus.RETIRED
            current.retired_at = now
            current.save(update_fields=["status", "retired_at"])
            audit_record(
                actor=actor,
                action="model_version.retire",
                entity="model_version",
                entity_id=current.pk,
                before=before_current,
                after=_version_snapshot(current),
                reason=f"replaced by v{version.pk}: {reason}",
            )
        before = _version_snapshot(version)
        version.status = ModelStatus.ACTIVE
        version.promoted_at = now
        version.retired_at = None
        version.status_reason = reason
        fields = ["status", "promoted_at", "retired_at", "status_reason"]
        if set_replaced:
            version.replaced = current
            fields.append("replaced")
        version.save(update_fields=fields)
        audit_record(
            actor=actor,
            action=action,
            entity="model_version",
            entity_id=version.pk,
            before=before,
            after={**_version_snapshot(version), "replaced": current.pk if current else None},
            reason=reason,
        )
    return version, current


def _require_admin(actor: Any) -> None:
    if not has_role(actor, Role.ADMIN):
        raise PermissionDenied("Only admins may promote or roll back model versions.")


def _reason(reason: Any) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise ValidationFailed("Say why (it is kept in the audit trail).", field="reason")
    return reason.strip()


def model_version_promote(*, version_id: int, actor: Any, reason: Any) -> ModelVersion:
    """An admin makes a version the active one of its stage, whatever the gate said (audited with the reason)."""
    _require_admin(actor)
    why = _reason(reason)
    version = ModelVersion.objects.filter(pk=version_id).first()
    if version is None:
        raise NotFound(f"Model version {version_id} does not exist.")
    if not version.checkpoints:
        raise ValidationFailed(f"Model version {version_id} has no checkpoint files.", field="checkpoints")
    version, _ = _activate(
        version, actor=actor, reason=f"promoted by {actor}: {why}", action="model_version.promote", set_replaced=True
    )
    prelabel_after_promotion()
    return version


def model_version_rollback(*, version_id: int, actor: Any, reason: Any, to: int | None = None) -> ModelVersion:
    """An admin takes the active version `version_id` out of service and makes the version it replaced (or the
    version `to` of the same stage) active again. Returns the version now active."""
    _require_admin(actor)
    why = _reason(reason)
    version = ModelVersion.objects.filter(pk=version_id).first()
    if version is None:
        raise NotFound(f"Model version {version_id} does not exist.")
    if version.status != ModelStatus.ACTIVE:
        raise StateConflict(
            f"Model version {version_id} is {version.status}; only the active version can be rolled back."
        )
    if to is not None:
        target = ModelVersion.objects.filter(pk=to, stage=version.stage).exclude(pk=version.pk).first()
        if target is None:
            raise ValidationFailed(f"There is no other {version.stage} version {to} to roll back to.", field="to")
    else:
        target = version.replaced
        if target is None:
            raise StateConflict(f"Model version {version_id} replaced no earlier version; name one with 'to'.")
    target, _ = _activate(
        target,
        actor=actor,
        reason=f"rolled back from v{version.pk} by {actor}: {why}",
        action="model_version.rollback",
        set_replaced=False,
    )
    prelabel_after_promotion()
    return target


def prelabel_after_promotion(holder: dict[str, Any] | None = None) -> None:
    """After commit: pre-label every field without truth again with the new pipeline, when all three stages have
    an active version of one profile. Queued, never blocking the promotion."""

    def queue() -> None:
        from inference.models import PrelabelTrigger
        from inference.services import fields_to_prelabel, prelabel_job_create

        versions = active_model_versions()
        if missing_active_stages(versions):
            return
        profiles = {version.profile for version in versions.values()}
        if len(profiles) != 1:
            logger.warning("not pre-labelling after promotion: the active versions mix profiles %s", profiles)
            return
        fields = fields_to_prelabel(everything=True)
        if not fields.exists():
            return
        try:
            job = prelabel_job_create(fields=fields, trigger=PrelabelTrigger.PROMOTION)
        except DomainError as exc:
            logger.warning("not pre-labelling after promotion: %s", exc.message)
            return
        if holder is not None:
            holder["job"] = job.pk

    transaction.on_commit(queue)


def model_version_evaluate(
    version: ModelVersion,
    *,
    split: str = "test",
    snapshot: DatasetSnapshot | None = None,
    current: bool = False,
    plots_dir: Path | None = None,
) -> dict[str, Any]:
    """A version's metrics on one split: of its own training snapshot (default), another snapshot, or today's
    truth (`current`, patients keep their splits, so test stays held out)."""
    if split not in ("train", "val", "test"):
        raise ValidationFailed("split must be train, val or test.", field="split")
    if not version.checkpoints:
        raise ValidationFailed(f"Model version {version.pk} has no checkpoint files.", field="model_version")
    if current:
        patient_splits_assign(fields=fields_with_truth())
        records = [item.record for item in truth_fields()]
        source: Any = "current"
    else:
        snapshot = snapshot or version.dataset_snapshot
        if snapshot is None:
            raise ValidationFailed(
                f"Model version {version.pk} has no dataset snapshot; evaluate on today's truth instead.",
                field="dataset_snapshot",
            )
        records = snapshot_records(snapshot)
        source = snapshot.pk
    chosen = [record for record in records if record.split == split]
    if not chosen:
        raise ValidationFailed(f"The {split} split of this dataset has no fields.", field="split")
    metrics = evaluate_version(version, records, split=split, plots_dir=plots_dir)
    return {
        "model_version": version.pk,
        "stage": version.stage,
        "profile": version.profile,
        "architecture": version.architecture,
        "split": split,
        "dataset_snapshot": source,
        "fields": len(chosen),
        "cells": sum(len(record.cells) for record in chosen),
        "metrics": metrics,
    }


# --- the schedule -------------------------------------------------------------------------------------------------


def last_run_reference() -> datetime | None:
    """When the data of the last successful training run was taken (its snapshot), or None before any run."""
    job = (
        TrainingJob.objects.filter(status=JobStatus.SUCCEEDED)
        .select_related("dataset_snapshot")
        .order_by("-created_at")
        .first()
    )
    if job is None:
        return None
    return job.dataset_snapshot.created_at if job.dataset_snapshot else job.created_at


def new_truth_cells_since(since: datetime | None) -> int:
    cells = truth_cells()
    if since is not None:
        cells = cells.filter(created_at__gt=since)
    return cells.count()


def retrain_policy_check(policy_id: int) -> TrainingJob | None:
    """The schedule's periodic check: start a retraining when at least `min_new_cells` truth cells arrived since
    the last successful run, unless a training job is queued or running. The policy row is locked for the whole
    check, so two checks at once cannot both start a run (and the open-job constraint backs that up)."""
    with transaction.atomic():
        policy = RetrainPolicy.objects.select_for_update().filter(pk=policy_id).first()
        if policy is None:
            return None
        now = timezone.now()
        job: TrainingJob | None = None
        running = open_training_job()
        new_cells = new_truth_cells_since(last_run_reference())
        if running is not None:
            decision = f"training job {running.pk} is {running.status}; not starting another"
        elif new_cells < policy.min_new_cells:
            decision = f"{new_cells} new truth cells since the last run (< {policy.min_new_cells}); nothing to do"
        else:
            try:
                job = training_job_create(
                    stages=policy.stages or ALL_STAGES,
                    profile=policy.profile or None,
                    epochs=policy.epochs,
                    promote=policy.promote,
                    triggered_by=TriggeredBy.SCHEDULE,
                    schedule=policy,
                )
            except StateConflict as exc:
                decision = exc.message
            except ValidationFailed as exc:
                decision = f"cannot start: {'; '.join(f'{e.field}: {e.reason}' for e in exc.errors) or exc.message}"
            else:
                decision = f"{new_cells} new truth cells since the last run: started training job {job.pk}"
                policy.last_job = job
        policy.last_checked_at = now
        policy.last_check = decision[:255]
        policy.save(update_fields=["last_checked_at", "last_check", "last_job", "updated_at"])
    logger.info("retrain policy %s: %s", policy.name, decision)
    return job


def retrain_policy_update(policy: RetrainPolicy, changes: Mapping[str, Any]) -> RetrainPolicy:
    """Change a policy and its periodic task (enabled, crontab fields) together."""
    from django_celery_beat.models import CrontabSchedule, PeriodicTask

    crontab_keys = ("minute", "hour", "day_of_week", "day_of_month", "month_of_year")
    with transaction.atomic():
        policy = RetrainPolicy.objects.select_for_update().get(pk=policy.pk)
        task = policy.periodic_task
        if task is None:
            task = retrain_policy_ensure_task(policy)
        task = PeriodicTask.objects.select_for_update().get(pk=task.pk)
        for key in ("min_new_cells", "stages", "profile", "epochs", "promote"):
            if key in changes:
                setattr(policy, key, changes[key])
        if policy.profile and policy.profile not in profile_names():
            raise ValidationFailed(f"unknown profile {policy.profile!r}.", field="profile")
        policy.save()
        if "enabled" in changes:
            task.enabled = bool(changes["enabled"])
        if any(key in changes for key in crontab_keys):
            old = task.crontab
            values = {key: str(changes.get(key, getattr(old, key) if old else "*")) for key in crontab_keys}
            timezone_name = old.timezone if old else settings.TIME_ZONE
            crontab = CrontabSchedule.objects.filter(**values, timezone=timezone_name).first()
            if crontab is None:
                crontab = CrontabSchedule(**values, timezone=timezone_name)
                try:
                    crontab.full_clean()
                except Exception as exc:
                    messages = getattr(exc, "message_dict", {})
                    raise ValidationFailed(
                        "The crontab is not valid.",
                        errors=[FieldError(key, "; ".join(reasons)) for key, reasons in messages.items()]
                        or [FieldError("crontab", str(exc))],
                    ) from None
                crontab.save()
            task.crontab = crontab
        task.save()
    policy.refresh_from_db()
    return policy


RETRAIN_TASK = "training.retrain_check"


def retrain_policy_ensure_task(policy: RetrainPolicy) -> Any:
    """The policy's periodic task, made (nightly at 02:00, enabled) when missing. Idempotent."""
    import json

    from django_celery_beat.models import CrontabSchedule, PeriodicTask

    if policy.periodic_task is not None:
        return policy.periodic_task
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute="0", hour="2", day_of_week="*", day_of_month="*", month_of_year="*", timezone=settings.TIME_ZONE
    )
    task, _ = PeriodicTask.objects.get_or_create(
        name=f"retrain: {policy.name}",
        defaults={"task": RETRAIN_TASK, "crontab": crontab, "kwargs": json.dumps({"policy_id": policy.pk})},
    )
    policy.periodic_task = task
    policy.save(update_fields=["periodic_task", "updated_at"])
    return task
