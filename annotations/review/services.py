"""Double review: assignments, the cross-check of two blind annotations, conflict resolution and the consensus.

The flow of one field (its `status` in brackets):
  assigned to two annotators [in_annotation] -> both submit -> the boxes are matched (`matching.match_boxes` on the
  two frozen, submitted sets) -> agreeing pairs wait for the consensus, every other outcome becomes a Conflict
  [in_crosscheck] -> each annotator concedes (takes the other's version: resolved at once) or keeps; both keeping
  escalates [in_adjudication once no conflict is open] -> an adjudicator decides -> when no conflict is left the
  consensus set is built, locked [consensus]. Reopening (adjudicator + reason) lets adjudicators edit it
  [in_adjudication] until they lock it again [consensus].

Consensus cells follow the rule of `review.consensus` (the mean box of a matched pair, a single box as drawn or not
at all); an adjudicator may instead give a cell of their own. `review_outcome` says agreed / resolved / adjudicated.

Every step locks the field row first, so the steps of one field never interleave; conflicts carry a version.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Exists, Max, OuterRef
from django.utils import timezone

from aicell.errors import FieldError, NotFound, PermissionDenied, StateConflict, ValidationFailed
from aicell.roles import Role, has_role
from annotations.audit import annotation_set_snapshot, audit_record, cell_snapshot
from annotations.field_states import field_transition
from annotations.models import (
    AnnotationKind,
    AnnotationSet,
    AnnotationStatus,
    Assignment,
    Cell,
    Conflict,
    ConflictKind,
    ConflictStatus,
    Decision,
    Field,
    FieldReview,
    FieldStatus,
    Resolution,
    ReviewOutcome,
    ReviewSettings,
)
from annotations.review.cells import cell_conflict_settled, cell_conflict_side, cell_version
from annotations.review.consensus import BOX_KEYS, ConsensusCell, agreed_cell, chosen_cell
from annotations.review.matching import BoxAnnotation, FieldMatch, MatchOutcome, OutcomeKind, match_boxes
from annotations.review.workload import AnnotatorLoad, FieldNeed, NotEnoughAnnotators, balance
from annotations.services import (
    check_adjudicator_may_change,
    check_version,
    lock_field,
    validate_box,
    validate_cell_class,
)
from annotations.truth import truth

User = get_user_model()

# --- settings ----------------------------------------------------------------------------------------------------


def review_settings_snapshot(review_settings: ReviewSettings) -> dict[str, Any]:
    return {"show_prelabels": review_settings.show_prelabels, "iou_threshold": review_settings.iou_threshold}


def review_settings_update(*, changes: Mapping[str, Any], actor: Any) -> ReviewSettings:
    if not changes:
        raise ValidationFailed("Send the settings to change: show_prelabels and/or iou_threshold.", field="body")
    unknown = sorted(set(changes) - {"show_prelabels", "iou_threshold"})
    if unknown:
        raise ValidationFailed(
            f"Unknown settings: {', '.join(unknown)}.", errors=[FieldError(name, "not a setting") for name in unknown]
        )
    with transaction.atomic():
        review_settings = ReviewSettings.load_for_update()
        before = review_settings_snapshot(review_settings)
        if "show_prelabels" in changes:
            if not isinstance(changes["show_prelabels"], bool):
                raise ValidationFailed("show_prelabels must be true or false.", field="show_prelabels")
            review_settings.show_prelabels = changes["show_prelabels"]
        if "iou_threshold" in changes:
            review_settings.iou_threshold = _iou_threshold(changes["iou_threshold"])
        review_settings.updated_by = actor
        review_settings.save()
        audit_record(
            actor=actor,
            action="review_settings.update",
            entity="review_settings",
            entity_id=review_settings.pk,
            before=before,
            after=review_settings_snapshot(review_settings),
        )
    return review_settings


def _iou_threshold(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        raise ValidationFailed("iou_threshold must be a number above 0 and at most 1.", field="iou_threshold")
    return float(value)


# --- assignments -------------------------------------------------------------------------------------------------


def assignment_snapshot(assignment: Assignment) -> dict[str, Any]:
    return {
        "id": assignment.pk,
        "field": assignment.field_id,
        "annotator": assignment.annotator_id,
        "slot": assignment.slot,
    }


def assignment_create(*, field_id: int, annotator_id: int, actor: Any) -> Assignment:
    """Give a field to a chosen annotator (an adjudicator's or admin's choice)."""
    with transaction.atomic():
        field = _lock_field_named_in_body(field_id)
        annotator = _annotator(annotator_id)
        closed = _closed_for_assignment(field)
        if closed:
            raise ValidationFailed(closed, field="field")
        taken = list(field.assignments.select_related("annotator").order_by("slot"))
        if any(assignment.annotator_id == annotator.pk for assignment in taken):
            raise ValidationFailed(
                f"{annotator.get_username()} is already assigned to field {field.pk}; "
                "a field needs two different annotators.",
                field="annotator",
            )
        if len(taken) >= 2:
            names = " and ".join(assignment.annotator.get_username() for assignment in taken)
            raise ValidationFailed(f"Field {field.pk} already has its two annotators ({names}).", field="field")
        return _assign(field, annotator, actor, reason="")


def _lock_field_named_in_body(field_id: Any) -> Field:
    if isinstance(field_id, bool) or not isinstance(field_id, int):
        raise ValidationFailed("field must be a field id.", field="field")
    field = Field.objects.select_for_update().filter(pk=field_id).first()
    if field is None:
        raise ValidationFailed(f"Field {field_id} does not exist.", field="field")
    return field


def _annotator(user_id: Any) -> Any:
    user = User.objects.filter(pk=user_id, is_active=True).first() if isinstance(user_id, int) else None
    if user is None or not has_role(user, Role.ANNOTATOR):
        raise ValidationFailed(f"User {user_id!r} is not an active annotator.", field="annotator")
    return user


def _closed_for_assignment(field: Field) -> str:
    """Why a field takes no (more) annotators, or "" when it does."""
    if FieldReview.objects.filter(field=field).exists():
        return f"Field {field.pk} is past annotation: its cross-check has started."
    if truth(with_reopened=True).filter(field=field).exists():
        return f"Field {field.pk} already holds reviewed truth."
    return ""


def _assign(field: Field, annotator: Any, actor: Any, reason: str) -> Assignment:
    """Create the assignment in the field's free slot (the caller holds the field lock)."""
    slot = min({1, 2} - set(field.assignments.values_list("slot", flat=True)))
    try:
        with transaction.atomic():
            assignment = Assignment.objects.create(field=field, annotator=annotator, slot=slot, created_by=actor)
    except IntegrityError as exc:
        raise StateConflict(f"Field {field.pk} was assigned by someone else meanwhile; read it again.") from exc
    if field.status in (FieldStatus.UPLOADED, FieldStatus.PRELABELLED):
        field_transition(field, FieldStatus.IN_ANNOTATION)
    audit_record(
        actor=actor,
        action="assignment.create",
        entity="assignment",
        entity_id=assignment.pk,
        field_id=field.pk,
        after=assignment_snapshot(assignment),
        reason=reason,
    )
    return assignment


