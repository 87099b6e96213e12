"""A tiny profile and a synthetic dataset so real training runs finish in seconds on one CPU thread."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from inference.core.profiles import (
    ClassifierConfig,
    CountabilityConfig,
    DetectorConfig,
    Normalisation,
    Profile,
    TrainingConfig,
)
from tests.models_on_disk import TEST_PROFILE, write_profiles_file
from tests.training.synthetic import make_dataset
from training.core.records import FieldRecord

TINY_TRAINING = TrainingConfig(optimizer="adamw", lr=3e-3, weight_decay=1e-4, batch_size=8, epochs=3, cosine_t_max=3)


def make_train_profile() -> Profile:
    return Profile(
        name="train-tiny",
        description="tiny nets for training tests",
        device="cpu",
        normalisation=Normalisation(mean=(0.5, 0.45, 0.4), std=(0.25, 0.25, 0.25)),
        context_margin=0.15,
        crop_batch_size=16,
        detector=DetectorConfig(
            arch="fcos_convnet_tiny",
            score_threshold=0.3,
            nms_iou=0.5,
            max_detections=10,
            batch_size=8,
            training=TrainingConfig(
                optimizer="adamw", lr=3e-3, weight_decay=1e-4, batch_size=4, epochs=6, cosine_t_max=6
            ),
            min_size=64,
            max_size=64,
        ),
        countability=CountabilityConfig(arch="test_resnet", input_size=32, training=TINY_TRAINING),
        classifier=ClassifierConfig(archs=("test_resnet", "test_efficientnet"), input_size=32, training=TINY_TRAINING),
    )


@pytest.fixture(scope="session", autouse=True)
def _one_thread() -> Iterator[None]:
    """One torch thread (session-wide, so module-scoped training fixtures get it too): the machine is shared."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def train_profile() -> Profile:
    return make_train_profile()


@pytest.fixture(scope="session")
def synthetic_fields(tmp_path_factory: pytest.TempPathFactory) -> list[FieldRecord]:
    return make_dataset(tmp_path_factory.mktemp("synthetic") / "fields", fields=48)


@pytest.fixture(scope="session")
def small_fields(tmp_path_factory: pytest.TempPathFactory) -> list[FieldRecord]:
    """24 fields, for the quick resume/determinism runs."""
    return make_dataset(tmp_path_factory.mktemp("small") / "fields", fields=24, seed=1)


# --- the platform's tests (training jobs, registry, API) ------------------------------------------------------------


@pytest.fixture
def training_env(settings: Any, tmp_path: Path) -> Path:
    """Models, snapshots and the profiles file (with the tiny test profile) in this test's folder."""
    settings.AICELL_MODEL_DIR = tmp_path / "models"
    settings.AICELL_DATASET_DIR = tmp_path / "datasets"
    settings.AICELL_PROFILES_FILE = write_profiles_file(tmp_path)
    settings.AICELL_PROFILE = TEST_PROFILE
    settings.AICELL_DEVICE = "cpu"
    return tmp_path
