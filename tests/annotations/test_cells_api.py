"""Editing one's own annotation set: version checks, box and class validation, ownership, audit."""

from typing import Any

import pytest
from django.db import connection, transaction

from annotations import services
from annotations.models import AnnotationSet, AuditEvent, Cell
from annotations.taxonomy import NUM_CLASSES
from tests.factories import AnnotationSetFactory, AssignmentFactory, CellFactory, FieldFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def own_set(annotator: Any) -> AnnotationSet:
    return AnnotationSetFactory(annotator=annotator, field=FieldFactory(width=640, height=480))


def test_annotator_starts_a_set_and_adds_moves_classifies_and_deletes_cells(client_for: Any, annotator: Any) -> None:
    client = client_for(annotator)
    field = AssignmentFactory(annotator=annotator).field
    created = client.post("/api/v1/annotation-sets", {"field": field.pk}, format="json")
    assert created.status_code == 201
    set_id, version = created.json()["id"], created.json()["version"]
    assert created["ETag"] == f'"{version}"'
    field.refresh_from_db()
    assert field.status == "in_annotation"

    cell = client.post(
        f"/api/v1/annotation-sets/{set_id}/cells",
        {"x": 10, "y": 20, "width": 60, "height": 50, "cell_class": 11, "version": version},
        format="json",
    )
    assert cell.status_code == 201, cell.json()
    cell_id, version = cell.json()["id"], int(cell["ETag"].strip('"'))
    moved = client.patch(
        f"/api/v1/cells/{cell_id}", {"x": 15, "cell_class": 12}, format="json", HTTP_IF_MATCH=f'"{version}"'
    )
    assert moved.status_code == 200, moved.json()
    assert (moved.json()["x"], moved.json()["cell_class"]) == (15.0, 12)
    version = int(moved["ETag"].strip('"'))
    deleted = client.delete(f"/api/v1/cells/{cell_id}", HTTP_IF_MATCH=str(version))
    assert deleted.status_code == 204
    assert not Cell.objects.filter(pk=cell_id).exists()

    actions = list(AuditEvent.objects.filter(annotation_set_id=set_id).values_list("action", flat=True))
    assert actions == ["annotation_set.create", "cell.create", "cell.update", "cell.delete"]
    update = AuditEvent.objects.get(annotation_set_id=set_id, action="cell.update")
    before, after = update.before or {}, update.after or {}
    assert (before["x"], after["x"], before["cell_class"], after["cell_class"]) == (10.0, 15.0, 11, 12)
    assert update.actor == annotator


def test_a_stale_write_answers_409_with_the_current_state_and_changes_nothing(
    client_for: Any, annotator: Any, own_set: AnnotationSet
) -> None:
    client = client_for(annotator)
    cell = CellFactory(annotation_set=own_set, x=10, cell_class_id=0)
    read_version = own_set.version
    first = client.patch(f"/api/v1/cells/{cell.pk}", {"cell_class": 1, "version": read_version}, format="json")
    assert first.status_code == 200
    stale = client.patch(f"/api/v1/cells/{cell.pk}", {"x": 99, "version": read_version}, format="json")
    assert stale.status_code == 409
    body = stale.json()
    assert body["current_version"] == read_version + 1
    assert body["current"]["cells"] == [
        {
            "id": cell.pk,
            "x": 10.0,
            "y": 20.0,
            "width": 50.0,
            "height": 40.0,
            "countable": True,
            "cell_class": 1,
            "source_cell": None,
            "review_outcome": "",
        }
    ]
    cell.refresh_from_db()
    assert (cell.x, cell.cell_class_id) == (10.0, 1)