@dataclass(frozen=True)
class AutoAssignment:
    created: list[Assignment]
    skipped: list[FieldError]


def assignments_auto_create(
    *, field_ids: Sequence[int], annotator_ids: Sequence[int] | None, actor: Any
) -> AutoAssignment:
    """Fill every given field up to two annotators, balancing open work (see `workload.balance`).

    Fields that are complete, past annotation or already hold truth are skipped and reported, not refused.
    """
    if not field_ids:
        raise ValidationFailed("Name at least one field (fields, smear or case).", field="fields")
    with transaction.atomic():
        fields = list(Field.objects.select_for_update().filter(pk__in=field_ids).order_by("id"))
        unknown = sorted(set(field_ids) - {field.pk for field in fields})
        if unknown:
            raise ValidationFailed(f"These fields do not exist: {unknown}.", field="fields")
        pool = _annotator_pool(annotator_ids)
        taken = _assignments_by_field(fields)
        needs, skipped = [], []
        for field in fields:
            closed = _closed_for_assignment(field)
            if closed:
                skipped.append(FieldError(f"field {field.pk}", closed))
            elif len(taken[field.pk]) >= 2:
                skipped.append(FieldError(f"field {field.pk}", "already has two annotators"))
            else:
                needs.append(FieldNeed(field.pk, frozenset(a.annotator_id for a in taken[field.pk])))
        try:
            choice = balance(_loads(pool), needs)
        except NotEnoughAnnotators as exc:
            raise ValidationFailed(f"Not enough annotators: {exc}.", field="annotators") from exc
        fields_by_id = {field.pk: field for field in fields}
        created = [
            _assign(fields_by_id[field_id], pool[user_id], actor, reason="automatic: fewest open assignments, in turn")
            for field_id, user_ids in choice.items()
            for user_id in user_ids
        ]
    return AutoAssignment(created=created, skipped=skipped)


