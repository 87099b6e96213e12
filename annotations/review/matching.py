"""Double review: pair the boxes of two blind annotators on one field and measure how well they agree.

Pairing is an optimal one-to-one assignment (`scipy.optimize.linear_sum_assignment`). Only pairs whose IoU
reaches the threshold (default 0.5, a pair *at* the threshold matches) may be formed; among those the
assignment first makes as many pairs as possible and then maximises their total IoU. Maximising plain IoU
and dropping weak pairs afterwards could lose a valid pair to one slightly better overlap (A1-B1 0.95 beats
A1-B2 0.6 + A2-B1 0.6 only because A2-B2 0.3 pads the sum), which would show two annotators as disagreeing
on two cells they both drew. A box takes part in at most one pair, so one big box of A over two boxes of B
pairs with one of them and the other is ONLY_B. Zero-area boxes have IoU 0 with everything and never match.

Conflict representation: each outcome carries `kinds`, a tuple of `OutcomeKind`. A matched pair is either
`(AGREE,)` or holds one or both of `CLASS_CONFLICT` and `COUNTABILITY_CONFLICT` (in that order), so a pair that
differs in both keeps both flags; an unmatched box is `(ONLY_A,)` or `(ONLY_B,)`. Classes are compared as
given, except that a missing class (None) on an *uncountable* box is "no class needed", not an opinion: A
"uncountable, no class" against B "uncountable, myeloblast" is no class conflict, and against B "countable,
myeloblast" only a countability conflict.

Agreement over one field or pooled over many (a case) comes from `measure_agreement`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import cohen_kappa_score

from annotations.counting.differential import CellId, CountedCell, build_differential
from annotations.jsonable import JsonMixin
from annotations.taxonomy import CELL_CLASSES, NUM_CLASSES

DEFAULT_IOU_THRESHOLD = 0.5


@dataclass(frozen=True)
class BoxAnnotation:
    """One annotator's box in pixels (x, y = top-left corner)."""

    key: CellId
    x: float
    y: float
    w: float
    h: float
    cell_class: int | None
    countable: bool

    def __post_init__(self) -> None:
        if not all(math.isfinite(v) for v in (self.x, self.y, self.w, self.h)):
            raise ValueError(f"box {self.key!r}: coordinates must be finite numbers")
        if self.w < 0 or self.h < 0:
            raise ValueError(f"box {self.key!r}: width and height must not be negative")
        if self.cell_class is not None and not 0 <= self.cell_class < NUM_CLASSES:
            raise ValueError(f"box {self.key!r}: class id {self.cell_class} is outside 0..{NUM_CLASSES - 1}")


class OutcomeKind(StrEnum):
    AGREE = "agree"
    CLASS_CONFLICT = "class_conflict"
    COUNTABILITY_CONFLICT = "countability_conflict"
    ONLY_A = "only_a"
    ONLY_B = "only_b"


@dataclass(frozen=True)
class MatchOutcome(JsonMixin):
    """A matched pair or an unmatched box; the absent side's key, class and flag are None, as is `iou`."""

    kinds: tuple[OutcomeKind, ...]
    key_a: CellId | None
    key_b: CellId | None
    iou: float | None
    class_a: int | None
    class_b: int | None
    countable_a: bool | None
    countable_b: bool | None

    @property
    def is_pair(self) -> bool:
        return self.key_a is not None and self.key_b is not None

    @property
    def is_agreement(self) -> bool:
        return self.kinds == (OutcomeKind.AGREE,)

    def has(self, kind: OutcomeKind) -> bool:
        return kind in self.kinds


