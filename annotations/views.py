"""REST endpoints of the domain data: thin adapters over selectors and services."""

from __future__ import annotations

import json
from typing import Any

from django.db.models import Count, QuerySet
from django.http import FileResponse, HttpResponse, HttpResponseBase
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from aicell.api.fields import parse_strict_int
from aicell.api.permissions import RoleAccess
from aicell.api.schema import ApiErrorSerializer
from aicell.api.versioning import VERSION_COLUMN, expected_version, request_value, with_version_etag
from aicell.errors import FieldError, StateConflict, ValidationFailed
from aicell.jobs import job_request_cancel
from aicell.models import JobStatus
from aicell.roles import ALL_ROLES, CLINICAL_ROLES, LAB_MANAGERS, Role, roles_of
from annotations import rule_sets, selectors, services
from annotations.counting.views import DifferentialActions
from annotations.filters import AnnotationSetFilter, CaseFilter, CellFilter, FieldFilter, PatientFilter, SmearFilter
from annotations.images import encode_without_metadata, open_rgb
from annotations.interchange.dataset import field_types_read, ids_read, patients_read
from annotations.interchange.export_selection import ExportRequest
from annotations.interchange.jobs import export_job_create, import_job_create
from annotations.models import (
    AnnotationSet,
    Case,
    Cell,
    CellClass,
    ExportJob,
    Field,
    ImportJob,
    Patient,
    RuleSet,
    Smear,
)
from annotations.serializers import (
    AcceptedSuggestionsSerializer,
    AcceptSuggestionsSerializer,
    AnnotationSetCreateSerializer,
    AnnotationSetSerializer,
    CaseSerializer,
    CellClassSerializer,
    CellSerializer,
    CellWriteSerializer,
    ExportJobSerializer,
    ExportRequestSerializer,
    FieldSerializer,
    FieldUploadSerializer,
    ImportJobSerializer,
    ImportRequestSerializer,
    PatientSerializer,
    RuleSetCreateSerializer,
    RuleSetSerializer,
    SmearSerializer,
    VersionSerializer,
)

CELL_WRITERS = frozenset({Role.ANNOTATOR, Role.ADJUDICATOR})
IF_MATCH = OpenApiParameter(
    "If-Match", str, OpenApiParameter.HEADER, required=False, description='the set version you read, e.g. "3"'
)


def cell_write_body(request: Request, *, partial: bool) -> dict[str, Any]:
    """The checked cell attributes of a write; unknown keys are refused rather than silently dropped."""
    unknown = sorted(set(request.data) - set(CellWriteSerializer().fields))
    if unknown:
        raise ValidationFailed(
            f"Unknown cell attributes: {', '.join(unknown)}.",
            errors=[FieldError(name, "not a cell attribute") for name in unknown],
        )
    body = CellWriteSerializer(data=request.data, partial=partial)
    body.is_valid(raise_exception=True)
    return {key: value for key, value in body.validated_data.items() if key not in ("version", "reason")}


def change_reason(request: Request) -> str:
    """Why a change is made (optional; a reopened consensus falls back on the reason it was reopened for)."""
    return str(request_value(request, "reason") or request.query_params.get("reason", ""))


def with_etag(response: Response, annotation_set: AnnotationSet) -> Response:
    return with_version_etag(response, annotation_set.version)


class RereadAfterWrite(viewsets.GenericViewSet):
    """A created or updated object is answered as a list or a GET shows it: read back through `get_queryset`, so its
    counts (`case_count`, `smear_count`, `field_count`) are there too."""

    def perform_create(self, serializer: Any) -> None:
        serializer.save()
        serializer.instance = self.get_queryset().get(pk=serializer.instance.pk)

    def perform_update(self, serializer: Any) -> None:
        serializer.save()
        serializer.instance = self.get_queryset().get(pk=serializer.instance.pk)


class PatientViewSet(RereadAfterWrite, viewsets.ModelViewSet):
    serializer_class = PatientSerializer
    filterset_class = PatientFilter
    permission_classes = [RoleAccess]
    read_roles = ALL_ROLES
    write_roles = LAB_MANAGERS
    ordering_fields = ["code", "created_at"]

    def get_queryset(self) -> QuerySet[Patient]:
        return selectors.patients_visible_to(self.request.user).annotate(case_count=Count("cases")).order_by("code")


