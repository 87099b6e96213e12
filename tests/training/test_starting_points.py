"""Starting points through the platform: `import_weights` with real state dicts, and a training job whose profile
names one (refused while it is not registered; recorded on the model version when it is)."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import timm
import torch
import yaml
from django.conf import settings
from django.core.management import CommandError, call_command

from aicell.errors import ValidationFailed
from inference.core.checkpoints import read_meta
from inference.core.weights import file_sha256
from tests.models_on_disk import TEST_PROFILE
from tests.training.platform_data import synthetic_truth
from training.jobs import training_job_create
from training.models import StartingPoint, TrainingJob

pytestmark = pytest.mark.django_db


def import_weights(*args: str) -> dict[str, Any]:
    out = StringIO()
    call_command("import_weights", *args, "--json", stdout=out, stderr=StringIO())
    result: dict[str, Any] = json.loads(out.getvalue().strip().splitlines()[-1])
    return result


def test_a_wrapped_timm_state_dict_is_imported_with_its_key_report(training_env: Path, tmp_path: Path) -> None:
    source = timm.create_model("mobilenetv3_small_050", pretrained=False).state_dict()
    path = tmp_path / "mnv3.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in source.items()}, "epoch": 90}, path)
    result = import_weights(str(path), "--arch", "mobilenetv3_small_050", "--name", "mnv3-in1k")
    point = StartingPoint.objects.get(name="mnv3-in1k")
    assert point.kind == "imported"
    assert result["keys"]["matched"] == len(source) - 2, "every tensor but the 1000-class head"
    assert set(result["keys"]["skipped_head"]) == {"classifier.weight", "classifier.bias"}
    assert result["keys"]["missing"] == []
    assert result["keys"]["unexpected"] == []
    stored = Path(settings.AICELL_MODEL_DIR) / point.file
    assert torch.equal(torch.load(stored, weights_only=True)["conv_stem.weight"], source["conv_stem.weight"])
    assert point.sha256 == file_sha256(stored)


def test_a_file_of_another_arch_or_with_nothing_in_common_is_refused(training_env: Path, tmp_path: Path) -> None:
    other = tmp_path / "lcnet.pth"
    torch.save(timm.create_model("lcnet_050", pretrained=False).state_dict(), other)
    with pytest.raises(CommandError, match=r"does not fit mobilenetv3_small_050: \d+ tensor\(s\) of another shape"):
        import_weights(str(other), "--arch", "mobilenetv3_small_050", "--name", "wrong")
    unrelated = tmp_path / "unrelated.pth"
    torch.save({"encoder.layer.weight": torch.zeros(4, 4)}, unrelated)
    with pytest.raises(CommandError, match="no tensor of the file fits"):
        import_weights(str(unrelated), "--arch", "mobilenetv3_small_050")
    with pytest.raises(CommandError, match="unknown arch 'resnet5O'"):
        import_weights(str(unrelated), "--arch", "resnet5O")
    assert not StartingPoint.objects.exists()
    assert not list((Path(settings.AICELL_MODEL_DIR) / "starting_points").glob("*"))


def test_a_name_is_registered_once(training_env: Path, tmp_path: Path) -> None:
    path = tmp_path / "lcnet.pth"
    torch.save(timm.create_model("lcnet_050", pretrained=False).state_dict(), path)
    import_weights(str(path), "--arch", "lcnet_050", "--name", "lc")
    with pytest.raises(CommandError, match="named 'lc' exists already"):
        import_weights(str(path), "--arch", "lcnet_050", "--name", "lc")


def _profile_with_countability_init(init: str) -> None:
    profiles = yaml.safe_load(Path(settings.AICELL_PROFILES_FILE).read_text())
    countability = profiles[TEST_PROFILE]["countability"]
    countability["init"] = init
    countability["training_pretrained"] = {**countability["training"], "lr": 1.0e-4}
    Path(settings.AICELL_PROFILES_FILE).write_text(yaml.safe_dump(profiles))


def test_a_job_naming_an_unregistered_point_is_refused(training_env: Path) -> None:
    _profile_with_countability_init("imagenet-local:not-there")
    with pytest.raises(ValidationFailed) as caught:
        training_job_create(stages="countability", profile=TEST_PROFILE, enqueue=False)
    assert caught.value.errors[0].field == "profile"
    assert "not-there" in caught.value.errors[0].reason
    assert "import_weights" in caught.value.errors[0].reason
    training_job_create(stages="detector", profile=TEST_PROFILE, enqueue=False)  # other stages are unaffected


@pytest.mark.slow
def test_a_job_trains_from_the_registered_point_and_records_it(
    training_env: Path, tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    path = tmp_path / "mnv3.pth"
    torch.save(timm.create_model("mobilenetv3_small_050", pretrained=False).state_dict(), path)
    point = import_weights(str(path), "--arch", "mobilenetv3_small_050", "--name", "mnv3-local")
    _profile_with_countability_init("imagenet-local:mnv3-local")
    synthetic_truth(patients=12)
    out = StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command(
            "train", "--stage", "countability", "--profile", TEST_PROFILE, "--wait", "--json", stdout=out, stderr=out
        )
    report = json.loads(out.getvalue().strip().splitlines()[-1])
    assert report["status"] == "succeeded", report["error"]
    version = TrainingJob.objects.get(pk=report["training_job"]).model_versions.get()
    assert version.starting_points == [{"name": "mnv3-local", "sha256": point["sha256"]}]
    meta = read_meta(Path(settings.AICELL_MODEL_DIR) / version.checkpoints[0])
    assert meta.config["starting_point"]["sha256"] == point["sha256"]
    assert meta.config["lr"] == pytest.approx(1.0e-4), "the pretrained recipe"
    assert "starting point mnv3-local" in TrainingJob.objects.get(pk=report["training_job"]).log
