"""API shapes of double review. Bodies are documented here and checked by `review.services`."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from aicell.api.fields import StrictIntegerField
from aicell.api.versioning import VERSION_COLUMN
from annotations.models import (
    Assignment,
    AuditEvent,
    CellReview,
    CellReviewStatus,
    CellVerdict,
    Conflict,
    FieldReview,
    Resolution,
    ReviewOutcome,
    ReviewSettings,
)
from annotations.review.selectors import assignment_details_visible, cell_decision_visible


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
    verdict = serializers.CharField(
        required=False, help_text='queued cells only: "class", "uncountable" or "not_a_cell"'
    )


def _cell_side(conflict: Conflict, side: str) -> dict[str, Any]:
    """A side of a queued cell's conflict: the reviewer who made decision A or B."""
    assert conflict.cell_review is not None
    slot = 1 if side == Resolution.A else 2
    decision = next((d for d in conflict.cell_review.decisions.all() if d.slot == slot), None)
    return {
        "annotator": decision.reviewer_id if decision else None,
        "annotator_username": decision.reviewer.username if decision else None,
        "cell": conflict.snapshot_a if side == Resolution.A else conflict.snapshot_b,
        "decision": conflict.decision_a if side == Resolution.A else conflict.decision_b,
    }


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
            "cell_review",
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
        if conflict.cell_review_id is not None:
            return _cell_side(conflict, Resolution.A)
        return _side(conflict, conflict.field.review, Resolution.A)

    @extend_schema_field(ConflictSideSerializer)
    def get_b(self, conflict: Conflict) -> dict[str, Any]:
        if conflict.cell_review_id is not None:
            return _cell_side(conflict, Resolution.B)
        return _side(conflict, conflict.field.review, Resolution.B)

    @extend_schema_field(serializers.ChoiceField(choices=["a", "b"], allow_null=True))
    def get_your_side(self, conflict: Conflict) -> str | None:
        user_id = self.context["request"].user.pk
        if conflict.cell_review is not None:
            sides = {d.reviewer_id: "ab"[d.slot - 1] for d in conflict.cell_review.decisions.all()}
            return sides.get(user_id)
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


class CellDecisionSerializer(serializers.Serializer):
    side = serializers.ChoiceField(choices=["a", "b"])
    reviewer = serializers.IntegerField()
    reviewer_username = serializers.CharField()
    verdict = serializers.ChoiceField(choices=CellVerdict.choices)
    cell_class = serializers.IntegerField(allow_null=True)
    x = serializers.FloatField()
    y = serializers.FloatField()
    width = serializers.FloatField()
    height = serializers.FloatField()
    created_at = serializers.DateTimeField()


class CellTruthSerializer(serializers.Serializer):
    verdict = serializers.ChoiceField(choices=CellVerdict.choices)
    cell_class = serializers.IntegerField(allow_null=True)
    x = serializers.FloatField()
    y = serializers.FloatField()
    width = serializers.FloatField()
    height = serializers.FloatField()
    outcome = serializers.ChoiceField(choices=ReviewOutcome.choices)
    decided_at = serializers.DateTimeField(allow_null=True)


class CellReviewSerializer(serializers.ModelSerializer):
    """A queued cell's blind double review. Until both reviewers decided, a reviewer sees only their own decision
    (and not whether the other has decided); the truth once there is one."""

    decisions = serializers.SerializerMethodField()
    truth = serializers.SerializerMethodField()
    conflict = serializers.SerializerMethodField()

    class Meta:
        model = CellReview
        fields = ["id", "cell", "field", "status", "prediction", "decisions", "truth", "conflict", "created_at"]
        read_only_fields = fields

    @extend_schema_field(CellDecisionSerializer(many=True))
    def get_decisions(self, review: CellReview) -> list[dict[str, Any]]:
        user = self.context["request"].user
        return [
            {
                "side": "ab"[decision.slot - 1],
                "reviewer": decision.reviewer_id,
                "reviewer_username": decision.reviewer.username,
                "verdict": decision.verdict,
                "cell_class": decision.cell_class_id,
                "x": decision.x,
                "y": decision.y,
                "width": decision.width,
                "height": decision.height,
                "created_at": serializers.DateTimeField().to_representation(decision.created_at),
            }
            for decision in review.decisions.all()
            if cell_decision_visible(decision, review, user)
        ]

    @extend_schema_field(CellTruthSerializer(allow_null=True))
    def get_truth(self, review: CellReview) -> dict[str, Any] | None:
        if review.status != CellReviewStatus.TRUTH:
            return None
        return {
            "verdict": review.verdict,
            "cell_class": review.cell_class_id,
            "x": review.x,
            "y": review.y,
            "width": review.width,
            "height": review.height,
            "outcome": review.outcome,
            "decided_at": serializers.DateTimeField().to_representation(review.decided_at)
            if review.decided_at
            else None,
        }

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_conflict(self, review: CellReview) -> int | None:
        if review.status == CellReviewStatus.OPEN:
            return None
        return next((conflict.pk for conflict in review.conflicts.all()), None)
