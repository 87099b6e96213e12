"""Cell-level blind double review (the review queue): two reviewers decide one predicted cell, blind to each other.

The flow of one queued cell (its `CellReview.status` in brackets):
  first decision [open] -> second decision by another reviewer -> the same verdict (and class) is truth at once
  [truth, agreed]; different verdicts become a `Conflict` of the cross-check on the crop [in_crosscheck] -> concede
  (resolved) or keep; two keeps escalate to the adjudicator -> the settled version is truth [truth, resolved or
  adjudicated].

A decision is a verdict ("class" with a class id, "uncountable", "not_a_cell") and the box as the reviewer left it
(the model's box unless corrected). Agreed truth takes the mean of the two boxes. The caller (the review queue's
service) checks that the reviewer holds the cell and that its model version is still active; this module checks
everything about the decisions themselves. Every step locks the field row, like the field-level steps.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from aicell.errors import StateConflict, ValidationFailed
from annotations.audit import audit_record
from annotations.models import (
    Cell,
    CellDecision,
    CellReview,
    CellReviewStatus,
    CellVerdict,
    Conflict,
    ConflictKind,
    ConflictStatus,
    Resolution,
    ReviewOutcome,
)
from annotations.review.consensus import BOX_KEYS, mean_box
from annotations.services import lock_field, validate_box, validate_cell_class
from annotations.taxonomy import CLASS_NAMES


def prediction_snapshot(cell: Cell) -> dict[str, Any]:
    """What the model said about a queued cell, kept with its review for provenance."""
    probabilities = list(cell.scores.get("probabilities", []))
    top3 = sorted(range(len(probabilities)), key=lambda index: -probabilities[index])[:3]
    return {
        "cell": cell.pk,
        "model_version": cell.annotation_set.model_version_id,
        **{key: getattr(cell, key) for key in BOX_KEYS},
        "countable": cell.countable,
        "cell_class": cell.cell_class_id,
        "p_countable": cell.scores.get("p_countable"),
        "top3": [
            {"cell_class": index, "name": CLASS_NAMES[index], "probability": probabilities[index]} for index in top3
        ],
    }


def decision_snapshot(decision: CellDecision) -> dict[str, Any]:
    """A decision in the shape of a conflict's version (`CellVersionSerializer`), with its verdict."""
    return {
        "id": None,
        **{key: getattr(decision, key) for key in BOX_KEYS},
        "countable": decision.verdict == CellVerdict.CLASS,
        "cell_class": decision.cell_class_id,
        "verdict": decision.verdict,
        "decision": decision.pk,
        "reviewer": decision.reviewer_id,
    }


def cell_review_snapshot(review: CellReview) -> dict[str, Any]:
    return {
        "id": review.pk,
        "cell": review.cell_id,
        "field": review.field_id,
        "status": review.status,
        "verdict": review.verdict,
        "cell_class": review.cell_class_id,
        **{key: getattr(review, key) for key in BOX_KEYS},
        "outcome": review.outcome,
    }


def _verdict(data: Mapping[str, Any]) -> tuple[str, int | None]:
    verdict = data.get("verdict")
    if verdict not in CellVerdict.values:
        raise ValidationFailed(f"verdict must be one of {', '.join(CellVerdict.values)}.", field="verdict")
    cell_class = validate_cell_class(data.get("cell_class"))
    if verdict == CellVerdict.CLASS and cell_class is None:
        raise ValidationFailed('A "class" verdict needs cell_class.', field="cell_class")
    if verdict != CellVerdict.CLASS and cell_class is not None:
        raise ValidationFailed(f'A "{verdict}" verdict has no cell_class.', field="cell_class")
    return verdict, cell_class.pk if cell_class is not None else None


