"""Reads of counting: the differential of a case or smear with its diagnosis suggestions and provenance, and the
evaluation of the rules against confirmed diagnoses."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from aicell.errors import FieldError, PermissionDenied, StateConflict, ValidationFailed
from aicell.roles import CLINICAL_ROLES, LAB_MANAGERS, Role, roles_of
from annotations.counting import reports, rules
from annotations.counting.diagnosis_eval import CaseDiagnosis, DiagnosisEvaluation, evaluate_diagnoses
from annotations.counting.differential import CIMethod, build_differential
from annotations.counting.sources import Source, gather_cells
from annotations.jsonable import JsonMixin
from annotations.models import Case, Cell, Diagnosis, Field, ReviewSettings, RuleSet, Smear


def rule_set_chosen(rule_set_id: int | None) -> RuleSet:
    """The rule set a differential is evaluated against: the one asked for, else the active one."""
    if rule_set_id is not None:
        found = RuleSet.objects.filter(pk=rule_set_id).first()
        if found is None:
            raise ValidationFailed(f"Rule set {rule_set_id} does not exist.", field="rule_set")
        return found
    active = RuleSet.objects.filter(active=True).first()
    if active is None:
        raise StateConflict("No rule set is active: an admin must activate one (POST /api/v1/rule-sets/<id>/activate).")
    return active


def parsed_rule_set(rule_set: RuleSet, ci_method: CIMethod | None = None) -> rules.RuleSetContent:
    """The stored rule set as typed data, its interval method replaced by `ci_method` when given."""
    try:
        parsed = rules.parse_rule_set(rule_set.content)
    except rules.RuleSetError as error:
        # Stored content was validated when it was made; this only happens if the taxonomy changed since.
        raise ValidationFailed(
            f"Rule set {rule_set} is no longer valid; choose another version.",
            field="rule_set",
            errors=[FieldError(f"rule_set.content.{e.path}".rstrip("."), e.message) for e in error.errors],
        ) from None
    return dataclasses.replace(parsed, ci_method=ci_method) if ci_method else parsed


def rule_set_ref(rule_set: RuleSet, parsed: rules.RuleSetContent) -> reports.RuleSetRef:
    return reports.RuleSetRef(rule_set.pk, rule_set.name, rule_set.version, rule_set.active, parsed.description)


# --- differential counts and diagnosis suggestions ---------------------------------------------------------------


@dataclass(frozen=True)
class DifferentialOptions:
    source: Source = Source.CONSENSUS
    rule_set_id: int | None = None
    ci_method: CIMethod | None = None  # None: the rule set's own method


def annotator_pseudonym(user_id: int) -> str:
    """A stable pseudonym for researchers: the same annotator gets the same name in every report, and it cannot
    be turned back into the account without the server's secret key."""
    digest = hmac.new(settings.SECRET_KEY.encode(), f"annotator:{user_id}".encode(), hashlib.sha256).hexdigest()
    return f"annotator {digest[:6].upper()}"


def differential_report(
    *, user: Any, subject: Case | Smear, options: DifferentialOptions
) -> reports.DifferentialReport:
    """The differential count of a case (all its smears) or one smear, with the diagnosis suggestions of the chosen
    rule set and where every counted cell came from. `subject` must come from `cases_visible_to`/
    `smears_visible_to` of the same user."""
    rule_set = rule_set_chosen(options.rule_set_id)
    parsed = parsed_rule_set(rule_set, options.ci_method)
    if isinstance(subject, Case):
        fields = Field.objects.filter(smear__case=subject)
        report_subject = _case_subject(subject)
    else:
        fields = Field.objects.filter(smear=subject)
        report_subject = _smear_subject(subject)
    gathered = gather_cells(fields, options.source, user)
    differential = build_differential(gathered.cells, source=options.source.value, ci_method=parsed.ci_method)
    deidentify = not roles_of(user) & CLINICAL_ROLES
    return reports.DifferentialReport(
        subject=report_subject,
        source=options.source.value,
        ci_method=parsed.ci_method,
        rule_set=rule_set_ref(rule_set, parsed),
        generated_at=timezone.now(),
        differential=differential,
        diagnosis=rules.suggest_diagnosis(parsed, differential),
        provenance=reports.Provenance(
            fields=gathered.fields,
            fields_by_source=gathered.fields_by_source,
            cells_by_truth=gathered.cells_by_truth,
            model_versions=gathered.model_versions,
            annotators=tuple(annotator_pseudonym(a.id) if deidentify else a.username for a in gathered.annotators),
            annotators_deidentified=deidentify,
            imported_from=gathered.imported_from,
        ),
        warnings=gathered.warnings + differential.warnings,
    )


