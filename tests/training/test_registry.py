"""The model registry: the promotion gate through the service on hand-made metrics, promote and roll back (admins,
audited), one active version per stage, and pre-labelling again after a promotion."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.db import IntegrityError, transaction

from aicell.errors import PermissionDenied, StateConflict, ValidationFailed
from aicell.roles import Role
from annotations.models import AuditEvent
from inference.models import PrelabelJob, PrelabelTrigger
from tests.factories import FieldFactory, ModelVersionFactory
from tests.training.platform_data import truth_field
from training.core.stages import BLAST_CLASS_IDS, CLASSIFIER, COUNTABILITY, DETECTOR
from training.datasets import dataset_snapshot_create, snapshot_records
from training.models import ModelStatus, ModelVersion, PromoteMode
from training.registry import gate_and_promote, model_version_promote, model_version_rollback

pytestmark = pytest.mark.django_db

CHECKPOINTS = ["x/model.pt"]


def version(stage: str = CLASSIFIER.name, status: str = ModelStatus.CANDIDATE, **metrics: Any) -> ModelVersion:
    made: Any = ModelVersionFactory(stage=stage, status=status, metrics=metrics, checkpoints=CHECKPOINTS)
    return made


def blast(recall: float) -> dict[str, Any]:
    """Per-class metrics with every blast class well represented; `recall` is the lymphoblasts'."""
    return {
        str(class_id): {"recall": recall if class_id == 11 else 0.9, "precision": 0.5, "f1": 0.5, "support": 50}
        for class_id in BLAST_CLASS_IDS
    }


@pytest.fixture
def records(training_env: Path) -> Any:
    truth_field("R1", [(1, 1, 10, 10, 12, True)], split="test")
    return snapshot_records(dataset_snapshot_create())


def test_without_an_active_version_the_candidate_is_promoted(records: Any) -> None:
    candidate = version(macro_f1=0.1)
    gate_and_promote(candidate, records, mode=PromoteMode.AUTO)
    assert candidate.status == ModelStatus.ACTIVE
    assert "no active version" in candidate.status_reason
    assert candidate.gate["split"] == "test"
    assert candidate.gate["active_version"] is None


@pytest.mark.parametrize(
    ("candidate_metrics", "promoted", "reason"),
    [
        ({"macro_f1": 0.70, "per_class": blast(0.9)}, True, "macro_f1 0.7000 >= active 0.6000"),
        ({"macro_f1": 0.60, "per_class": blast(0.8)}, True, ">= active"),  # equal is not lower
        ({"macro_f1": 0.595, "per_class": blast(0.8)}, True, ">= active"),  # within the tolerance
        ({"macro_f1": 0.55, "per_class": blast(0.9)}, False, "lower than the active version's 0.6000"),
        ({"macro_f1": 0.90, "per_class": blast(0.7)}, False, "recall of blast class 11 (lymphoblast) drops"),
    ],
)
def test_the_gate_compares_with_the_active_version_on_the_same_split(
    records: Any, candidate_metrics: dict[str, Any], promoted: bool, reason: str
) -> None:
    active = version(status=ModelStatus.ACTIVE, macro_f1=0.99)  # its stored metrics are not what counts
    candidate = version(**candidate_metrics)
    active_metrics = {"macro_f1": 0.60, "per_class": blast(0.8)}  # measured on the same snapshot's test split
    gate_and_promote(candidate, records, mode=PromoteMode.AUTO, active_metrics=active_metrics)
    active.refresh_from_db()
    assert (candidate.status == ModelStatus.ACTIVE) is promoted
    assert reason in candidate.status_reason
    assert candidate.gate["active_metrics"] == active_metrics
    assert candidate.gate["active_version"] == active.pk
    assert active.status == (ModelStatus.RETIRED if promoted else ModelStatus.ACTIVE)
    if promoted:
        assert candidate.replaced == active


def test_the_detector_and_countability_gates_use_their_main_metrics(records: Any) -> None:
    version(stage=DETECTOR.name, status=ModelStatus.ACTIVE)
    detector = version(stage=DETECTOR.name, ap50=0.80)
    gate_and_promote(detector, records, mode=PromoteMode.AUTO, active_metrics={"ap50": 0.85})
    assert detector.status == ModelStatus.CANDIDATE
    assert "ap50 0.8000 is lower" in detector.status_reason
    version(stage=COUNTABILITY.name, status=ModelStatus.ACTIVE)
    countability = version(stage=COUNTABILITY.name, accuracy=0.99, balanced_accuracy=0.80)
    active_countability = {"accuracy": 0.96, "balanced_accuracy": 0.90}
    gate_and_promote(countability, records, mode=PromoteMode.AUTO, active_metrics=active_countability)
    assert countability.status == ModelStatus.CANDIDATE
    assert "balanced_accuracy 0.8000 is lower" in countability.status_reason


def test_without_a_test_split_the_gate_is_undecided(training_env: Path) -> None:
    truth_field("V1", [(1, 1, 10, 10, 12, True)], split="val")
    val_only = snapshot_records(dataset_snapshot_create())
    version(status=ModelStatus.ACTIVE)
    candidate = version(macro_f1=0.9, per_class=blast(0.9))
    gate_and_promote(
        candidate, val_only, mode=PromoteMode.AUTO, active_metrics={"macro_f1": 0.5, "per_class": blast(0.5)}
    )
    assert candidate.status == ModelStatus.CANDIDATE
    assert candidate.gate["status"] == "undecided"
    assert "no test split" in candidate.status_reason


