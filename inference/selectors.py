"""The review queue: predicted cells of the active classifier that most need a hematologist's eye.

SQL orders a bounded pool by the strategy's column (its row of `inference.core.selection.REVIEW_STRATEGIES`); the
pure `inference.core.selection` then balances
classes (so rare blasts are not starved) and spreads the pick over fields. Picked cells are claimed for the
reviewer for a while, under `select_for_update(skip_locked=True)`, so two reviewers never get the same cell.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from annotations.models import AnnotationKind, Cell
from annotations.truth import truth
from inference.core.selection import (
    ReviewCandidate,
    UnknownStrategyError,
    default_review_strategy,
    review_strategy,
    select_for_review,
)
from inference.models import ReviewClaim
from training.core.stages import CLASSIFIER
from training.selectors import active_model_versions

POOL_FACTOR = 10
MAX_POOL = 2000


@dataclass(frozen=True)
class ReviewQueueRequest:
    strategy: str = field(default_factory=default_review_strategy)
    case_id: int | None = None
    cell_class: int | None = None
    limit: int = 20
    balance_classes: bool = True
    max_per_field: int | None = None


def _candidate(cell: Cell) -> ReviewCandidate:
    uncertainty = dict(cell.scores.get("uncertainty", {}))
    return ReviewCandidate(
        cell_id=cell.pk,
        field_id=cell.annotation_set.field_id,
        predicted_class=cell.cell_class_id if cell.cell_class_id is not None else -1,
        uncertainty=uncertainty,
        detector_score=cell.detector_score if cell.detector_score is not None else 0.0,
    )


def review_pool(user: Any, request: ReviewQueueRequest) -> QuerySet[Cell]:
    """Predicted cells of the active classifier on fields without truth, not yet taken into the reviewer's own
    set, not claimed by another reviewer."""
    classifier = active_model_versions().get(CLASSIFIER.name)
    if classifier is None:
        return Cell.objects.none()
    has_truth = truth(with_reopened=True).filter(field_id=OuterRef("annotation_set__field_id"))
    taken_by_reviewer = Cell.objects.filter(
        source_cell_id=OuterRef("pk"), annotation_set__kind=AnnotationKind.ANNOTATOR, annotation_set__annotator=user
    )
    claimed_by_other = ReviewClaim.objects.filter(cell_id=OuterRef("pk"), expires_at__gt=timezone.now()).exclude(
        reviewer=user
    )
    pool = (
        Cell.objects.filter(annotation_set__kind=AnnotationKind.PREDICTION, annotation_set__model_version=classifier)
        .exclude(Exists(has_truth))
        .exclude(Exists(taken_by_reviewer))
        .exclude(Exists(claimed_by_other))
    )
    if request.case_id is not None:
        pool = pool.filter(annotation_set__field__smear__case_id=request.case_id)
    if request.cell_class is not None:
        pool = pool.filter(cell_class_id=request.cell_class)
    return pool


def review_queue_next(user: Any, request: ReviewQueueRequest) -> list[Cell]:
    """The next cells for `user` to review, claimed for them for AICELL_REVIEW_CLAIM_MINUTES."""
    strategy = review_strategy(request.strategy)
    pool_size = min(MAX_POOL, request.limit * POOL_FACTOR)
    with transaction.atomic():
        pool = list(
            review_pool(user, request)
            .select_related("annotation_set")
            .order_by(strategy.order_by, "id")
            .select_for_update(skip_locked=True, of=("self",))[:pool_size]
        )
        picked = select_for_review(
            [_candidate(cell) for cell in pool],
            request.limit,
            request.strategy,
            balance_classes=request.balance_classes,
            max_per_field=request.max_per_field,
        )
        by_id: dict[Hashable, Cell] = {cell.pk: cell for cell in pool}
        cells = [by_id[candidate.cell_id] for candidate in picked]
        _claim(user, cells)
    return cells


def _claim(user: Any, cells: list[Cell]) -> None:
    """Claim the picked cells for `user` in a constant number of queries: expired claims go, the user's own claims
    are renewed, the others are inserted; a cell another reviewer claimed at this very instant stays theirs."""
    now = timezone.now()
    expires_at = now + timedelta(minutes=settings.AICELL_REVIEW_CLAIM_MINUTES)
    ReviewClaim.objects.filter(expires_at__lte=now).delete()
    cell_ids = [cell.pk for cell in cells]
    ReviewClaim.objects.filter(cell_id__in=cell_ids, reviewer=user).update(expires_at=expires_at)
    ReviewClaim.objects.bulk_create(
        [ReviewClaim(cell_id=cell_id, reviewer=user, expires_at=expires_at) for cell_id in cell_ids],
        ignore_conflicts=True,
    )


__all__ = ["ReviewQueueRequest", "UnknownStrategyError", "review_pool", "review_queue_next"]
