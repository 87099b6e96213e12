"""Each role's home summary (`GET /api/v1/home`): what needs them now."""

from __future__ import annotations

from typing import Any

import pytest

from aicell.models import JobStatus
from annotations.models import Conflict, ConflictStatus, ExportJob, FieldStatus
from tests.conftest import token_client
from tests.factories import AssignmentFactory, FieldFactory, SmearFactory, reviewed_field
from training.models import TrainingJob

pytestmark = pytest.mark.django_db


def test_admin_sees_unassigned_fields_jobs_and_storage(lab_admin: Any, annotator: Any) -> None:
    smear = SmearFactory()
    waiting = [FieldFactory(smear=smear) for _ in range(3)]
    AssignmentFactory(field=waiting[0], annotator=annotator)
    TrainingJob.objects.create(stages=["detector"], profile="cpu", status=JobStatus.RUNNING)
    TrainingJob.objects.create(stages=["detector"], profile="cpu", status=JobStatus.FAILED, error="out of memory")
    summary = token_client(lab_admin).get("/api/v1/home").json()
    block = summary["admin"]
    assert block["fields_waiting_for_assignment"] == 2
    assert block["running_jobs"]["count"] == 1
    assert block["failed_jobs"]["count"] == 1
    assert block["failed_jobs"]["recent"][0]["message"] == "out of memory"
    assert block["storage"]["fields"] == 3
    assert block["storage"]["image_bytes"] > 0
    assert "annotator" not in summary


def test_annotator_sees_assignments_and_conflicts_waiting(annotator: Any, second_annotator: Any) -> None:
    field = FieldFactory()
    AssignmentFactory(field=field, annotator=annotator)
    summary = token_client(annotator).get("/api/v1/home").json()
    assert summary["annotator"]["assigned_fields"] == 1
    assert summary["annotator"]["fields_to_annotate"] == 1
    assert summary["annotator"]["conflicts_waiting"] == 0
    assert "admin" not in summary


def test_adjudicator_sees_escalated_conflicts(adjudicator: Any, annotator: Any, second_annotator: Any) -> None:
    field = reviewed_field(
        annotator,
        second_annotator,
        [{"x": 10, "y": 10, "width": 20, "height": 20, "cell_class_id": 11}],
        [{"x": 10, "y": 10, "width": 20, "height": 20, "cell_class_id": 12}],
    )
    conflicts = Conflict.objects.filter(field=field)
    assert conflicts.count() == 1
    before = token_client(annotator).get("/api/v1/home").json()["annotator"]
    assert before["conflicts_waiting"] == 1
    conflicts.update(status=ConflictStatus.ESCALATED, decision_a="keep", decision_b="keep")
    field.status = FieldStatus.IN_ADJUDICATION
    field.save()
    block = token_client(adjudicator).get("/api/v1/home").json()["adjudicator"]
    assert block["escalated_conflicts"] == 1
    assert block["fields_in_adjudication"] == 1


def test_researcher_sees_cases_and_own_exports(researcher: Any) -> None:
    SmearFactory()
    ExportJob.objects.create(created_by=researcher, status=JobStatus.SUCCEEDED)
    block = token_client(researcher).get("/api/v1/home").json()["researcher"]
    assert block["cases"] == 1
    assert block["exports"] == 1
    assert block["exports_ready"] == 1


def test_home_needs_a_login(client: Any) -> None:
    assert client.get("/api/v1/home").status_code in (401, 403)