@dataclass(frozen=True)
class FieldMatch(JsonMixin):
    iou_threshold: float
    outcomes: tuple[MatchOutcome, ...]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FieldMatch:
        """The inverse of `to_dict()`, so a stored match can be measured again without the boxes."""
        return cls(
            float(data["iou_threshold"]),
            tuple(
                MatchOutcome(
                    kinds=tuple(OutcomeKind(kind) for kind in outcome["kinds"]),
                    key_a=outcome["key_a"],
                    key_b=outcome["key_b"],
                    iou=outcome["iou"],
                    class_a=outcome["class_a"],
                    class_b=outcome["class_b"],
                    countable_a=outcome["countable_a"],
                    countable_b=outcome["countable_b"],
                )
                for outcome in data["outcomes"]
            ),
        )

    def swapped(self) -> FieldMatch:
        """The same match seen with B as the first annotator, so fields of one pair of people can be pooled
        whichever of them was A on each field."""
        return FieldMatch(self.iou_threshold, tuple(_swap_outcome(outcome) for outcome in self.outcomes))


_SWAPPED_KIND = {OutcomeKind.ONLY_A: OutcomeKind.ONLY_B, OutcomeKind.ONLY_B: OutcomeKind.ONLY_A}


def _swap_outcome(outcome: MatchOutcome) -> MatchOutcome:
    return MatchOutcome(
        kinds=tuple(_SWAPPED_KIND.get(kind, kind) for kind in outcome.kinds),
        key_a=outcome.key_b,
        key_b=outcome.key_a,
        iou=outcome.iou,
        class_a=outcome.class_b,
        class_b=outcome.class_a,
        countable_a=outcome.countable_b,
        countable_b=outcome.countable_a,
    )


def iou_matrix(boxes_a: Sequence[BoxAnnotation], boxes_b: Sequence[BoxAnnotation]) -> np.ndarray:
    """IoU of every box of A (rows) with every box of B (columns); 0 where the union has no area."""
    a = np.array([[b.x, b.y, b.x + b.w, b.y + b.h] for b in boxes_a], dtype=float).reshape(-1, 4)
    b = np.array([[b.x, b.y, b.x + b.w, b.y + b.h] for b in boxes_b], dtype=float).reshape(-1, 4)
    inter_w = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    inter_h = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = inter_w * inter_h
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def match_boxes(
    boxes_a: Sequence[BoxAnnotation], boxes_b: Sequence[BoxAnnotation], iou_threshold: float = DEFAULT_IOU_THRESHOLD
) -> FieldMatch:
    """Pair the boxes of annotators A and B on one field; outcomes list pairs, then ONLY_A, then ONLY_B."""
    if not 0 < iou_threshold <= 1:
        raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
    _check_unique_keys(boxes_a, "A")
    _check_unique_keys(boxes_b, "B")
    ious = iou_matrix(boxes_a, boxes_b)
    eligible = ious >= iou_threshold
    # A bonus larger than any possible sum of IoUs makes the number of pairs the first objective.
    bonus = min(ious.shape) + 1.0
    rows, cols = linear_sum_assignment(np.where(eligible, bonus + ious, 0.0), maximize=True)
    pairs = [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if eligible[r, c]]
    paired_a = {r for r, _ in pairs}
    paired_b = {c for _, c in pairs}
    outcomes = [_pair_outcome(boxes_a[r], boxes_b[c], float(ious[r, c])) for r, c in pairs]
    outcomes += [_single_outcome(box, None) for i, box in enumerate(boxes_a) if i not in paired_a]
    outcomes += [_single_outcome(None, box) for i, box in enumerate(boxes_b) if i not in paired_b]
    return FieldMatch(iou_threshold, tuple(outcomes))


def _check_unique_keys(boxes: Sequence[BoxAnnotation], side: str) -> None:
    keys = [box.key for box in boxes]
    if len(set(keys)) != len(keys):
        duplicates = sorted({str(k) for k in keys if keys.count(k) > 1})
        raise ValueError(f"annotator {side}: duplicate box keys {duplicates}")


def _classes_conflict(a: BoxAnnotation, b: BoxAnnotation) -> bool:
    if a.cell_class == b.cell_class:
        return False
    no_class_needed = (a.cell_class is None and not a.countable) or (b.cell_class is None and not b.countable)
    return not no_class_needed


