"""The life of a field: one table of the status changes a field may make, and `field_transition`, the only code that
changes `Field.status`; a field created in bulk starts in a status `field_status_at_creation` allows (uploaded, or
one step from it). Any other change is a bug somewhere upstream and is refused (409), never written.

    uploaded -> prelabelled                    the model pre-labelled it
    uploaded | prelabelled -> in_annotation    an annotator was assigned (or an annotator's set was imported)
    uploaded -> consensus                      imported as truth
    in_annotation -> uploaded | prelabelled    its last assignment was taken back before anyone submitted
    in_annotation -> in_crosscheck             both annotators submitted and disagree somewhere
    in_annotation -> consensus                 both annotators submitted and agree on every cell
    in_crosscheck -> in_adjudication           both annotators kept their version of a conflict
    in_crosscheck -> consensus                 every conflict was settled by the annotators (or an adjudicator)
    in_adjudication -> consensus               the last conflict was decided, or the reopened consensus locked again
    consensus -> in_adjudication               an adjudicator reopened the consensus (with a reason)
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from django.utils import timezone

from aicell.errors import NotFound, StateConflict
from annotations.models import Field, FieldStatus

TRANSITIONS: Mapping[FieldStatus, frozenset[FieldStatus]] = {
    FieldStatus.UPLOADED: frozenset({FieldStatus.PRELABELLED, FieldStatus.IN_ANNOTATION, FieldStatus.CONSENSUS}),
    FieldStatus.PRELABELLED: frozenset({FieldStatus.IN_ANNOTATION}),
    FieldStatus.IN_ANNOTATION: frozenset(
        {FieldStatus.UPLOADED, FieldStatus.PRELABELLED, FieldStatus.IN_CROSSCHECK, FieldStatus.CONSENSUS}
    ),
    FieldStatus.IN_CROSSCHECK: frozenset({FieldStatus.IN_ADJUDICATION, FieldStatus.CONSENSUS}),
    FieldStatus.IN_ADJUDICATION: frozenset({FieldStatus.CONSENSUS}),
    FieldStatus.CONSENSUS: frozenset({FieldStatus.IN_ADJUDICATION}),
}


class IllegalFieldTransition(StateConflict):
    def __init__(self, field_id: int, current: FieldStatus, to: FieldStatus) -> None:
        allowed = sorted(TRANSITIONS[current])
        super().__init__(
            f"Field {field_id} is {current}; it cannot become {to} "
            f"(from {current} it may become {', '.join(allowed) or 'nothing else'}).",
            details={"current_status": current.value, "allowed": [status.value for status in allowed]},
        )


def field_status_at_creation(status: FieldStatus) -> FieldStatus:
    """The status a new field may be created with: `uploaded`, or a status one step from it (a bulk import creates its
    fields already as truth or assigned, the same move `field_transition` would make, without a second write)."""
    if status != FieldStatus.UPLOADED and status not in TRANSITIONS[FieldStatus.UPLOADED]:
        raise StateConflict(
            f"A new field cannot start as {status}: it starts as uploaded or one step from it.",
            details={"allowed": sorted(TRANSITIONS[FieldStatus.UPLOADED] | {FieldStatus.UPLOADED})},
        )
    return status


def field_transition(field: Field, to: FieldStatus) -> None:
    """Move `field` to status `to` if the table allows it from the status it has; otherwise raise
    IllegalFieldTransition. The write applies only to the status that was checked: when the row changed since
    `field` was read, the check is made again against what it is now."""
    current = FieldStatus(field.status)
    if to not in TRANSITIONS[current]:
        raise IllegalFieldTransition(field.pk, current, to)
    if Field.objects.filter(pk=field.pk, status=current).update(status=to, updated_at=timezone.now()):
        field.status = to
        return
    now = Field.objects.filter(pk=field.pk).values_list("status", flat=True).first()
    if now is None:
        raise NotFound(f"Field {field.pk} does not exist.")
    field.status = now
    field_transition(field, to)


def fields_transition_from(field_ids: Collection[int], current: FieldStatus, to: FieldStatus) -> int:
    """Move every field of `field_ids` that has status `current` to `to` in one UPDATE (the bulk form of
    `field_transition` for callers holding the rows' locks, e.g. a pre-label chunk moving its uploaded fields to
    pre-labelled); fields in another status are left as they are. Returns how many moved."""
    if to not in TRANSITIONS[current]:
        raise IllegalFieldTransition(0, current, to)
    return Field.objects.filter(pk__in=list(field_ids), status=current).update(status=to, updated_at=timezone.now())
