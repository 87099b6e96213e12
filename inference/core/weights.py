"""Starting points: local weight files checked against an architecture, and loaded into a model before training.

A starting point is a state dict in the layout of the module it initialises (plain PyTorch, no Django here):
- a timm classifier arch (any name of `timm.list_models()`): the timm model's keys, classifier head left out;
- a detector arch (`nets.DETECTOR_ARCHS`): the keys of the detector's `backbone` module as `nets.build_detector`
  builds it (for the ResNet-FPN detectors `body.*` is the ResNet and `fpn.*` the pyramid; for ssd300_vgg16
  `features.*`/`extra.*`).

`prepare_starting_point` reads a file someone brought (a timm or torchvision state dict, bare or wrapped in
{'state_dict': ...} / {'model': ...}), finds the key layout that fits the arch best (as is, without a `backbone.`
or `module.` prefix, a torchvision ResNet/MobileNet classifier under an FPN's `body.`, a torchvision VGG16 under
SSD's feature extractor), and returns the translated state dict and a key report; nothing matching, or a
backbone tensor of another shape (another arch), is refused. Every model is built with pretrained=False /
weights=None: nothing is ever downloaded.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import timm
import torch
from torch import nn
from torchvision.models import vgg16
from torchvision.models.detection.ssd import _vgg_extractor

from inference.core.nets import DETECTOR_ARCHS, NULL_CLASSIFIER, NULL_DETECTOR, build_detector, head_prefixes

logger = logging.getLogger(__name__)

StateDict = dict[str, torch.Tensor]


class StartingPointError(ValueError):
    """A weight file that does not fit the architecture, or a starting point that cannot be used."""


@dataclass(frozen=True)
class KeyReport:
    """How a state dict fits the module it initialises (keys in the module's layout)."""

    layout: str  # which translation was used ("as is", "torchvision resnet -> fpn body", ...)
    matched: tuple[str, ...]  # loaded: present in both with the same shape
    missing: tuple[str, ...]  # in the module, not in the file (left at random init)
    unexpected: tuple[str, ...]  # in the file, not in the module (ignored)
    mismatched: tuple[str, ...] = ()  # in both, another shape (refused outside a classifier head)
    skipped_head: tuple[str, ...] = field(default=())  # head tensors left out (a 1000-class ImageNet head)

    def to_dict(self) -> dict[str, Any]:
        return {
            "layout": self.layout,
            "matched": len(self.matched),
            "missing": list(self.missing),
            "unexpected": list(self.unexpected),
            "mismatched": list(self.mismatched),
            "skipped_head": list(self.skipped_head),
        }

    def summary(self) -> str:
        return (
            f"{len(self.matched)} tensors matched ({self.layout}), {len(self.missing)} missing (random init), "
            f"{len(self.unexpected)} unexpected (ignored), {len(self.skipped_head)} head tensors left out"
        )


def file_sha256(path: Path | str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_state_dict(path: Path | str) -> StateDict:
    """A bare state dict, or one wrapped by a training checkpoint ({'state_dict'|'model'|'state_dict_ema': ...})."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many kinds for a file that is not a tensor archive
        raise StartingPointError(f"{path}: not a readable PyTorch state dict ({error})") from None
    for key in ("state_dict", "model", "state_dict_ema"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict):
        raise StartingPointError(f"{path}: not a state dict (a {type(state).__name__})")
    tensors = {str(k).removeprefix("module."): v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise StartingPointError(f"{path}: holds no tensors")
    return tensors


def is_detector_arch(arch: str) -> bool:
    return arch in DETECTOR_ARCHS


def target_module(arch: str) -> nn.Module:
    """The module a starting point of `arch` initialises, built from random init (never downloaded)."""
    if arch in (NULL_DETECTOR, NULL_CLASSIFIER):
        raise StartingPointError(f"{arch}: the null models have no weights to start from")
    if is_detector_arch(arch):
        detector: Any = build_detector(arch)  # torchvision detectors' parts are untyped attributes
        backbone: nn.Module = detector.backbone
        return backbone
    if not timm.is_model(arch):
        raise StartingPointError(
            f"unknown arch {arch!r}: a timm classifier name (timm.list_models()) or a detector "
            f"({', '.join(a for a in DETECTOR_ARCHS if a != NULL_DETECTOR)})"
        )
    model: nn.Module = timm.create_model(arch, pretrained=False)
    return model


def _with_prefix(old: str, new: str) -> Callable[[StateDict], StateDict]:
    def translate(state: StateDict) -> StateDict:
        return {new + k.removeprefix(old): v for k, v in state.items() if k.startswith(old)}

    return translate


def _vgg16_to_ssd(state: StateDict) -> StateDict:
    """torchvision VGG16 `features.N.*` keys -> the keys of ssd300_vgg16's feature extractor, found by building
    the extractor the way torchvision does from a VGG16 and matching shared parameter tensors."""
    vgg = vgg16(weights=None)
    names = {id(t): k for k, t in vgg.state_dict(keep_vars=True).items()}
    extractor = _vgg_extractor(vgg, False, 5)
    mapping = {names[id(t)]: k for k, t in extractor.state_dict(keep_vars=True).items() if id(t) in names}
    return {mapping[k]: v for k, v in state.items() if k in mapping}


# (name, translation) tried in turn; the one matching the most tensors wins.
_LAYOUTS: tuple[tuple[str, Callable[[StateDict], StateDict]], ...] = (
    ("as is", dict),
    ("detector checkpoint's backbone", _with_prefix("backbone.", "")),
    ("torchvision classifier -> fpn body", _with_prefix("", "body.")),
    ("torchvision mobilenet features -> fpn body", _with_prefix("features.", "body.")),
    ("torchvision vgg16 -> ssd feature extractor", _vgg16_to_ssd),
)


def _is_head(key: str, heads: tuple[str, ...]) -> bool:
    return any(key == h or key.startswith(f"{h}.") for h in heads)


def _report(layout: str, state: StateDict, own: Mapping[str, torch.Tensor], heads: tuple[str, ...]) -> KeyReport:
    matched = tuple(k for k, v in state.items() if k in own and own[k].shape == v.shape and not _is_head(k, heads))
    mismatched = tuple(k for k, v in state.items() if k in own and own[k].shape != v.shape and not _is_head(k, heads))
    return KeyReport(
        layout=layout,
        matched=matched,
        missing=tuple(k for k in own if k not in state and not _is_head(k, heads)),
        unexpected=tuple(k for k in state if k not in own),
        mismatched=mismatched,
        skipped_head=tuple(k for k in state if k in own and _is_head(k, heads)),
    )


def prepare_starting_point(arch: str, source: StateDict) -> tuple[StateDict, KeyReport]:
    """Translate `source` into the layout of `arch`'s module; (state dict to store, report).

    The stored state dict holds only the matched tensors (no classifier head: a starting point is a backbone).
    StartingPointError when no tensor matches or a backbone tensor has another shape.
    """
    module = target_module(arch)
    own = module.state_dict()
    heads = head_prefixes(module)
    best: tuple[StateDict, KeyReport] | None = None
    for layout, translate in _LAYOUTS:
        translated = translate(source)
        report = _report(layout, translated, own, heads)
        if best is None or len(report.matched) > len(best[1].matched):
            best = (translated, report)
    assert best is not None
    translated, report = best
    if not report.matched:
        sample = ", ".join(list(source)[:5])
        raise StartingPointError(
            f"no tensor of the file fits {arch} (tried: {', '.join(name for name, _ in _LAYOUTS)}); "
            f"the file's first keys: {sample}"
        )
    if report.mismatched:
        shapes = ", ".join(f"{k} {tuple(translated[k].shape)} vs {tuple(own[k].shape)}" for k in report.mismatched[:5])
        raise StartingPointError(
            f"the file does not fit {arch}: {len(report.mismatched)} tensor(s) of another shape "
            f"(file vs model: {shapes}); is it another architecture?"
        )
    return {k: translated[k] for k in report.matched}, report


def apply_starting_point(model: nn.Module, arch: str, path: Path | str, sha256: str | None = None) -> KeyReport:
    """Load a stored starting point into a freshly built `model` of `arch` (a detector: into its backbone).

    `sha256` (when given) must be the file's: the checkpoint records which weights it came from.
    """
    if sha256 is not None and file_sha256(path) != sha256:
        raise StartingPointError(f"{path}: the file changed since it was registered (sha256 differs)")
    state = read_state_dict(path)
    module: nn.Module = getattr(model, "backbone") if is_detector_arch(arch) else model  # noqa: B009 (untyped)
    own = module.state_dict()
    report = _report("as is", state, own, head_prefixes(module))
    if not report.matched or report.mismatched:
        raise StartingPointError(
            f"{path}: does not fit {arch} ({len(report.matched)} tensors match, "
            f"{len(report.mismatched)} of another shape: {', '.join(report.mismatched[:5])})"
        )
    module.load_state_dict({k: state[k] for k in report.matched}, strict=False)
    logger.info("starting point %s into %s: %s", path, arch, report.summary())
    return report