def _annotator_pool(annotator_ids: Sequence[int] | None) -> dict[int, Any]:
    annotators = User.objects.filter(is_active=True, groups__name=Role.ANNOTATOR.value)
    if annotator_ids is not None:
        chosen = {user.pk: user for user in annotators.filter(pk__in=annotator_ids)}
        unknown = sorted(set(annotator_ids) - set(chosen))
        if unknown:
            raise ValidationFailed(f"These users are not active annotators: {unknown}.", field="annotators")
        return chosen
    return {user.pk: user for user in annotators}


def _assignments_by_field(fields: Sequence[Field]) -> dict[int, list[Assignment]]:
    taken: dict[int, list[Assignment]] = {field.pk: [] for field in fields}
    for assignment in Assignment.objects.filter(field__in=fields):
        taken[assignment.field_id].append(assignment)
    return taken


def _loads(pool: Mapping[int, Any]) -> list[AnnotatorLoad]:
    """Open work = assignments whose own set is not submitted yet; the latest assignment id orders turns."""
    submitted = AnnotationSet.objects.filter(
        field=OuterRef("field"),
        annotator=OuterRef("annotator"),
        kind=AnnotationKind.ANNOTATOR,
        status__in=[AnnotationStatus.SUBMITTED, AnnotationStatus.LOCKED],
    )
    assignments = Assignment.objects.filter(annotator__in=list(pool))
    open_counts = Counter(assignments.exclude(Exists(submitted)).values_list("annotator_id", flat=True))
    latest = dict(assignments.values("annotator_id").annotate(latest=Max("id")).values_list("annotator_id", "latest"))
    return [AnnotatorLoad(user_id, open_counts[user_id], latest.get(user_id, -1)) for user_id in sorted(pool)]


def assignment_delete(*, assignment_id: int, actor: Any) -> None:
    """Take a field back from an annotator who has not submitted it; their draft goes with it (kept in the audit
    trail). Once submitted, or once the cross-check started, assignments are final."""
    with transaction.atomic():
        field_id = Assignment.objects.filter(pk=assignment_id).values_list("field_id", flat=True).first()
        if field_id is None:
            raise NotFound(f"Assignment {assignment_id} does not exist.")
        field = lock_field(field_id)
        assignment = Assignment.objects.get(pk=assignment_id)
        draft = AnnotationSet.objects.filter(
            field=field, annotator_id=assignment.annotator_id, kind=AnnotationKind.ANNOTATOR
        ).first()
        if FieldReview.objects.filter(field=field).exists() or (draft and draft.status != AnnotationStatus.DRAFT):
            raise StateConflict(
                "The annotator has submitted this field; the assignment is final and the work stays.",
                details={"assignment": assignment_snapshot(assignment)},
            )
        before = {**assignment_snapshot(assignment), "draft": annotation_set_snapshot(draft) if draft else None}
        draft_id = draft.pk if draft is not None else None
        if draft is not None:
            draft.delete()
        assignment.delete()
        audit_record(
            actor=actor,
            action="assignment.delete",
            entity="assignment",
            entity_id=assignment_id,
            field_id=field.pk,
            annotation_set_id=draft_id,
            before=before,
        )
        if field.status == FieldStatus.IN_ANNOTATION and not field.assignments.exists():
            has_predictions = field.annotation_sets.filter(kind=AnnotationKind.PREDICTION).exists()
            field_transition(field, FieldStatus.PRELABELLED if has_predictions else FieldStatus.UPLOADED)


