"""Named model profiles (DESIGN.md "The three stages"): architectures, sizes, device and hyperparameters.

Profiles are data in `profiles.yaml`; this module only parses and validates them into frozen dataclasses, so a
new profile or a tuned one is a YAML edit. No torch import here: the web process can list profiles cheaply.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PROFILES_PATH = Path(__file__).with_name("profiles.yaml")
OPTIMIZERS = ("adam", "adamw", "sgd")
# A model's `init`: random init, or a registered starting point (training.models.StartingPoint) by name. The two
# prefixes mean the same thing; they say where the weights came from (a local ImageNet-type file, or the lab's own
# self-supervised pretraining).
INIT_SCRATCH = "scratch"
INIT_PREFIXES = ("imagenet-local:", "starting-point:")
# The pipeline kinds a profile may name (inference/core/pipeline.py PIPELINE_KINDS builds them).
PIPELINE_KIND_NAMES = ("three_stage", "null")


class UnknownProfileError(KeyError):
    """Raised for a profile name that the profile file does not define."""

    def __init__(self, name: str, valid: tuple[str, ...]) -> None:
        super().__init__(name)
        self.name = name
        self.valid = valid

    def __str__(self) -> str:
        return f"unknown profile {self.name!r}; valid profiles: {', '.join(self.valid)}"


class ProfileError(ValueError):
    """Raised for a profile file that is malformed (missing or unknown keys, bad values)."""


@dataclass(frozen=True)
class TrainingConfig:
    optimizer: str
    lr: float
    weight_decay: float
    batch_size: int
    epochs: int
    cosine_t_max: int
    warmup_epochs: float | None = None  # None: the stage's default (training.core.stages)


def init_starting_point(init: str) -> str | None:
    """The starting point an `init` names, None for scratch (the value was validated by the loader)."""
    for prefix in INIT_PREFIXES:
        if init.startswith(prefix):
            return init.removeprefix(prefix)
    return None


@dataclass(frozen=True)
class Normalisation:
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


@dataclass(frozen=True)
class DetectorConfig:
    arch: str
    score_threshold: float
    nms_iou: float
    max_detections: int
    batch_size: int
    training: TrainingConfig
    min_size: int | None = None
    max_size: int | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    init: str = INIT_SCRATCH
    training_pretrained: TrainingConfig | None = None

    @property
    def archs(self) -> tuple[str, ...]:
        """The architectures of the stage's models (one here; the classifier's ensemble has several)."""
        return (self.arch,)

    @property
    def inits(self) -> tuple[str, ...]:
        """Where each model of the stage starts (`scratch`, `imagenet-local:<name>`, `starting-point:<name>`)."""
        return (self.init,)

    def model_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `nets.build_detector` (they also go into the checkpoint to rebuild the model)."""
        sizes = {"min_size": self.min_size, "max_size": self.max_size}
        return {**{k: v for k, v in sizes.items() if v is not None}, **self.kwargs}


@dataclass(frozen=True)
class CountabilityConfig:
    arch: str
    input_size: int
    training: TrainingConfig
    init: str = INIT_SCRATCH
    training_pretrained: TrainingConfig | None = None

    @property
    def archs(self) -> tuple[str, ...]:
        return (self.arch,)

    @property
    def inits(self) -> tuple[str, ...]:
        return (self.init,)


@dataclass(frozen=True)
class ClassifierConfig:
    archs: tuple[str, ...]
    input_size: int
    training: TrainingConfig
    init: tuple[str, ...] = ()  # one per ensemble member; empty = all scratch
    training_pretrained: TrainingConfig | None = None

    @property
    def inits(self) -> tuple[str, ...]:
        return self.init or (INIT_SCRATCH,) * len(self.archs)


StageConfig = DetectorConfig | CountabilityConfig | ClassifierConfig


def stage_recipe(config: StageConfig, init: str) -> TrainingConfig:
    """The training recipe of a model that starts from `init`: `training` from scratch, `training_pretrained`
    (a fine-tuning rate, usually shorter and with a warm-up) from a starting point."""
    if init_starting_point(init) is None:
        return config.training
    if config.training_pretrained is None:
        raise ProfileError(f"init {init!r} needs a training_pretrained recipe")
    return config.training_pretrained


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    device: str
    normalisation: Normalisation
    context_margin: float
    crop_batch_size: int
    detector: DetectorConfig
    countability: CountabilityConfig
    classifier: ClassifierConfig
    # The pipeline kind (inference/core/pipeline.py PIPELINE_KINDS): "three_stage", or "null" (fixed predictions).
    kind: str = "three_stage"
    # Fields per pre-label task: a worker decodes, runs and stores them as one chunk (one transaction).
    prelabel_chunk: int = 32