class CaseViewSet(RereadAfterWrite, DifferentialActions, viewsets.ModelViewSet):
    serializer_class = CaseSerializer
    filterset_class = CaseFilter
    permission_classes = [RoleAccess]
    read_roles = ALL_ROLES
    write_roles = LAB_MANAGERS
    ordering_fields = ["code", "collected_on", "created_at"]

    def get_queryset(self) -> QuerySet[Case]:
        return selectors.cases_visible_to(self.request.user).annotate(smear_count=Count("smears")).order_by("code")


class SmearViewSet(RereadAfterWrite, DifferentialActions, viewsets.ModelViewSet):
    serializer_class = SmearSerializer
    filterset_class = SmearFilter
    permission_classes = [RoleAccess]
    read_roles = ALL_ROLES
    write_roles = LAB_MANAGERS
    ordering_fields = ["code", "created_at"]

    def get_queryset(self) -> QuerySet[Smear]:
        return selectors.smears_visible_to(self.request.user)


class FieldViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = FieldSerializer
    parser_classes = [MultiPartParser, FormParser]
    filterset_class = FieldFilter
    permission_classes = [RoleAccess]
    read_roles = ALL_ROLES
    write_roles = LAB_MANAGERS
    ordering_fields = ["id", "created_at", "status"]

    def get_queryset(self) -> QuerySet[Field]:
        return selectors.fields_visible_to(self.request.user)

    @extend_schema(
        request={"multipart/form-data": FieldUploadSerializer},
        responses={201: FieldSerializer(many=True)},
        filters=False,
    )
    def create(self, request: Request) -> Response:
        """Upload one or many field images into a smear (all stored, or none when any file is refused)."""
        smear_id = request_value(request, "smear")
        try:
            smear = Smear.objects.get(pk=parse_strict_int(smear_id, "smear"))
        except Smear.DoesNotExist:
            raise ValidationFailed(f"Smear {smear_id!r} does not exist.", field="smear") from None
        uploads = [services.Upload(name=f.name or "", data=f.read()) for f in request.FILES.getlist("files")]
        fields = services.field_upload_many(smear=smear, uploads=uploads, actor=request.user)
        data = FieldSerializer(fields, many=True, context={"request": request}).data
        return Response(data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={(200, "image/*"): bytes})
    @action(detail=True, methods=["get"])
    def image(self, request: Request, pk: str) -> HttpResponseBase:
        """The field image: byte-exact original for the lab's roles, a metadata-free copy for researchers."""
        field = self.get_object()
        if roles_of(request.user) & CLINICAL_ROLES:
            extension = field.image.name.rsplit(".", 1)[-1]
            response: HttpResponseBase = FileResponse(
                field.image.open("rb"),
                content_type=f"image/{field.format.lower()}",
                filename=f"field-{field.pk}.{extension}",
            )
        else:
            with field.image.open("rb") as handle:
                clean = encode_without_metadata(open_rgb(handle.read()), image_format="PNG")
            response = HttpResponse(clean, content_type="image/png")
            response["Content-Disposition"] = f'inline; filename="field-{field.pk}.png"'
        response["X-Content-Type-Options"] = "nosniff"
        response["Cache-Control"] = "private, max-age=3600"
        return response

    @extend_schema(responses={(200, "image/jpeg"): bytes})
    @action(detail=True, methods=["get"])
    def thumbnail(self, request: Request, pk: str) -> HttpResponseBase:
        field = self.get_object()
        response = FileResponse(field.thumbnail.open("rb"), content_type="image/jpeg")
        response["X-Content-Type-Options"] = "nosniff"
        response["Cache-Control"] = "private, max-age=3600"
        return response


class RuleSetViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Diagnosis rule sets, versioned: a POST stores a new version (rows never change); one version is active."""

    serializer_class = RuleSetSerializer
    permission_classes = [RoleAccess]
    read_roles = ALL_ROLES
    write_roles = frozenset({Role.ADMIN})
    filterset_fields = ["name", "active"]
    ordering_fields = ["name", "version", "created_at"]

    def get_queryset(self) -> QuerySet[RuleSet]:
        return selectors.rule_sets_visible_to(self.request.user).order_by("name", "-version")

    @extend_schema(request=RuleSetCreateSerializer, responses={201: RuleSetSerializer})
    def create(self, request: Request) -> Response:
        """Store a rule set as the next version of its name (an edit), optionally making it the active one."""
        body = RuleSetCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        rule_set = rule_sets.rule_set_create_version(**body.validated_data, actor=request.user)
        return Response(self.get_serializer(rule_set).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: RuleSetSerializer})
    @action(detail=True, methods=["post"])
    def activate(self, request: Request, pk: str) -> Response:
        """Make this version the one differentials and the evaluation use by default."""
        rule_set = rule_sets.rule_set_activate(rule_set_id=self.get_object().pk, actor=request.user)
        return Response(self.get_serializer(rule_set).data)


class CellClassViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = CellClass.objects.all()
    serializer_class = CellClassSerializer
    permission_classes = [RoleAccess]
    read_roles = ALL_ROLES
    filterset_fields = ["lineage", "is_blast"]
    pagination_class = None


class AnnotationSetViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = AnnotationSetSerializer
    filterset_class = AnnotationSetFilter
    permission_classes = [RoleAccess]
    read_roles = ALL_ROLES
    # Adjudicators write cells into a reopened consensus; everything else here is the annotators' own work.
    write_roles = CELL_WRITERS
    action_roles = {action: frozenset({Role.ANNOTATOR}) for action in ("create", "submit", "accept")}
    ordering_fields = ["id", "created_at", "updated_at"]

    def get_queryset(self) -> QuerySet[AnnotationSet]:
        return (
            selectors.annotation_sets_visible_to(self.request.user)
            .select_related("annotator")
            .annotate(cell_count=Count("cells"))
            .order_by("id")
        )

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        annotation_set = self.get_object()
        return with_etag(Response(self.get_serializer(annotation_set).data), annotation_set)

    @extend_schema(request=AnnotationSetCreateSerializer, responses={201: AnnotationSetSerializer})
    def create(self, request: Request) -> Response:
        """Start your own annotation set on a field."""
        body = AnnotationSetCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        field = selectors.fields_visible_to(request.user).filter(pk=body.validated_data["field"]).first()
        if field is None:
            raise ValidationFailed(f"Field {body.validated_data['field']} does not exist.", field="field")
        annotation_set = services.annotation_set_create_for_annotator(field=field, annotator=request.user)
        annotation_set = self.get_queryset().get(pk=annotation_set.pk)
        return with_etag(Response(self.get_serializer(annotation_set).data, status=201), annotation_set)

    @extend_schema(request=VersionSerializer, parameters=[IF_MATCH], responses={200: AnnotationSetSerializer})
    @action(detail=True, methods=["post"])
    def submit(self, request: Request, pk: str) -> Response:
        """Submit your set: it is locked from then on."""
        annotation_set = self.get_object()
        services.annotation_set_submit(
            annotation_set_id=annotation_set.pk, expected_version=expected_version(request), actor=request.user
        )
        annotation_set = self.get_queryset().get(pk=annotation_set.pk)
        return with_etag(Response(self.get_serializer(annotation_set).data), annotation_set)

    @extend_schema(
        methods=["GET"], responses={200: CellSerializer(many=True)}, filters=False, description="Cells of the set."
    )
    @extend_schema(
        methods=["POST"], request=CellWriteSerializer, parameters=[IF_MATCH], responses={201: CellSerializer}
    )
    @action(detail=True, methods=["get", "post"], pagination_class=None, filterset_class=None)
    def cells(self, request: Request, pk: str) -> Response:
        annotation_set = self.get_object()
        if request.method == "GET":
            cells = annotation_set.cells.order_by("id")
            return with_etag(Response(CellSerializer(cells, many=True).data), annotation_set)
        data = cell_write_body(request, partial=False)
        cell = services.cell_create(
            annotation_set_id=annotation_set.pk,
            expected_version=expected_version(request),
            data=data,
            actor=request.user,
            reason=change_reason(request),
        )
        return with_etag(Response(CellSerializer(cell).data, status=201), cell.annotation_set)

    @extend_schema(
        request=AcceptSuggestionsSerializer, parameters=[IF_MATCH], responses={200: AcceptedSuggestionsSerializer}
    )
    @action(detail=True, methods=["post"])
    def accept(self, request: Request, pk: str) -> Response:
        """Copy model suggestions of the field into your set (their provenance kept in `source_cell`)."""
        annotation_set = self.get_object()
        body = AcceptSuggestionsSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        accepted = services.annotation_set_accept_predictions(
            annotation_set_id=annotation_set.pk,
            expected_version=expected_version(request),
            cell_ids=body.validated_data.get("cells"),
            accept_all=body.validated_data.get("all", False),
            prediction_set_id=body.validated_data.get("prediction_set"),
            actor=request.user,
        )
        data = {
            "created": CellSerializer(accepted.created, many=True).data,
            "skipped": accepted.skipped,
            "version": accepted.annotation_set.version,
        }
        return with_etag(Response(data), accepted.annotation_set)


class CellViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = CellSerializer
    filterset_class = CellFilter
    permission_classes = [RoleAccess]
    read_roles = ALL_ROLES
    write_roles = CELL_WRITERS
    ordering_fields = ["id", "confidence", "entropy", "margin"]
    http_method_names = ["get", "patch", "delete", "head", "options"]

    def get_queryset(self) -> QuerySet[Cell]:
        return selectors.cells_visible_to(self.request.user)

    @extend_schema(request=CellWriteSerializer, parameters=[IF_MATCH], responses={200: CellSerializer})
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        cell = self.get_object()
        changes = cell_write_body(request, partial=True)
        cell = services.cell_update(
            cell_id=cell.pk,
            expected_version=expected_version(request),
            changes=changes,
            actor=request.user,
            reason=change_reason(request),
        )
        return with_etag(Response(CellSerializer(cell).data), cell.annotation_set)

    @extend_schema(parameters=[IF_MATCH, OpenApiParameter("version", int, required=False)])
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        cell = self.get_object()
        version = expected_version(request)
        if version is None and "version" in request.query_params:
            version = parse_strict_int(request.query_params["version"], "version", column=VERSION_COLUMN)
        annotation_set = services.cell_delete(
            cell_id=cell.pk, expected_version=version, actor=request.user, reason=change_reason(request)
        )
        return with_etag(Response(status=status.HTTP_204_NO_CONTENT), annotation_set)


# --- dataset interchange -----------------------------------------------------------------------------------------

EXPORTERS = frozenset({Role.ADMIN, Role.RESEARCHER})


def _json_upload(upload: Any, name: str) -> Any:
    try:
        return json.loads(upload.read())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationFailed(f"{name} is not valid JSON ({exc}).", field=name) from None
    except RecursionError:
        raise ValidationFailed(f"{name} is not valid JSON (nested too deeply).", field=name) from None


def _text_upload(upload: Any, name: str) -> str:
    try:
        return str(upload.read().decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise ValidationFailed(f"{name} is not UTF-8 text.", field=name) from None


def _attachment(file: Any, filename: str, content_type: str) -> FileResponse:
    """A stored file as a download that browsers never sniff into something else."""
    response = FileResponse(file.open("rb"), as_attachment=True, filename=filename, content_type=content_type)
    response["X-Content-Type-Options"] = "nosniff"
    return response


class ExportViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """COCO exports for researchers and admins: 202 with a job to poll; its download_url once it succeeded."""

    serializer_class = ExportJobSerializer
    permission_classes = [RoleAccess]
    read_roles = EXPORTERS
    write_roles = EXPORTERS
    filterset_fields = ["status"]
    ordering_fields = ["id", "created_at"]

    def get_queryset(self) -> QuerySet[ExportJob]:
        return selectors.export_jobs_visible_to(self.request.user).order_by("-id")

    @extend_schema(request=ExportRequestSerializer, responses={202: ExportJobSerializer})
    def create(self, request: Request) -> Response:
        body = ExportRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        job = export_job_create(request=ExportRequest.from_dict(body.validated_data), user=request.user)
        data = self.get_serializer(job).data
        return Response(data, status=status.HTTP_202_ACCEPTED, headers={"Location": f"/api/v1/exports/{job.pk}"})

    @extend_schema(responses={(200, "application/zip"): bytes, (409, "application/json"): ApiErrorSerializer})
    @action(detail=True, methods=["get"])
    def download(self, request: Request, pk: str) -> HttpResponseBase:
        job = self.get_object()
        if job.status != JobStatus.SUCCEEDED or not job.file:
            raise StateConflict(f"Export {job.pk} has no file to download (it is {job.status}).")
        return _attachment(job.file, f"aicell-export-{job.pk}.zip", "application/zip")

    @extend_schema(request=None, responses={200: ExportJobSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        job = job_request_cancel(ExportJob, self.get_object().pk)
        return Response(self.get_serializer(job).data)


class ImportViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Dataset imports (admins): the zip is checked at once, imported by a worker; 202 with the job to poll."""

    serializer_class = ImportJobSerializer
    parser_classes = [MultiPartParser, FormParser]
    permission_classes = [RoleAccess]
    read_roles = frozenset({Role.ADMIN})
    write_roles = frozenset({Role.ADMIN})
    filterset_fields = ["status", "format"]
    ordering_fields = ["id", "created_at"]

    def get_queryset(self) -> QuerySet[ImportJob]:
        return selectors.import_jobs_visible_to(self.request.user).order_by("-id")

    @extend_schema(request={"multipart/form-data": ImportRequestSerializer}, responses={202: ImportJobSerializer})
    def create(self, request: Request) -> Response:
        body = ImportRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        values = body.validated_data
        archive = values["archive"]
        parameters: dict[str, Any] = {
            "smear": values["smear"],
            "as": values["as"],
            "source_name": values["source_name"],
            "archive_name": archive.name or "archive.zip",
            "split_from_dataset": values["split_from_dataset"],
            "patient_per_image": values["patient_per_image"],
            "license": values["license"],
            "source_url": values["source_url"],
        }
        if "patients" in values:
            try:
                parameters["patients"] = patients_read(_text_upload(values["patients"], "patients"))
            except ValueError as exc:
                raise ValidationFailed(f"patients: {exc}.", field="patients") from None
        if "images" in values:
            parameters["images"] = values["images"]
        if "label_map" in values:
            parameters["label_map"] = _json_upload(values["label_map"], "label_map")
        if "ids" in values:
            parameters["ids"] = sorted(ids_read(_text_upload(values["ids"], "ids")))
        if "types_csv" in values:
            try:
                parameters["field_types"] = field_types_read(_text_upload(values["types_csv"], "types_csv"))
            except ValueError as exc:
                raise ValidationFailed(f"types_csv: {exc}.", field="types_csv") from None
        job = import_job_create(
            archive=archive,
            parameters=parameters,
            import_format=values["format"],
            case_code=values["case"],
            user=request.user,
        )
        job = self.get_queryset().get(pk=job.pk)
        data = self.get_serializer(job).data
        return Response(data, status=status.HTTP_202_ACCEPTED, headers={"Location": f"/api/v1/imports/{job.pk}"})

    @extend_schema(responses={(200, "text/csv"): bytes, (409, "application/json"): ApiErrorSerializer})
    @action(detail=True, methods=["get"])
    def report(self, request: Request, pk: str) -> HttpResponseBase:
        """Every problem of a refused dataset, or every note of an imported one (clamped, skipped), as CSV."""
        job = self.get_object()
        if not job.report:
            raise StateConflict(
                f"Import {job.pk} has no report (it is {job.status}; an import without problems or notes has none)."
            )
        return _attachment(job.report, f"aicell-import-{job.pk}-report.csv", "text/csv")

    @extend_schema(request=None, responses={200: ImportJobSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        job = job_request_cancel(ImportJob, self.get_object().pk)
        return Response(self.get_serializer(job).data)
