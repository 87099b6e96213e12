from django.contrib import admin

from training.models import DatasetSnapshot, ModelVersion, PretrainingJob, RetrainPolicy, StartingPoint, TrainingJob


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["id", "stage", "profile", "architecture", "status", "created_at", "promoted_at"]
    list_filter = ["stage", "status", "profile"]
    search_fields = ["architecture"]
    # Status changes go through the audited services (API / promote, rollback), never a bare admin edit.
    readonly_fields = ["status", "promoted_at", "retired_at", "replaced", "gate"]


@admin.register(TrainingJob)
class TrainingJobAdmin(admin.ModelAdmin):
    list_display = ["id", "stages", "profile", "status", "progress", "triggered_by", "created_at", "finished_at"]
    list_filter = ["status", "triggered_by", "profile"]
    readonly_fields = ["log", "timings", "result", "heartbeat_at"]


@admin.register(PretrainingJob)
class PretrainingJobAdmin(admin.ModelAdmin):
    """Started by `manage.py pretrain`; the starting points it registered are in its result."""

    list_display = ["id", "stage", "profile", "name", "status", "progress", "created_at", "finished_at"]
    list_filter = ["status", "stage", "profile"]
    readonly_fields = ["log", "timings", "result", "heartbeat_at"]


@admin.register(DatasetSnapshot)
class DatasetSnapshotAdmin(admin.ModelAdmin):
    list_display = ["id", "created_at", "field_count", "cell_count", "content_hash"]
    readonly_fields = ["content_hash", "file", "counts", "sources"]


@admin.register(RetrainPolicy)
class RetrainPolicyAdmin(admin.ModelAdmin):
    """The crontab and the on/off switch are the periodic task's (Periodic tasks, django-celery-beat)."""

    list_display = ["name", "min_new_cells", "periodic_task", "last_checked_at", "last_check"]
    readonly_fields = ["last_checked_at", "last_check", "last_job"]


@admin.register(StartingPoint)
class StartingPointAdmin(admin.ModelAdmin):
    """Registered by `manage.py import_weights` / `pretrain` only (the file is checked against the arch there)."""

    list_display = ["name", "arch", "kind", "created_at", "sha256"]
    list_filter = ["kind"]
    readonly_fields = ["name", "arch", "kind", "file", "sha256", "keys", "created_by", "created_at"]
