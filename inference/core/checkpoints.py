"""One checkpoint file per model: weights plus everything needed to rebuild and trust them.

A checkpoint carries its stage, architecture, class list, preprocessing, the data it was trained on, its
metrics and its training configuration. Files are written atomically and read with `weights_only=True`, so the
metadata holds plain types only. An ensemble is several `classifier_member` checkpoints.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from inference.core.calibration import Calibration, prior_weights
from inference.core.nets import build_classifier, build_detector
from inference.core.stages import CheckpointStage, detector_num_classes

FORMAT_VERSION = 1
_PLAIN_SCALARS = (str, int, float, bool)


class CheckpointError(Exception):
    """A checkpoint file that cannot be read (missing, truncated, corrupt, or not one of ours)."""


class CheckpointMismatchError(CheckpointError):
    """A readable checkpoint that does not fit what the caller expects (stage, arch, classes, tensor shapes)."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class CheckpointMeta:
    """Everything about a model except its weights. All values are plain Python types."""

    stage: str
    arch: str
    classes: tuple[str, ...]
    profile: str
    input_size: int | None = None  # crop side for classifiers; detectors keep their sizes in model_kwargs
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    data_snapshot: str = ""  # id of the training-data snapshot (e.g. consensus export hash)
    data_description: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)  # training hyperparameters
    created_at: str = field(default_factory=_now)
    # Travels with the weights (inference.core.calibration): train examples per class (for the prior correction of
    # class-balanced sampling, with config["balance_power"]) and the val-fitted softmax temperature.
    class_counts: tuple[int, ...] = ()
    temperature: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "stage", CheckpointStage(self.stage).value)  # ValueError for an unknown stage
        object.__setattr__(self, "classes", tuple(self.classes))
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))
        object.__setattr__(self, "class_counts", tuple(int(v) for v in self.class_counts))
        object.__setattr__(self, "temperature", float(self.temperature))
        if not self.temperature > 0:
            raise ValueError(f"a checkpoint's temperature must be > 0, got {self.temperature}")
        if self.class_counts and len(self.class_counts) != len(self.classes):
            raise ValueError(f"{len(self.class_counts)} class counts for {len(self.classes)} classes")
        if not self.classes:
            raise ValueError("a checkpoint needs a non-empty class list")

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = _to_plain(asdict(self), "meta")
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CheckpointMeta:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def calibration_of(meta: CheckpointMeta) -> Calibration:
    """The temperature and prior correction a checkpoint's probabilities need (identity for old checkpoints)."""
    power = float(meta.config.get("balance_power") or 0.0)
    return Calibration(meta.temperature, prior_weights(meta.class_counts, power))


@dataclass
class LoadedCheckpoint:
    model: nn.Module
    meta: CheckpointMeta
    optimizer_state: dict[str, Any] | None
    scheduler_state: dict[str, Any] | None
    epoch: int | None
    extra_state: dict[str, Any] | None = None


def _to_plain(value: Any, where: str) -> Any:
    """A copy of `value` made of plain types that `torch.load(weights_only=True)` can read back.

    Subclasses of str/int/float (enums, numpy scalars) become the base type; anything else is refused with
    the path to the offending value.
    """
    if value is None or type(value) in _PLAIN_SCALARS:
        return value
    if isinstance(value, bool | np.bool_):
        return bool(value)
    for plain in (str, int, float):
        if isinstance(value, plain):
            return plain(value)
    if isinstance(value, np.integer | np.floating):
        return value.item()
    if isinstance(value, Mapping):
        plain_dict = {}
        for key, item in value.items():
            if not isinstance(key, str | int):
                raise TypeError(f"{where}: key {key!r} is not a str or int")
            plain_dict[_to_plain(key, where)] = _to_plain(item, f"{where}.{key}")
        return plain_dict
    if isinstance(value, list | tuple):
        items = [_to_plain(item, f"{where}[{index}]") for index, item in enumerate(value)]
        return items if isinstance(value, list) else tuple(items)
    raise TypeError(f"{where}: {type(value).__name__} is not a plain type (str, number, bool, None, list, dict)")


def build_model(meta: CheckpointMeta) -> nn.Module:
    """A randomly initialised network with the architecture that `meta` describes."""
    if CheckpointStage(meta.stage) is CheckpointStage.DETECTOR:
        return build_detector(meta.arch, num_classes=len(meta.classes) + 1, **meta.model_kwargs)
    return build_classifier(meta.arch, num_classes=len(meta.classes), **meta.model_kwargs)


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    meta: CheckpointMeta,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    epoch: int | None = None,
    extra_state: dict[str, Any] | None = None,
) -> Path:
    """Write one model's checkpoint atomically (temp file in the same folder, then os.replace)."""
    if CheckpointStage(meta.stage) is CheckpointStage.DETECTOR and len(meta.classes) + 1 != detector_num_classes():
        raise ValueError(f"a detector checkpoint has classes {meta.classes!r}; the detector predicts one class")
    payload = {
        "format_version": FORMAT_VERSION,
        "meta": meta.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "epoch": epoch,
        "extra_state": _to_plain(extra_state, "extra_state"),
    }
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            torch.save(payload, stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp_name, target)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return target


