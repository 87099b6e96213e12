"""API shapes of the domain data. Writes that need more than field validation go through `services.py`."""

from __future__ import annotations

import math
from typing import Any

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.validators import UniqueTogetherValidator

from aicell.api.fields import StaffUsernameField, StrictIntegerField
from aicell.api.versioning import VERSION_COLUMN
from aicell.models import JobStatus
from aicell.roles import CLINICAL_ROLES, roles_of
from annotations.interchange.export_selection import SPLIT_ORDER, ExportSource
from annotations.interchange.formats import EXPORT_FORMATS
from annotations.models import (
    RULE_SET_NAME_VALIDATOR,
    AnnotationSet,
    Case,
    Cell,
    CellClass,
    ExportJob,
    Field,
    ImportFormat,
    ImportJob,
    Patient,
    RuleSet,
    Smear,
    Split,
)


class ClinicalOnlyKeys(serializers.ModelSerializer):
    """Leaves out `Meta.left_out_for_some_readers` (free text that may name a patient: notes, upload names) for
    readers outside the lab's clinical roles: researchers see the platform de-identified."""

    def to_representation(self, instance: Any) -> dict[str, Any]:
        data: dict[str, Any] = super().to_representation(instance)
        request = self.context.get("request")
        if request is None or not roles_of(request.user) & CLINICAL_ROLES:
            for key in getattr(self.Meta, "left_out_for_some_readers", ()):
                data.pop(key, None)
        return data


class PatientSerializer(serializers.ModelSerializer):
    case_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Patient
        fields = ["id", "code", "birth_year", "sex", "split", "case_count", "created_at"]
        read_only_fields = ["split", "created_at"]


class CaseSerializer(ClinicalOnlyKeys):
    patient_code = serializers.CharField(source="patient.code", read_only=True)
    smear_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Case
        fields = [
            "id",
            "code",
            "patient",
            "patient_code",
            "collected_on",
            "confirmed_diagnosis",
            "diagnosis_method",
            "notes",
            "smear_count",
            "created_at",
        ]
        read_only_fields = ["created_at"]
        left_out_for_some_readers = ["notes"]


class SmearSerializer(ClinicalOnlyKeys):
    case_code = serializers.CharField(source="case.code", read_only=True)
    field_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Smear
        fields = [
            "id",
            "case",
            "case_code",
            "code",
            "stain",
            "prepared_on",
            "microscope",
            "camera",
            "magnification",
            "notes",
            "field_count",
            "created_at",
        ]
        read_only_fields = ["created_at"]
        left_out_for_some_readers = ["notes"]
        validators = [
            UniqueTogetherValidator(
                queryset=Smear.objects.all(),
                fields=["case", "code"],
                message="This case already has a smear with this code.",
            )
        ]


class FieldSerializer(ClinicalOnlyKeys):
    case = serializers.IntegerField(source="smear.case_id", read_only=True)
    case_code = serializers.CharField(source="smear.case.code", read_only=True)
    image_url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()

    class Meta:
        model = Field
        fields = [
            "id",
            "smear",
            "case",
            "case_code",
            "width",
            "height",
            "sha256",
            "format",
            "byte_size",
            "original_name",
            "status",
            "created_at",
            "updated_at",
            "image_url",
            "thumbnail_url",
        ]
        read_only_fields = fields
        # Upload names may carry patient identifiers: only the lab's own roles see them.
        left_out_for_some_readers = ["original_name"]

    @extend_schema_field(serializers.CharField())
    def get_image_url(self, field: Field) -> str:
        return reverse("field-image", kwargs={"pk": field.pk})

    @extend_schema_field(serializers.CharField())
    def get_thumbnail_url(self, field: Field) -> str:
        return reverse("field-thumbnail", kwargs={"pk": field.pk})


class FieldUploadSerializer(serializers.Serializer):
    smear = StrictIntegerField(help_text="id of the smear the fields belong to")
    files = serializers.ListField(
        child=serializers.FileField(allow_empty_file=True), help_text="one or many JPEG, PNG or TIFF images"
    )


class CellClassSerializer(serializers.ModelSerializer):
    class Meta:
        model = CellClass
        fields = ["id", "name", "lineage", "is_blast", "shortcut"]


