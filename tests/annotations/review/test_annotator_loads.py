"""Each annotator's open load, as the Assignment page shows it: assigned fields whose own set is not submitted."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import token_client
from tests.factories import AssignmentFactory, FieldFactory, submitted_set

pytestmark = pytest.mark.django_db


def test_open_load_counts_unsubmitted_assignments(adjudicator: Any, annotator: Any, second_annotator: Any) -> None:
    fields = [FieldFactory() for _ in range(3)]
    for field in fields:
        AssignmentFactory(field=field, annotator=annotator)
    submitted_set(fields[0], annotator, [])
    AssignmentFactory(field=fields[1], annotator=second_annotator)
    answer = token_client(adjudicator).get("/api/v1/assignments/loads")
    assert answer.status_code == 200
    loads = {row["username"]: row for row in answer.json()}
    assert loads[annotator.username]["open_assignments"] == 2
    assert loads[annotator.username]["assignments"] == 3
    assert loads[second_annotator.username]["open_assignments"] == 1
    assert adjudicator.username not in loads  # annotators only


def test_annotators_cannot_read_loads(annotator: Any) -> None:
    assert token_client(annotator).get("/api/v1/assignments/loads").status_code == 403
