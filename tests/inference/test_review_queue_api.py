"""GET /api/v1/review-queue: a reviewer's batch of predicted cells of the active classifier, most uncertain first,
balanced across classes from a pool built per class; a cell is held by at most two reviewers (its two blind
decisions), never twice by the same one."""

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from aicell.roles import Role
from annotations.models import AnnotationKind
from annotations.taxonomy import NUM_CLASSES
from inference.models import ReviewClaim
from tests.factories import AnnotationSetFactory, CellFactory, FieldFactory, ModelVersionFactory

pytestmark = pytest.mark.django_db

STRATEGIES = "entropy, margin, least_confidence, disagreement, detector, countability, random"


def predicted(field: Any, model_version: Any, cells: list[dict[str, Any]]) -> list[Any]:
    """A prediction set of `field` by `model_version`, with cells carrying explicit uncertainty values."""
    prediction_set = AnnotationSetFactory(
        field=field, kind=AnnotationKind.PREDICTION, annotator=None, model_version=model_version, status="locked"
    )
    made = []
    for index, cell in enumerate(cells):
        uncertainty = {
            "entropy": cell["entropy"],
            "margin": cell.get("margin", 0.5),
            "least_confidence": 1 - cell.get("confidence", 0.5),
            "mutual_information": cell.get("mutual_information", 0.0),
            "detector": 1 - cell.get("detector_score", 0.9),
        }
        probabilities = [0.0] * NUM_CLASSES
        probabilities[cell.get("cell_class", 12)] = 1.0
        made.append(
            CellFactory(
                annotation_set=prediction_set,
                x=10 + 60 * index,
                cell_class_id=cell.get("cell_class", 12),
                entropy=cell["entropy"],
                margin=uncertainty["margin"],
                confidence=cell.get("confidence", 0.5),
                mutual_information=uncertainty["mutual_information"],
                detector_score=cell.get("detector_score", 0.9),
                countability_margin=abs(2 * cell.get("p_countable", 0.9) - 1),
                scores={
                    "probabilities": probabilities,
                    "p_countable": cell.get("p_countable", 0.9),
                    "uncertainty": uncertainty,
                },
            )
        )
    return made


@pytest.fixture
def classifier() -> Any:
    return ModelVersionFactory(stage="classifier", status="active")


def release_claims() -> None:
    """As if the reviewers' claims had expired, so the next request sees the whole queue again."""
    ReviewClaim.objects.all().delete()


def queue(client: Any, **params: Any) -> Any:
    return client.get("/api/v1/review-queue", {"balance": "false", "max_per_field": 50, **params})


def ids(client: Any, **params: Any) -> list[int]:
    response = queue(client, **params)
    assert response.status_code == 200, response.json()
    return [cell["id"] for cell in response.json()["cells"]]


def test_most_uncertain_first_by_each_strategy(client_for: Any, annotator: Any, classifier: Any) -> None:
    field = FieldFactory()
    calm, unsure, torn = predicted(
        field,
        classifier,
        [
            {
                "entropy": 0.1,
                "margin": 0.9,
                "confidence": 0.95,
                "mutual_information": 0.01,
                "detector_score": 0.99,
                "p_countable": 0.99,
            },
            {
                "entropy": 2.0,
                "margin": 0.05,
                "confidence": 0.2,
                "mutual_information": 0.10,
                "detector_score": 0.90,
                "p_countable": 0.7,
            },
            {
                "entropy": 1.0,
                "margin": 0.30,
                "confidence": 0.5,
                "mutual_information": 0.80,
                "detector_score": 0.35,
                "p_countable": 0.52,
            },
        ],
    )
    expected = {
        "entropy": [unsure, torn, calm],
        "margin": [unsure, torn, calm],
        "least_confidence": [unsure, torn, calm],
        "disagreement": [torn, unsure, calm],
        "detector": [torn, unsure, calm],
        "countability": [torn, unsure, calm],
    }
    for strategy, order in expected.items():
        release_claims()
        assert ids(client_for(annotator), strategy=strategy) == [cell.pk for cell in order], strategy
    release_claims()
    assert sorted(ids(client_for(annotator), strategy="random")) == sorted(cell.pk for cell in (calm, unsure, torn))
    release_claims()
    first = queue(client_for(annotator), strategy="entropy").json()["cells"][0]
    assert first["field"] == field.pk
    assert first["top3"][0] == {"cell_class": 12, "name": "lymphocyte", "probability": 1.0}
    assert first["model_version"] == classifier.pk


