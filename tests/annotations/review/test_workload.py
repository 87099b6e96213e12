"""Automatic assignment: two distinct annotators per field, least open work first, in turn among equals."""

import pytest

from annotations.review.workload import AnnotatorLoad, FieldNeed, NotEnoughAnnotators, balance


def test_the_least_loaded_get_the_work_and_loads_grow_as_fields_are_given() -> None:
    loads = [AnnotatorLoad(1, 3), AnnotatorLoad(2, 0), AnnotatorLoad(3, 1)]
    # Field 10: users 2 (0 open) and 3 (1 open); loads become 1: 3, 2: 1, 3: 2. Field 11: 2 (1), then 3 (2)
    # before 1 (3). Field 12: 2 (2 open), then 1 and 3 both at 3 open: 1 was never given work, 3 just was.
    chosen = balance(loads, [FieldNeed(10), FieldNeed(11), FieldNeed(12)])

    assert chosen == {10: [2, 3], 11: [2, 3], 12: [2, 1]}


def test_equal_loads_take_turns_by_oldest_last_assignment() -> None:
    loads = [AnnotatorLoad(1, 0, last_assigned_rank=9), AnnotatorLoad(2, 0, 5), AnnotatorLoad(3, 0, -1)]
    chosen = balance(loads, [FieldNeed(10), FieldNeed(11), FieldNeed(12)])

    # 3 (never) and 2 (rank 5) first; then 1 (rank 9) and 3 (rank of its first turn); then 2 and 1 again.
    assert chosen == {10: [3, 2], 11: [1, 3], 12: [2, 1]}


def test_a_field_never_gets_its_assigned_annotator_again() -> None:
    chosen = balance([AnnotatorLoad(1, 0), AnnotatorLoad(2, 5)], [FieldNeed(10, assigned=frozenset({1}))])

    assert chosen == {10: [2]}


def test_too_few_annotators_is_an_error_naming_the_field() -> None:
    with pytest.raises(NotEnoughAnnotators, match="field 10 needs 2 more annotator"):
        balance([AnnotatorLoad(1, 0)], [FieldNeed(10)])


def test_a_full_field_needs_nobody() -> None:
    assert balance([AnnotatorLoad(1, 0)], [FieldNeed(10, assigned=frozenset({1, 2}))]) == {10: []}
