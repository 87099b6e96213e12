"""Reads of the domain data, shaped by who is asking (DESIGN.md "Users and rights")."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q, QuerySet

from aicell.roles import Role, roles_of
from annotations.models import (
    TRUTH_KINDS,
    AnnotationKind,
    AnnotationSet,
    Case,
    Cell,
    ExportJob,
    Field,
    ImportJob,
    Patient,
    Smear,
)


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


def annotation_sets_visible_to(user: Any) -> QuerySet[AnnotationSet]:
    """Adjudicators and admins see every set; an annotator sees own sets, model predictions and truth sets;
    a researcher sees truth sets only."""
    roles = roles_of(user)
    sets = AnnotationSet.objects.all()
    if roles & {Role.ADMIN, Role.ADJUDICATOR}:
        return sets
    visible = Q(pk__in=[])
    if Role.ANNOTATOR in roles:
        visible |= Q(kind=AnnotationKind.ANNOTATOR, annotator=user)
        visible |= Q(kind=AnnotationKind.PREDICTION)
        visible |= Q(kind__in=TRUTH_KINDS)
    if Role.RESEARCHER in roles:
        visible |= Q(kind__in=TRUTH_KINDS)
    return sets.filter(visible)


def cells_visible_to(user: Any) -> QuerySet[Cell]:
    visible_sets = annotation_sets_visible_to(user).values("pk")
    return Cell.objects.filter(annotation_set__in=visible_sets).select_related("annotation_set")


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
