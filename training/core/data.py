"""Training datasets built from FieldRecords, and the augmentations of stained smear fields.

- `DetectionDataset`: whole fields and all their boxes (one class, "cell") for the detector.
- `CropDataset`: one item per cell, cut with `inference.core.crops.crop_cells` -- the very function, geometry
  (context margin), input size and normalisation the pipeline uses at inference -- labelled with the
  countable flag or the taxonomy class.

Augmentation (training only): flips, 90-degree rotations, zoom in/out (detector) or window jitter (crops),
colour jitter and a stain jitter in optical-density space. Each item's randomness comes from a seed the
sampler hands over with its index (`SeededSampler`), never from the global RNG, so a run is reproducible
whatever the number of DataLoader workers, and a resumed run repeats the epochs it would have run.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.nn import functional
from torch.utils.data import DataLoader, Dataset, Sampler
from torchvision.transforms.v2 import functional as tvf

from inference.core.crops import crop_cells, denormalise, square_context_boxes
from training.core.records import CropItem, FieldRecord

# Stain vectors (rows: haematoxylin-, eosin-, DAB-like) of scikit-image's rgb_from_hed. Romanowsky stains
# (Wright-Giemsa) are not H&E, but jittering along these optical-density axes varies dye amounts plausibly.
_RGB_FROM_HED = torch.tensor([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]])
_RGB_FROM_HED = _RGB_FROM_HED / _RGB_FROM_HED.norm(dim=1, keepdim=True)
_HED_FROM_RGB = torch.linalg.inv(_RGB_FROM_HED)


def load_field(path: str) -> Tensor:
    """An image file as a uint8 (3, H, W) RGB tensor."""
    with Image.open(path) as image:
        array = np.array(image.convert("RGB"))
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).contiguous()


class ImageCache:
    """Decoded fields (uint8) kept in memory up to `budget_bytes`, least recently used dropped first."""

    def __init__(self, budget_bytes: int = 2 << 30) -> None:
        self.budget_bytes = budget_bytes
        self._images: OrderedDict[str, Tensor] = OrderedDict()
        self._bytes = 0

    def get(self, path: str) -> Tensor:
        image = self._images.get(path)
        if image is not None:
            self._images.move_to_end(path)
            return image
        image = load_field(path)
        size = image.numel()
        if size <= self.budget_bytes:
            self._images[path] = image
            self._bytes += size
            while self._bytes > self.budget_bytes:
                _, dropped = self._images.popitem(last=False)
                self._bytes -= dropped.numel()
        return image


@dataclass(frozen=True)
class CropSpec:
    """How the pipeline cuts a cell for a classifier: from the profile (or a checkpoint's metadata)."""

    size: int
    margin: float
    mean: tuple[float, ...]
    std: tuple[float, ...]


@dataclass(frozen=True)
class Augment:
    """Augmentation strengths; `Augment.none()` switches everything off."""

    flips: bool = True
    rot90: bool = True
    zoom: tuple[float, float] = (0.8, 1.25)  # detector: field zoom range; crops: window scale 1/zoom
    zoom_p: float = 0.5
    shift: float = 0.05  # crops: window centre shift, fraction of the window side
    brightness: float = 0.15
    contrast: float = 0.15
    saturation: float = 0.15
    hue: float = 0.03
    stain: float = 0.05  # optical-density jitter: scale 1 +- stain, shift +- stain
    enabled: bool = True

    @classmethod
    def none(cls) -> Augment:
        return cls(enabled=False)


def _uniform(gen: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=gen))


def colour_jitter(image: Tensor, aug: Augment, gen: torch.Generator) -> Tensor:
    """Brightness/contrast/saturation/hue and stain jitter of a float (3, H, W) image in [0, 1]."""
    if aug.stain > 0:
        image = stain_jitter(image, aug.stain, gen)
    ops = [
        (tvf.adjust_brightness, aug.brightness, 1.0),
        (tvf.adjust_contrast, aug.contrast, 1.0),
        (tvf.adjust_saturation, aug.saturation, 1.0),
        (tvf.adjust_hue, aug.hue, 0.0),
    ]
    order = torch.randperm(len(ops), generator=gen).tolist()
    for index in order:
        op, strength, centre = ops[index]
        if strength > 0:
            image = op(image, _uniform(gen, centre - strength, centre + strength))
    return image.clamp_(0.0, 1.0)


