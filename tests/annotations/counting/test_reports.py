"""The report writers on a hand-built report (plain Python, no database)."""

from __future__ import annotations

import csv
import dataclasses
import io
from datetime import UTC, datetime

import pytest
from PIL import Image
from pypdf import PdfReader
from statsmodels.stats.proportion import proportion_confint

from annotations.counting import reports
from annotations.counting.differential import CountedCell, build_differential
from annotations.counting.rules import DEFAULT_RULE_SET, suggest_diagnosis
from annotations.taxonomy import class_by_name


def report_of(cells: list[CountedCell], *, label: str = "Acute lymphoblastic leukaemia") -> reports.DifferentialReport:
    rule_set = {**DEFAULT_RULE_SET, "rules": [{**DEFAULT_RULE_SET["rules"][0], "label": label}]}
    differential = build_differential(cells)
    return reports.DifferentialReport(
        subject=reports.Subject(
            "smear", 7, "S1", 3, "C-17", "P-9", "ALL", "flow cytometry", (reports.SmearRef(7, "S1", "WG", "BX43"),)
        ),
        source="consensus+model",
        ci_method="exact",
        rule_set=reports.RuleSetRef(1, "default", 4, False, "test"),
        generated_at=datetime(2026, 3, 1, 9, 30, tzinfo=UTC),
        differential=differential,
        diagnosis=suggest_diagnosis(rule_set, differential),
        provenance=reports.Provenance(
            fields=(),
            fields_by_source={"consensus": 3, "imported": 0, "model": 1, "none": 0},
            cells_by_truth={"consensus": 150, "imported": 0, "cell_agreed": 20, "cell_adjudicated": 5, "none": 25},
            model_versions=(reports.ModelVersionRef(12, "classifier", "resnet18+resnet34", "cpu", "active"),),
            annotators=("annotator 1A2B3C",),
            annotators_deidentified=True,
            imported_from=(),
        ),
        warnings=(),
    )


def cells(**counts: int) -> list[CountedCell]:
    made: list[CountedCell] = []
    for name, count in counts.items():
        made += [CountedCell(len(made) + i, class_by_name(name.replace("_", " ")).id, True) for i in range(count)]
    return made


def test_csv_rows_hold_counts_percentages_and_intervals() -> None:
    report = report_of(cells(lymphoblast=60, neutrophilic_segmented=140))
    rows = list(csv.DictReader(io.StringIO(reports.report_csv(report))))
    lymphoblast = next(row for row in rows if row["section"] == "class" and row["name"] == "lymphoblast")
    low, high = (100 * bound for bound in proportion_confint(60, 200, method="beta"))
    assert (lymphoblast["count"], lymphoblast["n_counted"], lymphoblast["percent"]) == ("60", "200", "30.00")
    assert (lymphoblast["ci_low"], lymphoblast["ci_high"]) == (f"{low:.2f}", f"{high:.2f}")
    suggestion = next(row for row in rows if row["section"] == "suggestion")
    assert (suggestion["key"], suggestion["status"], suggestion["percent"]) == ("ALL", "positive", "30.00")
    assert next(row for row in rows if row["section"] == "summary")["key"] == "ALL"
    assert next(row for row in rows if row["section"] == "annotator")["name"] == "annotator 1A2B3C"
    truth = {row["key"]: row["count"] for row in rows if row["section"] == "truth_source"}
    assert truth == {"consensus": "150", "imported": "0", "cell_agreed": "20", "cell_adjudicated": "5", "none": "25"}
    meta = {row["key"]: row["detail"] for row in rows if row["section"] == "meta"}
    assert meta["rule_set"] == "default v4 (not the active version)"
    assert meta["me_ratio"] == "no erythroid cells counted: the M:E ratio is undefined"


def test_csv_neutralises_formulas_in_text() -> None:
    report = report_of(cells(lymphoblast=60, neutrophilic_segmented=140), label="=HYPERLINK(1)")
    suggestion = next(row for row in csv.DictReader(io.StringIO(reports.report_csv(report))) if row["key"] == "ALL")
    assert suggestion["name"] == "'=HYPERLINK(1)"


def test_pdf_holds_the_table_the_chart_and_the_provenance() -> None:
    content = reports.report_pdf(report_of(cells(lymphoblast=60, neutrophilic_segmented=140)))
    reader = PdfReader(io.BytesIO(content))
    text = "\n".join(page.extract_text() for page in reader.pages)
    for expected in (
        "smear C-17/S1",
        "lymphoblast (blast)\nlymphoid\n60\n30.0",
        "Acute lymphoblastic leukaemia (rule ALL)",
        "consensus+model (3 field(s) consensus, 1 field(s) model)",
        "classifier v12 (resnet18+resnet34, profile cpu, active)",
        "Annotators (pseudonyms): annotator 1A2B3C",
        "Cells by truth: consensus: 150, cell_agreed: 20, cell_adjudicated: 5, none: 25.",
        "2026-03-01 09:30:00 UTC",
    ):
        assert expected in text, expected
    images = [image for page in reader.pages for image in page.images]
    assert len(images) == 1  # the lineage chart


def test_lineage_chart_is_a_png() -> None:
    png = reports.lineage_chart_png(build_differential(cells(lymphoblast=3, polychromatic_erythroblast=1)))
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    assert image.width > 300


def test_a_report_without_counted_cells_renders_without_a_chart() -> None:
    report = report_of([CountedCell(1, None, False)])
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(reports.report_pdf(report))).pages)
    assert "No cells counted: no chart." in text
    assert "count more cells" in text
    assert reports.report_json(report)["differential"]["n_uncountable"] == 1


@pytest.mark.parametrize("method", ["exact", "wilson"])
@pytest.mark.parametrize(
    "counts",
    [
        {"lymphoblast": 7},  # one lineage at 100%, the others at 0% (Wilson's bounds fell outside [0, 1])
        {"lymphoblast": 9, "myeloblast": 3},
        {"lymphoblast": 1},
        {"neutrophilic_segmented": 200, "lymphoblast": 1},
    ],
)
def test_chart_pdf_and_csv_for_every_ci_method_at_0_and_100_percent(method: str, counts: dict[str, int]) -> None:
    """Regression (issue 21): `?ci_method=wilson` answered 500 (matplotlib: 'yerr' must not contain negative values)."""
    cells_ = cells(**counts)
    report = dataclasses.replace(
        report_of(cells_), ci_method=method, differential=build_differential(cells_, ci_method=method)
    )
    assert reports.lineage_chart_png(report.differential).startswith(b"\x89PNG")
    assert PdfReader(io.BytesIO(reports.report_pdf(report))).pages
    for row in csv.DictReader(io.StringIO(reports.report_csv(report))):
        if row["ci_low"] and row["percent"]:
            assert 0.0 <= float(row["ci_low"]) <= float(row["percent"]) <= float(row["ci_high"]) <= 100.0, row