class AnnotationSetSerializer(serializers.ModelSerializer):
    annotator_username = serializers.CharField(
        source="annotator.username", read_only=True, default=None, allow_null=True
    )
    cell_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = AnnotationSet
        fields = [
            "id",
            "field",
            "kind",
            "annotator",
            "annotator_username",
            "model_version",
            "pipeline",
            "source_name",
            "status",
            "version",
            "cell_count",
            "created_at",
            "updated_at",
            "submitted_at",
        ]
        read_only_fields = fields


class AnnotationSetCreateSerializer(serializers.Serializer):
    field = StrictIntegerField(help_text="the field to annotate; the set is yours")


class CellSerializer(serializers.ModelSerializer):
    class Meta:
        model = Cell
        fields = [
            "id",
            "annotation_set",
            "x",
            "y",
            "width",
            "height",
            "countable",
            "cell_class",
            "scores",
            "detector_score",
            "confidence",
            "margin",
            "entropy",
            "mutual_information",
            "source_cell",
            "review_outcome",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class CoordinateField(serializers.FloatField):
    """A pixel coordinate: a finite number. JSON `true` is not 1 and "NaN" or "1e309" are not numbers here."""

    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool):
            self.fail("invalid")
        value = float(super().to_internal_value(data))
        if not math.isfinite(value):
            raise serializers.ValidationError("must be a finite number")
        return value


class CellWriteSerializer(serializers.Serializer):
    """Documents the write body; values are checked by `services.validate_box` and friends."""

    x = CoordinateField(required=False)
    y = CoordinateField(required=False)
    width = CoordinateField(required=False)
    height = CoordinateField(required=False)
    countable = serializers.BooleanField(required=False)
    cell_class = StrictIntegerField(required=False, allow_null=True)
    source_cell = StrictIntegerField(required=False, allow_null=True)
    version = StrictIntegerField(
        column=VERSION_COLUMN, required=False, help_text="the set version you read (or send If-Match)"
    )
    reason = serializers.CharField(required=False, allow_blank=True, help_text="why (recorded in the history)")


class VersionSerializer(serializers.Serializer):
    version = StrictIntegerField(
        column=VERSION_COLUMN, required=False, help_text="the set version you read (or send If-Match)"
    )


class RuleSetSerializer(serializers.ModelSerializer):
    description = serializers.SerializerMethodField()
    created_by = StaffUsernameField()

    class Meta:
        model = RuleSet
        fields = ["id", "name", "version", "active", "description", "note", "content", "created_by", "created_at"]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField())
    def get_description(self, rule_set: RuleSet) -> str:
        content = rule_set.content
        return str(content.get("description", "")) if isinstance(content, dict) else ""


class RuleSetCreateSerializer(serializers.Serializer):
    name = serializers.CharField(
        max_length=64,
        validators=[RULE_SET_NAME_VALIDATOR],
        help_text="an existing name stores its next version; a new name starts at version 1",
    )
    content = serializers.JSONField(help_text="the rule set (see annotations/rules.py); validated path by path")
    note = serializers.CharField(required=False, allow_blank=True, default="", help_text="why this version")
    activate = serializers.BooleanField(required=False, default=False, help_text="make it the active rule set")


# --- dataset interchange -----------------------------------------------------------------------------------------

_JOB_FIELDS = [
    "id",
    "status",
    "progress",
    "message",
    "error",
    "parameters",
    "result",
    "cancel_requested",
    "created_by",
    "created_at",
    "started_at",
    "finished_at",
]


class ExportRequestSerializer(serializers.Serializer):
    format = serializers.ChoiceField(
        choices=[(value, ImportFormat(value).label) for value in EXPORT_FORMATS],
        required=False,
        default="coco",
        help_text="coco (default), yolo, cvat (CVAT for images 1.1), labelstudio (Label Studio JSON)",
    )
    sources = serializers.ListField(
        child=serializers.ChoiceField(choices=[source.value for source in ExportSource]),
        required=False,
        default=[ExportSource.CONSENSUS.value],
        help_text="consensus (default), annotations, predictions",
    )
    cases = serializers.ListField(child=serializers.CharField(), required=False, default=list, help_text="case codes")
    splits = serializers.ListField(
        child=serializers.ChoiceField(choices=list(SPLIT_ORDER)), required=False, default=list
    )
    classes = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        default=list,
        help_text="class names, 'uncountable', 'unclassified' or category ids; empty: all",
    )
    model_version = StrictIntegerField(required=False, allow_null=True, default=None)
    split_all = serializers.ChoiceField(
        choices=Split.values,
        required=False,
        allow_null=True,
        default=None,
        help_text="every image into this one split (train, val or test), whatever its patient's; without it, patients "
        "without a split get one first, the way training snapshots assign them",
    )


