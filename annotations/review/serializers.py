"""API shapes of double review. Bodies are documented here and checked by `review.services`."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from aicell.api.fields import StrictIntegerField
from aicell.api.versioning import VERSION_COLUMN
from annotations.models import Assignment, AuditEvent, Conflict, FieldReview, Resolution, ReviewSettings
from annotations.review.selectors import assignment_details_visible


class AssignmentSerializer(serializers.ModelSerializer):
    """An assignment with its annotator's progress. About the other annotator of one's field, before both have
    submitted, only "pending" or "submitted" is shown: no set id, no cell count, no timestamps."""

    annotator_username = serializers.CharField(source="annotator.username", read_only=True)
    field_status = serializers.CharField(source="field.status", read_only=True)
    smear = serializers.IntegerField(source="field.smear_id", read_only=True)
    case = serializers.IntegerField(source="field.smear.case_id", read_only=True)
    side = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField()
    annotation_set = serializers.SerializerMethodField()
    cell_count = serializers.SerializerMethodField()
    submitted_at = serializers.SerializerMethodField()

    class Meta:
        model = Assignment
        fields = [
            "id",
            "field",
            "field_status",
            "smear",
            "case",
            "annotator",
            "annotator_username",
            "side",
            "progress",
            "annotation_set",
            "cell_count",
            "submitted_at",
            "created_by",
            "created_at",
        ]
        read_only_fields = fields

    def _details(self, assignment: Assignment) -> bool:
        return assignment_details_visible(assignment, self.context["request"].user)

    def get_side(self, assignment: Assignment) -> str:
        return "a" if assignment.slot == 1 else "b"

    @extend_schema_field(
        serializers.ChoiceField(choices=["not_started", "in_progress", "submitted", "pending"]),
    )
    def get_progress(self, assignment: Assignment) -> str:
        status = getattr(assignment, "set_status", None)
        submitted = status is not None and status != "draft"
        if not self._details(assignment):
            return "submitted" if submitted else "pending"
        if status is None:
            return "not_started"
        return "submitted" if submitted else "in_progress"

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_annotation_set(self, assignment: Assignment) -> int | None:
        return getattr(assignment, "set_id", None) if self._details(assignment) else None

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_cell_count(self, assignment: Assignment) -> int | None:
        return getattr(assignment, "set_cell_count", None) if self._details(assignment) else None

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_submitted_at(self, assignment: Assignment) -> Any:
        value = getattr(assignment, "set_submitted_at", None) if self._details(assignment) else None
        return serializers.DateTimeField().to_representation(value) if value else None


class AssignmentCreateSerializer(serializers.Serializer):
    field = StrictIntegerField()
    annotator = StrictIntegerField(help_text="user id of an active annotator")


class AssignmentAutoSerializer(serializers.Serializer):
    # DRF moves declared fields off the class, so this body key does not shadow `Serializer.fields`.
    fields = serializers.ListField(  # type: ignore[assignment]
        child=StrictIntegerField(), required=False, help_text="field ids"
    )
    smear = StrictIntegerField(required=False, help_text="every field of this smear")
    case = StrictIntegerField(required=False, help_text="every field of this case")
    annotators = serializers.ListField(
        child=StrictIntegerField(), required=False, help_text="choose among these annotators only"
    )


class AssignmentAutoResultSerializer(serializers.Serializer):
    created = AssignmentSerializer(many=True)
    skipped = serializers.ListField(child=serializers.DictField())


class CellVersionSerializer(serializers.Serializer):
    """A frozen cell (snapshot) as it was when the cross-check started."""

    id = StrictIntegerField(allow_null=True)
    x = serializers.FloatField()
    y = serializers.FloatField()
    width = serializers.FloatField()
    height = serializers.FloatField()
    countable = serializers.BooleanField()
    cell_class = StrictIntegerField(allow_null=True)


def _side(conflict: Conflict, review: FieldReview, side: str) -> dict[str, Any]:
    annotation_set = review.set_a if side == Resolution.A else review.set_b
    return {
        "annotator": annotation_set.annotator_id,
        "annotator_username": annotation_set.annotator.username if annotation_set.annotator else None,
        "cell": conflict.snapshot_a if side == Resolution.A else conflict.snapshot_b,
        "decision": conflict.decision_a if side == Resolution.A else conflict.decision_b,
    }


class ConflictSideSerializer(serializers.Serializer):
    annotator = StrictIntegerField()
    annotator_username = serializers.CharField(allow_null=True)
    cell = CellVersionSerializer(allow_null=True)
    decision = serializers.CharField(help_text='"concede", "keep" or "" (not answered)')


class ConflictSerializer(serializers.ModelSerializer):
    """A conflict with A's and B's versions side by side; `your_side` says which one is the reader's."""

    kinds = serializers.ListField(child=serializers.CharField(), read_only=True)
    a = serializers.SerializerMethodField()
    b = serializers.SerializerMethodField()
    your_side = serializers.SerializerMethodField()
    resolved_by_username = serializers.CharField(
        source="resolved_by.username", read_only=True, default=None, allow_null=True
    )

    class Meta:
        model = Conflict
        fields = [
            "id",
            "field",
            "kind",
            "kinds",
            "iou",
            "status",
            "version",
            "a",
            "b",
            "your_side",
            "resolution",
            "final_cell",
            "reason",
            "resolved_by",
            "resolved_by_username",
            "resolved_at",
            "created_at",
        ]
        read_only_fields = fields

    @extend_schema_field(ConflictSideSerializer)
    def get_a(self, conflict: Conflict) -> dict[str, Any]:
        return _side(conflict, conflict.field.review, Resolution.A)

    @extend_schema_field(ConflictSideSerializer)
    def get_b(self, conflict: Conflict) -> dict[str, Any]:
        return _side(conflict, conflict.field.review, Resolution.B)

    @extend_schema_field(serializers.ChoiceField(choices=["a", "b"], allow_null=True))
    def get_your_side(self, conflict: Conflict) -> str | None:
        user_id = self.context["request"].user.pk
        review = conflict.field.review
        return {review.set_a.annotator_id: "a", review.set_b.annotator_id: "b"}.get(user_id)


