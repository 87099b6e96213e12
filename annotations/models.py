"""The domain data of DESIGN.md "Domain data": Patient -> Case -> Smear -> Field -> AnnotationSet -> Cell.

Invariants that must never break are database constraints (checked in tests); the services in `services.py`
check the same things first so that users get a clear message instead of an IntegrityError.
"""

from __future__ import annotations

import random
import uuid
from typing import Any

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q

from aicell.models import Job
from annotations.taxonomy import NUM_CLASSES, Lineage

PSEUDONYM_VALIDATOR = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
    "Use a pseudonymous code of letters, digits, '.', '_' or '-' (no names, no spaces).",
)


class Split(models.TextChoices):
    TRAIN = "train", "Training"
    VAL = "val", "Validation"
    TEST = "test", "Test"


class Diagnosis(models.TextChoices):
    """Confirmed diagnoses of a case (e.g. from flow cytometry); codes match the rule ids of `rules.py`."""

    ALL = "ALL", "Acute lymphoblastic leukaemia"
    AML = "AML", "Acute myeloid leukaemia"
    LYMPHOMA = "LYMPHOMA", "Lymphoma infiltration"
    NEUROBLASTOMA = "NEUROBLASTOMA", "Neuroblastoma metastasis"
    NO_MALIGNANCY = "NONE", "No malignancy"
    OTHER = "OTHER", "Other"


class Sex(models.TextChoices):
    FEMALE = "F", "Female"
    MALE = "M", "Male"
    OTHER = "X", "Other"


class Patient(models.Model):
    code = models.CharField(max_length=64, unique=True, validators=[PSEUDONYM_VALIDATOR])
    # Optional and coarse (a year, never a date of birth): enough for age-stratified studies, not for re-identifying.
    birth_year = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1900), MaxValueValidator(2100)]
    )
    sex = models.CharField(max_length=1, choices=Sex.choices, blank=True, default="")
    # Assigned once per patient by the split service (`services.patient_splits_assign`) and never changed
    # afterwards, so no patient's cells sit on both sides of a train/test boundary.
    split = models.CharField(max_length=8, choices=Split.choices, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code


class Case(models.Model):
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="cases")
    code = models.CharField(max_length=64, unique=True, validators=[PSEUDONYM_VALIDATOR])
    collected_on = models.DateField(null=True, blank=True)
    confirmed_diagnosis = models.CharField(max_length=16, choices=Diagnosis.choices, blank=True, default="")
    diagnosis_method = models.CharField(max_length=64, blank=True, default="", help_text="e.g. flow cytometry")
    notes = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code


class Smear(models.Model):
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="smears")
    code = models.CharField(max_length=64, validators=[PSEUDONYM_VALIDATOR])
    stain = models.CharField(max_length=64, default="Wright-Giemsa")
    prepared_on = models.DateField(null=True, blank=True, help_text="the day the smear was made")
    microscope = models.CharField(max_length=128, blank=True, default="")
    camera = models.CharField(max_length=128, blank=True, default="")
    magnification = models.PositiveIntegerField(default=1000)
    notes = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["case__code", "code"]
        constraints = [models.UniqueConstraint(fields=["case", "code"], name="smear_code_unique_in_case")]

    def __str__(self) -> str:
        return f"{self.case.code}/{self.code}"


class FieldStatus(models.TextChoices):
    UPLOADED = "uploaded", "Uploaded"
    PRELABELLED = "prelabelled", "Pre-labelled"
    IN_ANNOTATION = "in_annotation", "In annotation"
    IN_CROSSCHECK = "in_crosscheck", "In cross-check"
    IN_ADJUDICATION = "in_adjudication", "In adjudication"
    CONSENSUS = "consensus", "Consensus"


class ImageFormat(models.TextChoices):
    JPEG = "JPEG"
    PNG = "PNG"
    TIFF = "TIFF"


def field_image_path(instance: Field, filename: str) -> str:
    # The content hash names the file: no patient data or upload name ever reaches the storage path.
    extension = {"JPEG": "jpg", "PNG": "png", "TIFF": "tif"}[instance.format]
    return f"fields/{instance.sha256[:2]}/{instance.sha256}.{extension}"


