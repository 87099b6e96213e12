"""The model registry: one row per trained model of a stage (the training issue extends it)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class Stage(models.TextChoices):
    DETECTOR = "detector", "Detector"
    COUNTABILITY = "countability", "Countability"
    CLASSIFIER = "classifier", "Cell classifier (ensemble)"


class ModelStatus(models.TextChoices):
    CANDIDATE = "candidate", "Candidate"
    ACTIVE = "active", "Active"
    RETIRED = "retired", "Retired"


class ModelVersion(models.Model):
    stage = models.CharField(max_length=16, choices=Stage.choices)
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

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["stage"], condition=Q(status=ModelStatus.ACTIVE), name="one_active_model_per_stage"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.stage} v{self.pk} ({self.architecture}, {self.status})"