class ExportJobSerializer(serializers.ModelSerializer):
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = ExportJob
        fields = [*_JOB_FIELDS, "download_url"]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_download_url(self, job: ExportJob) -> str | None:
        if job.status != JobStatus.SUCCEEDED or not job.file:
            return None
        path = reverse("export-download", kwargs={"pk": job.pk})
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path


class ImportJobSerializer(serializers.ModelSerializer):
    case_code = serializers.CharField(source="case.code", read_only=True)
    report_url = serializers.SerializerMethodField(help_text="every problem or note as CSV, once the job ended")

    class Meta:
        model = ImportJob
        fields = [*_JOB_FIELDS, "format", "case", "case_code", "report_url"]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_report_url(self, job: ImportJob) -> str | None:
        if not job.report:
            return None
        path = reverse("import-report", kwargs={"pk": job.pk})
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path


class ImportRequestSerializer(serializers.Serializer):
    """Multipart form of an import; `as` is 'consensus' (default) or 'annotator:USERNAME'."""

    archive = serializers.FileField(
        help_text="a zip: COCO (annotations/*.json + images), VOC (Annotations/, JPEGImages/), YOLO (images/, "
        "labels/, data.yaml), CVAT for images 1.1 (annotations.xml + images/) or Label Studio JSON (+ images)"
    )
    format = serializers.ChoiceField(choices=ImportFormat.choices)
    case = serializers.CharField(help_text="code of an existing case")
    smear = serializers.CharField(required=False, default="S1", help_text="smear code in the case (created if missing)")
    label_map = serializers.FileField(required=False, help_text="label map JSON (README 'Interchange')")
    ids = serializers.FileField(required=False, help_text="text file, one image per line: import only these")
    types_csv = serializers.FileField(required=False, help_text="CSV image,types: per-field cell types")
    source_name = serializers.CharField(required=False, default="", allow_blank=True)
    images = serializers.CharField(
        required=False,
        allow_blank=True,
        help_text="a folder in the archive ('.' for all of it) where images named by absolute paths or URLs "
        "(e.g. Label Studio's /data/upload/...) are found by file name",
    )
    split_from_dataset = serializers.BooleanField(
        required=False, default=False, help_text="pin each image's split in the dataset on its patient"
    )
    patient_per_image = serializers.BooleanField(
        required=False, default=False, help_text="each image its own patient and case, coded <case>-<image name>"
    )
    patients = serializers.FileField(
        required=False, help_text="CSV image,patient: each patient gets a case of its code"
    )
    license = serializers.CharField(required=False, default="", allow_blank=True, max_length=200)
    source_url = serializers.CharField(required=False, default="", allow_blank=True, max_length=500)

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        # "as" is a Python keyword, so it cannot be declared as a class attribute.
        fields["as"] = serializers.CharField(
            required=False, default="consensus", help_text="consensus | annotator:USERNAME"
        )
        return fields


class AcceptSuggestionsSerializer(serializers.Serializer):
    cells = serializers.ListField(child=StrictIntegerField(), required=False, help_text="prediction cell ids")
    all = serializers.BooleanField(required=False, help_text="every cell of the newest (or the named) prediction set")
    prediction_set = StrictIntegerField(required=False)
    version = StrictIntegerField(
        column=VERSION_COLUMN, required=False, help_text="the set version you read (or send If-Match)"
    )


class AcceptedSuggestionsSerializer(serializers.Serializer):
    created = CellSerializer(many=True)
    skipped = serializers.ListField(child=StrictIntegerField(), help_text="suggestions already in the set")
    version = StrictIntegerField(column=VERSION_COLUMN)
