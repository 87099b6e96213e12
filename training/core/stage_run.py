"""Training and evaluation entry points of the three stages (plain PyTorch; no Django anywhere below).

`train_stage` trains one stage -- the detector, the countability classifier, or each member of the classifier
ensemble in turn -- on the `train` split of a list of FieldRecords, picks each model's best epoch on `val`,
and reports metrics on `test` (`val` when there is no test field). Every epoch writes a resumable
checkpoint (`inference.core.checkpoints` format) under `out_dir/<model>/last.pt` and, when the epoch is the best so
far, `best.pt`; calling `train_stage` again with the same out_dir resumes after the last finished epoch.

Hyperparameters come from the profile's `training` block (inference/core/profiles.yaml); `TrainConfig.overrides`
replaces any of them (see OVERRIDES). The learning rate follows a cosine annealing over `cosine_t_max` epochs
(stepped per iteration, after an optional linear warm-up). Randomness derives from `TrainConfig.seed` only:
model init from (seed, member), each epoch's order and every item's augmentation from (seed, member, epoch), so
the same seed gives the same weights and a resumed run repeats exactly the epochs it would have run (on CPU;
CUDA kernels may add nondeterminism). On CUDA the models train under autocast (bf16 where supported, else
fp16 with a gradient scaler; detectors only in the backbone, as `inference.core.pipeline` runs them).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from annotations.taxonomy import CLASS_NAMES, NUM_CLASSES
from inference.core.checkpoints import CheckpointMeta, load_checkpoint, read_payload, save_checkpoint
from inference.core.crops import crop_cells
from inference.core.nets import build_classifier, build_detector, configure_detector_postprocess
from inference.core.pipeline import default_amp_dtype, resolve_device
from inference.core.profiles import Profile, TrainingConfig, get_profile, load_profiles
from inference.core.stages import CELL_LABEL, COUNTABILITY_CLASSES, COUNTABLE_INDEX, DETECTOR_CLASSES
from inference.core.stages import Stage as CheckpointStage
from training.core import metrics as metrics_lib
from training.core import plots
from training.core.data import (
    Augment,
    CropDataset,
    CropItem,
    CropSpec,
    DetectionDataset,
    ImageCache,
    SeededSampler,
    balanced_weights,
    classifier_items,
    countability_items,
    detection_collate,
    stack_crops,
)
from training.core.gate import MAIN_METRIC
from training.core.records import SPLITS, FieldRecord

STAGES = ("detector", "countability", "classifier")
_CHECKPOINT_STAGE = {
    "detector": CheckpointStage.DETECTOR,
    "countability": CheckpointStage.COUNTABILITY,
    "classifier": CheckpointStage.CLASSIFIER_MEMBER,
}
OPTIMIZERS = ("adam", "adamw", "sgd")
# Keys TrainConfig.overrides may hold (anything else is refused, so a typo never goes unnoticed).
OVERRIDES: dict[str, str] = {
    "lr": "learning rate",
    "batch_size": "training batch size",
    "weight_decay": "weight decay",
    "cosine_t_max": "cosine annealing period in epochs (default: the profile's, scaled with --epochs)",
    "optimizer": "adam | adamw | sgd",
    "time_limit_s": "stop training after this many seconds (then keep the best epoch so far)",
    "warmup_epochs": "linear learning-rate warm-up (default 1 for the detector, 0 otherwise)",
    "balance_power": "class-balanced sampling: weight = class count ** -power (default 0.5; 0 = off)",
    "label_smoothing": "cross-entropy label smoothing for the classifiers (default 0)",
    "augment": "false switches augmentation off",
    "eval_every": "evaluate on val every N epochs (default 1; the last epoch always)",
    "num_workers": "DataLoader workers (default 0 on CPU, up to 8 on CUDA)",
    "num_threads": "torch CPU threads during the run (default: leave torch's setting)",
    "progress_every": "call on_progress every N training steps (default 10)",
    "eval_score_threshold": "detector score threshold when computing AP (default 0.01)",
    "init_checkpoints": "checkpoint file(s) to start from instead of random init (one per model)",
    "members": "classifier: train only these ensemble member indexes (default all)",
}


@dataclass
class TrainConfig:
    stage: str  # "detector" | "countability" | "classifier"
    profile: str | Profile  # a profile name (inference/core/profiles.yaml or profiles_file) or a parsed Profile
    epochs: int | None = None  # None -> the profile's
    seed: int = 0
    overrides: dict[str, Any] = field(default_factory=dict)
    device: str | None = None  # None -> the profile's device ("auto" = CUDA when available)
    profiles_file: str | None = None  # where a profile *name* is looked up (default: the shipped file)


@dataclass
class Progress:
    stage: str
    member: int | None
    epoch: int
    epochs: int
    fraction: float  # 0..1 of the whole run
    loss: float | None
    message: str


@dataclass
class StageResult:
    stage: str
    checkpoints: list[Path]
    architecture: str
    metrics: dict[str, Any]
    val_metrics: dict[str, Any]
    best_epochs: list[int]
    history: list[dict[str, Any]]
    plots: list[Path]


ProgressCallback = Callable[[Progress], None]


# ----------------------------------------------------------------------------------------------------------
# Configuration


@dataclass(frozen=True)
class _Settings:
    """Everything that shapes one stage's training run, resolved from profile + config + overrides."""

    stage: str
    profile: Profile
    device: torch.device
    training: TrainingConfig
    epochs: int
    t_max: int
    seed: int
    warmup_epochs: float
    balance_power: float
    label_smoothing: float
    augment: bool
    eval_every: int
    num_workers: int
    num_threads: int | None
    progress_every: int
    time_limit_s: float | None
    eval_score_threshold: float
    init_checkpoints: tuple[str, ...]
    members: tuple[int, ...] | None

    @property
    def main_metric(self) -> str:
        return MAIN_METRIC[self.stage]

    def crop_spec(self) -> CropSpec:
        config = self.profile.countability if self.stage == "countability" else self.profile.classifier
        norm = self.profile.normalisation
        return CropSpec(config.input_size, self.profile.context_margin, norm.mean, norm.std)

    def fingerprint(self, arch: str, member: int | None) -> dict[str, Any]:
        """What must not change between a run and its resumption."""
        t = self.training
        return {
            "stage": self.stage,
            "arch": arch,
            "member": member,
            "optimizer": t.optimizer,
            "lr": t.lr,
            "weight_decay": t.weight_decay,
            "batch_size": t.batch_size,
            "epochs": self.epochs,
            "t_max": self.t_max,
            "seed": self.seed,
            "warmup_epochs": self.warmup_epochs,
            "balance_power": self.balance_power,
            "augment": self.augment,
        }