# --- the cross-check ---------------------------------------------------------------------------------------------


def _box(cell: Cell) -> BoxAnnotation:
    return BoxAnnotation(cell.pk, cell.x, cell.y, cell.width, cell.height, cell.cell_class_id, cell.countable)


def field_review_start_if_ready(field_id: int, actor: Any) -> FieldReview | None:
    """Start the cross-check once both assigned annotators have submitted (the caller holds the field lock).

    A is the annotator of slot 1. The result of the matching is stored; every outcome other than agreement
    becomes a Conflict. Without conflicts the consensus is built at once.
    """
    assignments = list(Assignment.objects.filter(field_id=field_id).order_by("slot"))
    if len(assignments) != 2 or FieldReview.objects.filter(field_id=field_id).exists():
        return None
    sets = {
        annotation_set.annotator_id: annotation_set
        for annotation_set in AnnotationSet.objects.filter(
            field_id=field_id,
            kind=AnnotationKind.ANNOTATOR,
            annotator__in=[a.annotator_id for a in assignments],
            status=AnnotationStatus.SUBMITTED,
        )
    }
    set_a, set_b = (sets.get(assignment.annotator_id) for assignment in assignments)
    if set_a is None or set_b is None:
        return None
    threshold = ReviewSettings.load().iou_threshold
    cells = {cell.pk: cell for cell in Cell.objects.filter(annotation_set__in=[set_a, set_b]).order_by("id")}
    match = match_boxes(
        [_box(c) for c in cells.values() if c.annotation_set_id == set_a.pk],
        [_box(c) for c in cells.values() if c.annotation_set_id == set_b.pk],
        threshold,
    )
    field = Field.objects.get(pk=field_id)
    review = FieldReview.objects.create(
        field=field, set_a=set_a, set_b=set_b, iou_threshold=threshold, match=match.to_dict()
    )
    conflicts = Conflict.objects.bulk_create(
        [_conflict_of(field, outcome, cells) for outcome in match.outcomes if not outcome.is_agreement]
    )
    audit_record(
        actor=actor,
        action="review.start",
        entity="field_review",
        entity_id=review.pk,
        field_id=field.pk,
        after={
            "set_a": set_a.pk,
            "set_b": set_b.pk,
            "iou_threshold": threshold,
            "agreed": sum(outcome.is_agreement for outcome in match.outcomes),
            "conflicts": len(conflicts),
        },
    )
    if conflicts:
        field_transition(field, FieldStatus.IN_CROSSCHECK)
    else:
        _consensus_build(field, review, actor)
    return review


def _conflict_of(field: Field, outcome: MatchOutcome, cells: Mapping[int, Cell]) -> Conflict:
    cell_a = cells[int(outcome.key_a)] if outcome.key_a is not None else None
    cell_b = cells[int(outcome.key_b)] if outcome.key_b is not None else None
    kind = ConflictKind.PAIR if outcome.is_pair else (ConflictKind.ONLY_A if cell_a else ConflictKind.ONLY_B)
    return Conflict(
        field=field,
        kind=kind,
        class_differs=outcome.has(OutcomeKind.CLASS_CONFLICT),
        countability_differs=outcome.has(OutcomeKind.COUNTABILITY_CONFLICT),
        iou=outcome.iou,
        cell_a=cell_a,
        cell_b=cell_b,
        snapshot_a=cell_snapshot(cell_a) if cell_a else None,
        snapshot_b=cell_snapshot(cell_b) if cell_b else None,
    )