def _pair_outcome(a: BoxAnnotation, b: BoxAnnotation, iou: float) -> MatchOutcome:
    kinds = []
    if _classes_conflict(a, b):
        kinds.append(OutcomeKind.CLASS_CONFLICT)
    if a.countable != b.countable:
        kinds.append(OutcomeKind.COUNTABILITY_CONFLICT)
    return MatchOutcome(
        tuple(kinds) or (OutcomeKind.AGREE,), a.key, b.key, iou, a.cell_class, b.cell_class, a.countable, b.countable
    )


def _single_outcome(a: BoxAnnotation | None, b: BoxAnnotation | None) -> MatchOutcome:
    if a is not None:
        return MatchOutcome((OutcomeKind.ONLY_A,), a.key, None, None, a.cell_class, None, a.countable, None)
    assert b is not None
    return MatchOutcome((OutcomeKind.ONLY_B,), None, b.key, None, None, b.cell_class, None, b.countable)


# ---------------------------------------------------------------------------------------------------------
# Agreement metrics


@dataclass(frozen=True)
class Kappa(JsonMixin):
    """Cohen's kappa, or None with the reason when it is undefined (never NaN)."""

    value: float | None
    n_pairs: int
    reason: str | None


@dataclass(frozen=True)
class BoxAgreement(JsonMixin):
    """Box detection agreement, A taken as reference: precision = matched/|B|, recall = matched/|A|.

    Which side is the reference is arbitrary: swapping A and B swaps precision and recall, and F1
    (2·matched / (|A| + |B|)) does not change, so F1 is the figure to quote.
    """

    n_a: int
    n_b: int
    n_matched: int
    precision: float | None
    recall: float | None
    f1: float | None
    reason: str | None


@dataclass(frozen=True)
class ClassAgreement(JsonMixin):
    """Per class: boxes of A and B with this class, matched pairs agreeing on it, pairs where one side says
    this class and the other a different one (a class conflict), unmatched boxes, one-vs-rest kappa."""

    class_id: int
    name: str
    count_a: int
    count_b: int
    matched_agree: int
    class_conflicts: int
    only_a: int
    only_b: int
    kappa: Kappa


@dataclass(frozen=True)
class PercentDifference(JsonMixin):
    """Differential percentage of A minus that of B (None when either side counted no cells)."""

    name: str
    class_id: int | None
    percent_a: float | None
    percent_b: float | None
    difference: float | None


@dataclass(frozen=True)
class Agreement(JsonMixin):
    n_fields: int
    n_agree: int
    n_class_conflicts: int
    n_countability_conflicts: int
    n_only_a: int
    n_only_b: int
    boxes: BoxAgreement
    class_kappa: Kappa
    countability_kappa: Kappa
    per_class: tuple[ClassAgreement, ...]
    differential_difference: tuple[PercentDifference, ...]


def measure_agreement(matches: Sequence[FieldMatch]) -> Agreement:
    """Agreement of A and B over the given fields, pooled (pass one field for a per-field figure).

    Class kappa uses the matched pairs where both boxes carry a class (countable or not); countability kappa
    uses all matched pairs. The differential difference compares the counts each annotator would have
    produced alone (blast % first, then the 21 classes in id order).
    """
    outcomes = [outcome for match in matches for outcome in match.outcomes]
    pairs = [o for o in outcomes if o.is_pair]
    labels_a, labels_b = _class_labels(pairs)
    return Agreement(
        n_fields=len(matches),
        n_agree=sum(o.is_agreement for o in pairs),
        n_class_conflicts=sum(o.has(OutcomeKind.CLASS_CONFLICT) for o in pairs),
        n_countability_conflicts=sum(o.has(OutcomeKind.COUNTABILITY_CONFLICT) for o in pairs),
        n_only_a=sum(o.has(OutcomeKind.ONLY_A) for o in outcomes),
        n_only_b=sum(o.has(OutcomeKind.ONLY_B) for o in outcomes),
        boxes=_box_agreement(outcomes),
        class_kappa=kappa(labels_a, labels_b),
        countability_kappa=kappa([bool(o.countable_a) for o in pairs], [bool(o.countable_b) for o in pairs]),
        per_class=tuple(_class_agreement(spec.id, spec.name, outcomes, labels_a, labels_b) for spec in CELL_CLASSES),
        differential_difference=_differential_difference(outcomes),
    )