def _resolve_profile(config: TrainConfig) -> Profile:
    if isinstance(config.profile, Profile):
        return config.profile
    if config.profiles_file:
        profiles = load_profiles(config.profiles_file)
        if config.profile not in profiles:
            raise ValueError(f"unknown profile {config.profile!r}; valid profiles: {', '.join(profiles)}")
        return profiles[config.profile]
    try:
        return get_profile(config.profile)
    except KeyError as error:
        raise ValueError(str(error)) from None


def _number(overrides: Mapping[str, Any], key: str, kind: type, default: Any, *, positive: bool = True) -> Any:
    if key not in overrides or overrides[key] is None:
        return default
    try:
        value = kind(overrides[key])
    except (TypeError, ValueError):
        raise ValueError(f"override {key}: expected a number, got {overrides[key]!r}") from None
    if (value <= 0) if positive else (value < 0):
        raise ValueError(f"override {key}: must be {'> 0' if positive else '>= 0'}, got {value}")
    return value


def resolve_settings(config: TrainConfig) -> _Settings:
    """Validate the config and merge profile, epochs and overrides; ValueError names what is wrong."""
    if config.stage not in STAGES:
        raise ValueError(f"unknown stage {config.stage!r}; expected one of {', '.join(STAGES)}")
    unknown = sorted(set(config.overrides) - set(OVERRIDES))
    if unknown:
        raise ValueError(f"unknown overrides {unknown}; known: {', '.join(OVERRIDES)}")
    profile = _resolve_profile(config)
    base: TrainingConfig = {
        "detector": profile.detector.training,
        "countability": profile.countability.training,
        "classifier": profile.classifier.training,
    }[config.stage]
    o = config.overrides
    optimizer = str(o.get("optimizer") or base.optimizer)
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"override optimizer: {optimizer!r} is not one of {', '.join(OPTIMIZERS)}")
    if config.epochs is not None and int(config.epochs) <= 0:
        raise ValueError(f"epochs must be > 0, got {config.epochs}")
    epochs = int(config.epochs) if config.epochs is not None else base.epochs
    default_t_max = max(1, round(base.cosine_t_max * epochs / base.epochs))
    training = dataclasses.replace(
        base,
        optimizer=optimizer,
        lr=_number(o, "lr", float, base.lr),
        weight_decay=_number(o, "weight_decay", float, base.weight_decay, positive=False),
        batch_size=_number(o, "batch_size", int, base.batch_size),
        epochs=epochs,
        cosine_t_max=_number(o, "cosine_t_max", int, default_t_max),
    )
    try:
        device = resolve_device(config.device or profile.device)
    except RuntimeError as error:
        raise ValueError(str(error)) from None
    init = o.get("init_checkpoints") or ()
    init_paths = (init,) if isinstance(init, str | Path) else tuple(init)
    members = o.get("members")
    augment = o.get("augment", True)
    return _Settings(
        stage=config.stage,
        profile=profile,
        device=device,
        training=training,
        epochs=epochs,
        t_max=training.cosine_t_max,
        seed=int(config.seed),
        warmup_epochs=_number(o, "warmup_epochs", float, 1.0 if config.stage == "detector" else 0.0, positive=False),
        balance_power=_number(o, "balance_power", float, 0.5, positive=False),
        label_smoothing=_number(o, "label_smoothing", float, 0.0, positive=False),
        augment=augment not in (False, "false", "False", 0, "0", "no"),
        eval_every=_number(o, "eval_every", int, 1),
        num_workers=_number(
            o,
            "num_workers",
            int,
            min(8, max(0, (os.cpu_count() or 1) - 1)) if device.type == "cuda" else 0,
            positive=False,
        ),
        num_threads=_number(o, "num_threads", int, None),
        progress_every=_number(o, "progress_every", int, 10),
        time_limit_s=_number(o, "time_limit_s", float, None),
        eval_score_threshold=_number(o, "eval_score_threshold", float, 0.01, positive=False),
        init_checkpoints=tuple(str(p) for p in init_paths),
        members=None if members is None else tuple(int(m) for m in members),
    )