def conflict_snapshot(conflict: Conflict) -> dict[str, Any]:
    return {
        "id": conflict.pk,
        "kinds": conflict.kinds,
        "status": conflict.status,
        "decision_a": conflict.decision_a,
        "decision_b": conflict.decision_b,
        "resolution": conflict.resolution,
        "final_cell": conflict.final_cell,
        "version": conflict.version,
    }


def conflict_resolve(
    *, conflict_id: int, expected_version: int | None, data: Mapping[str, Any], actor: Any
) -> Conflict:
    """An annotator of the field concedes or keeps; an adjudicator decides (final). 409 when someone was first."""
    with transaction.atomic():
        field_id = Conflict.objects.filter(pk=conflict_id).values_list("field_id", flat=True).first()
        if field_id is None:
            raise NotFound(f"Conflict {conflict_id} does not exist.")
        field = lock_field(field_id)
        conflict = Conflict.objects.select_for_update().get(pk=conflict_id)
        review: FieldReview | None = None
        if conflict.cell_review_id is not None:  # a queued cell's conflict: A and B are its two decisions
            side = cell_conflict_side(conflict, actor)
        else:
            review = FieldReview.objects.select_related("set_a", "set_b").get(field=field)
            side = _side_of(actor, review)
        if side is None and not has_role(actor, Role.ADJUDICATOR):
            raise PermissionDenied("Only the field's two annotators and adjudicators resolve its conflicts.")
        check_version(expected_version, conflict.version, lambda: conflict_snapshot(conflict), what="conflict")
        before = conflict_snapshot(conflict)
        if side is not None:
            _annotator_decides(conflict, side, data, actor)
        else:
            _adjudicator_decides(conflict, field, data, actor)
        conflict.version += 1
        conflict.save()
        audit_record(
            actor=actor,
            action="conflict.adjudicate" if side is None else f"conflict.{data['decision']}",
            entity="conflict",
            entity_id=conflict.pk,
            field_id=field.pk,
            before=before,
            after=conflict_snapshot(conflict),
            reason=conflict.reason if side is None else str(data.get("reason") or ""),
        )
        if review is None:
            cell_conflict_settled(conflict, actor)
        else:
            _advance(field, review, actor)
    return conflict


def _side_of(actor: Any, review: FieldReview) -> str | None:
    if review.set_a.annotator_id == actor.pk:
        return Resolution.A
    if review.set_b.annotator_id == actor.pk:
        return Resolution.B
    return None


def _annotator_decides(conflict: Conflict, side: str, data: Mapping[str, Any], actor: Any) -> None:
    if conflict.status != ConflictStatus.OPEN:
        raise StateConflict(
            f"This conflict is {conflict.status} already; nothing was changed.",
            details={"current_version": conflict.version, "current": conflict_snapshot(conflict)},
        )
    decision = data.get("decision")
    if decision not in Decision.values:
        raise ValidationFailed('As an annotator of this field, decide "concede" or "keep".', field="decision")
    other = Resolution.B if side == Resolution.A else Resolution.A
    setattr(conflict, f"decision_{side}", decision)
    if decision == Decision.CONCEDE:
        _settle(conflict, ConflictStatus.RESOLVED, other, _version_cell(conflict, other), actor)
    elif getattr(conflict, f"decision_{other}") == Decision.KEEP:
        conflict.status = ConflictStatus.ESCALATED
    # The other side's "concede" would have resolved the conflict already, so only "keep" or no answer remain.


