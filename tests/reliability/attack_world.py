"""A small lab every attack test runs against: one user per role, a case with fields in each review state, jobs of
every kind. `seeded_world` builds it once per test module inside an outer transaction that is rolled back at the
end (like Django's setUpTestData), so each test's own writes roll back to it and nothing is left behind."""

from __future__ import annotations

import contextlib
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.core.files.base import ContentFile
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from django.test import override_settings
from rest_framework.authtoken.models import Token

from aicell.models import JobStatus
from aicell.roles import Role
from annotations.models import AnnotationKind, AnnotationStatus, ExportJob, ImportJob, RuleSet
from annotations.review.services import consensus_reopen
from inference.models import PrelabelItem, PrelabelJob
from tests.factories import (
    AnnotationSetFactory,
    AssignmentFactory,
    CaseFactory,
    CellFactory,
    FieldFactory,
    ModelVersionFactory,
    PatientFactory,
    SmearFactory,
    UserFactory,
    prediction_set,
    reviewed_field,
)
from training.models import (
    DatasetSnapshot,
    PretrainingJob,
    RetrainPolicy,
    StartingPoint,
    StartingPointKind,
    TrainingJob,
)

ANONYMOUS = "anonymous"
ROLES: tuple[str, ...] = (*(role.value for role in Role), ANONYMOUS)
CELL = {"x": 10.0, "y": 20.0, "width": 50.0, "height": 40.0, "cell_class_id": 11}


@dataclass
class World:
    users: dict[str, Any]
    tokens: dict[str, str]
    objects: dict[str, Any] = field(default_factory=dict)

    def headers(self, role: str) -> dict[str, str]:
        return {} if role == ANONYMOUS else {"Authorization": f"Token {self.tokens[role]}"}

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["objects"][name]
        except KeyError:
            raise AttributeError(name) from None


def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def build_world() -> World:
    users = {role.value: UserFactory(roles=[role]) for role in Role}
    tokens = {name: Token.objects.create(user=user).key for name, user in users.items()}
    world = World(users=users, tokens=tokens)
    annotator, adjudicator = users["annotator"], users["adjudicator"]
    co_annotator = UserFactory(roles=[Role.ANNOTATOR])
    patient = PatientFactory()
    case = CaseFactory(patient=patient, notes="collected at the ward")
    smear = SmearFactory(case=case)
    field_ = FieldFactory(smear=smear)
    AssignmentFactory(field=field_, annotator=annotator)
    own_set = AnnotationSetFactory(field=field_, annotator=annotator)
    cell = CellFactory(annotation_set=own_set)
    prediction_set(field_, [{"x": 100, "y": 100}])
    review_field = reviewed_field(annotator, co_annotator, [CELL], [{**CELL, "cell_class_id": 12}], smear=smear)
    consensus_field = reviewed_field(annotator, co_annotator, [CELL], [CELL], smear=smear)
    reopened_field = reviewed_field(annotator, co_annotator, [CELL], [CELL], smear=smear)
    consensus_reopen(field_id=reopened_field.pk, expected_version=1, reason="recount", actor=adjudicator)
    truth = AnnotationSetFactory(
        field=FieldFactory(smear=smear), kind=AnnotationKind.IMPORTED, annotator=None, status=AnnotationStatus.LOCKED
    )
    CellFactory(annotation_set=truth)
    prelabel_job = PrelabelJob.objects.create(pipeline={}, field_count=1)
    PrelabelItem.objects.create(job=prelabel_job, field=field_, field_id_at_start=field_.pk)
    export = ExportJob.objects.create(
        created_by=users["researcher"],
        status=JobStatus.SUCCEEDED,
        file=ContentFile(_zip({"annotations/instances_train.json": b"{}"}), name="export.zip"),
    )
    import_job = ImportJob.objects.create(created_by=users["admin"], case=case, format="voc")
    snapshot = DatasetSnapshot.objects.create(
        seed=0, ratios=[0.7, 0.1, 0.2], content_hash="0" * 64, file="snapshot.jsonl", created_by=users["admin"]
    )
    training_job = TrainingJob.objects.create(
        stages=["detector"], profile="cpu", created_by=users["admin"], status=JobStatus.SUCCEEDED
    )
    model_version = ModelVersionFactory(dataset_snapshot=snapshot, training_job=training_job)
    pretraining_job = PretrainingJob.objects.create(
        stage="classifier", profile="cpu", name="ssl-world", created_by=users["admin"], status=JobStatus.SUCCEEDED
    )
    starting_point = StartingPoint.objects.create(
        name="ssl-world", arch="resnet50", kind=StartingPointKind.SELF_SUPERVISED, created_by=users["admin"]
    )
    world.objects.update(
        co_annotator=co_annotator,
        patient=patient,
        case=case,
        smear=smear,
        field=field_,
        annotation_set=own_set,
        cell=cell,
        assignment=field_.assignments.get(),
        review_field=review_field,
        conflict=review_field.conflicts.first(),
        consensus_field=consensus_field,
        reopened_field=reopened_field,
        truth=truth,
        rule_set=RuleSet.objects.get(name="fab", version=1),
        prelabel_job=prelabel_job,
        export=export,
        import_job=import_job,
        dataset_snapshot=snapshot,
        training_job=training_job,
        model_version=model_version,
        pretraining_job=pretraining_job,
        starting_point=starting_point,
        retrain_policy=RetrainPolicy.objects.get(name="nightly"),
    )
    return world


def seeded_id(world: World, path: str) -> int:
    """The id of the seeded object an operation path names, e.g. /api/v1/fields/{id}/consensus/ -> a field that
    has a consensus."""
    resource, _, action = path.removeprefix("/api/v1/").partition("/{id}")
    action = action.strip("/")
    if resource == "fields":
        by_action = {
            "conflicts": world.review_field,
            "history": world.review_field,
            "consensus": world.consensus_field,
            "consensus/reopen": world.consensus_field,
            "consensus/lock": world.reopened_field,
        }
        return int(by_action.get(action, world.field).pk)
    if resource == "cell-classes":
        return 11
    if resource == "cell-reviews":  # the world queues no cell; the reads still answer (404, never 500)
        return 987654
    objects = {
        "patients": world.patient,
        "cases": world.case,
        "smears": world.smear,
        "annotation-sets": world.annotation_set,
        "cells": world.cell,
        "prelabel-jobs": world.prelabel_job,
        "assignments": world.assignment,
        "conflicts": world.conflict,
        "rule-sets": world.rule_set,
        "exports": world.export,
        "imports": world.import_job,
        "dataset-snapshots": world.dataset_snapshot,
        "training-jobs": world.training_job,
        "model-versions": world.model_version,
        "training-schedules": world.retrain_policy,
        "pretraining-jobs": world.pretraining_job,
        "starting-points": world.starting_point,
        "users": world.users["annotator"],
    }
    return int(objects[resource].pk)


@contextlib.contextmanager
def in_process_requests() -> Iterator[None]:
    """Requests sent straight into the WSGI handler run on the test's own connection and transaction: Django must
    not close that connection when a request starts or ends (its test client does the same)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@contextlib.contextmanager
def seeded_world(django_db_blocker: Any, media_root: Path) -> Iterator[World]:
    """The world, committed to nothing: built in an outer transaction rolled back when the block ends."""
    with django_db_blocker.unblock(), override_settings(MEDIA_ROOT=media_root), in_process_requests():
        atomic = transaction.atomic()
        atomic.__enter__()
        try:
            yield build_world()
        finally:
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)
