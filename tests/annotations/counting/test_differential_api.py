"""GET /api/v1/cases/{id}/differential and /api/v1/smears/{id}/differential: JSON, CSV and PDF on hand-built cells."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from pypdf import PdfReader
from statsmodels.stats.proportion import proportion_confint

from aicell.roles import Role
from annotations.models import (
    AnnotationKind,
    AnnotationStatus,
    CellReview,
    CellReviewStatus,
    CellVerdict,
    ReviewOutcome,
    RuleSet,
)
from tests.factories import (
    ActiveClassifierFactory,
    AnnotationSetFactory,
    CaseFactory,
    FieldFactory,
    ModelVersionFactory,
    PredictionSetFactory,
    SmearFactory,
    TruthSetFactory,
    add_cells,
)

pytestmark = pytest.mark.django_db


def ci_percent(count: int, n: int, method: str = "beta") -> list[float]:
    return [100 * bound for bound in proportion_confint(count, n, alpha=0.05, method=method)]


def by_name(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in items}


@dataclass
class World:
    case: Any
    smear1: Any
    smear2: Any
    field_a: Any
    field_b: Any
    field_c: Any
    annotators: list[Any]


@pytest.fixture
def world(make_user: Any) -> World:
    """100 counted cells: 55 lymphoblasts, 10 lymphocytes, 10 myeloblasts, 20 segmented, 5 polychromatic
    erythroblasts; plus 2 uncountable and 1 unclassified cell. Fields A, B (smear 1) carry consensus, C (smear 2)
    imported truth. A's consensus cells come from two annotators' cells."""
    case = CaseFactory(confirmed_diagnosis="ALL", diagnosis_method="flow cytometry")
    smear1, smear2 = SmearFactory(case=case, code="S1"), SmearFactory(case=case, code="S2")
    field_a, field_b, field_c = FieldFactory(smear=smear1), FieldFactory(smear=smear1), FieldFactory(smear=smear2)
    annotators = [AnnotationSetFactory(field=field_a).annotator, AnnotationSetFactory(field=field_a).annotator]
    source_cells = [
        cell
        for annotation_set in field_a.annotation_sets.filter(kind=AnnotationKind.ANNOTATOR)
        for cell in add_cells(annotation_set, {"lymphoblast": 1})
    ]
    add_cells(
        TruthSetFactory(field=field_a), {"lymphoblast": 30, "lymphocyte": 10}, uncountable=2, source_cells=source_cells
    )
    add_cells(
        TruthSetFactory(field=field_b),
        {"myeloblast": 10, "neutrophilic segmented": 20, "polychromatic erythroblast": 5},
        unclassified=1,
    )
    add_cells(TruthSetFactory(field=field_c, kind=AnnotationKind.IMPORTED, source_name="lab-2020"), {"lymphoblast": 25})
    return World(case, smear1, smear2, field_a, field_b, field_c, annotators)


def get(client: Any, path: str, **kwargs: Any) -> Any:
    return client.get(path, **kwargs)


def test_case_differential_counts_percentages_intervals_and_lineages(
    client_for: Any, annotator: Any, world: World
) -> None:
    response = get(client_for(annotator), f"/api/v1/cases/{world.case.pk}/differential")
    assert response.status_code == 200, response.json()
    body = response.json()
    differential = body["differential"]
    assert (differential["n_cells"], differential["n_counted"]) == (103, 100)
    assert (differential["n_uncountable"], differential["n_unclassified"]) == (2, 1)
    classes = by_name(differential["classes"])
    expected = {
        "lymphoblast": 55,
        "lymphocyte": 10,
        "myeloblast": 10,
        "neutrophilic segmented": 20,
        "polychromatic erythroblast": 5,
    }
    for name, count in expected.items():
        share = classes[name]["share"]
        assert (share["count"], share["n"], share["percent"]) == (count, 100, pytest.approx(count))
        assert [share["ci_low"], share["ci_high"]] == pytest.approx(ci_percent(count, 100))
    assert sum(c["share"]["count"] for c in differential["classes"]) == 100
    assert classes["monocyte"]["share"]["percent"] == 0
    lineages = by_name(differential["lineages"])
    assert {name: lineages[name]["share"]["count"] for name in ("lymphoid", "granulocytic", "erythroid")} == {
        "lymphoid": 65,
        "granulocytic": 30,
        "erythroid": 5,
    }
    assert differential["blasts"]["share"]["percent"] == pytest.approx(65)
    assert differential["me_ratio"]["value"] == pytest.approx(30 / 5)
    assert (body["source"], body["ci_method"]) == ("consensus", "exact")
    assert (body["rule_set"]["name"], body["rule_set"]["version"], body["rule_set"]["active"]) == ("default", 1, True)
    assert body["subject"]["kind"] == "case"
    assert [smear["code"] for smear in body["subject"]["smears"]] == ["S1", "S2"]
    assert body["subject"]["confirmed_diagnosis"] == "ALL"
    assert "2 uncountable cell(s) excluded from the count" in body["warnings"]


def test_fewer_cells_than_the_minimum_suggest_counting_more(client_for: Any, annotator: Any, world: World) -> None:
    body = get(client_for(annotator), f"/api/v1/cases/{world.case.pk}/differential").json()
    assert body["summary"]["status"] == "count_more_cells"
    assert body["summary"]["text"] == "count more cells"
    all_rule = {s["rule_id"]: s for s in body["suggestions"]}["ALL"]
    assert all_rule["status"] == "count_more_cells"
    evidence = all_rule["evidence"]
    assert (evidence["count"], evidence["n_counted"], evidence["threshold_percent"]) == (55, 100, 20)
    assert [evidence["ci_low"], evidence["ci_high"]] == pytest.approx(ci_percent(55, 100))
    assert "only 100 cell(s) counted; the rule set asks for at least 200" in evidence["reasons"]
    consensus_a = world.field_a.annotation_sets.get(kind="consensus")
    lymphoblast_ids = set(consensus_a.cells.filter(cell_class_id=11, countable=True).values_list("id", flat=True))
    lymphoblast_ids |= set(world.field_c.annotation_sets.get().cells.values_list("id", flat=True))
    assert set(evidence["cell_ids"]) == lymphoblast_ids
    assert body["links"]["cell"] == "/api/v1/cells/{id}"


def test_provenance_names_sources_annotators_and_imports(client_for: Any, adjudicator: Any, world: World) -> None:
    provenance = get(client_for(adjudicator), f"/api/v1/cases/{world.case.pk}/differential").json()["provenance"]
    assert provenance["fields_by_source"] == {"consensus": 2, "imported": 1, "model": 0, "none": 0}
    sources = {row["field_id"]: (row["source"], row["n_cells"]) for row in provenance["fields"]}
    assert sources == {
        world.field_a.pk: ("consensus", 42),
        world.field_b.pk: ("consensus", 36),
        world.field_c.pk: ("imported", 25),
    }
    assert provenance["annotators"] == sorted(user.username for user in world.annotators)
    assert provenance["annotators_deidentified"] is False
    assert provenance["imported_from"] == ["lab-2020"]
    assert provenance["model_versions"] == []


def test_a_consensus_reopened_for_changes_is_not_counted_until_it_is_locked_again(
    client_for: Any, adjudicator: Any, world: World
) -> None:
    consensus = world.field_b.annotation_sets.get(kind=AnnotationKind.CONSENSUS)
    consensus.status = AnnotationStatus.DRAFT
    consensus.save()
    body = get(client_for(adjudicator), f"/api/v1/cases/{world.case.pk}/differential").json()
    assert body["provenance"]["fields_by_source"] == {"consensus": 1, "imported": 1, "model": 0, "none": 1}
    assert body["differential"]["n_counted"] == 65  # field B's 35 counted cells wait for the lock
    assert "1 of 3 field(s) have no consensus yet and were not counted" in body["warnings"]


def test_researchers_get_stable_pseudonyms_instead_of_annotator_names(
    client_for: Any, researcher: Any, make_user: Any, world: World
) -> None:
    first = get(client_for(researcher), f"/api/v1/cases/{world.case.pk}/differential").json()["provenance"]
    again = get(client_for(make_user(Role.RESEARCHER)), f"/api/v1/smears/{world.smear1.pk}/differential").json()
    assert first["annotators_deidentified"] is True
    assert len(set(first["annotators"])) == 2
    assert all(name.startswith("annotator ") for name in first["annotators"])
    assert not {user.username for user in world.annotators} & set(first["annotators"])
    assert again["provenance"]["annotators"] == first["annotators"]


def test_smear_differential_counts_that_smear_only(client_for: Any, researcher: Any, world: World) -> None:
    body = get(client_for(researcher), f"/api/v1/smears/{world.smear2.pk}/differential").json()
    assert body["subject"]["kind"] == "smear"
    assert body["differential"]["n_counted"] == 25
    assert by_name(body["differential"]["classes"])["lymphoblast"]["share"]["percent"] == pytest.approx(100)


@pytest.fixture
def with_predictions(world: World) -> dict[str, Any]:
    """The active classifier predicted field A (which has consensus) and field D (which has none); a retired
    model's predictions on field B must never be counted."""
    detector = ModelVersionFactory(stage="detector", status="active")
    classifier = ActiveClassifierFactory()
    field_d = FieldFactory(smear=world.smear1)
    pipeline = {"detector": detector.pk, "classifier": classifier.pk}
    add_cells(PredictionSetFactory(field=world.field_a, model_version=classifier, pipeline=pipeline), {"monocyte": 50})
    add_cells(
        PredictionSetFactory(field=field_d, model_version=classifier, pipeline=pipeline),
        {"lymphoblast": 8, "lymphocyte": 2},
    )
    retired = ModelVersionFactory(status="retired")
    add_cells(PredictionSetFactory(field=world.field_b, model_version=retired), {"eosinophil": 99})
    return {"classifier": classifier, "detector": detector, "field_d": field_d}


