"""Integers the API reads (issue 21): never a boolean, always inside the database's range, else 400 naming the input.

Regressions: `?field=<31 digits>` and `review-queue?case=<huge>` answered 500 (OverflowError on SQLite), and
`{"version": true}` submitted a set as if it said version 1.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from rest_framework import serializers

from aicell.api.fields import StrictIntegerField, db_integer_range, parse_strict_int
from aicell.errors import ValidationFailed
from annotations.models import AnnotationSet, AnnotationStatus, Cell
from tests.factories import AnnotationSetFactory, CaseFactory, CellFactory, FieldFactory

HUGE = "7131503448619593729522381357056"
PAST_64_BITS = [2**63, -(2**63) - 1, int(HUGE)]


@pytest.mark.parametrize("raw", [True, False, 1.0, 1.5, None, [1], {"v": 1}, "", "1.0", "1e3", "true", "0x10", "٣"])
def test_parse_refuses_anything_but_an_integer_naming_the_input(raw: Any) -> None:
    with pytest.raises(ValidationFailed) as refused:
        parse_strict_int(raw, "version")
    assert [error.field for error in refused.value.errors] == ["version"]


@pytest.mark.parametrize("raw", [*PAST_64_BITS, str(2**63), HUGE, "-" + HUGE])
def test_parse_refuses_what_no_column_holds(raw: Any) -> None:
    with pytest.raises(ValidationFailed, match="between"):
        parse_strict_int(raw, "field")


def test_parse_reads_integers_and_digit_strings_within_the_columns_range() -> None:
    assert parse_strict_int(" 42 ", "x") == 42
    assert parse_strict_int(2**63 - 1, "x") == 2**63 - 1
    assert parse_strict_int("-3", "x") == -3
    low, high = connection.ops.integer_field_range("PositiveIntegerField")
    assert db_integer_range("PositiveIntegerField") == (low, high)
    assert parse_strict_int(str(high), "version", column="PositiveIntegerField") == high
    with pytest.raises(ValidationFailed):
        parse_strict_int(high + 1, "version", column="PositiveIntegerField")
    with pytest.raises(ValidationFailed):
        parse_strict_int(-1, "version", column="PositiveIntegerField")


def test_the_serializer_field_refuses_booleans_and_out_of_range_values() -> None:
    class Body(serializers.Serializer):
        version = StrictIntegerField(column="PositiveIntegerField")
        count = StrictIntegerField(min_value=1, max_value=200)
        anything = StrictIntegerField(required=False)

    for bad in ({"version": True, "count": 3}, {"version": 1, "count": False}, {"version": -1, "count": 3}):
        body = Body(data=bad)
        assert not body.is_valid()
    body = Body(data={"version": 1, "count": 2, "anything": 2**63})
    assert not body.is_valid()
    assert set(body.errors) == {"anything"}
    assert Body(data={"version": "3", "count": 200, "anything": -(2**63)}).is_valid()


# --- through the API ------------------------------------------------------------------------------------------------


def _refused(response: Any, field: str, status: int = 400) -> None:
    assert response.status_code == status, (response.status_code, response.content[:300])
    assert field in [error["field"] for error in response.json()["errors"]], response.json()


@pytest.mark.django_db
@pytest.mark.parametrize("version", [True, False, 1.0, "true", 2**63, HUGE])
def test_submit_with_a_boolean_or_huge_version_is_refused_and_submits_nothing(
    client_for: Any, annotator: Any, version: Any
) -> None:
    own = AnnotationSetFactory(annotator=annotator, field=FieldFactory(width=640, height=480))
    CellFactory(annotation_set=own)
    assert own.version == 1
    client = client_for(annotator)
    _refused(client.post(f"/api/v1/annotation-sets/{own.pk}/submit", {"version": version}, format="json"), "version")
    assert AnnotationSet.objects.get(pk=own.pk).status != AnnotationStatus.SUBMITTED
    _refused(client.post(f"/api/v1/annotation-sets/{own.pk}/submit", HTTP_IF_MATCH=f'"{HUGE}"'), "version")
    assert AnnotationSet.objects.get(pk=own.pk).status != AnnotationStatus.SUBMITTED


@pytest.mark.django_db
def test_cell_writes_refuse_boolean_and_huge_versions(client_for: Any, annotator: Any) -> None:
    own = AnnotationSetFactory(annotator=annotator, field=FieldFactory(width=640, height=480))
    cell = CellFactory(annotation_set=own)
    client = client_for(annotator)
    _refused(client.patch(f"/api/v1/cells/{cell.pk}", {"x": 1, "version": True}, format="json"), "version")
    _refused(client.delete(f"/api/v1/cells/{cell.pk}?version={HUGE}"), "version")
    _refused(client.delete(f"/api/v1/cells/{cell.pk}?version=true"), "version")
    assert Cell.objects.filter(pk=cell.pk).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/api/v1/cells/?field={}", "field"),
        ("/api/v1/cells/?annotation_set={}", "annotation_set"),
        ("/api/v1/fields/?case={}", "case"),
        ("/api/v1/annotation-sets/?case={}", "case"),
        ("/api/v1/assignments/?annotator={}", "annotator"),
        ("/api/v1/assignments/?smear={}", "smear"),
        ("/api/v1/conflicts/?case={}", "case"),
        ("/api/v1/agreement?annotator={}", "annotator"),
        ("/api/v1/agreement?case={}", "case"),
        ("/api/v1/cases/{{case}}/differential/?rule_set={}", "rule_set"),
        ("/api/v1/review-queue?max_per_field=17013614&case={}", "case"),
        ("/api/v1/review-queue?max_per_field={}", "max_per_field"),
    ],
)
@pytest.mark.parametrize("value", [HUGE, str(2**63), str(-(2**63) - 1), "true"])
def test_integer_query_parameters_past_the_database_range_are_refused(
    client_for: Any, annotator: Any, path: str, name: str, value: str
) -> None:
    case = CaseFactory()
    response = client_for(annotator).get(path.format(value).replace("{case}", str(case.pk)))
    if value == "true" and name in ("field", "annotation_set", "case", "annotator", "smear"):
        assert response.status_code == 400, response.content[:300]
        return
    _refused(response, name)


@pytest.mark.django_db
@pytest.mark.parametrize("resource", ["cells", "fields", "cases", "annotation-sets", "assignments", "model-versions"])
def test_path_ids_past_the_database_range_are_not_found(client_for: Any, lab_admin: Any, resource: str) -> None:
    for value in (HUGE, str(2**63)):
        response = client_for(lab_admin).get(f"/api/v1/{resource}/{value}/")
        assert response.status_code == 404, (resource, response.status_code)
