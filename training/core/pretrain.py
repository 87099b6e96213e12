"""Self-supervised pretraining: a starting point for a stage's networks learnt from the lab's own fields (issue 15).

SimCLR (Chen et al. 2020) with lightly's NT-Xent loss and projection head: two augmented views of the same cell
crop (classifier, countability) or field tile (detector backbone) are pulled together, views of other examples in
the batch pushed apart. No label is read, so every stored box counts: truth, annotators' work and model predictions.

- Crop stages cut each view with `training.core.data.CropDataset`, the very crop code (geometry, context margin,
  input size, normalisation) training and inference use, with stronger window, colour and stain jitter.
- The detector backbone sees tiles of fields shrunk to the detector's input scale, normalised as its transform
  normalises them; its embedding is the global average of every feature level it returns.

The result is a plain state dict without a classifier head: for a crop stage it loads into
`timm.create_model(arch, num_classes=any)` (`inference.core.nets.load_backbone_weights`); for the detector it is the
state dict of `build_detector(arch).backbone`. Torch only, no Django.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from lightly.loss import NTXentLoss
from lightly.models.modules import SimCLRProjectionHead
from torch import Tensor, nn
from torch.nn import functional
from torch.utils.data import DataLoader, Dataset

from inference.core.nets import build_classifier, build_detector
from inference.core.profiles import DetectorConfig, Profile
from training.core.config import derive_seed
from training.core.data import (
    Augment,
    CropDataset,
    CropSpec,
    ImageCache,
    SeededSampler,
    colour_jitter,
    flip_rotate,
    worker_context,
)
from training.core.records import CropItem, FieldRecord
from training.core.stages import DETECTOR_BACKBONE, PRETRAIN_STAGES, pretrain_archs, stage_spec

METHOD = "simclr"

# Views differ more than training augmentation makes examples differ: that difference is what SimCLR learns to
# ignore. Hue stays small: a cell's colour (eosinophilic granules, basophilic cytoplasm) is part of its type.
VIEW_AUGMENT = Augment(zoom=(0.7, 1.4), shift=0.15, brightness=0.3, contrast=0.3, saturation=0.3, hue=0.04, stain=0.1)


@dataclass(frozen=True)
class PretrainSettings:
    epochs: int = 20
    batch_size: int = 64
    lr: float = 1.0e-3
    weight_decay: float = 1.0e-4
    warmup_epochs: float = 1.0
    temperature: float = 0.2  # NT-Xent; small batches learn better with a low temperature
    hidden_dim: int = 512
    projection_dim: int = 128
    tile_size: int = 128  # detector backbone: tile side in pixels of the detector's input scale
    tiles_per_field: int = 8  # detector backbone: tiles drawn per field and epoch
    seed: int = 0
    device: str = "cpu"
    num_threads: int | None = None
    num_workers: int = 0
    progress_every: int = 10
    time_limit_s: float | None = None  # the whole stage (all its networks); stops after the running step


@dataclass
class PretrainProgress:
    stage: str
    arch: str
    epoch: int
    epochs: int
    fraction: float  # 0..1 of the whole stage
    loss: float | None
    message: str


@dataclass
class PretrainResult:
    stage: str
    arch: str
    path: Path  # the backbone state dict (torch.save of a plain dict of tensors)
    examples: int
    epochs_run: int
    seconds: float
    history: list[dict[str, Any]] = field(default_factory=list)  # per epoch: epoch, loss, lr, seconds, steps
    stopped_early: bool = False


PretrainCallback = Callable[[PretrainProgress], None]


# ----------------------------------------------------------------------------------------------------------
# Encoders: what the stage's network turns a view into, and which of its weights are the starting point


class TimmEncoder(nn.Module):
    """A timm classifier up to its pre-logits features; the starting point is everything but the head."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model: Any = model

    def forward(self, images: Tensor) -> Tensor:
        features: Tensor = self.model.forward_head(self.model.forward_features(images), pre_logits=True)
        return features.flatten(1)

    def backbone_state(self) -> dict[str, Tensor]:
        classifier = self.model.pretrained_cfg.get("classifier") or ()
        heads = (classifier,) if isinstance(classifier, str) else tuple(classifier)
        return {
            key: tensor.detach().cpu().clone()
            for key, tensor in self.model.state_dict().items()
            if not any(key == head or key.startswith(f"{head}.") for head in heads)
        }


