"""GET /api/v1/review-strategies, and the recipe of ARCHITECTURE.md: a review strategy is one row of
`inference.core.selection.REVIEW_STRATEGIES`, seen at once by the selection, the SQL ordering of the review queue,
its query parameter and the endpoint the UI lists strategies from."""

import dataclasses
from typing import Any

import pytest

from inference.core.selection import REVIEW_STRATEGIES, ReviewCandidate, ReviewStrategy, select_for_review
from tests.factories import FieldFactory, ModelVersionFactory
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