def _derive_seed(*parts: Any) -> int:
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") & ((1 << 62) - 1)


# ----------------------------------------------------------------------------------------------------------
# Data


def _fields_of(fields: Sequence[FieldRecord], split: str) -> list[FieldRecord]:
    return [f for f in fields if f.split == split]


def _check_images(fields: Sequence[FieldRecord]) -> None:
    missing = [f for f in fields if not os.path.isfile(f.image_path)]
    if missing:
        raise ValueError(f"{len(missing)} field image(s) not found, first {missing[0].key}: {missing[0].image_path}")


def _crop_items(stage: str, fields: Sequence[FieldRecord]) -> list[CropItem]:
    if stage == "countability":
        return countability_items(fields)
    return classifier_items(fields, NUM_CLASSES)


def _check_trainable(stage: str, train_fields: Sequence[FieldRecord]) -> None:
    if stage == "detector":
        usable = sum(1 for f in train_fields if f.cells)
        what = "fields with at least one cell box"
    else:
        usable = len(_crop_items(stage, train_fields))
        what = "cells" if stage == "countability" else "cells with a known class"
    if not usable:
        raise ValueError(
            f"the train split has no usable examples for the {stage} stage ({len(train_fields)} train fields, 0 {what})"
        )


# ----------------------------------------------------------------------------------------------------------
# Models


def _members(settings: _Settings) -> list[tuple[int | None, str]]:
    """(member index, arch) of each model the stage trains; member is None for single-model stages."""
    if settings.stage == "detector":
        return [(None, settings.profile.detector.arch)]
    if settings.stage == "countability":
        return [(None, settings.profile.countability.arch)]
    archs = list(enumerate(settings.profile.classifier.archs))
    if settings.members is not None:
        bad = [m for m in settings.members if not 0 <= m < len(archs)]
        if bad:
            raise ValueError(f"override members: {bad} outside 0..{len(archs) - 1}")
        archs = [archs[m] for m in settings.members]
    return [(index, arch) for index, arch in archs]