def kappa(labels_a: Sequence[int | bool], labels_b: Sequence[int | bool]) -> Kappa:
    """Cohen's kappa of two raters' labels on the same items (sklearn), None where it is undefined."""
    n = len(labels_a)
    if n != len(labels_b):
        raise ValueError("both raters must label the same items")
    if n == 0:
        return Kappa(None, 0, "no matched pairs to compare")
    values = sorted(set(labels_a) | set(labels_b))
    if len(values) < 2:
        # Both raters used one and the same label: expected agreement is 1 and kappa is 0/0.
        return Kappa(None, n, f"both annotators used only the label {values[0]!r}: kappa is undefined")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = float(cohen_kappa_score(labels_a, labels_b, labels=values))
    if not math.isfinite(value):
        return Kappa(None, n, "kappa is undefined for these labels")
    return Kappa(value, n, None)


def _class_labels(pairs: Sequence[MatchOutcome]) -> tuple[list[int], list[int]]:
    labels_a, labels_b = [], []
    for pair in pairs:
        if pair.class_a is not None and pair.class_b is not None:
            labels_a.append(pair.class_a)
            labels_b.append(pair.class_b)
    return labels_a, labels_b


def _box_agreement(outcomes: Sequence[MatchOutcome]) -> BoxAgreement:
    n_a = sum(o.key_a is not None for o in outcomes)
    n_b = sum(o.key_b is not None for o in outcomes)
    matched = sum(o.is_pair for o in outcomes)
    reason = None
    if n_a == 0 or n_b == 0:
        empty = "both annotators" if n_a == n_b == 0 else ("annotator A" if n_a == 0 else "annotator B")
        reason = f"{empty} drew no boxes"
    return BoxAgreement(
        n_a=n_a,
        n_b=n_b,
        n_matched=matched,
        precision=matched / n_b if n_b else None,
        recall=matched / n_a if n_a else None,
        f1=2 * matched / (n_a + n_b) if n_a + n_b else None,
        reason=reason,
    )


def _class_agreement(
    class_id: int, name: str, outcomes: Sequence[MatchOutcome], labels_a: Sequence[int], labels_b: Sequence[int]
) -> ClassAgreement:
    pairs = [o for o in outcomes if o.is_pair]
    return ClassAgreement(
        class_id=class_id,
        name=name,
        count_a=sum(o.class_a == class_id for o in outcomes),
        count_b=sum(o.class_b == class_id for o in outcomes),
        matched_agree=sum(o.class_a == class_id and o.class_b == class_id for o in pairs),
        class_conflicts=sum(o.has(OutcomeKind.CLASS_CONFLICT) and class_id in (o.class_a, o.class_b) for o in pairs),
        only_a=sum(o.has(OutcomeKind.ONLY_A) and o.class_a == class_id for o in outcomes),
        only_b=sum(o.has(OutcomeKind.ONLY_B) and o.class_b == class_id for o in outcomes),
        kappa=kappa([label == class_id for label in labels_a], [label == class_id for label in labels_b]),
    )


def _differential_difference(outcomes: Sequence[MatchOutcome]) -> tuple[PercentDifference, ...]:
    # Keys are only unique within a field, but a differential needs none of them to be unique.
    side_a = build_differential(
        [CountedCell(o.key_a, o.class_a, bool(o.countable_a)) for o in outcomes if o.key_a is not None]
    )
    side_b = build_differential(
        [CountedCell(o.key_b, o.class_b, bool(o.countable_b)) for o in outcomes if o.key_b is not None]
    )
    rows: list[tuple[str, int | None, float | None, float | None]]
    rows = [("blasts", None, side_a.blasts.share.percent, side_b.blasts.share.percent)]
    rows += [
        (a.name, a.class_id, a.share.percent, b.share.percent)
        for a, b in zip(side_a.classes, side_b.classes, strict=True)
    ]
    return tuple(
        PercentDifference(name, class_id, pa, pb, pa - pb if pa is not None and pb is not None else None)
        for name, class_id, pa, pb in rows
    )