MIXED_SOURCES = {"consensus": 2, "imported": 1, "model": 1, "none": 0}


@pytest.mark.parametrize(
    ("query", "source", "n_counted", "lymphoblasts", "by_source"),
    [
        ("", "consensus", 100, 55, {"consensus": 2, "imported": 1, "model": 0, "none": 1}),
        ("?source=consensus%2Bmodel", "consensus+model", 110, 63, MIXED_SOURCES),
        ("?source=consensus+model", "consensus+model", 110, 63, MIXED_SOURCES),
        ("?source=model", "model", 60, 8, {"consensus": 0, "imported": 0, "model": 2, "none": 2}),
    ],
    ids=["consensus", "consensus+model-escaped", "consensus+model-plus", "model"],
)
def test_source_switching(
    client_for: Any,
    annotator: Any,
    world: World,
    with_predictions: dict[str, Any],
    query: str,
    source: str,
    n_counted: int,
    lymphoblasts: int,
    by_source: dict[str, int],
) -> None:
    body = get(client_for(annotator), f"/api/v1/cases/{world.case.pk}/differential{query}").json()
    assert body["source"] == body["differential"]["source"] == source
    assert body["differential"]["n_counted"] == n_counted
    assert by_name(body["differential"]["classes"])["lymphoblast"]["share"]["count"] == lymphoblasts
    assert by_name(body["differential"]["classes"])["eosinophil"]["share"]["count"] == 0
    assert body["provenance"]["fields_by_source"] == by_source
    model_ids = {version["id"] for version in body["provenance"]["model_versions"]}
    uses_model = source != "consensus"
    expected_models = {with_predictions["classifier"].pk, with_predictions["detector"].pk} if uses_model else set()
    assert model_ids == expected_models
    if by_source["none"]:
        assert any("were not counted" in warning for warning in body["warnings"])


