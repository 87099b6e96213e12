"""Double review through the HTTP API: assignment -> blind annotation -> cross-check -> adjudication -> consensus,
with the field's state, the conflicts' versions and the audit trail checked at each step."""

from __future__ import annotations

from typing import Any

import pytest

from annotations.models import AnnotationSet, AuditEvent, Cell, Field
from tests.annotations.review.review_api import (
    annotate,
    assign,
    box,
    conflicts_of,
    draw,
    field_status,
    resolve,
    start_set,
    submit,
    version_of,
)
from tests.factories import FieldFactory, prediction_set

pytestmark = pytest.mark.django_db

LYMPHOBLAST, LYMPHOCYTE, MYELOBLAST, MONOCYTE = 11, 12, 0, 16


@pytest.fixture
def people(client_for: Any, annotator: Any, second_annotator: Any, adjudicator: Any, lab_admin: Any) -> dict[str, Any]:
    return {
        "a": client_for(annotator),
        "b": client_for(second_annotator),
        "adjudicator": client_for(adjudicator),
        "admin": client_for(lab_admin),
        "user_a": annotator,
        "user_b": second_annotator,
        "user_adjudicator": adjudicator,
    }


def test_the_whole_path_from_assignment_to_consensus_for_two_users(people: dict[str, Any]) -> None:
    a, b, adjudicator, admin = people["a"], people["b"], people["adjudicator"], people["admin"]
    field = FieldFactory(width=640, height=480)
    suggestion = prediction_set(field, [{"x": 20, "y": 20, "width": 80, "height": 80, "cell_class_id": LYMPHOBLAST}])
    assert field_status(admin, field.pk) == "uploaded"

    # Assignment: two distinct annotators, A first.
    assert assign(admin, field.pk, people["user_a"])["side"] == "a"
    assert assign(admin, field.pk, people["user_b"])["side"] == "b"
    assert field_status(admin, field.pk) == "in_annotation"
    worklist = a.get("/api/v1/assignments?mine=1").json()["results"]
    assert [(row["field"], row["progress"]) for row in worklist] == [(field.pk, "not_started")]

    # A: accepts the model's suggestion, draws, moves, reclassifies, deletes.
    set_a, version = start_set(a, field.pk)
    accepted = a.post(
        f"/api/v1/annotation-sets/{set_a}/accept",
        {"cells": [suggestion.cells.get().pk], "version": version},
        format="json",
    )
    assert accepted.status_code == 200, accepted.json()
    a1 = accepted.json()["created"][0]
    assert (a1["source_cell"], a1["cell_class"], a1["x"]) == (suggestion.cells.get().pk, LYMPHOBLAST, 20.0)
    version = version_of(accepted)
    a2, version = draw(a, set_a, version, box(190, 200, cell_class=LYMPHOBLAST))
    moved = a.patch(f"/api/v1/cells/{a2}", {"x": 200, "cell_class": LYMPHOCYTE, "version": version}, format="json")
    assert moved.status_code == 200
    version = version_of(moved)
    a3, version = draw(a, set_a, version, box(400, 50, size=50, cell_class=MYELOBLAST))
    stray, version = draw(a, set_a, version, box(500, 400))
    deleted = a.delete(f"/api/v1/cells/{stray}?version={version}")
    assert deleted.status_code == 204
    submit(a, set_a, version_of(deleted))
    assert field_status(admin, field.pk) == "in_annotation"

    # B, blind to A: one box of A's with another class, one nearly equal box, one of its own.
    set_b, version, (b1, b2, b3) = annotate(
        b,
        field.pk,
        [
            {**box(24, 20, size=80), "cell_class": MYELOBLAST},
            box(204, 204, cell_class=LYMPHOCYTE),
            box(500, 300, size=40, cell_class=MONOCYTE),
        ],
    )
    submit(b, set_b, version)
    assert field_status(admin, field.pk) == "in_crosscheck"

    # Cross-check: both see A's and B's versions side by side.
    conflicts = {tuple(c["kinds"]): c for c in conflicts_of(a, field.pk)}
    assert set(conflicts) == {("class_conflict",), ("only_a",), ("only_b",)}
    class_conflict = conflicts[("class_conflict",)]
    assert (class_conflict["a"]["cell"]["id"], class_conflict["b"]["cell"]["id"]) == (a1["id"], b1)
    assert (class_conflict["a"]["cell"]["cell_class"], class_conflict["b"]["cell"]["cell_class"]) == (11, 0)
    assert class_conflict["your_side"] == "a"
    assert conflicts_of(b, field.pk)[0]["your_side"] == "b"

    conceded = resolve(a, class_conflict, "concede")
    assert conceded.status_code == 200, conceded.json()
    assert (conceded.json()["status"], conceded.json()["resolution"]) == ("resolved", "b")
    assert field_status(admin, field.pk) == "in_crosscheck"

    only_a = conflicts[("only_a",)]
    kept = resolve(a, only_a, "keep")
    assert (kept.json()["status"], kept.json()["a"]["decision"]) == ("open", "keep")
    assert resolve(b, kept.json(), "concede").json()["resolution"] == "a"

    only_b = conflicts[("only_b",)]
    kept = resolve(a, only_b, "keep")
    escalated = resolve(b, kept.json(), "keep", reason="a monocyte, clearly")
    assert escalated.json()["status"] == "escalated"
    assert field_status(admin, field.pk) == "in_adjudication"

    # Adjudication: final; the last decision builds the consensus.
    decided = resolve(adjudicator, escalated.json(), "none", reason="a smudge, not a cell")
    assert decided.status_code == 200, decided.json()
    assert (decided.json()["status"], decided.json()["final_cell"]) == ("adjudicated", None)
    assert field_status(admin, field.pk) == "consensus"

    consensus = a.get(f"/api/v1/fields/{field.pk}/consensus")
    assert consensus.status_code == 200
    assert (consensus.json()["kind"], consensus.json()["status"]) == ("consensus", "locked")
    cells = {cell["source_cell"]: cell for cell in consensus.json()["cells"]}
    assert set(cells) == {a2, b1, a3}
    # Agreed pair: the mean of A's (200, 200) and B's (204, 204) boxes.
    agreed = cells[a2]
    assert (agreed["x"], agreed["y"], agreed["width"], agreed["cell_class"]) == (202.0, 202.0, 60.0, LYMPHOCYTE)
    assert agreed["review_outcome"] == "agreed"
    # A conceded the class: B's class on the mean box of (20, 20) and (24, 20).
    assert (cells[b1]["x"], cells[b1]["y"], cells[b1]["cell_class"]) == (22.0, 20.0, MYELOBLAST)
    assert cells[b1]["review_outcome"] == "resolved"
    # B conceded A's box: as A drew it.
    assert (cells[a3]["x"], cells[a3]["width"], cells[a3]["review_outcome"]) == (400.0, 50.0, "resolved")
    assert b3 not in cells

    # Nobody writes past this point without the proper route.
    consensus_cell = consensus.json()["cells"][0]["id"]
    denied = a.patch(f"/api/v1/cells/{consensus_cell}", {"x": 1, "version": 1}, format="json")
    assert denied.status_code == 403
    assert "adjudicator" in denied.json()["detail"]
    own = a.patch(f"/api/v1/cells/{a2}", {"x": 1, "version": 99}, format="json")
    assert own.status_code == 403
    assert "submitted" in own.json()["detail"]
    others = a.patch(f"/api/v1/cells/{b2}", {"x": 1, "version": 99}, format="json")
    assert others.status_code == 403
    assert "another annotator" in others.json()["detail"]

    # The audit trail has every step, in order, with who did it.
    history = admin.get(f"/api/v1/fields/{field.pk}/history?page_size=100").json()["results"]
    assert [event["action"] for event in history] == [
        "assignment.create",
        "assignment.create",
        "annotation_set.create",
        "cell.accept_suggestion",
        "cell.create",
        "cell.update",
        "cell.create",
        "cell.create",
        "cell.delete",
        "annotation_set.submit",
        "annotation_set.create",
        "cell.create",
        "cell.create",
        "cell.create",
        "annotation_set.submit",
        "review.start",
        "conflict.concede",
        "conflict.keep",
        "conflict.concede",
        "conflict.keep",
        "conflict.keep",
        "conflict.adjudicate",
        "consensus.create",
    ]
    by_action = {event["action"]: event for event in history}
    concede = next(e for e in history if e["action"] == "conflict.concede")
    assert concede["actor"] == people["user_a"].pk
    assert (concede["before"]["status"], concede["after"]["status"]) == ("open", "resolved")
    assert by_action["conflict.adjudicate"]["reason"] == "a smudge, not a cell"
    assert by_action["conflict.adjudicate"]["actor"] == people["user_adjudicator"].pk
    assert by_action["review.start"]["after"]["conflicts"] == 3
    assert len(by_action["consensus.create"]["after"]["cells"]) == 3
    # Nothing was removed from the submitted sets.
    assert set(Cell.objects.filter(annotation_set=set_a).values_list("pk", flat=True)) == {a1["id"], a2, a3}
    assert Cell.objects.filter(annotation_set=set_b).count() == 3