def cell_decision_create(*, cell: Cell, data: Mapping[str, Any], actor: Any) -> CellReview:
    """Record `actor`'s blind decision on the predicted `cell`; the second decision settles agreement at once or
    opens the cross-check. 409 when the cell has its two decisions already or the actor decided it before."""
    verdict, cell_class_id = _verdict(data)
    with transaction.atomic():
        field = lock_field(cell.annotation_set.field_id)
        box = data.get("box") or {key: getattr(cell, key) for key in BOX_KEYS}
        if not isinstance(box, Mapping):
            raise ValidationFailed("box must be {x, y, width, height}.", field="box")
        x, y, w, h = validate_box(box, image_width=field.width, image_height=field.height)
        review = CellReview.objects.select_for_update().filter(cell=cell).first()
        if review is None:
            review = CellReview.objects.create(cell=cell, field=field, prediction=prediction_snapshot(cell))
        decisions = list(review.decisions.order_by("slot"))
        if any(decision.reviewer_id == actor.pk for decision in decisions):
            raise StateConflict(
                f"You decided cell {cell.pk} already; nothing was changed.", details={"reason": "already_decided"}
            )
        if review.status != CellReviewStatus.OPEN or len(decisions) >= 2:
            raise StateConflict(
                f"Cell {cell.pk} has its two decisions already; nothing was changed.",
                details={"reason": "decided_by_two"},
            )
        try:
            with transaction.atomic():
                decision = CellDecision.objects.create(
                    review=review,
                    reviewer=actor,
                    slot=len(decisions) + 1,
                    verdict=verdict,
                    cell_class_id=cell_class_id,
                    x=x,
                    y=y,
                    width=w,
                    height=h,
                )
        except IntegrityError as exc:
            raise StateConflict(f"Cell {cell.pk} was decided by someone else meanwhile; try again.") from exc
        audit_record(
            actor=actor,
            action="cell_decision.create",
            entity="cell_decision",
            entity_id=decision.pk,
            field_id=field.pk,
            after={"cell_review": review.pk, "cell": cell.pk, **decision_snapshot(decision)},
        )
        if len(decisions) == 1:
            _second_decision(review, decisions[0], decision, actor)
    return review


def cell_decision_withdraw(*, cell_id: int, actor: Any) -> CellReview:
    """Take back one's decision (undo) while the other reviewer has not decided yet; after that both decisions
    are final and differences go through the cross-check."""
    with transaction.atomic():
        review = CellReview.objects.filter(cell_id=cell_id).first()
        decision = CellDecision.objects.filter(review=review, reviewer=actor).first() if review else None
        if review is None or decision is None:
            raise StateConflict(f"You have no decision on cell {cell_id} to take back.", details={"reason": "none"})
        lock_field(review.field_id)
        review = CellReview.objects.select_for_update().get(pk=review.pk)
        if review.status != CellReviewStatus.OPEN or review.decisions.count() != 1:
            raise StateConflict(
                f"Cell {cell_id} has both decisions; yours is final (differences go to the cross-check).",
                details={"reason": "decided_by_two"},
            )
        before = decision_snapshot(decision)
        decision_id = decision.pk
        decision.delete()
        audit_record(
            actor=actor,
            action="cell_decision.withdraw",
            entity="cell_decision",
            entity_id=decision_id,
            field_id=review.field_id,
            before={"cell_review": review.pk, "cell": cell_id, **before},
        )
    return review


