"""Assignments (chosen or balanced automatically), the review settings, and accepting model suggestions."""

from __future__ import annotations

from typing import Any

import pytest

from aicell.roles import Role
from annotations.models import AnnotationKind, AnnotationSet, Assignment, AuditEvent, Field, FieldReview
from tests.annotations.review.review_api import annotate, assign, box, start_set, submit, version_of
from tests.factories import AssignmentFactory, FieldFactory, prediction_set, reviewed_field, submitted_set

pytestmark = pytest.mark.django_db


def test_a_field_takes_two_different_annotators_and_nobody_twice(
    client_for: Any, lab_admin: Any, annotator: Any, second_annotator: Any, make_user: Any, researcher: Any
) -> None:
    admin = client_for(lab_admin)
    field = FieldFactory()
    assign(admin, field.pk, annotator)

    twice = admin.post("/api/v1/assignments", {"field": field.pk, "annotator": annotator.pk}, format="json")
    assert twice.status_code == 400
    assert twice.json()["errors"][0]["field"] == "annotator"
    assert "already assigned" in twice.json()["detail"]
    not_an_annotator = admin.post("/api/v1/assignments", {"field": field.pk, "annotator": researcher.pk}, format="json")
    assert not_an_annotator.status_code == 400
    no_field = admin.post("/api/v1/assignments", {"field": 987654, "annotator": annotator.pk}, format="json")
    assert no_field.json()["errors"][0]["field"] == "field"
    assign(admin, field.pk, second_annotator)
    third = admin.post(
        "/api/v1/assignments", {"field": field.pk, "annotator": make_user(Role.ANNOTATOR).pk}, format="json"
    )
    assert third.status_code == 400
    assert "two annotators" in third.json()["detail"]
    assert Assignment.objects.filter(field=field).count() == 2


def test_a_reviewed_field_takes_no_new_annotator(
    client_for: Any, lab_admin: Any, annotator: Any, second_annotator: Any, make_user: Any
) -> None:
    field = reviewed_field(annotator, second_annotator, [], [])
    Assignment.objects.filter(field=field, annotator=second_annotator).delete()
    response = client_for(lab_admin).post(
        "/api/v1/assignments", {"field": field.pk, "annotator": make_user(Role.ANNOTATOR).pk}, format="json"
    )
    assert response.status_code == 400
    assert "cross-check has started" in response.json()["detail"]


def test_taking_a_field_back_discards_the_draft_and_records_it(client_for: Any, lab_admin: Any, annotator: Any) -> None:
    admin = client_for(lab_admin)
    field = FieldFactory()
    assignment = assign(admin, field.pk, annotator)
    set_id, _, (cell_id,) = annotate(client_for(annotator), field.pk, [box(10, 10)])

    assert admin.delete(f"/api/v1/assignments/{assignment['id']}").status_code == 204

    assert not AnnotationSet.objects.filter(pk=set_id).exists()
    assert Field.objects.get(pk=field.pk).status == "uploaded"
    event = AuditEvent.objects.get(action="assignment.delete")
    assert event.before is not None
    assert [cell["id"] for cell in event.before["draft"]["cells"]] == [cell_id]
    assert (event.actor, event.annotation_set_id) == (lab_admin, set_id)


def test_a_submitted_field_stays_with_its_annotator(client_for: Any, lab_admin: Any, annotator: Any) -> None:
    admin = client_for(lab_admin)
    field = FieldFactory()
    assignment = assign(admin, field.pk, annotator)
    set_id, version = start_set(client_for(annotator), field.pk)
    submit(client_for(annotator), set_id, version)

    refused = admin.delete(f"/api/v1/assignments/{assignment['id']}")
    assert refused.status_code == 409
    assert AnnotationSet.objects.filter(pk=set_id).exists()


def test_automatic_assignment_balances_open_work_and_takes_turns(
    client_for: Any, lab_admin: Any, make_user: Any
) -> None:
    busy, half_done, idle = (make_user(Role.ANNOTATOR) for _ in range(3))
    for _ in range(2):
        AssignmentFactory(annotator=busy)
    AssignmentFactory(annotator=half_done)
    submitted_set(FieldFactory(), half_done, [])  # finished work does not count as open
    f1, f2, f3 = FieldFactory(), FieldFactory(), FieldFactory()
    full = FieldFactory()
    for user in (busy, idle):
        AssignmentFactory(field=full, annotator=user)

    response = client_for(lab_admin).post(
        "/api/v1/assignments/auto", {"fields": [f1.pk, f2.pk, f3.pk, full.pk]}, format="json"
    )

    assert response.status_code == 201, response.json()
    made = [(row["field"], row["annotator"], row["side"]) for row in response.json()["created"]]
    # Open work before: busy 3 (two + the full field), half_done 1 (its submitted field does not count), idle 1.
    # f1: half_done and idle (1 each; half_done's last assignment is the older one); both now have 2.
    # f2: half_done and idle again (2 < 3). f3: all three have 3 now; busy's last assignment is the oldest.
    assert made == [
        (f1.pk, half_done.pk, "a"),
        (f1.pk, idle.pk, "b"),
        (f2.pk, half_done.pk, "a"),
        (f2.pk, idle.pk, "b"),
        (f3.pk, busy.pk, "a"),
        (f3.pk, half_done.pk, "b"),
    ]
    assert response.json()["skipped"] == [{"field": f"field {full.pk}", "reason": "already has two annotators"}]
    assert Field.objects.get(pk=f1.pk).status == "in_annotation"
    assert AuditEvent.objects.filter(action="assignment.create", field_id=f2.pk).count() == 2


