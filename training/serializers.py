from __future__ import annotations

from typing import Any

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from aicell.api.fields import JOB_FIELDS, StaffUsernameField, StrictCharField, StrictIntegerField
from annotations.models import Split
from training.core.overrides import OVERRIDES
from training.core.stages import PRETRAIN_STAGES, STAGES
from training.jobs import ALL_STAGES
from training.models import (
    DatasetSnapshot,
    ModelVersion,
    PretrainingJob,
    PromoteMode,
    RetrainPolicy,
    StartingPoint,
    TrainingJob,
)
from training.pretraining import DEFAULT_EPOCHS


class TrainingJobSerializer(serializers.ModelSerializer):
    stage = serializers.SerializerMethodField(help_text="the stage trained, or 'all' for all three")
    model_versions = serializers.SerializerMethodField(help_text="ids of the versions this job made")
    model_version = serializers.SerializerMethodField(help_text="the last version this job made")
    created_by = StaffUsernameField()

    class Meta:
        model = TrainingJob
        fields = [
            *JOB_FIELDS,
            "stage",
            "stages",
            "profile",
            "parameters",
            "triggered_by",
            "created_by",
            "schedule",
            "dataset_snapshot",
            "current_stage",
            "epoch",
            "epochs",
            "loss",
            "timings",
            "log",
            "model_versions",
            "model_version",
        ]
        read_only_fields = fields

    def get_stage(self, job: TrainingJob) -> str:
        return ALL_STAGES if list(job.stages) == list(STAGES) else "+".join(job.stages)

    def get_model_versions(self, job: TrainingJob) -> list[int]:
        return sorted(version.pk for version in job.model_versions.all())

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_model_version(self, job: TrainingJob) -> int | None:
        ids = self.get_model_versions(job)
        return ids[-1] if ids else None


class TrainingJobListSerializer(TrainingJobSerializer):
    """Lists leave the log out (the UI polls them); GET /training-jobs/{id} has it."""

    class Meta(TrainingJobSerializer.Meta):
        fields = [name for name in TrainingJobSerializer.Meta.fields if name != "log"]
        read_only_fields = fields


class TrainingRequestSerializer(serializers.Serializer):
    stage = serializers.ChoiceField(
        choices=[*STAGES, ALL_STAGES], required=False, help_text="one stage or 'all' (default)"
    )
    stages = serializers.ListField(
        child=serializers.ChoiceField(choices=list(STAGES)), required=False, help_text="instead of 'stage'"
    )
    profile = serializers.CharField(required=False, help_text="model profile (default AICELL_PROFILE)")
    epochs = StrictIntegerField(
        column="PositiveIntegerField", required=False, allow_null=True, min_value=1, help_text="default: profile's"
    )
    seed = StrictIntegerField(column="IntegerField", required=False, default=0)
    promote = serializers.ChoiceField(choices=PromoteMode.values, default=PromoteMode.AUTO)
    overrides = serializers.DictField(
        required=False, default=dict, help_text=f"training hyperparameters: {', '.join(OVERRIDES)}"
    )


class PlotSerializer(serializers.Serializer):
    name = serializers.CharField()
    url = serializers.CharField()


# Per model of a version (ensemble members in order): the starting point it was initialised from, or null.
_STARTING_POINTS_SCHEMA = {
    "type": "array",
    "items": {
        "type": "object",
        "nullable": True,
        "properties": {"name": {"type": "string"}, "sha256": {"type": "string"}},
        "required": ["name", "sha256"],
    },
}


class ModelVersionSerializer(serializers.ModelSerializer):
    plots = serializers.SerializerMethodField()
    starting_points = serializers.SerializerMethodField()
    training_job = serializers.IntegerField(source="training_job_id", read_only=True, allow_null=True)

    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "stage",
            "profile",
            "architecture",
            "status",
            "status_reason",
            "metrics",
            "val_metrics",
            "gate",
            "best_epochs",
            "history",
            "starting_points",
            "plots",
            "checkpoints",
            "parent",
            "replaced",
            "dataset_snapshot",
            "training_job",
            "created_at",
            "promoted_at",
            "retired_at",
        ]
        read_only_fields = fields

    @extend_schema_field(_STARTING_POINTS_SCHEMA)
    def get_starting_points(self, version: ModelVersion) -> list[dict[str, str] | None]:
        return list(version.starting_points)

    @extend_schema_field(PlotSerializer(many=True))
    def get_plots(self, version: ModelVersion) -> list[dict[str, str]]:
        return [
            {"name": plot["name"], "url": reverse("model-version-plot", args=[version.pk, plot["name"]])}
            for plot in version.plots
        ]


