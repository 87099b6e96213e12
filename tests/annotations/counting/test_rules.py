import copy
import json
from typing import Any

import pytest
from statsmodels.stats.proportion import proportion_confint

from annotations.counting.differential import CountedCell, Differential, build_differential
from annotations.counting.rules import (
    COUNT_MORE_CELLS,
    DEFAULT_RULE_SET,
    FAB_RULE_SET,
    NO_CRITERIA_MET,
    RuleSetError,
    Suggestion,
    SuggestionStatus,
    evaluate_rules,
    parse_rule_set,
    suggest_diagnosis,
    summarize,
    validate_rule_set,
)
from annotations.taxonomy import class_by_name

POSITIVE, NEGATIVE, MORE = SuggestionStatus.POSITIVE, SuggestionStatus.NEGATIVE, SuggestionStatus.COUNT_MORE_CELLS


def differential_of(**counts: int) -> Differential:
    """Cells by class name with spaces as underscores; `filler` pads with neutrophilic segmented cells."""
    cells: list[CountedCell] = []
    for key, count in counts.items():
        name = "neutrophilic segmented" if key == "filler" else key.replace("_", " ")
        if name == "pro erythroblast":
            name = "pro-erythroblast"
        cells += [CountedCell(f"{key}{i}", class_by_name(name).id, True) for i in range(count)]
    return build_differential(cells)


def single_rule(operator: str, threshold: float, *, ci_gate: bool = False, min_cells: int = 200) -> dict[str, Any]:
    rule = {"id": "ALL", "label": "ALL", "numerator": ["lymphoblast"], "operator": operator}
    return {"min_cells": min_cells, "ci_gate": ci_gate, "rules": [{**rule, "threshold_percent": threshold}]}


def by_id(suggestions: list[Suggestion]) -> dict[str, Suggestion]:
    return {s.rule_id: s for s in suggestions}


# ---- rule sets as data -----------------------------------------------------------------------------------


@pytest.mark.parametrize("rule_set", [DEFAULT_RULE_SET, FAB_RULE_SET], ids=["default", "fab"])
def test_shipped_rule_sets_are_valid_json_and_round_trip(rule_set: dict[str, Any]) -> None:
    assert validate_rule_set(rule_set) == []
    parsed = parse_rule_set(json.loads(json.dumps(rule_set)))
    assert parse_rule_set(parsed.to_dict()) == parsed
    assert parsed.min_cells == 200
    assert parsed.ci_method == "exact"


def test_default_and_fab_thresholds() -> None:
    default = {rule.id: rule for rule in parse_rule_set(DEFAULT_RULE_SET).rules}
    fab = {rule.id: rule for rule in parse_rule_set(FAB_RULE_SET).rules}
    assert (default["ALL"].operator, default["ALL"].threshold_percent) == (">", 20)
    assert (fab["ALL"].operator, fab["ALL"].threshold_percent) == (">", 30)
    assert (default["AML"].operator, default["AML"].threshold_percent) == (">=", 20)
    assert default["NEUROBLASTOMA"].threshold_count is not None


def test_validation_reports_unknown_class_with_its_path() -> None:
    rule_set = copy.deepcopy(DEFAULT_RULE_SET)
    rule_set["rules"][2]["numerator"] = ["lymfoblast"]

    errors = [str(error) for error in validate_rule_set(rule_set)]

    assert len(errors) == 1
    assert errors[0].startswith("rules[2].numerator[0]: unknown class 'lymfoblast'")
    assert "lymphoblast" in errors[0].split("unknown class 'lymfoblast'")[1]  # the suggestion