def stain_jitter(image: Tensor, sigma: float, gen: torch.Generator) -> Tensor:
    """Scale and shift each stain's optical density by 1 +- sigma and +- sigma (Tellez et al. 2018)."""
    od = -torch.log(image.clamp(min=1e-3))  # (3, H, W)
    stains = torch.einsum("chw,cs->shw", od, _HED_FROM_RGB.to(image))
    alpha = 1 + (torch.rand(3, generator=gen) * 2 - 1) * sigma
    beta = (torch.rand(3, generator=gen) * 2 - 1) * sigma
    stains = stains * alpha.to(image).view(3, 1, 1) + beta.to(image).view(3, 1, 1)
    od = torch.einsum("shw,sc->chw", stains, _RGB_FROM_HED.to(image))
    return torch.exp(-od).clamp_(0.0, 1.0)


def flip_rotate(image: Tensor, boxes: Tensor, hflip: bool, vflip: bool, quarter_turns: int) -> tuple[Tensor, Tensor]:
    """Flips and counter-clockwise 90-degree turns of a (C, H, W) image with its (K, 4) xyxy pixel boxes."""
    boxes = boxes.clone()
    height, width = image.shape[-2:]
    if hflip:
        image = image.flip(-1)
        boxes[:, [0, 2]] = width - boxes[:, [2, 0]]
    if vflip:
        image = image.flip(-2)
        boxes[:, [1, 3]] = height - boxes[:, [3, 1]]
    for _ in range(quarter_turns % 4):
        width = image.shape[-1]
        image = torch.rot90(image, 1, dims=(-2, -1))  # (x, y) -> (y, W - x)
        x0, y0, x1, y1 = boxes.unbind(dim=1)
        boxes = torch.stack([y0, width - x1, y1, width - x0], dim=1)
    return image, boxes


def zoom(image: Tensor, boxes: Tensor, scale: float, gen: torch.Generator) -> tuple[Tensor, Tensor]:
    """Zoom a float (3, H, W) field by `scale` keeping its size: >1 crops a random part and enlarges it,
    <1 shrinks it onto a canvas of the field's mean colour at a random place. Boxes follow (then clipped)."""
    _, height, width = image.shape
    if scale >= 1:
        crop_w, crop_h = max(1, round(width / scale)), max(1, round(height / scale))
        left = int(torch.randint(0, width - crop_w + 1, (), generator=gen))
        top = int(torch.randint(0, height - crop_h + 1, (), generator=gen))
        part = image[:, top : top + crop_h, left : left + crop_w]
        image = functional.interpolate(part[None], size=(height, width), mode="bilinear", align_corners=False)[0]
        sx, sy = width / crop_w, height / crop_h
        boxes = (boxes - torch.tensor([left, top, left, top], dtype=boxes.dtype)) * torch.tensor(
            [sx, sy, sx, sy], dtype=boxes.dtype
        )
    else:
        small_w, small_h = max(1, round(width * scale)), max(1, round(height * scale))
        small = functional.interpolate(
            image[None], size=(small_h, small_w), mode="bilinear", align_corners=False, antialias=True
        )[0]
        left = int(torch.randint(0, width - small_w + 1, (), generator=gen))
        top = int(torch.randint(0, height - small_h + 1, (), generator=gen))
        canvas = image.mean(dim=(1, 2), keepdim=True).expand(-1, height, width).clone()
        canvas[:, top : top + small_h, left : left + small_w] = small
        image = canvas
        sx, sy = small_w / width, small_h / height
        boxes = boxes * torch.tensor([sx, sy, sx, sy], dtype=boxes.dtype) + torch.tensor(
            [left, top, left, top], dtype=boxes.dtype
        )
    return image, boxes


def clip_boxes(boxes: Tensor, width: int, height: int, *, min_visible: float = 0.4, min_side: float = 2.0) -> Tensor:
    """Boxes clipped to the field; those with less than `min_visible` of their area left, or thinner than
    `min_side` pixels, are dropped (a sliver of a cell at the edge is no target)."""
    if len(boxes) == 0:
        return boxes
    area = (boxes[:, 2] - boxes[:, 0]).clamp(min=0) * (boxes[:, 3] - boxes[:, 1]).clamp(min=0)
    clipped = boxes.clone()
    clipped[:, 0::2] = clipped[:, 0::2].clamp(0, width)
    clipped[:, 1::2] = clipped[:, 1::2].clamp(0, height)
    w = clipped[:, 2] - clipped[:, 0]
    h = clipped[:, 3] - clipped[:, 1]
    keep = (w >= min_side) & (h >= min_side) & (w * h >= min_visible * area.clamp(min=1e-6))
    return clipped[keep]