class RegistryActionSerializer(serializers.Serializer):
    reason = serializers.CharField(help_text="why (kept in the audit trail)")
    to = StrictIntegerField(required=False, help_text="rollback only: the version to return to")


class DatasetSnapshotSerializer(serializers.ModelSerializer):
    created_by = StaffUsernameField()

    class Meta:
        model = DatasetSnapshot
        fields = [
            "id",
            "created_at",
            "created_by",
            "seed",
            "ratios",
            "content_hash",
            "file",
            "field_count",
            "cell_count",
            "counts",
            "sources",
        ]
        read_only_fields = fields


CRONTAB_FIELDS = ("minute", "hour", "day_of_week", "day_of_month", "month_of_year")


class TrainingScheduleSerializer(serializers.ModelSerializer):
    """A retrain policy with its periodic task's switch and crontab, flat (the admin page lists fields as text)."""

    enabled = serializers.BooleanField(required=False)
    minute = serializers.CharField(required=False, max_length=240)
    hour = serializers.CharField(required=False, max_length=96)
    day_of_week = serializers.CharField(required=False, max_length=64)
    day_of_month = serializers.CharField(required=False, max_length=124)
    month_of_year = serializers.CharField(required=False, max_length=64)
    timezone = serializers.SerializerMethodField()
    stages = serializers.ListField(child=serializers.ChoiceField(choices=list(STAGES)), required=False)
    new_cells = serializers.SerializerMethodField(help_text="new truth cells since the last successful run")

    class Meta:
        model = RetrainPolicy
        fields = [
            "id",
            "name",
            "enabled",
            "min_new_cells",
            *CRONTAB_FIELDS,
            "timezone",
            "stages",
            "profile",
            "epochs",
            "promote",
            "new_cells",
            "last_checked_at",
            "last_check",
            "last_job",
        ]
        read_only_fields = ["id", "name", "last_checked_at", "last_check", "last_job"]

    def to_representation(self, policy: RetrainPolicy) -> dict[str, Any]:
        data = super().to_representation(policy)
        task = policy.periodic_task
        data["enabled"] = bool(task and task.enabled)
        for key in CRONTAB_FIELDS:
            data[key] = getattr(task.crontab, key) if task and task.crontab else None
        return data

    @extend_schema_field(OpenApiTypes.STR)
    def get_timezone(self, policy: RetrainPolicy) -> str | None:
        task = policy.periodic_task
        return str(task.crontab.timezone) if task and task.crontab else None

    def get_new_cells(self, policy: RetrainPolicy) -> int:
        # The same figure for every policy: the view counts it once per response, not once per row.
        return int(self.context["new_truth_cells"])


class StartingPointSerializer(serializers.ModelSerializer):
    created_by = StaffUsernameField()

    class Meta:
        model = StartingPoint
        fields = ["id", "name", "arch", "kind", "source", "sha256", "keys", "created_by", "created_at"]
        read_only_fields = fields


class PretrainingJobSerializer(serializers.ModelSerializer):
    created_by = StaffUsernameField()

    class Meta:
        model = PretrainingJob
        fields = [
            *JOB_FIELDS,
            "stage",
            "profile",
            "name",
            "parameters",
            "created_by",
            "epoch",
            "epochs",
            "loss",
            "timings",
            "log",
        ]
        read_only_fields = fields


class PretrainingJobListSerializer(PretrainingJobSerializer):
    """Lists leave the log out (the UI polls them); GET /pretraining-jobs/{id} has it."""

    class Meta(PretrainingJobSerializer.Meta):
        fields = [name for name in PretrainingJobSerializer.Meta.fields if name != "log"]
        read_only_fields = fields


class PretrainingRequestSerializer(serializers.Serializer):
    stage = serializers.ChoiceField(choices=list(PRETRAIN_STAGES), help_text="whose networks to pretrain")
    profile = StrictCharField(required=False, help_text="model profile (default AICELL_PROFILE)")
    name = StrictCharField(
        required=False, allow_blank=True, help_text="starting point name (default ssl-<profile>-<stage>-<job>)"
    )
    epochs = StrictIntegerField(column="PositiveIntegerField", required=False, default=DEFAULT_EPOCHS, min_value=1)
    seed = StrictIntegerField(column="IntegerField", required=False, default=0)
    time_limit_s = StrictIntegerField(
        column="PositiveIntegerField", required=False, allow_null=True, min_value=1, help_text="seconds for the stage"
    )
    exclude_splits = serializers.ListField(
        child=serializers.ChoiceField(choices=Split.choices),
        required=False,
        default=list,
        help_text="leave out the fields of these splits' patients (e.g. keep val and test unseen)",
    )
