"""The promotion gate (pure): does a candidate model replace the active one of its stage?

Rule (issue 6): on the same test split, the candidate's main metric must not be lower than the active
version's and, for the classifier, the recall of no blast class may drop. No active version -> promote.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from annotations.taxonomy import CELL_CLASSES

MAIN_METRIC = {"detector": "ap50", "countability": "accuracy", "classifier": "macro_f1"}
BLAST_CLASS_IDS = (0, 7, 11, 14, 17)


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


def _class_name(class_id: int) -> str:
    for spec in CELL_CLASSES:
        if spec.id == class_id:
            return spec.name
    return f"class {class_id}"


def promotion_decision(stage: str, candidate: Mapping[str, Any], active: Mapping[str, Any] | None) -> GateDecision:
    if stage not in MAIN_METRIC:
        raise ValueError(f"unknown stage {stage!r}; expected one of {sorted(MAIN_METRIC)}")
    if active is None:
        return GateDecision(True, "no active version")
    key = MAIN_METRIC[stage]
    cand_main = _number(candidate.get(key))
    act_main = _number(active.get(key))
    if cand_main is None:
        return GateDecision(False, f"candidate has no {key}")
    if act_main is not None and cand_main < act_main:
        return GateDecision(False, f"{key} {cand_main:.4f} is lower than the active version's {act_main:.4f}")
    if stage == "classifier":
        cand_pc = candidate.get("per_class") or {}
        act_pc = active.get("per_class") or {}
        for class_id in BLAST_CLASS_IDS:
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
                    f"recall of blast class {class_id} ({_class_name(class_id)}) drops from {a_rec:.4f} to {c_rec:.4f}",
                )
    if act_main is None:
        return GateDecision(True, f"{key} {cand_main:.4f}; the active version has no {key}")
    return GateDecision(True, f"{key} {cand_main:.4f} >= active {act_main:.4f}")