def test_validation_collects_every_error_with_paths() -> None:
    rule_set = {
        "min_cells": 0,
        "ci_method": "normal",
        "ci_gate": "yes",
        "colour": "red",
        "rules": [
            {"id": "ALL", "label": "ALL", "numerator": ["lymphoblast"], "operator": "=>", "threshold_percent": 120},
            {"id": "ALL", "numerator": [], "operator": ">", "threshold_percent": 5, "threshold_count": 2},
            {
                "id": "AML",
                "label": "AML",
                "numerator": ["myeloblast", "myeloblast"],
                "operator": ">=",
                "threshold_count": 0,
                "hints": [
                    {"id": "M3", "text": "x", "adds_to_numerator": True},
                    {"id": "M7", "text": "", "when": {"classes": ["monoblast"], "among": ["myeloblast"]}},
                ],
            },
            "not a rule",
        ],
    }
    errors = {str(error) for error in validate_rule_set(rule_set)}

    expected = {
        "min_cells: must be an integer >= 1, got 0",
        "ci_method: must be one of ['exact', 'wilson'], got 'normal'",
        "ci_gate: must be true or false",
        "colour: unknown key",
        "rules[0].operator: must be one of ['>', '>='], got '=>'",
        "rules[0].threshold_percent: must be a number from 0 to 100, got 120",
        "rules[1].label: is required",
        "rules[1].numerator: must be a non-empty list of class names",
        "rules[1]: needs exactly one of 'threshold_percent' and 'threshold_count'",
        "rules[1].id: duplicate rule id 'ALL'",
        "rules[2].numerator[1]: class 'myeloblast' listed twice",
        "rules[2].threshold_count: '>=' 0 is always met",
        "rules[2].hints[0].adds_to_numerator: needs a 'when' condition (else put the classes in the numerator)",
        "rules[2].hints[1].text: must be a non-empty string",
        "rules[2].hints[1].when.share_above_percent: is required",
        "rules[2].hints[1].when.classes[0]: 'monoblast' is not in 'among'",
        "rules[3]: must be an object",
    }
    assert errors == expected


@pytest.mark.parametrize(
    ("data", "message"),
    [([], "(rule set): must be an object"), ({}, "rules: is required"), ({"rules": []}, "rules: must be a non-empty")],
)
def test_validation_of_the_top_level(data: Any, message: str) -> None:
    assert str(validate_rule_set(data)[0]).startswith(message)


def test_invalid_rule_set_is_refused_by_evaluation() -> None:
    rule_set = single_rule(">", 20)
    rule_set["rules"][0]["numerator"] = ["lymfoblast"]

    with pytest.raises(RuleSetError) as raised:
        evaluate_rules(rule_set, differential_of(lymphoblast=1))
    assert [error.path for error in raised.value.errors] == ["rules[0].numerator[0]"]


# ---- thresholds ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operator", "lymphoblasts", "expected"),
    [
        (">", 199, NEGATIVE),
        (">", 200, NEGATIVE),  # exactly 20% is not > 20%
        (">", 201, POSITIVE),
        (">=", 199, NEGATIVE),
        (">=", 200, POSITIVE),  # exactly 20% is >= 20%
        (">=", 201, POSITIVE),
    ],
)
def test_threshold_at_just_under_and_just_over_20_percent(
    operator: str, lymphoblasts: int, expected: SuggestionStatus
) -> None:
    differential = differential_of(lymphoblast=lymphoblasts, filler=1000 - lymphoblasts)
    (suggestion,) = evaluate_rules(single_rule(operator, 20), differential)

    assert suggestion.status is expected
    assert suggestion.evidence.percent == pytest.approx(lymphoblasts / 10)
    assert suggestion.evidence.meets_threshold is (expected is POSITIVE)


def test_ci_straddling_the_threshold_asks_for_more_cells() -> None:
    differential = differential_of(lymphoblast=40, filler=160)  # 20% of 200
    low, high = proportion_confint(40, 200, method="beta")
    assert low < 0.20 < high

    (suggestion,) = evaluate_rules(single_rule(">", 20, ci_gate=True), differential)

    assert suggestion.status is MORE
    assert suggestion.evidence.meets_threshold is False
    assert (suggestion.evidence.ci_low, suggestion.evidence.ci_high) == pytest.approx((100 * low, 100 * high))
    assert any("straddles" in reason for reason in suggestion.evidence.reasons)


@pytest.mark.parametrize(("lymphoblasts", "expected"), [(100, POSITIVE), (10, NEGATIVE), (51, MORE), (52, POSITIVE)])
def test_ci_clear_of_the_threshold_decides(lymphoblasts: int, expected: SuggestionStatus) -> None:
    differential = differential_of(lymphoblast=lymphoblasts, filler=200 - lymphoblasts)
    low, high = proportion_confint(lymphoblasts, 200, method="beta")
    assert (low > 0.2 or high <= 0.2) is (expected is not MORE)

    (suggestion,) = evaluate_rules(single_rule(">", 20, ci_gate=True), differential)
    assert suggestion.status is expected


