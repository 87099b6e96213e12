from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from annotations.taxonomy import CLASS_NAMES, NUM_CLASSES
from inference.core.checkpoints import (
    CheckpointError,
    CheckpointMeta,
    CheckpointMismatchError,
    load_checkpoint,
    read_meta,
    save_checkpoint,
)
from inference.core.nets import build_classifier, build_detector
from inference.core.stages import DETECTOR_CLASSES, CheckpointStage


def member_meta(arch: str = "test_resnet", classes: tuple[str, ...] = CLASS_NAMES) -> CheckpointMeta:
    return CheckpointMeta(
        stage=CheckpointStage.CLASSIFIER_MEMBER,
        arch=arch,
        classes=classes,
        profile="tiny",
        input_size=32,
        data_snapshot="consensus-2024-05-01",
        data_description="312 fields, 4,411 cells",
        metrics={"accuracy": 0.81, "per_class": {"myeloblast": 0.7}},
        config={"optimizer": "adamw", "lr": 1e-3, "betas": (0.9, 0.999)},
    )


@pytest.fixture
def member(tmp_path: Path) -> tuple[torch.nn.Module, Path]:
    torch.manual_seed(0)
    model = build_classifier("test_resnet", NUM_CLASSES).eval()
    path = save_checkpoint(tmp_path / "member.pt", model, member_meta(), epoch=7, extra_state={"best": 0.5})
    return model, path


def test_classifier_round_trip_gives_identical_outputs(member: tuple[torch.nn.Module, Path]) -> None:
    model, path = member
    loaded = load_checkpoint(path, expected_stage="classifier_member", expected_classes=CLASS_NAMES)
    x = torch.randn(3, 3, 32, 32)
    with torch.inference_mode():
        assert torch.equal(model(x), loaded.model(x))
    assert not loaded.model.training
    assert loaded.meta == member_meta().__class__(**{**member_meta().__dict__, "created_at": loaded.meta.created_at})
    assert loaded.meta.metrics["per_class"] == {"myeloblast": 0.7}
    assert loaded.epoch == 7
    assert loaded.extra_state == {"best": 0.5}
    assert read_meta(path).arch == "test_resnet"


def test_detector_round_trip_rebuilds_with_its_model_kwargs(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_detector("ssdlite320_mobilenet_v3_large", size=96).eval()
    meta = CheckpointMeta(
        stage="detector",
        arch="ssdlite320_mobilenet_v3_large",
        classes=DETECTOR_CLASSES,
        profile="tiny",
        model_kwargs={"size": 96},
    )
    loaded = load_checkpoint(save_checkpoint(tmp_path / "det.pt", model, meta), expected_stage=CheckpointStage.DETECTOR)
    image = [torch.rand(3, 80, 100)]
    with torch.inference_mode():
        expected, actual = model(image)[0], loaded.model(image)[0]
    assert torch.equal(expected["boxes"], actual["boxes"])
    assert torch.equal(expected["scores"], actual["scores"])
    assert loaded.model.transform.fixed_size == (96, 96)


def test_optimizer_and_scheduler_state_round_trip(tmp_path: Path) -> None:
    model = build_classifier("test_resnet", NUM_CLASSES)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=5)
    model(torch.randn(2, 3, 32, 32)).sum().backward()
    optimizer.step()
    scheduler.step()
    path = save_checkpoint(tmp_path / "m.pt", model, member_meta(), optimizer=optimizer, scheduler=scheduler, epoch=1)
    loaded = load_checkpoint(path)
    resumed = torch.optim.AdamW(loaded.model.parameters(), lr=1e-3)
    resumed.load_state_dict(loaded.optimizer_state)
    assert resumed.state_dict()["state"][0]["step"] == optimizer.state_dict()["state"][0]["step"]
    assert loaded.scheduler_state is not None
    assert loaded.scheduler_state["last_epoch"] == 1


