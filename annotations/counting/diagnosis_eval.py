"""How well suggested diagnoses match confirmed ones over a set of cases, reported the way a clinical paper
reports its patients (seed paper: ALL on 49 patients, accuracy 0.89, sensitivity 0.86, specificity 0.95).

Labels are plain strings compared as given (e.g. the rule ids "ALL", "AML" on both sides). A suggestion of
None (no criteria met) and a confirmed diagnosis of None both mean `negative_label`.

Indeterminate cases (suggestion "count_more_cells") are by default left out of every rate and the confusion
table and reported on their own, with the confirmed diagnoses they had: silently counting "count more cells"
as "no leukaemia" would turn every undercounted leukaemia into a false negative, and silently dropping them
would flatter the rates. `indeterminate_as_negative=True` counts them as `negative_label` instead (the
stricter, worst-case reading for sensitivity).

Per diagnosis figures are one-vs-rest over the determinate cases (the negative label gets no row of its own:
its "sensitivity" is the other rows' specificity); each rate has a 95% Clopper-Pearson interval.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import confusion_matrix

from annotations.counting.differential import CIMethod, proportion_ci
from annotations.counting.rules import SuggestionStatus
from annotations.jsonable import JsonMixin

INDETERMINATE = SuggestionStatus.COUNT_MORE_CELLS.value
DEFAULT_NEGATIVE_LABEL = "none"

CaseId = str | int


@dataclass(frozen=True)
class CaseDiagnosis:
    case_id: CaseId
    suggested: str | None
    confirmed: str | None


@dataclass(frozen=True)
class Rate(JsonMixin):
    """numerator/denominator with its 95% CI; value and CI are None (with the reason) when nothing to divide."""

    value: float | None
    numerator: int
    denominator: int
    ci_low: float | None
    ci_high: float | None
    reason: str | None


def rate(numerator: int, denominator: int, what: str, ci_method: CIMethod = "exact") -> Rate:
    if denominator == 0:
        return Rate(None, 0, 0, None, None, f"no {what}")
    low, high = proportion_ci(numerator, denominator, ci_method)
    return Rate(numerator / denominator, numerator, denominator, low, high, None)


@dataclass(frozen=True)
class LabelMetrics(JsonMixin):
    """One diagnosis against all others. `indeterminate`: cases confirmed with this diagnosis whose
    suggestion was "count_more_cells" (not in tp/fn unless they were counted as negative)."""

    label: str
    tp: int
    fp: int
    tn: int
    fn: int
    indeterminate: int
    accuracy: Rate
    sensitivity: Rate
    specificity: Rate
    ppv: Rate
    npv: Rate


@dataclass(frozen=True)
class Indeterminate(JsonMixin):
    count: int
    case_ids: tuple[CaseId, ...]
    by_confirmed: dict[str, int]
    counted_as_negative: bool


@dataclass(frozen=True)
class DiagnosisEvaluation(JsonMixin):
    """`confusion[i][j]`: cases confirmed `labels[i]` and suggested `labels[j]` (determinate cases only)."""

    n_cases: int
    n_evaluated: int
    negative_label: str
    labels: tuple[str, ...]
    confusion: tuple[tuple[int, ...], ...]
    accuracy: Rate
    per_label: tuple[LabelMetrics, ...]
    indeterminate: Indeterminate


def evaluate_diagnoses(
    cases: Sequence[CaseDiagnosis],
    *,
    negative_label: str = DEFAULT_NEGATIVE_LABEL,
    indeterminate_as_negative: bool = False,
    labels: Sequence[str] | None = None,
) -> DiagnosisEvaluation:
    """Compare suggested with confirmed diagnoses. `labels` fixes the order of the confusion table (default:
    the negative label first, then the others sorted); labels seen in the cases are always added."""
    _check_cases(cases)
    confirmed = [case.confirmed or negative_label for case in cases]
    suggested = [case.suggested or negative_label for case in cases]
    is_indeterminate = [label == INDETERMINATE for label in suggested]
    if indeterminate_as_negative:
        suggested = [negative_label if flag else label for label, flag in zip(suggested, is_indeterminate, strict=True)]
    keep = [indeterminate_as_negative or not flag for flag in is_indeterminate]
    y_true = [label for label, kept in zip(confirmed, keep, strict=True) if kept]
    y_pred = [label for label, kept in zip(suggested, keep, strict=True) if kept]
    all_labels = _label_order(labels, negative_label, confirmed + y_pred)
    matrix = _confusion(y_true, y_pred, all_labels)
    undecided = [label for label, flag in zip(confirmed, is_indeterminate, strict=True) if flag]
    return DiagnosisEvaluation(
        n_cases=len(cases),
        n_evaluated=len(y_true),
        negative_label=negative_label,
        labels=all_labels,
        confusion=tuple(tuple(int(v) for v in row) for row in matrix),
        accuracy=rate(int(np.trace(matrix)), len(y_true), "determinate cases"),
        per_label=tuple(
            _label_metrics(matrix, index, label, 0 if indeterminate_as_negative else undecided.count(label))
            for index, label in enumerate(all_labels)
            if label != negative_label
        ),
        indeterminate=Indeterminate(
            count=len(undecided),
            case_ids=tuple(case.case_id for case, flag in zip(cases, is_indeterminate, strict=True) if flag),
            by_confirmed=dict(sorted(Counter(undecided).items())),
            counted_as_negative=indeterminate_as_negative,
        ),
    )


def _check_cases(cases: Sequence[CaseDiagnosis]) -> None:
    ids = [case.case_id for case in cases]
    if len(set(ids)) != len(ids):
        raise ValueError("duplicate case ids")
    for case in cases:
        if case.confirmed == INDETERMINATE:
            raise ValueError(f"case {case.case_id!r}: a confirmed diagnosis cannot be {INDETERMINATE!r}")


def _label_order(given: Sequence[str] | None, negative_label: str, seen: Sequence[str]) -> tuple[str, ...]:
    ordered = list(given) if given is not None else [negative_label]
    ordered += sorted(set(seen) - set(ordered))
    if negative_label not in ordered:
        ordered.insert(0, negative_label)
    return tuple(ordered)


def _confusion(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]) -> np.ndarray:
    if not y_true:
        # sklearn refuses empty input; no determinate case is an empty table, not an error.
        return np.zeros((len(labels), len(labels)), dtype=int)
    return confusion_matrix(y_true, y_pred, labels=list(labels))


def _label_metrics(matrix: np.ndarray, index: int, label: str, indeterminate: int) -> LabelMetrics:
    total = int(matrix.sum())
    tp = int(matrix[index, index])
    fn = int(matrix[index, :].sum()) - tp
    fp = int(matrix[:, index].sum()) - tp
    tn = total - tp - fn - fp
    return LabelMetrics(
        label=label,
        tp=tp,
        fp=fp,
        tn=tn,
        fn=fn,
        indeterminate=indeterminate,
        accuracy=rate(tp + tn, total, "determinate cases"),
        sensitivity=rate(tp, tp + fn, f"determinate cases confirmed {label}"),
        specificity=rate(tn, tn + fp, f"determinate cases confirmed other than {label}"),
        ppv=rate(tp, tp + fp, f"cases suggested {label}"),
        npv=rate(tn, tn + fn, f"cases suggested other than {label}"),
    )