def test_a_stale_write_answers_409_with_the_current_state_and_nothing_is_lost(people: dict[str, Any]) -> None:
    a, admin = people["a"], people["admin"]
    field = FieldFactory()
    assign(admin, field.pk, people["user_a"])
    set_id, read_version = start_set(a, field.pk)
    # Two tabs read the same version; the first one's write wins, the second is told what the set is now.
    first, version = draw(a, set_id, read_version, box(10, 10))
    stale = a.post(
        f"/api/v1/annotation-sets/{set_id}/cells", box(100, 100), format="json", HTTP_IF_MATCH=f'"{read_version}"'
    )
    assert stale.status_code == 409
    assert stale.json()["current_version"] == version
    assert [cell["id"] for cell in stale.json()["current"]["cells"]] == [first]
    second, _ = draw(a, set_id, stale.json()["current_version"], box(100, 100))
    cells = a.get(f"/api/v1/annotation-sets/{set_id}/cells").json()
    assert [cell["id"] for cell in cells] == [first, second]


def test_a_stale_conflict_decision_answers_409_and_changes_nothing(people: dict[str, Any]) -> None:
    a, b, admin = people["a"], people["b"], people["admin"]
    field = FieldFactory()
    for user in (people["user_a"], people["user_b"]):
        assign(admin, field.pk, user)
    set_a, version_a, _ = annotate(a, field.pk, [box(10, 10, cell_class=LYMPHOBLAST)])
    set_b, version_b, _ = annotate(b, field.pk, [box(10, 10, cell_class=LYMPHOCYTE)])
    submit(a, set_a, version_a)
    submit(b, set_b, version_b)
    (read_by_both,) = conflicts_of(a, field.pk)

    assert resolve(a, read_by_both, "keep").status_code == 200
    stale = resolve(b, read_by_both, "concede")
    assert stale.status_code == 409
    assert stale.json()["current"]["decision_a"] == "keep"
    assert stale.json()["current"]["status"] == "open"
    assert stale.json()["current_version"] == read_by_both["version"] + 1
    (now,) = conflicts_of(b, field.pk)
    assert (now["b"]["decision"], now["status"]) == ("", "open")
    # Read again, B's decision goes through; a decided conflict then refuses every further decision.
    done = resolve(b, now, "concede")
    assert (done.json()["status"], done.json()["resolution"]) == ("resolved", "a")
    late = resolve(a, done.json(), "keep")
    assert late.status_code == 409
    assert "resolved" in late.json()["detail"]
    missing_version = a.post(f"/api/v1/conflicts/{now['id']}/resolve", {"decision": "keep"}, format="json")
    assert missing_version.status_code == 400


