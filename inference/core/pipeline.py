"""The three-stage pipeline: detect cells, crop them, countability, ensemble classification, uncertainty.

All crops of a batch of fields go through each classifier in large batches under `torch.inference_mode()`.
On CUDA the models run channels_last under autocast (bf16 where supported, else fp16) with cudnn.benchmark on; a
detector's backbone and head run in reduced precision but hand float32 on (the box regression included), because
torchvision decodes boxes in the head's output dtype and bf16 cannot hold pixel coordinates of a large field to
better than a few pixels.
"""

from __future__ import annotations

import contextlib
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from annotations.taxonomy import CLASS_NAMES, NUM_CLASSES
from inference.core.calibration import Calibration, prior_correct
from inference.core.checkpoints import CheckpointMeta, CheckpointMismatchError, calibration_of, load_checkpoint
from inference.core.crops import FieldImage, crop_cells, field_to_tensor
from inference.core.nets import configure_detector_postprocess
from inference.core.profiles import Profile, get_profile
from inference.core.stages import (
    CELL_LABEL,
    COUNTABILITY_CLASSES,
    COUNTABLE_INDEX,
    DETECTOR_CLASSES,
    CheckpointStage,
    detector_num_classes,
)
from inference.core.uncertainty import DETECTOR as DETECTOR_MEASURE
from inference.core.uncertainty import compute_uncertainty

AmpSetting = torch.dtype | None | Literal["auto"]


@dataclass(frozen=True)
class CellPrediction:
    box: tuple[float, float, float, float]  # x, y, w, h in pixels, inside the field
    detector_score: float
    p_countable: float | None  # None: a detector-only pipeline (no countability model)
    probabilities: tuple[float, ...]  # ensemble mean over the 21 classes of annotations.taxonomy; () detector-only
    member_probabilities: tuple[tuple[float, ...], ...]  # one row per ensemble member
    predicted_class: int | None  # None: a detector-only pipeline (unclassified box)
    uncertainty: dict[str, float]  # see inference.core.uncertainty.MEASURES


@dataclass(frozen=True)
class FieldPrediction:
    width: int
    height: int
    cells: tuple[CellPrediction, ...]


@dataclass
class PipelineTimings:
    """Seconds accumulated over `Pipeline.run` calls; the *_forward_s parts are bare model forward passes."""

    total_s: float = 0.0
    detector_forward_s: float = 0.0
    countability_forward_s: float = 0.0
    classifier_forward_s: float = 0.0
    fields: int = 0
    cells: int = 0

    @property
    def forward_s(self) -> float:
        return self.detector_forward_s + self.countability_forward_s + self.classifier_forward_s


def resolve_device(preference: str | torch.device) -> torch.device:
    """'auto' = CUDA when available, else CPU; an explicit CUDA device must exist."""
    if str(preference) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(preference)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {preference!r} requested but CUDA is not available")
    return device


def default_amp_dtype(device: torch.device) -> torch.dtype | None:
    """bf16 on CUDA devices that support it, else fp16 on CUDA; full precision on CPU."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _float_features(features: Any) -> Any:
    if isinstance(features, Tensor):
        return features.float()
    if isinstance(features, Mapping):
        return OrderedDict((k, v.float()) for k, v in features.items())
    return [f.float() for f in features]


def _backbone_in_reduced_precision(detector: nn.Module, device: torch.device, dtype: torch.dtype) -> None:
    """Run the detector's backbone and, where it has one (RetinaNet, FCOS, SSD), its head under autocast; each
    returns float32 (the head's box regression too), so torchvision decodes and clips boxes in full precision."""
    channels_last = device.type == "cuda"
    backbone: Any = detector.backbone
    backbone_forward = backbone.forward

    def mixed_precision_backbone(images: Tensor) -> Any:
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=dtype):
            return _float_features(backbone_forward(images))

    backbone.forward = mixed_precision_backbone
    head: Any = getattr(detector, "head", None)
    if not isinstance(head, nn.Module):
        return
    head_forward = head.forward

    def mixed_precision_head(*args: Any, **kwargs: Any) -> Any:
        with torch.autocast(device.type, dtype=dtype):
            return _float_features(head_forward(*args, **kwargs))

    head.forward = mixed_precision_head


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise CheckpointMismatchError(message)


