"""The promotion gate (pure): does a candidate model replace the active one of its stage?

Rule (issue 6): on the same test split, the candidate's main metric must not be lower than the active
version's and the recall of none of the stage's guarded classes (the classifier's blasts) may drop. No active
version -> promote. Both come from the stage's row (`training.core.stages`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from training.core.stages import stage_spec


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    reason: str


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(out) else out


def promotion_decision(stage: str, candidate: Mapping[str, Any], active: Mapping[str, Any] | None) -> GateDecision:
    spec = stage_spec(stage)
    if active is None:
        return GateDecision(True, "no active version")
    key = spec.main_metric
    cand_main = _number(candidate.get(key))
    act_main = _number(active.get(key))
    if cand_main is None:
        return GateDecision(False, f"candidate has no {key}")
    if act_main is not None and cand_main < act_main:
        return GateDecision(False, f"{key} {cand_main:.4f} is lower than the active version's {act_main:.4f}")
    cand_pc = candidate.get("per_class") or {}
    act_pc = active.get("per_class") or {}
    for class_id in spec.guarded_recall:
        c = cand_pc.get(str(class_id))
        a = act_pc.get(str(class_id))
        if not isinstance(c, Mapping) or not isinstance(a, Mapping):
            continue
        c_rec = _number(c.get("recall"))
        a_rec = _number(a.get("recall"))
        if c_rec is None or a_rec is None:
            continue
        if c_rec < a_rec:
            return GateDecision(
                False,
                f"recall of blast class {class_id} ({spec.classes[class_id]}) drops from {a_rec:.4f} to {c_rec:.4f}",
            )
    if act_main is None:
        return GateDecision(True, f"{key} {cand_main:.4f}; the active version has no {key}")
    return GateDecision(True, f"{key} {cand_main:.4f} >= active {act_main:.4f}")
