"""The promotion gate (pure): does a candidate model replace the active one of its stage?

Rule (issues 6 and 15), on the same held-out **test** split:
- the candidate's main metric may not fall more than `MAIN_TOLERANCE` below the active version's (a smaller
  difference is noise on the splits a lab has, so "not lower" alone would be a coin flip);
- the recall of none of the stage's guarded classes (the classifier's blasts) may drop by more than
  `RECALL_TOLERANCE`; a guarded class with fewer than `MIN_GUARDED_SUPPORT` cells in the split (absent included)
  cannot be judged, and the decision is then *undecided*, never a silent pass;
- the val split picked the candidate's best epoch, so it cannot judge the candidate: without a test split the
  decision is undecided.
Undecided and rejected candidates stay candidates (an admin may promote them by hand). No active version ->
promote. The main metric and the guarded classes come from the stage's row (`training.core.stages`); the
countability stage's main metric is balanced accuracy, so a model that calls every cell countable gains nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from training.core.stages import stage_spec

MAIN_TOLERANCE = 0.01  # absolute: a main metric at most this much lower still passes
RECALL_TOLERANCE = 0.05  # absolute: a guarded class's recall may drop this much
MIN_GUARDED_SUPPORT = 20  # cells of a guarded class in the split needed to judge its recall


class GateStatus(StrEnum):
    PROMOTE = "promote"
    REJECT = "reject"
    UNDECIDED = "undecided"


@dataclass(frozen=True)
class GateDecision:
    status: GateStatus
    reason: str

    @property
    def promote(self) -> bool:
        return self.status is GateStatus.PROMOTE


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(out) else out


def _support(entry: Any) -> int:
    if not isinstance(entry, Mapping):
        return 0
    value = _number(entry.get("support"))
    return 0 if value is None else int(value)


def promotion_decision(
    stage: str, candidate: Mapping[str, Any], active: Mapping[str, Any] | None, *, split: str = "test"
) -> GateDecision:
    spec = stage_spec(stage)
    if active is None:
        return GateDecision(GateStatus.PROMOTE, "no active version")
    if split != "test":
        return GateDecision(
            GateStatus.UNDECIDED,
            f"undecided: no test split; the {split} split picked the candidate's best epoch and cannot judge it",
        )
    key = spec.main_metric
    cand_main = _number(candidate.get(key))
    act_main = _number(active.get(key))
    if cand_main is None:
        return GateDecision(GateStatus.REJECT, f"candidate has no {key}")
    if act_main is not None and cand_main < act_main - MAIN_TOLERANCE:
        return GateDecision(
            GateStatus.REJECT,
            f"{key} {cand_main:.4f} is lower than the active version's {act_main:.4f} (tolerance {MAIN_TOLERANCE:g})",
        )
    cand_pc = candidate.get("per_class") or {}
    act_pc = active.get("per_class") or {}
    unjudged = []
    for class_id in spec.guarded_recall:
        c = cand_pc.get(str(class_id))
        a = act_pc.get(str(class_id))
        support = min(_support(c), _support(a))
        c_rec = _number(c.get("recall")) if isinstance(c, Mapping) else None
        a_rec = _number(a.get("recall")) if isinstance(a, Mapping) else None
        if support < MIN_GUARDED_SUPPORT or c_rec is None or a_rec is None:
            unjudged.append(f"{class_id} ({spec.classes[class_id]}): {support}")
            continue
        if c_rec < a_rec - RECALL_TOLERANCE:
            return GateDecision(
                GateStatus.REJECT,
                f"recall of blast class {class_id} ({spec.classes[class_id]}) drops from {a_rec:.4f} to "
                f"{c_rec:.4f} ({support} cells, tolerance {RECALL_TOLERANCE:g})",
            )
    if unjudged:
        return GateDecision(
            GateStatus.UNDECIDED,
            f"undecided: too few test cells (under {MIN_GUARDED_SUPPORT}) to judge the recall of blast class(es) "
            + ", ".join(unjudged),
        )
    if act_main is None:
        return GateDecision(GateStatus.PROMOTE, f"{key} {cand_main:.4f}; the active version has no {key}")
    return GateDecision(
        GateStatus.PROMOTE, f"{key} {cand_main:.4f} >= active {act_main:.4f} - tolerance {MAIN_TOLERANCE:g}"
    )