def test_promote_modes_never_and_force(records: Any) -> None:
    active = version(status=ModelStatus.ACTIVE)
    better = version(macro_f1=0.9, per_class=blast(0.9))
    gate_and_promote(better, records, mode=PromoteMode.NEVER, active_metrics={"macro_f1": 0.5, "per_class": blast(0.9)})
    assert better.status == ModelStatus.CANDIDATE
    assert better.status_reason.startswith("kept as candidate (promote=never); the gate would promote")
    worse = version(macro_f1=0.1)
    gate_and_promote(worse, records, mode=PromoteMode.FORCE, active_metrics={"macro_f1": 0.5})
    assert worse.status == ModelStatus.ACTIVE
    assert worse.status_reason.startswith("promoted by force")
    assert "lower" in worse.status_reason
    active.refresh_from_db()
    assert active.status == ModelStatus.RETIRED


def test_an_active_version_that_cannot_be_evaluated_keeps_the_candidate_back(records: Any) -> None:
    version(status=ModelStatus.ACTIVE)  # its checkpoint file does not exist
    candidate = version(macro_f1=0.9)
    gate_and_promote(candidate, records, mode=PromoteMode.AUTO)
    assert candidate.status == ModelStatus.CANDIDATE
    assert "could not be evaluated" in candidate.status_reason
    assert candidate.gate["active_error"]


def test_the_database_allows_one_active_version_per_stage() -> None:
    version(status=ModelStatus.ACTIVE)
    version(stage=DETECTOR.name, status=ModelStatus.ACTIVE)  # another stage: fine
    with pytest.raises(IntegrityError), transaction.atomic():
        version(status=ModelStatus.ACTIVE)


def test_promote_and_rollback_are_audited(make_user: Any) -> None:
    admin = make_user(Role.ADMIN)
    first = version(status=ModelStatus.ACTIVE)
    second = version()
    promoted = model_version_promote(version_id=second.pk, actor=admin, reason="better on the new test set")
    first.refresh_from_db()
    assert promoted.status == ModelStatus.ACTIVE
    assert promoted.replaced == first
    assert promoted.promoted_at
    assert first.status == ModelStatus.RETIRED
    assert first.retired_at
    assert "better on the new test set" in promoted.status_reason
    events = list(AuditEvent.objects.filter(entity="model_version").order_by("id"))
    assert [(e.action, e.entity_id) for e in events] == [
        ("model_version.retire", first.pk),
        ("model_version.promote", second.pk),
    ]
    assert events[1].actor == admin
    assert (events[1].before or {})["status"] == "candidate"
    assert (events[1].after or {})["status"] == "active"
    assert events[1].reason.endswith("better on the new test set")

    back = model_version_rollback(version_id=second.pk, actor=admin, reason="misses blasts in clinic")
    second.refresh_from_db()
    assert back == first
    assert back.status == ModelStatus.ACTIVE
    assert second.status == ModelStatus.RETIRED
    last = AuditEvent.objects.filter(entity="model_version").order_by("-id").first()
    assert last is not None
    assert last.action == "model_version.rollback"
    assert last.entity_id == first.pk
    assert last.actor == admin
    assert "misses blasts in clinic" in last.reason
    assert ModelVersion.objects.filter(stage=CLASSIFIER.name, status=ModelStatus.ACTIVE).count() == 1


def test_registry_changes_need_an_admin_a_reason_and_a_sensible_target(make_user: Any) -> None:
    admin, researcher = make_user(Role.ADMIN), make_user(Role.RESEARCHER)
    active = version(status=ModelStatus.ACTIVE)
    candidate = version()
    with pytest.raises(PermissionDenied):
        model_version_promote(version_id=candidate.pk, actor=researcher, reason="why not")
    with pytest.raises(ValidationFailed):
        model_version_promote(version_id=candidate.pk, actor=admin, reason=" ")
    with pytest.raises(StateConflict):
        model_version_promote(version_id=active.pk, actor=admin, reason="again")
    with pytest.raises(StateConflict):  # nothing it replaced
        model_version_rollback(version_id=active.pk, actor=admin, reason="undo")
    with pytest.raises(StateConflict):  # not active
        model_version_rollback(version_id=candidate.pk, actor=admin, reason="undo")
    other_stage = version(stage=DETECTOR.name)
    with pytest.raises(ValidationFailed):
        model_version_rollback(version_id=active.pk, actor=admin, reason="undo", to=other_stage.pk)
    assert model_version_rollback(version_id=active.pk, actor=admin, reason="undo", to=candidate.pk) == candidate
    assert not AuditEvent.objects.filter(actor=researcher).exists()


def test_a_promotion_pre_labels_fields_without_truth_after_commit_when_all_stages_are_active(
    make_user: Any, django_capture_on_commit_callbacks: Any, training_env: Path
) -> None:
    admin = make_user(Role.ADMIN)
    new_field = FieldFactory()
    truth_field("T1", [(1, 1, 10, 10, 12, True)])
    version(stage=DETECTOR.name, status=ModelStatus.ACTIVE)
    classifier = version()
    with django_capture_on_commit_callbacks(execute=True):
        model_version_promote(version_id=classifier.pk, actor=admin, reason="first classifier")
    assert not PrelabelJob.objects.exists(), "countability has no active version yet"
    countability = version(stage=COUNTABILITY.name)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        model_version_promote(version_id=countability.pk, actor=admin, reason="pipeline complete")
    assert not PrelabelJob.objects.exists(), "nothing is queued before the promotion commits"
    for callback in callbacks:
        callback()
    job = PrelabelJob.objects.get()
    assert job.trigger == PrelabelTrigger.PROMOTION
    assert job.field_count == 1
    assert list(job.items.values_list("field_id", flat=True)) == [new_field.pk]
    assert job.pipeline == {
        "detector": job.pipeline["detector"],
        "countability": countability.pk,
        "classifier": classifier.pk,
    }