def read_payload(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The raw checkpoint dictionary, with unreadable files turned into `CheckpointError`."""
    source = Path(path)
    if not source.is_file():
        raise CheckpointError(f"no checkpoint file at {source}")
    try:
        payload = torch.load(source, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError) as error:
        raise CheckpointError(f"{source} is not a readable checkpoint (truncated or corrupt?): {error}") from error
    if not isinstance(payload, dict) or "meta" not in payload or "state_dict" not in payload:
        raise CheckpointError(f"{source} is not an AI-cell checkpoint (no meta/state_dict)")
    if payload.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{source}: checkpoint format {payload.get('format_version')!r} is not {FORMAT_VERSION}")
    return payload


def read_meta(path: str | Path) -> CheckpointMeta:
    """Only the metadata (still reads the whole file; the weights are dropped)."""
    try:
        return CheckpointMeta.from_dict(read_payload(path)["meta"])
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: invalid checkpoint metadata: {error}") from error


def _check_expected(meta: CheckpointMeta, path: Path, stage: str | None, arch: str | None, classes: Any) -> None:
    if stage is not None and CheckpointStage(stage) is not CheckpointStage(meta.stage):
        raise CheckpointMismatchError(f"{path}: stage is {meta.stage!r}, expected {CheckpointStage(stage).value!r}")
    if arch is not None and arch != meta.arch:
        raise CheckpointMismatchError(f"{path}: arch is {meta.arch!r}, expected {arch!r}")
    if classes is not None and tuple(classes) != meta.classes:
        differing = next(
            (i for i, (a, b) in enumerate(zip(meta.classes, classes, strict=False)) if a != b),
            min(len(meta.classes), len(classes)),
        )
        raise CheckpointMismatchError(
            f"{path}: class list differs from the expected one at index {differing} "
            f"({len(meta.classes)} classes in the file, {len(classes)} expected): "
            f"file {list(meta.classes[differing : differing + 3])}, expected {list(classes[differing : differing + 3])}"
        )


def load_state_dict_checked(model: nn.Module, state_dict: Mapping[str, torch.Tensor], source: str = "") -> None:
    """Strict load that names the first missing/unexpected key or the first tensor whose shape differs."""
    own = model.state_dict()
    prefix = f"{source}: " if source else ""
    for key, tensor in state_dict.items():
        if key not in own:
            raise CheckpointMismatchError(f"{prefix}tensor {key!r} in the checkpoint does not exist in the model")
        if own[key].shape != tensor.shape:
            raise CheckpointMismatchError(
                f"{prefix}tensor {key!r} has shape {tuple(tensor.shape)} in the checkpoint "
                f"but {tuple(own[key].shape)} in the model"
            )
    missing = [key for key in own if key not in state_dict]
    if missing:
        raise CheckpointMismatchError(f"{prefix}the checkpoint lacks {len(missing)} tensors, first {missing[0]!r}")
    model.load_state_dict(state_dict, strict=True)


def load_checkpoint(
    path: str | Path,
    *,
    expected_stage: str | None = None,
    expected_arch: str | None = None,
    expected_classes: Sequence[str] | None = None,
    map_location: str | torch.device = "cpu",
) -> LoadedCheckpoint:
    """Rebuild the model described by the file and load its weights; refuse anything that does not match."""
    source = Path(path)
    payload = read_payload(source, map_location)
    try:
        meta = CheckpointMeta.from_dict(payload["meta"])
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{source}: invalid checkpoint metadata: {error}") from error
    _check_expected(meta, source, expected_stage, expected_arch, expected_classes)
    try:
        model = build_model(meta)
    except ValueError as error:
        raise CheckpointMismatchError(f"{source}: cannot rebuild {meta.arch!r}: {error}") from error
    load_state_dict_checked(model, payload["state_dict"], str(source))
    model.to(map_location).eval()
    return LoadedCheckpoint(
        model=model,
        meta=meta,
        optimizer_state=payload.get("optimizer"),
        scheduler_state=payload.get("scheduler"),
        epoch=payload.get("epoch"),
        extra_state=payload.get("extra_state"),
    )