def test_empty_sets_on_both_sides_go_straight_to_an_empty_consensus(people: dict[str, Any]) -> None:
    a, b, admin = people["a"], people["b"], people["admin"]
    field = FieldFactory()
    for user in (people["user_a"], people["user_b"]):
        assign(admin, field.pk, user)
    for client in (a, b):
        set_id, version = start_set(client, field.pk)
        submit(client, set_id, version)

    assert field_status(admin, field.pk) == "consensus"
    assert conflicts_of(a, field.pk) == []
    consensus = b.get(f"/api/v1/fields/{field.pk}/consensus").json()
    assert (consensus["status"], consensus["cells"], consensus["cell_count"]) == ("locked", [], 0)


def test_one_empty_side_makes_every_box_of_the_other_a_conflict(people: dict[str, Any]) -> None:
    a, b, admin = people["a"], people["b"], people["admin"]
    field = FieldFactory()
    for user in (people["user_a"], people["user_b"]):
        assign(admin, field.pk, user)
    set_a, version_a = start_set(a, field.pk)
    set_b, version_b, cells_b = annotate(b, field.pk, [box(10, 10), box(200, 10)])
    submit(a, set_a, version_a)
    submit(b, set_b, version_b)

    conflicts = conflicts_of(a, field.pk)
    assert [(c["kinds"], c["a"]["cell"], c["b"]["cell"]["id"]) for c in conflicts] == [
        (["only_b"], None, cells_b[0]),
        (["only_b"], None, cells_b[1]),
    ]


