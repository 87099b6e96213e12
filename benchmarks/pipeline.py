"""Throughput of the three-stage pipeline on real fields, and its overhead over the bare forward passes.

    python -m benchmarks.pipeline --profile cpu --fields 32 --json
    python -m benchmarks.pipeline --profile paper --device cuda --fields 32 --json

fields_per_s / cells_per_s: median wall time of `Pipeline.run` over all fields (images decoded beforehand).
overhead_ratio: that time divided by the median summed time of the bare batched forward passes of the same
models on the same inputs (the detector on the same field batches, each classifier on the same crop batches),
measured separately, interleaved with the pipeline runs so load changes hit both alike.

Without --checkpoint-dir the models are random-init, and a random detector finds arbitrary counts, so the
detector keeps its top 15 boxes per field (score threshold 0), about a real marrow field's cell count. With
--checkpoint-dir the folder holds detector.pt, countability.pt and member_*.pt (trained checkpoints).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from annotations.taxonomy import NUM_CLASSES
from inference.core.nets import build_classifier, build_detector
from inference.core.pipeline import Pipeline
from inference.core.profiles import Profile, get_profile, profile_names
from inference.core.stages import CELL_LABEL, COUNTABILITY_CLASSES

REPO_ROOT = Path(__file__).resolve().parent.parent
# The full BCCD set beside the repository when it is there, else the fields shipped with the demo.
IMAGE_FOLDERS = (
    REPO_ROOT.parent / "shared" / "data" / "bccd" / "JPEGImages",
    REPO_ROOT / "demo" / "bccd" / "JPEGImages",
)


def default_images() -> Path:
    return next((folder for folder in IMAGE_FOLDERS if folder.is_dir()), IMAGE_FOLDERS[-1])


RANDOM_MODEL_CELLS_PER_FIELD = 15


def load_fields(folder: Path, count: int) -> list[np.ndarray]:
    """`count` decoded RGB fields from `folder` (sorted by name, repeated if the folder has fewer)."""
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png", ".tif", ".tiff"})
    if not paths:
        raise SystemExit(f"no images in {folder}")
    return [np.asarray(Image.open(paths[i % len(paths)]).convert("RGB")) for i in range(count)]


def favour_cell_label(detector: torch.nn.Module) -> None:
    """A random sigmoid head (RetinaNet, FCOS) scores background and cell alike, so its best boxes may all be
    background and the pipeline would get no cell to classify; raise the cell logit, as training does."""
    head = getattr(getattr(detector, "head", None), "classification_head", None)
    logits = getattr(head, "cls_logits", None)
    if head is None or logits is None:
        return
    with torch.no_grad():
        bias = logits.bias.view(-1, head.num_classes)  # channels are anchor-major: anchor * num_classes + class
        bias[:, CELL_LABEL] += 4.0


def random_init_pipeline(profile: Profile, device: str | None) -> Pipeline:
    torch.manual_seed(0)
    detector_config = dataclasses.replace(
        profile.detector, score_threshold=0.0, max_detections=RANDOM_MODEL_CELLS_PER_FIELD
    )
    profile = dataclasses.replace(profile, detector=detector_config)
    detector = build_detector(profile.detector.arch, **profile.detector.model_kwargs())
    favour_cell_label(detector)
    return Pipeline(
        detector,
        build_classifier(profile.countability.arch, len(COUNTABILITY_CLASSES)),
        [build_classifier(arch, NUM_CLASSES) for arch in profile.classifier.archs],
        profile,
        device,
    )


def checkpoint_pipeline(folder: Path, profile: Profile, device: str | None) -> Pipeline:
    members = sorted(folder.glob("member_*.pt"))
    return Pipeline.from_checkpoints(folder / "detector.pt", folder / "countability.pt", members, profile, device)


def _synchronise(pipeline: Pipeline) -> None:
    if pipeline.device.type == "cuda":
        torch.cuda.synchronize(pipeline.device)


def time_pipeline(pipeline: Pipeline, fields: Sequence[np.ndarray]) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of one run over all fields."""
    _synchronise(pipeline)
    start, cpu_start = time.perf_counter(), time.process_time()
    pipeline.run(fields)
    return time.perf_counter() - start, time.process_time() - cpu_start


