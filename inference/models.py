"""Pre-label jobs: which fields a pipeline (three stage versions) runs on, and how each field went."""

from __future__ import annotations

from django.db import models

from aicell.models import Job


class PrelabelTrigger(models.TextChoices):
    UPLOAD = "upload", "New upload"
    MANUAL = "manual", "Requested"
    PROMOTION = "promotion", "Model promoted"


class PrelabelJob(Job):
    trigger = models.CharField(max_length=16, choices=PrelabelTrigger.choices, default=PrelabelTrigger.MANUAL)
    # The stage versions this job runs, {"detector": id, "countability": id, "classifier": id}.
    pipeline = models.JSONField(default=dict)
    field_count = models.PositiveIntegerField(default=0)
    done_count = models.PositiveIntegerField(default=0)
    failed_count = models.PositiveIntegerField(default=0)

    class Meta(Job.Meta):
        pass

    def __str__(self) -> str:
        return f"pre-label job {self.pk} ({self.trigger}, {self.status})"


class ItemStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"


class PrelabelItem(models.Model):
    """One field of a job. A field deleted meanwhile leaves the item `skipped` (field set to null)."""

    job = models.ForeignKey(PrelabelJob, on_delete=models.CASCADE, related_name="items")
    field = models.ForeignKey("annotations.Field", null=True, on_delete=models.SET_NULL, related_name="prelabel_items")
    field_id_at_start = models.BigIntegerField()
    status = models.CharField(max_length=16, choices=ItemStatus.choices, default=ItemStatus.QUEUED, db_index=True)
    error = models.TextField(blank=True, default="")
    cell_count = models.PositiveIntegerField(default=0)
    attempts = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["job", "field_id_at_start"], name="one_item_per_field_per_job")]

    def __str__(self) -> str:
        return f"field {self.field_id_at_start} in job {self.job_id}: {self.status}"


class ReviewClaim(models.Model):
    """A queued cell held by one reviewer for a short while (their batch). A cell may be held by two different
    reviewers at once (it needs two blind decisions), never twice by the same one; claims are renewed while the
    reviewer's page is open and released when they leave, skip or decide."""

    cell = models.ForeignKey("annotations.Cell", on_delete=models.CASCADE, related_name="review_claims")
    reviewer = models.ForeignKey("auth.User", on_delete=models.CASCADE, related_name="+")
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["cell", "reviewer"], name="review_claim_once_per_reviewer")]

    def __str__(self) -> str:
        return f"cell {self.cell_id} claimed by {self.reviewer_id} until {self.expires_at:%H:%M}"
