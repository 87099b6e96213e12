from __future__ import annotations

import pytest

from inference.core.selection import REVIEW_STRATEGIES, ReviewCandidate, UnknownStrategyError, select_for_review

NEUTROPHIL, LYMPHOBLAST, MONOCYTE = 5, 11, 16


def cell(cell_id: str, cls: int, entropy: float, field: str = "f1", margin: float = 0.5, score: float = 0.9):
    uncertainty = {"entropy": entropy, "margin": margin, "least_confidence": entropy / 2, "mutual_information": entropy}
    return ReviewCandidate(cell_id, field, cls, uncertainty, score)


def ids(selected: list[ReviewCandidate]) -> list[str]:
    return [str(c.cell_id) for c in selected]


# Four very uncertain neutrophils would fill a plain top-k; the two blasts are less uncertain.
CANDIDATES = [
    cell("n1", NEUTROPHIL, 0.90, "f1"),
    cell("n2", NEUTROPHIL, 0.85, "f2"),
    cell("n3", NEUTROPHIL, 0.80, "f3"),
    cell("n4", NEUTROPHIL, 0.75, "f4"),
    cell("b1", LYMPHOBLAST, 0.50, "f5"),
    cell("b2", LYMPHOBLAST, 0.40, "f6"),
    cell("m1", MONOCYTE, 0.60, "f7"),
]


def test_unbalanced_selection_is_plain_top_k() -> None:
    assert ids(select_for_review(CANDIDATES, 4, "entropy", balance_classes=False)) == ["n1", "n2", "n3", "n4"]


def test_balancing_takes_classes_round_robin_by_uncertainty_rank() -> None:
    # Round 1: the top cell of each class, most uncertain first; round 2 likewise with what is left.
    selected = select_for_review(CANDIDATES, 6, "entropy")
    assert ids(selected) == ["n1", "m1", "b1", "n2", "b2", "n3"]


def test_rare_class_is_not_starved_with_small_k() -> None:
    selected = select_for_review(CANDIDATES, 3, "entropy")
    assert {c.predicted_class for c in selected} == {NEUTROPHIL, LYMPHOBLAST, MONOCYTE}


def test_max_per_field_spreads_the_queue() -> None:
    same_field = [cell(f"c{i}", NEUTROPHIL, 1.0 - i / 10, "crowded") for i in range(5)]
    other = [cell("o1", NEUTROPHIL, 0.1, "quiet")]
    selected = select_for_review(same_field + other, 4, "entropy", balance_classes=False, max_per_field=2)
    assert ids(selected) == ["c0", "c1", "o1"]


def test_field_cap_applies_within_a_balanced_round() -> None:
    candidates = [cell("n", NEUTROPHIL, 0.9, "f"), cell("b", LYMPHOBLAST, 0.8, "f"), cell("m", MONOCYTE, 0.1, "g")]
    assert ids(select_for_review(candidates, 3, "entropy", max_per_field=1)) == ["n", "m"]


def test_margin_strategy_puts_the_smallest_margin_first() -> None:
    candidates = [
        cell("wide", 1, 0.5, margin=0.9),
        cell("narrow", 1, 0.5, margin=0.05),
        cell("mid", 1, 0.5, margin=0.4),
    ]
    assert ids(select_for_review(candidates, 3, "margin")) == ["narrow", "mid", "wide"]


def test_detector_strategy_puts_the_lowest_score_first() -> None:
    candidates = [cell("sure", 1, 0.5, score=0.99), cell("doubtful", 1, 0.5, score=0.31)]
    assert ids(select_for_review(candidates, 1, "detector")) == ["doubtful"]


def test_disagreement_and_least_confidence_use_their_measures() -> None:
    a = ReviewCandidate("a", "f", 1, {"mutual_information": 0.3, "least_confidence": 0.1}, 0.9)
    b = ReviewCandidate("b", "f", 1, {"mutual_information": 0.1, "least_confidence": 0.6}, 0.9)
    assert ids(select_for_review([a, b], 1, "disagreement")) == ["a"]
    assert ids(select_for_review([a, b], 1, "least_confidence")) == ["b"]


def test_ties_keep_input_order_and_k_larger_than_pool() -> None:
    candidates = [cell(f"t{i}", 1, 0.5) for i in range(3)]
    assert ids(select_for_review(candidates, 10, "entropy")) == ["t0", "t1", "t2"]
    assert select_for_review(candidates, 0, "entropy") == []


def test_unknown_strategy_lists_the_valid_ones() -> None:
    with pytest.raises(UnknownStrategyError) as error:
        select_for_review(CANDIDATES, 2, "coin_toss")
    for name in REVIEW_STRATEGIES:
        assert name in str(error.value)
    assert set(REVIEW_STRATEGIES) == {
        "entropy",
        "margin",
        "least_confidence",
        "disagreement",
        "detector",
        "countability",
        "random",
    }


def test_countability_strategy_puts_p_countable_nearest_one_half_first() -> None:
    sure = ReviewCandidate("sure", "f", 1, {}, 0.9, p_countable=0.98)
    torn = ReviewCandidate("torn", "f", 1, {}, 0.9, p_countable=0.45)
    unsure = ReviewCandidate("unsure", "f", 1, {}, 0.9, p_countable=0.2)
    assert ids(select_for_review([sure, unsure, torn], 3, "countability")) == ["torn", "unsure", "sure"]


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="max_per_field"):
        select_for_review(CANDIDATES, 2, "entropy", max_per_field=0)
    with pytest.raises(ValueError, match="k must be"):
        select_for_review(CANDIDATES, -1, "entropy")