def test_unknown_strategy_is_refused_listing_the_valid_ones(client_for: Any, annotator: Any) -> None:
    response = queue(client_for(annotator), strategy="coin_toss")
    assert response.status_code == 400
    assert STRATEGIES in response.json()["detail"]
    assert response.json()["errors"][0]["field"] == "strategy"


def test_fields_with_truth_and_old_model_versions_are_left_out(
    client_for: Any, annotator: Any, classifier: Any
) -> None:
    open_field, settled_field = FieldFactory(), FieldFactory()
    (wanted,) = predicted(open_field, classifier, [{"entropy": 0.5}])
    predicted(settled_field, classifier, [{"entropy": 3.0}])
    AnnotationSetFactory(field=settled_field, kind=AnnotationKind.CONSENSUS, annotator=None, status="locked")
    retired = ModelVersionFactory(stage="classifier", status="retired")
    predicted(open_field, retired, [{"entropy": 2.5}])
    assert ids(client_for(annotator)) == [wanted.pk]


def test_cells_the_reviewer_already_took_are_left_out(client_for: Any, annotator: Any, classifier: Any) -> None:
    field = FieldFactory()
    taken, left = predicted(field, classifier, [{"entropy": 2.0}, {"entropy": 1.0}])
    own_set = AnnotationSetFactory(field=field, annotator=annotator)
    CellFactory(annotation_set=own_set, source_cell=taken)
    assert ids(client_for(annotator)) == [left.pk]


def test_a_cell_is_held_by_at_most_two_reviewers_never_twice_by_one(
    client_for: Any, annotator: Any, second_annotator: Any, make_user: Any, classifier: Any
) -> None:
    field = FieldFactory()
    cells = predicted(field, classifier, [{"entropy": 3 - 0.1 * i} for i in range(6)])
    first = ids(client_for(annotator), limit=4)
    assert first == [cell.pk for cell in cells[:4]]
    # The second reviewer is not locked out: the same cells need their second blind decision.
    assert ids(client_for(second_annotator), limit=4) == first
    # A third reviewer gets the cells nobody holds twice.
    third = make_user(Role.ANNOTATOR)
    assert ids(client_for(third), limit=4) == [cell.pk for cell in cells[4:]]
    # The same reviewer asking again gets their own batch back (renewed), once each.
    again = ids(client_for(annotator), limit=4)
    assert again == first
    assert len(set(again)) == len(again)
    assert ReviewClaim.objects.filter(reviewer=annotator).count() == 4


def test_claims_are_released_on_leave_and_skip(
    client_for: Any, annotator: Any, second_annotator: Any, make_user: Any, classifier: Any
) -> None:
    field = FieldFactory()
    cells = predicted(field, classifier, [{"entropy": 3 - 0.1 * i} for i in range(3)])
    third = make_user(Role.ANNOTATOR)
    ids(client_for(annotator), limit=3)
    ids(client_for(second_annotator), limit=3)
    assert ids(client_for(third), limit=3) == []
    skip = client_for(annotator).post("/api/v1/review-queue/release", {"cells": [cells[0].pk]}, format="json")
    assert skip.json() == {"released": 1}
    assert ids(client_for(third), limit=3) == [cells[0].pk]
    leave = client_for(second_annotator).post("/api/v1/review-queue/release", {}, format="json")
    assert leave.json() == {"released": 3}
    assert ids(client_for(third), limit=3) == [cell.pk for cell in cells]


def test_the_page_renews_its_hold_and_an_expired_hold_frees_the_cells(
    client_for: Any, annotator: Any, second_annotator: Any, make_user: Any, classifier: Any
) -> None:
    predicted(FieldFactory(), classifier, [{"entropy": 1.0}])
    ids(client_for(annotator))
    ids(client_for(second_annotator))
    renew = client_for(annotator).post("/api/v1/review-queue/renew")
    assert renew.status_code == 200
    assert renew.json()["held"] == 1
    ReviewClaim.objects.filter(reviewer=second_annotator).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert len(ids(client_for(make_user(Role.ANNOTATOR)))) == 1


