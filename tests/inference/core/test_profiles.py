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
    init_starting_point,
    load_profiles,
    profile_names,
    stage_recipe,
)


def test_paper_profile_matches_the_seed_paper() -> None:
    paper = get_profile("paper")
    assert paper.detector.arch == "ssd300_vgg16"
    assert paper.countability.arch == "resnet50"
    assert paper.classifier.archs == ("resnext101_32x8d", "resnext50_32x4d", "resnet50")
    assert paper.classifier.input_size == paper.countability.input_size == 224
    # The seed fine-tuned pretrained weights with Adam 1e-5: that is the recipe from a starting point.
    for stage, t_max in ((paper.countability, 30), (paper.classifier, 50)):
        recipe = stage.training_pretrained
        assert recipe is not None
        assert (recipe.optimizer, recipe.lr, recipe.batch_size, recipe.cosine_t_max) == ("adam", 1e-5, 32, t_max)
        assert stage.training.lr >= 100 * recipe.lr, "from random init a fine-tuning rate is far too small"
    assert all(init.startswith("imagenet-local:") for init in (*paper.classifier.inits, paper.countability.init))
    assert paper.detector.init.startswith("imagenet-local:")
    assert paper.crop_batch_size >= 256
    assert paper.device == "auto"


def test_retinanet_stays_available_with_the_papers_other_models() -> None:
    paper, retinanet = get_profile("paper"), get_profile("paper-retinanet")
    assert retinanet.detector.arch == "retinanet_resnet50_fpn"
    assert (retinanet.countability, retinanet.classifier) == (paper.countability, paper.classifier)


def test_cpu_profile_is_small_and_trains_from_scratch() -> None:
    cpu = get_profile("cpu")
    assert cpu.classifier.input_size >= 96
    assert 2 <= len(cpu.classifier.archs) <= 3
    assert cpu.classifier.training.optimizer == "adamw"
    assert cpu.classifier.inits == ("scratch",) * len(cpu.classifier.archs)
    paper_recipe = get_profile("paper").classifier.training_pretrained
    assert paper_recipe is not None
    assert cpu.classifier.training.lr >= 100 * paper_recipe.lr


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
    retinanet = get_profile("paper-retinanet").detector
    assert retinanet.model_kwargs() == {"min_size": 800, "max_size": 1333}
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
        (lambda cpu: cpu["detector"].update(init="imagenet:x"), r"detector\.init: expected 'scratch' or"),
        (lambda cpu: cpu["detector"].update(init="starting-point:"), r"detector\.init: expected 'scratch' or"),
        (lambda cpu: cpu["classifier"].update(init=["scratch"]), r"1 values for 3 models"),
        (
            lambda cpu: cpu["countability"].update(init="imagenet-local:m"),
            r"countability: init names a starting point, so a training_pretrained recipe is required",
        ),
        (lambda cpu: cpu["countability"]["training"].update(warmup_epochs=-1), r"warmup_epochs: must be >= 0"),
    ],
)
def test_bad_values_are_rejected(tmp_path: Path, edit, message: str) -> None:
    with pytest.raises(ProfileError, match=message):
        load_profiles(_write_variant(tmp_path, edit))


def test_yaml_floats_without_a_dot_are_read_as_numbers(tmp_path: Path) -> None:
    path = _write_variant(tmp_path, lambda cpu: cpu["classifier"]["training"].update(lr="3e-4"))
    assert load_profiles(path)["cpu"].classifier.training.lr == 3e-4


def test_inits_and_the_pretrained_recipe_are_read(tmp_path: Path) -> None:
    def edit(cpu: dict) -> None:
        cpu["classifier"]["init"] = ["starting-point:a", "scratch", "imagenet-local:b"]
        cpu["classifier"]["training_pretrained"] = {**cpu["classifier"]["training"], "lr": 1e-4, "warmup_epochs": 2}
        cpu["detector"]["init"] = "starting-point:ssl-detector"
        cpu["detector"]["training_pretrained"] = cpu["detector"]["training"]

    cpu = load_profiles(_write_variant(tmp_path, edit))["cpu"]
    assert cpu.classifier.inits == ("starting-point:a", "scratch", "imagenet-local:b")
    assert stage_recipe(cpu.classifier, "scratch") == cpu.classifier.training
    pretrained = stage_recipe(cpu.classifier, "starting-point:a")
    assert (pretrained.lr, pretrained.warmup_epochs) == (1e-4, 2.0)
    assert cpu.detector.inits == ("starting-point:ssl-detector",)
    assert [init_starting_point(init) for init in cpu.classifier.inits] == ["a", None, "b"]
