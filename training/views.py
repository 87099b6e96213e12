"""Training and pretraining jobs, starting points, the model registry, dataset snapshots and retraining schedules:
thin adapters over services.

Admins launch, cancel, promote, roll back and change schedules; admins and researchers read; everyone else 403.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import SuspiciousFileOperation
from django.db.models import QuerySet
from django.http import FileResponse, HttpResponseBase
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from aicell.api.parsers import JSONParser
from aicell.api.permissions import RoleAccess
from aicell.errors import NotFound
from aicell.jobs import job_request_cancel
from aicell.roles import Role
from training import jobs, pretraining, registry, schedule
from training.models import DatasetSnapshot, ModelVersion, PretrainingJob, RetrainPolicy, StartingPoint, TrainingJob
from training.serializers import (
    DatasetSnapshotSerializer,
    ModelVersionSerializer,
    PretrainingJobListSerializer,
    PretrainingJobSerializer,
    PretrainingRequestSerializer,
    RegistryActionSerializer,
    StartingPointSerializer,
    TrainingJobListSerializer,
    TrainingJobSerializer,
    TrainingRequestSerializer,
    TrainingScheduleSerializer,
)
from training.storage import model_storage

READERS = frozenset({Role.ADMIN, Role.RESEARCHER})
WRITERS = frozenset({Role.ADMIN})


class TrainingJobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = TrainingJobSerializer
    permission_classes = [RoleAccess]
    read_roles = READERS
    write_roles = WRITERS
    filterset_fields = ["status", "triggered_by", "profile"]
    ordering_fields = ["id", "created_at"]

    def get_queryset(self) -> QuerySet[TrainingJob]:
        return TrainingJob.objects.select_related("created_by").prefetch_related("model_versions")

    def get_serializer_class(self) -> type[TrainingJobSerializer]:
        return TrainingJobListSerializer if self.action == "list" else TrainingJobSerializer

    @extend_schema(request=TrainingRequestSerializer, responses={202: TrainingJobSerializer})
    def create(self, request: Request) -> Response:
        """Queue a training run of one stage or all three (one training job at a time: 409 while one runs)."""
        body = TrainingRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        job = jobs.training_job_create(
            stages=data.get("stages") or data.get("stage") or jobs.ALL_STAGES,
            profile=data.get("profile"),
            epochs=data.get("epochs"),
            seed=data["seed"],
            promote=data["promote"],
            overrides=data["overrides"],
            actor=request.user,
        )
        return Response(TrainingJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={200: TrainingJobSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        """A queued job ends at once; a running one stops at its next progress report."""
        job = job_request_cancel(TrainingJob, self.get_object().pk)
        return Response(TrainingJobSerializer(self.get_queryset().get(pk=job.pk)).data)


class PretrainingJobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = PretrainingJobSerializer
    permission_classes = [RoleAccess]
    read_roles = READERS
    write_roles = WRITERS
    filterset_fields = ["status", "stage", "profile"]
    ordering_fields = ["id", "created_at"]

    def get_queryset(self) -> QuerySet[PretrainingJob]:
        return PretrainingJob.objects.select_related("created_by")

    def get_serializer_class(self) -> type[PretrainingJobSerializer]:
        return PretrainingJobListSerializer if self.action == "list" else PretrainingJobSerializer

    @extend_schema(request=PretrainingRequestSerializer, responses={202: PretrainingJobSerializer})
    def create(self, request: Request) -> Response:
        """Queue self-supervised pretraining of one stage's networks on the stored fields; each network learnt is
        registered as a starting point (one pretraining job at a time: 409 while one runs)."""
        body = PretrainingRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        job = pretraining.pretraining_job_create(
            stage=data["stage"],
            profile=data.get("profile"),
            name=data.get("name") or None,
            epochs=data["epochs"],
            seed=data["seed"],
            time_limit_s=data.get("time_limit_s"),
            exclude_splits=data["exclude_splits"],
            actor=request.user,
        )
        return Response(PretrainingJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={200: PretrainingJobSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        """A queued job ends at once; a running one stops at its next progress report."""
        job = job_request_cancel(PretrainingJob, self.get_object().pk)
        return Response(PretrainingJobSerializer(self.get_queryset().get(pk=job.pk)).data)


class StartingPointViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Weights training may start from: imported files (`manage.py import_weights` on a training host) and the
    lab's own self-supervised pretraining. Read-only here."""

    serializer_class = StartingPointSerializer
    permission_classes = [RoleAccess]
    read_roles = READERS
    write_roles = WRITERS
    filterset_fields = ["kind", "arch"]
    ordering_fields = ["name", "created_at"]

    def get_queryset(self) -> QuerySet[StartingPoint]:
        return StartingPoint.objects.select_related("created_by")


class ModelVersionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = ModelVersionSerializer
    permission_classes = [RoleAccess]
    read_roles = READERS
    write_roles = WRITERS
    filterset_fields = ["stage", "status", "profile", "training_job", "dataset_snapshot"]
    ordering_fields = ["id", "created_at", "promoted_at"]

    def get_queryset(self) -> QuerySet[ModelVersion]:
        return ModelVersion.objects.all()

    @extend_schema(request=RegistryActionSerializer, responses={200: ModelVersionSerializer})
    @action(detail=True, methods=["post"])
    def promote(self, request: Request, pk: str) -> Response:
        """Make this version the active one of its stage (audited with the reason); fields without truth are then
        pre-labelled again when every stage has an active version."""
        body = RegistryActionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        version = registry.model_version_promote(
            version_id=self.get_object().pk, actor=request.user, reason=body.validated_data["reason"]
        )
        return Response(ModelVersionSerializer(version).data)

    @extend_schema(request=RegistryActionSerializer, responses={200: ModelVersionSerializer})
    @action(detail=True, methods=["post"])
    def rollback(self, request: Request, pk: str) -> Response:
        """Take this active version out of service and make the one it replaced (or `to`) active again; answers
        the version now active."""
        body = RegistryActionSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        version = registry.model_version_rollback(
            version_id=self.get_object().pk,
            actor=request.user,
            reason=body.validated_data["reason"],
            to=body.validated_data.get("to"),
        )
        return Response(ModelVersionSerializer(version).data)

    @extend_schema(responses={(200, "image/png"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"], url_path=r"plots/(?P<name>[A-Za-z0-9_.-]+)", url_name="plot")
    def plot(self, request: Request, pk: str, name: str) -> HttpResponseBase:
        """One of the version's plots (confusion matrix, PR curves, learning curve) as PNG."""
        version = self.get_object()
        entry = next((plot for plot in version.plots if plot.get("name") == name), None)
        if entry is None:
            raise NotFound(f"Model version {version.pk} has no plot {name!r}.")
        try:
            handle = model_storage().open(entry["path"], "rb")
        except (FileNotFoundError, SuspiciousFileOperation):
            raise NotFound(f"The file of plot {name!r} is missing.") from None
        response = FileResponse(handle, content_type="image/png")
        response["X-Content-Type-Options"] = "nosniff"
        response["Cache-Control"] = "private, max-age=3600"
        return response


class DatasetSnapshotViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = DatasetSnapshotSerializer
    permission_classes = [RoleAccess]
    read_roles = READERS
    ordering_fields = ["id", "created_at"]
    filterset_fields = ["content_hash"]

    def get_queryset(self) -> QuerySet[DatasetSnapshot]:
        return DatasetSnapshot.objects.select_related("created_by")


class TrainingScheduleViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin, viewsets.GenericViewSet
):
    serializer_class = TrainingScheduleSerializer
    # JSON only (the page sends JSON): a form's "minute=" reads as absent in DRF and a wrong value went through.
    parser_classes = [JSONParser]
    permission_classes = [RoleAccess]
    read_roles = READERS
    write_roles = WRITERS
    http_method_names = ["get", "patch", "head", "options"]
    ordering_fields = ["id", "name"]

    def get_queryset(self) -> QuerySet[RetrainPolicy]:
        return RetrainPolicy.objects.select_related("periodic_task__crontab")

    def get_serializer_context(self) -> dict[str, Any]:
        new_cells = schedule.new_truth_cells_since(schedule.last_run_reference())
        return {**super().get_serializer_context(), "new_truth_cells": new_cells}

    def perform_update(self, serializer: Any) -> None:
        policy = schedule.retrain_policy_update(serializer.instance, serializer.validated_data)
        serializer.instance = self.get_queryset().get(pk=policy.pk)
