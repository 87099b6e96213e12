"""Cell-level blind double review through the review queue: two reviewers decide the same queued cell blind;
agreement is truth, disagreement a conflict of the cross-check (concede/keep, two keeps -> the adjudicator)."""

from typing import Any

import pytest

from aicell.roles import Role
from annotations.models import (
    AnnotationKind,
    AuditEvent,
    CellReview,
    CellReviewStatus,
    Conflict,
    ConflictStatus,
    ReviewOutcome,
)
from annotations.truth import cell_truth
from tests.factories import AnnotationSetFactory, FieldFactory, ModelVersionFactory
from tests.inference.test_review_queue_api import ids, predicted

pytestmark = pytest.mark.django_db


@pytest.fixture
def classifier() -> Any:
    return ModelVersionFactory(stage="classifier", status="active")


@pytest.fixture
def queued(classifier: Any) -> Any:
    (cell,) = predicted(FieldFactory(), classifier, [{"entropy": 1.5, "cell_class": 11}])
    return cell


def decide(client: Any, cell: Any, verdict: str = "class", cell_class: int | None = 11, **extra: Any) -> Any:
    body = {"cell": cell.pk, "verdict": verdict, **extra}
    if verdict == "class":
        body["cell_class"] = cell_class
    return client.post("/api/v1/review-queue/decisions", body, format="json")


def hold_and_decide(client: Any, cell: Any, **kwargs: Any) -> Any:
    assert cell.pk in ids(client)
    response = decide(client, cell, **kwargs)
    assert response.status_code == 201, response.json()
    return response.json()


def test_two_reviewers_who_agree_make_cell_truth_blind_until_both_decided(
    client_for: Any, annotator: Any, second_annotator: Any, make_user: Any, queued: Any
) -> None:
    a, b = client_for(annotator), client_for(second_annotator)
    # A predicted cell is in the queue's indexes under its version until its second decision.
    assert queued.review_version_id == queued.annotation_set.model_version_id
    first = hold_and_decide(a, queued, box={"x": 10, "y": 10, "width": 52, "height": 50})
    queued.refresh_from_db()
    assert queued.review_version_id == queued.annotation_set.model_version_id
    assert first["status"] == "open"
    assert first["truth"] is None
    assert [d["reviewer"] for d in first["decisions"]] == [annotator.pk]
    review_url = f"/api/v1/cell-reviews/{first['id']}"
    # Blind: B (not decided yet) and any other annotator get 404; A sees only their own decision.
    assert b.get(review_url).status_code == 404
    assert client_for(make_user(Role.ANNOTATOR)).get(review_url).status_code == 404
    second = hold_and_decide(b, queued, box={"x": 12, "y": 10, "width": 48, "height": 50})
    assert second["status"] == "truth"
    assert second["truth"]["verdict"] == "class"
    assert second["truth"]["cell_class"] == 11
    assert second["truth"]["outcome"] == ReviewOutcome.AGREED
    assert (second["truth"]["x"], second["truth"]["width"]) == (11, 50)  # the mean of the two boxes
    assert {d["reviewer"] for d in a.get(review_url).json()["decisions"]} == {annotator.pk, second_annotator.pk}
    review = CellReview.objects.get()
    assert review.prediction["cell_class"] == 11
    assert review.prediction["model_version"] == queued.annotation_set.model_version_id
    assert list(cell_truth()) == [review]
    actions = list(AuditEvent.objects.filter(field_id=queued.annotation_set.field_id).values_list("action", flat=True))
    assert actions == ["cell_decision.create", "cell_decision.create", "cell_truth.create"]
    # Decided cells never come back to either reviewer, and leave the queue's indexes for good.
    assert ids(a) == []
    assert ids(b) == []
    queued.refresh_from_db()
    assert queued.review_version_id is None