def test_the_report_says_which_truth_the_counted_cells_have(
    client_for: Any, annotator: Any, world: World, with_predictions: dict[str, Any]
) -> None:
    """Field-level truth, the review queue's cell-level truth of predicted cells (agreed, adjudicated), or none:
    counted per cell in the JSON, the CSV and the PDF."""
    predicted = list(with_predictions["field_d"].annotation_sets.get().cells.order_by("id"))
    for cell, outcome in ((predicted[0], ReviewOutcome.AGREED), (predicted[1], ReviewOutcome.ADJUDICATED)):
        CellReview.objects.create(
            cell=cell, field=with_predictions["field_d"], status=CellReviewStatus.TRUTH, verdict=CellVerdict.CLASS,
            cell_class_id=cell.cell_class_id, x=cell.x, y=cell.y, width=cell.width, height=cell.height,
            outcome=outcome,
        )  # fmt: skip
    url = f"/api/v1/cases/{world.case.pk}/differential?source=consensus%2Bmodel"
    by_truth = get(client_for(annotator), url).json()["provenance"]["cells_by_truth"]
    assert by_truth == {
        "consensus": 42 + 36,  # fields A and B (A's own predictions give way to its consensus)
        "imported": 25,
        "cell_agreed": 1,
        "cell_resolved": 0,
        "cell_adjudicated": 1,
        "none": len(predicted) - 2,
    }
    rows = list(csv.DictReader(io.StringIO(get(client_for(annotator), url + "&format=csv").content.decode())))
    assert {row["key"]: int(row["count"]) for row in rows if row["section"] == "truth_source"} == by_truth
    report = f"/api/v1/cases/{world.case.pk}/differential/report.pdf?source=consensus%2Bmodel"
    text = " ".join(pdf_text(get(client_for(annotator), report).content).split())
    assert "Cells by truth: consensus: 78, imported: 25, cell_agreed: 1, cell_adjudicated: 1, none: 8." in text


