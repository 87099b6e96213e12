"""Each measure against values worked out by hand for a 3-class example.

Cell A: members (0.8, 0.1, 0.1) and (0.2, 0.5, 0.3), ensemble mean (0.5, 0.3, 0.2), detector score 0.9
  least confidence 1 - 0.5 = 0.5; margin 0.5 - 0.3 = 0.2
  entropy = 0.5 ln 2 + 0.3 ln(1/0.3) + 0.2 ln 5 = 0.3465736 + 0.3611918 + 0.3218876 = 1.0296530
  normalised = 1.0296530 / ln 3 (1.0986123) = 0.9372306
  H(member 1) = 0.8 ln 1.25 + 0.2 ln 10 = 0.1785148 + 0.4605170 = 0.6390318
  H(member 2) = 0.2 ln 5 + 0.5 ln 2 + 0.3 ln(1/0.3) = 1.0296530
  mutual information = 1.0296530 - (0.6390318 + 1.0296530) / 2 = 0.1953106
Cell B: both members certain (1, 0, 0): 0, 1, 0, 0, 0 (and 0 * log 0 counts as 0), detector score 0.6
Cell C: both members uniform: 2/3, 0, ln 3 = 1.0986123, 1, 0, detector score 0.5
"""

from __future__ import annotations

import numpy as np
import pytest

from inference.core.uncertainty import MEASURES, compute_uncertainty, entropy, margin, mutual_information

MEMBERS = np.array(
    [
        [[0.8, 0.1, 0.1], [1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3]],
        [[0.2, 0.5, 0.3], [1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3]],
    ]
)
ENSEMBLE = MEMBERS.mean(axis=0)
SCORES = np.array([0.9, 0.6, 0.5])

EXPECTED = {
    "least_confidence": [0.5, 0.0, 2 / 3],
    "margin": [0.2, 1.0, 0.0],
    "entropy": [1.0296530, 0.0, 1.0986123],
    "normalised_entropy": [0.9372306, 0.0, 1.0],
    "mutual_information": [0.1953106, 0.0, 0.0],
    "detector": [0.1, 0.4, 0.5],
}


@pytest.mark.parametrize("measure", MEASURES)
def test_measure_matches_hand_computed_values(measure: str) -> None:
    result = compute_uncertainty(ENSEMBLE, MEMBERS, SCORES)
    np.testing.assert_allclose(getattr(result, measure), EXPECTED[measure], atol=1e-6)


def test_per_cell_dicts_hold_the_same_numbers() -> None:
    cells = compute_uncertainty(ENSEMBLE, MEMBERS, SCORES).per_cell()
    assert len(cells) == 3
    assert set(cells[0]) == set(MEASURES)
    for measure, values in EXPECTED.items():
        assert [cell[measure] for cell in cells] == pytest.approx(values, abs=1e-6)


def test_zero_probabilities_give_finite_results_without_warnings() -> None:
    with np.errstate(all="raise"):
        assert entropy([[0.0, 1.0, 0.0]]).tolist() == [0.0]
        assert mutual_information([[[0.0, 1.0]], [[1.0, 0.0]]]) == pytest.approx([np.log(2)])


def test_single_member_has_no_disagreement() -> None:
    assert mutual_information(MEMBERS[:1]).tolist() == [0.0, 0.0, 0.0]


def test_margin_of_a_tie_is_zero() -> None:
    assert margin([[0.4, 0.4, 0.2]]).tolist() == pytest.approx([0.0])


def test_shape_mismatch_is_rejected() -> None:
    with pytest.raises(ValueError, match="member probabilities"):
        compute_uncertainty(ENSEMBLE, MEMBERS[:, :2], SCORES)
    with pytest.raises(ValueError, match="detector scores"):
        compute_uncertainty(ENSEMBLE, MEMBERS, SCORES[:2])
