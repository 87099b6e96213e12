"""A training run's configuration: what a caller asks for (`TrainConfig`) and everything that shapes the run,
resolved from the stage's row, its profile block, the epochs and the overrides (`StageSettings`)."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from inference.core.pipeline import resolve_device
from inference.core.profiles import (
    Profile,
    TrainingConfig,
    get_profile,
    init_starting_point,
    load_profiles,
    stage_recipe,
)
from training.core.overrides import OVERRIDES, unknown_overrides
from training.core.stages import StageSpec, stage_spec


@dataclass(frozen=True)
class StartingPointRef:
    """A registered starting point (training.models.StartingPoint) as the torch side needs it."""

    name: str
    arch: str
    path: str  # the stored state dict (inference.core.weights layout)
    sha256: str


@dataclass
class TrainConfig:
    stage: str  # a name of training.core.stages.STAGES
    profile: str | Profile  # a profile name (inference/core/profiles.yaml or profiles_file) or a parsed Profile
    epochs: int | None = None  # None -> the profile's
    seed: int = 0
    overrides: dict[str, Any] = field(default_factory=dict)  # training.core.overrides.OVERRIDES
    device: str | None = None  # None -> the profile's device ("auto" = CUDA when available)
    profiles_file: str | None = None  # where a profile *name* is looked up (default: the shipped file)
    # The registered starting points the profile's `init`s may name, by name (the Django side resolves them).
    starting_points: Mapping[str, StartingPointRef] = field(default_factory=dict)


@dataclass(frozen=True)
class StageSettings:
    """Everything that shapes one stage's training run, resolved from profile + config + overrides."""

    spec: StageSpec
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
    # The model these settings are for (its index in the stage's archs): its init, starting point and recipe.
    model_index: int = 0
    init: str = "scratch"
    starting_point: StartingPointRef | None = None
    config: TrainConfig | None = None

    def for_model(self, index: int) -> StageSettings:
        """The settings of the stage's model `index` (each ensemble member has its own init and recipe)."""
        if index == self.model_index or self.config is None:
            return self
        return resolve_settings(self.config, index)

    @property
    def stage(self) -> str:
        return self.spec.name

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
            "init": self.init,
            "starting_point_sha256": self.starting_point.sha256 if self.starting_point else None,
        }

    def models(self) -> list[tuple[int | None, str]]:
        """(member index, arch) of each model the stage trains; member is None for single-model stages."""
        archs = self.spec.archs(self.profile)
        if not self.spec.ensemble:
            return [(None, archs[0])]
        indexed = list(enumerate(archs))
        if self.members is not None:
            bad = [m for m in self.members if not 0 <= m < len(indexed)]
            if bad:
                raise ValueError(f"override members: {bad} outside 0..{len(indexed) - 1}")
            indexed = [indexed[m] for m in self.members]
        return [(index, arch) for index, arch in indexed]


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


def _override(overrides: dict[str, Any], key: str, default: Any) -> Any:
    value = overrides.get(key)
    return default if value is None else OVERRIDES[key].read(key, value)


def _starting_point(config: TrainConfig, spec: StageSpec, init: str, arch: str) -> StartingPointRef | None:
    name = init_starting_point(init)
    if name is None:
        return None
    point = config.starting_points.get(name)
    if point is None:
        registered = ", ".join(config.starting_points) or "none"
        raise ValueError(
            f"{spec.name} ({arch}): init {init!r} names starting point {name!r}, which is not registered "
            f"(registered: {registered}); register it with `manage.py import_weights FILE --arch {arch} "
            f"--name {name}` or `manage.py pretrain`, or set init: scratch"
        )
    if point.arch != arch:
        raise ValueError(f"{spec.name}: starting point {name!r} is for {point.arch}, the model is {arch}")
    return point


def resolve_settings(config: TrainConfig, model_index: int = 0) -> StageSettings:
    """Validate the config and merge profile, epochs and overrides for the stage's model `model_index` (its init
    picks the recipe: `training`, or `training_pretrained` from a starting point); ValueError names what is wrong."""
    spec = stage_spec(config.stage)
    unknown = unknown_overrides(config.overrides)
    if unknown:
        raise ValueError(f"unknown overrides {unknown}; known: {', '.join(OVERRIDES)}")
    profile = _resolve_profile(config)
    stage_config = spec.model_config(profile)
    init = stage_config.inits[model_index]
    starting_point = _starting_point(config, spec, init, stage_config.archs[model_index])
    base = stage_recipe(stage_config, init)
    o = config.overrides
    if config.epochs is not None and int(config.epochs) <= 0:
        raise ValueError(f"epochs must be > 0, got {config.epochs}")
    epochs = int(config.epochs) if config.epochs is not None else base.epochs
    default_t_max = max(1, round(base.cosine_t_max * epochs / base.epochs))
    training = dataclasses.replace(
        base,
        optimizer=_override(o, "optimizer", base.optimizer),
        lr=_override(o, "lr", base.lr),
        weight_decay=_override(o, "weight_decay", base.weight_decay),
        batch_size=_override(o, "batch_size", base.batch_size),
        epochs=epochs,
        cosine_t_max=_override(o, "cosine_t_max", default_t_max),
    )
    try:
        device = resolve_device(config.device or profile.device)
    except RuntimeError as error:
        raise ValueError(str(error)) from None
    members = _override(o, "members", None)
    default_workers = min(8, max(0, (os.cpu_count() or 1) - 1)) if device.type == "cuda" else 0
    return StageSettings(
        spec=spec,
        profile=profile,
        device=device,
        training=training,
        epochs=epochs,
        t_max=training.cosine_t_max,
        seed=int(config.seed),
        warmup_epochs=_override(
            o, "warmup_epochs", spec.warmup_epochs if base.warmup_epochs is None else base.warmup_epochs
        ),
        balance_power=_override(o, "balance_power", 0.5),
        label_smoothing=_override(o, "label_smoothing", 0.0),
        augment=_override(o, "augment", True),
        eval_every=_override(o, "eval_every", 1),
        num_workers=_override(o, "num_workers", default_workers),
        num_threads=_override(o, "num_threads", None),
        progress_every=_override(o, "progress_every", 10),
        time_limit_s=_override(o, "time_limit_s", None),
        eval_score_threshold=_override(o, "eval_score_threshold", 0.01),
        init_checkpoints=tuple(str(path) for path in _override(o, "init_checkpoints", ())),
        members=None if members is None else tuple(int(m) for m in members),
        model_index=model_index,
        init=init,
        starting_point=starting_point,
        config=config,
    )


def derive_seed(*parts: Any) -> int:
    """A 62-bit seed derived from the run's seed and where it is used (member, epoch, ...)."""
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") & ((1 << 62) - 1)