class SeededSampler(Sampler[tuple[int, int]]):
    """Yields (index, item seed) pairs for one epoch: a permutation, or a weighted draw with replacement.

    Everything derives from `seed`, so the same seed gives the same epoch on any machine and any worker count.
    """

    def __init__(self, size: int, seed: int, weights: Sequence[float] | None = None) -> None:
        self.size = size
        self.seed = seed
        self.weights = None if weights is None else torch.as_tensor(weights, dtype=torch.double)

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[tuple[int, int]]:
        gen = torch.Generator().manual_seed(self.seed)
        if self.weights is None:
            order = torch.randperm(self.size, generator=gen)
        else:
            order = torch.multinomial(self.weights, self.size, replacement=True, generator=gen)
        seeds = torch.randint(0, 2**62, (self.size,), generator=gen)
        yield from zip(order.tolist(), seeds.tolist(), strict=True)


def _key(item: int | tuple[int, int]) -> tuple[int, int | None]:
    return (item, None) if isinstance(item, int) else (int(item[0]), int(item[1]))


def _boxes_of(field: FieldRecord) -> Tensor:
    if not field.cells:
        return torch.zeros(0, 4)
    return torch.tensor([c.box for c in field.cells], dtype=torch.float32)


class DetectionDataset(Dataset[tuple[Tensor, dict[str, Tensor]]]):
    """Whole fields as float (3, H, W) [0, 1] tensors with targets {"boxes": (K, 4) xyxy, "labels": (K,) ones}."""

    def __init__(
        self,
        fields: Sequence[FieldRecord],
        *,
        augment: Augment | None = None,
        cache: ImageCache | None = None,
        input_size: tuple[int, int] | None = None,
        fixed_size: tuple[int, int] | None = None,
    ) -> None:
        """`input_size` = the detector's (min_size, max_size): fields larger than that are first shrunk the way
        torchvision's detection transform shrinks them (so augmentation runs on fewer pixels and the model
        sees what it sees at inference). `fixed_size` = (width, height) of a fixed-size model (SSD): every field
        is resized to exactly that, as SSD's transform does, aspect ratio not kept."""
        self.fields = list(fields)
        self.augment = augment or Augment.none()
        self.cache = cache or ImageCache()
        self.input_size = input_size
        self.fixed_size = fixed_size

    def __len__(self) -> int:
        return len(self.fields)

    def _shrink(self, image: Tensor, boxes: Tensor) -> tuple[Tensor, Tensor]:
        height, width = image.shape[-2:]
        # Same calls as the detector's transform (inference.core.nets.AntialiasedTransform).
        if self.fixed_size is not None:
            resized = functional.interpolate(
                image[None],
                size=(self.fixed_size[1], self.fixed_size[0]),
                mode="bilinear",
                align_corners=False,
                antialias=True,
            )[0]
        elif self.input_size is None:
            return image, boxes
        else:
            min_size, max_size = self.input_size
            scale = min(min_size / min(height, width), max_size / max(height, width))
            if scale >= 1:
                return image, boxes
            resized = functional.interpolate(
                image[None],
                scale_factor=scale,
                mode="bilinear",
                recompute_scale_factor=True,
                align_corners=False,
                antialias=True,
            )[0]
        sx, sy = resized.shape[-1] / width, resized.shape[-2] / height
        return resized, boxes * torch.tensor([sx, sy, sx, sy], dtype=boxes.dtype)

    def __getitem__(self, item: int | tuple[int, int]) -> tuple[Tensor, dict[str, Tensor]]:
        index, seed = _key(item)
        field = self.fields[index]
        image, boxes = self._shrink(self.cache.get(field.image_path).float().div_(255.0), _boxes_of(field))
        aug = self.augment
        if aug.enabled and seed is not None:
            gen = torch.Generator().manual_seed(seed)
            flips = torch.rand(2, generator=gen) < 0.5
            turns = int(torch.randint(0, 4, (), generator=gen)) if aug.rot90 else 0
            if aug.flips or turns:
                image, boxes = flip_rotate(
                    image, boxes, bool(flips[0]) and aug.flips, bool(flips[1]) and aug.flips, turns
                )
            if float(torch.rand((), generator=gen)) < aug.zoom_p:
                low, high = math.log(aug.zoom[0]), math.log(aug.zoom[1])
                image, boxes = zoom(image, boxes, math.exp(_uniform(gen, low, high)), gen)
            image = colour_jitter(image, aug, gen)
        boxes = clip_boxes(boxes, image.shape[-1], image.shape[-2], min_visible=0.4 if aug.enabled else 0.0)
        labels = torch.ones(len(boxes), dtype=torch.int64)
        return image, {"boxes": boxes, "labels": labels}