def _section(data: Any, where: str, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    """Check that a YAML mapping has exactly the expected keys, so a typo fails loudly instead of being ignored."""
    if not isinstance(data, Mapping):
        raise ProfileError(f"{where}: expected a mapping, got {type(data).__name__}")
    missing = [k for k in required if k not in data]
    unknown = [k for k in data if k not in required and k not in optional]
    if missing or unknown:
        raise ProfileError(f"{where}: missing keys {missing}, unknown keys {unknown}")
    return dict(data)


def _positive(value: Any, where: str, kind: type[int] | type[float]) -> Any:
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise ProfileError(f"{where}: expected a number, got {value!r}") from None
    if number <= 0:
        raise ProfileError(f"{where}: must be > 0, got {number}")
    return number


def _fraction(value: Any, where: str) -> float:
    number = float(value)
    if not 0.0 <= number <= 1.0:
        raise ProfileError(f"{where}: must lie in [0, 1], got {number}")
    return number


def _triple(value: Any, where: str) -> tuple[float, float, float]:
    if not isinstance(value, list | tuple) or len(value) != 3:
        raise ProfileError(f"{where}: expected three numbers (R, G, B), got {value!r}")
    a, b, c = (float(v) for v in value)
    return (a, b, c)


def _training(data: Any, where: str) -> TrainingConfig:
    d = _section(
        data, where, ("optimizer", "lr", "weight_decay", "batch_size", "epochs", "cosine_t_max"), ("warmup_epochs",)
    )
    if d["optimizer"] not in OPTIMIZERS:
        raise ProfileError(f"{where}.optimizer: {d['optimizer']!r} is not one of {', '.join(OPTIMIZERS)}")
    weight_decay = float(d["weight_decay"])
    if weight_decay < 0:
        raise ProfileError(f"{where}.weight_decay: must be >= 0, got {weight_decay}")
    return TrainingConfig(
        optimizer=d["optimizer"],
        lr=_positive(d["lr"], f"{where}.lr", float),
        weight_decay=weight_decay,
        batch_size=_positive(d["batch_size"], f"{where}.batch_size", int),
        epochs=_positive(d["epochs"], f"{where}.epochs", int),
        cosine_t_max=_positive(d["cosine_t_max"], f"{where}.cosine_t_max", int),
        warmup_epochs=_non_negative(d["warmup_epochs"], f"{where}.warmup_epochs") if "warmup_epochs" in d else None,
    )


def _non_negative(value: Any, where: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ProfileError(f"{where}: expected a number, got {value!r}") from None
    if number < 0:
        raise ProfileError(f"{where}: must be >= 0, got {number}")
    return number


def _init(value: Any, where: str) -> str:
    text = str(value) if isinstance(value, str) else ""
    name = init_starting_point(text)
    if text != INIT_SCRATCH and not name:
        raise ProfileError(
            f"{where}: expected {INIT_SCRATCH!r} or {' / '.join(p + '<name>' for p in INIT_PREFIXES)}, got {value!r}"
        )
    return text


def _inits(d: Mapping[str, Any], where: str, count: int) -> tuple[tuple[str, ...], TrainingConfig | None]:
    """A stage's `init` (one value, or one per ensemble member) and its `training_pretrained` recipe, which an
    init naming a starting point requires."""
    raw = d.get("init", INIT_SCRATCH)
    values = raw if isinstance(raw, list | tuple) else [raw] * count
    if len(values) != count:
        raise ProfileError(f"{where}.init: {len(values)} values for {count} models (one per ensemble member)")
    inits = tuple(_init(value, f"{where}.init") for value in values)
    pretrained = (
        _training(d["training_pretrained"], f"{where}.training_pretrained") if "training_pretrained" in d else None
    )
    if pretrained is None and any(init_starting_point(init) for init in inits):
        raise ProfileError(f"{where}: init names a starting point, so a training_pretrained recipe is required")
    return inits, pretrained


def _detector(data: Any, where: str) -> DetectorConfig:
    required = ("arch", "score_threshold", "nms_iou", "max_detections", "batch_size", "training")
    d = _section(data, where, required, ("min_size", "max_size", "kwargs", "init", "training_pretrained"))
    inits, pretrained = _inits(d, where, 1)
    kwargs = d.get("kwargs") or {}
    if not isinstance(kwargs, Mapping):
        raise ProfileError(f"{where}.kwargs: expected a mapping, got {kwargs!r}")
    optional_size = {
        key: _positive(d[key], f"{where}.{key}", int) if d.get(key) is not None else None
        for key in ("min_size", "max_size")
    }
    return DetectorConfig(
        arch=str(d["arch"]),
        score_threshold=_fraction(d["score_threshold"], f"{where}.score_threshold"),
        nms_iou=_fraction(d["nms_iou"], f"{where}.nms_iou"),
        max_detections=_positive(d["max_detections"], f"{where}.max_detections", int),
        batch_size=_positive(d["batch_size"], f"{where}.batch_size", int),
        training=_training(d["training"], f"{where}.training"),
        kwargs=dict(kwargs),
        init=inits[0],
        training_pretrained=pretrained,
        **optional_size,
    )


def _countability(data: Any, where: str) -> CountabilityConfig:
    d = _section(data, where, ("arch", "input_size", "training"), ("init", "training_pretrained"))
    inits, pretrained = _inits(d, where, 1)
    return CountabilityConfig(
        arch=str(d["arch"]),
        input_size=_positive(d["input_size"], f"{where}.input_size", int),
        training=_training(d["training"], f"{where}.training"),
        init=inits[0],
        training_pretrained=pretrained,
    )


def _classifier(data: Any, where: str) -> ClassifierConfig:
    d = _section(data, where, ("archs", "input_size", "training"), ("init", "training_pretrained"))
    archs = d["archs"]
    if not isinstance(archs, list | tuple) or not archs:
        raise ProfileError(f"{where}.archs: expected a non-empty list of timm architecture names, got {archs!r}")
    inits, pretrained = _inits(d, where, len(archs))
    return ClassifierConfig(
        archs=tuple(str(a) for a in archs),
        input_size=_positive(d["input_size"], f"{where}.input_size", int),
        training=_training(d["training"], f"{where}.training"),
        init=inits,
        training_pretrained=pretrained,
    )


def profile_from_dict(name: str, data: Any) -> Profile:
    """Validate one profile's YAML mapping into a `Profile`."""
    sections = ("description", "device", "normalisation", "crops", "detector", "countability", "classifier")
    d = _section(data, name, sections, ("kind", "prelabel_chunk"))
    norm = _section(d["normalisation"], f"{name}.normalisation", ("mean", "std"))
    crops = _section(d["crops"], f"{name}.crops", ("context_margin", "batch_size"))
    std = _triple(norm["std"], f"{name}.normalisation.std")
    if min(std) <= 0:
        raise ProfileError(f"{name}.normalisation.std: must be > 0, got {std}")
    kind = str(d.get("kind", "three_stage"))
    if kind not in PIPELINE_KIND_NAMES:
        raise ProfileError(f"{name}.kind: {kind!r} is not one of {', '.join(PIPELINE_KIND_NAMES)}")
    margin = float(crops["context_margin"])
    if margin < 0:
        raise ProfileError(f"{name}.crops.context_margin: must be >= 0, got {margin}")
    return Profile(
        name=name,
        description=str(d["description"]).strip(),
        device=str(d["device"]),
        normalisation=Normalisation(mean=_triple(norm["mean"], f"{name}.normalisation.mean"), std=std),
        context_margin=margin,
        crop_batch_size=_positive(crops["batch_size"], f"{name}.crops.batch_size", int),
        detector=_detector(d["detector"], f"{name}.detector"),
        countability=_countability(d["countability"], f"{name}.countability"),
        classifier=_classifier(d["classifier"], f"{name}.classifier"),
        kind=kind,
        prelabel_chunk=_positive(d.get("prelabel_chunk", 32), f"{name}.prelabel_chunk", int),
    )


def load_profiles(path: Path | str = PROFILES_PATH) -> dict[str, Profile]:
    """Parse a profile file; every profile is validated, so one broken profile fails the whole file."""
    with open(path, encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    if not isinstance(data, Mapping) or not data:
        raise ProfileError(f"{path}: expected a mapping of profile names to profiles")
    return {str(name): profile_from_dict(str(name), body) for name, body in data.items()}


@functools.cache
def _default_profiles() -> dict[str, Profile]:
    return load_profiles(PROFILES_PATH)


def profile_names() -> tuple[str, ...]:
    """The names of the shipped profiles, in file order."""
    return tuple(_default_profiles())


def get_profile(name: str) -> Profile:
    """The shipped profile `name`; `UnknownProfileError` (listing the valid names) when there is none."""
    profiles = _default_profiles()
    try:
        return profiles[name]
    except KeyError:
        raise UnknownProfileError(name, tuple(profiles)) from None
