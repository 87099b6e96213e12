"""Reads of the domain data, shaped by who is asking (DESIGN.md "Users and rights")."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from aicell.errors import Conflict as ConflictError
from aicell.errors import FieldError, ValidationFailed
from aicell.roles import CLINICAL_ROLES, Role, roles_of
from annotations.counting import reports, rules
from annotations.counting.diagnosis_eval import CaseDiagnosis, DiagnosisEvaluation, evaluate_diagnoses
from annotations.counting.differential import CIMethod, build_differential
from annotations.counting.sources import Source, gather_cells
from annotations.jsonable import JsonMixin
from annotations.models import (
    TRUTH_KINDS,
    AnnotationKind,
    AnnotationSet,
    Assignment,
    AuditEvent,
    Case,
    Cell,
    Conflict,
    Diagnosis,
    ExportJob,
    Field,
    FieldReview,
    ImportJob,
    Patient,
    ReviewSettings,
    RuleSet,
    Smear,
)
from annotations.review.matching import Agreement, FieldMatch, measure_agreement


def patients_visible_to(user: Any) -> QuerySet[Patient]:
    return Patient.objects.all() if roles_of(user) else Patient.objects.none()


def cases_visible_to(user: Any) -> QuerySet[Case]:
    return Case.objects.select_related("patient") if roles_of(user) else Case.objects.none()


def smears_visible_to(user: Any) -> QuerySet[Smear]:
    if not roles_of(user):
        return Smear.objects.none()
    return Smear.objects.select_related("case").annotate(field_count=Count("fields")).order_by("case__code", "code")


def fields_visible_to(user: Any) -> QuerySet[Field]:
    return Field.objects.select_related("smear__case") if roles_of(user) else Field.objects.none()


def is_lab_manager(user: Any) -> bool:
    """Adjudicators and admins see every annotation, whoever made it."""
    return bool(roles_of(user) & {Role.ADMIN, Role.ADJUDICATOR})


def annotation_sets_visible_to(user: Any) -> QuerySet[AnnotationSet]:
    """Adjudicators and admins see every set. An annotator sees own sets, truth sets, model predictions (when the
    project shows pre-labels) and, once both annotators of a field assigned to them have submitted it, the other
    annotator's set of that field: before that it does not exist for them (double review is blind). A researcher
    sees truth sets only."""
    roles = roles_of(user)
    sets = AnnotationSet.objects.all()
    if is_lab_manager(user):
        return sets
    visible = Q(pk__in=[])
    if Role.ANNOTATOR in roles:
        visible |= Q(kind=AnnotationKind.ANNOTATOR, annotator=user)
        reviews_of_own_fields = FieldReview.objects.filter(field__assignments__annotator=user)
        visible |= Q(pk__in=reviews_of_own_fields.values("set_a")) | Q(pk__in=reviews_of_own_fields.values("set_b"))
        if ReviewSettings.load().show_prelabels:
            visible |= Q(kind=AnnotationKind.PREDICTION)
        visible |= Q(kind__in=TRUTH_KINDS)
    if Role.RESEARCHER in roles:
        visible |= Q(kind__in=TRUTH_KINDS)
    return sets.filter(visible)


def cells_visible_to(user: Any) -> QuerySet[Cell]:
    visible_sets = annotation_sets_visible_to(user).values("pk")
    return Cell.objects.filter(annotation_set__in=visible_sets).select_related("annotation_set")


# --- double review -----------------------------------------------------------------------------------------------


def assignments_visible_to(user: Any) -> QuerySet[Assignment]:
    """Managers see all assignments; an annotator sees those of the fields assigned to them (own and the
    co-annotator's), each annotated with the progress of its annotator's set. What of that progress an annotator
    may read about the other person is decided by `assignment_details_visible`."""
    if is_lab_manager(user):
        assignments = Assignment.objects.all()
    elif Role.ANNOTATOR in roles_of(user):
        assignments = Assignment.objects.filter(field__in=Assignment.objects.filter(annotator=user).values("field"))
    else:
        return Assignment.objects.none()
    own_set = AnnotationSet.objects.filter(
        field=OuterRef("field"), annotator=OuterRef("annotator"), kind=AnnotationKind.ANNOTATOR
    )
    cell_count = Cell.objects.filter(annotation_set=OuterRef("set_id")).values("annotation_set").annotate(n=Count("pk"))
    return (
        assignments.select_related("field__smear__case", "annotator")
        .annotate(
            set_id=Subquery(own_set.values("pk")[:1]),
            set_status=Subquery(own_set.values("status")[:1]),
            set_submitted_at=Subquery(own_set.values("submitted_at")[:1]),
            released=Exists(FieldReview.objects.filter(field=OuterRef("field"))),
        )
        .annotate(set_cell_count=Coalesce(Subquery(cell_count.values("n")[:1]), 0))
        .order_by("field_id", "slot")
    )


def assignment_details_visible(assignment: Assignment, user: Any) -> bool:
    """Whether `user` may read the set behind an assignment (its id, cells, count, timestamps): their own, any
    once both annotators submitted (the cross-check exists), and every one for managers."""
    return bool(assignment.annotator_id == user.pk or getattr(assignment, "released", False) or is_lab_manager(user))


def conflicts_visible_to(user: Any) -> QuerySet[Conflict]:
    """Conflicts exist only after both annotators submitted; each annotator of the field sees them, as do
    managers."""
    if is_lab_manager(user):
        conflicts = Conflict.objects.all()
    elif Role.ANNOTATOR in roles_of(user):
        conflicts = Conflict.objects.filter(field__assignments__annotator=user)
    else:
        return Conflict.objects.none()
    return conflicts.select_related("field__review__set_a__annotator", "field__review__set_b__annotator", "resolved_by")


def field_history_visible_to(user: Any, field: Field) -> QuerySet[AuditEvent]:
    """The audit trail of a field. Annotators see the events of the sets they may see and the field's own
    events, so another annotator's work stays hidden in the history as everywhere else."""
    events = AuditEvent.objects.filter(field_id=field.pk).select_related("actor").order_by("at", "id")
    if is_lab_manager(user):
        return events
    visible_sets = annotation_sets_visible_to(user).filter(field=field).values("pk")
    return events.filter(Q(annotation_set_id__isnull=True) | Q(annotation_set_id__in=visible_sets))


def field_reviews_visible_to(user: Any) -> QuerySet[FieldReview]:
    """Cross-checks a user may measure agreement on: all for managers, the fields one reviewed for annotators."""
    reviews = FieldReview.objects.select_related("field__smear__case", "set_a__annotator", "set_b__annotator")
    if is_lab_manager(user):
        return reviews
    if Role.ANNOTATOR in roles_of(user):
        return reviews.filter(field__assignments__annotator=user)
    return reviews.none()


def agreement_of(reviews: Sequence[FieldReview]) -> dict[str, Any]:
    """Agreement of the blind annotations (before the cross-check changed anything) pooled over the given
    fields, per field, and per pair of annotators (each pair pooled with the lower user id as A)."""
    matches = [(review, FieldMatch.from_dict(review.match)) for review in reviews]
    by_pair: dict[tuple[int, int], list[FieldMatch]] = {}
    users: dict[int, Any] = {}
    for review, match in matches:
        # Annotator sets always name their annotator (a database constraint).
        user_a: Any = review.set_a.annotator
        user_b: Any = review.set_b.annotator
        users.update({user_a.pk: user_a, user_b.pk: user_b})
        key = (min(user_a.pk, user_b.pk), max(user_a.pk, user_b.pk))
        by_pair.setdefault(key, []).append(match if user_a.pk < user_b.pk else match.swapped())
    return {
        "n_fields": len(matches),
        "iou_thresholds": sorted({review.iou_threshold for review in reviews}),
        "overall": measure_agreement([match for _, match in matches]).to_dict(),
        "per_field": [_field_row(review, match) for review, match in matches],
        "per_pair": [_pair_row(users[a], users[b], pair) for (a, b), pair in sorted(by_pair.items())],
    }


def _summary(agreement: Agreement) -> dict[str, Any]:
    blasts = agreement.differential_difference[0]
    return {
        "n_agree": agreement.n_agree,
        "n_class_conflicts": agreement.n_class_conflicts,
        "n_countability_conflicts": agreement.n_countability_conflicts,
        "n_only_a": agreement.n_only_a,
        "n_only_b": agreement.n_only_b,
        "boxes": agreement.boxes.to_dict(),
        "class_kappa": agreement.class_kappa.to_dict(),
        "countability_kappa": agreement.countability_kappa.to_dict(),
        "blast_percent_difference": blasts.to_dict(),
    }


def _field_row(review: FieldReview, match: FieldMatch) -> dict[str, Any]:
    return {
        "field": review.field_id,
        "case": review.field.smear.case_id,
        "annotator_a": review.set_a.annotator_id,
        "annotator_b": review.set_b.annotator_id,
        "iou_threshold": review.iou_threshold,
        **_summary(measure_agreement([match])),
    }


def _pair_row(user_a: Any, user_b: Any, matches: Sequence[FieldMatch]) -> dict[str, Any]:
    return {
        "annotator_a": user_a.pk,
        "annotator_a_username": user_a.get_username(),
        "annotator_b": user_b.pk,
        "annotator_b_username": user_b.get_username(),
        "n_fields": len(matches),
        **_summary(measure_agreement(matches)),
    }


# --- diagnosis rule sets -----------------------------------------------------------------------------------------


def rule_sets_visible_to(user: Any) -> QuerySet[RuleSet]:
    return RuleSet.objects.select_related("created_by") if roles_of(user) else RuleSet.objects.none()


def rule_set_chosen(rule_set_id: int | None) -> RuleSet:
    """The rule set a differential is evaluated against: the one asked for, else the active one."""
    if rule_set_id is not None:
        found = RuleSet.objects.filter(pk=rule_set_id).first()
        if found is None:
            raise ValidationFailed(f"Rule set {rule_set_id} does not exist.", field="rule_set")
        return found
    active = RuleSet.objects.filter(active=True).first()
    if active is None:
        raise ConflictError("No rule set is active: an admin must activate one (POST /api/v1/rule-sets/<id>/activate).")
    return active


def parsed_rule_set(rule_set: RuleSet, ci_method: CIMethod | None = None) -> rules.RuleSet:
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


def rule_set_ref(rule_set: RuleSet, parsed: rules.RuleSet) -> reports.RuleSetRef:
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
    gathered = gather_cells(fields, options.source)
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


def export_jobs_visible_to(user: Any) -> QuerySet[ExportJob]:
    """Admins see every export; a researcher only their own (an export is as personal as a download)."""
    roles = roles_of(user)
    if Role.ADMIN in roles:
        return ExportJob.objects.all()
    if Role.RESEARCHER in roles:
        return ExportJob.objects.filter(created_by=user)
    return ExportJob.objects.none()


def import_jobs_visible_to(user: Any) -> QuerySet[ImportJob]:
    return ImportJob.objects.select_related("case") if Role.ADMIN in roles_of(user) else ImportJob.objects.none()
