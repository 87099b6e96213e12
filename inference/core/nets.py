"""Model construction: torchvision detectors (stage 1) and timm classifiers (stages 2 and 3).

Every network starts from random init: torchvision's `weights`/`weights_backbone` are always None and timm's
`pretrained` is always False. Weights come only from local files: a registered starting point
(`inference.core.weights`) or a full checkpoint (`inference.core.checkpoints`).
"""

from __future__ import annotations

import difflib
import inspect
import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import timm
import torch
from torch import Tensor, nn
from torchvision.models import detection
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
from torchvision.models.detection.fcos import FCOSHead
from torchvision.models.detection.retinanet import RetinaNetHead
from torchvision.models.detection.rpn import RPNHead
from torchvision.models.detection.ssd import SSD
from torchvision.models.detection.transform import GeneralizedRCNNTransform, resize_boxes
from torchvision.ops.feature_pyramid_network import LastLevelP6P7

from inference.core.stages import detector_num_classes

logger = logging.getLogger(__name__)

DetectorBuilder = Callable[..., nn.Module]


class NullDetector(nn.Module):
    """The `null` kind's detector: `cells` fixed boxes on a grid over each field, score 0.9, no computation.

    A real registered architecture (profile `null`), so a pre-label run measures the platform alone: reading,
    decoding, cropping, writing and settling, with the model's own time close to zero.
    """

    def __init__(self, num_classes: int, cells: int = 20) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.cells = cells
        self.backbone = nn.Identity()  # the mixed-precision wrapper replaces a backbone's forward
        self.score_thresh, self.nms_thresh, self.detections_per_img = 0.0, 0.5, cells

    def forward(self, images: Sequence[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        from inference.core.stages import CELL_LABEL

        count = min(self.cells, self.detections_per_img)
        columns = max(1, int(count**0.5 + 0.999))
        rows = max(1, -(-count // columns))
        outputs = []
        for image in images:
            height, width = image.shape[-2:]
            index = torch.arange(count, device=image.device, dtype=torch.float32)
            cell_w, cell_h = width / columns, height / rows
            x1, y1 = (index % columns) * cell_w, (index // columns).floor() * cell_h
            boxes = torch.stack([x1 + 0.1 * cell_w, y1 + 0.1 * cell_h, x1 + 0.9 * cell_w, y1 + 0.9 * cell_h], dim=1)
            outputs.append(
                {
                    "boxes": boxes,
                    "scores": torch.full((count,), 0.9, device=image.device),
                    "labels": torch.full((count,), CELL_LABEL, dtype=torch.int64, device=image.device),
                }
            )
        return outputs


class NullClassifier(nn.Module):
    """The `null` kind's classifier: the same fixed logits for every crop (class 0 the most likely)."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.register_buffer("logits", -torch.arange(num_classes, dtype=torch.float32) / max(num_classes, 1))

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        logits = self.get_buffer("logits")
        return logits.expand(len(crops), -1)


NULL_DETECTOR = "null_detector"
NULL_CLASSIFIER = "null_classifier"


def _light_fpn_backbone(backbone_name: str, trainable_backbone_layers: int | None) -> nn.Module:
    """A ResNet18/34 FPN with levels P3-P7, the layout torchvision's ResNet50 RetinaNet/FCOS use.

    Trainable BatchNorm (not torchvision's frozen default) because the backbone starts from random init.
    """
    return resnet_fpn_backbone(
        backbone_name=backbone_name,
        weights=None,
        norm_layer=nn.BatchNorm2d,
        trainable_layers=5 if trainable_backbone_layers is None else trainable_backbone_layers,
        returned_layers=[2, 3, 4],
        extra_blocks=LastLevelP6P7(256, 256),
    )


def _light_retinanet(backbone_name: str) -> DetectorBuilder:
    def build(num_classes: int, trainable_backbone_layers: int | None = None, **kwargs: Any) -> nn.Module:
        backbone = _light_fpn_backbone(backbone_name, trainable_backbone_layers)
        # GroupNorm in the head as in retinanet_resnet50_fpn_v2: it trains better from scratch.
        head = RetinaNetHead(backbone.out_channels, 9, num_classes, norm_layer=partial(nn.GroupNorm, 32))
        return detection.RetinaNet(backbone, num_classes, head=head, **kwargs)

    return build


def _light_fcos(backbone_name: str) -> DetectorBuilder:
    def build(num_classes: int, trainable_backbone_layers: int | None = None, **kwargs: Any) -> nn.Module:
        return detection.FCOS(_light_fpn_backbone(backbone_name, trainable_backbone_layers), num_classes, **kwargs)

    return build


def _conv_bn(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class ConvPyramid(nn.Module):
    """A small plain CNN (3x3 conv-BN-ReLU stages, each halving the size) with a light top-down FPN.

    `widths` has five stages (strides 2, 4, 8, 16, 32); the last three are the output levels P3-P5, each
    projected to `out_channels` (1x1) plus the upsampled coarser level, then smoothed by a 3x3 conv.
    """

    def __init__(self, widths: Sequence[int], depth: int, out_channels: int) -> None:
        super().__init__()
        if len(widths) != 5:
            raise ValueError(f"ConvPyramid needs five stage widths, got {list(widths)}")
        self.out_channels = out_channels
        stages = []
        previous = 3
        for width in widths:
            layers = [_conv_bn(previous, width, 2)] + [_conv_bn(width, width, 1) for _ in range(depth - 1)]
            stages.append(nn.Sequential(*layers))
            previous = width
        self.stages = nn.ModuleList(stages)
        self.lateral = nn.ModuleList(nn.Conv2d(w, out_channels, 1) for w in widths[2:])
        self.smooth = nn.ModuleList(nn.Conv2d(out_channels, out_channels, 3, padding=1) for _ in widths[2:])

    def forward(self, images: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        features = []
        x = images
        for index, stage in enumerate(self.stages):
            x = stage(x)
            if index >= 2:
                features.append(x)
        levels: list[torch.Tensor] = []
        top: torch.Tensor | None = None
        for feature, lateral, smooth in zip(
            reversed(features), reversed(self.lateral), reversed(self.smooth), strict=True
        ):
            merged = lateral(feature)
            if top is not None:
                merged = merged + nn.functional.interpolate(top, size=merged.shape[-2:], mode="nearest")
            top = merged
            levels.insert(0, smooth(merged))
        return OrderedDict((f"p{level}", feature) for level, feature in zip((3, 4, 5), levels, strict=True))


def _convnet_fcos(widths: Sequence[int], depth: int, out_channels: int, head_convs: int) -> DetectorBuilder:
    """FCOS on a `ConvPyramid`: light enough to train from scratch on a CPU. One point per location with
    sizes 8/16/32 (= the strides of P3-P5; FCOS assigns objects to levels from these)."""

    def build(
        num_classes: int, trainable_backbone_layers: int | None = None, norm_layer: Any = None, **kwargs: Any
    ) -> nn.Module:
        if trainable_backbone_layers is not None or norm_layer is not None:
            raise ValueError("convnet FCOS models train their whole backbone with BatchNorm (no such options)")
        backbone = ConvPyramid(widths, depth, out_channels)
        anchors = AnchorGenerator(((8,), (16,), (32,)), ((1.0,),) * 3)
        head = FCOSHead(out_channels, 1, num_classes, num_convs=head_convs)
        return detection.FCOS(backbone, num_classes, anchor_generator=anchors, head=head, **kwargs)

    return build


def _torchvision(name: str) -> DetectorBuilder:
    builder = getattr(detection, name)

    def build(num_classes: int, **kwargs: Any) -> nn.Module:
        return builder(weights=None, weights_backbone=None, num_classes=num_classes, **kwargs)

    return build


_TORCHVISION_DETECTORS = (
    "retinanet_resnet50_fpn",
    "retinanet_resnet50_fpn_v2",
    "ssd300_vgg16",
    "ssdlite320_mobilenet_v3_large",
    "fasterrcnn_resnet50_fpn",
    "fasterrcnn_resnet50_fpn_v2",
    "fasterrcnn_mobilenet_v3_large_fpn",
    "fasterrcnn_mobilenet_v3_large_320_fpn",
    "fcos_resnet50_fpn",
)
_DETECTOR_BUILDERS: dict[str, DetectorBuilder] = {
    **{name: _torchvision(name) for name in _TORCHVISION_DETECTORS},
    **{f"retinanet_{b}_fpn": _light_retinanet(b) for b in ("resnet18", "resnet34")},
    **{f"fcos_{b}_fpn": _light_fcos(b) for b in ("resnet18", "resnet34")},
    # Plain-CNN FCOS models: "small" for the cpu profile (~0.4 GMACs at 320x240), "tiny" for tests and smoke
    # runs (the detector counterpart of timm's test_* models).
    "fcos_convnet_small": _convnet_fcos((16, 32, 64, 96, 128), depth=2, out_channels=64, head_convs=2),
    "fcos_convnet_tiny": _convnet_fcos((16, 32, 32, 32, 32), depth=1, out_channels=32, head_convs=2),
    # The `null` kind (profile `null`): fixed boxes, no computation; measures the platform alone.
    NULL_DETECTOR: NullDetector,
}
DETECTOR_ARCHS: tuple[str, ...] = tuple(_DETECTOR_BUILDERS)


_FAMILY_CLASSES: dict[str, type[nn.Module]] = {
    "retinanet": detection.RetinaNet,
    "fcos": detection.FCOS,
    "ssd": SSD,
    "fasterrcnn": detection.FasterRCNN,
    "null": NullDetector,
}


def _accepted_kwargs(arch: str) -> set[str]:
    """Keyword names the arch's constructor chain uses; torchvision silently drops unknown ones (typos)."""
    if _family(arch) == "null":
        return {"cells"}
    constructors = (_FAMILY_CLASSES[_family(arch)].__init__, GeneralizedRCNNTransform.__init__)
    names = {name for c in constructors for name in inspect.signature(c).parameters}
    return (names | {"trainable_backbone_layers", "norm_layer"}) - {"self", "kwargs", "backbone", "num_classes"}


def _family(arch: str) -> str:
    head = arch.split("_", 1)[0]
    return "ssd" if head.startswith("ssd") else head  # ssd300 / ssdlite320 -> ssd


# The helpers below reach into torchvision detection models, whose parts are untyped attributes: `model: Any`.
def _set_ssd_input_size(model: Any, size: int | Sequence[int]) -> None:
    """SSD builders hard-code their input size; the box generator and heads are size-agnostic, so set it here."""
    width, height = (size, size) if isinstance(size, int) else size
    model.transform.fixed_size = (int(width), int(height))
    model.transform.min_size = (min(int(width), int(height)),)
    model.transform.max_size = max(int(width), int(height))


def _replace_anchors(
    model: Any,
    arch: str,
    num_classes: int,
    sizes: Sequence[Sequence[int]],
    aspect_ratios: Sequence[float] | None,
) -> None:
    """Swap the anchor generator (one size list per feature level); rebuild the head if the anchor count changes."""
    family = _family(arch)
    if family == "ssd":
        raise ValueError(f"{arch}: anchor_sizes is not supported for SSD models (they use default boxes)")
    ratios = tuple(aspect_ratios) if aspect_ratios else ((1.0,) if family == "fcos" else (0.5, 1.0, 2.0))
    generator = AnchorGenerator(tuple(tuple(int(s) for s in level) for level in sizes), (ratios,) * len(sizes))
    num_anchors = generator.num_anchors_per_location()[0]
    v2 = arch.endswith("_v2")
    if family == "fcos":
        if num_anchors != 1:
            raise ValueError(f"{arch}: FCOS needs exactly one anchor per location (one size and one aspect ratio)")
        model.anchor_generator = generator
    elif family == "retinanet":
        model.anchor_generator = generator
        if num_anchors != model.head.classification_head.num_anchors:
            light = arch not in _TORCHVISION_DETECTORS
            norm = partial(nn.GroupNorm, 32) if v2 or light else None
            model.head = RetinaNetHead(model.backbone.out_channels, num_anchors, num_classes, norm_layer=norm)
    else:  # fasterrcnn: the anchors belong to the region proposal network
        model.rpn.anchor_generator = generator
        if num_anchors != model.rpn.head.cls_logits.out_channels:
            model.rpn.head = RPNHead(model.backbone.out_channels, num_anchors, conv_depth=2 if v2 else 1)


class AntialiasedTransform(GeneralizedRCNNTransform):
    """torchvision's detection transform, but a field it shrinks is low-pass filtered first (antialias=True).

    torchvision resizes with plain bilinear interpolation, which at the cpu profile's strong shrink (a 1920 px
    camera field to 240 px) samples every 8th pixel and aliases the chromatin texture; the training-side shrink
    (`training.core.data.DetectionDataset`) uses the same antialiased call, so training and inference agree.
    """

    def resize(self, image: Tensor, target: dict[str, Tensor] | None = None) -> tuple[Tensor, Any]:
        height, width = image.shape[-2:]
        if self.training:
            if self._skip_resize:
                return image, target
            min_size = float(self.torch_choice(self.min_size))
        else:
            min_size = float(self.min_size[-1])
        if self.fixed_size is not None:
            size = (int(self.fixed_size[1]), int(self.fixed_size[0]))
            resized = nn.functional.interpolate(
                image[None], size=size, mode="bilinear", align_corners=False, antialias=True
            )[0]
        else:
            scale = min(min_size / min(height, width), float(self.max_size) / max(height, width))
            resized = nn.functional.interpolate(
                image[None],
                scale_factor=scale,
                mode="bilinear",
                recompute_scale_factor=True,
                align_corners=False,
                antialias=scale < 1,
            )[0]
        if target is not None and "boxes" in target:
            target["boxes"] = resize_boxes(target["boxes"], [height, width], list(resized.shape[-2:]))
        return resized, target


def build_detector(arch: str, num_classes: int = detector_num_classes(), **kwargs: Any) -> nn.Module:
    """A randomly initialised detector; `num_classes` counts background (2 = background + "cell").

    kwargs go to the torchvision constructor (min_size, max_size, trainable_backbone_layers, topk_candidates,
    image_mean, ...) except three handled here: `anchor_sizes` (one list of sizes per feature level) with
    optional `anchor_aspect_ratios`, and `size` (int or [width, height]) for the fixed-size SSD models.
    """
    if arch not in _DETECTOR_BUILDERS:
        raise ValueError(f"unknown detector arch {arch!r}; supported: {', '.join(DETECTOR_ARCHS)}")
    kwargs = dict(kwargs)
    anchor_sizes = kwargs.pop("anchor_sizes", None)
    aspect_ratios = kwargs.pop("anchor_aspect_ratios", None)
    size = kwargs.pop("size", None)
    if size is not None and _family(arch) != "ssd":
        raise ValueError(f"{arch}: `size` is only for SSD models; use min_size/max_size")
    unknown = set(kwargs) - _accepted_kwargs(arch)
    if unknown:
        raise ValueError(f"{arch}: invalid detector kwargs {sorted(unknown)}")
    try:
        model = _DETECTOR_BUILDERS[arch](num_classes=num_classes, **kwargs)
    except TypeError as error:
        raise ValueError(f"{arch}: invalid detector kwargs {sorted(kwargs)}: {error}") from error
    if hasattr(model, "transform"):  # torchvision detectors resize fields; the null detector has nothing to resize
        model.transform.__class__ = AntialiasedTransform
    if size is not None:
        _set_ssd_input_size(model, size)
    if anchor_sizes is not None:
        _replace_anchors(model, arch, num_classes, anchor_sizes, aspect_ratios)
    return model


def configure_detector_postprocess(
    model: nn.Module, *, score_threshold: float, nms_iou: float, max_detections: int
) -> None:
    """Set the inference-time filtering of any supported detector (these are runtime settings, not weights)."""
    target: Any = model.roi_heads if hasattr(model, "roi_heads") else model  # Faster R-CNN keeps them in its ROI heads
    target.score_thresh = score_threshold
    target.nms_thresh = nms_iou
    target.detections_per_img = max_detections


def _unknown_classifier_message(arch: str) -> str:
    close = difflib.get_close_matches(arch, timm.list_models(), n=5, cutoff=0.6)
    hint = f"; close matches: {', '.join(close)}" if close else ""
    return f"unknown timm classifier arch {arch!r}{hint}; any name in timm.list_models() is supported"


def head_prefixes(model: nn.Module) -> tuple[str, ...]:
    """The key prefixes of a timm model's classifier head (empty for other modules)."""
    classifier = getattr(model, "pretrained_cfg", {}).get("classifier") or ()
    return (classifier,) if isinstance(classifier, str) else tuple(classifier)


def build_classifier(arch: str, num_classes: int, **model_kwargs: Any) -> nn.Module:
    """A timm classifier from random init (local starting weights: `inference.core.weights`).

    model_kwargs go to `timm.create_model` (e.g. drop_rate, drop_path_rate).
    """
    if arch == NULL_CLASSIFIER:
        return NullClassifier(num_classes)
    if not timm.is_model(arch):
        raise ValueError(_unknown_classifier_message(arch))
    model: nn.Module = timm.create_model(arch, pretrained=False, num_classes=num_classes, **model_kwargs)
    return model
