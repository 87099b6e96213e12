"""`python manage.py evaluate_diagnosis [--source consensus|model] [--rule-set ID] [--json]`.

Suggests a diagnosis for every case with a confirmed one (e.g. from flow cytometry) and prints accuracy,
sensitivity and specificity per diagnosis with 95% intervals and the confusion table, as the seed paper reports
its 49 patients. Cases without a confirmed diagnosis are listed as skipped; no case to evaluate exits with 1.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from aicell.errors import DomainError
from annotations.counting.diagnosis_eval import DiagnosisEvaluation, Rate
from annotations.counting.selectors import DiagnosisEvaluationRun, diagnosis_evaluation
from annotations.counting.sources import SOURCES, parse_source


class Command(BaseCommand):
    help = "Compare diagnosis suggestions with the confirmed diagnoses of all cases."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--source",
            choices=[source for source in SOURCES if source != "mine"],
            default="consensus",
            help="cells counted (default consensus)",
        )
        parser.add_argument("--rule-set", type=int, default=None, help="rule set id (default: the active one)")
        parser.add_argument(
            "--indeterminate-as-negative",
            action="store_true",
            help='count "count more cells" as no leukaemia instead of reporting those cases apart',
        )
        parser.add_argument("--json", action="store_true", help="print JSON instead of tables")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            run = diagnosis_evaluation(
                source=parse_source(options["source"]),
                rule_set_id=options["rule_set"],
                indeterminate_as_negative=options["indeterminate_as_negative"],
            )
        except DomainError as error:
            raise CommandError(error.message) from None
        if run.evaluation is None:
            raise CommandError(
                f"No case has a confirmed diagnosis: nothing to evaluate ({len(run.skipped)} case(s) skipped)."
            )
        self.stdout.write(json.dumps(run.to_dict(), indent=2) if options["json"] else format_run(run, run.evaluation))


def format_rate(rate: Rate) -> str:
    if rate.value is None:
        return f"n/a ({rate.reason})"
    return f"{rate.value:.2f} ({rate.numerator}/{rate.denominator}, 95% CI {rate.ci_low:.2f}-{rate.ci_high:.2f})"


def format_run(run: DiagnosisEvaluationRun, evaluation: DiagnosisEvaluation) -> str:
    rule_set = run.rule_set
    indeterminate = evaluation.indeterminate
    undecided = f"indeterminate (count more cells): {indeterminate.count}"
    if indeterminate.count:
        how = "counted as negative" if indeterminate.counted_as_negative else "left out of the rates"
        undecided += f", by confirmed diagnosis {indeterminate.by_confirmed}, {how}"
    lines = [
        f"Diagnosis evaluation: {evaluation.n_cases} case(s) with a confirmed diagnosis; "
        f"source {run.source}; rule set {rule_set.name} v{rule_set.version} (id {rule_set.id})",
        f"Evaluated: {evaluation.n_evaluated}; {undecided}",
        f"Overall accuracy: {format_rate(evaluation.accuracy)}",
        "",
    ]
    for metrics in evaluation.per_label:
        lines += [
            f"{metrics.label}: TP {metrics.tp}  FP {metrics.fp}  TN {metrics.tn}  FN {metrics.fn}"
            + (f"  (indeterminate {metrics.indeterminate})" if metrics.indeterminate else ""),
            f"  accuracy    {format_rate(metrics.accuracy)}",
            f"  sensitivity {format_rate(metrics.sensitivity)}",
            f"  specificity {format_rate(metrics.specificity)}",
        ]
    corner = "confirmed \\ suggested"
    first = max(len(label) for label in (*evaluation.labels, corner)) + 2
    width = max(len(label) for label in evaluation.labels) + 2
    lines += ["", "Confusion table (rows: confirmed, columns: suggested; determinate cases)"]
    lines.append(corner.ljust(first) + "".join(label.rjust(width) for label in evaluation.labels))
    for label, row in zip(evaluation.labels, evaluation.confusion, strict=True):
        lines.append(label.ljust(first) + "".join(str(count).rjust(width) for count in row))
    lines += ["", "Cases:"]
    lines += [
        f"  {case.case}: confirmed {case.confirmed}, suggested {case.suggested or 'none'} "
        f"({case.n_counted} cells counted; {case.summary})"
        for case in run.cases
    ]
    if run.skipped:
        lines += ["Skipped:", *(f"  {skipped.case}: {skipped.reason}" for skipped in run.skipped)]
    lines += [f"Note: {note}" for note in run.notes]
    return "\n".join(lines)