def test_model_source_without_an_active_classifier_says_so(client_for: Any, annotator: Any, world: World) -> None:
    body = get(client_for(annotator), f"/api/v1/cases/{world.case.pk}/differential?source=model").json()
    assert body["differential"]["n_counted"] == 0
    assert "no active classifier model version: no model predictions were used" in body["warnings"]


def test_wilson_intervals_on_request(client_for: Any, annotator: Any, world: World) -> None:
    body = get(client_for(annotator), f"/api/v1/cases/{world.case.pk}/differential?ci_method=wilson").json()
    share = by_name(body["differential"]["classes"])["lymphoblast"]["share"]
    assert [share["ci_low"], share["ci_high"]] == pytest.approx(ci_percent(55, 100, "wilson"))
    evidence = body["suggestions"][0]["evidence"]
    assert (evidence["ci_method"], evidence["ci_low"]) == ("wilson", pytest.approx(ci_percent(55, 100, "wilson")[0]))


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ("source=everything", {"source"}),
        ("ci_method=bayes", {"ci_method"}),
        ("rule_set=abc", {"rule_set"}),
        ("rule_set=999999", {"rule_set"}),
        ("sorce=model", {"sorce"}),
        ("source=x&ci_method=y", {"source", "ci_method"}),
    ],
)
def test_bad_parameters_answer_400_naming_them(
    client_for: Any, annotator: Any, world: World, query: str, fields: set[str]
) -> None:
    response = get(client_for(annotator), f"/api/v1/cases/{world.case.pk}/differential?{query}")
    assert response.status_code == 400
    body = response.json()
    assert {error["field"] for error in body["errors"]} == fields
    if "source" in fields:
        reason = next(e["reason"] for e in body["errors"] if e["field"] == "source")
        assert "consensus, consensus+model, model" in reason


def test_rule_set_parameter_evaluates_another_version(client_for: Any, annotator: Any) -> None:
    """100 lymphoblasts in 400 cells: 25%, exact 95% CI 20.8-29.5%: ALL by the default (> 20%), not by FAB (> 30%)."""
    smear = SmearFactory()
    add_cells(TruthSetFactory(field=FieldFactory(smear=smear)), {"lymphoblast": 100, "neutrophilic segmented": 300})
    client = client_for(annotator)
    default = get(client, f"/api/v1/smears/{smear.pk}/differential").json()
    fab_id = RuleSet.objects.get(name="fab").pk
    fab = get(client, f"/api/v1/smears/{smear.pk}/differential?rule_set={fab_id}").json()
    assert (default["summary"]["status"], default["summary"]["diagnosis"]) == ("positive", "ALL")
    assert (fab["summary"]["status"], fab["summary"]["diagnosis"]) == ("negative", None)
    assert (fab["rule_set"]["name"], fab["rule_set"]["active"]) == ("fab", False)
    assert {s["rule_id"]: s["evidence"]["threshold_percent"] for s in fab["suggestions"]}["ALL"] == 30


def test_no_active_rule_set_is_a_clear_conflict(client_for: Any, annotator: Any, world: World) -> None:
    RuleSet.objects.filter(active=True).update(active=False)
    response = get(client_for(annotator), f"/api/v1/cases/{world.case.pk}/differential")
    assert response.status_code == 409
    assert "No rule set is active" in response.json()["detail"]


def test_a_stored_rule_set_that_no_longer_validates_is_a_400_not_a_500(
    client_for: Any, annotator: Any, world: World
) -> None:
    broken = RuleSet.objects.create(
        name="broken",
        version=1,
        content={
            "rules": [{"id": "X", "label": "X", "numerator": ["blastocyte"], "operator": ">", "threshold_percent": 5}]
        },
    )
    response = get(client_for(annotator), f"/api/v1/cases/{world.case.pk}/differential?rule_set={broken.pk}")
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert any(e["field"] == "rule_set.content.rules[0].numerator[0]" and "blastocyte" in e["reason"] for e in errors)


