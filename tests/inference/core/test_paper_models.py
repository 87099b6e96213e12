"""The `paper` profile builds the seed paper's networks: SSD300-VGG16, a ResNet50 countability model and the
ResNeXt101_32x8d + ResNeXt50_32x4d + ResNet50 ensemble (random init here; on CPU, one small SSD forward)."""

from __future__ import annotations

from typing import Any

import torch
from torchvision.models.detection.ssd import SSD, SSDFeatureExtractorVGG

from inference.core.nets import build_classifier, build_detector, configure_detector_postprocess
from inference.core.profiles import get_profile
from inference.core.stages import CELL_LABEL


def test_the_paper_detector_is_ssd300_vgg16_and_trains_and_detects_on_a_field() -> None:
    config = get_profile("paper").detector
    torch.manual_seed(0)
    model: Any = build_detector(config.arch, **config.model_kwargs())
    assert isinstance(model, SSD)
    assert isinstance(model.backbone, SSDFeatureExtractorVGG)
    assert model.transform.fixed_size == (300, 300)
    field = torch.rand(3, 240, 320)
    target = {"boxes": torch.tensor([[40.0, 30.0, 90.0, 80.0]]), "labels": torch.tensor([CELL_LABEL])}
    model.train()
    losses = model([field], [target])
    assert set(losses) == {"bbox_regression", "classification"}
    assert all(torch.isfinite(loss) for loss in losses.values())
    configure_detector_postprocess(
        model, score_threshold=0.0, nms_iou=config.nms_iou, max_detections=config.max_detections
    )
    with torch.no_grad():
        output = model.eval()([field])[0]
    assert len(output["boxes"]) == config.max_detections, "the profile's cap, not SSD's 200"
    # Boxes come back in field coordinates (320 x 240), not in SSD's 300 x 300 input.
    assert 300 < float(output["boxes"][:, 2].max()) <= 320 + 1e-3
    assert float(output["boxes"][:, 3].max()) <= 240 + 1e-3


def test_the_paper_crop_models_are_the_seeds_resnet_and_ensemble() -> None:
    profile = get_profile("paper")
    built: dict[str, Any] = {
        arch: build_classifier(arch, 21 if arch in profile.classifier.archs else 2)
        for arch in (profile.countability.arch, *profile.classifier.archs)
    }
    assert list(built) == ["resnet50", "resnext101_32x8d", "resnext50_32x4d"]
    widths = {arch: (model.layer1[0].conv2.groups, model.layer1[0].conv2.out_channels) for arch, model in built.items()}
    assert widths == {"resnet50": (1, 64), "resnext101_32x8d": (32, 256), "resnext50_32x4d": (32, 128)}
    assert [len(model.layer3) for model in built.values()] == [6, 23, 6]
    assert built["resnet50"].fc.out_features == 21
