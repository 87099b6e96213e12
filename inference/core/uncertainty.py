"""Per-cell uncertainty of the classifier ensemble and of the detector (DESIGN.md "The three stages").

All measures are "higher = less sure" except `margin` (p1 - p2, small = unsure). Computed in float64 NumPy,
deterministic, and safe for probabilities of exactly 0 (0 * log 0 = 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import entr

LEAST_CONFIDENCE = "least_confidence"
MARGIN = "margin"
ENTROPY = "entropy"
NORMALISED_ENTROPY = "normalised_entropy"
MUTUAL_INFORMATION = "mutual_information"
DETECTOR = "detector"
MEASURES: tuple[str, ...] = (LEAST_CONFIDENCE, MARGIN, ENTROPY, NORMALISED_ENTROPY, MUTUAL_INFORMATION, DETECTOR)

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Uncertainty:
    """One array of shape (N,) per measure; `per_cell()` gives the same as one dict per cell."""

    least_confidence: FloatArray
    margin: FloatArray
    entropy: FloatArray
    normalised_entropy: FloatArray
    mutual_information: FloatArray
    detector: FloatArray

    def per_cell(self) -> list[dict[str, float]]:
        columns = [getattr(self, name).tolist() for name in MEASURES]
        return [dict(zip(MEASURES, values, strict=True)) for values in zip(*columns, strict=True)]


def entropy(probs: ArrayLike) -> FloatArray:
    """Shannon entropy in nats over the last axis."""
    return np.asarray(entr(np.asarray(probs, dtype=np.float64)).sum(axis=-1), dtype=np.float64)


def least_confidence(probs: ArrayLike) -> FloatArray:
    return 1.0 - np.asarray(probs, dtype=np.float64).max(axis=-1)


def margin(probs: ArrayLike) -> FloatArray:
    """Top-1 minus top-2 probability (needs at least two classes)."""
    top2 = np.sort(np.asarray(probs, dtype=np.float64), axis=-1)[..., -2:]
    return top2[..., 1] - top2[..., 0]


def mutual_information(member_probs: ArrayLike) -> FloatArray:
    """BALD: entropy of the members' mean minus the members' mean entropy, (M, N, C) -> (N,); 0 for one member."""
    members = np.asarray(member_probs, dtype=np.float64)
    mi = entropy(members.mean(axis=0)) - entropy(members).mean(axis=0)
    return np.maximum(mi, 0.0)  # >= 0 by Jensen; clip float rounding


def compute_uncertainty(ensemble_probs: ArrayLike, member_probs: ArrayLike, detector_scores: ArrayLike) -> Uncertainty:
    """All measures for N cells: ensemble (N, C), members (M, N, C), detector scores (N,)."""
    ensemble = np.asarray(ensemble_probs, dtype=np.float64)
    members = np.asarray(member_probs, dtype=np.float64)
    scores = np.asarray(detector_scores, dtype=np.float64)
    if ensemble.ndim != 2 or ensemble.shape[1] < 2:
        raise ValueError(f"ensemble probabilities must be (N, C>=2), got {ensemble.shape}")
    if members.ndim != 3 or members.shape[1:] != ensemble.shape:
        expected = f"(M, {ensemble.shape[0]}, {ensemble.shape[1]})"
        raise ValueError(f"member probabilities must be {expected}, got {members.shape}")
    if scores.shape != (ensemble.shape[0],):
        raise ValueError(f"detector scores must be ({ensemble.shape[0]},), got {scores.shape}")
    ent = entropy(ensemble)
    return Uncertainty(
        least_confidence=least_confidence(ensemble),
        margin=margin(ensemble),
        entropy=ent,
        normalised_entropy=ent / np.log(ensemble.shape[1]),
        mutual_information=mutual_information(members),
        detector=1.0 - scores,
    )