def test_one_big_box_over_two_small_ones_pairs_once(people: dict[str, Any]) -> None:
    a, b, admin = people["a"], people["b"], people["admin"]
    field = FieldFactory()
    for user in (people["user_a"], people["user_b"]):
        assign(admin, field.pk, user)
    # A's 80x40 box covers both of B's 40x40 boxes by half: IoU 0.5 with each, one pair and one box only in B.
    set_a, version_a, (big,) = annotate(a, field.pk, [{**box(100, 100), "width": 80, "height": 40}])
    set_b, version_b, small = annotate(b, field.pk, [box(100, 100, size=40), box(140, 100, size=40)])
    submit(a, set_a, version_a)
    submit(b, set_b, version_b)

    (only_b,) = conflicts_of(a, field.pk)
    assert only_b["kinds"] == ["only_b"]
    assert only_b["b"]["cell"]["id"] in small
    review = Field.objects.get(pk=field.pk).review
    (pair,) = [o for o in review.match["outcomes"] if o["key_a"] is not None]
    assert (pair["key_a"], pair["iou"], pair["kinds"]) == (big, 0.5, ["agree"])
    assert {pair["key_b"], only_b["b"]["cell"]["id"]} == set(small)


def test_a_pair_differing_in_class_and_countability_is_one_conflict_with_both_flags(people: dict[str, Any]) -> None:
    a, b, admin = people["a"], people["b"], people["admin"]
    field = FieldFactory()
    for user in (people["user_a"], people["user_b"]):
        assign(admin, field.pk, user)
    set_a, version_a, _ = annotate(a, field.pk, [box(10, 10, cell_class=LYMPHOBLAST)])
    set_b, version_b, _ = annotate(b, field.pk, [box(10, 10, cell_class=MYELOBLAST, countable=False)])
    submit(a, set_a, version_a)
    submit(b, set_b, version_b)

    (conflict,) = conflicts_of(b, field.pk)
    assert conflict["kinds"] == ["class_conflict", "countability_conflict"]
    assert [c["id"] for c in admin.get("/api/v1/conflicts?kind=countability_conflict").json()["results"]] == [
        conflict["id"]
    ]
    assert admin.get("/api/v1/conflicts?kind=only_a").json()["count"] == 0


def test_adjudicator_decisions_are_checked_and_a_custom_cell_is_taken_as_given(people: dict[str, Any]) -> None:
    a, b, adjudicator, admin = people["a"], people["b"], people["adjudicator"], people["admin"]
    field = FieldFactory(width=640, height=480)
    for user in (people["user_a"], people["user_b"]):
        assign(admin, field.pk, user)
    set_a, version_a, _ = annotate(a, field.pk, [box(10, 10, cell_class=LYMPHOBLAST)])
    set_b, version_b, _ = annotate(b, field.pk, [box(10, 10, cell_class=LYMPHOCYTE)])
    submit(a, set_a, version_a)
    submit(b, set_b, version_b)
    (conflict,) = conflicts_of(adjudicator, field.pk)

    assert resolve(a, conflict, "a").status_code == 400  # annotators concede or keep
    assert resolve(adjudicator, conflict, "keep").status_code == 400  # adjudicators decide
    assert resolve(admin, conflict, "a").status_code == 403
    no_cell = resolve(adjudicator, conflict, "custom")
    assert no_cell.status_code == 400
    assert no_cell.json()["errors"][0]["field"] == "cell"
    outside = resolve(adjudicator, conflict, "custom", cell={**box(600, 10), "cell_class": 11})
    assert outside.status_code == 400
    assert "width" in [error["field"] for error in outside.json()["errors"]]
    unclassified = resolve(adjudicator, conflict, "custom", cell=box(10, 10, cell_class=None))
    assert unclassified.json()["errors"][0]["field"] == "cell.cell_class"
    assert field_status(admin, field.pk) == "in_crosscheck"

    decided = resolve(adjudicator, conflict, "custom", cell=box(12, 8, size=58, cell_class=MYELOBLAST))
    assert decided.status_code == 200, decided.json()
    consensus = a.get(f"/api/v1/fields/{field.pk}/consensus").json()
    (cell,) = consensus["cells"]
    expected = (12.0, 8.0, 58.0, MYELOBLAST, None, "adjudicated")
    assert (
        cell["x"],
        cell["y"],
        cell["width"],
        cell["cell_class"],
        cell["source_cell"],
        cell["review_outcome"],
    ) == expected


