from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import timm
import yaml

from inference.core.nets import DETECTOR_ARCHS, NULL_CLASSIFIER
from inference.core.profiles import (
    PROFILES_PATH,
    ProfileError,
    UnknownProfileError,
    get_profile,
    load_profiles,
    profile_names,
)


def test_paper_profile_matches_the_seed_paper() -> None:
    paper = get_profile("paper")
    assert paper.detector.arch == "retinanet_resnet50_fpn"
    assert paper.countability.arch == "resnext101_32x8d"
    assert paper.classifier.archs == ("resnext101_32x8d", "resnext50_32x4d", "resnet50")
    assert paper.classifier.input_size == paper.countability.input_size == 224
    for stage, t_max in ((paper.countability, 30), (paper.classifier, 50)):
        assert (stage.training.optimizer, stage.training.lr, stage.training.batch_size) == ("adam", 1e-5, 32)
        assert stage.training.cosine_t_max == t_max
    assert paper.crop_batch_size >= 256
    assert paper.device == "auto"


def test_cpu_profile_is_small_and_trains_from_scratch() -> None:
    cpu = get_profile("cpu")
    assert cpu.classifier.input_size >= 96
    assert 2 <= len(cpu.classifier.archs) <= 3
    assert cpu.classifier.training.optimizer == "adamw"
    assert cpu.classifier.training.lr >= 100 * get_profile("paper").classifier.training.lr


@pytest.mark.parametrize("name", profile_names())
def test_every_shipped_architecture_exists(name: str) -> None:
    profile = get_profile(name)
    assert profile.detector.arch in DETECTOR_ARCHS
    for arch in (profile.countability.arch, *profile.classifier.archs):
        assert timm.is_model(arch) or arch == NULL_CLASSIFIER, arch


def test_unknown_profile_lists_the_valid_names() -> None:
    with pytest.raises(UnknownProfileError) as error:
        get_profile("gpu-xl")
    assert "'gpu-xl'" in str(error.value)
    for name in ("paper", "cpu"):
        assert name in str(error.value)


def test_detector_model_kwargs_merge_sizes_and_extra_kwargs() -> None:
    paper = get_profile("paper").detector
    assert paper.model_kwargs() == {"min_size": 800, "max_size": 1333}
    cpu = get_profile("cpu").detector
    assert cpu.model_kwargs() == {"min_size": 240, "max_size": 320}
    ssd = dataclasses.replace(
        cpu, arch="ssdlite320_mobilenet_v3_large", min_size=None, max_size=None, kwargs={"size": 320}
    )
    assert ssd.model_kwargs() == {"size": 320}


def _write_variant(tmp_path: Path, edit) -> Path:
    data = yaml.safe_load(PROFILES_PATH.read_text())
    edit(data["cpu"])
    path = tmp_path / "profiles.yaml"
    path.write_text(yaml.safe_dump({"cpu": data["cpu"]}))
    return path


def test_a_typo_in_a_key_fails_loudly(tmp_path: Path) -> None:
    def rename(cpu: dict) -> None:
        cpu["classifier"]["input_sise"] = cpu["classifier"].pop("input_size")

    path = _write_variant(tmp_path, rename)
    expected = r"cpu\.classifier: missing keys \['input_size'\], unknown keys \['input_sise'\]"
    with pytest.raises(ProfileError, match=expected):
        load_profiles(path)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda cpu: cpu["classifier"]["training"].update(optimizer="lion"), "optimizer"),
        (lambda cpu: cpu["crops"].update(batch_size=0), "batch_size: must be > 0"),
        (lambda cpu: cpu["detector"].update(nms_iou=1.5), "nms_iou"),
        (lambda cpu: cpu["normalisation"].update(std=[0.2, 0.2]), "three numbers"),
        (lambda cpu: cpu["classifier"].update(archs=[]), "non-empty list"),
    ],
)
def test_bad_values_are_rejected(tmp_path: Path, edit, message: str) -> None:
    with pytest.raises(ProfileError, match=message):
        load_profiles(_write_variant(tmp_path, edit))


def test_yaml_floats_without_a_dot_are_read_as_numbers(tmp_path: Path) -> None:
    path = _write_variant(tmp_path, lambda cpu: cpu["classifier"]["training"].update(lr="3e-4"))
    assert load_profiles(path)["cpu"].classifier.training.lr == 3e-4