def _check_against_profile(meta: CheckpointMeta, arch_ok: bool, input_size: int | None, profile: Profile) -> None:
    what = f"{meta.stage} checkpoint ({meta.arch})"
    _require(arch_ok, f"{what} does not use an architecture of profile {profile.name!r}")
    if input_size is not None:
        _require(meta.input_size == input_size, f"{what} takes {meta.input_size} px crops, profile uses {input_size}")
        norm = profile.normalisation
        _require(
            np.allclose(meta.mean, norm.mean) and np.allclose(meta.std, norm.std),
            f"{what} was trained with normalisation {meta.mean}/{meta.std}, profile uses {norm.mean}/{norm.std}",
        )
        # Crops of another context margin show the model cells at another scale; an old checkpoint without the
        # value is taken at the profile's word.
        margin = meta.config.get("context_margin")
        _require(
            margin is None or bool(np.isclose(float(margin), profile.context_margin)),
            f"{what} was trained on crops with context margin {margin}, profile uses {profile.context_margin}",
        )


class Pipeline:
    """Detector + countability classifier + classifier ensemble for one profile.

    The pipeline takes over the given modules: it moves them to the device, puts them in eval mode and, for
    mixed precision, wraps the detector backbone's forward.
    """

    def __init__(
        self,
        detector: nn.Module,
        countability: nn.Module | None,
        ensemble_members: Sequence[nn.Module],
        profile: Profile | str,
        device: str | torch.device | None = None,
        *,
        amp_dtype: AmpSetting = "auto",
        max_fields_per_pass: int = 64,
        countability_calibration: Calibration | None = None,
        member_calibrations: Sequence[Calibration] | None = None,
    ) -> None:
        if (countability is None) != (not ensemble_members):
            raise ValueError(
                "a pipeline classifies with both a countability model and at least one ensemble member, "
                "or with neither (detector only: unclassified boxes)"
            )
        if member_calibrations is not None and len(member_calibrations) != len(ensemble_members):
            raise ValueError(f"{len(member_calibrations)} calibrations for {len(ensemble_members)} ensemble members")
        # Temperatures and prior corrections the checkpoints carry (inference.core.calibration); identity otherwise.
        self.countability_calibration = countability_calibration or Calibration()
        self.member_calibrations = list(member_calibrations or [Calibration()] * len(ensemble_members))
        self.profile = get_profile(profile) if isinstance(profile, str) else profile
        self.device = resolve_device(device if device is not None else self.profile.device)
        self.amp_dtype = default_amp_dtype(self.device) if amp_dtype == "auto" else amp_dtype
        self.max_fields_per_pass = max_fields_per_pass
        self.timings = PipelineTimings()
        self._pending_cuda_timings: list[tuple[torch.cuda.Event, torch.cuda.Event, Callable[[float], None]]] = []
        memory_format = torch.channels_last if self.device.type == "cuda" else torch.contiguous_format
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed input shapes per profile: pick the fastest kernels once
        self.detector = detector.eval().to(self.device).to(memory_format=memory_format)
        self.countability = (
            None if countability is None else countability.eval().to(self.device).to(memory_format=memory_format)
        )
        self.members = [m.eval().to(self.device).to(memory_format=memory_format) for m in ensemble_members]
        config = self.profile.detector
        # Sigmoid heads (RetinaNet, FCOS) also score the unused background label; ask for enough boxes that
        # those cannot crowd out cells, then keep max_detections cells in `detect`.
        configure_detector_postprocess(
            self.detector,
            score_threshold=config.score_threshold,
            nms_iou=config.nms_iou,
            max_detections=config.max_detections * detector_num_classes(),
        )
        if self.amp_dtype is not None:
            _backbone_in_reduced_precision(self.detector, self.device, self.amp_dtype)

    @classmethod
    def from_checkpoints(
        cls,
        detector_path: str | Path,
        countability_path: str | Path | None,
        member_paths: Sequence[str | Path],
        profile: Profile | str,
        device: str | torch.device | None = None,
        **kwargs: Any,
    ) -> Pipeline:
        """Load the three stages' checkpoints, refusing any that does not fit the profile or the taxonomy.

        Without a countability checkpoint and members, the pipeline is the detector alone (unclassified boxes).
        """
        prof = get_profile(profile) if isinstance(profile, str) else profile
        detector = load_checkpoint(
            detector_path, expected_stage=CheckpointStage.DETECTOR, expected_classes=DETECTOR_CLASSES
        )
        _check_against_profile(detector.meta, detector.meta.arch == prof.detector.arch, None, prof)
        if countability_path is None and not member_paths:
            return cls(detector.model, None, [], prof, device, **kwargs)
        if countability_path is None:
            raise ValueError("a classifying pipeline needs a countability checkpoint")
        countability = load_checkpoint(
            countability_path, expected_stage=CheckpointStage.COUNTABILITY, expected_classes=COUNTABILITY_CLASSES
        )
        count_meta = countability.meta
        _check_against_profile(
            count_meta, count_meta.arch == prof.countability.arch, prof.countability.input_size, prof
        )
        members, calibrations = [], []
        for path in member_paths:
            member = load_checkpoint(
                path, expected_stage=CheckpointStage.CLASSIFIER_MEMBER, expected_classes=CLASS_NAMES
            )
            arch_ok = member.meta.arch in prof.classifier.archs
            _check_against_profile(member.meta, arch_ok, prof.classifier.input_size, prof)
            members.append(member.model)
            calibrations.append(calibration_of(member.meta))
        kwargs.setdefault("countability_calibration", calibration_of(count_meta))
        kwargs.setdefault("member_calibrations", calibrations)
        return cls(detector.model, countability.model, members, prof, device, **kwargs)

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        """The precision context the classifiers run in (a no-op in full precision)."""
        if self.amp_dtype is None:
            yield
        else:
            with torch.autocast(self.device.type, dtype=self.amp_dtype):
                yield

    @contextlib.contextmanager
    def _timed(self, add: Callable[[float], None]) -> Iterator[None]:
        """Time a forward pass; on CUDA with events read at the end of `run`, so timing adds no sync points."""
        if self.device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            yield
            end.record()
            self._pending_cuda_timings.append((start, end, add))
        else:
            began = time.perf_counter()
            yield
            add(time.perf_counter() - began)

    def _collect_cuda_timings(self) -> None:
        torch.cuda.synchronize(self.device)
        for start, end, add in self._pending_cuda_timings:
            add(start.elapsed_time(end) / 1000)
        self._pending_cuda_timings.clear()

    def reset_timings(self) -> None:
        self.timings = PipelineTimings()
        self._pending_cuda_timings.clear()

    def to_tensors(self, images: Sequence[FieldImage]) -> list[Tensor]:
        return [field_to_tensor(image, self.device) for image in images]

    def detect(self, fields: Sequence[Tensor]) -> list[tuple[Tensor, Tensor]]:
        """(boxes x1y1x2y2 clipped to the field, scores) per field."""
        detections: list[tuple[Tensor, Tensor]] = []
        batch = self.profile.detector.batch_size
        for start in range(0, len(fields), batch):
            chunk = list(fields[start : start + batch])
            with self._timed(self._add_detector_time):
                outputs = self.detector(chunk)
            for image, output in zip(chunk, outputs, strict=True):
                height, width = image.shape[-2:]
                # Outputs come sorted by score, so the first max_detections cells are the best ones.
                cells = (output["labels"] == CELL_LABEL).nonzero().squeeze(1)[: self.profile.detector.max_detections]
                boxes = output["boxes"][cells].float()
                boxes[:, 0::2] = boxes[:, 0::2].clamp(0, width)
                boxes[:, 1::2] = boxes[:, 1::2].clamp(0, height)
                detections.append((boxes, output["scores"][cells].float()))
        return detections

    def crops(self, fields: Sequence[Tensor], boxes: Sequence[Tensor]) -> dict[int, Tensor]:
        """Normalised crops per input size the models need (computed once per distinct size)."""
        norm = self.profile.normalisation
        memory_format = torch.channels_last if self.device.type == "cuda" else torch.contiguous_format
        sizes = {self.profile.countability.input_size, self.profile.classifier.input_size}
        return {
            size: crop_cells(
                fields, boxes, size=size, margin=self.profile.context_margin, mean=norm.mean, std=norm.std
            ).contiguous(memory_format=memory_format)
            for size in sizes
        }

    def classify(
        self, model: nn.Module, crops: Tensor, add_time: Callable[[float], None], temperature: float = 1.0
    ) -> Tensor:
        """Softmax probabilities (N, C) of logits / temperature in float32, in batches of the crop batch size."""
        probabilities = []
        for batch in crops.split(self.profile.crop_batch_size):
            with self._timed(add_time), self.autocast():
                logits = model(batch)
            probabilities.append((logits.float() / temperature).softmax(dim=1))
        return torch.cat(probabilities)

    def _add_detector_time(self, seconds: float) -> None:
        self.timings.detector_forward_s += seconds

    def _add_countability_time(self, seconds: float) -> None:
        self.timings.countability_forward_s += seconds

    def _add_classifier_time(self, seconds: float) -> None:
        self.timings.classifier_forward_s += seconds

    def run(self, images: Sequence[FieldImage]) -> list[FieldPrediction]:
        """Predictions for every field, in input order (fields go through in groups of max_fields_per_pass)."""
        start = time.perf_counter()
        predictions: list[FieldPrediction] = []
        with torch.inference_mode():
            for first in range(0, len(images), self.max_fields_per_pass):
                predictions.extend(self._run_pass(images[first : first + self.max_fields_per_pass]))
        if self.device.type == "cuda":
            self._collect_cuda_timings()
        self.timings.total_s += time.perf_counter() - start
        self.timings.fields += len(predictions)
        self.timings.cells += sum(len(p.cells) for p in predictions)
        return predictions

    def _run_pass(self, images: Sequence[FieldImage]) -> list[FieldPrediction]:
        fields = self.to_tensors(images)
        detections = self.detect(fields)
        boxes = [b for b, _ in detections]
        counts = [len(b) for b in boxes]
        total = sum(counts)
        if self.countability is None:
            return self._assemble_unclassified(fields, detections)
        if total:
            crops = self.crops(fields, boxes)
            count_cal = self.countability_calibration
            countability = self.classify(
                self.countability,
                crops[self.profile.countability.input_size],
                self._add_countability_time,
                count_cal.temperature,
            )
            class_crops = crops[self.profile.classifier.input_size]
            members = torch.stack(
                [
                    self.classify(m, class_crops, self._add_classifier_time, cal.temperature)
                    for m, cal in zip(self.members, self.member_calibrations, strict=True)
                ]
            )
            self._check_outputs(countability, members)
            corrected = prior_correct(countability.cpu().numpy(), count_cal.prior_weights)
            p_countable = torch.from_numpy(corrected[:, COUNTABLE_INDEX])
        else:
            p_countable = torch.zeros(0)
            members = torch.zeros(len(self.members), 0, NUM_CLASSES)
        all_boxes = torch.cat(boxes).cpu().numpy() if boxes else np.zeros((0, 4), np.float32)
        scores = torch.cat([s for _, s in detections]).cpu().numpy() if detections else np.zeros(0, np.float32)
        return self._assemble(
            fields,
            counts,
            all_boxes,
            scores,
            p_countable.cpu().numpy(),
            members.cpu().numpy(),
            self.member_calibrations[0].prior_weights,
        )

    @staticmethod
    def _assemble_unclassified(
        fields: Sequence[Tensor], detections: Sequence[tuple[Tensor, Tensor]]
    ) -> list[FieldPrediction]:
        """Detector-only predictions: boxes and scores; countability, class and probabilities left empty."""
        predictions = []
        for image, (boxes, scores) in zip(fields, detections, strict=True):
            height, width = image.shape[-2:]
            cells = tuple(
                CellPrediction(
                    box=(x0, y0, x1 - x0, y1 - y0),
                    detector_score=score,
                    p_countable=None,
                    probabilities=(),
                    member_probabilities=(),
                    predicted_class=None,
                    uncertainty={DETECTOR_MEASURE: 1.0 - score},
                )
                for (x0, y0, x1, y1), score in zip(boxes.cpu().tolist(), scores.cpu().tolist(), strict=True)
            )
            predictions.append(FieldPrediction(int(width), int(height), cells))
        return predictions

    def _check_outputs(self, countability: Tensor, members: Tensor) -> None:
        if countability.shape[1] != len(COUNTABILITY_CLASSES):
            raise ValueError(f"the countability model outputs {countability.shape[1]} classes, expected 2")
        if members.shape[2] != NUM_CLASSES:
            raise ValueError(f"ensemble members output {members.shape[2]} classes, the taxonomy has {NUM_CLASSES}")

    @staticmethod
    def _assemble(
        fields: Sequence[Tensor],
        counts: Sequence[int],
        boxes: np.ndarray,
        scores: np.ndarray,
        p_countable: np.ndarray,
        member_probs: np.ndarray,
        class_prior_weights: Sequence[float] | None = None,
    ) -> list[FieldPrediction]:
        balanced = member_probs.mean(axis=0)
        # The review queue ranks by the balanced (calibrated) probabilities; the class and the probabilities that
        # counts and differentials read are prior-corrected (the members share one training set, hence one prior).
        uncertainty = compute_uncertainty(balanced, member_probs, scores).per_cell()
        ensemble = prior_correct(balanced, class_prior_weights)
        xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1).tolist()
        cells = [
            CellPrediction(
                box=(x, y, w, h),
                detector_score=score,
                p_countable=p,
                probabilities=tuple(probs),
                member_probabilities=tuple(tuple(row) for row in per_member),
                predicted_class=predicted,
                uncertainty=u,
            )
            for (x, y, w, h), score, p, probs, per_member, predicted, u in zip(
                xywh,
                scores.tolist(),
                p_countable.tolist(),
                ensemble.tolist(),
                member_probs.transpose(1, 0, 2).tolist(),
                ensemble.argmax(axis=1).tolist(),
                uncertainty,
                strict=True,
            )
        ]
        predictions = []
        offset = 0
        for image, count in zip(fields, counts, strict=True):
            height, width = image.shape[-2:]
            predictions.append(FieldPrediction(int(width), int(height), tuple(cells[offset : offset + count])))
            offset += count
        return predictions