def _meta(
    settings: _Settings, arch: str, member: int | None, data_snapshot: str, metrics: dict[str, Any]
) -> CheckpointMeta:
    profile = settings.profile
    stage = _CHECKPOINT_STAGE[settings.stage]
    norm = profile.normalisation
    config: dict[str, Any] = {
        **dataclasses.asdict(settings.training),
        "t_max": settings.t_max,
        "seed": settings.seed,
        "member": member,
        "context_margin": profile.context_margin,
        "warmup_epochs": settings.warmup_epochs,
        "balance_power": settings.balance_power,
        "augment": settings.augment,
    }
    if settings.stage == "detector":
        config["nms_iou"] = profile.detector.nms_iou
        return CheckpointMeta(
            stage=stage.value,
            arch=arch,
            classes=DETECTOR_CLASSES,
            profile=profile.name,
            mean=norm.mean,
            std=norm.std,
            model_kwargs=profile.detector.model_kwargs(),
            data_snapshot=data_snapshot,
            metrics=metrics,
            config=config,
        )
    classes = COUNTABILITY_CLASSES if settings.stage == "countability" else CLASS_NAMES
    return CheckpointMeta(
        stage=stage.value,
        arch=arch,
        classes=classes,
        profile=profile.name,
        input_size=settings.crop_spec().size,
        mean=norm.mean,
        std=norm.std,
        data_snapshot=data_snapshot,
        metrics=metrics,
        config=config,
    )


def _build(settings: _Settings, arch: str) -> nn.Module:
    if settings.stage == "detector":
        return build_detector(arch, **settings.profile.detector.model_kwargs())
    num_classes = len(COUNTABILITY_CLASSES) if settings.stage == "countability" else NUM_CLASSES
    return build_classifier(arch, num_classes)


def _optimizer(settings: _Settings, model: nn.Module) -> torch.optim.Optimizer:
    t = settings.training
    params = [p for p in model.parameters() if p.requires_grad]
    if t.optimizer == "adam":
        return torch.optim.Adam(params, lr=t.lr, weight_decay=t.weight_decay)
    if t.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=t.lr, weight_decay=t.weight_decay)
    return torch.optim.SGD(params, lr=t.lr, momentum=0.9, weight_decay=t.weight_decay, nesterov=True)


