from __future__ import annotations

from typing import Any

from rest_framework import serializers
from rest_framework.fields import empty

from aicell.api.fields import JOB_FIELDS, StrictIntegerField
from annotations.models import CellVerdict
from annotations.review.serializers import ConflictSerializer
from annotations.taxonomy import CLASS_NAMES
from inference.core.selection import default_review_strategy
from inference.models import PrelabelItem, PrelabelJob


class PrelabelJobSerializer(serializers.ModelSerializer):
    class Meta:
        model = PrelabelJob
        fields = [*JOB_FIELDS, "trigger", "pipeline", "field_count", "done_count", "failed_count"]
        read_only_fields = fields


class PrelabelItemSerializer(serializers.ModelSerializer):
    field = serializers.IntegerField(source="field_id_at_start")

    class Meta:
        model = PrelabelItem
        fields = ["id", "field", "status", "error", "cell_count", "attempts", "updated_at"]
        read_only_fields = fields


class PrelabelRequestSerializer(serializers.Serializer):
    field_ids = serializers.ListField(child=StrictIntegerField(), required=False, help_text="these fields")
    case = StrictIntegerField(required=False, help_text="every field of this case")
    everything = serializers.BooleanField(
        default=False, help_text="also fields the active model already pre-labelled (default: only new ones)"
    )


class ReviewQueueQuerySerializer(serializers.Serializer):
    strategy = serializers.CharField(
        default=default_review_strategy, help_text="a name from GET /api/v1/review-strategies (default: its default)"
    )
    case = StrictIntegerField(required=False)
    cell_class = StrictIntegerField(required=False, min_value=0, max_value=len(CLASS_NAMES) - 1)
    limit = StrictIntegerField(default=10, min_value=1, max_value=50, help_text="the batch size")
    balance = serializers.BooleanField(default=True)
    max_per_field = StrictIntegerField(default=3, min_value=1, help_text="at most this many cells per field")

    def run_validation(self, data: Any = empty) -> Any:
        # DRF reads "?strategy=" (present, empty) as absent and takes the default; it is a value, and a wrong one.
        blank = [name for name, _ in self.fields.items() if hasattr(data, "get") and data.get(name) == ""]
        if blank:
            raise serializers.ValidationError(
                {name: ["must not be empty; leave it out for the default"] for name in blank}
            )
        return super().run_validation(data)


class ReviewStrategySerializer(serializers.Serializer):
    name = serializers.CharField(help_text="the review queue's `strategy` value")
    # The declared field shadows Field.label only for type checkers: DRF's metaclass takes it off the class.
    label = serializers.CharField()  # type: ignore[assignment]
    description = serializers.CharField(help_text="which cells come first")
    default = serializers.BooleanField(help_text="the review queue's strategy when none is asked for")


class ReviewCellSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    field = serializers.IntegerField(source="annotation_set.field_id")
    x = serializers.FloatField()
    y = serializers.FloatField()
    width = serializers.FloatField()
    height = serializers.FloatField()
    predicted_class = serializers.IntegerField(source="cell_class_id")
    countable = serializers.BooleanField()
    # A stored cell may lack a score (a detector-only box, an older run): it reads as null / empty, never a 500.
    p_countable = serializers.FloatField(source="scores.p_countable", allow_null=True)
    detector_score = serializers.FloatField(allow_null=True)
    probabilities = serializers.ListField(child=serializers.FloatField(), source="scores.probabilities", default=list)
    top3 = serializers.SerializerMethodField()
    uncertainty = serializers.DictField(child=serializers.FloatField(), source="scores.uncertainty", default=dict)
    model_version = serializers.IntegerField(source="annotation_set.model_version_id")
    field_width = serializers.IntegerField(source="annotation_set.field.width")
    field_height = serializers.IntegerField(source="annotation_set.field.height")

    def get_top3(self, cell: Any) -> list[dict[str, Any]]:
        probabilities = cell.scores.get("probabilities", [])
        ranked = sorted(range(len(probabilities)), key=lambda index: -probabilities[index])[:3]
        return [{"cell_class": i, "name": CLASS_NAMES[i], "probability": probabilities[i]} for i in ranked]


class ReviewBatchSerializer(serializers.Serializer):
    cells = ReviewCellSerializer(many=True, help_text="the cells you hold, in review order")
    conflicts = ConflictSerializer(many=True, help_text="adjudicators: escalated conflicts of queued cells, first")
    decided_today = serializers.IntegerField(help_text="cells you decided since midnight")
    expires_at = serializers.DateTimeField(help_text="your hold ends then unless the page renews it")


class ReviewRenewSerializer(serializers.Serializer):
    held = serializers.IntegerField()
    expires_at = serializers.DateTimeField()


class ReviewReleaseSerializer(serializers.Serializer):
    cells = serializers.ListField(
        child=StrictIntegerField(), required=False, help_text="these cells (skipped); omit to release all"
    )


class ReviewReleasedSerializer(serializers.Serializer):
    released = serializers.IntegerField()


class ReviewBoxSerializer(serializers.Serializer):
    x = serializers.FloatField()
    y = serializers.FloatField()
    width = serializers.FloatField()
    height = serializers.FloatField()


class ReviewDecisionSerializer(serializers.Serializer):
    cell = StrictIntegerField(help_text="a queued cell you hold")
    verdict = serializers.ChoiceField(choices=CellVerdict.choices)
    cell_class = StrictIntegerField(required=False, allow_null=True, help_text='"class" verdicts: the class')
    box = ReviewBoxSerializer(required=False, help_text="the corrected box (default: the model's)")
