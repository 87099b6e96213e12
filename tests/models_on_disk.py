"""Real, randomly initialised checkpoints of every stage, registered as the active model versions.

They use a test profile (a profiles file of its own, as a lab would add one) whose detector keeps its top few
boxes whatever their score, so that an untrained pipeline still produces cells to store and review.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from training.core.stages import STAGES
from training.models import ModelStatus, ModelVersion

TEST_PROFILE = "test-tiny"
_PROFILE = {
    "description": "tiny nets for tests",
    "device": "cpu",
    "normalisation": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
    "crops": {"context_margin": 0.15, "batch_size": 64},
    "detector": {
        "arch": "ssdlite320_mobilenet_v3_large",
        "kwargs": {"size": 160},
        "score_threshold": 0.0,
        "nms_iou": 0.5,
        "max_detections": 3,
        "batch_size": 4,
        "training": {
            "optimizer": "adamw",
            "lr": 1.0e-3,
            "weight_decay": 0.0,
            "batch_size": 4,
            "epochs": 1,
            "cosine_t_max": 1,
        },
    },
    "countability": {
        "arch": "mobilenetv3_small_050",
        "input_size": 48,
        "training": {
            "optimizer": "adamw",
            "lr": 1.0e-3,
            "weight_decay": 0.0,
            "batch_size": 8,
            "epochs": 1,
            "cosine_t_max": 1,
        },
    },
    "classifier": {
        "archs": ["mobilenetv3_small_050", "lcnet_050"],
        "input_size": 48,
        "training": {
            "optimizer": "adamw",
            "lr": 1.0e-3,
            "weight_decay": 0.0,
            "batch_size": 8,
            "epochs": 1,
            "cosine_t_max": 1,
        },
    },
}


def write_profiles_file(folder: Path) -> Path:
    from inference.core.profiles import PROFILES_PATH

    profiles = yaml.safe_load(PROFILES_PATH.read_text())
    profiles[TEST_PROFILE] = _PROFILE
    path = folder / "profiles.yaml"
    path.write_text(yaml.safe_dump(profiles))
    return path


def write_random_checkpoints(model_dir: Path, *, classes: Any = None) -> dict[str, list[str]]:
    """One checkpoint per stage model, paths relative to `model_dir`."""
    import torch

    from annotations.taxonomy import CLASS_NAMES
    from inference.core.checkpoints import CheckpointMeta, build_model, save_checkpoint
    from inference.core.profiles import profile_from_dict
    from inference.core.stages import COUNTABILITY_CLASSES, DETECTOR_CLASSES, CheckpointStage

    torch.manual_seed(0)
    profile = profile_from_dict(TEST_PROFILE, _PROFILE)
    mean, std = profile.normalisation.mean, profile.normalisation.std
    metas = {
        "detector": [
            CheckpointMeta(
                stage=CheckpointStage.DETECTOR.value,
                arch=profile.detector.arch,
                classes=DETECTOR_CLASSES,
                profile=TEST_PROFILE,
                model_kwargs=profile.detector.model_kwargs(),
                mean=mean,
                std=std,
            )
        ],
        "countability": [
            CheckpointMeta(
                stage=CheckpointStage.COUNTABILITY.value,
                arch=profile.countability.arch,
                classes=COUNTABILITY_CLASSES,
                profile=TEST_PROFILE,
                input_size=profile.countability.input_size,
                mean=mean,
                std=std,
            )
        ],
        "classifier": [
            CheckpointMeta(
                stage=CheckpointStage.CLASSIFIER_MEMBER.value,
                arch=arch,
                classes=tuple(classes or CLASS_NAMES),
                profile=TEST_PROFILE,
                input_size=profile.classifier.input_size,
                mean=mean,
                std=std,
            )
            for arch in profile.classifier.archs
        ],
    }
    paths: dict[str, list[str]] = {}
    for stage, stage_metas in metas.items():
        for index, meta in enumerate(stage_metas):
            relative = f"{stage}/{meta.arch}-{index}.pt"
            save_checkpoint(model_dir / relative, build_model(meta), meta)
            paths.setdefault(stage, []).append(relative)
    return paths


def register_active_versions(paths: dict[str, list[str]]) -> dict[str, ModelVersion]:
    versions = {}
    for stage in STAGES:
        versions[stage] = ModelVersion.objects.create(
            stage=stage,
            profile=TEST_PROFILE,
            architecture="+".join(Path(p).stem for p in paths[stage]),
            checkpoints=paths[stage],
            status=ModelStatus.ACTIVE,
        )
    return versions
