"""Truth, defined once: what the lab has reviewed and locked.

Truth is the locked consensus of a field (double review) or an imported truth set, at most one per field. It is
what differentials count, training learns from and exports publish. A consensus that an adjudicator reopened for
changes is not truth until it is locked again; `with_reopened=True` adds it, for the readers that show a field's
consensus while it is being changed and for the checks that a field is past annotation (no new assignment, no second
consensus, no pre-labelling, no review-queue cells).

Cell truth is the second, weaker kind: a queued cell two reviewers decided blind and agreed on (or whose cross-check
settled it), `cell_truth()`. It is truth for that crop (countability and class training); a field that holds
field-level truth keeps it as the stronger truth, so cell truth on such a field is left out.

`truth_source` names which truth a cell has, for the report and the exports: the field-level truth of its set
("consensus", "imported"), the cell-level truth of its review ("cell_agreed", "cell_resolved", "cell_adjudicated"),
or "none" (a model's or an annotator's cell nobody settled).
"""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery

from annotations.models import (
    TRUTH_KINDS,
    AnnotationKind,
    AnnotationSet,
    AnnotationStatus,
    Cell,
    CellReview,
    CellReviewStatus,
    Field,
)


def truth_q(*, with_reopened: bool = False, through: str = "") -> Q:
    """The truth condition on annotation sets, or on a model that reaches them through `through` (e.g.
    "annotation_set__" from cells, "annotation_sets__" from fields)."""
    condition = Q(**{f"{through}kind__in": TRUTH_KINDS})
    return condition if with_reopened else condition & Q(**{f"{through}status": AnnotationStatus.LOCKED})


def truth(*, with_reopened: bool = False) -> QuerySet[AnnotationSet]:
    """The truth sets."""
    return AnnotationSet.objects.filter(truth_q(with_reopened=with_reopened))


def truth_cells() -> QuerySet[Cell]:
    """The cells of the truth sets."""
    return Cell.objects.filter(truth_q(through="annotation_set__"))


def fields_with_truth() -> QuerySet[Field]:
    """The fields that hold truth."""
    return Field.objects.filter(Exists(truth().filter(field=OuterRef("pk"))))


def cell_truth() -> QuerySet[CellReview]:
    """Cell-level truth (the review queue's agreed or settled cells) on fields without field-level truth."""
    return CellReview.objects.filter(status=CellReviewStatus.TRUTH).exclude(
        Exists(truth().filter(field=OuterRef("field")))
    )


NO_TRUTH = "none"
_FIELD_TRUTH_SOURCES = {AnnotationKind.CONSENSUS: "consensus", AnnotationKind.IMPORTED: "imported"}
TRUTH_SOURCES: tuple[str, ...] = ("consensus", "imported", "cell_agreed", "cell_resolved", "cell_adjudicated", NO_TRUTH)


def truth_source(set_kind: str, set_status: str, cell_truth_outcome: str | None) -> str:
    """Which truth a cell has (one of TRUTH_SOURCES): its set's kind and status, and the outcome of its cell-level
    truth (`cell_truth_outcome_of`; None without one)."""
    if set_kind in _FIELD_TRUTH_SOURCES and set_status == AnnotationStatus.LOCKED:
        return _FIELD_TRUTH_SOURCES[AnnotationKind(set_kind)]
    if cell_truth_outcome:
        return f"cell_{cell_truth_outcome}"
    return NO_TRUTH


def cell_truth_outcome_of(cell: str = "pk") -> Subquery:
    """For a cell queryset's annotate(): the outcome (agreed/resolved/adjudicated) of the cell-level truth of the
    cell at OuterRef(`cell`), None without one (or where the field's truth is the stronger)."""
    return Subquery(cell_truth().filter(cell=OuterRef(cell)).values("outcome")[:1])