def test_save_is_atomic_and_leaves_no_temporary_files(member: tuple[torch.nn.Module, Path]) -> None:
    _, path = member
    assert sorted(p.name for p in path.parent.iterdir()) == ["member.pt"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"expected_stage": "countability"}, "stage is 'classifier_member', expected 'countability'"),
        ({"expected_arch": "resnet50"}, "arch is 'test_resnet', expected 'resnet50'"),
        ({"expected_classes": ("myeloblast", "lymphoblast")}, "class list differs .* at index 1"),
    ],
)
def test_refuses_what_the_caller_does_not_expect(
    member: tuple[torch.nn.Module, Path], kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(CheckpointMismatchError, match=message):
        load_checkpoint(member[1], **kwargs)


def test_class_list_order_matters(member: tuple[torch.nn.Module, Path]) -> None:
    swapped = (CLASS_NAMES[1], CLASS_NAMES[0], *CLASS_NAMES[2:])
    with pytest.raises(CheckpointMismatchError, match="index 0"):
        load_checkpoint(member[1], expected_classes=swapped)


def test_shape_mismatch_names_the_tensor_and_both_shapes(tmp_path: Path) -> None:
    # Weights of a 5-class head filed under the taxonomy's classes: the rebuilt model cannot take them.
    model = build_classifier("test_resnet", 5)
    path = save_checkpoint(tmp_path / "bad.pt", model, member_meta())
    mismatch = rf"'fc\.weight' has shape \(5, \d+\) .* but \({NUM_CLASSES}, \d+\)"
    with pytest.raises(CheckpointMismatchError, match=mismatch):
        load_checkpoint(path)


def test_architecture_that_does_not_match_the_weights_is_refused(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "bad.pt", build_classifier("test_resnet", NUM_CLASSES), member_meta("test_vit"))
    with pytest.raises(CheckpointMismatchError):
        load_checkpoint(path)


@pytest.mark.parametrize("keep", [0, 100, 0.5])
def test_truncated_or_corrupt_files_raise_checkpoint_error(
    member: tuple[torch.nn.Module, Path], tmp_path: Path, keep: float
) -> None:
    data = member[1].read_bytes()
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(data[: int(len(data) * keep)] if isinstance(keep, float) else data[:keep])
    with pytest.raises(CheckpointError, match=r"damaged\.pt"):
        load_checkpoint(damaged)


def test_foreign_files_and_missing_files_raise_checkpoint_error(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(CheckpointError, match="not an AI-cell checkpoint"):
        load_checkpoint(foreign)
    with pytest.raises(CheckpointError, match="no checkpoint file"):
        load_checkpoint(tmp_path / "missing.pt")


def test_metadata_must_be_plain_types(tmp_path: Path) -> None:
    meta = CheckpointMeta(**{**member_meta().__dict__, "metrics": {"curve": torch.zeros(3)}})
    with pytest.raises(TypeError, match=r"meta\.metrics\.curve"):
        save_checkpoint(tmp_path / "m.pt", build_classifier("test_resnet", NUM_CLASSES), meta)
    assert not list(tmp_path.iterdir())


def test_unknown_stage_is_rejected() -> None:
    with pytest.raises(ValueError, match="segmenter"):
        CheckpointMeta(stage="segmenter", arch="x", classes=("a",), profile="p")


def test_numpy_scalars_and_enums_in_metadata_are_stored_as_plain_values(tmp_path: Path) -> None:
    meta = CheckpointMeta(**{**member_meta().__dict__, "metrics": {"accuracy": np.float64(0.8), "n": np.int64(3)}})
    path = save_checkpoint(tmp_path / "m.pt", build_classifier("test_resnet", NUM_CLASSES), meta)
    metrics = read_meta(path).metrics
    assert metrics == {"accuracy": 0.8, "n": 3}
    assert type(metrics["accuracy"]) is float
    assert type(read_meta(path).stage) is str