class DetectorBackboneEncoder(nn.Module):
    """A detector's backbone (feature pyramid included); the embedding averages every level it returns."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, images: Tensor) -> Tensor:
        features = self.backbone(images)
        levels = features.values() if isinstance(features, dict) else [features]
        return torch.cat([level.mean(dim=(2, 3)) for level in levels], dim=1)

    def backbone_state(self) -> dict[str, Tensor]:
        return {key: tensor.detach().cpu().clone() for key, tensor in self.backbone.state_dict().items()}


class SimCLRModel(nn.Module):
    def __init__(
        self, encoder: TimmEncoder | DetectorBackboneEncoder, input_shape: tuple[int, int, int], s: PretrainSettings
    ):
        super().__init__()
        self.encoder = encoder
        was_training = encoder.training
        encoder.eval()
        with torch.no_grad():
            width = int(encoder(torch.zeros(1, *input_shape)).shape[1])
        encoder.train(was_training)
        self.head = SimCLRProjectionHead(width, s.hidden_dim, s.projection_dim)

    def forward(self, images: Tensor) -> Tensor:
        projected: Tensor = self.head(self.encoder(images))
        return projected


# ----------------------------------------------------------------------------------------------------------
# Views


def all_cell_items(fields: Sequence[FieldRecord]) -> list[CropItem]:
    """Every stored box of every field, unlabelled (label 0): self-supervision reads no class."""
    return [CropItem(index, cell.box, 0) for index, record in enumerate(fields) for cell in record.cells]


class CropViews(Dataset[tuple[Tensor, Tensor]]):
    """Two differently jittered crops of the same cell, each cut as the pipeline cuts it."""

    def __init__(self, fields: Sequence[FieldRecord], spec: CropSpec, cache: ImageCache) -> None:
        self.crops = CropDataset(fields, all_cell_items(fields), spec, augment=VIEW_AUGMENT, cache=cache)

    def __len__(self) -> int:
        return len(self.crops)

    def __getitem__(self, key: tuple[int, int]) -> tuple[Tensor, Tensor]:
        index, seed = key
        first, _ = self.crops[(index, seed)]
        second, _ = self.crops[(index, derive_seed(seed, "second view"))]
        return first, second


class TileViews(Dataset[tuple[Tensor, Tensor]]):
    """Two jittered views of one random tile of a field, at the detector's input scale and normalisation."""

    def __init__(
        self,
        fields: Sequence[FieldRecord],
        *,
        tile_size: int,
        tiles_per_field: int,
        input_size: tuple[int, int] | None,
        mean: Sequence[float],
        std: Sequence[float],
        cache: ImageCache,
    ) -> None:
        self.fields = list(fields)
        self.tile_size = tile_size
        self.tiles_per_field = tiles_per_field
        self.input_size = input_size
        self.mean = torch.tensor(list(mean)).view(3, 1, 1)
        self.std = torch.tensor(list(std)).view(3, 1, 1)
        self.cache = cache
        self._shrunk: dict[int, Tensor] = {}

    def __len__(self) -> int:
        return len(self.fields) * self.tiles_per_field

    def _field(self, index: int) -> Tensor:
        """The field as the detector sees it: shrunk (antialiased) to its input size, kept for later epochs."""
        image = self._shrunk.get(index)
        if image is None:
            image = self.cache.get(self.fields[index].image_path).float().div_(255.0)
            if self.input_size is not None:
                min_size, max_size = self.input_size
                height, width = image.shape[-2:]
                scale = min(min_size / min(height, width), max_size / max(height, width))
                if scale < 1:
                    image = functional.interpolate(
                        image[None],
                        scale_factor=scale,
                        mode="bilinear",
                        recompute_scale_factor=True,
                        align_corners=False,
                        antialias=True,
                    )[0]
            self._shrunk[index] = image
        return image

    def _view(self, image: Tensor, centre: tuple[float, float], gen: torch.Generator) -> Tensor:
        height, width = image.shape[-2:]
        side = self.tile_size * math.exp((float(torch.rand((), generator=gen)) * 2 - 1) * math.log(1.4))
        side = min(side, height, width)
        cx = centre[0] + (float(torch.rand((), generator=gen)) * 2 - 1) * 0.15 * side
        cy = centre[1] + (float(torch.rand((), generator=gen)) * 2 - 1) * 0.15 * side
        left = int(min(max(cx - side / 2, 0), width - side))
        top = int(min(max(cy - side / 2, 0), height - side))
        part = image[:, top : top + int(side), left : left + int(side)]
        tile = functional.interpolate(
            part[None], size=(self.tile_size, self.tile_size), mode="bilinear", align_corners=False, antialias=True
        )[0]
        flips = torch.rand(2, generator=gen) < 0.5
        turns = int(torch.randint(0, 4, (), generator=gen))
        tile, _ = flip_rotate(tile, torch.zeros(0, 4), bool(flips[0]), bool(flips[1]), turns)
        tile = colour_jitter(tile, VIEW_AUGMENT, gen)
        return (tile - self.mean) / self.std

    def __getitem__(self, key: tuple[int, int]) -> tuple[Tensor, Tensor]:
        index, seed = key
        image = self._field(index // self.tiles_per_field)
        height, width = image.shape[-2:]
        gen = torch.Generator().manual_seed(seed)
        half = min(self.tile_size, height, width) / 2
        centre = (
            half + float(torch.rand((), generator=gen)) * max(0.0, width - 2 * half),
            half + float(torch.rand((), generator=gen)) * max(0.0, height - 2 * half),
        )
        return self._view(image, centre, gen), self._view(image, centre, gen)


def _stack_views(batch: Sequence[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor]:
    return torch.stack([a for a, _ in batch]), torch.stack([b for _, b in batch])


# ----------------------------------------------------------------------------------------------------------
# What each pretraining stage trains


@dataclass(frozen=True)
class _Target:
    arch: str
    encoder: TimmEncoder | DetectorBackboneEncoder
    views: Dataset[tuple[Tensor, Tensor]]
    input_shape: tuple[int, int, int]
    size: int


def _target(
    stage: str, profile: Profile, arch: str, fields: Sequence[FieldRecord], s: PretrainSettings, cache: ImageCache
) -> _Target:
    return (
        _tile_target(profile, arch, fields, s, cache)
        if stage == DETECTOR_BACKBONE
        else _crop_target(stage, profile, arch, fields, cache)
    )


def _tile_target(
    profile: Profile, arch: str, fields: Sequence[FieldRecord], s: PretrainSettings, cache: ImageCache
) -> _Target:
    config = profile.detector
    detector: Any = build_detector(arch, **config.model_kwargs())
    if not hasattr(detector, "backbone") or not hasattr(detector, "transform"):
        raise ValueError(f"{arch}: no backbone to pretrain")
    transform = detector.transform
    min_size = config.min_size if config.min_size is not None else min(transform.min_size)
    views = TileViews(
        fields,
        tile_size=s.tile_size,
        tiles_per_field=s.tiles_per_field,
        input_size=(int(min_size), int(config.max_size or transform.max_size)),
        mean=transform.image_mean,
        std=transform.image_std,
        cache=cache,
    )
    return _Target(arch, DetectorBackboneEncoder(detector.backbone), views, (3, s.tile_size, s.tile_size), len(views))


def _crop_target(stage: str, profile: Profile, arch: str, fields: Sequence[FieldRecord], cache: ImageCache) -> _Target:
    spec = stage_spec(stage)
    config = spec.model_config(profile)
    if isinstance(config, DetectorConfig):
        raise TypeError(f"the {stage} stage is a crop stage but its profile block is a detector's")
    norm = profile.normalisation
    views = CropViews(fields, CropSpec(config.input_size, profile.context_margin, norm.mean, norm.std), cache)
    model = build_classifier(arch, len(spec.classes))
    return _Target(arch, TimmEncoder(model), views, (3, config.input_size, config.input_size), len(views))


# ----------------------------------------------------------------------------------------------------------
# The loop


def _scheduler(
    s: PretrainSettings, optimizer: torch.optim.Optimizer, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LambdaLR:
    warmup = s.warmup_epochs * steps_per_epoch
    total = max(1, s.epochs * steps_per_epoch)

    def factor(step: int) -> float:
        warm = min(1.0, (step + 1) / warmup) if warmup > 0 else 1.0
        return warm * 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def pretrain_one_epoch(
    model: SimCLRModel,
    loader: DataLoader[Any],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    criterion: nn.Module,
    *,
    device: torch.device,
    on_step: Callable[[int, int, float], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> dict[str, Any]:
    """One pass over the views; returns {loss (mean NT-Xent), steps, lr, seconds, stopped}."""
    model.train()
    started = time.monotonic()
    total, steps, stopped = 0.0, 0, False
    count = len(loader)
    for first, second in loader:
        first, second = first.to(device, non_blocking=True), second.to(device, non_blocking=True)
        loss = criterion(model(first), model(second))
        if not torch.isfinite(loss):
            raise FloatingPointError(f"self-supervised loss is {loss.item()} at step {steps + 1}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        steps += 1
        total += float(loss.item())
        if on_step is not None:
            on_step(steps, count, float(loss.item()))
        if should_stop is not None and should_stop():
            stopped = True
            break
    return {
        "loss": total / steps if steps else None,
        "steps": steps,
        "lr": optimizer.param_groups[0]["lr"],
        "seconds": time.monotonic() - started,
        "stopped": stopped,
    }


@contextlib.contextmanager
def _threads(count: int | None) -> Iterator[None]:
    previous = torch.get_num_threads()
    if count is not None:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def pretrain_stage(
    stage: str,
    profile: Profile,
    fields: Sequence[FieldRecord],
    out_dir: Path,
    settings: PretrainSettings,
    *,
    on_progress: PretrainCallback | None = None,
) -> list[PretrainResult]:
    """Pretrain each network of `stage` (one per classifier ensemble member) on `fields`, writing
    `out_dir/<arch>.pt` after every epoch (a stopped run keeps its last whole epoch). ValueError for bad input,
    before anything is written."""
    archs = pretrain_archs(stage, profile)
    if settings.epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {settings.epochs}")
    boxes = sum(len(record.cells) for record in fields)
    if stage == DETECTOR_BACKBONE and not fields:
        raise ValueError("no fields to pretrain the detector backbone on")
    if stage != DETECTOR_BACKBONE and boxes < 2:
        raise ValueError(f"the {stage} stage pretrains on cell crops: {boxes} stored box(es), at least 2 needed")
    missing = [record for record in fields if not Path(record.image_path).is_file()]
    if missing:
        raise ValueError(f"{len(missing)} field image(s) not found, first {missing[0].key}: {missing[0].image_path}")
    device = torch.device(settings.device)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cache = ImageCache()
    started = time.monotonic()
    results = []
    with _threads(settings.num_threads if device.type == "cpu" else None):
        for slot, arch in enumerate(archs):
            results.append(
                _pretrain_one(
                    stage, profile, arch, slot, len(archs), fields, out_dir, settings, cache, started, on_progress
                )
            )
            if results[-1].stopped_early:
                break
    return results


def _pretrain_one(
    stage: str,
    profile: Profile,
    arch: str,
    slot: int,
    count: int,
    fields: Sequence[FieldRecord],
    out_dir: Path,
    s: PretrainSettings,
    cache: ImageCache,
    started: float,
    on_progress: PretrainCallback | None,
) -> PretrainResult:
    device = torch.device(s.device)
    torch.manual_seed(derive_seed(s.seed, "pretrain", stage, arch, "init"))
    target = _target(stage, profile, arch, fields, s, cache)
    model = SimCLRModel(target.encoder, target.input_shape, s).to(device)
    batch_size = min(s.batch_size, target.size)
    steps_per_epoch = max(1, target.size // batch_size)  # drop_last: NT-Xent and BatchNorm need whole batches
    optimizer = torch.optim.AdamW(model.parameters(), lr=s.lr, weight_decay=s.weight_decay)
    scheduler = _scheduler(s, optimizer, steps_per_epoch)
    criterion = NTXentLoss(temperature=s.temperature)
    path = out_dir / f"{arch}.pt"
    history: list[dict[str, Any]] = []

    def report(epoch: float, loss: float | None, message: str) -> None:
        if on_progress is not None:
            fraction = min(1.0, (slot + epoch / s.epochs) / count)
            on_progress(PretrainProgress(stage, arch, math.ceil(epoch), s.epochs, fraction, loss, message))

    def out_of_time() -> bool:
        return s.time_limit_s is not None and time.monotonic() - started >= s.time_limit_s

    arch_started = time.monotonic()
    stopped = False
    for epoch in range(1, s.epochs + 1):
        epoch_seed = derive_seed(s.seed, "pretrain", stage, arch, "epoch", epoch)
        loader: DataLoader[Any] = DataLoader(
            target.views,
            batch_size=batch_size,
            sampler=SeededSampler(target.size, epoch_seed),
            num_workers=s.num_workers,
            multiprocessing_context=worker_context(s.num_workers),
            collate_fn=_stack_views,
            drop_last=True,
        )

        def on_step(step: int, steps: int, loss: float, epoch: int = epoch) -> None:
            if step % s.progress_every == 0 and step < steps:
                report(
                    epoch - 1 + step / steps,
                    loss,
                    f"{arch}: epoch {epoch}/{s.epochs}, step {step}/{steps}, loss {loss:.4f}",
                )

        stats = pretrain_one_epoch(
            model, loader, optimizer, scheduler, criterion, device=device, on_step=on_step, should_stop=out_of_time
        )
        stopped = bool(stats["stopped"])
        if stopped and history:
            break  # a part of an epoch does not replace the last whole one
        history.append(
            {key: stats[key] for key in ("loss", "steps", "lr")}
            | {"epoch": epoch, "seconds": round(stats["seconds"], 3)}
        )
        torch.save(target.encoder.backbone_state(), path)
        loss = stats["loss"]
        report(
            epoch,
            loss,
            f"{arch}: epoch {epoch}/{s.epochs} done, loss {loss:.4f}" if loss is not None else f"{arch}: epoch {epoch}",
        )
        if stopped or out_of_time():
            stopped = stopped or epoch < s.epochs
            break
    return PretrainResult(
        stage=stage,
        arch=arch,
        path=path,
        examples=target.size,
        epochs_run=len(history),
        seconds=round(time.monotonic() - arch_started, 3),
        history=history,
        stopped_early=stopped,
    )


__all__ = [
    "DETECTOR_BACKBONE",
    "PRETRAIN_STAGES",
    "PretrainProgress",
    "PretrainResult",
    "PretrainSettings",
    "SimCLRModel",
    "pretrain_archs",
    "pretrain_one_epoch",
    "pretrain_stage",
]
