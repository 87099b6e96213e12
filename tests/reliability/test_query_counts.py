"""Every list endpoint under /api/v1 runs the same number of SQL queries whatever the page size: a page of 2 and a
page of 20 (over more than 20 rows) cost alike, for each role whose view of the list differs. An N+1 (a query per
row, e.g. a serializer reaching through an un-joined relation) makes the counts differ and fails the test."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from aicell.models import JobStatus
from aicell.roles import Role
from annotations.counting.rules import FAB_RULE_SET
from annotations.models import AnnotationKind, AuditEvent, CellDecision, CellReview, ExportJob, ImportJob, RuleSet
from annotations.taxonomy import NUM_CLASSES
from inference.core.selection import REVIEW_STRATEGIES
from inference.models import PrelabelItem, PrelabelJob
from tests.conftest import token_client
from tests.factories import (
    AnnotationSetFactory,
    AssignmentFactory,
    CaseFactory,
    CellFactory,
    FieldFactory,
    ModelVersionFactory,
    PatientFactory,
    PredictionSetFactory,
    SmearFactory,
    TruthSetFactory,
    UserFactory,
    reviewed_field,
)
from tests.reliability.attack_world import in_process_requests
from tests.reliability.figures import record_figure
from training.models import (
    DatasetSnapshot,
    PretrainingJob,
    RetrainPolicy,
    StartingPoint,
    StartingPointKind,
    TrainingJob,
)

ROWS = 22  # more than the larger page
SMALL, LARGE = 2, 20


def predicted(field: Any, model_version: Any) -> None:
    """The active classifier's pre-labels of a field, with the uncertainty the review queue orders by."""
    predictions = PredictionSetFactory(field=field, model_version=model_version)
    for index in range(2):
        uncertainty = {"entropy": 0.5 + index / 10, "margin": 0.3, "least_confidence": 0.4}
        probabilities = [0.0] * NUM_CLASSES
        probabilities[11] = 1.0
        CellFactory(
            annotation_set=predictions,
            x=10.0 + 60 * index,
            entropy=uncertainty["entropy"],
            margin=0.3,
            confidence=0.6,
            mutual_information=0.1,
            detector_score=0.9,
            scores={"probabilities": probabilities, "p_countable": 0.9, "uncertainty": uncertainty},
        )


class Lab:
    def __init__(self) -> None:
        self.users = {role: UserFactory(roles=[role]) for role in Role}
        annotator, co_annotator = self.users[Role.ANNOTATOR], UserFactory(roles=[Role.ANNOTATOR])
        admin = self.users[Role.ADMIN]
        patients = [PatientFactory() for _ in range(ROWS)]
        cases = [CaseFactory(patient=patient) for patient in patients]
        smears = [SmearFactory(case=case) for case in cases]
        self.smear = smears[0]
        self.fields = [FieldFactory(smear=smears[i % 3], width=640, height=480) for i in range(ROWS)]
        classifier = ModelVersionFactory(stage="classifier", status="active")
        for field in self.fields:
            AssignmentFactory(field=field, annotator=annotator)
            AssignmentFactory(field=field, annotator=co_annotator)
            own = AnnotationSetFactory(field=field, annotator=annotator)
            CellFactory(annotation_set=own)
            predicted(field, classifier)
        for field in self.fields:  # cell-level review: two agreeing decisions on a queued cell of each field
            review = CellReview.objects.create(
                field=field,
                status="truth",
                verdict="uncountable",
                outcome="agreed",
                x=1.0,
                y=1.0,
                width=9.0,
                height=9.0,
            )
            for slot, reviewer in ((1, annotator), (2, co_annotator)):
                CellDecision.objects.create(
                    review=review, reviewer=reviewer, slot=slot, verdict="uncountable", x=1.0, y=1.0, width=9, height=9
                )
        for _ in range(ROWS):  # truth, which researchers read
            truth = TruthSetFactory(field=FieldFactory(smear=self.smear), kind=AnnotationKind.IMPORTED)
            CellFactory(annotation_set=truth)
        # One reviewed field with a conflict per box (each side drew its boxes with other classes).
        boxes_a = [{"x": 25.0 * i, "y": 10.0, "width": 20.0, "height": 20.0, "cell_class_id": 11} for i in range(ROWS)]
        boxes_b = [{**box, "cell_class_id": 12} for box in boxes_a]
        self.review_field = reviewed_field(annotator, co_annotator, boxes_a, boxes_b, smear=self.smear)
        self.small_review_field = reviewed_field(annotator, co_annotator, boxes_a[:2], boxes_b[:2], smear=smears[1])
        self.own_set = own  # the annotator's set of the last field: one cell
        self.big_set = AnnotationSetFactory(field=self.fields[0], annotator=co_annotator)
        for i in range(ROWS):
            CellFactory(annotation_set=self.big_set, x=25.0 * i)
        self.reviewed_smear = smears[2]
        for _ in range(6):
            reviewed_field(annotator, co_annotator, boxes_a[:3], boxes_b[:3], smear=self.reviewed_smear)
        for i in range(ROWS):
            AuditEvent.objects.create(
                actor=[annotator, admin][i % 2],
                action="note",
                entity="field",
                entity_id=0,
                field_id=self.review_field.pk,
            )
        for i in range(ROWS):
            RuleSet.objects.create(name=f"variant{i}", version=1, content=FAB_RULE_SET, created_by=admin)
            ExportJob.objects.create(created_by=self.users[Role.RESEARCHER], status=JobStatus.SUCCEEDED)
            ImportJob.objects.create(created_by=admin, case=cases[i], format="voc")
        self.prelabel_job = PrelabelJob.objects.create(pipeline={}, field_count=ROWS)
        for field in self.fields:
            PrelabelItem.objects.create(job=self.prelabel_job, field=field, field_id_at_start=field.pk)
        for _ in range(ROWS):
            PrelabelJob.objects.create(pipeline={}, field_count=1)
        for i in range(ROWS):  # the registry: snapshots, finished training jobs and the versions they made
            snapshot = DatasetSnapshot.objects.create(
                seed=0, ratios=[0.7, 0.1, 0.2], content_hash=f"{i:064d}", file=f"s{i}.jsonl", created_by=admin
            )
            job = TrainingJob.objects.create(
                stages=["detector"],
                profile="cpu",
                created_by=admin,
                status=JobStatus.SUCCEEDED,
                dataset_snapshot=snapshot,
            )
            ModelVersionFactory(dataset_snapshot=snapshot, training_job=job)
            RetrainPolicy.objects.create(name=f"policy{i}", last_job=job)
            PretrainingJob.objects.create(
                stage="classifier", profile="cpu", name=f"ssl-{i}", created_by=admin, status=JobStatus.SUCCEEDED
            )
            StartingPoint.objects.create(
                name=f"ssl-{i}", arch="resnet50", kind=StartingPointKind.SELF_SUPERVISED, created_by=admin
            )