def _adjudicator_decides(conflict: Conflict, field: Field, data: Mapping[str, Any], actor: Any) -> None:
    if conflict.status not in (ConflictStatus.OPEN, ConflictStatus.ESCALATED):
        raise StateConflict(
            f"This conflict is {conflict.status} already; nothing was changed.",
            details={"current_version": conflict.version, "current": conflict_snapshot(conflict)},
        )
    decision = data.get("decision")
    if decision not in Resolution.values:
        raise ValidationFailed('As adjudicator, decide "a", "b", "none" or "custom" (with "cell").', field="decision")
    if decision == Resolution.CUSTOM:
        final_cell = _custom_cell(data.get("cell"), field)
    elif decision == Resolution.NONE:
        final_cell = None
    else:
        final_cell = _version_cell(conflict, decision)
    conflict.reason = str(data.get("reason") or "")
    _settle(conflict, ConflictStatus.ADJUDICATED, decision, final_cell, actor)


def _settle(conflict: Conflict, status: str, resolution: str, final_cell: dict[str, Any] | None, actor: Any) -> None:
    conflict.status = status
    conflict.resolution = resolution
    conflict.final_cell = final_cell
    conflict.resolved_by = actor
    conflict.resolved_at = timezone.now()


def _version_cell(conflict: Conflict, side: str) -> ConsensusCell | None:
    """The cell a side's version puts into the consensus (`consensus.chosen_cell`), or a queued cell's truth."""
    if conflict.cell_review_id is not None:
        return cell_version(conflict, side)
    return chosen_cell(conflict.snapshot_a, conflict.snapshot_b, side, pair=conflict.kind == ConflictKind.PAIR)


def _custom_cell(cell: Any, field: Field) -> dict[str, Any]:
    if not isinstance(cell, Mapping):
        raise ValidationFailed(
            'A "custom" decision needs "cell": {x, y, width, height, countable, cell_class}.', field="cell"
        )
    x, y, w, h = validate_box(cell, image_width=field.width, image_height=field.height)
    countable = cell.get("countable", True)
    if not isinstance(countable, bool):
        raise ValidationFailed("countable must be true or false.", field="cell.countable")
    cell_class = validate_cell_class(cell.get("cell_class"))
    if countable and cell_class is None:
        raise ValidationFailed("A countable consensus cell needs a class.", field="cell.cell_class")
    return {
        "x": x,
        "y": y,
        "width": w,
        "height": h,
        "countable": countable,
        "cell_class": cell_class.pk if cell_class else None,
        "source_cell": None,
    }


def _advance(field: Field, review: FieldReview, actor: Any) -> None:
    statuses = set(Conflict.objects.filter(field=field, cell_review=None).values_list("status", flat=True))
    if ConflictStatus.OPEN in statuses:
        return
    if ConflictStatus.ESCALATED in statuses:
        if field.status != FieldStatus.IN_ADJUDICATION:  # the first escalation; the field waits there for the rest
            field_transition(field, FieldStatus.IN_ADJUDICATION)
    else:
        _consensus_build(field, review, actor)


# --- the consensus -----------------------------------------------------------------------------------------------


def _consensus_build(field: Field, review: FieldReview, actor: Any) -> AnnotationSet:
    if truth(with_reopened=True).filter(field=field).exists():
        raise StateConflict(f"Field {field.pk} already holds reviewed truth; no second consensus is built.")
    consensus = AnnotationSet.objects.create(field=field, kind=AnnotationKind.CONSENSUS, status=AnnotationStatus.LOCKED)
    agreements = [outcome for outcome in FieldMatch.from_dict(review.match).outcomes if outcome.is_agreement]
    cells = Cell.objects.in_bulk([key for outcome in agreements for key in (outcome.key_a, outcome.key_b)])
    agreed = [
        _consensus_cell(
            consensus,
            agreed_cell(cell_snapshot(cells[outcome.key_a]), cell_snapshot(cells[outcome.key_b])),
            ReviewOutcome.AGREED,
        )
        for outcome in agreements
    ]
    decided = [
        _consensus_cell(
            consensus,
            conflict.final_cell,
            ReviewOutcome.RESOLVED if conflict.status == ConflictStatus.RESOLVED else ReviewOutcome.ADJUDICATED,
        )
        for conflict in Conflict.objects.filter(field=field, cell_review=None).order_by("id")
        if conflict.final_cell is not None
    ]
    Cell.objects.bulk_create(agreed + decided)
    field_transition(field, FieldStatus.CONSENSUS)
    audit_record(
        actor=actor,
        action="consensus.create",
        entity="annotation_set",
        entity_id=consensus.pk,
        field_id=field.pk,
        annotation_set_id=consensus.pk,
        after=annotation_set_snapshot(consensus),
    )
    return consensus


