"""The review queue's reads: which predicted cells of the active classifier a reviewer may be handed next.

A queued cell is a prediction of the ACTIVE classifier version on a field without truth. It needs two blind
decisions by two different reviewers (`annotations.review.cells`), so a cell stays in the queue while its review is
open and fewer than two "seats" are taken (decisions made plus live claims of other reviewers), and never comes back
to a reviewer who decided it.

The candidate pool is built per predicted class in SQL (each class's first cells in the order of the strategy's
column of `inference.core.selection.REVIEW_STRATEGIES`, one range of an index per class), so every class, a rare and
confidently predicted blast class included, has its most uncertain cells in the pool; the pure `select_for_review`
then takes them round-robin across classes and caps cells per field. Claiming the picked cells is
`services.review_claims_take`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Exists, F, Func, OuterRef, QuerySet, Subquery
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce
from django.utils import timezone

from annotations.models import (
    AnnotationKind,
    Cell,
    CellDecision,
    Conflict,
    ConflictStatus,
)
from annotations.taxonomy import CELL_CLASSES
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


POOL_COLUMNS = (
    "id",
    "annotation_set__field_id",
    "cell_class_id",
    "confidence",
    "margin",
    "entropy",
    "mutual_information",
    "detector_score",
    "countability_margin",
)


def candidate_of(row: tuple[Any, ...]) -> ReviewCandidate:
    """A pool row (`POOL_COLUMNS`) as the pure selection's candidate. The stored columns are what the SQL ordering
    reads, so the pure ranking reads them too; a measure the cell lacks stays out (it ranks last)."""
    cell_id, field_id, cell_class, confidence, margin, entropy, mutual_information, detector, countability = row
    measures = {
        "least_confidence": None if confidence is None else 1.0 - confidence,
        "margin": margin,
        "entropy": entropy,
        "mutual_information": mutual_information,
    }
    return ReviewCandidate(
        cell_id=cell_id,
        field_id=field_id,
        predicted_class=cell_class if cell_class is not None else -1,
        uncertainty={name: value for name, value in measures.items() if value is not None},
        detector_score=detector if detector is not None else 0.0,
        # |2p - 1| is what the countability priority reads; p = (1 + margin) / 2 gives it back.
        p_countable=0.5 if countability is None else (1.0 + countability) / 2.0,
    )


def active_classifier_id() -> int | None:
    classifier = active_model_versions().get(CLASSIFIER.name)
    return classifier.pk if classifier is not None else None


def _count(queryset: QuerySet[Any]) -> Subquery:
    """COUNT(*) of a correlated queryset as a scalar subquery (0 when empty: an aggregate without GROUP BY)."""
    return Subquery(queryset.order_by().annotate(n=Func(F("pk"), function="COUNT")).values("n"))


def _queue_filter(cells: QuerySet[Cell], user: Any, now: datetime) -> QuerySet[Cell]:
    """`cells` less those `user` may not be handed: on a field with truth, decided or taken by them, or without a
    free seat (decisions plus other reviewers' live claims reach two). Each condition is a correlated lookup of one
    cell through an index; they are added last, in one step (every further step would clone them)."""
    decisions = CellDecision.objects.filter(review__cell=OuterRef("pk"))
    other_claims = ReviewClaim.objects.filter(cell=OuterRef("pk"), expires_at__gt=now).exclude(reviewer=user)
    taken_by_reviewer = Cell.objects.filter(
        source_cell=OuterRef("pk"), annotation_set__kind=AnnotationKind.ANNOTATOR, annotation_set__annotator=user
    )
    return cells.alias(seats=_count(decisions) + _count(other_claims)).filter(
        ~Exists(truth(with_reopened=True).filter(field_id=OuterRef("annotation_set__field_id"))),
        ~Exists(decisions.filter(reviewer=user)),
        ~Exists(taken_by_reviewer),
        seats__lt=SEATS,
    )


def queued_cells(user: Any, *, now: datetime | None = None, among: Any = None) -> QuerySet[Cell]:
    """Predicted cells of the active classifier on fields without truth that `user` may still decide: fewer than
    two decisions (`Cell.review_version` is set), not decided or taken by them, a seat free (decisions plus other
    reviewers' live claims below two).

    Reading the next cells in one of the queue's index orders costs the same whatever the size of the queue
    (`review_pool`). `among` (ids, or a queryset of them) asks about those cells only: the version is then compared
    through an expression, so the query is driven by the ids (SQLite, without statistics, would otherwise walk the
    version's whole index)."""
    classifier_id = active_classifier_id()
    if classifier_id is None:
        return Cell.objects.none()
    cells = (
        Cell.objects.filter(review_version=classifier_id)
        if among is None
        else Cell.objects.filter(pk__in=among)
        .alias(version=Coalesce("review_version", 0))
        .filter(version=classifier_id)
    )
    return _queue_filter(cells, user, now or timezone.now())


def _class_ranges(
    cells: QuerySet[Cell],
    queued: Callable[[QuerySet[Cell]], QuerySet[Cell]],
    order_by: str,
    classes: list[int | None],
    per_class: int,
) -> RawSQL:
    """The ids of each class's `per_class` first queued cells (`queued` of `cells`) in the strategy's order, as index
    ranges
    (`Cell.Meta.indexes`): per class, the cells with the measure in its order, then those without it (they come
    last, like the pure priority ranks them) by id.

    Each shape of range is compiled once with the class as a reference to `queue_classes.cls`: PostgreSQL runs it
    per class as a LATERAL subquery (one plan for all classes: planning a union of 44 copies of the correlated
    conditions would cost more than running them); SQLite, without LATERAL, gets a UNION ALL of one copy per class,
    each reading its class from a one-row CTE (its planner still uses the index for the constant subquery)."""
    column = order_by.lstrip("-")
    postgres = connection.vendor == "postgresql"
    reference = RawSQL("queue_classes.cls" if postgres else "SELECT cls FROM queue_classes", ())

    def shape(of_class: QuerySet[Cell], measured: bool) -> tuple[str, tuple[Any, ...]]:
        ordered = queued(of_class.filter(**{f"{column}__isnull": not measured})).order_by(
            *((order_by, "id") if measured else ("id",))
        )
        return ordered.values("id")[:per_class].query.sql_with_params()

    parts: list[str] = []
    params: list[Any] = []
    known = [cell_class for cell_class in classes if cell_class is not None]
    for measured in (True, False):
        if known:
            sql, shape_params = shape(cells.filter(cell_class_id=reference), measured)
            if postgres:
                parts.append(
                    f"SELECT queue_range.id FROM unnest(%s::bigint[]) AS queue_classes(cls) "
                    f"CROSS JOIN LATERAL ({sql}) AS queue_range"
                )
                params.extend([known, *shape_params])
            else:
                for cell_class in known:
                    parts.append(
                        f"SELECT id FROM (WITH queue_classes(cls) AS (VALUES (%s)) {sql}) AS range_{len(parts)}"
                    )
                    params.extend([cell_class, *shape_params])
        if None in classes:
            sql, shape_params = shape(cells.filter(cell_class__isnull=True), measured)
            parts.append(f"SELECT id FROM ({sql}) AS range_{len(parts)}")
            params.extend(shape_params)
    return RawSQL(" UNION ALL ".join(parts), params)


def review_pool(
    user: Any, request: ReviewQueueRequest, *, exclude_ids: list[int] | None = None
) -> list[tuple[Any, ...]]:
    """The candidate pool (rows of `POOL_COLUMNS`), per predicted class: each class's `limit * PER_CLASS_FACTOR`
    most urgent cells under the strategy, read as ranges of the queue's indexes (one query, whatever the size of
    the queue)."""
    strategy = review_strategy(request.strategy)
    classifier_id = active_classifier_id()
    if classifier_id is None:
        return []
    cells = Cell.objects.filter(review_version=classifier_id)
    if exclude_ids:
        cells = cells.exclude(pk__in=exclude_ids)
    if request.case_id is not None:
        cells = cells.filter(annotation_set__field__smear__case_id=request.case_id)
    now = timezone.now()
    classes: list[int | None] = (
        [request.cell_class] if request.cell_class is not None else [*(spec.id for spec in CELL_CLASSES), None]
    )
    per_class = min(MAX_PER_CLASS, request.limit * PER_CLASS_FACTOR)
    ranges = _class_ranges(cells, lambda these: _queue_filter(these, user, now), strategy.order_by, classes, per_class)
    return list(Cell.objects.filter(pk__in=ranges).order_by("id").values_list(*POOL_COLUMNS))


def review_pick(user: Any, request: ReviewQueueRequest, *, exclude_ids: list[int] | None = None) -> list[Cell]:
    """Up to `request.limit` cells for `user`, balanced across classes (pure selection over the pool)."""
    if request.limit <= 0:
        return []
    picked = select_for_review(
        [candidate_of(row) for row in review_pool(user, request, exclude_ids=exclude_ids)],
        request.limit,
        request.strategy,
        balance_classes=request.balance_classes,
        max_per_field=request.max_per_field,
    )
    if not picked:
        return []
    by_id = Cell.objects.select_related("annotation_set__field").in_bulk([candidate.cell_id for candidate in picked])
    return [by_id[int(str(candidate.cell_id))] for candidate in picked]


def held_cells(user: Any, *, now: datetime | None = None) -> QuerySet[Cell]:
    """The cells `user` holds now (live claims) that they may still decide, in the order they were claimed."""
    now = now or timezone.now()
    live = ReviewClaim.objects.filter(reviewer=user, expires_at__gt=now)
    still_queued = queued_cells(user, now=now, among=live.values("cell_id"))
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
