"""`manage.py evaluate_diagnosis` on hand-made cases whose sensitivity and specificity are known by construction."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from statsmodels.stats.proportion import proportion_confint

from annotations.models import RuleSet
from tests.factories import (
    ActiveClassifierFactory,
    CaseFactory,
    FieldFactory,
    PredictionSetFactory,
    SmearFactory,
    TruthSetFactory,
    add_cells,
)

pytestmark = pytest.mark.django_db


def make_case(code: str, confirmed: str, classes: dict[str, int]) -> Any:
    case = CaseFactory(code=code, confirmed_diagnosis=confirmed, diagnosis_method="flow cytometry")
    add_cells(TruthSetFactory(field=FieldFactory(smear=SmearFactory(case=case))), classes)
    return case


def filler(blasts: int, total: int = 200) -> int:
    return total - blasts


@pytest.fixture
def cases() -> None:
    """ALL by the default rule set (lymphoblasts > 20% of 200, CI clear of 20%):
    E1, E2 confirmed ALL and suggested ALL (TP); E3 confirmed ALL at 5% (FN); E5 confirmed NONE at 60% (FP);
    E4, E6 NONE and E7 AML are true negatives for ALL; E7 is a true positive for AML. E8 has no confirmed
    diagnosis (skipped); E9 is ALL counted on 50 cells only (indeterminate)."""
    make_case("E1", "ALL", {"lymphoblast": 120, "neutrophilic segmented": filler(120)})
    make_case("E2", "ALL", {"lymphoblast": 100, "neutrophilic segmented": filler(100)})
    make_case("E3", "ALL", {"lymphoblast": 10, "neutrophilic segmented": filler(10)})
    make_case("E4", "NONE", {"lymphoblast": 5, "neutrophilic segmented": filler(5)})
    make_case("E5", "NONE", {"lymphoblast": 120, "neutrophilic segmented": filler(120)})
    make_case("E6", "NONE", {"lymphoblast": 2, "neutrophilic segmented": filler(2)})
    make_case("E7", "AML", {"myeloblast": 100, "neutrophilic segmented": filler(100)})
    make_case("E8", "", {"lymphoblast": 120, "neutrophilic segmented": filler(120)})
    make_case("E9", "ALL", {"lymphoblast": 30, "neutrophilic segmented": 20})


def run_json(*args: str) -> dict[str, Any]:
    out = io.StringIO()
    call_command("evaluate_diagnosis", "--json", *args, stdout=out)
    return json.loads(out.getvalue())


def exact_ci(successes: int, total: int) -> list[float]:
    return list(proportion_confint(successes, total, alpha=0.05, method="beta"))


def test_sensitivity_specificity_and_confusion_table(cases: None) -> None:
    result = run_json()
    evaluation = result["evaluation"]
    assert (result["source"], result["rule_set"]["name"]) == ("consensus", "default")
    assert (evaluation["n_cases"], evaluation["n_evaluated"]) == (8, 7)
    per_label = {metrics["label"]: metrics for metrics in evaluation["per_label"]}
    all_metrics = per_label["ALL"]
    assert (all_metrics["tp"], all_metrics["fp"], all_metrics["tn"], all_metrics["fn"]) == (2, 1, 3, 1)
    assert all_metrics["sensitivity"]["value"] == pytest.approx(2 / 3)
    assert all_metrics["specificity"]["value"] == pytest.approx(3 / 4)
    assert all_metrics["accuracy"]["value"] == pytest.approx(5 / 7)
    assert [all_metrics["sensitivity"]["ci_low"], all_metrics["sensitivity"]["ci_high"]] == pytest.approx(
        exact_ci(2, 3)
    )
    assert all_metrics["indeterminate"] == 1
    aml = per_label["AML"]
    assert (aml["tp"], aml["fp"], aml["tn"], aml["fn"]) == (1, 0, 6, 0)
    assert evaluation["accuracy"]["value"] == pytest.approx(5 / 7)
    labels = evaluation["labels"]
    assert labels[:5] == ["none", "ALL", "AML", "LYMPHOMA", "NEUROBLASTOMA"]
    confusion = {(labels[i], labels[j]): n for i, row in enumerate(evaluation["confusion"]) for j, n in enumerate(row)}
    assert confusion[("ALL", "ALL")] == 2
    assert confusion[("ALL", "none")] == 1
    assert confusion[("none", "ALL")] == 1
    assert confusion[("none", "none")] == 2
    assert confusion[("AML", "AML")] == 1
    assert sum(confusion.values()) == 7
    assert evaluation["indeterminate"]["case_ids"] == ["E9"]
    assert result["skipped"] == [{"case": "E8", "reason": "no confirmed diagnosis"}]
    outcomes = {case["case"]: case["suggested"] for case in result["cases"]}
    assert outcomes == {
        "E1": "ALL",
        "E2": "ALL",
        "E3": None,
        "E4": None,
        "E5": "ALL",
        "E6": None,
        "E7": "AML",
        "E9": "count_more_cells",
    }


def test_indeterminate_cases_can_count_as_negative(cases: None) -> None:
    all_metrics = run_json("--indeterminate-as-negative")["evaluation"]["per_label"][0]
    assert all_metrics["label"] == "ALL"
    assert (all_metrics["tp"], all_metrics["fn"]) == (2, 2)
    assert all_metrics["sensitivity"]["value"] == pytest.approx(2 / 4)


def test_another_rule_set_version_changes_the_result(cases: None) -> None:
    """A 55% threshold decided on the point estimate keeps E1 (60%) and loses E2 (50%)."""
    strict = RuleSet.objects.create(
        name="strict",
        version=1,
        content={
            "ci_gate": False,
            "rules": [
                {"id": "ALL", "label": "ALL", "numerator": ["lymphoblast"], "operator": ">", "threshold_percent": 55}
            ],
        },
    )
    all_metrics = run_json("--rule-set", str(strict.pk))["evaluation"]["per_label"][0]
    assert (all_metrics["tp"], all_metrics["fn"]) == (1, 2)
    assert run_json("--rule-set", str(strict.pk))["rule_set"]["name"] == "strict"


def test_model_source_uses_the_active_classifier_predictions(cases: None) -> None:
    classifier = ActiveClassifierFactory()
    case = CaseFactory(code="M1", confirmed_diagnosis="ALL")
    prediction = PredictionSetFactory(field=FieldFactory(smear=SmearFactory(case=case)), model_version=classifier)
    add_cells(prediction, {"lymphoblast": 150, "lymphocyte": 50})
    result = run_json("--source", "model")
    outcomes = {row["case"]: row["suggested"] for row in result["cases"]}
    assert outcomes["M1"] == "ALL"
    # The hand-made cases have consensus only: by the model they have nothing counted.
    assert outcomes["E1"] == "count_more_cells"


def test_table_output_reads_like_the_paper(cases: None) -> None:
    out = io.StringIO()
    call_command("evaluate_diagnosis", stdout=out)
    text = out.getvalue()
    assert "ALL: TP 2  FP 1  TN 3  FN 1  (indeterminate 1)" in text
    low, high = exact_ci(2, 3)
    assert f"sensitivity 0.67 (2/3, 95% CI {low:.2f}-{high:.2f})" in text
    assert "specificity 0.75 (3/4," in text
    assert "Confusion table" in text
    assert "  E8: no confirmed diagnosis" in text


def test_no_case_to_evaluate_is_a_clear_error() -> None:
    CaseFactory(code="U1")
    with pytest.raises(CommandError, match=r"No case has a confirmed diagnosis: nothing to evaluate \(1 case"):
        call_command("evaluate_diagnosis", stdout=io.StringIO())


def test_unknown_rule_set_is_a_clear_error(cases: None) -> None:
    with pytest.raises(CommandError, match="Rule set 999999 does not exist"):
        call_command("evaluate_diagnosis", "--rule-set", "999999", stdout=io.StringIO())