def test_disagreement_goes_to_the_cross_check_and_a_concession_settles_it(
    client_for: Any, annotator: Any, second_annotator: Any, queued: Any
) -> None:
    a, b = client_for(annotator), client_for(second_annotator)
    hold_and_decide(a, queued, cell_class=11)
    second = hold_and_decide(b, queued, verdict="uncountable")
    assert second["status"] == "in_crosscheck"
    assert second["conflict"] is not None
    conflict = a.get(f"/api/v1/conflicts/{second['conflict']}").json()
    assert conflict["cell_review"] == second["id"]
    assert conflict["your_side"] == "a"
    assert conflict["a"]["cell"]["verdict"] == "class"
    assert conflict["b"]["cell"]["verdict"] == "uncountable"
    assert set(conflict["kinds"]) == {"class_conflict", "countability_conflict"}
    response = b.post(
        f"/api/v1/conflicts/{conflict['id']}/resolve", {"decision": "concede", "version": 1}, format="json"
    )
    assert response.status_code == 200, response.json()
    review = CellReview.objects.get()
    assert (review.status, review.verdict, review.cell_class_id, review.outcome) == (
        CellReviewStatus.TRUTH,
        "class",
        11,
        ReviewOutcome.RESOLVED,
    )
    # The field itself is untouched by cell-level review.
    assert queued.annotation_set.field.status == type(queued.annotation_set.field).status.field.default


def test_two_keeps_escalate_to_the_adjudicators_queue_who_decides(
    client_for: Any, annotator: Any, second_annotator: Any, adjudicator: Any, queued: Any
) -> None:
    a, b = client_for(annotator), client_for(second_annotator)
    hold_and_decide(a, queued, cell_class=11)
    conflict_id = hold_and_decide(b, queued, verdict="not_a_cell")["conflict"]
    for client, version in ((a, 1), (b, 2)):
        response = client.post(
            f"/api/v1/conflicts/{conflict_id}/resolve", {"decision": "keep", "version": version}, format="json"
        )
        assert response.status_code == 200, response.json()
    assert Conflict.objects.get().status == ConflictStatus.ESCALATED
    judge = client_for(adjudicator)
    batch = judge.get("/api/v1/review-queue").json()
    assert [conflict["id"] for conflict in batch["conflicts"]] == [conflict_id]
    assert client_for(annotator).get("/api/v1/review-queue").json()["conflicts"] == []
    response = judge.post(
        f"/api/v1/conflicts/{conflict_id}/resolve",
        {"decision": "none", "reason": "debris", "version": 3},
        format="json",
    )
    assert response.status_code == 200, response.json()
    review = CellReview.objects.get()
    assert (review.status, review.verdict, review.cell_class_id, review.outcome) == (
        CellReviewStatus.TRUTH,
        "not_a_cell",
        None,
        ReviewOutcome.ADJUDICATED,
    )
    assert judge.get("/api/v1/review-queue").json()["conflicts"] == []


def test_bad_decisions_answer_409_with_the_reason(
    client_for: Any, annotator: Any, classifier: Any, queued: Any
) -> None:
    a = client_for(annotator)
    not_held = decide(a, queued)
    assert not_held.status_code == 409
    assert not_held.json()["reason"] == "not_held"
    hold_and_decide(a, queued)
    twice = decide(a, queued)
    assert twice.status_code == 409
    assert twice.json()["reason"] == "already_decided"
    (other,) = predicted(FieldFactory(), classifier, [{"entropy": 1.0}])
    assert ids(a) == [other.pk]
    classifier.status = "retired"
    classifier.save()
    ModelVersionFactory(stage="classifier", status="active")
    stale = decide(a, other)
    assert stale.status_code == 409
    assert stale.json()["reason"] == "model_version_not_active"
    bad = decide(a, other, verdict="class", cell_class=None)
    assert bad.status_code in (400, 409)


def test_undo_takes_back_a_lone_decision_and_the_cell_is_held_again(
    client_for: Any, annotator: Any, second_annotator: Any, queued: Any
) -> None:
    a = client_for(annotator)
    hold_and_decide(a, queued)
    assert a.delete(f"/api/v1/review-queue/decisions/{queued.pk}").status_code == 204
    assert ids(a) == [queued.pk]
    hold_and_decide(a, queued, verdict="uncountable")
    hold_and_decide(client_for(second_annotator), queued, verdict="uncountable")
    late = a.delete(f"/api/v1/review-queue/decisions/{queued.pk}")
    assert late.status_code == 409
    assert CellReview.objects.get().verdict == "uncountable"


def test_field_level_truth_is_the_stronger_truth(
    client_for: Any, annotator: Any, second_annotator: Any, queued: Any
) -> None:
    hold_and_decide(client_for(annotator), queued)
    hold_and_decide(client_for(second_annotator), queued)
    assert cell_truth().count() == 1
    AnnotationSetFactory(
        field=queued.annotation_set.field, kind=AnnotationKind.CONSENSUS, annotator=None, status="locked"
    )
    assert cell_truth().count() == 0
