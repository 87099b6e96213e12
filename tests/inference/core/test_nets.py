from __future__ import annotations

from typing import Any

import pytest
import torch

from inference.core.nets import (
    DETECTOR_ARCHS,
    build_classifier,
    build_detector,
    configure_detector_postprocess,
)


def test_supported_detectors_cover_the_required_torchvision_models() -> None:
    required = {
        "retinanet_resnet50_fpn",
        "retinanet_resnet50_fpn_v2",
        "ssd300_vgg16",
        "ssdlite320_mobilenet_v3_large",
        "fasterrcnn_resnet50_fpn",
        "fasterrcnn_resnet50_fpn_v2",
        "fasterrcnn_mobilenet_v3_large_fpn",
        "fasterrcnn_mobilenet_v3_large_320_fpn",
        "fcos_resnet50_fpn",
    }
    assert required <= set(DETECTOR_ARCHS)


def test_unknown_detector_lists_the_supported_ones() -> None:
    with pytest.raises(ValueError, match="unknown detector arch 'yolo'") as error:
        build_detector("yolo")
    assert all(arch in str(error.value) for arch in DETECTOR_ARCHS)


def test_invalid_detector_kwargs_name_the_arch() -> None:
    with pytest.raises(ValueError, match=r"retinanet_resnet18_fpn: invalid detector kwargs \['min_sise'\]"):
        build_detector("retinanet_resnet18_fpn", min_sise=100)
    with pytest.raises(ValueError, match=r"invalid detector kwargs \['box_score_thresh'\]"):
        build_detector("ssdlite320_mobilenet_v3_large", box_score_thresh=0.5)
    with pytest.raises(ValueError, match="only for SSD"):
        build_detector("retinanet_resnet18_fpn", size=100)


@pytest.mark.parametrize(
    ("arch", "kwargs"),
    [
        ("ssdlite320_mobilenet_v3_large", {"size": [96, 64]}),
        ("fasterrcnn_mobilenet_v3_large_320_fpn", {"min_size": 64, "max_size": 96}),
        ("retinanet_resnet18_fpn", {"min_size": 64, "max_size": 96}),
        ("fcos_resnet18_fpn", {"min_size": 64, "max_size": 96, "trainable_backbone_layers": 3}),
        ("fcos_convnet_small", {"min_size": 64, "max_size": 96}),
        ("fcos_convnet_tiny", {"min_size": 64, "max_size": 96}),
    ],
)
def test_detectors_predict_one_foreground_class(arch: str, kwargs: dict[str, object]) -> None:
    torch.manual_seed(0)
    model = build_detector(arch, **kwargs).eval()
    configure_detector_postprocess(model, score_threshold=0.0, nms_iou=0.5, max_detections=4)
    with torch.inference_mode():
        outputs = model([torch.rand(3, 60, 90), torch.rand(3, 50, 50)])
    for output in outputs:
        assert output["boxes"].shape == (4, 4)
        # Sigmoid heads (RetinaNet, FCOS) also score the unused background channel (label 0), which the
        # pipeline drops; softmax heads never return it.
        assert set(output["labels"].tolist()) <= {0, 1}
        assert ((output["scores"] >= 0) & (output["scores"] <= 1)).all()


def test_convnet_fcos_levels_and_options() -> None:
    model = build_detector("fcos_convnet_small", min_size=96, max_size=128)
    backbone: Any = model.backbone
    features = backbone(torch.rand(2, 3, 96, 128))
    assert [tuple(f.shape) for f in features.values()] == [(2, 64, 12, 16), (2, 64, 6, 8), (2, 64, 3, 4)]
    model.train()
    losses = model(
        [torch.rand(3, 96, 128)], [{"boxes": torch.tensor([[10.0, 10.0, 50.0, 40.0]]), "labels": torch.tensor([1])}]
    )
    assert set(losses) == {"classification", "bbox_regression", "bbox_ctrness"}
    assert build_detector("fcos_convnet_tiny", anchor_sizes=[[16], [32], [64]]).anchor_generator.sizes == (
        (16,),
        (32,),
        (64,),
    )
    with pytest.raises(ValueError, match="whole backbone"):
        build_detector("fcos_convnet_small", trainable_backbone_layers=3)


def test_random_init_backbones_have_trainable_batch_norm() -> None:
    model = build_detector("retinanet_resnet18_fpn")
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.backbone.modules())
    assert all(p.requires_grad for p in model.backbone.body.parameters())


def test_ssd_size_sets_the_fixed_input() -> None:
    model = build_detector("ssdlite320_mobilenet_v3_large", size=[96, 64])
    assert model.transform.fixed_size == (96, 64)


def test_custom_anchors_rebuild_the_head_when_the_count_changes() -> None:
    sizes = [[24, 32], [48, 64], [96, 128], [192, 256], [384, 512]]
    model: Any = build_detector("retinanet_resnet18_fpn", min_size=64, max_size=96, anchor_sizes=sizes).eval()
    assert model.anchor_generator.num_anchors_per_location()[0] == 6  # 2 sizes x 3 default aspect ratios
    assert model.head.classification_head.num_anchors == 6
    configure_detector_postprocess(model, score_threshold=0.0, nms_iou=0.5, max_detections=3)
    with torch.inference_mode():
        assert model([torch.rand(3, 64, 96)])[0]["boxes"].shape == (3, 4)


def test_faster_rcnn_anchor_sizes_and_postprocess_go_to_its_submodules() -> None:
    model = build_detector(
        "fasterrcnn_mobilenet_v3_large_320_fpn", anchor_sizes=[[32, 64]] * 3, anchor_aspect_ratios=[1.0]
    )
    assert model.rpn.head.cls_logits.out_channels == 2
    configure_detector_postprocess(model, score_threshold=0.25, nms_iou=0.4, max_detections=7)
    assert (model.roi_heads.score_thresh, model.roi_heads.nms_thresh, model.roi_heads.detections_per_img) == (
        0.25,
        0.4,
        7,
    )


def test_fcos_needs_one_anchor_per_location() -> None:
    with pytest.raises(ValueError, match="one anchor per location"):
        build_detector("fcos_resnet18_fpn", anchor_sizes=[[8, 16]] * 5)


def test_classifier_has_the_requested_classes() -> None:
    model = build_classifier("test_resnet", 21).eval()
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 21)


def test_unknown_classifier_suggests_close_names() -> None:
    with pytest.raises(ValueError, match=r"unknown timm classifier arch 'resnet5O'.*resnet50"):
        build_classifier("resnet5O", 21)


def test_detector_shrinks_fields_with_antialiasing() -> None:
    # Pixel noise shrunk 10x: antialiasing averages it out; plain bilinear sampling keeps most of its spread.
    model: Any = build_detector("fcos_convnet_tiny", min_size=64, max_size=64).eval()
    noise = torch.rand(3, 640, 640, generator=torch.Generator().manual_seed(0))
    batch, _ = model.transform([noise])
    assert batch.image_sizes == [(64, 64)]
    # The transform also normalises: undo it to compare with the input's standard deviation (~0.29).
    std = torch.tensor(model.transform.image_std)[:, None, None]
    assert float((batch.tensors[0] * std).std()) < 0.1
    target = {"boxes": torch.tensor([[100.0, 200.0, 300.0, 400.0]]), "labels": torch.tensor([1])}
    model.train()
    _, targets = model.transform([noise], [target])
    assert targets is not None
    assert torch.allclose(targets[0]["boxes"], torch.tensor([[10.0, 20.0, 30.0, 40.0]]))