class ConflictResolveSerializer(serializers.Serializer):
    """Annotators of the field: "concede" (take the other's version) or "keep". Adjudicators: "a", "b", "none"
    (no cell) or "custom" with "cell"."""

    decision = serializers.ChoiceField(choices=["concede", "keep", "a", "b", "none", "custom"])
    cell = serializers.DictField(required=False, help_text="custom only: x, y, width, height, countable, cell_class")
    reason = serializers.CharField(required=False, allow_blank=True)
    version = StrictIntegerField(
        column=VERSION_COLUMN, required=False, help_text="the conflict version you read (or send If-Match)"
    )


class ConsensusReopenSerializer(serializers.Serializer):
    reason = serializers.CharField(help_text="why the consensus is reopened (recorded)")
    version = StrictIntegerField(
        column=VERSION_COLUMN, required=False, help_text="the consensus set version (or send If-Match)"
    )


class AuditEventSerializer(serializers.ModelSerializer):
    actor_username = serializers.CharField(source="actor.username", read_only=True, default=None, allow_null=True)

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "at",
            "actor",
            "actor_username",
            "action",
            "entity",
            "entity_id",
            "annotation_set_id",
            "before",
            "after",
            "reason",
        ]
        read_only_fields = fields


class ReviewSettingsSerializer(serializers.ModelSerializer):
    class Meta:
        model = ReviewSettings
        fields = ["show_prelabels", "iou_threshold", "updated_by", "updated_at"]
        read_only_fields = ["updated_by", "updated_at"]


class AnnotatorLoadSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    open_assignments = serializers.IntegerField(help_text="assigned fields whose own set is not submitted yet")
    assignments = serializers.IntegerField(help_text="all assigned fields")
