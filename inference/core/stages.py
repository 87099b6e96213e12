"""The kinds of model a checkpoint file holds and the class list each one predicts.

The training stages (`training.core.stages.STAGES`: detector, countability, classifier) map onto these: the
classifier stage is an ensemble of `classifier_member` checkpoints.

The class lists are stored in every checkpoint and compared on load, so a model can never be used with a label
order it was not trained on.
"""

from __future__ import annotations

from enum import StrEnum

from annotations.taxonomy import CLASS_NAMES


class CheckpointStage(StrEnum):
    DETECTOR = "detector"
    COUNTABILITY = "countability"
    CLASSIFIER_MEMBER = "classifier_member"


# Detectors get one foreground class; torchvision adds background as label 0, so "cell" is label 1.
DETECTOR_CLASSES: tuple[str, ...] = ("cell",)
CELL_LABEL = 1
COUNTABILITY_CLASSES: tuple[str, ...] = ("uncountable", "countable")
COUNTABLE_INDEX = COUNTABILITY_CLASSES.index("countable")


def stage_classes(stage: CheckpointStage | str) -> tuple[str, ...]:
    """The class names a model of `stage` predicts, in output order."""
    return {
        CheckpointStage.DETECTOR: DETECTOR_CLASSES,
        CheckpointStage.COUNTABILITY: COUNTABILITY_CLASSES,
        CheckpointStage.CLASSIFIER_MEMBER: CLASS_NAMES,
    }[CheckpointStage(stage)]


def detector_num_classes() -> int:
    """torchvision's num_classes for a detector: foreground classes plus background."""
    return len(DETECTOR_CLASSES) + 1