def detection_collate(
    batch: Sequence[tuple[Tensor, dict[str, Tensor]]],
) -> tuple[list[Tensor], list[dict[str, Tensor]]]:
    return [image for image, _ in batch], [target for _, target in batch]


def crop_reach(augment: Augment) -> float:
    """How far (fraction of a cell's longer side, from its centre) the window jitter of `augment` can move a crop
    window's box edge: the largest window scale over two, plus the largest centre shift."""
    if not augment.enabled:
        return 0.5
    return max(augment.zoom[1], 1 / augment.zoom[0]) ** 0.5 / 2 + augment.shift


def worker_context(num_workers: int) -> str | None:
    """The start method of DataLoader worker processes: "forkserver" (fresh processes forked from a clean server).
    A plain fork copies the caller's state, and a Celery worker's (or a test process's) Redis connection pool then
    closes its inherited sockets in the child's after-fork hooks, blocking on a read for good: the run hangs."""
    return "forkserver" if num_workers > 0 else None


class CropCache:
    """Every cell's oversized window of its field as uint8 pixels in the field's own grid, cut once per dataset
    (training/core/stage_run.py keeps them on disk by snapshot and crop settings), so an epoch never decodes a
    field: one flat buffer the DataLoader workers share, item i = (pixels (3, h, w), origin (x, y) in the field).

    A window covers every jittered crop window of its cell with the context crop_cells samples, and starts on the
    pooling grid of the cell's un-jittered window, so an un-augmented crop equals the one cut from the whole field.
    """

    def __init__(self, data: Tensor, shapes: Tensor, offsets: Tensor, origins: Tensor) -> None:
        self.data, self.shapes, self.offsets, self.origins = data, shapes, offsets, origins

    def __len__(self) -> int:
        return len(self.shapes)

    def get(self, index: int) -> tuple[Tensor, Tensor]:
        height, width = self.shapes[index].tolist()
        start = int(self.offsets[index])
        pixels = self.data[start : start + 3 * height * width].view(3, height, width)
        return pixels, self.origins[index]

    @classmethod
    def cut(
        cls, fields: Sequence[FieldRecord], items: Sequence[CropItem], spec: CropSpec, reach: float, workers: int = 0
    ) -> CropCache:
        """The windows of `items`; fields decoded once each, in `workers` DataLoader processes when > 0."""
        by_field: dict[int, list[int]] = {}
        for index, item in enumerate(items):
            by_field.setdefault(item.field, []).append(index)
        jobs = _WindowJobs(
            [(fields[f].image_path, [items[i].box for i in indices], spec, reach) for f, indices in by_field.items()]
        )
        parts: list[Tensor] = [torch.zeros(0, dtype=torch.uint8)] * len(items)
        origins = torch.zeros(len(items), 2, dtype=torch.float32)
        loader = DataLoader(jobs, batch_size=None, num_workers=workers, multiprocessing_context=worker_context(workers))
        for indices, (windows, corners) in zip(by_field.values(), loader, strict=True):
            for index, window, corner in zip(indices, windows, corners, strict=True):
                parts[index], origins[index] = window, corner
        shapes = torch.tensor([list(part.shape[1:]) for part in parts], dtype=torch.int64).view(-1, 2)
        sizes = shapes.prod(dim=1) * 3
        offsets = torch.cumsum(sizes, 0) - sizes
        data = torch.cat([part.reshape(-1) for part in parts]) if parts else torch.zeros(0, dtype=torch.uint8)
        return cls(data, shapes, offsets, origins)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{os.getpid()}.part")
        torch.save(
            {"data": self.data, "shapes": self.shapes, "offsets": self.offsets, "origins": self.origins}, partial
        )
        partial.replace(path)  # atomic: another run never reads half a cache

    @classmethod
    def load(cls, path: Path) -> CropCache:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        return cls(payload["data"], payload["shapes"], payload["offsets"], payload["origins"])