def test_ci_gate_uses_the_rule_set_method() -> None:
    # 63/250 = 25.2%: the exact lower bound is below 20% but the Wilson one is above.
    assert proportion_confint(63, 250, method="beta")[0] < 0.2 < proportion_confint(63, 250, method="wilson")[0]
    differential = differential_of(lymphoblast=63, filler=187)

    exact = evaluate_rules(single_rule(">", 20, ci_gate=True), differential)[0]
    wilson = evaluate_rules({**single_rule(">", 20, ci_gate=True), "ci_method": "wilson"}, differential)[0]
    assert (exact.status, wilson.status) == (MORE, POSITIVE)
    assert wilson.evidence.ci_method == "wilson"


def test_fewer_cells_than_min_cells_asks_for_more_cells() -> None:
    differential = differential_of(lymphoblast=40, filler=10)  # 80% of only 50

    (strict,) = evaluate_rules(single_rule(">", 20), differential)
    (lenient,) = evaluate_rules(single_rule(">", 20, min_cells=50), differential)

    assert strict.status is MORE
    assert strict.evidence.meets_threshold is True
    assert strict.evidence.reasons == ("only 50 cell(s) counted; the rule set asks for at least 200",)
    assert lenient.status is POSITIVE


def test_no_cells_counted_asks_for_more_cells() -> None:
    report = suggest_diagnosis(DEFAULT_RULE_SET, build_differential([]))

    statuses = {s.rule_id: s.status for s in report.suggestions}
    assert statuses == {"ALL": MORE, "AML": MORE, "LYMPHOMA": MORE, "NEUROBLASTOMA": MORE}
    assert report.suggestions[0].evidence.percent is None
    assert (report.summary.status, report.summary.text) == (MORE, COUNT_MORE_CELLS)
    json.dumps(report.to_dict(), allow_nan=False)


def test_evidence_lists_counts_interval_and_contributing_cells() -> None:
    differential = differential_of(lymphoblast=300, filler=700)
    suggestion = by_id(evaluate_rules(DEFAULT_RULE_SET, differential))["ALL"]

    evidence = suggestion.evidence
    assert suggestion.status is POSITIVE
    assert (evidence.count, evidence.n_counted, evidence.percent) == (300, 1000, pytest.approx(30.0))
    low, high = proportion_confint(300, 1000, method="beta")
    assert (evidence.ci_low, evidence.ci_high) == pytest.approx((100 * low, 100 * high))
    assert (evidence.operator, evidence.threshold_percent, evidence.min_cells) == (">", 20, 200)
    assert sorted(evidence.cell_ids) == sorted(f"lymphoblast{i}" for i in range(300))
    assert [hint.id for hint in suggestion.hints] == ["ALL-immunophenotype"]


def test_fab_rule_set_is_stricter() -> None:
    differential = differential_of(lymphoblast=250, filler=750)  # 25%, CI about 22-28%

    default = by_id(evaluate_rules(DEFAULT_RULE_SET, differential))["ALL"]
    fab = by_id(evaluate_rules(FAB_RULE_SET, differential))["ALL"]
    assert (default.status, fab.status) == (POSITIVE, NEGATIVE)


# ---- AML hints, lymphoma, neuroblastoma ------------------------------------------------------------------


def test_m3_hint_does_not_count_promyelocytes_as_blasts() -> None:
    differential = differential_of(myeloblast=60, promyelocyte=100, filler=40)
    aml = by_id(evaluate_rules(DEFAULT_RULE_SET, differential))["AML"]

    # Blasts alone: 60/200 = 30%; the promyelocytes dominate blasts + promyelocytes, so the M3 hint is shown.
    assert aml.status is POSITIVE
    assert aml.evidence.numerator == ("myeloblast", "monoblast", "megakaryoblast")
    assert aml.evidence.count == 60
    assert [hint.id for hint in aml.hints] == ["M3"]


def test_regenerating_marrow_with_many_promyelocytes_is_not_aml() -> None:
    # Recovery after chemotherapy or G-CSF: 18% promyelocytes, 3% blasts. Counting promyelocytes as blasts
    # would make it 21%, an AML flag (issue 15); by blasts alone it is clearly negative.
    differential = differential_of(myeloblast=30, promyelocyte=180, filler=790)
    report = suggest_diagnosis(DEFAULT_RULE_SET, differential)
    aml = by_id(report.suggestions)["AML"]

    assert aml.status is NEGATIVE
    assert aml.evidence.count == 30
    assert aml.hints == ()
    assert report.summary.status is NEGATIVE