def test_a_write_without_a_version_is_refused(client_for: Any, annotator: Any, own_set: AnnotationSet) -> None:
    response = client_for(annotator).post(
        f"/api/v1/annotation-sets/{own_set.pk}/cells", {"x": 1, "y": 1, "width": 5, "height": 5}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "version"


@pytest.mark.parametrize(
    ("box", "field_name"),
    [
        ({"x": 600, "y": 10, "width": 50, "height": 50}, "width"),
        ({"x": 10, "y": 450, "width": 50, "height": 50}, "height"),
        ({"x": -3, "y": 10, "width": 50, "height": 50}, "x"),
        ({"x": 10, "y": 10, "width": 0, "height": 50}, "width"),
        ({"x": 10, "y": 10, "width": 50}, "height"),
        ({"x": "left", "y": 10, "width": 50, "height": 50}, "x"),
    ],
    ids=["right-edge", "bottom-edge", "negative-x", "zero-width", "missing-height", "not-a-number"],
)
def test_boxes_outside_the_image_are_refused_with_the_field_named(
    client_for: Any, annotator: Any, own_set: AnnotationSet, box: dict[str, Any], field_name: str
) -> None:
    response = client_for(annotator).post(
        f"/api/v1/annotation-sets/{own_set.pk}/cells", {**box, "version": own_set.version}, format="json"
    )
    assert response.status_code == 400, response.json()
    assert field_name in [error["field"] for error in response.json()["errors"]]
    assert not own_set.cells.exists()
    own_set.refresh_from_db()
    assert own_set.version == 1


def test_non_finite_coordinates_are_refused(client_for: Any, annotator: Any, own_set: AnnotationSet) -> None:
    body = '{"x": NaN, "y": 1, "width": 5, "height": 5, "version": 1}'
    response = client_for(annotator).post(
        f"/api/v1/annotation-sets/{own_set.pk}/cells", body, content_type="application/json"
    )
    assert response.status_code == 400
    assert not own_set.cells.exists()


@pytest.mark.parametrize("cell_class", [NUM_CLASSES, -1, 99, "lymphoblast", True])
def test_class_ids_outside_the_taxonomy_are_refused(
    client_for: Any, annotator: Any, own_set: AnnotationSet, cell_class: Any
) -> None:
    cell = CellFactory(annotation_set=own_set)
    response = client_for(annotator).patch(
        f"/api/v1/cells/{cell.pk}", {"cell_class": cell_class, "version": own_set.version}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "cell_class"


def test_unknown_attributes_are_refused_not_dropped(client_for: Any, annotator: Any, own_set: AnnotationSet) -> None:
    cell = CellFactory(annotation_set=own_set)
    response = client_for(annotator).patch(
        f"/api/v1/cells/{cell.pk}", {"annotation_set": 999, "version": own_set.version}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"] == [{"field": "annotation_set", "reason": "not a cell attribute"}]


def test_writing_into_another_annotators_set_is_forbidden(
    client_for: Any, second_annotator: Any, own_set: AnnotationSet, adjudicator: Any
) -> None:
    cell = CellFactory(annotation_set=own_set)
    # The other annotator cannot even see the set; an adjudicator sees it but may not write through this path.
    response = client_for(second_annotator).patch(f"/api/v1/cells/{cell.pk}", {"x": 1, "version": 1}, format="json")
    assert response.status_code == 404
    response = client_for(adjudicator).patch(f"/api/v1/cells/{cell.pk}", {"x": 1, "version": 1}, format="json")
    assert response.status_code == 403


def test_submit_locks_the_set(client_for: Any, annotator: Any, own_set: AnnotationSet) -> None:
    client = client_for(annotator)
    cell = CellFactory(annotation_set=own_set, cell_class_id=None)
    refused = client.post(f"/api/v1/annotation-sets/{own_set.pk}/submit", {"version": own_set.version}, format="json")
    assert refused.status_code == 400
    assert "no class" in refused.json()["detail"]
    Cell.objects.filter(pk=cell.pk).update(countable=False)
    submitted = client.post(f"/api/v1/annotation-sets/{own_set.pk}/submit", {"version": own_set.version}, format="json")
    assert submitted.status_code == 200
    assert submitted.json()["status"] == "submitted"
    locked = client.patch(f"/api/v1/cells/{cell.pk}", {"x": 1, "version": submitted.json()["version"]}, format="json")
    assert locked.status_code == 403
    assert "submitted" in locked.json()["detail"]


def test_a_second_set_on_the_same_field_is_a_conflict(client_for: Any, annotator: Any, own_set: AnnotationSet) -> None:
    AssignmentFactory(field=own_set.field, annotator=annotator)
    response = client_for(annotator).post("/api/v1/annotation-sets", {"field": own_set.field_id}, format="json")
    assert response.status_code == 409
    assert response.json()["existing_annotation_set_id"] == own_set.pk


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.parametrize("method", ["patch", "delete"])
def test_a_writes_etag_is_the_version_it_produced_even_when_another_write_follows_at_once(
    committed_db: None, client_for: Any, annotator: Any, method: str
) -> None:
    """The other tab's write commits right after this one (before this response is made): the ETag answered must
    still be this write's version, or this client would next write over a change it never saw (issue 21: the
    concurrency suite's "41 != 40")."""
    own = AnnotationSetFactory(annotator=annotator, field=FieldFactory(width=640, height=480))
    target, other = (CellFactory(annotation_set=own, x=10, cell_class_id=0) for _ in range(2))
    start = own.version

    def the_other_tab_writes() -> None:
        services.cell_update(cell_id=other.pk, expected_version=start + 1, changes={"x": 99.0}, actor=annotator)

    def after_the_audit(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        result = execute(sql, params, many, context)
        if sql.startswith('INSERT INTO "annotations_auditevent"') and not interleaved:
            interleaved.append(True)
            transaction.on_commit(the_other_tab_writes)
        return result

    interleaved: list[bool] = []
    client = client_for(annotator)
    with connection.execute_wrapper(after_the_audit):
        if method == "patch":
            response = client.patch(f"/api/v1/cells/{target.pk}", {"x": 20}, format="json", HTTP_IF_MATCH=f'"{start}"')
        else:
            response = client.delete(f"/api/v1/cells/{target.pk}", HTTP_IF_MATCH=f'"{start}"')
    assert response.status_code in (200, 204), response.content
    own.refresh_from_db()
    assert own.version == start + 2  # the other tab's write happened in between
    assert response["ETag"] == f'"{start + 1}"'