def bare_inputs(pipeline: Pipeline, fields: Sequence[np.ndarray]) -> tuple[list[torch.Tensor], dict[int, torch.Tensor]]:
    """The exact tensors the pipeline feeds its models: field tensors and the crops of its detections."""
    with torch.inference_mode():
        tensors = pipeline.to_tensors(fields)
        boxes = [b for b, _ in pipeline.detect(tensors)]
        return tensors, pipeline.crops(tensors, boxes)


def time_bare_forwards(pipeline: Pipeline, tensors: list[torch.Tensor], crops: dict[int, torch.Tensor]) -> float:
    """Summed time of the models' forward passes alone, batched as the pipeline batches them."""
    profile = pipeline.profile
    classifier_inputs = [(m, crops[profile.classifier.input_size]) for m in pipeline.members]
    if pipeline.countability is not None:  # None: a detector-only pipeline
        classifier_inputs.insert(0, (pipeline.countability, crops[profile.countability.input_size]))
    _synchronise(pipeline)
    start = time.perf_counter()
    with torch.inference_mode():
        for first in range(0, len(tensors), profile.detector.batch_size):
            pipeline.detector(tensors[first : first + profile.detector.batch_size])
        for model, inputs in classifier_inputs:
            for batch in inputs.split(profile.crop_batch_size):
                with pipeline.autocast():
                    model(batch)
    _synchronise(pipeline)
    return time.perf_counter() - start


def benchmark(
    profile: Profile, fields: list[np.ndarray], repeats: int, device: str | None, checkpoints: Path | None
) -> dict[str, Any]:
    if checkpoints is not None:
        pipeline = checkpoint_pipeline(checkpoints, profile, device)
    else:
        pipeline = random_init_pipeline(profile, device)
    tensors, crops = bare_inputs(pipeline, fields)
    time_pipeline(pipeline, fields)  # warm-up: allocator, oneDNN/cuDNN kernel choice for these shapes
    time_bare_forwards(pipeline, tensors, crops)
    pipeline_times, cpu_times, bare_times = [], [], []
    load_before = os.getloadavg()[0]
    for _ in range(repeats):
        wall, cpu = time_pipeline(pipeline, fields)
        pipeline_times.append(wall)
        cpu_times.append(cpu)
        bare_times.append(time_bare_forwards(pipeline, tensors, crops))
    pipeline.reset_timings()
    predictions = pipeline.run(fields)
    cells = sum(len(p.cells) for p in predictions)
    pipeline_s, bare_s = statistics.median(pipeline_times), statistics.median(bare_times)
    return {
        "profile": profile.name,
        "device": str(pipeline.device),
        "device_name": torch.cuda.get_device_name(pipeline.device) if pipeline.device.type == "cuda" else "cpu",
        "amp_dtype": str(pipeline.amp_dtype).removeprefix("torch.") if pipeline.amp_dtype else None,
        "torch_threads": torch.get_num_threads(),
        "models": "checkpoints" if checkpoints else "random-init",
        "detector": profile.detector.arch,
        "countability": f"{profile.countability.arch}@{profile.countability.input_size}",
        "ensemble": [f"{arch}@{profile.classifier.input_size}" for arch in profile.classifier.archs],
        "fields": len(fields),
        "cells": cells,
        "repeats": repeats,
        "pipeline_s": round(pipeline_s, 4),
        "bare_forward_s": round(bare_s, 4),
        "fields_per_s": round(len(fields) / pipeline_s, 3),
        "cells_per_s": round(cells / pipeline_s, 2),
        "overhead_ratio": round(pipeline_s / bare_s, 3),
        "pipeline_forward_share": round(pipeline.timings.forward_s / pipeline.timings.total_s, 3),
        "pipeline_times_s": [round(t, 4) for t in pipeline_times],
        "bare_forward_times_s": [round(t, 4) for t in bare_times],
        # Context for CPU figures: other processes on the machine slow the wall-clock numbers down.
        "pipeline_cpu_s": round(statistics.median(cpu_times), 4),
        "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="cpu", choices=profile_names())
    parser.add_argument("--fields", type=int, default=32)
    parser.add_argument("--images", type=Path, default=default_images(), help="folder of field images")
    parser.add_argument("--checkpoint-dir", type=Path, help="detector.pt, countability.pt, member_*.pt")
    parser.add_argument("--device", help="auto (default: the profile's), cpu, cuda")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    result = benchmark(
        get_profile(args.profile), load_fields(args.images, args.fields), args.repeats, args.device, args.checkpoint_dir
    )
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>24}: {value}")


if __name__ == "__main__":
    main()