def test_a_rule_set_may_still_add_hint_classes_to_the_numerator() -> None:
    rule_set = copy.deepcopy(DEFAULT_RULE_SET)
    rule_set["rules"][1]["hints"][0]["adds_to_numerator"] = True
    aml = by_id(evaluate_rules(rule_set, differential_of(myeloblast=10, promyelocyte=90, filler=100)))["AML"]

    assert aml.status is POSITIVE
    assert aml.evidence.numerator == ("myeloblast", "monoblast", "megakaryoblast", "promyelocyte")
    assert aml.evidence.count == 100


def test_m7_hint_when_megakaryoblasts_dominate() -> None:
    differential = differential_of(megakaryoblast=60, myeloblast=10, filler=130)
    aml = by_id(evaluate_rules(DEFAULT_RULE_SET, differential))["AML"]

    assert aml.status is POSITIVE
    assert aml.evidence.count == 70
    assert [hint.id for hint in aml.hints] == ["M7"]


def test_hints_are_not_shown_with_a_negative_result() -> None:
    # A normal marrow: promyelocytes outnumber myeloblasts, so the M3 condition holds, but AML is negative.
    differential = differential_of(myeloblast=4, promyelocyte=10, filler=186)
    aml = by_id(evaluate_rules(DEFAULT_RULE_SET, differential))["AML"]

    assert aml.status is NEGATIVE
    assert aml.hints == ()


def test_dominance_must_be_strict() -> None:
    # Megakaryoblasts exactly half of the blasts do not dominate.
    differential = differential_of(megakaryoblast=50, myeloblast=50, filler=100)
    assert by_id(evaluate_rules(DEFAULT_RULE_SET, differential))["AML"].hints == ()


def test_lymphoma_infiltration() -> None:
    positive = by_id(evaluate_rules(DEFAULT_RULE_SET, differential_of(lymphoma_cell=150, filler=850)))
    negative = by_id(evaluate_rules(DEFAULT_RULE_SET, differential_of(lymphoma_cell=5, filler=995)))
    assert (positive["LYMPHOMA"].status, negative["LYMPHOMA"].status) == (POSITIVE, NEGATIVE)


@pytest.mark.parametrize(
    ("tumour_cells", "others", "expected"),
    [(3, 47, POSITIVE), (2, 298, NEGATIVE), (2, 48, MORE), (0, 0, MORE)],
    ids=["found-in-few-cells", "below-count", "below-count-few-cells", "nothing-counted"],
)
def test_count_rule_for_neuroblastoma(tumour_cells: int, others: int, expected: SuggestionStatus) -> None:
    differential = differential_of(neuroblastoma_cell=tumour_cells, filler=others)
    nb = by_id(evaluate_rules(DEFAULT_RULE_SET, differential))["NEUROBLASTOMA"]

    assert nb.status is expected
    assert nb.evidence.count == tumour_cells
    assert (nb.evidence.operator, nb.evidence.threshold_count) == (">=", 3)


# ---- summary ---------------------------------------------------------------------------------------------


def test_summary_names_the_positive_rules_in_rule_order() -> None:
    differential = differential_of(lymphoblast=300, lymphoma_cell=100, filler=600)
    report = suggest_diagnosis(DEFAULT_RULE_SET, differential)

    assert report.summary.status is POSITIVE
    assert report.summary.diagnosis == "ALL"
    assert report.summary.positive_rule_ids == ("ALL", "LYMPHOMA")
    assert report.summary.text == "Acute lymphoblastic leukaemia; Bone-marrow infiltration by lymphoma"
    assert report.summary.outcome == "ALL"


def test_summary_without_positive_rules() -> None:
    normal = summarize(evaluate_rules(DEFAULT_RULE_SET, differential_of(lymphocyte=100, filler=900)))
    assert (normal.status, normal.text, normal.diagnosis, normal.outcome) == (NEGATIVE, NO_CRITERIA_MET, None, None)

    borderline = summarize(evaluate_rules(DEFAULT_RULE_SET, differential_of(lymphoblast=40, filler=160)))
    assert (borderline.status, borderline.text, borderline.outcome) == (MORE, COUNT_MORE_CELLS, "count_more_cells")
    assert borderline.pending_rule_ids == ("ALL",)


def test_report_to_dict_is_plain_json() -> None:
    report = suggest_diagnosis(DEFAULT_RULE_SET, differential_of(myeloblast=60, promyelocyte=100, filler=40))
    data = report.to_dict()

    assert json.loads(json.dumps(data, allow_nan=False)) == data
    assert data["summary"]["status"] == "positive"
    assert data["suggestions"][1]["hints"][0]["id"] == "M3"
