"""django-filter sets for every list endpoint of the domain data."""

from __future__ import annotations

import django_filters

from annotations.models import AnnotationSet, Case, Cell, Field, Patient, Smear


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
    case = django_filters.NumberFilter(field_name="smear__case")
    case_code = django_filters.CharFilter(field_name="smear__case__code")

    class Meta:
        model = Field
        fields = ["smear", "case", "case_code", "status", "format", "sha256"]


class AnnotationSetFilter(django_filters.FilterSet):
    case = django_filters.NumberFilter(field_name="field__smear__case")

    class Meta:
        model = AnnotationSet
        fields = ["field", "case", "kind", "status", "annotator", "model_version"]


class CellFilter(django_filters.FilterSet):
    field = django_filters.NumberFilter(field_name="annotation_set__field")
    kind = django_filters.CharFilter(field_name="annotation_set__kind")

    class Meta:
        model = Cell
        fields = ["annotation_set", "field", "kind", "cell_class", "countable"]