def _smear_refs(smears: Iterable[Smear]) -> tuple[reports.SmearRef, ...]:
    return tuple(reports.SmearRef(smear.pk, smear.code, smear.stain, smear.microscope) for smear in smears)


def _case_subject(case: Case) -> reports.Subject:
    return reports.Subject(
        kind="case",
        id=case.pk,
        code=case.code,
        case_id=case.pk,
        case_code=case.code,
        patient_code=case.patient.code,
        confirmed_diagnosis=case.confirmed_diagnosis or None,
        diagnosis_method=case.diagnosis_method,
        smears=_smear_refs(Smear.objects.filter(case=case).order_by("code")),
    )


def _smear_subject(smear: Smear) -> reports.Subject:
    case = Case.objects.select_related("patient").get(pk=smear.case_id)
    return reports.Subject(
        kind="smear",
        id=smear.pk,
        code=smear.code,
        case_id=case.pk,
        case_code=case.code,
        patient_code=case.patient.code,
        confirmed_diagnosis=case.confirmed_diagnosis or None,
        diagnosis_method=case.diagnosis_method,
        smears=_smear_refs([smear]),
    )


# --- evaluation against confirmed diagnoses ----------------------------------------------------------------------

NEGATIVE_LABEL = "none"  # confirmed "no malignancy" and suggested "no criteria met"


@dataclass(frozen=True)
class CaseOutcome(JsonMixin):
    case: str
    confirmed: str
    suggested: str | None  # a rule id, "count_more_cells", or None (no criteria met)
    n_counted: int
    summary: str


@dataclass(frozen=True)
class SkippedCase(JsonMixin):
    case: str
    reason: str


@dataclass(frozen=True)
class DiagnosisEvaluationRun(JsonMixin):
    source: str
    rule_set: reports.RuleSetRef
    evaluation: DiagnosisEvaluation | None  # None when no case has a confirmed diagnosis
    cases: tuple[CaseOutcome, ...]
    skipped: tuple[SkippedCase, ...]
    notes: tuple[str, ...]


def diagnosis_evaluation(
    *, source: Source, rule_set_id: int | None = None, indeterminate_as_negative: bool = False
) -> DiagnosisEvaluationRun:
    """Suggest a diagnosis for every case with a confirmed one and compare them, the way the seed paper reports
    its patients. Confirmed "no malignancy" is the negative label; rule ids are compared with diagnosis codes."""
    rule_set = rule_set_chosen(rule_set_id)
    parsed = parsed_rule_set(rule_set)
    outcomes: list[CaseOutcome] = []
    skipped: list[SkippedCase] = []
    for case in Case.objects.order_by("code"):
        if not case.confirmed_diagnosis:
            skipped.append(SkippedCase(case.code, "no confirmed diagnosis"))
            continue
        gathered = gather_cells(Field.objects.filter(smear__case=case), source)
        differential = build_differential(gathered.cells, source=source.value, ci_method=parsed.ci_method)
        summary = rules.suggest_diagnosis(parsed, differential).summary
        outcomes.append(
            CaseOutcome(case.code, case.confirmed_diagnosis, summary.outcome, differential.n_counted, summary.text)
        )
    rule_ids = [rule.id for rule in parsed.rules]
    evaluation = None
    if outcomes:
        evaluation = evaluate_diagnoses(
            [CaseDiagnosis(o.case, o.suggested, _confirmed_label(o.confirmed)) for o in outcomes],
            negative_label=NEGATIVE_LABEL,
            indeterminate_as_negative=indeterminate_as_negative,
            labels=[NEGATIVE_LABEL, *rule_ids],
        )
    return DiagnosisEvaluationRun(
        source=source.value,
        rule_set=rule_set_ref(rule_set, parsed),
        evaluation=evaluation,
        cases=tuple(outcomes),
        skipped=tuple(skipped),
        notes=_label_notes(rule_ids, {o.confirmed for o in outcomes}),
    )


