"""The differential report of a smear or case, as JSON, CSV and PDF (issue 7 "API and reports").

Plain Python with no Django or HTTP: the selector (`counting.selectors.differential_report`) gathers the data into one
`DifferentialReport`, and every format is written from that one object, so the JSON, the CSV and the PDF can never
disagree. The PDF holds the subject, the source of the cells, the counts table with 95% intervals, a chart of the
lineage percentages, every suggestion with its evidence, the model versions and annotators involved, and the time
it was generated.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, Image, KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from annotations.counting.differential import Differential, Share
from annotations.counting.rules import DiagnosisReport, Suggestion
from annotations.jsonable import JsonMixin

# Provenance labels of the annotation set a field's cells were counted from.
FROM_CONSENSUS, FROM_IMPORTED, FROM_MODEL, FROM_NOTHING = "consensus", "imported", "model", "none"
FROM_ANNOTATOR = "annotator"  # the asking user's own set (source "mine")
CELL_IDS_SHOWN_IN_PDF = 40
DISCLAIMER = (
    "Decision support only: a suggestion from counted cells is not a diagnosis. Confirm by flow cytometry and "
    "the responsible hematologist."
)


@dataclass(frozen=True)
class SmearRef(JsonMixin):
    id: int
    code: str
    stain: str
    microscope: str


@dataclass(frozen=True)
class Subject(JsonMixin):
    """What was counted: a whole case, or one smear of it (`kind` "case" or "smear")."""

    kind: str
    id: int
    code: str
    case_id: int
    case_code: str
    patient_code: str
    confirmed_diagnosis: str | None
    diagnosis_method: str
    smears: tuple[SmearRef, ...]

    @property
    def title(self) -> str:
        return f"case {self.case_code}" if self.kind == "case" else f"smear {self.case_code}/{self.code}"


@dataclass(frozen=True)
class RuleSetRef(JsonMixin):
    id: int
    name: str
    version: int
    active: bool
    description: str

    @property
    def title(self) -> str:
        return f"{self.name} v{self.version}{' (active)' if self.active else ' (not the active version)'}"


@dataclass(frozen=True)
class FieldSource(JsonMixin):
    """Which annotation set a field's cells were counted from (`source` one of the FROM_* labels)."""

    field_id: int
    smear_id: int
    source: str
    annotation_set_id: int | None
    n_cells: int


@dataclass(frozen=True)
class ModelVersionRef(JsonMixin):
    id: int
    stage: str
    architecture: str
    profile: str
    status: str


@dataclass(frozen=True)
class Provenance(JsonMixin):
    """Where the counted cells came from. `annotators` are user names, or stable pseudonyms when
    `annotators_deidentified` (researchers)."""

    fields: tuple[FieldSource, ...]
    fields_by_source: dict[str, int]
    # How many counted cells have which truth: field-level (consensus, imported), the review queue's cell-level
    # (cell_agreed, cell_resolved, cell_adjudicated), or none (a model's or an annotator's cell).
    cells_by_truth: dict[str, int]
    model_versions: tuple[ModelVersionRef, ...]
    annotators: tuple[str, ...]
    annotators_deidentified: bool
    imported_from: tuple[str, ...]


@dataclass(frozen=True)
class DifferentialReport:
    """Everything one report shows; `report_json`, `report_csv` and `report_pdf` write it out."""

    subject: Subject
    source: str
    ci_method: str
    rule_set: RuleSetRef
    generated_at: datetime
    differential: Differential
    diagnosis: DiagnosisReport
    provenance: Provenance
    warnings: tuple[str, ...]


# ---------------------------------------------------------------------------------------------------------
# JSON


def report_json(report: DifferentialReport) -> dict[str, Any]:
    """The API body: what was counted and how, the diagnosis summary and suggestions, then the details."""
    return {
        "subject": report.subject.to_dict(),
        "source": report.source,
        "ci_method": report.ci_method,
        "rule_set": report.rule_set.to_dict(),
        "generated_at": report.generated_at.isoformat(),
        "summary": {**report.diagnosis.summary.to_dict(), "n_counted": report.differential.n_counted},
        "suggestions": [suggestion.to_dict() for suggestion in report.diagnosis.suggestions],
        "differential": report.differential.to_dict(),
        "provenance": report.provenance.to_dict(),
        "warnings": list(report.warnings),
    }


# ---------------------------------------------------------------------------------------------------------
# CSV: one table with a `section` column, so a spreadsheet or pandas reads it in one go

CSV_COLUMNS = (
    "section",
    "key",
    "name",
    "lineage",
    "count",
    "n_counted",
    "percent",
    "ci_low",
    "ci_high",
    "status",
    "threshold",
    "detail",
)


def report_csv(report: DifferentialReport) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in _csv_rows(report):
        writer.writerow([_csv_value(row.get(column)) for column in CSV_COLUMNS])
    return buffer.getvalue()


