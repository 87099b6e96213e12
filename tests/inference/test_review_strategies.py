"""GET /api/v1/review-strategies, and the recipe of ARCHITECTURE.md: a review strategy is one row of
`inference.core.selection.REVIEW_STRATEGIES`, seen at once by the selection, the SQL ordering of the review queue,
its query parameter and the endpoint the UI lists strategies from."""

import dataclasses
from typing import Any

import numpy as np
import pytest

from annotations.models import AnnotationKind, Cell
from inference.core.selection import REVIEW_STRATEGIES, ReviewCandidate, ReviewStrategy, select_for_review
from inference.core.uncertainty import compute_uncertainty
from tests.factories import AnnotationSetFactory, CellFactory, FieldFactory, ModelVersionFactory
from tests.inference.test_review_queue_api import predicted, release_claims

pytestmark = pytest.mark.django_db

MOST_CONFIDENT = ReviewStrategy(
    "most_confident",
    "Most confident",
    "Cells the classifier is surest of come first (a spot check of what it gets right).",
    lambda candidate: 1.0 - float(candidate.uncertainty["least_confidence"]),
    "-confidence",
)


def test_the_strategies_with_their_labels_descriptions_and_one_default(client_for: Any, annotator: Any) -> None:
    response = client_for(annotator).get("/api/v1/review-strategies")
    assert response.status_code == 200
    body = response.json()
    assert [row["name"] for row in body] == [
        "entropy",
        "margin",
        "least_confidence",
        "disagreement",
        "detector",
        "countability",
        "random",
    ]
    assert all(set(row) == {"name", "label", "description", "default"} for row in body)
    assert all(row["label"] and row["description"].endswith(".") for row in body)
    assert [row["name"] for row in body if row["default"]] == ["entropy"]


def test_the_queue_uses_the_default_strategy_when_none_is_asked_for(
    client_for: Any, annotator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    classifier = ModelVersionFactory(stage="classifier", status="active")
    sure, unsure = predicted(
        FieldFactory(), classifier, [{"entropy": 0.1, "confidence": 0.9}, {"entropy": 2.0, "confidence": 0.2}]
    )
    assert [cell["id"] for cell in queue(client_for(annotator))["cells"]] == [unsure.pk, sure.pk]  # entropy
    release_claims()
    monkeypatch.setitem(REVIEW_STRATEGIES, "entropy", dataclasses.replace(REVIEW_STRATEGIES["entropy"], default=False))
    monkeypatch.setitem(REVIEW_STRATEGIES, MOST_CONFIDENT.name, dataclasses.replace(MOST_CONFIDENT, default=True))
    assert [cell["id"] for cell in queue(client_for(annotator))["cells"]] == [sure.pk, unsure.pk]


def queue(client: Any, **params: Any) -> Any:
    return client.get("/api/v1/review-queue", {"balance": "false", **params}).json()


def test_a_strategy_added_in_one_place_is_everywhere(
    client_for: Any, annotator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(REVIEW_STRATEGIES, MOST_CONFIDENT.name, MOST_CONFIDENT)

    # The pure selection ranks by the row's priority.
    calm = ReviewCandidate("calm", "f", 1, {"least_confidence": 0.05}, 0.9)
    torn = ReviewCandidate("torn", "f", 2, {"least_confidence": 0.6}, 0.9)
    assert [c.cell_id for c in select_for_review([torn, calm], 2, "most_confident")] == ["calm", "torn"]

    # The review queue accepts the name and its SQL orders the pool by the row's column: with limit=1 the pool is
    # 3 cells per class, so the surest cell is only found when the query itself puts the most confident cells first (the
    # entropy of these cells runs the other way).
    classifier = ModelVersionFactory(stage="classifier", status="active")
    cells = [
        cell
        for start in (0, 5, 10)
        for cell in predicted(
            FieldFactory(),
            classifier,
            [{"entropy": 0.1 + index / 10, "confidence": 0.95 - index / 20} for index in range(start, start + 5)],
        )
    ]
    response = client_for(annotator).get(
        "/api/v1/review-queue", {"strategy": "most_confident", "balance": "false", "limit": 1}
    )
    assert response.status_code == 200, response.json()
    assert [cell["id"] for cell in response.json()["cells"]] == [cells[0].pk]

    # The endpoint the UI lists strategies from shows it; an unknown name's error lists it.
    listed = client_for(annotator).get("/api/v1/review-strategies").json()
    assert listed[-1] == {
        "name": "most_confident",
        "label": "Most confident",
        "description": MOST_CONFIDENT.description,
        "default": False,
    }
    refused = client_for(annotator).get("/api/v1/review-queue", {"strategy": "coin_toss"})
    assert "most_confident" in refused.json()["detail"]


def test_sql_ordering_and_pure_priority_rank_alike() -> None:
    """The queue's SQL orders stored columns; the benchmark (benchmarks/active_learning.py) and the selection rank
    by the pure priority of the uncertainty measures. On cells stored as the pre-label service stores them, both
    give one order for every strategy."""
    members = np.array(
        [
            [[0.98, 0.01, 0.01], [0.36, 0.33, 0.31], [0.90, 0.05, 0.05], [0.60, 0.30, 0.10], [0.10, 0.85, 0.05]],
            [[0.97, 0.02, 0.01], [0.35, 0.34, 0.31], [0.20, 0.75, 0.05], [0.55, 0.40, 0.05], [0.15, 0.80, 0.05]],
        ]
    )
    ensemble = members.mean(axis=0)
    detector_scores = np.array([0.9, 0.5, 0.8, 0.3, 0.7])
    measures = compute_uncertainty(ensemble, members, detector_scores).per_cell()
    prediction_set = AnnotationSetFactory(
        field=FieldFactory(),
        kind=AnnotationKind.PREDICTION,
        annotator=None,
        model_version=ModelVersionFactory(stage="classifier", status="active"),
        status="locked",
    )
    cells = [
        CellFactory(
            annotation_set=prediction_set,
            x=10 + 60 * index,
            cell_class_id=int(probs.argmax()),
            confidence=float(probs.max()),
            margin=measure["margin"],
            entropy=measure["entropy"],
            mutual_information=measure["mutual_information"],
            detector_score=float(score),
            scores={"probabilities": probs.tolist(), "uncertainty": measure},
        )
        for index, (probs, measure, score) in enumerate(zip(ensemble, measures, detector_scores, strict=True))
    ]
    candidates = [
        ReviewCandidate(cell.pk, cell.annotation_set.field_id, cell.cell_class_id, measure, cell.detector_score)
        for cell, measure in zip(cells, measures, strict=True)
    ]
    orders = {}
    # The class-probability and detector strategies; `random` has no order to compare and `countability` ranks by the
    # countability model, which this example leaves out.
    for name in ("entropy", "margin", "least_confidence", "disagreement", "detector"):
        strategy = REVIEW_STRATEGIES[name]
        sql = list(Cell.objects.filter(pk__in=[c.pk for c in cells]).order_by(strategy.order_by, "id"))
        pure = select_for_review(candidates, len(candidates), name, balance_classes=False)
        assert [cell.pk for cell in sql] == [c.cell_id for c in pure], name
        orders[name] = [cells.index(cell) for cell in sql]
    # The example tells the strategies apart: the members' disagreement and the detector rank their own way.
    assert orders["entropy"][0] == 1
    assert orders["disagreement"][0] == 2
    assert orders["detector"][0] == 3
