"""The field state machine: every transition of the table works, every other pair is refused and changes nothing;
through the API an illegal transition answers 409 and the step that wanted it is rolled back."""

from __future__ import annotations

from itertools import product
from typing import Any

import pytest

from aicell.errors import StateConflict
from annotations.field_states import TRANSITIONS, IllegalFieldTransition, field_status_at_creation, field_transition
from annotations.models import AnnotationStatus, Field, FieldStatus
from tests.factories import FieldFactory, TruthSetFactory

pytestmark = pytest.mark.django_db

ALLOWED = {(current, to) for current, targets in TRANSITIONS.items() for to in targets}
ALL_PAIRS = list(product(FieldStatus, FieldStatus))


def test_the_table_names_every_status() -> None:
    assert set(TRANSITIONS) == set(FieldStatus)
    assert {
        (FieldStatus.UPLOADED, FieldStatus.PRELABELLED),
        (FieldStatus.UPLOADED, FieldStatus.IN_ANNOTATION),
        (FieldStatus.UPLOADED, FieldStatus.CONSENSUS),
        (FieldStatus.PRELABELLED, FieldStatus.IN_ANNOTATION),
        (FieldStatus.IN_ANNOTATION, FieldStatus.UPLOADED),
        (FieldStatus.IN_ANNOTATION, FieldStatus.PRELABELLED),
        (FieldStatus.IN_ANNOTATION, FieldStatus.IN_CROSSCHECK),
        (FieldStatus.IN_ANNOTATION, FieldStatus.CONSENSUS),
        (FieldStatus.IN_CROSSCHECK, FieldStatus.IN_ADJUDICATION),
        (FieldStatus.IN_CROSSCHECK, FieldStatus.CONSENSUS),
        (FieldStatus.IN_ADJUDICATION, FieldStatus.CONSENSUS),
        (FieldStatus.CONSENSUS, FieldStatus.IN_ADJUDICATION),
    } == ALLOWED


@pytest.mark.parametrize(("current", "to"), sorted(ALLOWED))
def test_an_allowed_transition_is_written(current: FieldStatus, to: FieldStatus) -> None:
    field = FieldFactory(status=current)
    field_transition(field, to)
    assert field.status == to
    assert Field.objects.get(pk=field.pk).status == to


@pytest.mark.parametrize(("current", "to"), [pair for pair in ALL_PAIRS if pair not in ALLOWED])
def test_every_other_transition_is_refused_and_changes_nothing(current: FieldStatus, to: FieldStatus) -> None:
    field = FieldFactory(status=current)
    with pytest.raises(IllegalFieldTransition) as refused:
        field_transition(field, to)
    assert refused.value.status_code == 409
    assert refused.value.details["current_status"] == current.value
    assert Field.objects.get(pk=field.pk).status == current


def test_a_transition_is_checked_against_the_status_the_row_has_now() -> None:
    field = FieldFactory(status=FieldStatus.UPLOADED)
    Field.objects.filter(pk=field.pk).update(status=FieldStatus.PRELABELLED)  # pre-labelled meanwhile
    field_transition(field, FieldStatus.IN_ANNOTATION)  # allowed from both
    assert Field.objects.get(pk=field.pk).status == FieldStatus.IN_ANNOTATION
    stale = Field.objects.get(pk=field.pk)
    Field.objects.filter(pk=field.pk).update(status=FieldStatus.CONSENSUS)
    with pytest.raises(IllegalFieldTransition):
        field_transition(stale, FieldStatus.IN_CROSSCHECK)  # allowed from what it was read as, not from what it is
    assert Field.objects.get(pk=field.pk).status == FieldStatus.CONSENSUS


def test_an_illegal_transition_answers_409_through_the_api_and_rolls_the_step_back(
    client_for: Any, adjudicator: Any
) -> None:
    # A locked consensus on a field whose status says it is still being annotated: reopening it would move the
    # field from in_annotation to in_adjudication, which the table does not allow.
    field = FieldFactory(status=FieldStatus.IN_ANNOTATION)
    consensus = TruthSetFactory(field=field)
    response = client_for(adjudicator).post(
        f"/api/v1/fields/{field.pk}/consensus/reopen", {"reason": "recount", "version": 1}, format="json"
    )
    assert response.status_code == 409, response.json()
    assert response.json()["code"] == "conflict"
    assert "in_annotation" in response.json()["detail"]
    consensus.refresh_from_db()
    assert (consensus.status, consensus.version) == (AnnotationStatus.LOCKED, 1)
    assert Field.objects.get(pk=field.pk).status == FieldStatus.IN_ANNOTATION


@pytest.mark.parametrize("status", list(FieldStatus))
def test_a_new_field_starts_as_uploaded_or_one_step_from_it(status: FieldStatus) -> None:
    if status == FieldStatus.UPLOADED or status in TRANSITIONS[FieldStatus.UPLOADED]:
        assert field_status_at_creation(status) == status
    else:
        with pytest.raises(StateConflict):
            field_status_at_creation(status)
