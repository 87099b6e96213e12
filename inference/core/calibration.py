"""What a classifier's raw softmax needs before people read it: temperature scaling and prior correction.

- **Temperature** (calibration): logits / T, T fitted on the val split after training (`fit_temperature`, minimum
  negative log-likelihood). It changes no single model's argmax but makes probabilities honest, so thresholds,
  the ensemble average and the review queue's uncertainty rank cells by what the model really knows.
- **Prior correction**: class-balanced sampling (item weight n_c ** -power) trains on a class prior proportional
  to n_c ** (1 - power), so the raw argmax over-predicts rare classes. Bayes' rule restores the training data's
  prior: p'(c) ∝ p(c) * n_c ** power (`prior_weights`, `prior_correct`). Counts and differentials use the corrected
  probabilities; the balanced ones may still rank the review queue (rare classes first is what review wants).

Both travel in the checkpoint (`CheckpointMeta.temperature`, `.class_counts`, `.config["balance_power"]`). Plain
NumPy, no Django.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

_LOG_T_GRID = np.linspace(np.log(0.05), np.log(20.0), 241)


@dataclass(frozen=True)
class Calibration:
    """How one model's logits become the probabilities people see (identity by default)."""

    temperature: float = 1.0
    prior_weights: tuple[float, ...] | None = None  # per class; None = no prior correction


def prior_weights(class_counts: Sequence[int], balance_power: float) -> tuple[float, ...] | None:
    """Per-class factors n_c ** power that undo balanced sampling; None when nothing was balanced.

    A class absent from training (n_c = 0) keeps factor 1: the model has no prior of it to undo.
    """
    if not class_counts or balance_power <= 0:
        return None
    counts = np.maximum(np.asarray(class_counts, dtype=np.float64), 1.0)
    weights = counts**balance_power
    return tuple(float(w) for w in weights / weights.max())


def prior_correct(probs: ArrayLike, weights: Sequence[float] | None) -> np.ndarray:
    """Rows of `probs` (N, C) times the class weights, renormalised; unchanged without weights."""
    if weights is None:
        return np.asarray(probs)
    p = np.asarray(probs, dtype=np.float64)
    if p.size == 0:
        return p
    corrected = p * np.asarray(weights, dtype=np.float64)
    total = corrected.sum(axis=-1, keepdims=True)
    return np.divide(corrected, total, out=np.zeros_like(corrected), where=total > 0)


def _nll(log_probs: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    scaled = log_probs / temperature
    scaled = scaled - scaled.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(scaled).sum(axis=1))
    return float(np.mean(log_norm - scaled[np.arange(len(labels)), labels]))


def fit_temperature(logits: ArrayLike, labels: ArrayLike) -> float:
    """The temperature minimising the mean negative log-likelihood of `labels` (grid over 0.05..20, log scale).

    `logits` may also be log-probabilities (softmax is shift-invariant per row). No examples -> 1.0.
    """
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels, dtype=int).ravel()
    if z.ndim != 2 or len(y) == 0 or z.shape[0] != len(y):
        return 1.0
    z = np.maximum(z, -1e4)  # log(0) from a float softmax
    losses = [_nll(z, y, float(np.exp(t))) for t in _LOG_T_GRID]
    return float(np.exp(_LOG_T_GRID[int(np.argmin(losses))]))


def softmax_with_temperature(logits: ArrayLike, temperature: float) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)
