"""Pretraining jobs: self-supervised starting points learnt from the lab's own fields (issue 15).

A pretraining job reads every stored field and box (`training.datasets.pretraining_fields`: truth, annotators' work
and model predictions, no label read), trains the networks of one stage with SimCLR (`training.core.pretrain`, in
the worker of the `gpu` queue, or in-process for `manage.py pretrain --wait`) and registers each as a starting point
(`training.starting_points.starting_point_register`, kind self_supervised) that later training runs can name.

torch is imported only inside the functions that train, so web processes stay light.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from aicell.errors import FieldError, StateConflict, ValidationFailed
from aicell.jobs import job_report_progress, job_run
from annotations.splits import SPLITS
from inference.core.profiles import load_profiles
from training.core.stages import PRETRAIN_STAGES, pretrain_archs, starting_point_names
from training.datasets import pretraining_fields
from training.models import OPEN_JOB_STATUSES, PretrainingJob, StartingPoint, StartingPointKind
from training.registry import profile_names
from training.starting_points import starting_point_name_valid, starting_point_register

if TYPE_CHECKING:
    from training.core.pretrain import PretrainProgress

DEFAULT_EPOCHS = 20
LOG_LIMIT = 100_000
PretrainingListener = Callable[[PretrainingJob], None]


def _check(
    stage: str, profile: str, name: str, epochs: Any, time_limit_s: Any, exclude_splits: Any
) -> list[FieldError]:
    errors = []
    if stage not in PRETRAIN_STAGES:
        errors.append(FieldError("stage", f"must be one of {', '.join(PRETRAIN_STAGES)}"))
    if profile not in profile_names():
        errors.append(FieldError("profile", f"unknown profile {profile!r}; valid: {', '.join(profile_names())}"))
    elif stage in PRETRAIN_STAGES:
        # Every starting point the run registers ('<name>-<arch>' per ensemble member) must be a valid name.
        archs = pretrain_archs(stage, load_profiles(settings.AICELL_PROFILES_FILE)[profile])
        if not all(starting_point_name_valid(point) for point in starting_point_names(name, archs)):
            errors.append(
                FieldError("name", "1-64 letters, digits, '.', '_' or '-' (with '-<arch>' per ensemble member)")
            )
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        errors.append(FieldError("epochs", "must be a whole number >= 1"))
    if time_limit_s is not None and (not isinstance(time_limit_s, int | float) or time_limit_s <= 0):
        errors.append(FieldError("time_limit_s", "must be a number of seconds > 0 (or empty for none)"))
    if not isinstance(exclude_splits, list) or any(split not in SPLITS for split in exclude_splits):
        errors.append(FieldError("exclude_splits", f"must be a list of {', '.join(SPLITS)}"))
    return errors


def pretraining_job_create(
    *,
    stage: str,
    profile: str | None = None,
    name: str | None = None,
    epochs: int = DEFAULT_EPOCHS,
    seed: int = 0,
    time_limit_s: float | None = None,
    exclude_splits: Sequence[str] = (),
    actor: Any = None,
    enqueue: bool = True,
) -> PretrainingJob:
    """Queue a pretraining run (the task starts after commit). One at a time: 409 while one is queued or running.
    `name` (default 'ssl-<profile>-<stage>-<job id>') must not name a starting point already."""
    profile = profile or settings.AICELL_PROFILE
    excluded = list(exclude_splits)
    errors = _check(stage, profile, name or f"ssl-{profile}-{stage}-0", epochs, time_limit_s, excluded)
    if errors:
        raise ValidationFailed("The pretraining parameters are not valid.", errors=errors)
    if name:
        archs = pretrain_archs(stage, load_profiles(settings.AICELL_PROFILES_FILE)[profile])
        taken = list(
            StartingPoint.objects.filter(name__in=starting_point_names(name, archs)).values_list("name", flat=True)
        )
        if taken:
            raise ValidationFailed(
                f"Starting point(s) {', '.join(taken)} exist already; choose another name.",
                errors=[FieldError("name", "taken")],
            )
    running = PretrainingJob.objects.filter(status__in=OPEN_JOB_STATUSES).first()
    if running is not None:
        raise StateConflict(
            f"Pretraining job {running.pk} is {running.status}; only one pretraining job runs at a time.",
            details={"pretraining_job": running.pk},
        )
    parameters = {"epochs": epochs, "seed": seed, "time_limit_s": time_limit_s, "exclude_splits": excluded}
    try:
        with transaction.atomic():
            job = PretrainingJob.objects.create(
                stage=stage,
                profile=profile,
                name=name or "",
                parameters=parameters,
                created_by=actor if actor is not None and actor.is_authenticated else None,
                message=f"queued: pretrain {stage} ({profile})",
            )
            if not name:
                job.name = f"ssl-{profile}-{stage}-{job.pk}"
                job.save(update_fields=["name"])
    except IntegrityError:
        raise StateConflict("Another pretraining job was queued at the same moment; one runs at a time.") from None
    if enqueue:
        from training import tasks

        transaction.on_commit(lambda: tasks.enqueue_pretraining_job(job.pk))
    return job


def _log(job: PretrainingJob, line: str) -> None:
    job.log = (job.log + f"[{timezone.now():%H:%M:%S}] {line}\n")[-LOG_LIMIT:]


def pretraining_job_run(job_id: int, *, task_id: str = "", listener: PretrainingListener | None = None) -> str:
    """Run a queued pretraining job (the worker's task, or `manage.py pretrain --wait`). A cancel request stops it at
    its next progress report."""
    return job_run(PretrainingJob, job_id, lambda job: _pretrain(job, listener), task_id=task_id)


def _pretrain(job: PretrainingJob, listener: PretrainingListener | None) -> dict[str, Any]:
    from inference.core.pipeline import resolve_device
    from training.core.pretrain import PretrainSettings, pretrain_stage

    parameters = job.parameters
    profile = load_profiles(settings.AICELL_PROFILES_FILE)[job.profile]
    archs = pretrain_archs(job.stage, profile)
    names = starting_point_names(job.name, archs)

    def report(percent: float, message: str, **fields: Any) -> None:
        job_report_progress(job, percent, message, log=job.log, **fields)
        if listener is not None:
            listener(job)

    started = time.monotonic()
    fields = pretraining_fields(exclude_splits=parameters.get("exclude_splits") or ())
    boxes = sum(len(record.cells) for record in fields)
    job.timings = {"data": round(time.monotonic() - started, 3)}
    _log(job, f"{len(fields)} fields, {boxes} boxes (excluded splits: {parameters.get('exclude_splits') or 'none'})")
    report(0, f"{job.stage}: {len(fields)} fields, {boxes} boxes")

    def on_progress(progress: PretrainProgress) -> None:
        if ", step " not in progress.message:
            _log(job, progress.message)
        loss = progress.loss if progress.loss is not None and math.isfinite(progress.loss) else None
        report(95.0 * progress.fraction, progress.message, epoch=progress.epoch, epochs=progress.epochs, loss=loss)

    pretrain_settings = PretrainSettings(
        epochs=int(parameters["epochs"]),
        seed=int(parameters.get("seed", 0)),
        time_limit_s=parameters.get("time_limit_s"),
        device=str(resolve_device(settings.AICELL_DEVICE or profile.device)),
    )
    out_dir = Path(settings.AICELL_MODEL_DIR) / "pretraining" / f"job-{job.pk}"
    try:
        results = pretrain_stage(job.stage, profile, fields, out_dir, pretrain_settings, on_progress=on_progress)
    except ValueError as exc:
        raise ValidationFailed(f"{job.stage}: {exc}", field="data") from exc
    registered = []
    examples = "field tiles" if job.stage == "detector-backbone" else "cell crops"
    for result, name in zip(results, names, strict=False):
        source = (
            f"pretraining job {job.pk}: SimCLR on {result.examples} {examples} of {len(fields)} fields, "
            f"{result.epochs_run} epochs, final loss {result.history[-1]['loss']:.4f}"
        )
        point = starting_point_register(
            name=name,
            arch=result.arch,
            state_dict_path=result.path,
            kind=StartingPointKind.SELF_SUPERVISED,
            source=source,
            user=job.created_by,
        )
        job.timings = {**job.timings, result.arch: result.seconds}
        _log(job, f"registered starting point {name} ({result.arch}): {source}")
        registered.append(
            {
                "id": point.pk,
                "name": name,
                "arch": result.arch,
                "epochs": result.epochs_run,
                "loss": result.history[-1]["loss"],
                "stopped_early": result.stopped_early,
                "history": result.history,
            }
        )
    missing = names[len(results) :]
    if missing:
        _log(job, f"time limit reached: no starting point for {', '.join(missing)}")
    job.save(update_fields=["log", "timings"])
    return {"fields": len(fields), "boxes": boxes, "starting_points": registered, "not_trained": missing}