def test_class_balancing_keeps_rare_blasts_in_the_first_page(client_for: Any, annotator: Any, classifier: Any) -> None:
    field = FieldFactory()
    lymphocytes = predicted(field, classifier, [{"entropy": 2.0 - 0.01 * i, "cell_class": 12} for i in range(5)])
    (blast,) = predicted(FieldFactory(), classifier, [{"entropy": 0.3, "cell_class": 11}])
    balanced = ids(client_for(annotator), limit=3, balance="true")
    assert blast.pk in balanced
    release_claims()
    unbalanced = ids(client_for(annotator), limit=3)
    assert unbalanced == [cell.pk for cell in lymphocytes[:3]]


def test_the_per_class_pool_holds_a_rare_confidently_predicted_class(
    client_for: Any, annotator: Any, classifier: Any
) -> None:
    """Far more uncertain common cells than limit * 10 used to fit in the pool: the confident blast still comes."""
    fields = [FieldFactory() for _ in range(10)]
    for index, field in enumerate(fields):
        predicted(field, classifier, [{"entropy": 2.0 - 0.001 * (index * 10 + i), "cell_class": 12} for i in range(10)])
    (blast,) = predicted(FieldFactory(), classifier, [{"entropy": 0.01, "confidence": 0.99, "cell_class": 0}])
    batch = ids(client_for(annotator), limit=4, balance="true", max_per_field=3)
    assert blast.pk in batch


def test_filters_by_case_and_class_and_caps_cells_per_field(client_for: Any, annotator: Any, classifier: Any) -> None:
    crowded, other = FieldFactory(), FieldFactory()
    crowded_cells = predicted(crowded, classifier, [{"entropy": 3.0 - 0.1 * i, "cell_class": 0} for i in range(4)])
    (other_cell,) = predicted(other, classifier, [{"entropy": 0.1, "cell_class": 16}])
    client = client_for(annotator)
    assert ids(client, case=other.smear.case_id) == [other_cell.pk]
    release_claims()
    assert ids(client, cell_class=0, limit=2) == [c.pk for c in crowded_cells[:2]]
    release_claims()
    capped = ids(client, max_per_field=1, limit=5)
    assert capped == [crowded_cells[0].pk, other_cell.pk]


def test_without_an_active_classifier_the_queue_is_empty(client_for: Any, annotator: Any) -> None:
    response = queue(client_for(annotator))
    assert (response.status_code, response.json()["cells"]) == (200, [])


@pytest.mark.parametrize(("params", "field"), [({"limit": 0}, "limit"), ({"cell_class": NUM_CLASSES}, "cell_class")])
def test_bad_parameters_name_the_field(client_for: Any, annotator: Any, params: dict[str, Any], field: str) -> None:
    response = queue(client_for(annotator), **params)
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == field


@pytest.mark.parametrize("name", ["strategy", "limit", "max_per_field", "case", "cell_class", "balance"])
def test_an_empty_parameter_is_refused_not_read_as_the_default(client_for: Any, annotator: Any, name: str) -> None:
    """Issue 21's fuzzing: `?strategy=` answered 200 with the default strategy's batch."""
    response = client_for(annotator).get("/api/v1/review-queue", {name: ""})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == name


def test_release_takes_a_json_object_only(client_for: Any, annotator: Any, classifier: Any) -> None:
    """A form body (or a JSON non-object) is refused, never read as "release all" (issue 21's fuzzing)."""
    field = FieldFactory()
    predicted(field, classifier, [{"entropy": 0.9}])
    client = client_for(annotator)
    assert len(queue(client).json()["cells"]) == 1
    form = client.post("/api/v1/review-queue/release", {"x": "False"}, format="multipart")
    assert form.status_code == 415
    not_an_object = client.post("/api/v1/review-queue/release", False, format="json")
    assert not_an_object.status_code == 400
    assert ReviewClaim.objects.count() == 1
