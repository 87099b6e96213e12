"""Training runs that start from a starting point: the named weights are loaded, the init kind's recipe is used,
and the checkpoint records which weights it came from; an unregistered name fails before anything trains."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import timm
import torch

from inference.core.checkpoints import load_checkpoint, read_meta
from inference.core.nets import build_detector
from inference.core.profiles import Profile, TrainingConfig
from inference.core.weights import file_sha256, prepare_starting_point
from training.core.config import StartingPointRef, TrainConfig
from training.core.records import FieldRecord
from training.core.stage_run import train_stage

# A recipe whose rate is so small that one epoch leaves the convolutions where the starting point put them.
FROZEN = TrainingConfig(optimizer="adamw", lr=1e-12, weight_decay=0.0, batch_size=8, epochs=1, cosine_t_max=1)


@pytest.fixture(scope="module")
def point(tmp_path_factory: pytest.TempPathFactory) -> StartingPointRef:
    torch.manual_seed(123)
    state, _ = prepare_starting_point("test_resnet", timm.create_model("test_resnet", pretrained=False).state_dict())
    path = tmp_path_factory.mktemp("points") / "tr.pt"
    torch.save(state, path)
    return StartingPointRef(name="tr-local", arch="test_resnet", path=str(path), sha256=file_sha256(path))


def test_an_ensemble_member_starts_from_its_point_with_the_pretrained_recipe(
    train_profile: Profile, small_fields: list[FieldRecord], point: StartingPointRef, tmp_path: Path
) -> None:
    classifier = dataclasses.replace(
        train_profile.classifier, init=("starting-point:tr-local", "scratch"), training_pretrained=FROZEN
    )
    profile = dataclasses.replace(train_profile, classifier=classifier)
    config = TrainConfig(stage="classifier", profile=profile, starting_points={point.name: point})
    result = train_stage(config, small_fields, tmp_path / "run")
    assert result.starting_points == [{"name": "tr-local", "sha256": point.sha256}, None]
    pretrained, scratch = (read_meta(path) for path in result.checkpoints)
    assert pretrained.config["starting_point"] == {"name": "tr-local", "sha256": point.sha256, "arch": "test_resnet"}
    assert pretrained.config["init"] == "starting-point:tr-local"
    assert pretrained.config["lr"] == pytest.approx(1e-12)
    assert pretrained.config["epochs"] == 1
    assert scratch.config["starting_point"] is None
    assert scratch.config["lr"] == pytest.approx(3e-3)
    assert [row["member"] for row in result.history] == [0, 1, 1, 1], "each member runs its own recipe's epochs"
    loaded = load_checkpoint(result.checkpoints[0]).model.state_dict()
    stored = torch.load(point.path, weights_only=True)
    assert torch.allclose(loaded["conv1.0.weight"], stored["conv1.0.weight"], atol=1e-6)


def test_an_unregistered_starting_point_fails_before_training(
    train_profile: Profile, small_fields: list[FieldRecord], tmp_path: Path
) -> None:
    classifier = dataclasses.replace(
        train_profile.classifier, init=("scratch", "imagenet-local:missing"), training_pretrained=FROZEN
    )
    config = TrainConfig(stage="classifier", profile=dataclasses.replace(train_profile, classifier=classifier))
    with pytest.raises(ValueError, match=r"starting point 'missing', which is not registered.*import_weights"):
        train_stage(config, small_fields, tmp_path / "run")
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").rglob("*.pt"))


def test_a_point_of_another_arch_is_refused(
    train_profile: Profile, small_fields: list[FieldRecord], point: StartingPointRef, tmp_path: Path
) -> None:
    countability = dataclasses.replace(
        train_profile.countability, arch="test_efficientnet", init="starting-point:tr-local", training_pretrained=FROZEN
    )
    config = TrainConfig(
        stage="countability",
        profile=dataclasses.replace(train_profile, countability=countability),
        starting_points={point.name: point},
    )
    with pytest.raises(ValueError, match="is for test_resnet, the model is test_efficientnet"):
        train_stage(config, small_fields, tmp_path / "run")


def test_a_detector_starts_from_a_backbone_point(
    train_profile: Profile, small_fields: list[FieldRecord], tmp_path: Path
) -> None:
    torch.manual_seed(7)
    pretrained: Any = build_detector("fcos_convnet_tiny", min_size=64, max_size=64)
    state, _ = prepare_starting_point("fcos_convnet_tiny", pretrained.state_dict())
    path = tmp_path / "ssl-detector.pt"
    torch.save(state, path)
    point = StartingPointRef(name="ssl-det", arch="fcos_convnet_tiny", path=str(path), sha256=file_sha256(path))
    detector = dataclasses.replace(
        train_profile.detector, init="starting-point:ssl-det", training_pretrained=dataclasses.replace(FROZEN, epochs=1)
    )
    config = TrainConfig(
        stage="detector",
        profile=dataclasses.replace(train_profile, detector=detector),
        starting_points={point.name: point},
        overrides={"warmup_epochs": 0},
    )
    result = train_stage(config, small_fields, tmp_path / "run")
    assert result.starting_points == [{"name": "ssl-det", "sha256": point.sha256}]
    trained = load_checkpoint(result.checkpoints[0]).model.state_dict()
    key = "backbone.stages.0.0.0.weight"
    assert torch.allclose(trained[key], pretrained.state_dict()[key], atol=1e-6), "the backbone came from the point"
