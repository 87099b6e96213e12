"""A tiny profile and tiny models so pipeline-level tests run in seconds on 2 CPU cores."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from annotations.taxonomy import NUM_CLASSES
from inference.core.nets import build_classifier, build_detector
from inference.core.profiles import (
    ClassifierConfig,
    CountabilityConfig,
    DetectorConfig,
    Normalisation,
    Profile,
    TrainingConfig,
)
from inference.core.stages import COUNTABILITY_CLASSES
from tests.models_on_disk import register_active_versions, write_profiles_file, write_random_checkpoints

TRAINING = TrainingConfig(optimizer="adamw", lr=1e-3, weight_decay=0.0, batch_size=4, epochs=1, cosine_t_max=1)


def make_tiny_profile() -> Profile:
    return Profile(
        name="tiny",
        description="test profile",
        device="cpu",
        normalisation=Normalisation(mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3)),
        context_margin=0.2,
        crop_batch_size=4,  # smaller than the crop count, so batching is exercised
        detector=DetectorConfig(
            arch="ssdlite320_mobilenet_v3_large",
            score_threshold=0.0,
            nms_iou=0.5,
            max_detections=5,
            batch_size=1,
            training=TRAINING,
            kwargs={"size": 128},
        ),
        countability=CountabilityConfig(arch="test_efficientnet", input_size=40, training=TRAINING),
        classifier=ClassifierConfig(archs=("test_resnet", "test_efficientnet"), input_size=32, training=TRAINING),
    )


@pytest.fixture(scope="session")
def tiny_profile() -> Profile:
    return make_tiny_profile()


@pytest.fixture(scope="session")
def _tiny_models_once(tiny_profile: Profile) -> tuple[nn.Module, nn.Module, list[nn.Module]]:
    torch.manual_seed(0)
    detector = build_detector(tiny_profile.detector.arch, **tiny_profile.detector.model_kwargs())
    countability = build_classifier(tiny_profile.countability.arch, len(COUNTABILITY_CLASSES))
    members = [build_classifier(arch, NUM_CLASSES) for arch in tiny_profile.classifier.archs]
    return detector, countability, members


@pytest.fixture
def tiny_models(_tiny_models_once: tuple[nn.Module, nn.Module, list[nn.Module]]) -> tuple[nn.Module, ...]:
    """Fresh copies per test: a Pipeline takes over (and may wrap) the modules it is given."""
    return copy.deepcopy(_tiny_models_once)


@pytest.fixture(scope="session")
def model_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, list[str]]]:
    """Random checkpoints of every stage, written once per test session."""
    folder = tmp_path_factory.mktemp("models")
    return folder, write_profiles_file(folder), write_random_checkpoints(folder)


@pytest.fixture
def active_models(settings: Any, model_files: tuple[Path, Path, dict[str, list[str]]], db: None) -> dict[str, Any]:
    folder, profiles_file, paths = model_files
    settings.AICELL_MODEL_DIR = folder
    settings.AICELL_PROFILES_FILE = profiles_file
    return register_active_versions(paths)