def _confirmed_label(diagnosis: str) -> str | None:
    return None if diagnosis == Diagnosis.NO_MALIGNANCY else diagnosis


def _label_notes(rule_ids: list[str], confirmed: set[str]) -> tuple[str, ...]:
    codes = {choice.value for choice in Diagnosis} - {Diagnosis.NO_MALIGNANCY.value}
    notes = []
    unmatched_rules = [rule_id for rule_id in rule_ids if rule_id not in codes]
    if unmatched_rules:
        notes.append(f"rule ids that are no diagnosis code (never a true positive): {', '.join(unmatched_rules)}")
    unsuggestable = sorted(confirmed - set(rule_ids) - {Diagnosis.NO_MALIGNANCY.value})
    if unsuggestable:
        notes.append(f"confirmed diagnoses that no rule suggests (always a false negative): {', '.join(unsuggestable)}")
    return tuple(notes)


# ---------------------------------------------------------------------------------------------------------
# The cell gallery: the cells of one source, counted exactly as the report counts them


# A gallery cell's keys (those of /cells, `annotations.serializers.CellSerializer`) and the columns they come from.
GALLERY_CELL_COLUMNS = {
    "id": "id",
    "annotation_set": "annotation_set_id",
    "x": "x",
    "y": "y",
    "width": "width",
    "height": "height",
    "countable": "countable",
    "cell_class": "cell_class_id",
    "scores": "scores",
    "detector_score": "detector_score",
    "confidence": "confidence",
    "margin": "margin",
    "entropy": "entropy",
    "mutual_information": "mutual_information",
    "source_cell": "source_cell_id",
    "review_outcome": "review_outcome",
    "created_at": "created_at",
    "updated_at": "updated_at",
}


def gallery_sources(user: Any) -> tuple[Source, ...]:
    """The sources whose cells `user` may see in the gallery: "mine" for annotators, the truth for everyone, the
    active model's predictions for those who may see predictions (lab managers; annotators while pre-labels are
    shown). "consensus+model" is a report's blend and never a gallery's: the gallery shows one source at a time."""
    roles = roles_of(user)
    sources = [Source.MINE] if Role.ANNOTATOR in roles else []
    sources.append(Source.CONSENSUS)
    if roles & LAB_MANAGERS or (Role.ANNOTATOR in roles and ReviewSettings.load().show_prelabels):
        sources.append(Source.MODEL)
    return tuple(sources)


@dataclass(frozen=True)
class GalleryCells:
    source: Source
    differential: Any  # differential.Differential, the same object the report of this source holds
    cells: tuple[dict[str, Any], ...]  # in id order, as /cells shows a cell, with its `field`
    fields: tuple[reports.FieldSource, ...]
    warnings: tuple[str, ...]


def gallery_cells(*, user: Any, subject: Case | Smear, source: Source) -> GalleryCells:
    """The cells of a case or smear from one source, each once, with the differential the report shows for the same
    source (both read `gather_cells`). `subject` must come from `cases_visible_to`/`smears_visible_to` of the same
    user; a source the user may not see is refused (403)."""
    if source not in gallery_sources(user):
        allowed = ", ".join(source.value for source in gallery_sources(user))
        raise PermissionDenied(f"the gallery shows you these sources only: {allowed}", field="source")
    fields = (
        Field.objects.filter(smear__case=subject) if isinstance(subject, Case) else Field.objects.filter(smear=subject)
    )
    gathered = gather_cells(fields, source, user)
    set_ids = [field.annotation_set_id for field in gathered.fields if field.annotation_set_id is not None]
    rows = (
        Cell.objects.filter(annotation_set_id__in=set_ids)
        .annotate(field=F("annotation_set__field_id"))
        .order_by("id")
        .values(*GALLERY_CELL_COLUMNS.values(), "field")
    )
    # One read of plain rows (serializing 2,000 model instances took seconds), named as /cells names them.
    cells = tuple(
        {name: row[column] for name, column in GALLERY_CELL_COLUMNS.items()} | {"field": row["field"]} for row in rows
    )
    differential = build_differential(gathered.cells, source=source.value)
    return GalleryCells(source, differential, cells, gathered.fields, gathered.warnings + differential.warnings)