def test_reopening_the_consensus_needs_an_adjudicator_and_a_reason_and_every_change_is_recorded(
    people: dict[str, Any],
) -> None:
    a, b, adjudicator = people["a"], people["b"], people["adjudicator"]
    admin = people["admin"]
    field = FieldFactory()
    for user in (people["user_a"], people["user_b"]):
        assign(admin, field.pk, user)
    set_a, version_a, _ = annotate(a, field.pk, [box(10, 10)])
    set_b, version_b, _ = annotate(b, field.pk, [box(10, 10)])
    submit(a, set_a, version_a)
    submit(b, set_b, version_b)
    consensus = adjudicator.get(f"/api/v1/fields/{field.pk}/consensus")
    version, (cell,) = version_of(consensus), consensus.json()["cells"]
    reopen = f"/api/v1/fields/{field.pk}/consensus/reopen"

    assert a.post(reopen, {"reason": "x", "version": version}, format="json").status_code == 403
    assert adjudicator.post(reopen, {"version": version}, format="json").status_code == 400
    assert adjudicator.post(reopen, {"reason": "  ", "version": version}, format="json").status_code == 400
    locked = adjudicator.patch(f"/api/v1/cells/{cell['id']}", {"x": 11, "version": version}, format="json")
    assert locked.status_code == 403
    assert "locked" in locked.json()["detail"]
    assert adjudicator.post(reopen, {"reason": "x", "version": version + 5}, format="json").status_code == 409

    reopened = adjudicator.post(reopen, {"reason": "the lymphoblast was missed", "version": version}, format="json")
    assert reopened.status_code == 200, reopened.json()
    assert reopened.json()["status"] == "draft"
    assert field_status(admin, field.pk) == "in_adjudication"
    version = version_of(reopened)
    changed = adjudicator.patch(f"/api/v1/cells/{cell['id']}", {"cell_class": 0, "version": version}, format="json")
    assert changed.status_code == 200, changed.json()
    assert (changed.json()["cell_class"], changed.json()["review_outcome"]) == (0, "adjudicated")
    assert (
        a.patch(f"/api/v1/cells/{cell['id']}", {"x": 1, "version": version_of(changed)}, format="json").status_code
        == 403
    )
    added = adjudicator.post(
        f"/api/v1/annotation-sets/{consensus.json()['id']}/cells",
        {**box(300, 300), "version": version_of(changed), "reason": "a second lymphoblast"},
        format="json",
    )
    assert added.status_code == 201, added.json()
    assert added.json()["review_outcome"] == "adjudicated"

    lock = adjudicator.post(f"/api/v1/fields/{field.pk}/consensus/lock", {"version": version_of(added)}, format="json")
    assert lock.status_code == 200
    assert lock.json()["status"] == "locked"
    assert field_status(admin, field.pk) == "consensus"

    events = list(AuditEvent.objects.filter(field_id=field.pk).order_by("id"))
    tail = [(e.action, e.reason) for e in events[-4:]]
    assert tail == [
        ("consensus.reopen", "the lymphoblast was missed"),
        ("cell.update", "the lymphoblast was missed"),
        ("cell.create", "a second lymphoblast"),
        ("consensus.lock", "the lymphoblast was missed"),
    ]
    update = events[-3]
    assert (update.before or {}).get("cell_class") == 11
    assert (update.after or {}).get("cell_class") == 0


def test_an_adjudicator_who_annotated_the_field_does_not_decide_on_it(
    client_for: Any, make_user: Any, lab_admin: Any, adjudicator: Any
) -> None:
    from aicell.roles import Role

    both = make_user(Role.ANNOTATOR, Role.ADJUDICATOR)
    other = make_user(Role.ANNOTATOR)
    admin = client_for(lab_admin)
    field = FieldFactory()
    for user in (both, other):
        assign(admin, field.pk, user)
    for user, cell_class in ((both, LYMPHOBLAST), (other, LYMPHOCYTE)):
        set_id, version, _ = annotate(client_for(user), field.pk, [box(10, 10, cell_class=cell_class)])
        submit(client_for(user), set_id, version)
    (conflict,) = conflicts_of(client_for(both), field.pk)

    # On their own field they answer as annotator A; an adjudicator's decision is refused as not theirs.
    assert resolve(client_for(both), conflict, "b").status_code == 400
    assert resolve(client_for(both), conflict, "concede").json()["resolution"] == "b"
    consensus = client_for(adjudicator).get(f"/api/v1/fields/{field.pk}/consensus")
    reopen = {"reason": "recheck", "version": version_of(consensus)}
    refused = client_for(both).post(f"/api/v1/fields/{field.pk}/consensus/reopen", reopen, format="json")
    assert refused.status_code == 403
    assert "annotated this field" in refused.json()["detail"]


def test_the_annotators_own_set_is_required_to_be_on_an_assigned_field(people: dict[str, Any]) -> None:
    field = FieldFactory()
    refused = people["a"].post("/api/v1/annotation-sets", {"field": field.pk}, format="json")
    assert refused.status_code == 403
    assert "not assigned to you" in refused.json()["detail"]
    assert not AnnotationSet.objects.filter(field=field).exists()