def _csv_rows(report: DifferentialReport) -> Iterable[dict[str, Any]]:
    differential = report.differential
    meta = {
        "subject": report.subject.title,
        "case": report.subject.case_code,
        "patient": report.subject.patient_code,
        "confirmed_diagnosis": report.subject.confirmed_diagnosis or "",
        "source": report.source,
        "ci_method": report.ci_method,
        "rule_set": report.rule_set.title,
        "generated_at": report.generated_at.isoformat(),
        "n_cells": differential.n_cells,
        "n_counted": differential.n_counted,
        "me_ratio": _ratio_text(differential),
    }
    for key, value in meta.items():
        yield {"section": "meta", "key": key, "detail": value}
    for cls in differential.classes:
        yield {"section": "class", "key": cls.class_id, "name": cls.name, "lineage": cls.lineage, **_share(cls.share)}
    for lineage in differential.lineages:
        yield {"section": "lineage", "key": lineage.name, "name": lineage.name, **_share(lineage.share)}
    yield {"section": "blasts", "key": "blasts", "name": "all blasts", **_share(differential.blasts.share)}
    yield {"section": "excluded", "key": "uncountable", "count": differential.n_uncountable}
    yield {"section": "excluded", "key": "unclassified", "count": differential.n_unclassified}
    for suggestion in report.diagnosis.suggestions:
        evidence = suggestion.evidence
        yield {
            "section": "suggestion",
            "key": suggestion.rule_id,
            "name": suggestion.label,
            "count": evidence.count,
            "n_counted": evidence.n_counted,
            "percent": evidence.percent,
            "ci_low": evidence.ci_low,
            "ci_high": evidence.ci_high,
            "status": suggestion.status.value,
            "threshold": _threshold_text(suggestion),
            "detail": "; ".join([*evidence.reasons, *(hint.text for hint in suggestion.hints)]),
        }
    summary = report.diagnosis.summary
    yield {"section": "summary", "key": summary.diagnosis or "", "status": summary.status.value, "detail": summary.text}
    for label, count in report.provenance.cells_by_truth.items():
        yield {"section": "truth_source", "key": label, "count": count}
    for version in report.provenance.model_versions:
        yield {"section": "model_version", "key": version.id, "name": _model_text(version)}
    for annotator in report.provenance.annotators:
        yield {"section": "annotator", "name": annotator}
    for warning in report.warnings:
        yield {"section": "warning", "detail": warning}


def _share(share: Share) -> dict[str, Any]:
    return {
        "count": share.count,
        "n_counted": share.n,
        "percent": share.percent,
        "ci_low": share.ci_low,
        "ci_high": share.ci_high,
    }


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        # A spreadsheet would run such a cell as a formula (CSV injection through e.g. a rule label).
        return "'" + value
    return value


# ---------------------------------------------------------------------------------------------------------
# Text used by the CSV and the PDF


def _percent_text(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _ci_text(share_low: float | None, share_high: float | None) -> str:
    return "-" if share_low is None or share_high is None else f"{share_low:.1f}-{share_high:.1f}"


def _share_cells(share: Share) -> list[str]:
    """Count, percentage and interval as table cells."""
    return [str(share.count), _percent_text(share.percent), _ci_text(share.ci_low, share.ci_high)]


def _ratio_text(differential: Differential) -> str:
    ratio = differential.me_ratio
    return f"{ratio.value:.2f}" if ratio.value is not None else str(ratio.reason)


def _threshold_text(suggestion: Suggestion) -> str:
    evidence = suggestion.evidence
    if evidence.threshold_count is not None:
        return f"{evidence.operator} {evidence.threshold_count} cells"
    return f"{evidence.operator} {evidence.threshold_percent:g}%"


def _model_text(version: ModelVersionRef) -> str:
    return f"{version.stage} v{version.id} ({version.architecture}, profile {version.profile}, {version.status})"


# ---------------------------------------------------------------------------------------------------------
# PDF

_STYLES = getSampleStyleSheet()
_STYLES.add(ParagraphStyle("TableCell", parent=_STYLES["BodyText"], fontSize=7.5, leading=9))
_GRID = TableStyle(
    [
        ("FONT", (0, 0), (-1, -1), "Helvetica", 8),
        ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 1.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
    ]
)
_HEADER = TableStyle(
    [("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 8), ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8e8f0"))]
)


def report_pdf(report: DifferentialReport) -> bytes:
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=15 * mm,
        bottomMargin=15 * mm,
        title=f"Differential count, {report.subject.title}",
        author="AI-cell",
    )
    footer = f"AI-cell differential report, {report.subject.title}, generated {_time_text(report.generated_at)}"

    def draw_footer(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 7)
        canvas.drawString(15 * mm, 8 * mm, f"{footer}; page {doc.page}")
        canvas.restoreState()

    document.build(_pdf_story(report), onFirstPage=draw_footer, onLaterPages=draw_footer)
    return buffer.getvalue()