@pytest.mark.parametrize("kind", ["no fields", "empty field", "only uncountable"])
def test_nothing_to_count_answers_200_with_warnings_in_every_format(client_for: Any, annotator: Any, kind: str) -> None:
    smear = SmearFactory()
    if kind != "no fields":
        truth = TruthSetFactory(field=FieldFactory(smear=smear))
        if kind == "only uncountable":
            add_cells(truth, uncountable=4)
    client = client_for(annotator)
    body = get(client, f"/api/v1/smears/{smear.pk}/differential").json()
    assert body["differential"]["n_counted"] == 0
    assert all(c["share"]["percent"] is None for c in body["differential"]["classes"])
    assert body["differential"]["me_ratio"]["value"] is None
    assert body["summary"]["status"] == "count_more_cells"
    expected_warning = {
        "no fields": "no field images uploaded yet",
        "empty field": "no cells: nothing to count",
        "only uncountable": "4 uncountable cell(s) excluded from the count",
    }[kind]
    assert expected_warning in body["warnings"]
    assert get(client, f"/api/v1/smears/{smear.pk}/differential?format=csv").status_code == 200
    pdf = get(client, f"/api/v1/smears/{smear.pk}/differential/report.pdf")
    assert pdf.status_code == 200
    assert "No cells counted" in pdf_text(pdf.content)


def test_unknown_case_is_404(client_for: Any, annotator: Any) -> None:
    assert get(client_for(annotator), "/api/v1/cases/999999/differential").status_code == 404


# ---- CSV and PDF ---------------------------------------------------------------------------------------------


def csv_rows(content: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(content.decode("utf-8"))))