@pytest.fixture(scope="module")
def lab(django_db_setup: None, django_db_blocker: Any) -> Iterator[Lab]:
    from django.db import transaction

    with django_db_blocker.unblock(), in_process_requests():
        atomic = transaction.atomic()
        atomic.__enter__()
        try:
            yield Lab()
        finally:
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)


READERS = (Role.ANNOTATOR, Role.ADJUDICATOR, Role.RESEARCHER)
LISTS: dict[str, tuple[Role, ...]] = {
    "/api/v1/patients": READERS,
    "/api/v1/cases": READERS,
    "/api/v1/smears": READERS,
    "/api/v1/fields": READERS,
    "/api/v1/annotation-sets": READERS,
    "/api/v1/cells": READERS,
    "/api/v1/assignments": (Role.ANNOTATOR, Role.ADJUDICATOR),
    "/api/v1/conflicts": (Role.ANNOTATOR, Role.ADJUDICATOR),
    "/api/v1/cell-reviews": (Role.ANNOTATOR, Role.ADJUDICATOR),
    "/api/v1/rule-sets": (Role.RESEARCHER, Role.ADMIN),
    "/api/v1/exports": (Role.RESEARCHER, Role.ADMIN),
    "/api/v1/imports": (Role.ADMIN,),
    "/api/v1/prelabel-jobs": (Role.ADJUDICATOR,),
    "/api/v1/prelabel-jobs/{prelabel_job}/items": (Role.ADJUDICATOR,),
    "/api/v1/fields/{review_field}/history": (Role.ANNOTATOR, Role.ADJUDICATOR),
    "/api/v1/dataset-snapshots": (Role.RESEARCHER, Role.ADMIN),
    "/api/v1/training-jobs": (Role.RESEARCHER, Role.ADMIN),
    "/api/v1/model-versions": (Role.RESEARCHER, Role.ADMIN),
    "/api/v1/training-schedules": (Role.RESEARCHER, Role.ADMIN),
    "/api/v1/pretraining-jobs": (Role.RESEARCHER, Role.ADMIN),
    "/api/v1/starting-points": (Role.RESEARCHER, Role.ADMIN),
    "/api/v1/users": (Role.ADMIN,),
}
# Lists that are not paginated, sized by their own parameter.
SIZED: dict[str, tuple[str, tuple[Role, ...]]] = {
    "/api/v1/review-queue?strategy=entropy&balance=false&max_per_field=50": (
        "limit",
        (Role.ANNOTATOR, Role.ADJUDICATOR),
    ),
}


