"""The consensus rule as plain data: which cell the consensus holds for an agreed pair and for a settled conflict."""

from annotations.review.consensus import agreed_cell, chosen_cell, mean_box

A = {"id": 1, "x": 10.0, "y": 20.0, "width": 40.0, "height": 30.0, "countable": True, "cell_class": 11}
B = {"id": 2, "x": 14.0, "y": 18.0, "width": 44.0, "height": 34.0, "countable": True, "cell_class": 12}
BOX_OF_BOTH = {"x": 12.0, "y": 19.0, "width": 42.0, "height": 32.0}


def test_the_box_of_two_annotators_is_their_mean() -> None:
    assert mean_box(A, B) == BOX_OF_BOTH


def test_an_agreed_pair_gives_the_mean_box_with_a_as_source() -> None:
    agreed = agreed_cell(A, {**B, "cell_class": 11})
    assert agreed == {**BOX_OF_BOTH, "countable": True, "cell_class": 11, "source_cell": 1}


def test_an_uncountable_pair_keeps_the_class_one_side_gave() -> None:
    a, b = {**A, "countable": False, "cell_class": None}, {**B, "countable": False, "cell_class": 5}
    assert agreed_cell(a, b)["cell_class"] == 5
    assert agreed_cell(b, a)["cell_class"] == 5


def test_a_pair_settled_for_one_side_gives_the_mean_box_with_that_sides_class() -> None:
    assert chosen_cell(A, B, "a", pair=True) == {**BOX_OF_BOTH, "countable": True, "cell_class": 11, "source_cell": 1}
    assert chosen_cell(A, B, "b", pair=True) == {**BOX_OF_BOTH, "countable": True, "cell_class": 12, "source_cell": 2}


def test_a_box_only_one_side_drew_enters_as_drawn_or_not_at_all() -> None:
    box_of_a = {key: A[key] for key in ("x", "y", "width", "height")}
    assert chosen_cell(A, None, "a", pair=False) == {**box_of_a, "countable": True, "cell_class": 11, "source_cell": 1}
    assert chosen_cell(A, None, "b", pair=False) is None
    assert chosen_cell(None, B, "a", pair=False) is None