def _second_decision(review: CellReview, a: CellDecision, b: CellDecision, actor: Any) -> None:
    # Two decisions: the cell leaves the review queue's indexes for good (`Cell.review_version`).
    Cell.objects.filter(cell_review=review).update(review_version=None)
    snapshot_a, snapshot_b = decision_snapshot(a), decision_snapshot(b)
    if a.verdict == b.verdict and a.cell_class_id == b.cell_class_id:
        _make_truth(
            review,
            {**mean_box(snapshot_a, snapshot_b), "verdict": a.verdict, "cell_class": a.cell_class_id},
            ReviewOutcome.AGREED,
            actor,
        )
        return
    conflict = Conflict.objects.create(
        field_id=review.field_id,
        cell_review=review,
        kind=ConflictKind.PAIR,
        # Both flags false would be no conflict: a class against "not a cell" or "uncountable" differs in class.
        class_differs=a.cell_class_id != b.cell_class_id or a.verdict != b.verdict,
        countability_differs=(a.verdict == CellVerdict.CLASS) != (b.verdict == CellVerdict.CLASS),
        snapshot_a=snapshot_a,
        snapshot_b=snapshot_b,
    )
    review.status = CellReviewStatus.IN_CROSSCHECK
    review.save(update_fields=["status"])
    audit_record(
        actor=actor,
        action="cell_review.crosscheck",
        entity="cell_review",
        entity_id=review.pk,
        field_id=review.field_id,
        after={**cell_review_snapshot(review), "conflict": conflict.pk},
    )


def _make_truth(review: CellReview, final: Mapping[str, Any], outcome: str, actor: Any) -> None:
    before = cell_review_snapshot(review)
    review.status = CellReviewStatus.TRUTH
    review.verdict = final["verdict"]
    review.cell_class_id = final["cell_class"] if final["verdict"] == CellVerdict.CLASS else None
    for key in BOX_KEYS:
        setattr(review, key, final[key])
    review.outcome = outcome
    review.decided_at = timezone.now()
    review.save()
    audit_record(
        actor=actor,
        action="cell_truth.create",
        entity="cell_review",
        entity_id=review.pk,
        field_id=review.field_id,
        before=before,
        after=cell_review_snapshot(review),
    )


# --- the cross-check of a cell (called by `review.services.conflict_resolve`, which holds the field lock) --------


def cell_conflict_side(conflict: Conflict, actor: Any) -> str | None:
    """ "a" or "b" when `actor` made decision A or B of the conflict's cell, else None."""
    slot = (
        CellDecision.objects.filter(review_id=conflict.cell_review_id, reviewer=actor)
        .values_list("slot", flat=True)
        .first()
    )
    return {1: Resolution.A, 2: Resolution.B}.get(slot) if slot is not None else None


def cell_version(conflict: Conflict, side: str) -> dict[str, Any]:
    """The final cell when side "a" or "b" wins: that side's verdict and class on the mean of both boxes."""
    a, b = conflict.snapshot_a or {}, conflict.snapshot_b or {}
    chosen = a if side == Resolution.A else b
    return {
        **mean_box(a, b),
        "countable": chosen["countable"],
        "cell_class": chosen["cell_class"],
        "verdict": chosen["verdict"],
        "source_cell": None,
    }


def cell_conflict_settled(conflict: Conflict, actor: Any) -> None:
    """Once the conflict of a queued cell is resolved or adjudicated, its settled version becomes the cell's truth;
    an adjudicator's "none" means "not a white cell" (on the mean box of the two decisions)."""
    if conflict.status not in (ConflictStatus.RESOLVED, ConflictStatus.ADJUDICATED):
        return
    assert conflict.cell_review_id is not None
    review = CellReview.objects.select_for_update().get(pk=conflict.cell_review_id)
    final = conflict.final_cell
    if final is None:
        final = {**mean_box(conflict.snapshot_a or {}, conflict.snapshot_b or {}), "cell_class": None}
        verdict = CellVerdict.NOT_A_CELL
    else:
        verdict = final.get("verdict") or (CellVerdict.CLASS if final["countable"] else CellVerdict.UNCOUNTABLE)
    if verdict == CellVerdict.CLASS and final.get("cell_class") is None:
        raise ValidationFailed("A countable cell needs a class.", field="cell.cell_class")
    outcome = ReviewOutcome.RESOLVED if conflict.status == ConflictStatus.RESOLVED else ReviewOutcome.ADJUDICATED
    _make_truth(review, {**final, "verdict": verdict}, outcome, actor)