def _scheduler(
    settings: _Settings, optimizer: torch.optim.Optimizer, steps_per_epoch: int
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
# One epoch / evaluation


def train_one_epoch(
    model: nn.Module,
    loader: DataLoader[Any],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    *,
    task: str,
    device: torch.device,
    amp_dtype: torch.dtype | None = None,
    scaler: torch.amp.GradScaler | None = None,
    label_smoothing: float = 0.0,
    on_step: Callable[[int, int, float], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> dict[str, Any]:
    """One pass over `loader`; `task` "detector" (loader yields images, targets) or "crops" (crops, labels).

    Returns {"loss": mean loss, "steps", "samples", "seconds", "lr": last lr, "stopped": bool}. `on_step(step,
    steps, loss)` runs after each step (its exceptions propagate); `should_stop()` is asked after each step.
    """
    model.train()
    started = time.perf_counter()
    total_loss, steps, samples = 0.0, 0, 0
    stopped = False
    channels_last = device.type == "cuda"
    criterion = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
    num_steps = len(loader)
    for batch in loader:
        optimizer.zero_grad(set_to_none=True)
        if task == "detector":
            images, targets = batch
            images = [image.to(device, non_blocking=True) for image in images]
            targets = [{k: v.to(device, non_blocking=True) for k, v in t.items()} for t in targets]
            with _backbone_autocast(model, device, amp_dtype):
                losses = model(images, targets)
            loss = sum(losses.values(), torch.zeros((), device=device))
            count = len(images)
        else:
            crops, labels = batch
            crops = crops.to(device, non_blocking=True)
            if channels_last:
                crops = crops.contiguous(memory_format=torch.channels_last)
            labels = labels.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=amp_dtype) if amp_dtype else contextlib.nullcontext():
                logits = model(crops)
            loss = criterion(logits.float(), labels)
            count = len(labels)
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


def predict_detector(
    model: nn.Module,
    fields: Sequence[FieldRecord],
    *,
    device: torch.device,
    batch_size: int = 4,
    score_threshold: float = 0.01,
    nms_iou: float = 0.5,
    max_detections: int = 100,
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

    `items` must be in field order (as `countability_items` / `classifier_items` make them).
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


@dataclass
class Evaluation:
    """Metrics plus the raw arrays the plots need."""

    metrics: dict[str, Any]
    labels: np.ndarray | None = None
    probabilities: np.ndarray | None = None  # ensemble mean (N, C)
    curve: metrics_lib.DetectionCurve | None = None


def evaluate_detailed(
    stage: str,
    models: Sequence[nn.Module],
    fields: Sequence[FieldRecord],
    *,
    device: torch.device,
    spec: CropSpec | None = None,
    nms_iou: float = 0.5,
    score_threshold: float = 0.01,
    batch_size: int = 4,
    cache: ImageCache | None = None,
) -> Evaluation:
    """Metrics of `models` (one, or an ensemble whose probabilities are averaged) on `fields`."""
    if stage == "detector":
        if len(models) != 1:
            raise ValueError("the detector stage evaluates exactly one model")
        predictions = predict_detector(
            models[0],
            fields,
            device=device,
            batch_size=batch_size,
            score_threshold=score_threshold,
            nms_iou=nms_iou,
            cache=cache,
        )
        truths = [np.asarray([c.box for c in f.cells], dtype=np.float64).reshape(-1, 4) for f in fields]
        result = metrics_lib.detection_metrics(truths, predictions, with_curve=True)
        curve = result.pop("_curve", None)
        return Evaluation(metrics=result, curve=curve)
    if spec is None:
        raise ValueError(f"the {stage} stage needs a crop spec")
    items = _crop_items(stage, fields)
    labels = np.asarray([item.label for item in items], dtype=int)
    if not items:
        probs = np.zeros((0, 2 if stage == "countability" else NUM_CLASSES))
    else:
        probs = predict_crops(models, fields, items, spec, device=device, cache=cache).mean(axis=0)
    if stage == "countability":
        result = metrics_lib.binary_metrics(labels, probs[:, COUNTABLE_INDEX] if len(probs) else [])
    else:
        result = metrics_lib.multiclass_metrics(labels, probs)
    return Evaluation(metrics=result, labels=labels, probabilities=probs)


def evaluate(
    stage: str,
    models: Sequence[nn.Module],
    fields: Sequence[FieldRecord],
    *,
    device: torch.device,
    spec: CropSpec | None = None,
    nms_iou: float = 0.5,
    score_threshold: float = 0.01,
    batch_size: int = 4,
) -> dict[str, Any]:
    """The metric dict (contract keys) of `models` on `fields`; see `evaluate_detailed`."""
    detailed = evaluate_detailed(
        stage,
        models,
        fields,
        device=device,
        spec=spec,
        nms_iou=nms_iou,
        score_threshold=score_threshold,
        batch_size=batch_size,
    )
    return detailed.metrics


# ----------------------------------------------------------------------------------------------------------
# The stage run


def _loader(settings: _Settings, dataset: Any, sampler_seed: int, weights: Sequence[float] | None) -> DataLoader[Any]:
    batch_size = min(settings.training.batch_size, len(dataset))
    drop_last = len(dataset) > batch_size and len(dataset) % batch_size == 1  # no batch of one (BatchNorm)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=SeededSampler(len(dataset), sampler_seed, weights),
        num_workers=settings.num_workers,
        collate_fn=detection_collate if settings.stage == "detector" else stack_crops,
        pin_memory=settings.device.type == "cuda",
        drop_last=drop_last,
    )


def _detector_input_size(profile: Profile) -> tuple[int, int] | None:
    """(min_size, max_size) the detector's transform resizes fields to; None when unknown."""
    config = profile.detector
    if config.min_size is not None:
        return config.min_size, config.max_size or 10 * config.min_size
    size = config.kwargs.get("size")
    if size is not None:
        width, height = (size, size) if isinstance(size, int) else size
        return min(width, height), max(width, height)
    return None


def _steps_per_epoch(settings: _Settings, size: int) -> int:
    batch_size = min(settings.training.batch_size, size)
    drop_last = size > batch_size and size % batch_size == 1
    return size // batch_size if drop_last else math.ceil(size / batch_size)


@contextlib.contextmanager
def _threads(count: int | None) -> Iterator[None]:
    if count is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class _Run:
    def __init__(
        self,
        settings: _Settings,
        fields: Sequence[FieldRecord],
        out_dir: Path,
        on_progress: ProgressCallback | None,
        data_snapshot: str,
    ) -> None:
        self.s = settings
        self.out_dir = out_dir
        self.on_progress = on_progress
        self.data_snapshot = data_snapshot
        self.cache = ImageCache()
        self.train_fields = _fields_of(fields, "train")
        self.val_fields = _fields_of(fields, "val")
        self.test_fields = _fields_of(fields, "test")
        self.members = _members(settings)
        self.started = time.monotonic()
        self.history: list[dict[str, Any]] = []
        augment = Augment() if settings.augment else Augment.none()
        if settings.stage == "detector":
            self.train_set: Any = DetectionDataset(
                self.train_fields, augment=augment, cache=self.cache, input_size=_detector_input_size(settings.profile)
            )
            self.weights = None
        else:
            items = _crop_items(settings.stage, self.train_fields)
            self.train_set = CropDataset(
                self.train_fields, items, settings.crop_spec(), augment=augment, cache=self.cache
            )
            power = settings.balance_power
            self.weights = balanced_weights(self.train_set.labels, power) if power > 0 else None
        self.steps_per_epoch = _steps_per_epoch(settings, len(self.train_set))

    # -- progress --------------------------------------------------------------------------------------
    def _report(self, slot: int, member: int | None, epoch: int, done: float, loss: float | None, message: str) -> None:
        if self.on_progress is None:
            return
        total = len(self.members) * self.s.epochs
        fraction = min(1.0, max(0.0, (slot * self.s.epochs + done) / total))
        self.on_progress(Progress(self.s.stage, member, epoch, self.s.epochs, fraction, loss, message))

    def _time_left(self) -> float | None:
        if self.s.time_limit_s is None:
            return None
        return self.s.time_limit_s - (time.monotonic() - self.started)

    # -- one model ------------------------------------------------------------------------------------
    def _evaluate(self, models: Sequence[nn.Module], fields: Sequence[FieldRecord]) -> Evaluation:
        return evaluate_detailed(
            self.s.stage,
            models,
            fields,
            device=self.s.device,
            spec=None if self.s.stage == "detector" else self.s.crop_spec(),
            nms_iou=self.s.profile.detector.nms_iou,
            score_threshold=self.s.eval_score_threshold,
            batch_size=self.s.profile.detector.batch_size,
            cache=self.cache,
        )

    def train_member(self, slot: int, member: int | None, arch: str) -> tuple[Path, int, list[dict[str, Any]]]:
        s = self.s
        name = s.stage if member is None else f"member{member}_{arch}"
        folder = self.out_dir / name
        last_path, best_path = folder / "last.pt", folder / "best.pt"
        fingerprint = s.fingerprint(arch, member)
        torch.manual_seed(_derive_seed(s.seed, s.stage, member, "init"))
        model = _build(s, arch)
        init_paths = s.init_checkpoints
        if init_paths:
            index = slot if len(init_paths) > 1 else 0
            if index >= len(init_paths):
                raise ValueError(f"override init_checkpoints: {len(init_paths)} files for {len(self.members)} models")
            loaded = load_checkpoint(init_paths[index], expected_stage=_CHECKPOINT_STAGE[s.stage], expected_arch=arch)
            model.load_state_dict(loaded.model.state_dict())
        model.to(s.device)
        if s.device.type == "cuda" and s.stage != "detector":
            model.to(memory_format=torch.channels_last)
        optimizer = _optimizer(s, model)
        scheduler = _scheduler(s, optimizer, self.steps_per_epoch)
        amp_dtype = default_amp_dtype(s.device)
        scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None

        start_epoch, best_epoch, best_score = 1, 0, None
        history: list[dict[str, Any]] = []
        finished = False
        if last_path.exists():
            payload = read_payload(last_path, map_location="cpu")
            extra = payload.get("extra_state") or {}
            if extra.get("fingerprint") != fingerprint:
                theirs = extra.get("fingerprint") or {}
                diff = {k: (theirs.get(k), v) for k, v in fingerprint.items() if theirs.get(k) != v}
                raise ValueError(f"{folder} holds a run with other settings (stored, now): {diff}; use another out_dir")
            model.load_state_dict(payload["state_dict"])
            if payload.get("optimizer"):
                optimizer.load_state_dict(payload["optimizer"])
            if payload.get("scheduler"):
                scheduler.load_state_dict(payload["scheduler"])
            start_epoch = int(payload["epoch"]) + 1
            best_epoch = int(extra.get("best_epoch") or 0)
            best_score = extra.get("best_score")
            history = list(extra.get("history") or [])
            finished = bool(extra.get("finished"))

        epoch = start_epoch - 1
        for epoch in range(start_epoch, s.epochs + 1):
            if finished:
                break
            epoch_seed = _derive_seed(s.seed, s.stage, member, "epoch", epoch)
            torch.manual_seed(epoch_seed)
            loader = _loader(s, self.train_set, epoch_seed, self.weights)

            def on_step(step: int, steps: int, loss: float, epoch: int = epoch) -> None:
                if step % s.progress_every == 0 and step < steps:
                    self._report(
                        slot,
                        member,
                        epoch,
                        epoch - 1 + step / steps,
                        loss,
                        f"{name}: epoch {epoch}/{s.epochs}, step {step}/{steps}, loss {loss:.4f}",
                    )

            def out_of_time() -> bool:
                left = self._time_left()
                return left is not None and left <= 0

            stats = train_one_epoch(
                model,
                loader,
                optimizer,
                scheduler,
                task="detector" if s.stage == "detector" else "crops",
                device=s.device,
                amp_dtype=amp_dtype,
                scaler=scaler,
                label_smoothing=s.label_smoothing,
                on_step=on_step,
                should_stop=out_of_time,
            )
            stopped = bool(stats["stopped"]) or out_of_time()
            last_epoch = epoch == s.epochs or stopped
            val_metrics: dict[str, Any] = {}
            score = None
            if self.val_fields and (epoch % s.eval_every == 0 or last_epoch):
                val_metrics = self._evaluate([model], self.val_fields).metrics
                score = val_metrics.get(s.main_metric)
            # Best epoch: the highest val main metric (latest on ties); without val, the latest epoch.
            improved = (
                (not self.val_fields and last_epoch)
                or (score is not None and (best_score is None or score >= best_score))
                or best_epoch == 0
            )
            if improved:
                best_epoch, best_score = epoch, score if score is not None else best_score
            row = {
                "epoch": epoch,
                "member": member,
                "arch": arch,
                "train_loss": stats["loss"],
                "val_metric": score,
                f"val_{s.main_metric}": score,
                "lr": stats["lr"],
                "seconds": round(stats["seconds"], 3),
                "steps": stats["steps"],
            }
            history.append(row)
            finished = last_epoch
            extra = {
                "fingerprint": fingerprint,
                "best_epoch": best_epoch,
                "best_score": best_score,
                "history": history,
                "finished": finished,
                "stopped_early": stopped and epoch < s.epochs,
            }
            meta = _meta(s, arch, member, self.data_snapshot, val_metrics)
            if improved:
                save_checkpoint(best_path, model, meta, epoch=epoch)
            save_checkpoint(
                last_path, model, meta, optimizer=optimizer, scheduler=scheduler, epoch=epoch, extra_state=extra
            )
            shown = "-" if score is None else f"{score:.4f}"
            self._report(
                slot,
                member,
                epoch,
                epoch,
                stats["loss"],
                f"{name}: epoch {epoch}/{s.epochs} done, loss {stats['loss']:.4f}, val {s.main_metric} {shown}"
                if stats["loss"] is not None
                else f"{name}: epoch {epoch}/{s.epochs} done",
            )
            if stopped:
                break
        if not best_path.exists():
            raise ValueError(f"{folder}: the run finished without a best checkpoint (no epoch was trained)")
        return best_path, best_epoch, history

    # -- the whole stage ------------------------------------------------------------------------------
    def run(self) -> StageResult:
        s = self.s
        checkpoints, best_epochs = [], []
        for slot, (member, arch) in enumerate(self.members):
            path, best_epoch, history = self.train_member(slot, member, arch)
            checkpoints.append(path)
            best_epochs.append(best_epoch)
            self.history.extend(history)
        models = [load_checkpoint(p, map_location=s.device).model for p in checkpoints]
        plots_dir = self.out_dir / "plots"
        val_eval = self._evaluate(models, self.val_fields) if self.val_fields else None
        split = "test" if self.test_fields else "val" if self.val_fields else None
        final = (self._evaluate(models, self.test_fields) if split == "test" else val_eval) if split else None
        metrics = dict(final.metrics) if final else {}
        metrics["split"] = split
        written = _plots(s.stage, final, plots_dir) if final else []
        written.append(
            plots.learning_curve_png(
                self.history,
                plots_dir / f"{s.stage}_learning_curve.png",
                metric=s.main_metric,
                title=f"{s.stage} ({s.profile.name})",
            )
        )
        self._report(len(self.members) - 1, self.members[-1][0], s.epochs, s.epochs, None, f"{s.stage}: done")
        return StageResult(
            stage=s.stage,
            checkpoints=checkpoints,
            architecture="+".join(arch for _, arch in self.members),
            metrics=_jsonable(metrics),
            val_metrics=_jsonable(dict(val_eval.metrics) if val_eval else {}),
            best_epochs=best_epochs,
            history=_jsonable(self.history),
            plots=written,
        )


def _jsonable(value: Any) -> Any:
    """A JSON round trip (NaN/inf -> None) so results can be stored as they are."""

    def clean(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, Mapping):
            return {str(k): clean(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [clean(x) for x in v]
        if isinstance(v, np.generic):
            return clean(v.item())
        return v

    result: Any = json.loads(json.dumps(clean(value)))
    return result


def _plots(stage: str, evaluation: Evaluation, folder: Path) -> list[Path]:
    written: list[Path] = []
    if stage == "detector":
        if evaluation.curve is not None:
            written.append(
                plots.detection_pr_png(
                    evaluation.curve.recall, evaluation.curve.precision, folder / "detector_pr_curves.png"
                )
            )
        return written
    m = evaluation.metrics
    names = COUNTABILITY_CLASSES if stage == "countability" else CLASS_NAMES
    if evaluation.labels is None or evaluation.probabilities is None or not len(evaluation.labels):
        return written
    if stage == "countability":
        labels = [0, 1]
        from sklearn.metrics import confusion_matrix

        pred = (evaluation.probabilities[:, COUNTABLE_INDEX] >= 0.5).astype(int)
        matrix = confusion_matrix(evaluation.labels, pred, labels=labels).tolist()
        class_ids = [COUNTABLE_INDEX]
    else:
        labels, matrix = m["confusion_matrix"]["labels"], m["confusion_matrix"]["matrix"]
        class_ids = [int(k) for k in m["per_class"]]
    written.append(
        plots.confusion_matrix_png(
            labels, matrix, names, folder / f"{stage}_confusion_matrix.png", title=f"{stage} confusion matrix"
        )
    )
    written.append(
        plots.pr_curves_png(
            evaluation.labels,
            evaluation.probabilities,
            class_ids,
            names,
            folder / f"{stage}_pr_curves.png",
            title=f"{stage} precision-recall",
        )
    )
    return written


def train_stage(
    config: TrainConfig,
    fields: Sequence[FieldRecord],
    out_dir: Path,
    *,
    on_progress: ProgressCallback | None = None,
    data_snapshot: str = "",
) -> StageResult:
    """Train one stage (see the module docstring); ValueError for bad input, before anything is written."""
    settings = resolve_settings(config)
    fields = list(fields)
    bad = [f.key for f in fields if f.split not in SPLITS]
    if bad:
        raise ValueError(f"fields with an unknown split: {bad[:5]}")
    _check_trainable(settings.stage, _fields_of(fields, "train"))
    _check_images(fields)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with _threads(settings.num_threads if settings.device.type == "cpu" else None):
        return _Run(settings, fields, out_dir, on_progress, data_snapshot).run()


def evaluate_checkpoints(
    stage: str,
    checkpoints: Sequence[Path],
    fields: Sequence[FieldRecord],
    *,
    split: str = "test",
    device: str | None = None,
    plots_dir: Path | None = None,
) -> dict[str, Any]:
    """Metrics (contract keys) of saved checkpoints on one split; the classifier ensemble averages its members.

    Crops use each checkpoint's stored preprocessing (input size, normalisation, context margin).
    """
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; expected one of {', '.join(STAGES)}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    if not checkpoints:
        raise ValueError("no checkpoints to evaluate")
    if stage != "classifier" and len(checkpoints) != 1:
        raise ValueError(f"the {stage} stage has exactly one checkpoint, got {len(checkpoints)}")
    chosen = _fields_of(fields, split)
    if not chosen:
        raise ValueError(f"no fields in the {split} split")
    _check_images(chosen)
    torch_device = resolve_device(device or "auto")
    loaded = [
        load_checkpoint(p, expected_stage=_CHECKPOINT_STAGE[stage], map_location=torch_device) for p in checkpoints
    ]
    metas = [c.meta for c in loaded]
    cache = ImageCache()
    if stage == "detector":
        evaluation = evaluate_detailed(
            stage,
            [loaded[0].model],
            chosen,
            device=torch_device,
            nms_iou=float(metas[0].config.get("nms_iou", 0.5)),
            cache=cache,
        )
    else:
        specs = {
            CropSpec(int(m.input_size or 0), float(m.config.get("context_margin", 0.15)), m.mean, m.std) for m in metas
        }
        if len(specs) != 1:
            raise ValueError(f"the checkpoints were trained on different crops: {sorted(map(str, specs))}")
        evaluation = evaluate_detailed(
            stage, [c.model for c in loaded], chosen, device=torch_device, spec=specs.pop(), cache=cache
        )
    result = dict(evaluation.metrics)
    result["split"] = split
    if plots_dir is not None:
        _plots(stage, evaluation, Path(plots_dir))
    jsonable: dict[str, Any] = _jsonable(result)
    return jsonable
