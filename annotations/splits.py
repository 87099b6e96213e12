"""Per-patient train/val/test splits: the pure rule (no Django, no torch), so the snapshot builder, the export and
the training library read one definition. `annotations.services.patient_splits_assign` is the one service that
stores splits.

A patient's split is a function of (seed, patient code) only: a hash mapped to a uniform number in [0, 1)
picks the bucket. Adding patients never moves an existing one, and `assign_splits` additionally keeps every
stored assignment as it is (so changing ratios later only affects new patients).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence

SPLITS = ("train", "val", "test")
DEFAULT_RATIOS = (0.7, 0.1, 0.2)


def _check_ratios(ratios: Sequence[float]) -> tuple[float, float, float]:
    if len(ratios) != len(SPLITS):
        raise ValueError(f"ratios must have {len(SPLITS)} values (train, val, test), got {list(ratios)}")
    if any(r < 0 for r in ratios) or sum(ratios) <= 0:
        raise ValueError(f"ratios must be non-negative with a positive sum, got {list(ratios)}")
    total = float(sum(ratios))
    return (ratios[0] / total, ratios[1] / total, ratios[2] / total)


def _uniform(patient: str, seed: int) -> float:
    digest = hashlib.sha256(f"{seed}:{patient}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def split_for_patient(patient: str, *, seed: int = 0, ratios: Sequence[float] = DEFAULT_RATIOS) -> str:
    """The split of one patient: deterministic from (seed, patient), independent of any other patient."""
    train, val, _test = _check_ratios(ratios)
    u = _uniform(patient, seed)
    if u < train:
        return "train"
    if u < train + val:
        return "val"
    return "test"


def assign_splits(
    patients: Iterable[str],
    existing: Mapping[str, str],
    *,
    seed: int = 0,
    ratios: Sequence[float] = DEFAULT_RATIOS,
) -> dict[str, str]:
    """Splits for `patients` plus every `existing` assignment (kept unchanged); only new patients are assigned."""
    for patient, split in existing.items():
        if split not in SPLITS:
            raise ValueError(f"patient {patient!r}: stored split {split!r} is not one of {SPLITS}")
    out = dict(existing)
    for patient in patients:
        if patient not in out:
            out[patient] = split_for_patient(patient, seed=seed, ratios=ratios)
    return out
