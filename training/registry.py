"""The model registry: the promotion gate, promote and roll back (audited), and a version's metrics on demand.

A candidate is compared with its stage's ACTIVE version evaluated on the SAME snapshot's held-out split and the
gate (`training.core.gate.promotion_decision`) decides, as the promote mode allows. An admin's promotion or
rollback announces itself (`training.events`); a training run's promotions are announced by the job when it
ends, once for all its stages.

torch is imported only inside the functions that evaluate, so web processes stay light.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from aicell.errors import NotFound, PermissionDenied, StateConflict, ValidationFailed
from aicell.roles import Role, has_role
from annotations.audit import audit_record
from annotations.services import patient_splits_assign
from annotations.truth import fields_with_truth
from inference.core.profiles import load_profiles
from training.core.records import FieldRecord
from training.datasets import snapshot_records, truth_fields
from training.events import model_versions_announce_promoted
from training.models import DatasetSnapshot, ModelStatus, ModelVersion, PromoteMode
from training.selectors import checkpoint_paths

logger = logging.getLogger(__name__)


def profile_names() -> tuple[str, ...]:
    """The profiles a training run may use: those of the three-stage kind (the null kind has nothing to learn)."""
    return tuple(
        name for name, profile in load_profiles(settings.AICELL_PROFILES_FILE).items() if profile.kind == "three_stage"
    )


def metrics_split(records: Sequence[FieldRecord]) -> str:
    """The held-out split a stage's final metrics (and the gate) use: test, or val when the test split is empty."""
    return "test" if any(record.split == "test" for record in records) else "val"


def evaluate_version(
    version: ModelVersion, records: Sequence[FieldRecord], *, split: str, plots_dir: Path | None = None
) -> dict[str, Any]:
    from training.core.stage_run import evaluate_checkpoints

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
    from training.core.gate import promotion_decision

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
        decision = promotion_decision(version.stage, version.metrics, compared, split=split)
        decision_promote, decision_reason = decision.promote, decision.reason
        gate["status"] = decision.status.value
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
    model_versions_announce_promoted([version.pk])
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
    model_versions_announce_promoted([target.pk])
    return target


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