def _image_size(image: FieldImage) -> tuple[int, int]:
    """(height, width) of a field in any of the forms `field_to_tensor` takes."""
    if isinstance(image, Tensor):
        return int(image.shape[-2]), int(image.shape[-1])
    if isinstance(image, np.ndarray):
        return int(image.shape[0]), int(image.shape[1])
    width, height = image.size
    return int(height), int(width)


class NullPipeline(Pipeline):
    """Pipeline kind "null": the null models' fixed boxes and probabilities (inference/core/nets.py
    `null_detector`, `null_classifier`), computed once per field size and reused, with no crops and no forward
    pass per field. Pre-labelling with it costs the platform alone (benchmarks/prelabel_path.py --model null)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._by_size: dict[tuple[int, int], FieldPrediction] = {}

    def run(self, images: Sequence[FieldImage]) -> list[FieldPrediction]:
        start = time.perf_counter()
        predictions = [self._for_size(_image_size(image)) for image in images]
        self.timings.total_s += time.perf_counter() - start
        self.timings.fields += len(predictions)
        self.timings.cells += sum(len(p.cells) for p in predictions)
        return predictions

    def _for_size(self, size: tuple[int, int]) -> FieldPrediction:
        if size not in self._by_size:
            with torch.inference_mode():
                field = torch.zeros(3, *size, device=self.device)
                ((boxes, scores),) = self.detect([field])
                placeholder = torch.zeros(len(boxes), 3, 1, 1, device=self.device)
                assert self.countability is not None, "the null pipeline always has its three null models"
                countability = self.countability(placeholder).float().softmax(dim=1)
                members = torch.stack([m(placeholder).float().softmax(dim=1) for m in self.members])
                self._check_outputs(countability, members)
                (prediction,) = self._assemble(
                    [field],
                    [len(boxes)],
                    boxes.cpu().numpy(),
                    scores.cpu().numpy(),
                    countability[:, COUNTABLE_INDEX].cpu().numpy(),
                    members.cpu().numpy(),
                )
            self._by_size[size] = prediction
        return self._by_size[size]


# Pipeline kinds, named by a profile's `kind` (inference/core/profiles.py PIPELINE_KIND_NAMES lists the same names).
PIPELINE_KINDS: dict[str, type[Pipeline]] = {"three_stage": Pipeline, "null": NullPipeline}
