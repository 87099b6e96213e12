"""The review queue's reads: which predicted cells of the active classifier a reviewer may be handed next.

A queued cell is a prediction of the ACTIVE classifier version on a field without truth. It needs two blind
decisions by two different reviewers (`annotations.review.cells`), so a cell stays in the queue while its review is
open and fewer than two "seats" are taken (decisions made plus live claims of other reviewers), and never comes back
to a reviewer who decided it.

The candidate pool is built per predicted class in SQL (a window function partitioned by class, ranked by the
strategy's column of `inference.core.selection.REVIEW_STRATEGIES`), so every class, a rare and confidently predicted
blast class included, has its most uncertain cells in the pool; the pure `select_for_review` then takes them
round-robin across classes and caps cells per field. Claiming the picked cells is `services.review_claims_take`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Exists, F, OrderBy, OuterRef, QuerySet, Subquery, Window
from django.db.models.functions import Random, RowNumber
from django.utils import timezone

from annotations.models import (
    AnnotationKind,
    Cell,
    CellDecision,
    CellReview,
    CellReviewStatus,
    Conflict,
    ConflictStatus,
)
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

PER_CLASS_FACTOR = 3  # candidates per class in the pool, times the batch size
MAX_PER_CLASS = 300
SEATS = 2  # blind decisions a queued cell needs


@dataclass(frozen=True)
class ReviewQueueRequest:
    strategy: str = field(default_factory=default_review_strategy)
    case_id: int | None = None
    cell_class: int | None = None
    limit: int = 10
    balance_classes: bool = True
    max_per_field: int | None = 3


def candidate_of(cell: Cell) -> ReviewCandidate:
    # The stored columns are what the SQL ordering reads, so the pure ranking reads them too (scores may lack them).
    columns = {
        "least_confidence": None if cell.confidence is None else 1.0 - cell.confidence,
        "margin": cell.margin,
        "entropy": cell.entropy,
        "mutual_information": cell.mutual_information,
    }
    uncertainty = dict(cell.scores.get("uncertainty", {}))
    uncertainty.update({name: value for name, value in columns.items() if value is not None})
    return ReviewCandidate(
        cell_id=cell.pk,
        field_id=cell.annotation_set.field_id,
        predicted_class=cell.cell_class_id if cell.cell_class_id is not None else -1,
        uncertainty=uncertainty,
        detector_score=cell.detector_score if cell.detector_score is not None else 0.0,
        p_countable=float(cell.scores.get("p_countable", 0.5)),
    )


def active_classifier_id() -> int | None:
    classifier = active_model_versions().get(CLASSIFIER.name)
    return classifier.pk if classifier is not None else None


def _full_cells(user: Any, now: datetime) -> list[int]:
    """Cells whose two seats are taken, for `user`: decisions made on open reviews plus other reviewers' live
    claims reach two. Bounded by the live claims (a seat counted twice needs a claim), so a short list."""
    seats: Counter[int] = Counter(
        CellDecision.objects.filter(review__status=CellReviewStatus.OPEN, review__cell__isnull=False).values_list(
            "review__cell_id", flat=True
        )
    )
    claimed = ReviewClaim.objects.filter(expires_at__gt=now).exclude(reviewer=user).values_list("cell_id", flat=True)
    seats.update(claimed)
    return [cell_id for cell_id, taken in seats.items() if taken >= SEATS]


def queued_cells(user: Any, *, now: datetime | None = None) -> QuerySet[Cell]:
    """Predicted cells of the active classifier on fields without truth that `user` may still decide: not decided
    by them, review still open, a seat free (decisions plus other reviewers' live claims below two).

    Every exclusion is a non-correlated subquery (evaluated once, not per cell), so the cost of the pool grows with
    the queued cells only through the ordering."""
    classifier_id = active_classifier_id()
    if classifier_id is None:
        return Cell.objects.none()
    now = now or timezone.now()
    closed = CellReview.objects.exclude(status=CellReviewStatus.OPEN).filter(cell__isnull=False).values("cell_id")
    decided_by_user = CellDecision.objects.filter(reviewer=user, review__cell__isnull=False).values("review__cell_id")
    taken_by_reviewer = Cell.objects.filter(
        annotation_set__kind=AnnotationKind.ANNOTATOR, annotation_set__annotator=user, source_cell__isnull=False
    ).values("source_cell_id")
    return (
        Cell.objects.filter(annotation_set__kind=AnnotationKind.PREDICTION, annotation_set__model_version=classifier_id)
        .exclude(annotation_set__field_id__in=truth(with_reopened=True).values("field_id"))
        .exclude(pk__in=closed)
        .exclude(pk__in=decided_by_user)
        .exclude(pk__in=taken_by_reviewer)
        .exclude(pk__in=_full_cells(user, now))
    )


def _ordering(order_by: str) -> OrderBy:
    if order_by == "?":
        return OrderBy(Random())
    name = order_by.lstrip("-")
    return F(name).desc(nulls_last=True) if order_by.startswith("-") else F(name).asc(nulls_last=True)


def review_pool(user: Any, request: ReviewQueueRequest, *, exclude_ids: list[int] | None = None) -> list[Cell]:
    """The candidate pool, per predicted class: each class's `limit * PER_CLASS_FACTOR` most urgent cells under the
    strategy (one query; the window function partitions by class)."""
    strategy = review_strategy(request.strategy)
    pool = queued_cells(user)
    if exclude_ids:
        pool = pool.exclude(pk__in=exclude_ids)
    if request.case_id is not None:
        pool = pool.filter(annotation_set__field__smear__case_id=request.case_id)
    if request.cell_class is not None:
        pool = pool.filter(cell_class_id=request.cell_class)
    per_class = min(MAX_PER_CLASS, request.limit * PER_CLASS_FACTOR)
    # The window runs over ids and the ordering column only (narrow rows); the picked cells are read after.
    ranked = (
        pool.annotate(
            class_rank=Window(
                RowNumber(), partition_by=[F("cell_class_id")], order_by=[_ordering(strategy.order_by), F("id").asc()]
            )
        )
        .filter(class_rank__lte=per_class)
        .values_list("id", flat=True)
    )
    return list(Cell.objects.select_related("annotation_set__field").filter(pk__in=list(ranked)).order_by("id"))


def review_pick(user: Any, request: ReviewQueueRequest, *, exclude_ids: list[int] | None = None) -> list[Cell]:
    """Up to `request.limit` cells for `user`, balanced across classes (pure selection over the pool)."""
    if request.limit <= 0:
        return []
    pool = review_pool(user, request, exclude_ids=exclude_ids)
    picked = select_for_review(
        [candidate_of(cell) for cell in pool],
        request.limit,
        request.strategy,
        balance_classes=request.balance_classes,
        max_per_field=request.max_per_field,
    )
    by_id = {cell.pk: cell for cell in pool}
    return [by_id[int(str(candidate.cell_id))] for candidate in picked]


def held_cells(user: Any, *, now: datetime | None = None) -> QuerySet[Cell]:
    """The cells `user` holds now (live claims) that they may still decide, in the order they were claimed."""
    now = now or timezone.now()
    live = ReviewClaim.objects.filter(reviewer=user, expires_at__gt=now)
    still_queued = queued_cells(user, now=now).filter(pk__in=live.values("cell_id"))
    first_claim = Subquery(live.filter(cell=OuterRef("pk")).values("pk")[:1])
    return still_queued.select_related("annotation_set__field").annotate(claim_id=first_claim).order_by("claim_id")


def escalated_cell_conflicts(user: Any) -> QuerySet[Conflict]:
    """For adjudicators: conflicts of queued cells that both reviewers kept (oldest first), except those where the
    adjudicator made one of the two decisions."""
    own = CellDecision.objects.filter(review=OuterRef("cell_review"), reviewer=user)
    return (
        Conflict.objects.filter(cell_review__isnull=False, status=ConflictStatus.ESCALATED)
        .exclude(Exists(own))
        .select_related("field", "resolved_by")
        .prefetch_related("cell_review__decisions__reviewer")
        .order_by("created_at", "id")
    )


def decided_today(user: Any) -> int:
    """How many queued cells `user` decided since local midnight (the page's progress)."""
    midnight = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    return CellDecision.objects.filter(reviewer=user, created_at__gte=midnight).count()


def cell_decision_of(user: Any, cell_id: int) -> CellDecision | None:
    return CellDecision.objects.filter(review__cell_id=cell_id, reviewer=user).first()


__all__ = [
    "ReviewQueueRequest",
    "UnknownStrategyError",
    "cell_decision_of",
    "decided_today",
    "escalated_cell_conflicts",
    "held_cells",
    "queued_cells",
    "review_pick",
    "review_pool",
]
