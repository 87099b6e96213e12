"""Reads of the domain data, shaped by who is asking (DESIGN.md "Users and rights")."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Exists, OuterRef, Q, QuerySet

from aicell.roles import LAB_MANAGERS, Role, roles_of
from annotations.models import (
    AnnotationKind,
    AnnotationSet,
    AuditEvent,
    Case,
    Cell,
    ExportJob,
    Field,
    FieldReview,
    ImportJob,
    Patient,
    ReviewSettings,
    RuleSet,
    Smear,
)
from annotations.truth import truth_q


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
    return bool(roles_of(user) & LAB_MANAGERS)


# Only the active classifier's predictions are read: the prediction sets of older (retired) or candidate versions
# stay stored but are shown nowhere, so a cell never appears once per model version. ("active" is the registry's
# `training.models.ModelStatus.ACTIVE`; the core names it without importing training.)
SHOWN_SETS = ~Q(kind=AnnotationKind.PREDICTION) | Q(model_version__status="active")


def annotation_sets_visible_to(user: Any) -> QuerySet[AnnotationSet]:
    """Adjudicators and admins see every set. An annotator sees own sets, truth sets, model predictions (when the
    project shows pre-labels) and, once both annotators of a field assigned to them have submitted it, the other
    annotator's set of that field: before that it does not exist for them (double review is blind). A researcher
    sees truth sets only. Predictions are those of the active classifier only (`SHOWN_SETS`)."""
    roles = roles_of(user)
    sets = AnnotationSet.objects.filter(SHOWN_SETS)
    if is_lab_manager(user):
        return sets
    visible = Q(pk__in=[])
    if Role.ANNOTATOR in roles:
        visible |= Q(kind=AnnotationKind.ANNOTATOR, annotator=user)
        reviews_of_own_fields = FieldReview.objects.filter(field__assignments__annotator=user)
        visible |= Q(pk__in=reviews_of_own_fields.values("set_a")) | Q(pk__in=reviews_of_own_fields.values("set_b"))
        if ReviewSettings.load().show_prelabels:
            visible |= Q(kind=AnnotationKind.PREDICTION)
        visible |= truth_q(with_reopened=True)
    if Role.RESEARCHER in roles:
        visible |= truth_q(with_reopened=True)
    return sets.filter(visible)


def cells_visible_to(user: Any) -> QuerySet[Cell]:
    """Cells of the sets `user` may see. The visibility is asked of each cell's own set (EXISTS on its primary key)
    rather than as `IN (every visible set)`, which SQLite answers by listing all sets of the database first: a cell
    read or written by id, or a field's cells, then costs a few index lookups whatever the size of the database."""
    visible_set = annotation_sets_visible_to(user).filter(pk=OuterRef("annotation_set_id"))
    return Cell.objects.filter(Exists(visible_set)).select_related("annotation_set")


def field_history_visible_to(user: Any, field: Field) -> QuerySet[AuditEvent]:
    """The audit trail of a field. Annotators see the events of the sets they may see and the field's own
    events, so another annotator's work stays hidden in the history as everywhere else."""
    events = AuditEvent.objects.filter(field_id=field.pk).select_related("actor").order_by("at", "id")
    if is_lab_manager(user):
        return events
    visible_sets = annotation_sets_visible_to(user).filter(field=field).values("pk")
    return events.filter(Q(annotation_set_id__isnull=True) | Q(annotation_set_id__in=visible_sets))


def rule_sets_visible_to(user: Any) -> QuerySet[RuleSet]:
    return RuleSet.objects.select_related("created_by") if roles_of(user) else RuleSet.objects.none()


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