def count_queries(client: Any, path: str) -> tuple[int, int, list[str]]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path)
    assert response.status_code == 200, (path, response.status_code, response.content[:300])
    body = response.json()
    rows = len(body["results"]) if isinstance(body, dict) and "results" in body else len(body)
    if isinstance(body, dict) and "cells" in body:  # the review queue's batch
        rows = len(body["cells"])
    return len(captured), rows, [query["sql"] for query in captured.captured_queries]


def assert_constant(client: Any, template: str, size_parameter: str, lab: Lab) -> int:
    path = template.format(prelabel_job=lab.prelabel_job.pk, review_field=lab.review_field.pk)
    joiner = "&" if "?" in path else "?"
    client.get(f"{path}{joiner}{size_parameter}=1")  # warm-up: per-process caches, settings rows
    small, small_rows, _ = count_queries(client, f"{path}{joiner}{size_parameter}={SMALL}")
    large, large_rows, queries = count_queries(client, f"{path}{joiner}{size_parameter}={LARGE}")
    assert large_rows > small_rows, (path, small_rows, large_rows)  # the world is big enough for this list
    assert small == large, (path, small, large, queries)
    return large


@pytest.mark.django_db
@pytest.mark.parametrize("path", sorted(LISTS))
def test_a_list_costs_the_same_queries_whatever_its_page_size(path: str, lab: Lab) -> None:
    for role in LISTS[path]:
        assert_constant(token_client(lab.users[role]), path, "page_size", lab)


@pytest.mark.django_db
@pytest.mark.parametrize("path", sorted(SIZED))
def test_an_unpaginated_list_costs_the_same_queries_whatever_its_size(path: str, lab: Lab) -> None:
    parameter, roles = SIZED[path]
    for role in roles:
        assert_constant(token_client(lab.users[role]), path, parameter, lab)


def queries_of(client: Any, path: str) -> tuple[int, list[str]]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path)
    assert response.status_code == 200, (path, response.status_code, response.content[:300])
    return len(captured), [query["sql"] for query in captured.captured_queries]


@pytest.mark.django_db
def test_lists_of_one_object_cost_the_same_whatever_the_objects_size(lab: Lab) -> None:
    """Lists without pages, whose length is the object's: a field's conflicts, a set's cells, the agreement."""
    adjudicator = token_client(lab.users[Role.ADJUDICATOR])
    pairs = [
        (f"/api/v1/fields/{lab.small_review_field.pk}/conflicts", f"/api/v1/fields/{lab.review_field.pk}/conflicts"),
        (f"/api/v1/annotation-sets/{lab.own_set.pk}/cells", f"/api/v1/annotation-sets/{lab.big_set.pk}/cells"),
        (f"/api/v1/agreement?field={lab.small_review_field.pk}", f"/api/v1/agreement?smear={lab.reviewed_smear.pk}"),
    ]
    for small_path, large_path in pairs:
        adjudicator.get(small_path)  # warm-up
        small, _ = queries_of(adjudicator, small_path)
        large, queries = queries_of(adjudicator, large_path)
        assert small == large, (small_path, large_path, small, large, queries)


@pytest.mark.django_db
def test_the_review_strategies_cost_the_same_queries_whatever_their_number(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The strategy list is the registry's table, not a page: more rows must not mean more queries."""
    path = "/api/v1/review-strategies"
    annotator = token_client(lab.users[Role.ANNOTATOR])
    annotator.get(path)  # warm-up
    few, _ = queries_of(annotator, path)
    for index in range(LARGE):
        name = f"extra_{index}"
        monkeypatch.setitem(REVIEW_STRATEGIES, name, dataclasses.replace(REVIEW_STRATEGIES["margin"], name=name))
    many, queries = queries_of(annotator, path)
    assert len(annotator.get(path).json()) > LARGE
    assert few == many, (few, many, queries)


@pytest.mark.django_db
def test_every_paginated_list_endpoint_is_measured(lab: Lab) -> None:
    """A new list endpoint must be added above: its route is compared with the schema's paginated operations."""
    from tests.reliability.test_fuzzing import OPERATIONS

    paginated = {
        operation.path.rstrip("/").replace("{id}", "{}")
        for operation in OPERATIONS.values()
        if operation.method.upper() == "GET" and any(p.name == "page_size" for p in operation.iter_parameters())
    }
    measured = {path.split("?")[0].replace("{prelabel_job}", "{}").replace("{review_field}", "{}") for path in LISTS}
    assert paginated <= measured, paginated - measured
    record_figure("query counts", "list endpoints with constant queries", len(LISTS) + len(SIZED) + 4)
