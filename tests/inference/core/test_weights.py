from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import timm
import torch
import torchvision

from inference.core.nets import build_classifier, build_detector
from inference.core.weights import (
    StartingPointError,
    apply_starting_point,
    file_sha256,
    prepare_starting_point,
    read_state_dict,
)


def test_a_timm_state_dict_fits_its_arch_without_the_head() -> None:
    source = timm.create_model("test_resnet", pretrained=False).state_dict()
    state, report = prepare_starting_point("test_resnet", source)
    assert report.layout == "as is"
    assert set(report.skipped_head) == {"fc.weight", "fc.bias"}
    assert len(report.matched) == len(source) - 2
    assert not report.missing
    assert not report.unexpected
    assert "fc.weight" not in state


def test_another_arch_is_refused_with_the_shapes_named() -> None:
    with pytest.raises(StartingPointError, match=r"another shape.*bn1\.weight"):
        prepare_starting_point("test_resnet", timm.create_model("test_efficientnet").state_dict())


def test_a_file_with_nothing_in_common_is_refused() -> None:
    with pytest.raises(StartingPointError, match="no tensor of the file fits test_resnet"):
        prepare_starting_point("test_resnet", {"encoder.w": torch.zeros(3)})


def test_torchvision_vgg16_goes_under_ssd_and_resnet_under_an_fpn() -> None:
    vgg = torchvision.models.vgg16(weights=None).state_dict()
    state, report = prepare_starting_point("ssd300_vgg16", vgg)
    assert report.layout == "torchvision vgg16 -> ssd feature extractor"
    assert len(report.matched) == 26  # the 13 convolutions of VGG16
    assert torch.equal(state["extra.0.5.weight"], vgg["features.28.weight"])  # conv5_3
    resnet = torchvision.models.resnet18(weights=None).state_dict()
    state, report = prepare_starting_point("retinanet_resnet18_fpn", resnet)
    assert report.layout == "torchvision classifier -> fpn body"
    assert torch.equal(state["body.layer4.1.conv2.weight"], resnet["layer4.1.conv2.weight"])
    assert all(key.startswith("fpn.") for key in report.missing)


def test_a_wrapped_checkpoint_is_read_and_a_stored_point_loads_into_a_model(tmp_path: Path) -> None:
    source: Any = timm.create_model("test_resnet", pretrained=False)
    wrapped = tmp_path / "wrapped.pth"
    torch.save({"model": {f"module.{k}": v for k, v in source.state_dict().items()}, "epoch": 3}, wrapped)
    state, _ = prepare_starting_point("test_resnet", read_state_dict(wrapped))
    stored = tmp_path / "point.pt"
    torch.save(state, stored)
    model: Any = build_classifier("test_resnet", 5)
    report = apply_starting_point(model, "test_resnet", stored, sha256=file_sha256(stored))
    assert torch.equal(model.conv1[0].weight, source.conv1[0].weight)
    assert model.fc.weight.shape[0] == 5
    assert len(report.matched) == len(state)
    with pytest.raises(StartingPointError, match="sha256 differs"):
        apply_starting_point(model, "test_resnet", stored, sha256="0" * 64)


def test_a_detector_point_loads_into_the_backbone(tmp_path: Path) -> None:
    torch.manual_seed(0)
    pretrained: Any = build_detector("fcos_convnet_tiny")
    state, report = prepare_starting_point("fcos_convnet_tiny", pretrained.state_dict())
    assert report.layout == "detector checkpoint's backbone"
    assert not report.missing
    stored = tmp_path / "backbone.pt"
    torch.save(state, stored)
    model: Any = build_detector("fcos_convnet_tiny")
    apply_starting_point(model, "fcos_convnet_tiny", stored)
    assert torch.equal(model.backbone.stages[0][0][0].weight, pretrained.backbone.stages[0][0][0].weight)
