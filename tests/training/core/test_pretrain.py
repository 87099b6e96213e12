"""Self-supervised pretraining: tiny real SimCLR runs on the synthetic fields (no labels read)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
import timm
import torch

from inference.core.nets import build_detector
from inference.core.profiles import Profile
from inference.core.weights import apply_starting_point, prepare_starting_point
from training.core.pretrain import (
    DETECTOR_BACKBONE,
    PretrainProgress,
    PretrainSettings,
    pretrain_stage,
)
from training.core.records import FieldRecord

CLASSIFIER, COUNTABILITY = "classifier", "countability"

TINY = PretrainSettings(epochs=2, batch_size=8, hidden_dim=32, projection_dim=16, tile_size=32, tiles_per_field=2)


def _unlabelled(fields: list[FieldRecord]) -> list[FieldRecord]:
    """The same boxes with no class and no countable flag known: what predictions and unlabelled fields give."""
    return [
        dataclasses.replace(
            record, cells=tuple(dataclasses.replace(c, class_index=None, countable=True) for c in record.cells)
        )
        for record in fields
    ]


def test_countability_pretraining_learns_a_timm_starting_point(
    train_profile: Profile, small_fields: list[FieldRecord], tmp_path: Path
) -> None:
    seen: list[PretrainProgress] = []
    [result] = pretrain_stage(
        COUNTABILITY, train_profile, _unlabelled(small_fields), tmp_path, TINY, on_progress=seen.append
    )
    assert result.arch == "test_resnet"
    assert result.epochs_run == 2
    assert not result.stopped_early
    assert result.examples == sum(len(record.cells) for record in small_fields)
    assert all(math.isfinite(row["loss"]) for row in result.history)
    assert seen
    assert seen[-1].fraction == 1.0
    assert seen[-1].epoch == 2
    state = torch.load(result.path, weights_only=True)
    assert not any(key.startswith("fc.") for key in state)  # no classifier head: any class count can use it
    model = timm.create_model("test_resnet", pretrained=False, num_classes=2)
    report = apply_starting_point(model, "test_resnet", result.path)
    assert not report.missing  # every backbone tensor (the head is the stage's own)
    assert not report.unexpected
    key = next(k for k in state if k.endswith("weight") and state[k].dim() == 4)
    assert torch.equal(model.state_dict()[key], state[key])
    # Pretraining changed the weights (they are not the random init of the same seed).
    assert not torch.equal(timm.create_model("test_resnet", num_classes=2).state_dict()[key], state[key])


def test_classifier_pretraining_gives_one_starting_point_per_member(
    train_profile: Profile, small_fields: list[FieldRecord], tmp_path: Path
) -> None:
    results = pretrain_stage(CLASSIFIER, train_profile, small_fields, tmp_path, dataclasses.replace(TINY, epochs=1))
    assert [r.arch for r in results] == ["test_resnet", "test_efficientnet"]
    for result in results:
        report = apply_starting_point(timm.create_model(result.arch, num_classes=21), result.arch, result.path)
        assert not report.unexpected
        assert not report.missing


def test_detector_backbone_pretraining_loads_into_the_detector(
    train_profile: Profile, small_fields: list[FieldRecord], tmp_path: Path
) -> None:
    [result] = pretrain_stage(DETECTOR_BACKBONE, train_profile, small_fields, tmp_path, TINY)
    assert result.arch == "fcos_convnet_tiny"
    assert math.isfinite(result.history[-1]["loss"])
    detector = build_detector("fcos_convnet_tiny", **train_profile.detector.model_kwargs())
    detector.backbone.load_state_dict(torch.load(result.path, weights_only=True))  # strict: every tensor
    _, report = prepare_starting_point("fcos_convnet_tiny", torch.load(result.path, weights_only=True))
    assert report.layout == "as is"
    assert not report.missing


def test_time_limit_stops_after_the_running_step(
    train_profile: Profile, small_fields: list[FieldRecord], tmp_path: Path
) -> None:
    [result] = pretrain_stage(
        COUNTABILITY, train_profile, small_fields, tmp_path, dataclasses.replace(TINY, epochs=50, time_limit_s=0.0)
    )
    assert result.stopped_early
    assert result.epochs_run == 1
    assert result.history[0]["steps"] == 1
    assert result.path.is_file()


def test_bad_input_is_refused_before_anything_is_written(train_profile: Profile, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown pretraining stage"):
        pretrain_stage("detector", train_profile, [], tmp_path / "a", TINY)
    with pytest.raises(ValueError, match="at least 2 needed"):
        pretrain_stage(CLASSIFIER, train_profile, [], tmp_path / "b", TINY)
    assert not (tmp_path / "a").exists()
    assert not (tmp_path / "b").exists()
