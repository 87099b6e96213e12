"""REST endpoints of counting: the differential of a case or smear (JSON, CSV, PDF), thin adapters over
`counting.selectors` and `counting.reports`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast

from django.http import QueryDict
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from aicell.api.fields import parse_strict_int
from aicell.api.renderers import CSVRenderer, PDFRenderer
from aicell.api.schema import ApiErrorSerializer
from aicell.errors import FieldError, ValidationFailed
from annotations.counting import reports
from annotations.counting.differential import CI_METHODS, CIMethod
from annotations.counting.selectors import DifferentialOptions, differential_report, gallery_cells
from annotations.counting.sources import SOURCES, Source, parse_source

DIFFERENTIAL_QUERY_PARAMETERS = ("source", "rule_set", "ci_method")
DIFFERENTIAL_PARAMETERS = [
    OpenApiParameter(
        "source",
        str,
        enum=list(SOURCES),
        required=False,
        description="cells counted: consensus (default), consensus+model (send '+' as %2B), model (the active "
        "classifier's predictions) or mine (the asking user's own annotations)",
    ),
    OpenApiParameter("rule_set", int, required=False, description="rule set id (default: the active one)"),
    OpenApiParameter(
        "ci_method", str, enum=list(CI_METHODS), required=False, description="95% intervals (default: the rule set's)"
    ),
]


def differential_options(params: Mapping[str, str]) -> DifferentialOptions:
    """The differential's query parameters, every problem reported at once; unknown parameters are refused so that
    a typo never silently falls back to a default source."""
    errors: list[FieldError] = []
    unknown = sorted(set(params) - {*DIFFERENTIAL_QUERY_PARAMETERS, "format"})
    errors += [FieldError(name, f"unknown; expected {', '.join(DIFFERENTIAL_QUERY_PARAMETERS)}") for name in unknown]
    empty = [name for name in DIFFERENTIAL_QUERY_PARAMETERS if params.get(name) == ""]
    if empty:
        errors += [FieldError(name, "must not be empty; leave it out for the default") for name in empty]
        raise ValidationFailed(f"{errors[0].field}: {errors[0].reason}", errors=errors)
    source = Source.CONSENSUS
    try:
        source = parse_source(params.get("source"))
    except ValueError as error:
        errors.append(FieldError("source", str(error)))
    rule_set_id: int | None = None
    if params.get("rule_set") is not None:
        try:
            rule_set_id = parse_strict_int(params["rule_set"], "rule_set", min_value=0)
        except ValidationFailed as error:
            errors += error.errors
    ci_method = params.get("ci_method") or None
    if ci_method is not None and ci_method not in CI_METHODS:
        errors.append(FieldError("ci_method", f"must be one of {', '.join(CI_METHODS)}; got {ci_method!r}"))
    if errors:
        raise ValidationFailed(f"{errors[0].field}: {errors[0].reason}", errors=errors)
    return DifferentialOptions(
        source=source,
        rule_set_id=rule_set_id,
        ci_method=cast(CIMethod | None, ci_method),
    )


# The differential count of a viewset's object (a case or a smear): JSON by default, CSV with `?format=csv` or
# `Accept: text/csv`, and a PDF report at `.../differential/report.pdf`. (A comment, not a docstring: the API schema
# would show a mixin's docstring on every operation of the viewsets that use it.)
class DifferentialActions(viewsets.GenericViewSet):
    DIFFERENTIAL_ACTIONS = ("differential", "differential_report")

    def handle_exception(self, exc: Exception) -> Response:
        if self.action in self.DIFFERENTIAL_ACTIONS:
            # Errors keep the shared JSON shape whatever document format was asked for.
            self.request.accepted_renderer = JSONRenderer()
            self.request.accepted_media_type = JSONRenderer.media_type
        return super().handle_exception(exc)

    def _report(self, request: Request) -> reports.DifferentialReport:
        subject = self.get_object()
        options = differential_options(request.query_params)
        return differential_report(user=request.user, subject=subject, options=options)

    def _file_name(self, report: reports.DifferentialReport) -> str:
        subject = report.subject
        return f"differential-{subject.case_code}" + (f"-{subject.code}" if subject.kind == "smear" else "")

    def _links(self, request: Request, pk: str) -> dict[str, str]:
        basename = self.basename
        query = QueryDict(mutable=True)
        for name in DIFFERENTIAL_QUERY_PARAMETERS:
            if name in request.query_params:
                query[name] = request.query_params[name]
        csv_query = query.copy()
        csv_query["format"] = "csv"
        pdf_query = f"?{query.urlencode()}" if query else ""
        return {
            "cell": reverse("cell-list") + "/{id}",
            "csv": f"{reverse(f'{basename}-differential', kwargs={'pk': pk})}?{csv_query.urlencode()}",
            "pdf": reverse(f"{basename}-differential-report", kwargs={"pk": pk}) + pdf_query,
        }

    @extend_schema(
        parameters=DIFFERENTIAL_PARAMETERS,
        filters=False,
        responses={
            (200, "application/json"): OpenApiTypes.OBJECT,
            (200, "text/csv"): OpenApiTypes.STR,
            (409, "application/json"): ApiErrorSerializer,  # no rule set is active
        },
    )
    @action(
        detail=True,
        methods=["get"],
        renderer_classes=[JSONRenderer, CSVRenderer],
        filter_backends=[],
        pagination_class=None,
    )
    def differential(self, request: Request, pk: str) -> Response:
        """Counts, percentages with 95% intervals, lineages, M:E ratio, diagnosis suggestions with their evidence,
        and where the cells came from."""
        report = self._report(request)
        if request.accepted_renderer.format == "csv":
            disposition = f'attachment; filename="{self._file_name(report)}.csv"'
            return Response(reports.report_csv(report), headers={"Content-Disposition": disposition})
        return Response({**reports.report_json(report), "links": self._links(request, pk)})

    @extend_schema(
        parameters=DIFFERENTIAL_PARAMETERS,
        filters=False,
        responses={(200, "application/pdf"): OpenApiTypes.BINARY, (409, "application/json"): ApiErrorSerializer},
    )
    @action(
        detail=True,
        methods=["get"],
        url_path=r"differential/report\.pdf",
        url_name="differential-report",
        renderer_classes=[PDFRenderer],
        filter_backends=[],
        pagination_class=None,
    )
    def differential_report(self, request: Request, pk: str) -> Response:
        """The same differential as a PDF report (table, lineage chart, suggestion with evidence, provenance)."""
        report = self._report(request)
        disposition = f'attachment; filename="{self._file_name(report)}.pdf"'
        return Response(reports.report_pdf(report), headers={"Content-Disposition": disposition})

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "source",
                str,
                enum=[Source.MINE.value, Source.CONSENSUS.value, Source.MODEL.value],
                required=False,
                description="whose cells: consensus (default), mine (the asking annotator's) or model (the active "
                "classifier's predictions); never a blend",
            )
        ],
        filters=False,
        responses={200: OpenApiTypes.OBJECT, 400: ApiErrorSerializer, 403: ApiErrorSerializer},
    )
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def gallery(self, request: Request, pk: str) -> Response:
        """The cells of one source, each once, with the differential the report shows for that source:
        `{source, differential, fields, warnings, cells: [a cell as /cells shows it, with its `field`]}`."""
        subject = self.get_object()
        unknown = sorted(set(request.query_params) - {"source", "format"})
        errors = [FieldError(name, "unknown; expected source") for name in unknown]
        source = Source.CONSENSUS
        try:
            source = parse_source(request.query_params.get("source"))
        except ValueError as error:
            errors.append(FieldError("source", str(error)))
        if source is Source.CONSENSUS_PLUS_MODEL:
            errors.append(FieldError("source", "the gallery shows one source at a time: consensus, mine or model"))
        if errors:
            raise ValidationFailed(f"{errors[0].field}: {errors[0].reason}", errors=errors)
        gallery = gallery_cells(user=request.user, subject=subject, source=source)
        return Response(
            {
                "source": gallery.source.value,
                "differential": gallery.differential.to_dict(),
                "fields": [field.to_dict() for field in gallery.fields],
                "warnings": list(gallery.warnings),
                "cells": list(gallery.cells),
            }
        )
