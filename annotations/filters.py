"""django-filter sets for every list endpoint of the domain data."""

from __future__ import annotations

from typing import Any

import django_filters
from django import forms
from django.db.models import Q, QuerySet
from django_filters.widgets import BooleanWidget

from aicell.api.fields import ANY_COLUMN, db_integer_range
from annotations.models import AnnotationSet, Assignment, Case, Cell, Conflict, ConflictKind, Field, Patient, Smear


class IdFilter(django_filters.NumberFilter):
    """An object id: a whole number the database can compare (64-bit signed), or the request is refused (400, the
    parameter named), never silently read as 0 or ignored, nor sent to the database to overflow there."""

    field_class = forms.IntegerField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        low, high = db_integer_range(ANY_COLUMN)
        kwargs.setdefault("min_value", low)
        kwargs.setdefault("max_value", high)
        super().__init__(*args, **kwargs)


class PatientFilter(django_filters.FilterSet):
    code = django_filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = Patient
        fields = ["code", "split"]


class CaseFilter(django_filters.FilterSet):
    code = django_filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = Case
        fields = ["code", "patient", "confirmed_diagnosis"]


class SmearFilter(django_filters.FilterSet):
    class Meta:
        model = Smear
        fields = ["case", "code", "stain"]


class FieldFilter(django_filters.FilterSet):
    case = IdFilter(field_name="smear__case")
    case_code = django_filters.CharFilter(field_name="smear__case__code")
    # A field's neighbours in a large case without listing it: one row after (or before) an id, with the count.
    after = IdFilter(field_name="id", lookup_expr="gt", label="fields with a larger id")
    before = IdFilter(field_name="id", lookup_expr="lt", label="fields with a smaller id")

    class Meta:
        model = Field
        fields = ["smear", "case", "case_code", "status", "format", "sha256"]


class AnnotationSetFilter(django_filters.FilterSet):
    case = IdFilter(field_name="field__smear__case")

    class Meta:
        model = AnnotationSet
        fields = ["field", "case", "kind", "status", "annotator", "model_version"]


class CellFilter(django_filters.FilterSet):
    field = IdFilter(field_name="annotation_set__field")
    # A plain number, not a choice among all sets: an id the reader may not see must answer exactly like an id
    # that does not exist (an empty list), never "not a valid choice", or the filter would reveal hidden sets.
    annotation_set = IdFilter(field_name="annotation_set")
    kind = django_filters.CharFilter(field_name="annotation_set__kind")

    class Meta:
        model = Cell
        fields = ["annotation_set", "field", "kind", "cell_class", "countable"]


class AssignmentFilter(django_filters.FilterSet):
    mine = django_filters.BooleanFilter(
        method="filter_mine", widget=BooleanWidget, help_text="1: only my assignments (my worklist)"
    )
    smear = IdFilter(field_name="field__smear")
    case = IdFilter(field_name="field__smear__case")
    field_status = django_filters.CharFilter(field_name="field__status")
    field = IdFilter(field_name="field")
    annotator = IdFilter(field_name="annotator")

    class Meta:
        model = Assignment
        fields = ["mine", "field", "annotator", "smear", "case", "field_status"]

    def filter_mine(self, queryset: QuerySet[Assignment], name: str, value: Any) -> QuerySet[Assignment]:
        return queryset.filter(annotator=self.request.user) if value else queryset


_CONFLICT_KINDS = {
    "class_conflict": Q(class_differs=True),
    "countability_conflict": Q(countability_differs=True),
    ConflictKind.ONLY_A.value: Q(kind=ConflictKind.ONLY_A),
    ConflictKind.ONLY_B.value: Q(kind=ConflictKind.ONLY_B),
}


class ConflictFilter(django_filters.FilterSet):
    field = IdFilter(field_name="field")
    smear = IdFilter(field_name="field__smear")
    case = IdFilter(field_name="field__smear__case")
    kind = django_filters.ChoiceFilter(
        method="filter_kind", choices=[(name, name) for name in _CONFLICT_KINDS], help_text="an outcome kind"
    )
    cell_level = django_filters.BooleanFilter(
        field_name="cell_review",
        lookup_expr="isnull",
        exclude=True,
        widget=BooleanWidget,
        help_text="1: only conflicts of queued cells (cell-level review); 0: only fields' cross-checks",
    )

    class Meta:
        model = Conflict
        fields = ["field", "smear", "case", "status", "kind", "cell_level"]

    def filter_kind(self, queryset: QuerySet[Conflict], name: str, value: str) -> QuerySet[Conflict]:
        return queryset.filter(_CONFLICT_KINDS[value])
