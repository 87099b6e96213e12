"""Does the training input keep up with the model? Crops per second the classifier's DataLoader delivers, before
and after the crop cache, against the crops per second the model trains on.

    python -m benchmarks.train_input --json
    python -m benchmarks.train_input --fields 64 --cells-per-field 20 --workers 2 --epochs 3 --json

Data: BCCD fields (640x480 JPEG), each with --cells-per-field cells on a grid (60-90 px, classes in turn); the
classifier stage of --profile (default `cpu`), with its crop size, batch size and augmentation.

- `before`: each epoch builds a new DataLoader (workers started again, their decoded-field caches empty), every
  item decodes its field (once per worker per epoch) and cuts its crop: what training did before the crop cache.
- `after`: the cell windows are cut once (`cut_s`: fields decoded in the DataLoader workers), then one DataLoader
  with persistent workers serves every epoch from the shared windows (training/core/stage_run.py).
- `model`: training steps (forward, backward, optimizer) of the stage's first architecture on ready batches,
  in this process on --threads torch threads: crops per second the model consumes. (Default 1: on a loaded
  shared machine two OpenMP threads spin against other processes and the step rate collapses, 1.2 vs 55
  crops/s measured at load average 20 on 2 cores.)

Each loader runs --repeats times, alternately; the medians are reported.
`input_over_model` = after crops/s over model crops/s: above 1 the input keeps up. Loaders and the model are timed
apart (each alone on the machine), so the figures say which side limits training.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from benchmarks.prelabel_path import source_images
from training.core.config import StageSettings, TrainConfig, resolve_settings
from training.core.data import Augment, CropCache, CropDataset, SeededSampler, crop_reach, stack_crops, worker_context
from training.core.engine import crop_spec, engine_of, make_optimizer
from training.core.records import CellRecord, FieldRecord, classifier_items


def grid_fields(images: Sequence[Path], count: int, cells: int) -> list[FieldRecord]:
    """`count` fields over `images` in turn, each with `cells` boxes on a grid (sizes 60-90 px), classes in turn."""
    from PIL import Image

    fields = []
    for index in range(count):
        path = images[index % len(images)]
        with Image.open(path) as image:
            width, height = image.size
        columns = max(1, int(cells**0.5))
        rows = -(-cells // columns)
        boxes = []
        for cell in range(cells):
            side = 60 + 30 * ((cell * 7) % 11) / 10
            cx = (cell % columns + 0.5) * width / columns
            cy = (cell // columns + 0.5) * height / rows
            box = (
                max(0.0, cx - side / 2),
                max(0.0, cy - side / 2),
                min(width, cx + side / 2),
                min(height, cy + side / 2),
            )
            boxes.append(CellRecord(box, True, (index + cell) % 21))
        fields.append(FieldRecord(f"bench:{index}", str(path), width, height, f"P{index}", "train", tuple(boxes)))
    return fields


def _loader(settings: StageSettings, dataset: CropDataset, sampler: SeededSampler, workers: int) -> DataLoader[Any]:
    return DataLoader(
        dataset,
        batch_size=settings.training.batch_size,
        sampler=sampler,
        num_workers=workers,
        multiprocessing_context=worker_context(workers),
        persistent_workers=workers > 0,
        collate_fn=stack_crops,
    )


def _drain(loader: DataLoader[Any]) -> int:
    return sum(len(labels) for _, labels in loader)


def before(settings: StageSettings, dataset: CropDataset, workers: int, epochs: int) -> float:
    """Crops/s with a new loader per epoch over whole-field decoding."""
    crops, began = 0, time.perf_counter()
    for epoch in range(epochs):
        loader = DataLoader(
            dataset,
            batch_size=settings.training.batch_size,
            sampler=SeededSampler(len(dataset), epoch),
            num_workers=workers,
            collate_fn=stack_crops,
        )
        crops += _drain(loader)
    return crops / (time.perf_counter() - began)


def after(
    settings: StageSettings, dataset: CropDataset, workers: int, epochs: int, folder: Path
) -> tuple[float, float, float]:
    """(seconds to cut the windows, seconds to load them back from disk, crops/s of a persistent loader)."""
    reach = crop_reach(dataset.augment)
    began = time.perf_counter()
    crops = CropCache.cut(dataset.fields, dataset.items, dataset.spec, reach, workers=workers)
    cut_s = time.perf_counter() - began
    crops.save(folder / "windows.pt")
    began = time.perf_counter()
    dataset.crops = CropCache.load(folder / "windows.pt")
    load_s = time.perf_counter() - began
    sampler = SeededSampler(len(dataset), 0)
    loader = _loader(settings, dataset, sampler, workers)
    delivered, began = 0, time.perf_counter()
    for epoch in range(epochs):
        sampler.seed = epoch
        delivered += _drain(loader)
    return cut_s, load_s, delivered / (time.perf_counter() - began)


def model_rate(settings: StageSettings, steps: int) -> float:
    """Crops/s of training steps on ready random batches (median over `steps` steps after two warm-up steps)."""
    engine = engine_of(settings.spec)
    _, arch = settings.models()[0]
    model = engine.build(settings.spec, settings.profile, arch)
    engine.prepare(model, settings.device)
    optimizer = make_optimizer(settings, model)
    step = engine.step(settings.device, None, 0.0)
    size = crop_spec(settings).size
    batch = (
        torch.randn(settings.training.batch_size, 3, size, size),
        torch.randint(0, 21, (settings.training.batch_size,)),
    )
    model.train()
    times = []
    for index in range(steps + 2):
        began = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss, _ = step(model, batch)
        loss.backward()
        optimizer.step()
        if index >= 2:
            times.append(time.perf_counter() - began)
    return settings.training.batch_size / statistics.median(times)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fields", type=int, default=64)
    parser.add_argument("--cells-per-field", type=int, default=20)
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers (both loaders)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--model-steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the model's steps")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each loader (medians reported)")
    parser.add_argument("--images", type=Path, help="folder of JPEG fields (default: BCCD)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    settings = resolve_settings(TrainConfig(stage="classifier", profile=args.profile, device="cpu"))
    fields = grid_fields(source_images(args.images), args.fields, args.cells_per_field)
    items = classifier_items(fields, 21)
    spec = crop_spec(settings)
    load_before = os.getloadavg()[0]
    befores, afters = [], []
    for _ in range(args.repeats):  # alternated, so a change of load on a shared machine hits both alike
        befores.append(before(settings, CropDataset(fields, items, spec, augment=Augment()), args.workers, args.epochs))
        with tempfile.TemporaryDirectory(prefix="aicell-train-input-") as folder:
            dataset = CropDataset(fields, items, spec, augment=Augment())
            afters.append(after(settings, dataset, args.workers, args.epochs, Path(folder)))
    before_rate = statistics.median(befores)
    cut_s, load_s, after_rate = (statistics.median(values) for values in zip(*afters, strict=True))
    torch.set_num_threads(args.threads)
    model = model_rate(settings, args.model_steps)
    result = {
        "profile": args.profile,
        "arch": settings.models()[0][1],
        "crop_size": spec.size,
        "batch_size": settings.training.batch_size,
        "fields": args.fields,
        "crops_per_epoch": len(items),
        "epochs": args.epochs,
        "repeats": args.repeats,
        "workers": args.workers,
        "model_threads": args.threads,
        "before_crops_per_s": round(before_rate, 1),
        "after_crops_per_s": round(after_rate, 1),
        "cut_s": round(cut_s, 3),
        "cache_load_s": round(load_s, 3),
        "model_crops_per_s": round(model, 1),
        "input_over_model": {"before": round(before_rate / model, 2), "after": round(after_rate / model, 2)},
        "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>20}: {value}")


if __name__ == "__main__":
    main()
