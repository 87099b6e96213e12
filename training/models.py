"""The model registry (versions of each stage, active / candidate / retired), the dataset snapshots that trained
them, the training jobs that made them and the retraining policy that starts jobs on a schedule."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from aicell.models import Job, JobStatus
from training.core.stages import STAGES

# The registry's stages are the rows of the stage table (a new row needs a migration for these choices).
STAGE_CHOICES = [(spec.name, spec.label) for spec in STAGES.values()]


class ModelStatus(models.TextChoices):
    CANDIDATE = "candidate", "Candidate"
    ACTIVE = "active", "Active"
    RETIRED = "retired", "Retired"


class PromoteMode(models.TextChoices):
    AUTO = "auto", "Promote when the gate passes"
    NEVER = "never", "Keep as candidate"
    FORCE = "force", "Promote whatever the gate says"


class DatasetSnapshot(models.Model):
    """The exact training data of a run: which fields and cells, in which split, from which sources, when.

    The fields themselves are a JSONL file of `training.core.records.FieldRecord` (path relative to
    AICELL_DATASET_DIR); `content_hash` is the sha256 of the data it describes (image hashes, not paths), so two
    snapshots of unchanged truth have the same hash.
    """

    created_at = models.DateTimeField(auto_now_add=True)
    seed = models.IntegerField(default=0, help_text="seed of the per-patient split")
    ratios = models.JSONField(default=list, help_text="train, val, test ratios of the per-patient split")
    content_hash = models.CharField(max_length=64, db_index=True)
    file = models.CharField(max_length=255, help_text="JSONL of FieldRecords, relative to AICELL_DATASET_DIR")
    field_count = models.PositiveIntegerField(default=0)
    cell_count = models.PositiveIntegerField(default=0)
    # {split: {fields, patients, cells, countable, uncountable, unclassified, classes: {class id: n}}}
    counts = models.JSONField(default=dict)
    # {"consensus": {fields, cells}, "imported:<source name>": {fields, cells}}: where the truth came from.
    sources = models.JSONField(default=dict)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"dataset snapshot {self.pk} ({self.field_count} fields, {self.content_hash[:12]})"


class ModelVersion(models.Model):
    stage = models.CharField(max_length=16, choices=STAGE_CHOICES)
    profile = models.CharField(max_length=32)
    architecture = models.CharField(max_length=255, help_text="arch name; ensemble members joined by '+'")
    # Checkpoint files relative to AICELL_MODEL_DIR: one for detector/countability, one per ensemble member.
    checkpoints = models.JSONField(default=list)
    status = models.CharField(max_length=16, choices=ModelStatus.choices, default=ModelStatus.CANDIDATE)
    metrics = models.JSONField(default=dict, blank=True)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children")
    status_reason = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    promoted_at = models.DateTimeField(null=True, blank=True)
    # Training provenance (empty for versions registered by hand).
    dataset_snapshot = models.ForeignKey(
        DatasetSnapshot, null=True, blank=True, on_delete=models.PROTECT, related_name="model_versions"
    )
    training_job = models.ForeignKey(
        "training.TrainingJob", null=True, blank=True, on_delete=models.SET_NULL, related_name="model_versions"
    )
    val_metrics = models.JSONField(default=dict, blank=True)
    # Per model (ensemble members in order): the starting point it was initialised from, {name, sha256}, or null.
    starting_points = models.JSONField(default=list, blank=True)
    history = models.JSONField(default=list, blank=True, help_text="per epoch: epoch, member, train_loss, ...")
    best_epochs = models.JSONField(default=list, blank=True)
    # PNG plots relative to AICELL_MODEL_DIR, [{"name": "confusion_matrix.png", "path": "..."}].
    plots = models.JSONField(default=list, blank=True)
    # The promotion gate: split, the active version compared with and its metrics on the same split, decision.
    gate = models.JSONField(default=dict, blank=True)
    # The version this one replaced when it was promoted (what a rollback returns to).
    replaced = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replaced_by")
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["stage"], condition=Q(status=ModelStatus.ACTIVE), name="one_active_model_per_stage"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.stage} v{self.pk} ({self.architecture}, {self.status})"


class TriggeredBy(models.TextChoices):
    USER = "user", "A user"
    SCHEDULE = "schedule", "The retraining schedule"


OPEN_JOB_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING)
TRAINING_LANE = "training"


class TrainingJob(Job):
    """One training run of one or more stages on one dataset snapshot, run by a worker of the `gpu` queue."""

    stages = models.JSONField(default=list, help_text="stages in training order")
    profile = models.CharField(max_length=32)
    # epochs (null = the profile's), seed, promote (auto | never | force), overrides (lr, batch_size, ...)
    parameters = models.JSONField(default=dict)
    triggered_by = models.CharField(max_length=16, choices=TriggeredBy.choices, default=TriggeredBy.USER)
    schedule = models.ForeignKey(
        "training.RetrainPolicy", null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    dataset_snapshot = models.ForeignKey(
        DatasetSnapshot, null=True, blank=True, on_delete=models.PROTECT, related_name="training_jobs"
    )
    current_stage = models.CharField(max_length=16, blank=True, default="")
    epoch = models.PositiveIntegerField(null=True, blank=True)
    epochs = models.PositiveIntegerField(null=True, blank=True)
    loss = models.FloatField(null=True, blank=True)
    log = models.TextField(blank=True, default="")
    # {"snapshot": s, "<stage>": s, "<stage>_gate": s, ...}: seconds per step.
    timings = models.JSONField(default=dict, blank=True)
    # All training jobs share one lane: at most one of them is queued or running at a time (the constraint below),
    # so a schedule never starts a second run while one is in progress, whatever races happen.
    lane = models.CharField(max_length=16, default=TRAINING_LANE, editable=False)

    class Meta(Job.Meta):
        constraints = [
            *Job.Meta.constraints,
            models.UniqueConstraint(
                fields=["lane"], condition=Q(status__in=OPEN_JOB_STATUSES), name="one_open_training_job"
            ),
        ]

    def __str__(self) -> str:
        return f"training job {self.pk} ({'+'.join(self.stages)}, {self.profile}, {self.status})"


PRETRAINING_LANE = "pretraining"


class PretrainingJob(Job):
    """Self-supervised pretraining of one stage's networks on every stored field and box, run by a worker of the
    `gpu` queue; each network it learns is registered as a starting point (result["starting_points"])."""

    stage = models.CharField(max_length=24, help_text="classifier | countability | detector-backbone")
    profile = models.CharField(max_length=32)
    name = models.CharField(max_length=64, help_text="starting point name (one per network: '<name>-<arch>')")
    # epochs, seed, time_limit_s, exclude_splits (splits whose patients' fields stay out of pretraining)
    parameters = models.JSONField(default=dict)
    epoch = models.PositiveIntegerField(null=True, blank=True)
    epochs = models.PositiveIntegerField(null=True, blank=True)
    loss = models.FloatField(null=True, blank=True)
    log = models.TextField(blank=True, default="")
    timings = models.JSONField(default=dict, blank=True)  # {"data": s, "<arch>": s, ...}
    # One pretraining run at a time (it shares the gpu worker with training; two would only slow each other).
    lane = models.CharField(max_length=16, default=PRETRAINING_LANE, editable=False)

    class Meta(Job.Meta):
        constraints = [
            *Job.Meta.constraints,
            models.UniqueConstraint(
                fields=["lane"], condition=Q(status__in=OPEN_JOB_STATUSES), name="one_open_pretraining_job"
            ),
        ]

    def __str__(self) -> str:
        return f"pretraining job {self.pk} ({self.stage}, {self.profile}, {self.status})"


class RetrainPolicy(models.Model):
    """ "Retrain when at least N new truth cells arrived since the last run", checked by a django-celery-beat
    periodic task (its crontab and on/off switch live on `periodic_task`, editable in the admin)."""

    name = models.CharField(max_length=64, unique=True)
    periodic_task = models.OneToOneField(
        "django_celery_beat.PeriodicTask", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    min_new_cells = models.PositiveIntegerField(default=500, help_text="new truth cells needed to start a run")
    stages = models.JSONField(default=list, help_text="stages to train; empty = all three")
    profile = models.CharField(max_length=32, blank=True, default="", help_text="empty = AICELL_PROFILE")
    epochs = models.PositiveIntegerField(null=True, blank=True, help_text="empty = the profile's")
    promote = models.CharField(max_length=8, choices=PromoteMode.choices, default=PromoteMode.AUTO)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    last_check = models.CharField(max_length=255, blank=True, default="", help_text="what the last check decided")
    last_job = models.ForeignKey(TrainingJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "retrain policies"

    def __str__(self) -> str:
        return f"retrain policy {self.name} (>= {self.min_new_cells} new cells)"


class StartingPointKind(models.TextChoices):
    IMPORTED = "imported", "Imported weight file"
    SELF_SUPERVISED = "self_supervised", "Self-supervised on the lab's own fields"


class StartingPoint(models.Model):
    """Local weights a training run may start from instead of random init (profiles name it: `init:
    starting-point:<name>`); registered by `training.starting_points.starting_point_register` only, which checked
    the file against the architecture (`inference.core.weights`). Nothing is ever downloaded."""

    name = models.CharField(max_length=64, unique=True)
    arch = models.CharField(max_length=255, help_text="timm classifier arch, or detector arch (its backbone)")
    kind = models.CharField(max_length=16, choices=StartingPointKind.choices)
    file = models.CharField(max_length=255, help_text="state dict relative to AICELL_MODEL_DIR")
    sha256 = models.CharField(max_length=64, help_text="of the stored file (what training loads)")
    # inference.core.weights.KeyReport.to_dict(): layout, matched (count), missing, unexpected, skipped_head.
    keys = models.JSONField(default=dict)
    source = models.TextField(blank=True, default="", help_text="where the weights came from, in words")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"starting point {self.name} ({self.arch}, {self.kind})"
