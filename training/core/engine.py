"""The training engine: one epoch, evaluation, and how the models of each task are built, batched and measured.

`train_one_epoch` and `evaluate` are task-agnostic; what differs between a detector and a crop classifier lives
in its `TaskEngine` (`ENGINES`, keyed by `training.core.stages.Task`): building a model, the training set and its
collate function, one step's loss, predictions, metrics, plots and what its checkpoints record. A stage reaches
its engine through its row (`ENGINES[spec.task]`), never through its name. On CUDA the models run under autocast
(bf16 where supported, else fp16 with a gradient scaler; detectors only in the backbone, as
`inference.core.pipeline` runs them).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from inference.core.calibration import Calibration, fit_temperature, prior_correct, softmax_with_temperature
from inference.core.checkpoints import CheckpointMeta, calibration_of
from inference.core.crops import crop_cells
from inference.core.nets import build_classifier, build_detector, configure_detector_postprocess
from inference.core.pipeline import default_amp_dtype
from inference.core.profiles import DetectorConfig, Profile
from inference.core.stages import CELL_LABEL
from training.core import metrics as metrics_lib
from training.core import plots
from training.core.config import StageSettings
from training.core.data import (
    Augment,
    CropDataset,
    CropSpec,
    DetectionDataset,
    ImageCache,
    balanced_weights,
    detection_collate,
    stack_crops,
)
from training.core.records import CropItem, FieldRecord, whole_fields
from training.core.stages import StageSpec, Task, stage_spec

# Detections kept per field when a checkpoint does not say (COCOeval's default cap).
DEFAULT_MAX_DETECTIONS = 100

# One training step: (model, batch) -> (loss, number of samples in the batch).
Step = Callable[[nn.Module, Any], tuple[Tensor, int]]


@dataclass
class Evaluation:
    """Metrics plus the raw arrays the plots need."""

    metrics: dict[str, Any]
    labels: np.ndarray | None = None
    probabilities: np.ndarray | None = None  # ensemble mean (N, C)
    curve: metrics_lib.DetectionCurve | None = None


@dataclass
class TrainingSet:
    dataset: Dataset[Any]
    collate: Callable[[Sequence[Any]], Any]
    weights: list[float] | None  # per-item sampling weights (class balancing), None = uniform

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]


class TaskEngine(Protocol):
    """How the models of one task are built, trained and measured (see the module docstring)."""

    def build(self, spec: StageSpec, profile: Profile, arch: str) -> nn.Module: ...

    def training_set(
        self, settings: StageSettings, fields: Sequence[FieldRecord], augment: Augment, cache: ImageCache
    ) -> TrainingSet: ...

    def step(self, device: torch.device, amp_dtype: torch.dtype | None, label_smoothing: float) -> Step: ...

    def prepare(self, model: nn.Module, device: torch.device) -> None: ...

    def evaluation_options(self, settings: StageSettings) -> dict[str, Any]: ...

    def checkpoint_options(self, metas: Sequence[CheckpointMeta]) -> dict[str, Any]: ...

    def evaluate(
        self,
        spec: StageSpec,
        models: Sequence[nn.Module],
        fields: Sequence[FieldRecord],
        *,
        device: torch.device,
        cache: ImageCache,
        **options: Any,
    ) -> Evaluation: ...

    def plots(self, spec: StageSpec, evaluation: Evaluation, folder: Path) -> list[Path]: ...

    def temperature(
        self, settings: StageSettings, model: nn.Module, fields: Sequence[FieldRecord], cache: ImageCache
    ) -> float:
        """The softmax temperature fitted on `fields` (the val split); 1.0 where the task has no softmax."""
        ...

    def checkpoint_meta(self, settings: StageSettings) -> tuple[dict[str, Any], dict[str, Any]]:
        """(extra CheckpointMeta arguments, extra entries of its `config`)."""
        ...


# ----------------------------------------------------------------------------------------------------------
# Optimiser, schedule, mixed precision


def make_optimizer(settings: StageSettings, model: nn.Module) -> torch.optim.Optimizer:
    t = settings.training
    params = [p for p in model.parameters() if p.requires_grad]
    if t.optimizer == "adam":
        return torch.optim.Adam(params, lr=t.lr, weight_decay=t.weight_decay)
    if t.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=t.lr, weight_decay=t.weight_decay)
    return torch.optim.SGD(params, lr=t.lr, momentum=0.9, weight_decay=t.weight_decay, nesterov=True)


def make_scheduler(
    settings: StageSettings, optimizer: torch.optim.Optimizer, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up then cosine annealing to 0 over t_max epochs, as a per-iteration factor of the base lr."""
    warmup_steps = settings.warmup_epochs * steps_per_epoch
    total = settings.t_max * steps_per_epoch

    def factor(step: int) -> float:
        warm = min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0
        progress = min(step, total) / total
        return warm * 0.5 * (1.0 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


@contextlib.contextmanager
def _backbone_autocast(model: nn.Module, device: torch.device, dtype: torch.dtype | None) -> Iterator[None]:
    """Run a detector's backbone under autocast (features back in float32 for the heads), then restore it."""
    backbone: Any = getattr(model, "backbone", None)
    if dtype is None or backbone is None:
        yield
        return
    forward = backbone.forward

    def mixed(images: Tensor) -> Any:
        with torch.autocast(device.type, dtype=dtype):
            features = forward(images)
        if isinstance(features, Tensor):
            return features.float()
        if isinstance(features, OrderedDict):
            return OrderedDict((k, v.float()) for k, v in features.items())
        return [f.float() for f in features]

    backbone.forward = mixed
    try:
        yield
    finally:
        del backbone.forward


# ----------------------------------------------------------------------------------------------------------
# One epoch


def train_one_epoch(
    model: nn.Module,
    loader: DataLoader[Any],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    *,
    step: Step,
    scaler: torch.amp.GradScaler | None = None,
    on_step: Callable[[int, int, float], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> dict[str, Any]:
    """One pass over `loader`; `step(model, batch)` (a task engine's) gives each batch's loss.

    Returns {"loss": mean loss, "steps", "samples", "seconds", "lr": last lr, "stopped": bool}. `on_step(step,
    steps, loss)` runs after each step (its exceptions propagate); `should_stop()` is asked after each step.
    """
    model.train()
    started = time.perf_counter()
    total_loss, steps, samples = 0.0, 0, 0
    stopped = False
    num_steps = len(loader)
    for batch in loader:
        optimizer.zero_grad(set_to_none=True)
        loss, count = step(model, batch)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"the training loss became {loss.item()} at step {steps + 1}; lower the lr")
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            optimizer.step()
        if scheduler is not None:
            scheduler.step()
        value = float(loss.detach())
        total_loss += value * count
        samples += count
        steps += 1
        if on_step is not None:
            on_step(steps, num_steps, value)
        if should_stop is not None and should_stop():
            stopped = True
            break
    return {
        "loss": total_loss / samples if samples else None,
        "steps": steps,
        "samples": samples,
        "seconds": time.perf_counter() - started,
        "lr": optimizer.param_groups[0]["lr"],
        "stopped": stopped,
    }


# ----------------------------------------------------------------------------------------------------------
# Detection


def predict_detector(
    model: nn.Module,
    fields: Sequence[FieldRecord],
    *,
    device: torch.device,
    batch_size: int = 4,
    score_threshold: float = 0.01,
    nms_iou: float = 0.5,
    max_detections: int = DEFAULT_MAX_DETECTIONS,
    cache: ImageCache | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(boxes xyxy, scores) of the "cell" label per field, clipped to the field (as the pipeline does)."""
    cache = cache or ImageCache()
    configure_detector_postprocess(
        model, score_threshold=score_threshold, nms_iou=nms_iou, max_detections=max_detections * 2
    )
    model.eval()
    out: list[tuple[np.ndarray, np.ndarray]] = []
    with torch.inference_mode():
        for start in range(0, len(fields), batch_size):
            chunk = fields[start : start + batch_size]
            images = [cache.get(f.image_path).to(device).float().div_(255.0) for f in chunk]
            for image, output in zip(images, model(images), strict=True):
                keep = (output["labels"] == CELL_LABEL).nonzero().squeeze(1)[:max_detections]
                boxes = output["boxes"][keep].float()
                height, width = image.shape[-2:]
                boxes[:, 0::2] = boxes[:, 0::2].clamp(0, width)
                boxes[:, 1::2] = boxes[:, 1::2].clamp(0, height)
                out.append((boxes.cpu().numpy(), output["scores"][keep].float().cpu().numpy()))
    return out


def _detector_config(spec: StageSpec, profile: Profile) -> DetectorConfig:
    config = spec.model_config(profile)
    if not isinstance(config, DetectorConfig):
        raise TypeError(f"the {spec.name} stage is a detection stage but its profile block is {type(config).__name__}")
    return config


def _detector_resize(config: DetectorConfig) -> dict[str, tuple[int, int] | None]:
    """How the detector's transform resizes fields, as `DetectionDataset` arguments: `input_size` (min_size,
    max_size, aspect kept) or, for the fixed-size SSD models, `fixed_size` (width, height); None when unknown."""
    if config.min_size is not None:
        return {"input_size": (config.min_size, config.max_size or 10 * config.min_size)}
    size = config.kwargs.get("size")
    if size is not None:
        width, height = (size, size) if isinstance(size, int) else size
        return {"fixed_size": (int(width), int(height))}
    return {"input_size": None}


class DetectionEngine:
    """Whole fields and all their boxes (one class, "cell"); metrics: AP@0.5 and AP@[.5:.95] (pycocotools)."""

    def build(self, spec: StageSpec, profile: Profile, arch: str) -> nn.Module:
        return build_detector(arch, **_detector_config(spec, profile).model_kwargs())

    def training_set(
        self, settings: StageSettings, fields: Sequence[FieldRecord], augment: Augment, cache: ImageCache
    ) -> TrainingSet:
        config = _detector_config(settings.spec, settings.profile)
        fields = whole_fields(fields)  # cell-level truth names some cells of a field, never all its boxes
        dataset = DetectionDataset(fields, augment=augment, cache=cache, **_detector_resize(config))
        return TrainingSet(dataset, detection_collate, None)

    def step(self, device: torch.device, amp_dtype: torch.dtype | None, label_smoothing: float) -> Step:
        def detection_step(model: nn.Module, batch: Any) -> tuple[Tensor, int]:
            images, targets = batch
            images = [image.to(device, non_blocking=True) for image in images]
            targets = [{k: v.to(device, non_blocking=True) for k, v in t.items()} for t in targets]
            with _backbone_autocast(model, device, amp_dtype):
                losses = model(images, targets)
            return sum(losses.values(), torch.zeros((), device=device)), len(images)

        return detection_step

    def prepare(self, model: nn.Module, device: torch.device) -> None:
        model.to(device)

    def evaluation_options(self, settings: StageSettings) -> dict[str, Any]:
        config = _detector_config(settings.spec, settings.profile)
        return {
            "nms_iou": config.nms_iou,
            "score_threshold": settings.eval_score_threshold,
            "batch_size": config.batch_size,
            "max_detections": config.max_detections,
        }

    def checkpoint_options(self, metas: Sequence[CheckpointMeta]) -> dict[str, Any]:
        config = metas[0].config
        return {
            "nms_iou": float(config.get("nms_iou", 0.5)),
            "max_detections": int(config.get("max_detections", DEFAULT_MAX_DETECTIONS)),
        }

    def evaluate(
        self,
        spec: StageSpec,
        models: Sequence[nn.Module],
        fields: Sequence[FieldRecord],
        *,
        device: torch.device,
        cache: ImageCache,
        nms_iou: float = 0.5,
        score_threshold: float = 0.01,
        batch_size: int = 4,
        max_detections: int = DEFAULT_MAX_DETECTIONS,
        **_: Any,
    ) -> Evaluation:
        if len(models) != 1:
            raise ValueError(f"the {spec.name} stage evaluates exactly one model")
        fields = whole_fields(fields)
        predictions = predict_detector(
            models[0],
            fields,
            device=device,
            batch_size=batch_size,
            score_threshold=score_threshold,
            nms_iou=nms_iou,
            max_detections=max_detections,
            cache=cache,
        )
        truths = [np.asarray([c.box for c in f.cells], dtype=np.float64).reshape(-1, 4) for f in fields]
        result = metrics_lib.detection_metrics(truths, predictions, with_curve=True, max_detections=max_detections)
        curve = result.pop("_curve", None)
        return Evaluation(metrics=result, curve=curve)

    def plots(self, spec: StageSpec, evaluation: Evaluation, folder: Path) -> list[Path]:
        if evaluation.curve is None:
            return []
        curve = evaluation.curve
        return [plots.detection_pr_png(curve.recall, curve.precision, folder / f"{spec.name}_pr_curves.png")]

    def temperature(
        self, settings: StageSettings, model: nn.Module, fields: Sequence[FieldRecord], cache: ImageCache
    ) -> float:
        return 1.0

    def checkpoint_meta(self, settings: StageSettings) -> tuple[dict[str, Any], dict[str, Any]]:
        config = _detector_config(settings.spec, settings.profile)
        return {"model_kwargs": config.model_kwargs()}, {
            "nms_iou": config.nms_iou,
            "max_detections": config.max_detections,
        }


# ----------------------------------------------------------------------------------------------------------
# Crops


def predict_crops(
    models: Sequence[nn.Module],
    fields: Sequence[FieldRecord],
    items: Sequence[CropItem],
    spec: CropSpec,
    *,
    device: torch.device,
    batch_size: int = 128,
    fields_per_pass: int = 16,
    cache: ImageCache | None = None,
) -> np.ndarray:
    """Softmax probabilities (models, N, C) of every item, cut per field with `crop_cells` like the pipeline.

    `items` must be in field order (as the stages' `examples` make them).
    """
    cache = cache or ImageCache()
    for model in models:
        model.eval()
    by_field: dict[int, list[CropItem]] = {}
    for item in items:
        by_field.setdefault(item.field, []).append(item)
    order = [item for index in sorted(by_field) for item in by_field[index]]
    if order != list(items):
        raise ValueError("crop items must be grouped in field order")
    amp_dtype = default_amp_dtype(device)
    outputs: list[list[Tensor]] = [[] for _ in models]
    field_ids = sorted(by_field)
    with torch.inference_mode():
        for start in range(0, len(field_ids), fields_per_pass):
            chunk = field_ids[start : start + fields_per_pass]
            images = [cache.get(fields[i].image_path).to(device).float().div_(255.0) for i in chunk]
            boxes = [torch.tensor([it.box for it in by_field[i]], dtype=torch.float32, device=device) for i in chunk]
            crops = crop_cells(images, boxes, size=spec.size, margin=spec.margin, mean=spec.mean, std=spec.std)
            if device.type == "cuda":
                crops = crops.contiguous(memory_format=torch.channels_last)
            for model, out in zip(models, outputs, strict=True):
                for batch in crops.split(batch_size):
                    with torch.autocast(device.type, dtype=amp_dtype) if amp_dtype else contextlib.nullcontext():
                        logits = model(batch)
                    out.append(logits.float().softmax(dim=1).cpu())
    if not items:
        return np.zeros((len(models), 0, 0), dtype=np.float32)
    return np.stack([torch.cat(out).numpy() for out in outputs])


def crop_spec(settings: StageSettings) -> CropSpec:
    """How the pipeline cuts a cell for this stage's classifier (its input size; the profile's crop geometry)."""
    config = settings.spec.model_config(settings.profile)
    if isinstance(config, DetectorConfig):
        raise TypeError(f"the {settings.stage} stage is a crop stage but its profile block is a detector's")
    norm = settings.profile.normalisation
    return CropSpec(config.input_size, settings.profile.context_margin, norm.mean, norm.std)


class CropEngine:
    """One crop per cell, cut as the pipeline cuts it, labelled by the stage's `examples`; softmax classifiers.

    Metrics: binary (on the stage's `positive_class`) or multiclass, with confusion matrix and PR curves.
    """

    def build(self, spec: StageSpec, profile: Profile, arch: str) -> nn.Module:
        return build_classifier(arch, len(spec.classes))

    def training_set(
        self, settings: StageSettings, fields: Sequence[FieldRecord], augment: Augment, cache: ImageCache
    ) -> TrainingSet:
        dataset = CropDataset(fields, settings.spec.examples(fields), crop_spec(settings), augment=augment, cache=cache)
        power = settings.balance_power
        return TrainingSet(dataset, stack_crops, balanced_weights(dataset.labels, power) if power > 0 else None)

    def step(self, device: torch.device, amp_dtype: torch.dtype | None, label_smoothing: float) -> Step:
        criterion = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
        channels_last = device.type == "cuda"

        def crop_step(model: nn.Module, batch: Any) -> tuple[Tensor, int]:
            crops, labels = batch
            crops = crops.to(device, non_blocking=True)
            if channels_last:
                crops = crops.contiguous(memory_format=torch.channels_last)
            labels = labels.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=amp_dtype) if amp_dtype else contextlib.nullcontext():
                logits = model(crops)
            return criterion(logits.float(), labels), len(labels)

        return crop_step

    def prepare(self, model: nn.Module, device: torch.device) -> None:
        model.to(device)
        if device.type == "cuda":
            model.to(memory_format=torch.channels_last)

    def evaluation_options(self, settings: StageSettings) -> dict[str, Any]:
        return {"crop": crop_spec(settings)}

    def temperature(
        self, settings: StageSettings, model: nn.Module, fields: Sequence[FieldRecord], cache: ImageCache
    ) -> float:
        items = settings.spec.examples(fields)
        if not items:
            return 1.0
        probs = predict_crops([model], fields, items, crop_spec(settings), device=settings.device, cache=cache)[0]
        labels = [item.label for item in items]
        return fit_temperature(np.log(np.clip(probs, 1e-12, None)), labels)

    def checkpoint_options(self, metas: Sequence[CheckpointMeta]) -> dict[str, Any]:
        specs = {
            CropSpec(int(m.input_size or 0), float(m.config.get("context_margin", 0.15)), m.mean, m.std) for m in metas
        }
        if len(specs) != 1:
            raise ValueError(f"the checkpoints were trained on different crops: {sorted(map(str, specs))}")
        return {"crop": specs.pop(), "calibrations": [calibration_of(m) for m in metas]}

    def evaluate(
        self,
        spec: StageSpec,
        models: Sequence[nn.Module],
        fields: Sequence[FieldRecord],
        *,
        device: torch.device,
        cache: ImageCache,
        crop: CropSpec | None = None,
        calibrations: Sequence[Calibration] | None = None,
        **_: Any,
    ) -> Evaluation:
        """Metrics of the models' mean probabilities; with `calibrations` (one per model, from the checkpoints)
        of the probabilities the pipeline shows: temperature-scaled, averaged, prior-corrected."""
        if crop is None:
            raise ValueError(f"the {spec.name} stage needs a crop spec")
        items = spec.examples(fields)
        labels = np.asarray([item.label for item in items], dtype=int)
        if not items:
            probs = np.zeros((0, len(spec.classes)))
        else:
            per_model = predict_crops(models, fields, items, crop, device=device, cache=cache)
            if calibrations:
                log_probs = np.log(np.clip(per_model, 1e-12, None))
                per_model = np.stack(
                    [softmax_with_temperature(lp, c.temperature) for lp, c in zip(log_probs, calibrations, strict=True)]
                )
                probs = prior_correct(per_model.mean(axis=0), calibrations[0].prior_weights)
            else:
                probs = per_model.mean(axis=0)
        if spec.positive_class is not None:
            result = metrics_lib.binary_metrics(labels, probs[:, spec.positive_class] if len(probs) else [])
        else:
            result = metrics_lib.multiclass_metrics(labels, probs)
        return Evaluation(metrics=result, labels=labels, probabilities=probs)

    def plots(self, spec: StageSpec, evaluation: Evaluation, folder: Path) -> list[Path]:
        if evaluation.labels is None or evaluation.probabilities is None or not len(evaluation.labels):
            return []
        if spec.positive_class is not None:
            from sklearn.metrics import confusion_matrix

            labels = [0, 1]
            predicted = (evaluation.probabilities[:, spec.positive_class] >= 0.5).astype(int)
            matrix = confusion_matrix(evaluation.labels, predicted, labels=labels).tolist()
            class_ids = [spec.positive_class]
        else:
            m = evaluation.metrics
            labels, matrix = m["confusion_matrix"]["labels"], m["confusion_matrix"]["matrix"]
            class_ids = [int(k) for k in m["per_class"]]
        return [
            plots.confusion_matrix_png(
                labels,
                matrix,
                spec.classes,
                folder / f"{spec.name}_confusion_matrix.png",
                title=f"{spec.name} confusion matrix",
            ),
            plots.pr_curves_png(
                evaluation.labels,
                evaluation.probabilities,
                class_ids,
                spec.classes,
                folder / f"{spec.name}_pr_curves.png",
                title=f"{spec.name} precision-recall",
            ),
        ]

    def checkpoint_meta(self, settings: StageSettings) -> tuple[dict[str, Any], dict[str, Any]]:
        return {"input_size": crop_spec(settings).size}, {}


ENGINES: dict[Task, TaskEngine] = {Task.DETECTION: DetectionEngine(), Task.CROPS: CropEngine()}


def engine_of(spec: StageSpec) -> TaskEngine:
    return ENGINES[spec.task]


# ----------------------------------------------------------------------------------------------------------
# Evaluation


def evaluate_detailed(
    stage: str,
    models: Sequence[nn.Module],
    fields: Sequence[FieldRecord],
    *,
    device: torch.device,
    cache: ImageCache | None = None,
    **options: Any,
) -> Evaluation:
    """Metrics of `models` (one, or an ensemble whose probabilities are averaged) on `fields`, with the arrays
    the plots need. `options` are the stage's engine's: `crop` (a CropSpec) for crop stages; `nms_iou`,
    `score_threshold`, `batch_size` for detection."""
    spec = stage_spec(stage)
    return engine_of(spec).evaluate(spec, models, fields, device=device, cache=cache or ImageCache(), **options)


def evaluate(
    stage: str,
    models: Sequence[nn.Module],
    fields: Sequence[FieldRecord],
    *,
    device: torch.device,
    **options: Any,
) -> dict[str, Any]:
    """The metric dict (contract keys) of `models` on `fields`; see `evaluate_detailed`."""
    return evaluate_detailed(stage, models, fields, device=device, **options).metrics
