import json

import pytest
from statsmodels.stats.proportion import proportion_confint

from annotations.counting.diagnosis_eval import CaseDiagnosis, evaluate_diagnoses

MORE = "count_more_cells"


def cases_from(rows: list[tuple[str | None, str | None, int]]) -> list[CaseDiagnosis]:
    """(confirmed, suggested, how many cases) -> numbered cases."""
    cases: list[CaseDiagnosis] = []
    for confirmed, suggested, count in rows:
        cases += [CaseDiagnosis(f"case{len(cases) + i}", suggested, confirmed) for i in range(count)]
    return cases


def test_binary_all_evaluation_by_hand() -> None:
    # 49 patients as in the seed paper: 14 with ALL (12 found, 2 missed), 35 without (33 right, 2 false alarms).
    cases = cases_from([("ALL", "ALL", 12), ("ALL", None, 2), (None, None, 33), (None, "ALL", 2)])
    evaluation = evaluate_diagnoses(cases)

    (all_row,) = evaluation.per_label
    assert all_row.label == "ALL"
    assert (all_row.tp, all_row.fn, all_row.tn, all_row.fp) == (12, 2, 33, 2)
    assert all_row.sensitivity.value == pytest.approx(12 / 14)
    assert all_row.specificity.value == pytest.approx(33 / 35)
    assert all_row.accuracy.value == pytest.approx(45 / 49)
    assert all_row.ppv.value == pytest.approx(12 / 14)
    assert all_row.npv.value == pytest.approx(33 / 35)
    assert evaluation.accuracy.value == pytest.approx(45 / 49)
    low, high = proportion_confint(12, 14, method="beta")
    assert (all_row.sensitivity.ci_low, all_row.sensitivity.ci_high) == pytest.approx((low, high))
    assert evaluation.labels == ("none", "ALL")
    assert evaluation.confusion == ((33, 2), (2, 12))


def test_three_diagnoses_one_vs_rest_and_confusion_table_by_hand() -> None:
    cases = cases_from(
        [
            ("ALL", "ALL", 5),
            ("ALL", "AML", 1),
            ("AML", "AML", 3),
            ("AML", None, 1),
            (None, None, 6),
            (None, "ALL", 1),
        ]
    )
    evaluation = evaluate_diagnoses(cases, labels=["none", "ALL", "AML"])

    assert evaluation.labels == ("none", "ALL", "AML")
    # rows confirmed, columns suggested
    assert evaluation.confusion == ((6, 1, 0), (0, 5, 1), (1, 0, 3))
    assert evaluation.accuracy.value == pytest.approx(14 / 17)
    rows = {row.label: row for row in evaluation.per_label}
    assert set(rows) == {"ALL", "AML"}
    # ALL: tp 5, fn 1 (called AML), fp 1 (a healthy case), tn 17 - 7 = 10
    assert (rows["ALL"].tp, rows["ALL"].fn, rows["ALL"].fp, rows["ALL"].tn) == (5, 1, 1, 10)
    assert rows["ALL"].sensitivity.value == pytest.approx(5 / 6)
    assert rows["ALL"].specificity.value == pytest.approx(10 / 11)
    # AML: tp 3, fn 1, fp 1 (an ALL case), tn 12
    assert (rows["AML"].tp, rows["AML"].fn, rows["AML"].fp, rows["AML"].tn) == (3, 1, 1, 12)
    assert rows["AML"].accuracy.value == pytest.approx(15 / 17)


def test_indeterminate_cases_are_reported_apart_by_default() -> None:
    cases = cases_from([("ALL", "ALL", 4), ("ALL", MORE, 2), (None, None, 5), (None, MORE, 1)])
    evaluation = evaluate_diagnoses(cases)

    assert (evaluation.n_cases, evaluation.n_evaluated) == (12, 9)
    assert evaluation.indeterminate.count == 3
    assert evaluation.indeterminate.by_confirmed == {"ALL": 2, "none": 1}
    assert evaluation.indeterminate.case_ids == ("case4", "case5", "case11")
    assert evaluation.indeterminate.counted_as_negative is False
    (all_row,) = evaluation.per_label
    assert (all_row.tp, all_row.fn, all_row.tn, all_row.fp, all_row.indeterminate) == (4, 0, 5, 0, 2)
    assert all_row.sensitivity.value == 1.0
    assert MORE not in evaluation.labels


def test_indeterminate_cases_can_count_as_negative() -> None:
    cases = cases_from([("ALL", "ALL", 4), ("ALL", MORE, 2), (None, None, 5), (None, MORE, 1)])
    evaluation = evaluate_diagnoses(cases, indeterminate_as_negative=True)

    assert evaluation.n_evaluated == 12
    assert evaluation.indeterminate.counted_as_negative is True
    (all_row,) = evaluation.per_label
    assert (all_row.tp, all_row.fn, all_row.tn, all_row.fp, all_row.indeterminate) == (4, 2, 6, 0, 0)
    assert all_row.sensitivity.value == pytest.approx(4 / 6)
    assert evaluation.accuracy.value == pytest.approx(10 / 12)


def test_undefined_rates_are_none_with_a_reason() -> None:
    # AML is suggested once but never confirmed: its sensitivity has no denominator.
    evaluation = evaluate_diagnoses(cases_from([(None, "AML", 1), (None, None, 3)]))

    (aml,) = evaluation.per_label
    assert aml.sensitivity.value is None
    assert aml.sensitivity.reason
    assert aml.specificity.value == pytest.approx(3 / 4)


def test_no_cases_or_only_indeterminate_ones() -> None:
    empty = evaluate_diagnoses([])
    assert (empty.n_cases, empty.accuracy.value, empty.labels, empty.confusion) == (0, None, ("none",), ((0,),))

    undecided = evaluate_diagnoses(cases_from([("ALL", MORE, 2)]))
    assert undecided.n_evaluated == 0
    assert undecided.accuracy.value is None
    assert undecided.confusion == ((0, 0), (0, 0))
    json.dumps(undecided.to_dict(), allow_nan=False)


def test_invalid_cases_are_refused() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        evaluate_diagnoses([CaseDiagnosis(1, None, None), CaseDiagnosis(1, "ALL", "ALL")])
    with pytest.raises(ValueError, match="confirmed"):
        evaluate_diagnoses([CaseDiagnosis(1, None, MORE)])


def test_to_dict_is_plain_json() -> None:
    evaluation = evaluate_diagnoses(cases_from([("ALL", "ALL", 2), (None, MORE, 1), (None, None, 1)]))
    data = evaluation.to_dict()

    assert json.loads(json.dumps(data, allow_nan=False)) == data
    assert data["confusion"] == [[1, 0], [0, 2]]
