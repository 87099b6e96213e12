"""Reads of double review (assignments, conflicts, cross-checks, agreement), shaped by who is asking: an
annotator never sees the other annotator's work on a field before both have submitted it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from django.contrib.auth.models import User
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from aicell.roles import Role, roles_of
from annotations.models import (
    AnnotationKind,
    AnnotationSet,
    AnnotationStatus,
    Assignment,
    Cell,
    CellDecision,
    CellReview,
    CellReviewStatus,
    Conflict,
    FieldReview,
)
from annotations.review.matching import Agreement, FieldMatch, measure_agreement
from annotations.selectors import is_lab_manager

ASSIGNMENT_COLUMNS = (
    "id",
    "field_id",
    "annotator_id",
    "slot",
    "created_by_id",
    "created_at",
    "field__status",
    "field__smear__case_id",
    "annotator__username",
)


def assignments_visible_to(user: Any) -> QuerySet[Assignment]:
    """Managers see all assignments; an annotator sees those of the fields assigned to them (own and the
    co-annotator's), each annotated with the progress of its annotator's set. What of that progress an annotator
    may read about the other person is decided by `assignment_details_visible`."""
    if is_lab_manager(user):
        assignments = Assignment.objects.all()
    elif Role.ANNOTATOR in roles_of(user):
        assignments = Assignment.objects.filter(field__in=Assignment.objects.filter(annotator=user).values("field"))
    else:
        return Assignment.objects.none()
    own_set = AnnotationSet.objects.filter(
        field=OuterRef("field"), annotator=OuterRef("annotator"), kind=AnnotationKind.ANNOTATOR
    )
    cell_count = Cell.objects.filter(annotation_set=OuterRef("set_id")).values("annotation_set").annotate(n=Count("pk"))
    return (
        # Only the columns the worklist shows: the whole field, smear, case and user rows (password hash included)
        # cost more to build than the rest of a worklist page.
        assignments.select_related("field__smear", "annotator")
        .only(*ASSIGNMENT_COLUMNS)
        .annotate(
            set_id=Subquery(own_set.values("pk")[:1]),
            set_status=Subquery(own_set.values("status")[:1]),
            set_submitted_at=Subquery(own_set.values("submitted_at")[:1]),
            released=Exists(FieldReview.objects.filter(field=OuterRef("field"))),
        )
        .annotate(set_cell_count=Coalesce(Subquery(cell_count.values("n")[:1]), 0))
        .order_by("field_id", "slot")
    )


def assignment_details_visible(assignment: Assignment, user: Any) -> bool:
    """Whether `user` may read the set behind an assignment (its id, cells, count, timestamps): their own, any
    once both annotators submitted (the cross-check exists), and every one for managers."""
    return bool(assignment.annotator_id == user.pk or getattr(assignment, "released", False) or is_lab_manager(user))


def conflicts_visible_to(user: Any) -> QuerySet[Conflict]:
    """Conflicts exist only after both annotators submitted; each annotator of the field sees them, as do
    managers."""
    if is_lab_manager(user):
        conflicts = Conflict.objects.all()
    elif Role.ANNOTATOR in roles_of(user):
        assigned = Assignment.objects.filter(field=OuterRef("field"), annotator=user)
        decided = CellDecision.objects.filter(review=OuterRef("cell_review"), reviewer=user)
        conflicts = Conflict.objects.filter(
            (Q(cell_review=None) & Exists(assigned)) | (Q(cell_review__isnull=False) & Exists(decided))
        )
    else:
        return Conflict.objects.none()
    return conflicts.select_related(
        "field__review__set_a__annotator", "field__review__set_b__annotator", "resolved_by"
    ).prefetch_related("cell_review__decisions__reviewer")


def cell_reviews_visible_to(user: Any) -> QuerySet[CellReview]:
    """Managers see every cell review; an annotator those of the queued cells they decided (what of the other
    reviewer's decision they may read is decided by `cell_decision_visible`); anyone else none (404)."""
    reviews = CellReview.objects.prefetch_related("decisions__reviewer")
    if is_lab_manager(user):
        return reviews
    if Role.ANNOTATOR in roles_of(user):
        return reviews.filter(Exists(CellDecision.objects.filter(review=OuterRef("pk"), reviewer=user)))
    return reviews.none()


def cell_decision_visible(decision: CellDecision, review: CellReview, user: Any) -> bool:
    """Blindness: one's own decision always; the other's only once both decided (or for managers)."""
    return bool(decision.reviewer_id == user.pk or review.status != CellReviewStatus.OPEN or is_lab_manager(user))


def field_reviews_visible_to(user: Any) -> QuerySet[FieldReview]:
    """Cross-checks a user may measure agreement on: all for managers, the fields one reviewed for annotators."""
    reviews = FieldReview.objects.select_related("field__smear__case", "set_a__annotator", "set_b__annotator")
    if is_lab_manager(user):
        return reviews
    if Role.ANNOTATOR in roles_of(user):
        return reviews.filter(field__assignments__annotator=user)
    return reviews.none()


def agreement_of(reviews: Sequence[FieldReview]) -> dict[str, Any]:
    """Agreement of the blind annotations (before the cross-check changed anything) pooled over the given
    fields, per field, and per pair of annotators (each pair pooled with the lower user id as A)."""
    matches = [(review, FieldMatch.from_dict(review.match)) for review in reviews]
    by_pair: dict[tuple[int, int], list[FieldMatch]] = {}
    users: dict[int, Any] = {}
    for review, match in matches:
        # Annotator sets always name their annotator (a database constraint).
        user_a: Any = review.set_a.annotator
        user_b: Any = review.set_b.annotator
        users.update({user_a.pk: user_a, user_b.pk: user_b})
        key = (min(user_a.pk, user_b.pk), max(user_a.pk, user_b.pk))
        by_pair.setdefault(key, []).append(match if user_a.pk < user_b.pk else match.swapped())
    return {
        "n_fields": len(matches),
        "iou_thresholds": sorted({review.iou_threshold for review in reviews}),
        "overall": measure_agreement([match for _, match in matches]).to_dict(),
        "per_field": [_field_row(review, match) for review, match in matches],
        "per_pair": [_pair_row(users[a], users[b], pair) for (a, b), pair in sorted(by_pair.items())],
    }


def _summary(agreement: Agreement) -> dict[str, Any]:
    blasts = agreement.differential_difference[0]
    return {
        "n_agree": agreement.n_agree,
        "n_class_conflicts": agreement.n_class_conflicts,
        "n_countability_conflicts": agreement.n_countability_conflicts,
        "n_only_a": agreement.n_only_a,
        "n_only_b": agreement.n_only_b,
        "boxes": agreement.boxes.to_dict(),
        "class_kappa": agreement.class_kappa.to_dict(),
        "countability_kappa": agreement.countability_kappa.to_dict(),
        "blast_percent_difference": blasts.to_dict(),
    }


def _field_row(review: FieldReview, match: FieldMatch) -> dict[str, Any]:
    return {
        "field": review.field_id,
        "case": review.field.smear.case_id,
        "annotator_a": review.set_a.annotator_id,
        "annotator_b": review.set_b.annotator_id,
        "iou_threshold": review.iou_threshold,
        **_summary(measure_agreement([match])),
    }


def _pair_row(user_a: Any, user_b: Any, matches: Sequence[FieldMatch]) -> dict[str, Any]:
    return {
        "annotator_a": user_a.pk,
        "annotator_a_username": user_a.get_username(),
        "annotator_b": user_b.pk,
        "annotator_b_username": user_b.get_username(),
        "n_fields": len(matches),
        **_summary(measure_agreement(matches)),
    }


def annotator_loads() -> list[dict[str, Any]]:
    """Every active annotator with their open work (assigned fields whose own set is not submitted yet)."""
    submitted = AnnotationSet.objects.filter(
        field=OuterRef("field"),
        annotator=OuterRef("annotator"),
        kind=AnnotationKind.ANNOTATOR,
        status__in=[AnnotationStatus.SUBMITTED, AnnotationStatus.LOCKED],
    )
    annotators = list(
        User.objects.filter(is_active=True, groups__name=Role.ANNOTATOR.value).order_by("username").distinct()
    )
    assignments = Assignment.objects.filter(annotator__in=annotators)
    open_counts = Counter(assignments.exclude(Exists(submitted)).values_list("annotator_id", flat=True))
    totals = Counter(assignments.values_list("annotator_id", flat=True))
    return [
        {
            "id": user.pk,
            "username": user.get_username(),
            "open_assignments": open_counts[user.pk],
            "assignments": totals[user.pk],
        }
        for user in annotators
    ]