def test_automatic_assignment_needs_two_annotators_and_names_its_fields(
    client_for: Any, lab_admin: Any, annotator: Any
) -> None:
    admin = client_for(lab_admin)
    field = FieldFactory()
    too_few = admin.post("/api/v1/assignments/auto", {"fields": [field.pk]}, format="json")
    assert too_few.status_code == 400
    assert f"field {field.pk} needs 2 more" in too_few.json()["detail"]
    assert admin.post("/api/v1/assignments/auto", {}, format="json").status_code == 400
    both = admin.post("/api/v1/assignments/auto", {"fields": [field.pk], "smear": field.smear_id}, format="json")
    assert both.status_code == 400
    assert not Assignment.objects.exists()


def test_automatic_assignment_of_a_smear(client_for: Any, lab_admin: Any, make_user: Any) -> None:
    users = [make_user(Role.ANNOTATOR) for _ in range(2)]
    field = FieldFactory()
    FieldFactory()  # another smear's field
    response = client_for(lab_admin).post(
        "/api/v1/assignments/auto",
        {"smear": field.smear_id, "annotators": [u.pk for u in users]},
        format="json",
    )
    assert response.status_code == 201
    assert {(row["field"], row["annotator"]) for row in response.json()["created"]} == {
        (field.pk, users[0].pk),
        (field.pk, users[1].pk),
    }


def test_review_settings_are_checked_recorded_and_used_by_the_next_cross_check(
    client_for: Any, lab_admin: Any, annotator: Any, second_annotator: Any
) -> None:
    admin = client_for(lab_admin)
    assert admin.get("/api/v1/review-settings").json()["iou_threshold"] == 0.5
    for bad in ({"iou_threshold": 0}, {"iou_threshold": 1.5}, {"iou_threshold": "high"}, {"show_prelabels": "yes"}):
        refused = admin.patch("/api/v1/review-settings", bad, format="json")
        assert refused.status_code == 400, bad
        assert refused.json()["errors"][0]["field"] == next(iter(bad))
    assert admin.patch("/api/v1/review-settings", {"threshold": 0.7}, format="json").status_code == 400

    changed = admin.patch("/api/v1/review-settings", {"iou_threshold": 0.9}, format="json")
    assert changed.status_code == 200
    assert changed.json()["iou_threshold"] == 0.9
    event = AuditEvent.objects.get(action="review_settings.update")
    assert (event.before, event.after) == (
        {"show_prelabels": True, "iou_threshold": 0.5},
        {"show_prelabels": True, "iou_threshold": 0.9},
    )

    # Boxes overlapping with IoU 0.77 pair at 0.5 but not at 0.9: two single boxes instead of one agreement.
    cell = {"x": 200, "y": 200, "width": 60, "height": 60, "cell_class_id": 12}
    field = reviewed_field(annotator, second_annotator, [cell], [{**cell, "x": 204, "y": 204}])
    assert FieldReview.objects.get(field=field).iou_threshold == 0.9
    assert sorted(field.conflicts.values_list("kind", flat=True)) == ["only_a", "only_b"]


def test_accepting_suggestions_copies_them_with_their_provenance(client_for: Any, annotator: Any) -> None:
    client = client_for(annotator)
    field = AssignmentFactory(annotator=annotator).field
    predictions = prediction_set(field, [{"x": 10, "y": 10}, {"x": 100, "y": 100, "countable": False}])
    first, second = predictions.cells.order_by("id")
    elsewhere = prediction_set(FieldFactory(), [{"x": 10, "y": 10}]).cells.get()
    set_id, version = start_set(client, field.pk)

    one = client.post(
        f"/api/v1/annotation-sets/{set_id}/accept", {"cells": [first.pk], "version": version}, format="json"
    )
    assert one.status_code == 200, one.json()
    version = version_of(one)
    everything = client.post(
        f"/api/v1/annotation-sets/{set_id}/accept", {"all": True, "version": version}, format="json"
    )
    assert everything.json()["skipped"] == [first.pk]
    (copy,) = everything.json()["created"]
    assert (copy["source_cell"], copy["x"], copy["countable"]) == (second.pk, 100.0, False)
    version = version_of(everything)
    assert version == 3  # one step per batch

    foreign = client.post(
        f"/api/v1/annotation-sets/{set_id}/accept", {"cells": [elsewhere.pk], "version": version}, format="json"
    )
    assert foreign.status_code == 400
    assert str(elsewhere.pk) in foreign.json()["detail"]
    stale = client.post(f"/api/v1/annotation-sets/{set_id}/accept", {"all": True, "version": 1}, format="json")
    assert stale.status_code == 409
    neither = client.post(f"/api/v1/annotation-sets/{set_id}/accept", {"version": version}, format="json")
    assert neither.status_code == 400
    assert AnnotationSet.objects.get(pk=set_id).cells.count() == 2
    events = AuditEvent.objects.filter(action="cell.accept_suggestion", annotation_set_id=set_id)
    assert sorted((e.after or {})["source_cell"] for e in events) == [first.pk, second.pk]


def test_accepting_needs_the_fields_predictions(client_for: Any, annotator: Any) -> None:
    client = client_for(annotator)
    field = AssignmentFactory(annotator=annotator).field
    set_id, version = start_set(client, field.pk)
    response = client.post(f"/api/v1/annotation-sets/{set_id}/accept", {"all": True, "version": version}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "all"
    assert not AnnotationSet.objects.filter(kind=AnnotationKind.PREDICTION).exists()