def crop_cache_key(
    data_snapshot: str, fields: Sequence[FieldRecord], items: Sequence[CropItem], spec: CropSpec, reach: float
) -> str:
    """What a crop cache depends on: the snapshot, the crop settings and every item's image and box."""
    digest = hashlib.sha256(json.dumps([data_snapshot, spec.size, spec.margin, reach]).encode())
    for item in items:
        digest.update(json.dumps([fields[item.field].image_path, list(item.box)]).encode())
    return digest.hexdigest()[:32]


class _WindowJobs(Dataset[tuple[list[Tensor], list[Tensor]]]):
    """One field per item: decode it and cut its cells' windows (runs in DataLoader workers)."""

    def __init__(self, jobs: list[tuple[str, list[tuple[float, float, float, float]], CropSpec, float]]) -> None:
        self.jobs = jobs

    def __len__(self) -> int:
        return len(self.jobs)

    def __getitem__(self, index: int) -> tuple[list[Tensor], list[Tensor]]:
        path, boxes, spec, reach = self.jobs[index]
        pixels = load_field(path)
        windows, corners = [], []
        for box in boxes:
            part, corner = _cell_window(pixels, box, spec, reach)
            windows.append(part.clone())  # its own storage: the field is let go
            corners.append(corner)
        return windows, corners


def _cell_window(
    pixels: Tensor, box: tuple[float, float, float, float], spec: CropSpec, reach: float
) -> tuple[Tensor, Tensor]:
    x0, y0, x1, y1 = box
    cx, cy, side = (x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0)
    own = square_context_boxes(torch.tensor([box], dtype=torch.float32), spec.margin)[0]
    half = reach * side
    widest = square_context_boxes(torch.tensor([[cx - half, cy - half, cx + half, cy + half]]), spec.margin)[0]
    factor, reach_px = _pool_factor(own, spec), _pool_factor(widest, spec)
    height, width = pixels.shape[-2:]
    x_start, x_stop = _span(float(widest[0]), float(widest[2]), width, factor, reach_px)
    y_start, y_stop = _span(float(widest[1]), float(widest[3]), height, factor, reach_px)
    if x_start >= width or y_start >= height or x_stop <= 0 or y_stop <= 0:
        return pixels[:, :0, :0], torch.zeros(2)
    return pixels[:, y_start:y_stop, x_start:x_stop], torch.tensor([x_start, y_start], dtype=torch.float32)


class CropDataset(Dataset[tuple[Tensor, int]]):
    """One normalised crop (3, S, S) per cell, cut exactly as the pipeline cuts it, with its label."""

    def __init__(
        self,
        fields: Sequence[FieldRecord],
        items: Sequence[CropItem],
        spec: CropSpec,
        *,
        augment: Augment | None = None,
        cache: ImageCache | None = None,
        crops: CropCache | None = None,
    ) -> None:
        """`crops`: the items' windows cut beforehand (`CropCache.cut` with this augment's `crop_reach`);
        without them each item is cut from its decoded field (`cache`)."""
        self.fields = list(fields)
        self.items = list(items)
        self.spec = spec
        self.augment = augment or Augment.none()
        self.cache = cache or ImageCache()
        self.crops = crops

    def __len__(self) -> int:
        return len(self.items)

    @property
    def labels(self) -> list[int]:
        return [item.label for item in self.items]

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[Tensor, int]:
        index, seed = _key(key)
        item = self.items[index]
        box = torch.tensor([item.box], dtype=torch.float32)
        if self.crops is not None:
            field_pixels, origin = self.crops.get(index)
            box = box - origin.repeat(2)  # the window's own coordinates
        else:
            field_pixels = self.cache.get(self.fields[item.field].image_path)
        aug = self.augment
        gen = torch.Generator().manual_seed(seed) if aug.enabled and seed is not None else None
        if gen is not None:
            # Window jitter: a slightly larger/smaller, slightly shifted window (the crop size stays the same).
            x0, y0, x1, y1 = box[0].tolist()
            side = max(x1 - x0, y1 - y0)
            scale = math.exp(_uniform(gen, -math.log(aug.zoom[1]), -math.log(aug.zoom[0])) * 0.5)
            dx, dy = (_uniform(gen, -aug.shift, aug.shift) * side for _ in range(2))
            cx, cy = (x0 + x1) / 2 + dx, (y0 + y1) / 2 + dy
            half_w, half_h = (x1 - x0) * scale / 2, (y1 - y0) * scale / 2
            box = torch.tensor([[cx - half_w, cy - half_h, cx + half_w, cy + half_h]])
        spec = self.spec
        crop = window_crop(field_pixels, box, spec)
        if gen is not None:
            flips = torch.rand(2, generator=gen) < 0.5
            turns = int(torch.randint(0, 4, (), generator=gen)) if aug.rot90 else 0
            rgb = denormalise(crop, spec.mean, spec.std)[0]
            rgb, _ = flip_rotate(
                rgb, torch.zeros(0, 4), bool(flips[0]) and aug.flips, bool(flips[1]) and aug.flips, turns
            )
            rgb = colour_jitter(rgb, aug, gen)
            mean = torch.tensor(spec.mean).view(3, 1, 1)
            std = torch.tensor(spec.std).view(3, 1, 1)
            return (rgb - mean) / std, item.label
        return crop[0], item.label


