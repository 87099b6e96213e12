"""Cell crops for the classifiers: a square window with context around each detected box.

Geometry: the crop keeps the box centre and has side `max(w, h) * (1 + 2 * margin)`, then is resampled to the
classifier's input size. Crops are cut batched on tensors with `grid_sample` (bilinear at each output pixel's
centre, the same sampling as `roi_align(aligned=True, sampling_ratio=1)` but about 10x faster on CPU), never per
crop in PIL. A crop shrunk by a factor r >= 2 samples a copy of the field average-pooled by floor(r), so
shrinking never skips pixels (anti-aliasing) while the bilinear step stays below 2x. Parts of the window
outside the field come out as the normalisation mean colour, i.e. 0 after normalisation, which is what the
classifier sees for "nothing here". `render_crop` returns the same pixels as a PIL image, so the UI shows what
the model saw.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.nn import functional

FieldImage = np.ndarray | Image.Image | Tensor
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def field_to_tensor(image: FieldImage, device: torch.device | str = "cpu") -> Tensor:
    """An RGB field as a float (3, H, W) tensor in [0, 1] on `device`.

    Accepts a PIL image, an (H, W, 3) uint8 or float [0, 1] array (RGB), a greyscale (H, W) array, or a
    (3, H, W) tensor already in [0, 1]. uint8 data moves to the device before conversion (4x less to copy).
    """
    if isinstance(image, Tensor):
        if image.ndim != 3 or image.shape[0] != 3:
            raise ValueError(f"a field tensor must be (3, H, W), got {tuple(image.shape)}")
        return image.to(device=device, dtype=torch.float32)
    array = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image)
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ValueError(f"a field must be (H, W, 3) RGB, got shape {array.shape}")
    rgb = array[:, :, :3]
    # torch.from_numpy shares memory and warns on read-only arrays (e.g. from PIL); copy those once.
    rgb = np.ascontiguousarray(rgb) if rgb.flags.writeable else np.array(rgb, order="C")
    tensor = torch.from_numpy(rgb).to(device).permute(2, 0, 1)
    if tensor.dtype == torch.uint8:
        return tensor.float().div_(255.0)
    return tensor.float()


def square_context_boxes(boxes_xyxy: Tensor, margin: float) -> Tensor:
    """Square windows (x1, y1, x2, y2) centred on each box, side max(w, h) * (1 + 2 * margin), at least 1 px."""
    x1, y1, x2, y2 = boxes_xyxy.unbind(dim=1)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    half = (torch.maximum(x2 - x1, y2 - y1) * (1 + 2 * margin)).clamp(min=1.0) / 2
    return torch.stack([cx - half, cy - half, cx + half, cy + half], dim=1)


def crop_cells(
    images: Sequence[Tensor],
    boxes_xyxy: Sequence[Tensor],
    *,
    size: int,
    margin: float,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> Tensor:
    """Normalised crops (N, 3, size, size) of every box of every field, in field order then box order.

    `images` are (3, H, W) tensors in [0, 1] (see `field_to_tensor`); `boxes_xyxy[i]` holds field i's boxes
    in pixels. Fields may differ in size.
    """
    if len(images) != len(boxes_xyxy):
        raise ValueError(f"{len(images)} fields but {len(boxes_xyxy)} box sets")
    device = images[0].device if images else torch.device("cpu")
    mean_t = torch.tensor(mean, dtype=torch.float32, device=device).view(3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32, device=device).view(1, 3, 1, 1)
    parts = [torch.zeros(0, 3, size, size, device=device)]
    for image, boxes in zip(images, boxes_xyxy, strict=True):
        if len(boxes) == 0:
            continue
        # Subtracting the mean first makes the zero fill for out-of-field samples the mean colour.
        windows = square_context_boxes(boxes.to(device=device, dtype=torch.float32), margin)
        parts.append(_sample_windows(image - mean_t, windows, size))
    return torch.cat(parts).div_(std_t)


def _sample_windows(image: Tensor, windows: Tensor, size: int) -> Tensor:
    """Bilinear size x size samples of square windows (x1, y1, x2, y2) of one (3, H, W) image, zero outside."""
    crops = image.new_empty(len(windows), image.shape[0], size, size)
    pool_factors = ((windows[:, 2] - windows[:, 0]) / size).floor().clamp(min=1).long()
    steps = (torch.arange(size, device=image.device, dtype=torch.float32) + 0.5) / size
    for factor in pool_factors.unique().tolist():
        index = (pool_factors == factor).nonzero().squeeze(1)
        # Pooled pixel p covers original pixels [p * factor, (p + 1) * factor): coordinates just divide.
        source = image if factor == 1 else functional.avg_pool2d(image.unsqueeze(0), factor, ceil_mode=True).squeeze(0)
        height, width = source.shape[-2:]
        x1, y1, x2, y2 = (windows[index] / factor).unbind(dim=1)
        # grid_sample with align_corners=False maps -1..1 onto the outer pixel edges, i.e. 0..width.
        xs = (x1[:, None] + steps * (x2 - x1)[:, None]) * (2 / width) - 1
        ys = (y1[:, None] + steps * (y2 - y1)[:, None]) * (2 / height) - 1
        grid = torch.stack(torch.broadcast_tensors(xs[:, None, :], ys[:, :, None]), dim=-1)
        batch = source.unsqueeze(0).expand(len(index), -1, -1, -1)
        crops[index] = functional.grid_sample(batch, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return crops


def denormalise(crops: Tensor, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> Tensor:
    """Normalised crops back to [0, 1] RGB."""
    mean_t = torch.tensor(mean, dtype=crops.dtype, device=crops.device).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=crops.dtype, device=crops.device).view(1, 3, 1, 1)
    return (crops * std_t + mean_t).clamp_(0.0, 1.0)


def render_crop(
    image: FieldImage,
    box_xywh: Sequence[float],
    *,
    size: int,
    margin: float,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> Image.Image:
    """The classifier's view of one cell (box as x, y, w, h pixels) as a size x size RGB PIL image."""
    x, y, w, h = (float(v) for v in box_xywh)
    boxes = torch.tensor([[x, y, x + w, y + h]], dtype=torch.float32)
    crop = crop_cells([field_to_tensor(image)], [boxes], size=size, margin=margin, mean=mean, std=std)
    pixels = denormalise(crop, mean, std)[0].mul(255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return Image.fromarray(pixels)