def _consensus_cell(consensus: AnnotationSet, cell: ConsensusCell, outcome: ReviewOutcome) -> Cell:
    return Cell(
        annotation_set=consensus,
        **{key: cell[key] for key in BOX_KEYS},
        countable=cell["countable"],
        cell_class_id=cell["cell_class"],
        source_cell_id=cell["source_cell"],
        review_outcome=outcome,
    )


def _consensus_for_change(field_id: int, expected_version: int | None, actor: Any) -> tuple[Field, AnnotationSet]:
    field = lock_field(field_id)
    consensus = AnnotationSet.objects.select_for_update().filter(field=field, kind=AnnotationKind.CONSENSUS).first()
    if consensus is None:
        raise NotFound(f"Field {field_id} has no consensus yet.")
    check_adjudicator_may_change(consensus, actor, must_be_open=False)
    check_version(expected_version, consensus.version, lambda: annotation_set_snapshot(consensus))
    return field, consensus


def consensus_reopen(*, field_id: int, expected_version: int | None, reason: Any, actor: Any) -> AnnotationSet:
    """Unlock a field's consensus for adjudicators' changes; the reason is recorded with the reopening and with
    every change made until it is locked again."""
    if not isinstance(reason, str) or not reason.strip():
        raise ValidationFailed("Say why the consensus is reopened.", field="reason")
    with transaction.atomic():
        field, consensus = _consensus_for_change(field_id, expected_version, actor)
        if consensus.status != AnnotationStatus.LOCKED:
            raise StateConflict("The consensus is open already.", details={"current_version": consensus.version})
        return _consensus_set_status(field, consensus, AnnotationStatus.DRAFT, reason.strip(), actor)


def consensus_lock(*, field_id: int, expected_version: int | None, actor: Any) -> AnnotationSet:
    with transaction.atomic():
        field, consensus = _consensus_for_change(field_id, expected_version, actor)
        if consensus.status != AnnotationStatus.DRAFT:
            raise StateConflict("The consensus is locked already.", details={"current_version": consensus.version})
        unclassified = consensus.cells.filter(countable=True, cell_class__isnull=True).count()
        if unclassified:
            raise ValidationFailed(f"{unclassified} countable consensus cell(s) have no class.", field="cells")
        review = FieldReview.objects.filter(field=field).first()
        reason = review.reopen_reason if review is not None else ""
        return _consensus_set_status(field, consensus, AnnotationStatus.LOCKED, reason, actor)


def _consensus_set_status(
    field: Field, consensus: AnnotationSet, status: str, reason: str, actor: Any
) -> AnnotationSet:
    before = annotation_set_snapshot(consensus)
    consensus.status = status
    consensus.version += 1
    consensus.save(update_fields=["status", "version", "updated_at"])
    reopening = status == AnnotationStatus.DRAFT
    FieldReview.objects.filter(field=field).update(reopen_reason=reason if reopening else "")
    field_transition(field, FieldStatus.IN_ADJUDICATION if reopening else FieldStatus.CONSENSUS)
    audit_record(
        actor=actor,
        action="consensus.reopen" if reopening else "consensus.lock",
        entity="annotation_set",
        entity_id=consensus.pk,
        field_id=field.pk,
        annotation_set_id=consensus.pk,
        before=before,
        after=annotation_set_snapshot(consensus),
        reason=reason,
    )
    return consensus