def _pool_factor(window: Tensor, spec: CropSpec) -> int:
    """crop_cells' average-pooling factor for a square window (x1, y1, x2, y2)."""
    return max(1, math.floor(float(window[2] - window[0]) / spec.size))


def _span(low: float, high: float, limit: int, factor: int, reach: int) -> tuple[int, int]:
    """Pixels [start, stop) of one axis around [low, high]: aligned to the pooling grid of `factor` and reaching two
    pooled pixels of `reach` beyond it (then clipped to the field)."""
    start = max(0, (math.floor(low) // factor - 2 * math.ceil(reach / factor)) * factor)
    stop = min(limit, (math.ceil(high) // factor + 1 + 2 * math.ceil(reach / factor)) * factor)
    return start, max(stop, start + 1)


def window_crop(field_pixels: Tensor, box: Tensor, spec: CropSpec) -> Tensor:
    """`crop_cells` of one box, run on just the part of the uint8 field around it (a large marrow field is not
    converted to float for every cell). The part is aligned to crop_cells' pooling grid and reaches two
    pooled pixels beyond the window (clipped to the field), so the result equals crop_cells on the whole
    field up to float rounding."""
    window = square_context_boxes(box, spec.margin)[0]
    factor = _pool_factor(window, spec)
    height, width = field_pixels.shape[-2:]
    x_start, x_stop = _span(float(window[0]), float(window[2]), width, factor, factor)
    y_start, y_stop = _span(float(window[1]), float(window[3]), height, factor, factor)
    if x_start >= width or y_start >= height or x_stop <= 0 or y_stop <= 0:
        part, offset = field_pixels, torch.zeros(4)  # the window lies outside the field: all fill either way
    else:
        part = field_pixels[:, y_start:y_stop, x_start:x_stop]
        offset = torch.tensor([x_start, y_start, x_start, y_start], dtype=torch.float32)
    image = part.float().div_(255.0)
    return crop_cells([image], [box - offset], size=spec.size, margin=spec.margin, mean=spec.mean, std=spec.std)


def balanced_weights(labels: Sequence[int], power: float) -> list[float]:
    """Sampling weight per item: (class count) ** -power (0 = natural frequencies, 1 = classes equally often)."""
    counts: dict[int, int] = {}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    return [counts[label] ** -power for label in labels]


def stack_crops(batch: Sequence[tuple[Tensor, int]]) -> tuple[Tensor, Tensor]:
    return torch.stack([crop for crop, _ in batch]), torch.tensor([label for _, label in batch], dtype=torch.int64)


__all__: list[Any] = [
    "Augment",
    "CropCache",
    "CropDataset",
    "CropSpec",
    "DetectionDataset",
    "ImageCache",
    "SeededSampler",
    "balanced_weights",
    "clip_boxes",
    "crop_cache_key",
    "crop_reach",
    "detection_collate",
    "flip_rotate",
    "load_field",
    "zoom",
]