def _time_text(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z").strip()


def _text(text: str, style: str = "BodyText") -> Paragraph:
    """A paragraph of plain text (escaped: reportlab reads '<' and '&' as markup)."""
    return Paragraph(escape(text), _STYLES[style])


def _table(
    rows: Sequence[Sequence[Any]], widths: Sequence[float], *, header: bool = True, right_from: int | None = 2
) -> Table:
    """A grid; with `header` the first row is a bold heading; columns from `right_from` on are right-aligned."""
    table = Table([list(row) for row in rows], colWidths=list(widths), repeatRows=1 if header else 0, hAlign="LEFT")
    table.setStyle(_GRID)
    if header:
        table.setStyle(_HEADER)
    if right_from is not None:
        table.setStyle(TableStyle([("ALIGN", (right_from, 1 if header else 0), (-1, -1), "RIGHT")]))
    return table


def _pdf_story(report: DifferentialReport) -> list[Flowable]:
    differential = report.differential
    subject = report.subject
    story: list[Flowable] = [
        _text(f"Differential count and diagnosis suggestion: {subject.title}", "Title"),
        _table(
            [
                ["Case", subject.case_code],
                ["Patient (pseudonym)", subject.patient_code],
                ["Smear(s)", ", ".join(smear.code for smear in subject.smears) or "none"],
                ["Confirmed diagnosis", subject.confirmed_diagnosis or "none recorded"],
                ["Cells counted from", _source_text(report)],
                ["Rule set", report.rule_set.title],
                ["Confidence intervals", f"95%, {report.ci_method}"],
                ["Generated", _time_text(report.generated_at)],
            ],
            [45 * mm, 135 * mm],
            header=False,
            right_from=None,
        ),
        Spacer(1, 4 * mm),
        _text("Suggestion", "Heading2"),
        _text(_summary_text(report.diagnosis), "Heading3"),
    ]
    story += [_text(f"Warning: {warning}") for warning in report.warnings]
    story += [_suggestions_table(report.diagnosis), Spacer(1, 2 * mm)]
    story += _evidence_cells(report.diagnosis)
    story += [_text("Differential count", "Heading2"), _counts_table(differential), Spacer(1, 2 * mm)]
    story += [
        _text(
            f"{differential.n_counted} nucleated cells counted of {differential.n_cells} boxes; "
            f"{differential.n_uncountable} uncountable and {differential.n_unclassified} unclassified cells excluded. "
            f"Myeloid:erythroid ratio: {_ratio_text(differential)}."
        )
    ]
    story += [_text("Lineages", "Heading2"), _lineage_block(differential)]
    story += _provenance_story(report.provenance)
    story += [Spacer(1, 4 * mm), _text(DISCLAIMER, "Italic")]
    return story


def _summary_text(diagnosis: DiagnosisReport) -> str:
    summary = diagnosis.summary
    if summary.positive_rule_ids:
        return f"{summary.text} (rule {', '.join(summary.positive_rule_ids)})"
    if summary.pending_rule_ids:
        return f"{summary.text}: undecided for {', '.join(summary.pending_rule_ids)}"
    return summary.text


def _source_text(report: DifferentialReport) -> str:
    counts = report.provenance.fields_by_source
    parts = ", ".join(f"{count} field(s) {label}" for label, count in counts.items() if count)
    return f"{report.source} ({parts or 'no fields'})"


def _counts_table(differential: Differential) -> Table:
    rows: list[list[str]] = [["Class", "Lineage", "Count", "%", "95% CI (%)"]]
    for cls in differential.classes:
        name = f"{cls.name} (blast)" if cls.is_blast else cls.name
        rows.append([name, cls.lineage, *_share_cells(cls.share)])
    rows.append(["all blasts", "", *_share_cells(differential.blasts.share)])
    counted = str(differential.n_counted)
    rows.append(["counted nucleated cells", "", counted, "100.0" if differential.n_counted else "-", ""])
    rows.append(["excluded: uncountable", "", str(differential.n_uncountable), "", ""])
    rows.append(["excluded: unclassified", "", str(differential.n_unclassified), "", ""])
    table = _table(rows, [58 * mm, 32 * mm, 20 * mm, 20 * mm, 35 * mm])
    table.setStyle(TableStyle([("FONT", (0, len(rows) - 4), (-1, len(rows) - 4), "Helvetica-Bold", 8)]))
    return table


def _lineage_block(differential: Differential) -> Flowable:
    rows = [["Lineage", "Count", "%", "95% CI (%)"]]
    for lineage in differential.lineages:
        rows.append([lineage.name, *_share_cells(lineage.share)])
    table = _table(rows, [30 * mm, 14 * mm, 14 * mm, 24 * mm], right_from=1)
    if differential.n_counted == 0:
        return KeepTogether([table, _text("No cells counted: no chart.")])
    chart = Image(io.BytesIO(lineage_chart_png(differential)), width=95 * mm, height=60 * mm)
    layout = Table([[table, chart]], colWidths=[85 * mm, 95 * mm], hAlign="LEFT")
    layout.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")]))
    return layout


def lineage_chart_png(differential: Differential) -> bytes:
    """A bar chart of the lineage percentages with their 95% intervals as error bars (PNG)."""
    # The object-oriented Agg API: no pyplot global state, safe in a threaded web server.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    lineages = [lineage for lineage in differential.lineages if lineage.share.percent is not None]
    names = [lineage.name for lineage in lineages]
    percents = [lineage.share.percent or 0.0 for lineage in lineages]
    # Error bars are lengths: never negative, whatever rounding did to an interval's bound at 0% or 100%.
    below = [max(0.0, p - (lineage.share.ci_low or 0.0)) for p, lineage in zip(percents, lineages, strict=True)]
    above = [max(0.0, (lineage.share.ci_high or 0.0) - p) for p, lineage in zip(percents, lineages, strict=True)]
    figure = Figure(figsize=(4.75, 3.0), dpi=150)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.bar(names, percents, yerr=[below, above], capsize=3, color="#5470a8", ecolor="#333333")
    axes.set_ylabel("% of counted nucleated cells")
    axes.set_ylim(0, 100)
    axes.set_title(f"Lineages (n = {differential.n_counted}, 95% CI)", fontsize=9)
    axes.tick_params(axis="x", labelrotation=30, labelsize=7)
    axes.tick_params(axis="y", labelsize=7)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _suggestions_table(diagnosis: DiagnosisReport) -> Table:
    rows: list[list[Any]] = [["Rule", "Status", "Count / n", "%", "95% CI (%)", "Threshold", "Reasons and hints"]]
    for suggestion in diagnosis.suggestions:
        evidence = suggestion.evidence
        notes = [*evidence.reasons, *(f"{hint.id}: {hint.text}" for hint in suggestion.hints)]
        rows.append(
            [
                _text(f"{suggestion.rule_id}: {suggestion.label}", "TableCell"),
                suggestion.status.value.replace("_", " "),
                f"{evidence.count} / {evidence.n_counted}",
                _percent_text(evidence.percent),
                _ci_text(evidence.ci_low, evidence.ci_high),
                _threshold_text(suggestion),
                [_text(note, "TableCell") for note in notes] or "-",
            ]
        )
    table = _table(rows, [36 * mm, 23 * mm, 16 * mm, 11 * mm, 18 * mm, 17 * mm, 59 * mm], right_from=2)
    # The last column is prose: left-aligned like the rule names.
    table.setStyle(TableStyle([("ALIGN", (-1, 1), (-1, -1), "LEFT")]))
    return table


def _evidence_cells(diagnosis: DiagnosisReport) -> list[Flowable]:
    """The cells each non-negative suggestion rests on (their ids open them in the API: /api/v1/cells/<id>)."""
    story: list[Flowable] = []
    for suggestion in diagnosis.suggestions:
        cell_ids = suggestion.evidence.cell_ids
        if suggestion.status.value == "negative" or not cell_ids:
            continue
        shown = ", ".join(str(cell_id) for cell_id in cell_ids[:CELL_IDS_SHOWN_IN_PDF])
        more = f" and {len(cell_ids) - CELL_IDS_SHOWN_IN_PDF} more" if len(cell_ids) > CELL_IDS_SHOWN_IN_PDF else ""
        story.append(_text(f"{suggestion.rule_id} evidence, cell ids: {shown}{more}."))
    return story


def _provenance_story(provenance: Provenance) -> list[Flowable]:
    by_source = ", ".join(f"{label}: {count}" for label, count in provenance.fields_by_source.items())
    models = "; ".join(_model_text(version) for version in provenance.model_versions) or "none"
    who = "Annotators (pseudonyms)" if provenance.annotators_deidentified else "Annotators"
    by_truth = ", ".join(f"{label}: {count}" for label, count in provenance.cells_by_truth.items() if count)
    lines = [
        f"Fields by source: {by_source or 'no fields'}.",
        f"Cells by truth: {by_truth or 'no cells'}.",
        f"Model versions: {models}.",
        f"{who}: {', '.join(provenance.annotators) or 'none recorded'}.",
    ]
    if provenance.imported_from:
        lines.append(f"Imported truth from: {', '.join(provenance.imported_from)}.")
    return [_text("Provenance", "Heading2"), *(_text(line) for line in lines)]
