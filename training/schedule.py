"""The retraining schedule: a policy checked by a django-celery-beat periodic task starts a training run of all
three stages when enough new truth arrived since the last successful run, never while one is queued or running."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from aicell.errors import FieldError, StateConflict, ValidationFailed
from aicell.models import JobStatus
from annotations.truth import truth_cells
from training.jobs import ALL_STAGES, open_training_job, training_job_create
from training.models import RetrainPolicy, TrainingJob, TriggeredBy
from training.registry import profile_names

logger = logging.getLogger(__name__)


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
