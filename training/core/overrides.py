"""The training overrides: which hyperparameters of a profile a training run may replace, and how each is read.

One schema, torch-free, for both sides: the job service checks a request's overrides with `override_errors`
(JSON types, ranges, choices; one reason per key) and the runner reads the values with `Override.read`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from inference.core.profiles import OPTIMIZERS

_BOOL_FALSE = (False, "false", "False", 0, "0", "no")


@dataclass(frozen=True)
class Override:
    kind: type  # float, int, bool, str or list: what the runner reads the value as
    help: str
    zero_ok: bool = False  # numbers: 0 allowed (">= 0") or not ("> 0")
    choices: tuple[str, ...] = ()
    one_or_many: bool = False  # lists: a single string stands for a list of one

    @property
    def accepts(self) -> tuple[type, ...]:
        """The JSON types a request may send."""
        if self.kind is float:
            return (int, float)
        if self.one_or_many:
            return (list, str)
        return (self.kind,)

    @property
    def bound(self) -> str:
        return ">= 0" if self.zero_ok else "> 0"

    def out_of_range(self, number: float) -> bool:
        return number < 0 or (number == 0 and not self.zero_ok)

    def read(self, key: str, value: Any) -> Any:
        """The value as the runner uses it (strings from a command line included); ValueError naming the key."""
        if self.kind is bool:
            return value not in _BOOL_FALSE
        if self.kind is str:
            text = str(value)
            if self.choices and text not in self.choices:
                raise ValueError(f"override {key}: {text!r} is not one of {', '.join(self.choices)}")
            return text
        if self.kind is list:
            return [value] if isinstance(value, str | os.PathLike) else list(value)
        try:
            number = self.kind(value)
        except (TypeError, ValueError):
            raise ValueError(f"override {key}: expected a number, got {value!r}") from None
        if self.out_of_range(number):
            raise ValueError(f"override {key}: must be {self.bound}, got {number}")
        return number


# Keys a run's overrides may hold; anything else is refused, so a typo never goes unnoticed.
OVERRIDES: dict[str, Override] = {
    "lr": Override(float, "learning rate"),
    "batch_size": Override(int, "training batch size"),
    "weight_decay": Override(float, "weight decay", zero_ok=True),
    "cosine_t_max": Override(int, "cosine annealing period in epochs (default: the profile's, scaled with --epochs)"),
    "optimizer": Override(str, "adam | adamw | sgd", choices=OPTIMIZERS),
    "time_limit_s": Override(float, "stop training after this many seconds (then keep the best epoch so far)"),
    "warmup_epochs": Override(
        float, "linear learning-rate warm-up (default 1 for the detector, 0 otherwise)", zero_ok=True
    ),
    "balance_power": Override(
        float, "class-balanced sampling: weight = class count ** -power (default 0.5; 0 = off)", zero_ok=True
    ),
    "label_smoothing": Override(float, "cross-entropy label smoothing for the classifiers (default 0)", zero_ok=True),
    "augment": Override(bool, "false switches augmentation off"),
    "eval_every": Override(int, "evaluate on val every N epochs (default 1; the last epoch always)"),
    "num_workers": Override(int, "DataLoader workers (default 0 on CPU, up to 8 on CUDA)", zero_ok=True),
    "num_threads": Override(int, "torch CPU threads during the run (default: leave torch's setting)"),
    "progress_every": Override(int, "call on_progress every N training steps (default 10)"),
    "eval_score_threshold": Override(float, "detector score threshold when computing AP (default 0.01)", zero_ok=True),
    "init_checkpoints": Override(
        list, "checkpoint file(s) to start from instead of random init (one per model)", one_or_many=True
    ),
    "members": Override(list, "classifier: train only these ensemble member indexes (default all)"),
}


def override_errors(overrides: Mapping[str, Any]) -> dict[str, str]:
    """What is wrong with a request's overrides, {key: reason}; empty when they are valid."""
    errors: dict[str, str] = {}
    for key, value in overrides.items():
        spec = OVERRIDES.get(key)
        if spec is None:
            errors[key] = f"unknown; valid: {', '.join(OVERRIDES)}"
        elif (isinstance(value, bool) and spec.kind is not bool) or not isinstance(value, spec.accepts):
            errors[key] = f"must be a {' or '.join(t.__name__ for t in spec.accepts)}"
        elif isinstance(value, int | float) and spec.kind in (int, float) and spec.out_of_range(value):
            errors[key] = f"must be {spec.bound}"
        elif spec.choices and value not in spec.choices:
            errors[key] = f"must be one of {', '.join(spec.choices)}"
    return errors


def unknown_overrides(overrides: Mapping[str, Any]) -> list[str]:
    return sorted(set(overrides) - set(OVERRIDES))
