"""Pretraining jobs: every stored field and box (truth, annotators' work, predictions) feeds a real (tiny) SimCLR run
through `manage.py pretrain`, and what it learns is registered as a self-supervised starting point."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import timm
from django.conf import settings
from django.core.management import CommandError, call_command

from aicell.errors import StateConflict, ValidationFailed
from aicell.models import JobStatus
from inference.core.weights import apply_starting_point
from tests.factories import FieldFactory, prediction_set
from tests.training.platform_data import synthetic_truth, truth_field
from training.datasets import pretraining_fields
from training.models import PretrainingJob, StartingPoint, StartingPointKind
from training.pretraining import pretraining_job_create

pytestmark = pytest.mark.django_db


def run_pretrain(*args: str) -> dict[str, Any]:
    out = StringIO()
    call_command("pretrain", *args, stdout=out, stderr=StringIO())
    result: dict[str, Any] = json.loads(out.getvalue().strip().splitlines()[-1])
    return result


@pytest.mark.slow
def test_pretrain_waits_and_registers_a_self_supervised_starting_point(training_env: Path) -> None:
    synthetic_truth(patients=6)
    unlabelled = FieldFactory(width=96, height=96)  # no truth: its model's boxes still show cells
    prediction_set(
        unlabelled, [{"x": 10, "y": 10, "width": 30, "height": 30}, {"x": 50, "y": 40, "width": 28, "height": 28}]
    )
    expected_boxes = sum(len(record.cells) for record in pretraining_fields())
    report = run_pretrain(
        "--stage", "countability", "--profile", "test-tiny", "--epochs", "2", "--name", "ssl-test", "--wait", "--json"
    )
    assert report["status"] == "succeeded", report["error"]
    assert report["fields"] == 7
    assert report["boxes"] == expected_boxes
    [point_report] = report["starting_points"]
    assert point_report["epochs"] == 2
    point = StartingPoint.objects.get(name="ssl-test")
    assert point.pk == point_report["id"]
    assert point.kind == StartingPointKind.SELF_SUPERVISED
    assert point.arch == "mobilenetv3_small_050"
    assert f"pretraining job {report['pretraining_job']}" in point.source
    assert not point.keys["missing"]
    job = PretrainingJob.objects.get(pk=report["pretraining_job"])
    assert job.progress == 100.0
    assert job.epoch == 2
    assert job.loss is not None
    assert "registered starting point ssl-test" in job.log
    # The stored file loads into the stage's network (any class count: the head is the stage's own).
    model = timm.create_model("mobilenetv3_small_050", num_classes=2)
    keys = apply_starting_point(model, point.arch, Path(settings.AICELL_MODEL_DIR) / point.file, point.sha256)
    assert not keys.missing


def test_pretraining_reads_every_box_once_and_can_leave_splits_out(training_env: Path) -> None:
    train = truth_field("P1", [(10, 10, 30, 30, 12, True)], split="train")
    truth_field("P2", [(40, 40, 30, 30, 0, True)], split="val")
    # The model drew the truth cell again (same cell, merged) and one more cell (kept).
    prediction_set(
        train, [{"x": 11, "y": 11, "width": 30, "height": 30}, {"x": 55, "y": 50, "width": 20, "height": 20}]
    )
    records = {record.key: record for record in pretraining_fields()}
    assert len(records) == 2
    cells = records[f"field:{train.pk}"].cells
    assert [cell.box for cell in cells] == [(10.0, 10.0, 40.0, 40.0), (55.0, 50.0, 75.0, 70.0)]
    assert [record.key for record in pretraining_fields(exclude_splits=["val", "test"])] == [f"field:{train.pk}"]


def test_bad_parameters_are_refused_before_a_job_exists(training_env: Path) -> None:
    with pytest.raises(ValidationFailed) as refused:
        pretraining_job_create(stage="detector", profile="nope", name="-bad", epochs=0, exclude_splits=["later"])
    assert {error.field for error in refused.value.errors} == {"stage", "profile", "epochs", "exclude_splits"}
    for bad in ("-bad", "x" * 60):  # x * 60 + "-mobilenetv3_small_050" is longer than a name may be
        with pytest.raises(ValidationFailed) as refused:
            pretraining_job_create(stage="classifier", name=bad)
        assert [error.field for error in refused.value.errors] == ["name"]
    StartingPoint.objects.create(name="taken-mobilenetv3_small_050", arch="x", kind="imported", file="x.pt")
    StartingPoint.objects.create(name="one", arch="x", kind="imported", file="y.pt")
    with pytest.raises(ValidationFailed, match="one exist"):
        pretraining_job_create(stage="countability", name="one")
    with pytest.raises(CommandError, match="exist already"):
        call_command(
            "pretrain", "--stage", "countability", "--name", "one", "--wait", stdout=StringIO(), stderr=StringIO()
        )
    assert not PretrainingJob.objects.exists()


def test_a_job_is_queued_for_the_gpu_worker_after_commit_one_at_a_time(
    training_env: Path, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job = pretraining_job_create(stage="classifier", epochs=3, exclude_splits=["val"])
    assert len(callbacks) == 1
    assert job.status == JobStatus.QUEUED
    assert job.name == f"ssl-test-tiny-classifier-{job.pk}"
    assert job.parameters == {"epochs": 3, "seed": 0, "time_limit_s": None, "exclude_splits": ["val"]}
    with pytest.raises(StateConflict):
        pretraining_job_create(stage="countability")