@pytest.mark.parametrize("how", ["query", "accept"])
def test_csv_holds_the_same_counts(client_for: Any, annotator: Any, world: World, how: str) -> None:
    path = f"/api/v1/cases/{world.case.pk}/differential"
    client = client_for(annotator)
    response = get(client, f"{path}?format=csv") if how == "query" else get(client, path, HTTP_ACCEPT="text/csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert f'filename="differential-{world.case.code}.csv"' in response["Content-Disposition"]
    rows = csv_rows(response.content)
    meta = {row["key"]: row["detail"] for row in rows if row["section"] == "meta"}
    assert (meta["source"], meta["n_counted"], meta["rule_set"]) == ("consensus", "100", "default v1 (active)")
    lymphoblast = next(row for row in rows if row["section"] == "class" and row["name"] == "lymphoblast")
    low, high = ci_percent(55, 100)
    assert (lymphoblast["count"], lymphoblast["percent"]) == ("55", "55.00")
    assert (lymphoblast["ci_low"], lymphoblast["ci_high"]) == (f"{low:.2f}", f"{high:.2f}")
    lineages = {row["key"]: row["count"] for row in rows if row["section"] == "lineage"}
    assert (lineages["lymphoid"], lineages["granulocytic"], lineages["erythroid"]) == ("65", "30", "5")
    excluded = {row["key"]: row["count"] for row in rows if row["section"] == "excluded"}
    assert excluded == {"uncountable": "2", "unclassified": "1"}
    suggestion = next(row for row in rows if row["section"] == "suggestion" and row["key"] == "ALL")
    assert (suggestion["status"], suggestion["threshold"]) == ("count_more_cells", "> 20%")


def test_csv_request_errors_keep_the_json_shape(client_for: Any, annotator: Any, world: World) -> None:
    response = get(client_for(annotator), f"/api/v1/cases/{world.case.pk}/differential?format=csv&source=bogus")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json()["errors"][0]["field"] == "source"


def pdf_text(content: bytes) -> str:
    assert content.startswith(b"%PDF")
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


def table_row(*cells: str) -> str:
    """A table row as pypdf extracts it: one line per cell."""
    return "\n".join(cells)


def test_pdf_report_holds_the_table_suggestion_and_provenance(client_for: Any, annotator: Any, world: World) -> None:
    response = get(client_for(annotator), f"/api/v1/cases/{world.case.pk}/differential/report.pdf")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == f'attachment; filename="differential-{world.case.code}.pdf"'
    text = pdf_text(response.content)
    low, high = ci_percent(55, 100)
    for expected in (
        f"case {world.case.code}",
        table_row("lymphoblast (blast)", "lymphoid", "55", "55.0", f"{low:.1f}-{high:.1f}"),
        table_row("neutrophilic segmented", "granulocytic", "20", "20.0", "{:.1f}-{:.1f}".format(*ci_percent(20, 100))),
        table_row("lymphoid", "65", "65.0"),
        table_row("count more cells", "55 / 100", "55.0", f"{low:.1f}-{high:.1f}", "> 20%"),
        "only 100 cell(s) counted",
        "consensus (2 field(s) consensus, 1 field(s) imported)",
        "default v1 (active)",
        *(user.username for user in world.annotators),
        "Generated",
    ):
        assert expected in text, expected


def test_pdf_errors_are_json(client_for: Any, annotator: Any, world: World) -> None:
    response = get(client_for(annotator), f"/api/v1/cases/{world.case.pk}/differential/report.pdf?ci_method=x")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "ci_method"


# ---- queries ---------------------------------------------------------------------------------------------------


def case_with_fields(n_fields: int, classifier: Any) -> Any:
    """Even fields: consensus whose cells come from an annotator's cells; odd fields: predictions only. So the
    consensus+model differential exercises every join of the gathering queries."""
    case = CaseFactory()
    smear = SmearFactory(case=case)
    for index in range(n_fields):
        field = FieldFactory(smear=smear)
        if index % 2:
            pipeline = {"classifier": classifier.pk}
            add_cells(PredictionSetFactory(field=field, model_version=classifier, pipeline=pipeline), {"monocyte": 3})
        else:
            sources = add_cells(AnnotationSetFactory(field=field), {"lymphoblast": 2})
            add_cells(TruthSetFactory(field=field), {"lymphoblast": 2, "lymphocyte": 1}, source_cells=sources)
    return case


def test_query_count_does_not_grow_with_the_number_of_fields(client_for: Any, annotator: Any) -> None:
    client = client_for(annotator)
    classifier = ActiveClassifierFactory()
    counts = []
    for n_fields in (2, 20):
        case = case_with_fields(n_fields, classifier)
        with CaptureQueriesContext(connection) as queries:
            response = get(client, f"/api/v1/cases/{case.pk}/differential?source=consensus%2Bmodel")
        assert response.status_code == 200
        body = response.json()
        assert body["differential"]["n_counted"] == n_fields * 3
        assert body["provenance"]["fields_by_source"]["model"] == n_fields // 2
        assert len(body["provenance"]["annotators"]) == n_fields // 2
        counts.append(len(queries))
    assert counts[0] == counts[1]
    assert counts[0] <= 12, [query["sql"] for query in queries.captured_queries]


@pytest.mark.parametrize("ci_method", ["exact", "wilson"])
@pytest.mark.parametrize("kind", ["case", "smear"])
def test_reports_at_0_and_100_percent_render_for_every_ci_method(
    client_for: Any, annotator: Any, ci_method: str, kind: str
) -> None:
    """Regression (issue 21): a lineage at 100% (the others at 0%) made the PDF answer 500 with Wilson intervals
    (matplotlib: 'yerr' must not contain negative values)."""
    smear = SmearFactory()
    add_cells(TruthSetFactory(field=FieldFactory(smear=smear)), {"lymphoblast": 7})
    target = smear.case.pk if kind == "case" else smear.pk
    client = client_for(annotator)
    base = f"/api/v1/{kind}s/{target}/differential"
    pdf = get(client, f"{base}/report.pdf?ci_method={ci_method}")
    assert pdf.status_code == 200, pdf.content[:300]
    assert PdfReader(io.BytesIO(pdf.content)).pages
    listed = get(client, f"{base}?format=csv&ci_method={ci_method}")
    assert listed.status_code == 200
    for row in csv.DictReader(io.StringIO(listed.content.decode())):
        if row["ci_low"] and row["percent"]:
            assert 0.0 <= float(row["ci_low"]) <= float(row["percent"]) <= float(row["ci_high"]) <= 100.0, row
    lineages = by_name(get(client, f"{base}?ci_method={ci_method}").json()["differential"]["lineages"])
    assert lineages["lymphoid"]["share"]["ci_high"] == 100.0
    assert lineages["erythroid"]["share"]["ci_low"] == 0.0