def field_thumbnail_path(instance: Field, filename: str) -> str:
    return f"thumbnails/{instance.sha256[:2]}/{instance.sha256}.jpg"


class Field(models.Model):
    smear = models.ForeignKey(Smear, on_delete=models.PROTECT, related_name="fields")
    image = models.FileField(upload_to=field_image_path, max_length=255)
    thumbnail = models.FileField(upload_to=field_thumbnail_path, max_length=255)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64, unique=True)
    format = models.CharField(max_length=8, choices=ImageFormat.choices)
    byte_size = models.PositiveBigIntegerField()
    original_name = models.CharField(max_length=255, blank=True, default="")
    status = models.CharField(max_length=20, choices=FieldStatus.choices, default=FieldStatus.UPLOADED, db_index=True)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(width__gt=0) & Q(height__gt=0), name="field_size_positive"),
            models.CheckConstraint(condition=Q(sha256__regex=r"^[0-9a-f]{64}$"), name="field_sha256_hex"),
        ]

    def __str__(self) -> str:
        return f"field {self.pk} ({self.smear})"


class CellClass(models.Model):
    """The 21 taxonomy classes; rows are seeded by a migration from `annotations.taxonomy` with fixed ids."""

    id = models.PositiveSmallIntegerField(primary_key=True)
    name = models.CharField(max_length=64, unique=True)
    lineage = models.CharField(max_length=16, choices=[(lineage.value, lineage.value) for lineage in Lineage])
    is_blast = models.BooleanField(default=False)
    shortcut = models.CharField(max_length=1, unique=True)

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "cell classes"
        constraints = [models.CheckConstraint(condition=Q(id__lt=NUM_CLASSES), name="cell_class_id_in_taxonomy")]

    def __str__(self) -> str:
        return f"{self.id} {self.name}"


class AnnotationKind(models.TextChoices):
    ANNOTATOR = "annotator", "Annotator"
    PREDICTION = "prediction", "Model prediction"
    CONSENSUS = "consensus", "Consensus"
    IMPORTED = "imported", "Imported truth"


# Sets whose cells are truth for training, evaluation and export; a field holds at most one of them.
TRUTH_KINDS = (AnnotationKind.CONSENSUS, AnnotationKind.IMPORTED)


class AnnotationStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SUBMITTED = "submitted", "Submitted"
    LOCKED = "locked", "Locked"


