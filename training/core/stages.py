"""The stage registry: one row per model stage the platform trains, registers, gates and runs.

Everything that differs between stages is a field of its `StageSpec` -- its profile block, its examples, its
classes, its checkpoints, its main metric, the classes the gate guards -- so the runner, the job and registry
services, the registry's database choices and (through the API schema) the UI read the same table and no code
branches on a stage's name. How a stage's models are built, batched, trained and evaluated is the engine of its
`task` (`training.core.engine.ENGINES`): reading this table imports no torch, so web processes can.

A new stage is one more row here (plus an engine when its task is new, and a migration for the choices).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from annotations.taxonomy import CELL_CLASSES, NUM_CLASSES
from inference.core.profiles import ClassifierConfig, CountabilityConfig, DetectorConfig, Profile
from inference.core.stages import COUNTABLE_INDEX, CheckpointStage, stage_classes
from training.core.records import CropItem, FieldRecord, classifier_items, countability_items, whole_fields

StageModelConfig = DetectorConfig | CountabilityConfig | ClassifierConfig
# The classifier's promotion may not cost recall on any blast class (DESIGN.md "Promotion gate").
BLAST_CLASS_IDS: tuple[int, ...] = tuple(spec.id for spec in CELL_CLASSES if spec.is_blast)


class Task(StrEnum):
    """What a stage's models do, which decides the engine that trains and evaluates them."""

    DETECTION = "detection"  # whole fields in, cell boxes out
    CROPS = "crops"  # one crop per cell in, class probabilities out


@dataclass(frozen=True)
class StageSpec:
    name: str  # the registry's and the API's name
    label: str  # for people (admin, API schema)
    task: Task
    checkpoint_stage: CheckpointStage  # what the stage's checkpoint files say they hold
    main_metric: str  # picks the best epoch on val and decides the promotion gate (higher is better)
    model_config: Callable[[Profile], StageModelConfig]  # the stage's block of a profile
    examples: Callable[[Sequence[FieldRecord]], Sequence[Any]]  # what it trains on: fields with boxes, or cells
    examples_named: str  # those examples in words, for the "nothing to train on" error
    ensemble: bool = False  # one model per architecture of its profile block (members), else exactly one
    warmup_epochs: float = 0.0  # default linear learning-rate warm-up
    positive_class: int | None = None  # binary crop stages: the class whose probability is scored
    guarded_recall: tuple[int, ...] = ()  # classes whose recall a promotion may not lower

    @property
    def classes(self) -> tuple[str, ...]:
        """The class names its models predict, in output order."""
        return stage_classes(self.checkpoint_stage)

    def archs(self, profile: Profile) -> tuple[str, ...]:
        return self.model_config(profile).archs

    def model_folder(self, member: int | None, arch: str) -> str:
        """Where a run keeps one model's checkpoints (`<folder>/last.pt`, `best.pt`) under its output directory."""
        return self.name if member is None else f"member{member}_{arch}"


def _fields_with_boxes(fields: Sequence[FieldRecord]) -> list[FieldRecord]:
    return [field for field in whole_fields(fields) if field.cells]


def _classified_cells(fields: Sequence[FieldRecord]) -> list[CropItem]:
    return classifier_items(fields, NUM_CLASSES)


DETECTOR = StageSpec(
    name="detector",
    label="Detector",
    task=Task.DETECTION,
    checkpoint_stage=CheckpointStage.DETECTOR,
    main_metric="ap50",
    model_config=lambda profile: profile.detector,
    examples=_fields_with_boxes,
    examples_named="fields with at least one cell box",
    warmup_epochs=1.0,
)
COUNTABILITY = StageSpec(
    name="countability",
    label="Countability",
    task=Task.CROPS,
    checkpoint_stage=CheckpointStage.COUNTABILITY,
    # Balanced accuracy: uncountable cells are the minority; plain accuracy rewards calling every cell countable.
    main_metric="balanced_accuracy",
    model_config=lambda profile: profile.countability,
    examples=countability_items,
    examples_named="cells",
    positive_class=COUNTABLE_INDEX,
)
CLASSIFIER = StageSpec(
    name="classifier",
    label="Cell classifier (ensemble)",
    task=Task.CROPS,
    checkpoint_stage=CheckpointStage.CLASSIFIER_MEMBER,
    main_metric="macro_f1",
    model_config=lambda profile: profile.classifier,
    examples=_classified_cells,
    examples_named="countable cells with a known class",
    ensemble=True,
    guarded_recall=BLAST_CLASS_IDS,
)

# In training order: the pipeline runs them in this order too.
STAGES: dict[str, StageSpec] = {spec.name: spec for spec in (DETECTOR, COUNTABILITY, CLASSIFIER)}


def stage_spec(name: str) -> StageSpec:
    """The row of stage `name`; ValueError naming the valid stages for any other name."""
    try:
        return STAGES[name]
    except KeyError:
        raise ValueError(f"unknown stage {name!r}; expected one of {', '.join(STAGES)}") from None


# Self-supervised pretraining (training.core.pretrain) serves the crop stages and the detector's backbone.
DETECTOR_BACKBONE = "detector-backbone"
PRETRAIN_STAGES: tuple[str, ...] = (CLASSIFIER.name, COUNTABILITY.name, DETECTOR_BACKBONE)


def pretrain_archs(stage: str, profile: Profile) -> tuple[str, ...]:
    """The architectures a pretraining stage makes starting points for (each ensemble member of the classifier)."""
    if stage == DETECTOR_BACKBONE:
        return (profile.detector.arch,)
    if stage in PRETRAIN_STAGES:
        return stage_spec(stage).archs(profile)
    raise ValueError(f"unknown pretraining stage {stage!r}; expected one of {', '.join(PRETRAIN_STAGES)}")


def starting_point_names(name: str, archs: Sequence[str]) -> list[str]:
    """The starting point of each network: the name itself for one network, '<name>-<arch>' for ensemble members."""
    return [name] if len(archs) == 1 else [f"{name}-{arch}" for arch in archs]
