"""The data the browser tests work on: two annotators, an adjudicator, one case with real demo fields and a model's
pre-labels. Everything another branch owns (assignments of double review) is set up through the HTTP API, so the
same tests run before and after those branches are merged."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.conf import settings
from django.urls import NoReverseMatch, reverse

from aicell.roles import Role
from annotations.models import AnnotationKind, AnnotationStatus, Cell
from annotations.taxonomy import NUM_CLASSES
from tests.conftest import token_client
from tests.factories import (
    AnnotationSetFactory,
    CaseFactory,
    CellFactory,
    FieldFactory,
    ModelVersionFactory,
    SmearFactory,
    UserFactory,
)

DEMO_IMAGES = sorted((settings.BASE_DIR / "demo" / "bccd" / "JPEGImages").glob("*.jpg"))
T = TypeVar("T")

# Model suggestions per field (image pixels of a 640x480 field): box, predicted class, confidence. They sit in the
# right half of the field so that boxes the tests draw in the left half never touch them.
SUGGESTIONS: tuple[tuple[tuple[float, float, float, float], int, float], ...] = (
    ((420.0, 60.0, 70.0, 70.0), 16, 0.41),  # monocyte
    ((500.0, 200.0, 80.0, 75.0), 5, 0.83),  # neutrophilic segmented
    ((430.0, 330.0, 65.0, 70.0), 11, 0.28),  # lymphoblast, the least certain
)


@dataclass
class World:
    annotator: Any
    second_annotator: Any
    adjudicator: Any
    case: Any
    smear: Any
    fields: list[Any]
    predictions: list[Any]

    def suggestions(self, field_index: int = 0) -> list[Cell]:
        return list(self.predictions[field_index].cells.order_by("id"))


def route_exists(name: str, **kwargs: Any) -> bool:
    try:
        reverse(name, kwargs=kwargs or None)
    except NoReverseMatch:
        return False
    return True


def probabilities(top_class: int, confidence: float) -> list[float]:
    """Class probabilities summing to 1: `top_class` at `confidence`, the next class id second at 60% of it."""
    runner_up = confidence * 0.6
    values = [(1.0 - confidence - runner_up) / (NUM_CLASSES - 2)] * NUM_CLASSES
    values[top_class] = confidence
    values[(top_class + 1) % NUM_CLASSES] = runner_up
    return values


def uncertainty(probs: list[float]) -> dict[str, float]:
    """The measures a prediction stores (inference/uncertainty.py names), from its probabilities."""
    top, second = sorted(probs, reverse=True)[:2]
    entropy = -sum(p * math.log(p) for p in probs if p > 0)
    return {"least_confidence": 1 - top, "margin": top - second, "entropy": entropy, "mutual_information": 0.0}


def build_world(n_fields: int = 2) -> World:
    annotator = UserFactory(username="anna", roles=[Role.ANNOTATOR])
    second = UserFactory(username="bert", roles=[Role.ANNOTATOR])
    adjudicator = UserFactory(username="ada", roles=[Role.ADJUDICATOR])
    case = CaseFactory(code="E2E-C1")
    smear = SmearFactory(case=case, code="S1")
    fields = [
        FieldFactory(smear=smear, data=DEMO_IMAGES[i].read_bytes(), width=640, height=480) for i in range(n_fields)
    ]
    # The active classifier: the review queue draws from its predictions.
    model = ModelVersionFactory(status="active")
    predictions = []
    for field in fields:
        prediction = AnnotationSetFactory(
            field=field, kind=AnnotationKind.PREDICTION, annotator=None, model_version=model
        )
        for (x, y, w, h), cls, confidence in SUGGESTIONS:
            probs = probabilities(cls, confidence)
            measures = uncertainty(probs)
            CellFactory(
                annotation_set=prediction,
                x=x,
                y=y,
                width=w,
                height=h,
                cell_class_id=cls,
                confidence=confidence,
                detector_score=0.95,
                margin=measures["margin"],
                entropy=measures["entropy"],
                mutual_information=measures["mutual_information"],
                scores={"probabilities": probs, "p_countable": 0.9, "uncertainty": measures},
            )
        predictions.append(prediction)
    world = World(annotator, second, adjudicator, case, smear, fields, predictions)
    for field in fields:
        assign_if_required(world, field, annotator, second)
    return world


def imported_truth(field: Any) -> Any:
    """Reviewed truth for a field as an import brings it: a locked set of kind "imported"."""
    return AnnotationSetFactory(
        field=field, kind=AnnotationKind.IMPORTED, annotator=None, source_name="e2e", status=AnnotationStatus.LOCKED
    )


def assign_if_required(world: World, field: Any, *annotators: Any) -> None:
    """Where double review is merged, annotators work only on fields assigned to them: assign through the API."""
    if not route_exists("assignment-list"):
        return
    client = token_client(world.adjudicator)
    for annotator in annotators:
        response = client.post("/api/v1/assignments", {"field": field.pk, "annotator": annotator.pk}, format="json")
        assert response.status_code == 201, response.content


def eventually(check: Callable[[], T | None], timeout: float = 20.0) -> T:
    """The value of `check` once it is truthy (saving runs in the page while the test waits)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            assert value, "the expected state was not reached in time"
            return value
        time.sleep(0.1)