class AnnotationSet(models.Model):
    field = models.ForeignKey(Field, on_delete=models.CASCADE, related_name="annotation_sets")
    kind = models.CharField(max_length=16, choices=AnnotationKind.choices)
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="annotation_sets"
    )
    model_version = models.ForeignKey(
        "training.ModelVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="prediction_sets"
    )
    # The versions of all three stages that produced a prediction set, {"detector": id, ...}.
    pipeline = models.JSONField(default=dict, blank=True)
    source_name = models.CharField(max_length=255, blank=True, default="", help_text="dataset an import came from")
    status = models.CharField(max_length=16, choices=AnnotationStatus.choices, default=AnnotationStatus.DRAFT)
    # Optimistic lock: every write names the version it read; a stale write is refused with 409.
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["field_id", "id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(kind=AnnotationKind.ANNOTATOR) | Q(annotator__isnull=False),
                name="annotator_set_has_annotator",
            ),
            models.CheckConstraint(
                condition=~Q(kind=AnnotationKind.PREDICTION) | Q(model_version__isnull=False),
                name="prediction_set_has_model_version",
            ),
            models.UniqueConstraint(
                fields=["field", "annotator"],
                condition=Q(kind=AnnotationKind.ANNOTATOR),
                name="one_set_per_annotator_per_field",
            ),
            models.UniqueConstraint(
                fields=["field", "model_version"],
                condition=Q(kind=AnnotationKind.PREDICTION),
                name="one_prediction_set_per_model_version_per_field",
            ),
            models.UniqueConstraint(
                fields=["field"], condition=Q(kind__in=TRUTH_KINDS), name="one_truth_set_per_field"
            ),
            models.CheckConstraint(condition=Q(version__gte=1), name="annotation_set_version_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} set {self.pk} of field {self.field_id}"


class ReviewOutcome(models.TextChoices):
    """How a consensus cell became truth (double review); empty for every other set's cells."""

    AGREED = "agreed", "Both annotators agreed"
    RESOLVED = "resolved", "Agreed after cross-check"
    ADJUDICATED = "adjudicated", "Decided by an adjudicator"


def uniform_draw() -> float:
    return random.random()


class Cell(models.Model):
    """A box in image pixels (x, y = top-left corner) with its countable flag and class."""

    annotation_set = models.ForeignKey(AnnotationSet, on_delete=models.CASCADE, related_name="cells")
    x = models.FloatField()
    y = models.FloatField()
    width = models.FloatField()
    height = models.FloatField()
    countable = models.BooleanField(default=True)
    cell_class = models.ForeignKey(CellClass, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    # Predictions only: 21 averaged probabilities, per-member probabilities, P(countable).
    scores = models.JSONField(default=dict, blank=True)
    # Predictions only, as columns so the review queue can order and filter by them in SQL.
    detector_score = models.FloatField(null=True, blank=True)
    confidence = models.FloatField(null=True, blank=True)
    margin = models.FloatField(null=True, blank=True)
    entropy = models.FloatField(null=True, blank=True)
    mutual_information = models.FloatField(null=True, blank=True)
    # |2 P(countable) - 1|: 0 where the countability model cannot tell countable from uncountable.
    countability_margin = models.FloatField(null=True, blank=True)
    # The review queue's random order (the "random" strategy): a uniform draw fixed at creation, so a random sample
    # of the queue is an index range instead of a sort of every queued cell (null where bulk writers of other
    # cells than predictions leave it out).
    review_random = models.FloatField(null=True, blank=True, default=uniform_draw)
    # A predicted cell still open to review decisions (fewer than two): the version that predicted it, copied from
    # its set on creation (`save`; bulk writers set it) and cleared by the second decision. The review queue's
    # indexes below lead with it, so a batch is a few index ranges whatever the size of the queue or the history.
    review_version = models.ForeignKey(
        "training.ModelVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    # Provenance: the model suggestion an annotator accepted, or the annotator cell a consensus cell came from.
    source_cell = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    review_outcome = models.CharField(max_length=16, choices=ReviewOutcome.choices, blank=True, default="")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["annotation_set_id", "id"]
        # One per ordering column of `inference.core.selection.REVIEW_STRATEGIES` (same direction, id breaking ties):
        # the review queue reads each class's next cells as one range of one of these.
        indexes = [
            models.Index(fields=["review_version", "cell_class", *order, "id"], name=f"cell_queue_{name}")
            for name, order in (
                ("entropy", ["-entropy"]),
                ("margin", ["margin"]),
                ("confidence", ["confidence"]),
                ("mutual_info", ["-mutual_information"]),
                ("detector", ["detector_score"]),
                ("countability", ["countability_margin"]),
                ("random", ["review_random"]),
            )
        ]
        constraints = [
            models.CheckConstraint(condition=Q(width__gt=0) & Q(height__gt=0), name="cell_size_positive"),
            models.CheckConstraint(condition=Q(x__gte=0) & Q(y__gte=0), name="cell_origin_inside_image"),
            # "Box inside the image" needs the field's size from another table: enforced by the trigger of
            # migration 0003 (cell_box_inside_field).
        ]

    def __str__(self) -> str:
        return f"cell {self.pk} [{self.x:.0f},{self.y:.0f},{self.width:.0f},{self.height:.0f}]"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if (
            self._state.adding
            and self.review_version_id is None
            and self.annotation_set.kind == AnnotationKind.PREDICTION
        ):
            self.review_version_id = self.annotation_set.model_version_id
        super().save(*args, **kwargs)


class AuditTrailImmutable(Exception):
    """Raised on any attempt to change or delete an audit event."""


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    def update(self, **kwargs: object) -> int:
        raise AuditTrailImmutable("the audit trail cannot be changed")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AuditTrailImmutable("the audit trail cannot be deleted")


class AuditEvent(models.Model):
    """Append-only record of every change to human annotations and consensus (who, when, before, after, why).

    Ids of the changed objects are stored as plain integers so that history outlives what it describes.
    """

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    action = models.CharField(max_length=64)
    entity = models.CharField(max_length=32)
    entity_id = models.BigIntegerField()
    field_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    annotation_set_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    reason = models.TextField(blank=True, default="")

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["entity", "entity_id"])]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.action} {self.entity} {self.entity_id}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AuditTrailImmutable("the audit trail cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AuditTrailImmutable("the audit trail cannot be deleted")


# --- double review -----------------------------------------------------------------------------------------------


class Assignment(models.Model):
    """A field given to one of its two annotators; `slot` 1 is annotator A of the cross-check, 2 is B.

    At most two per field (slot 1 or 2, unique per field) and never the same person twice, in the database.
    """

    field = models.ForeignKey(Field, on_delete=models.CASCADE, related_name="assignments")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="assignments")
    slot = models.PositiveSmallIntegerField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["field_id", "slot"]
        constraints = [
            models.UniqueConstraint(fields=["field", "annotator"], name="assignment_one_per_annotator_per_field"),
            models.UniqueConstraint(fields=["field", "slot"], name="assignment_two_slots_per_field"),
            models.CheckConstraint(condition=Q(slot__in=[1, 2]), name="assignment_slot_is_a_or_b"),
        ]

    def __str__(self) -> str:
        return f"field {self.field_id} -> user {self.annotator_id} ({'AB'[self.slot - 1]})"


class ReviewSettings(models.Model):
    """The project's double-review settings: a single row (id 1), created with its defaults by a migration (0008)."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    show_prelabels = models.BooleanField(
        default=True, help_text="annotators see the model's pre-labels as suggestions to accept or correct"
    )
    iou_threshold = models.FloatField(
        default=0.5, help_text="boxes of the two annotators pair up from this IoU on (0 < IoU threshold <= 1)"
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = verbose_name_plural = "review settings"
        constraints = [
            models.CheckConstraint(condition=Q(id=1), name="review_settings_single_row"),
            models.CheckConstraint(
                condition=Q(iou_threshold__gt=0) & Q(iou_threshold__lte=1), name="review_settings_iou_in_range"
            ),
        ]

    def __str__(self) -> str:
        return "review settings"

    @classmethod
    def load(cls) -> ReviewSettings:
        """The settings in force. Reads never write (concurrent first reads would race to create the row): were the
        row missing, as after a flush, the defaults apply."""
        return cls.objects.filter(pk=1).first() or cls(pk=1)

    @classmethod
    def load_for_update(cls) -> ReviewSettings:
        """The row locked for a change (inside a transaction); put back first if missing, with an insert that
        yields to a concurrent one (ON CONFLICT DO NOTHING) instead of failing."""
        ReviewSettings.objects.bulk_create([ReviewSettings(pk=1)], ignore_conflicts=True)
        return ReviewSettings.objects.select_for_update().get(pk=1)


class FieldReview(models.Model):
    """The cross-check of one field, started when both assigned annotators have submitted: which two sets were
    compared, with which threshold, and the frozen result of the matching (`matching.FieldMatch.to_dict()`)."""

    field = models.OneToOneField(Field, on_delete=models.CASCADE, related_name="review")
    set_a = models.ForeignKey(AnnotationSet, on_delete=models.CASCADE, related_name="+")
    set_b = models.ForeignKey(AnnotationSet, on_delete=models.CASCADE, related_name="+")
    iou_threshold = models.FloatField()
    match = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    # Why the consensus is open again; empty while it is locked. Consensus edits record it as their reason.
    reopen_reason = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["field_id"]
        constraints = [models.CheckConstraint(condition=~Q(set_a=models.F("set_b")), name="review_of_two_sets")]

    def __str__(self) -> str:
        return f"review of field {self.field_id}"


class CellVerdict(models.TextChoices):
    """What a reviewer of the review queue decides about one predicted cell."""

    CLASS = "class", "A countable white cell of a class"
    UNCOUNTABLE = "uncountable", "An uncountable white cell"
    NOT_A_CELL = "not_a_cell", "Not a white cell"


class CellReviewStatus(models.TextChoices):
    OPEN = "open", "Collecting two blind decisions"
    IN_CROSSCHECK = "in_crosscheck", "The two decisions differ (cross-check)"
    TRUTH = "truth", "Truth"


class CellReview(models.Model):
    """Cell-level blind double review of one predicted cell of the review queue (DESIGN.md "cell-level").

    Two distinct reviewers decide (`CellDecision`, slot 1 = A, 2 = B), blind to each other; agreement makes the
    truth below at once, a disagreement becomes a `Conflict` of the cross-check (its `cell_review`). The predicted
    cell may be replaced by a later pre-label run (then `cell` is null); `prediction` keeps what the model said.
    """

    cell = models.OneToOneField(Cell, null=True, blank=True, on_delete=models.SET_NULL, related_name="cell_review")
    field = models.ForeignKey(Field, on_delete=models.CASCADE, related_name="cell_reviews")
    # The model's prediction, for provenance: model_version, box, cell_class, countable, top3, p_countable.
    prediction = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=CellReviewStatus.choices, default=CellReviewStatus.OPEN)
    # The truth, once `status` is truth.
    verdict = models.CharField(max_length=16, choices=CellVerdict.choices, blank=True, default="")
    cell_class = models.ForeignKey(CellClass, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    x = models.FloatField(null=True, blank=True)
    y = models.FloatField(null=True, blank=True)
    width = models.FloatField(null=True, blank=True)
    height = models.FloatField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=ReviewOutcome.choices, blank=True, default="")
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status=CellReviewStatus.TRUTH) | (~Q(verdict="") & ~Q(outcome="")),
                name="cell_review_truth_has_verdict",
            ),
            models.CheckConstraint(
                condition=~Q(verdict=CellVerdict.CLASS) | Q(cell_class__isnull=False),
                name="cell_review_class_verdict_has_class",
            ),
        ]

    def __str__(self) -> str:
        return f"cell review {self.pk} ({self.status})"


class CellDecision(models.Model):
    """One reviewer's blind decision on a queued cell; at most two per cell, never two by the same reviewer."""

    review = models.ForeignKey(CellReview, on_delete=models.CASCADE, related_name="decisions")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    slot = models.PositiveSmallIntegerField()
    verdict = models.CharField(max_length=16, choices=CellVerdict.choices)
    cell_class = models.ForeignKey(CellClass, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    # The box as the reviewer left it (the model's box unless they corrected it).
    x = models.FloatField()
    y = models.FloatField()
    width = models.FloatField()
    height = models.FloatField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["review_id", "slot"]
        constraints = [
            models.UniqueConstraint(fields=["review", "reviewer"], name="cell_decision_one_per_reviewer"),
            models.UniqueConstraint(fields=["review", "slot"], name="cell_decision_two_slots"),
            models.CheckConstraint(condition=Q(slot__in=[1, 2]), name="cell_decision_slot_is_a_or_b"),
            models.CheckConstraint(
                condition=Q(verdict=CellVerdict.CLASS, cell_class__isnull=False)
                | (~Q(verdict=CellVerdict.CLASS) & Q(cell_class__isnull=True)),
                name="cell_decision_class_iff_class_verdict",
            ),
            models.CheckConstraint(condition=Q(width__gt=0) & Q(height__gt=0), name="cell_decision_size_positive"),
        ]

    def __str__(self) -> str:
        return f"decision {'AB'[self.slot - 1]} on cell review {self.review_id}: {self.verdict}"


class ConflictKind(models.TextChoices):
    PAIR = "pair", "Matched boxes that differ"
    ONLY_A = "only_a", "Box only in A"
    ONLY_B = "only_b", "Box only in B"


class ConflictStatus(models.TextChoices):
    OPEN = "open", "Open (cross-check)"
    RESOLVED = "resolved", "Resolved by a concession"
    ESCALATED = "escalated", "Escalated to adjudication"
    ADJUDICATED = "adjudicated", "Decided by an adjudicator"


class Decision(models.TextChoices):
    CONCEDE = "concede", "Take the other annotator's version"
    KEEP = "keep", "Keep my version"


class Resolution(models.TextChoices):
    A = "a", "A's version"
    B = "b", "B's version"
    NONE = "none", "No cell"
    CUSTOM = "custom", "The adjudicator's own cell"


class Conflict(models.Model):
    """One disagreement between A and B on a field, with frozen snapshots of both versions.

    A matched pair that differs in class and in countability is one conflict carrying both flags. `final_cell`
    is the cell the resolution puts into the consensus (None = no cell). `version` is the optimistic lock.
    """

    field = models.ForeignKey(Field, on_delete=models.CASCADE, related_name="conflicts")
    # Set for a conflict of cell-level review (two decisions on one queued cell); null for a field's cross-check.
    cell_review = models.ForeignKey(
        CellReview, null=True, blank=True, on_delete=models.CASCADE, related_name="conflicts"
    )
    kind = models.CharField(max_length=8, choices=ConflictKind.choices)
    class_differs = models.BooleanField(default=False)
    countability_differs = models.BooleanField(default=False)
    iou = models.FloatField(null=True, blank=True)
    cell_a = models.ForeignKey(Cell, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    cell_b = models.ForeignKey(Cell, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    snapshot_a = models.JSONField(null=True, blank=True)
    snapshot_b = models.JSONField(null=True, blank=True)
    status = models.CharField(max_length=12, choices=ConflictStatus.choices, default=ConflictStatus.OPEN)
    decision_a = models.CharField(max_length=8, choices=Decision.choices, blank=True, default="")
    decision_b = models.CharField(max_length=8, choices=Decision.choices, blank=True, default="")
    resolution = models.CharField(max_length=8, choices=Resolution.choices, blank=True, default="")
    final_cell = models.JSONField(null=True, blank=True)
    reason = models.TextField(blank=True, default="")
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["field_id", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(kind=ConflictKind.PAIR) & (Q(class_differs=True) | Q(countability_differs=True)))
                | (~Q(kind=ConflictKind.PAIR) & Q(class_differs=False) & Q(countability_differs=False)),
                name="conflict_pair_differs_single_does_not",
            ),
            models.CheckConstraint(
                condition=Q(status__in=[ConflictStatus.OPEN, ConflictStatus.ESCALATED], resolution="")
                | (Q(status__in=[ConflictStatus.RESOLVED, ConflictStatus.ADJUDICATED]) & ~Q(resolution="")),
                name="conflict_resolution_iff_decided",
            ),
            models.CheckConstraint(condition=Q(version__gte=1), name="conflict_version_positive"),
        ]

    def __str__(self) -> str:
        return f"conflict {self.pk} ({self.kind}) on field {self.field_id}"

    @property
    def kinds(self) -> list[str]:
        """The outcome kinds of `matching.OutcomeKind` this conflict stands for."""
        if self.kind != ConflictKind.PAIR:
            return [self.kind]
        return [
            name
            for name, differs in (
                ("class_conflict", self.class_differs),
                ("countability_conflict", self.countability_differs),
            )
            if differs
        ]


RULE_SET_NAME_VALIDATOR = RegexValidator(
    r"^[a-z0-9][a-z0-9._-]{0,63}$", "Use lower-case letters, digits, '.', '_' or '-' (e.g. 'default', 'fab')."
)


class RuleSetImmutable(Exception):
    """Raised on any attempt to change a stored rule set other than (de)activating it, or to delete one."""


class RuleSetQuerySet(models.QuerySet["RuleSet"]):
    def update(self, **kwargs: Any) -> int:
        if set(kwargs) - {"active"}:
            raise RuleSetImmutable("a stored rule set cannot be changed: create a new version")
        return super().update(**kwargs)

    def delete(self) -> tuple[int, dict[str, int]]:
        raise RuleSetImmutable("rule sets are kept as history and cannot be deleted")


class RuleSet(models.Model):
    """One version of a diagnosis rule set (the JSON of `annotations.counting.rules`), immutable once stored.

    Editing a rule set stores a new row with the same name and the next version, so every suggestion ever
    shown can be traced back to the exact rules that produced it. Exactly one row is the active one.
    """

    name = models.CharField(max_length=64, validators=[RULE_SET_NAME_VALIDATOR])
    version = models.PositiveIntegerField()
    content = models.JSONField()
    note = models.TextField(blank=True, default="", help_text="why this version was made")
    active = models.BooleanField(default=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = RuleSetQuerySet.as_manager()

    class Meta:
        ordering = ["name", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="rule_set_name_version_unique"),
            models.UniqueConstraint(fields=["active"], condition=Q(active=True), name="one_active_rule_set"),
            models.CheckConstraint(condition=Q(version__gte=1), name="rule_set_version_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}{' (active)' if self.active else ''}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding and set(kwargs.get("update_fields") or ()) != {"active"}:
            raise RuleSetImmutable("a stored rule set cannot be changed: create a new version")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise RuleSetImmutable("rule sets are kept as history and cannot be deleted")


# --- dataset interchange jobs ------------------------------------------------------------------------------------


def export_file_path(instance: ExportJob, filename: str) -> str:
    # An unguessable name: the zip is only ever served through the API, which checks who asks.
    return f"exports/{uuid.uuid4().hex}.zip"


def import_archive_path(instance: ImportJob, filename: str) -> str:
    return f"imports/{uuid.uuid4().hex}.zip"


def import_report_path(instance: ImportJob, filename: str) -> str:
    return f"imports/{uuid.uuid4().hex}-report.csv"


class ExportJob(Job):
    """A COCO export asked for through the API; `parameters` is the export request, `file` the finished zip."""

    parameters = models.JSONField(default=dict)
    file = models.FileField(upload_to=export_file_path, max_length=255, blank=True)

    def __str__(self) -> str:
        return f"export {self.pk} ({self.status})"


class ImportFormat(models.TextChoices):
    """The interchange formats (import and export alike); `interchange.formats` registers a reader and a writer each."""

    COCO = "coco", "COCO"
    VOC = "voc", "Pascal VOC"
    YOLO = "yolo", "YOLO (Ultralytics)"
    CVAT = "cvat", "CVAT for images 1.1"
    LABEL_STUDIO = "labelstudio", "Label Studio JSON"


class ImportedDataset(models.Model):
    """Where imported truth comes from: one row per dataset name (the `source_name` of its imported sets), with the
    licence and source the import found or was given; exports list them (COCO `licenses` and `info`, ...)."""

    name = models.CharField(max_length=255, unique=True)
    license = models.CharField(max_length=200, blank=True, default="")
    source_url = models.CharField(max_length=500, blank=True, default="")
    description = models.CharField(max_length=500, blank=True, default="")
    format = models.CharField(max_length=16, choices=ImportFormat.choices, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ImportJob(Job):
    """A dataset import sent through the API; the uploaded archive is deleted once the job has ended."""

    format = models.CharField(max_length=16, choices=ImportFormat.choices)
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="+")
    # smear, as (consensus | annotator:USERNAME), label_map, ids, field_types, source_name
    parameters = models.JSONField(default=dict)
    archive = models.FileField(upload_to=import_archive_path, max_length=255, blank=True)
    # Every problem (a refused import) or note (boxes clamped, images skipped) as CSV; empty when there were none.
    report = models.FileField(upload_to=import_report_path, max_length=255, blank=True)

    def __str__(self) -> str:
        return f"import {self.pk} ({self.status})"
