"""The training API: jobs (launch 202, one at a time 409, cancel), the registry (metrics, plots, promote, rollback),
schedules (PATCH the switch, threshold and crontab) and dataset snapshots; admins write, researchers read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django_celery_beat.models import PeriodicTask

from aicell.roles import Role
from annotations.models import AuditEvent
from tests.factories import ModelVersionFactory
from tests.training.platform_data import truth_field
from training.datasets import dataset_snapshot_create
from training.models import ModelStatus, RetrainPolicy, TrainingJob

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.fixture
def admin(make_user: Any, client_for: Any) -> Any:
    return client_for(make_user(Role.ADMIN))


@pytest.fixture
def researcher(make_user: Any, client_for: Any) -> Any:
    return client_for(make_user(Role.RESEARCHER))


def test_an_admin_launches_a_job_and_the_ui_shape_is_served(admin: Any, training_env: Path) -> None:
    response = admin.post("/api/v1/training-jobs", {"stage": "detector", "profile": "test-tiny"}, format="json")
    assert response.status_code == 202, response.data
    body = response.data
    assert body["status"] == "queued"
    assert body["stage"] == "detector"
    assert body["stages"] == ["detector"]
    assert body["profile"] == "test-tiny"
    assert body["parameters"] == {"epochs": None, "seed": 0, "promote": "auto", "overrides": {}}
    assert body["triggered_by"] == "user"
    assert body["model_version"] is None
    assert body["cancel_requested"] is False
    listed = admin.get("/api/v1/training-jobs", {"ordering": "-id"}).data
    assert [job["id"] for job in listed["results"]] == [body["id"]]
    assert "log" not in listed["results"][0]
    assert admin.get(f"/api/v1/training-jobs/{body['id']}").data["log"] == ""
    # A second launch while it waits: 409, naming the job.
    again = admin.post("/api/v1/training-jobs", {"stage": "all", "profile": "test-tiny"}, format="json")
    assert again.status_code == 409
    assert again.data["training_job"] == body["id"]
    cancelled = admin.post(f"/api/v1/training-jobs/{body['id']}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.data["status"] == "cancelled"
    assert admin.post(f"/api/v1/training-jobs/{body['id']}/cancel").status_code == 409


def test_launch_parameters_are_checked_field_by_field(admin: Any, training_env: Path) -> None:
    response = admin.post(
        "/api/v1/training-jobs",
        {"stages": ["classifier"], "profile": "nope", "epochs": 3, "promote": "force", "overrides": {"lr": "x"}},
        format="json",
    )
    assert response.status_code == 400
    assert {error["field"] for error in response.data["errors"]} == {"profile", "overrides.lr"}
    null = admin.post("/api/v1/training-jobs", {"stages": ["classifier"], "profile": "null"}, format="json")
    assert null.status_code == 400  # the null pipeline kind has nothing to train
    assert [error["field"] for error in null.data["errors"]] == ["profile"]
    bad = admin.post("/api/v1/training-jobs", {"stage": "segmenter", "epochs": 0}, format="json")
    assert bad.status_code == 400
    assert {error["field"] for error in bad.data["errors"]} == {"stage", "epochs"}
    assert not TrainingJob.objects.exists()
    ok = admin.post(
        "/api/v1/training-jobs",
        {"stages": ["classifier", "detector"], "epochs": 3, "seed": 5, "promote": "never", "overrides": {"lr": 0.01}},
        format="json",
    )
    assert ok.status_code == 202
    assert ok.data["stages"] == ["detector", "classifier"]
    assert ok.data["stage"] == "detector+classifier"
    assert ok.data["profile"] == "test-tiny"  # AICELL_PROFILE
    assert ok.data["parameters"] == {"epochs": 3, "seed": 5, "promote": "never", "overrides": {"lr": 0.01}}


def test_model_versions_carry_metrics_and_serve_their_plots(
    admin: Any, researcher: Any, training_env: Path, make_user: Any, client_for: Any
) -> None:
    plot = Path(settings.AICELL_MODEL_DIR) / "training" / "job-1" / "classifier" / "plots" / "confusion_matrix.png"
    plot.parent.mkdir(parents=True)
    plot.write_bytes(PNG)
    version = ModelVersionFactory(
        metrics={"accuracy": 0.8, "macro_f1": 0.7},
        plots=[
            {"name": "confusion_matrix.png", "path": "training/job-1/classifier/plots/confusion_matrix.png"},
            {"name": "gone.png", "path": "training/job-1/classifier/plots/gone.png"},
        ],
    )
    listed = researcher.get("/api/v1/model-versions", {"ordering": "-id"})
    assert listed.status_code == 200
    (row,) = listed.data["results"]
    assert row["metrics"] == {"accuracy": 0.8, "macro_f1": 0.7}
    url = f"/api/v1/model-versions/{version.pk}/plots/confusion_matrix.png"
    assert row["plots"][0] == {"name": "confusion_matrix.png", "url": url}
    served = researcher.get(url)
    assert served.status_code == 200
    assert served["Content-Type"] == "image/png"
    assert b"".join(served.streaming_content) == PNG
    assert researcher.get(f"/api/v1/model-versions/{version.pk}/plots/gone.png").status_code == 404
    assert researcher.get(f"/api/v1/model-versions/{version.pk}/plots/other.png").status_code == 404
    annotator = client_for(make_user(Role.ANNOTATOR))
    assert annotator.get("/api/v1/model-versions").status_code == 403
    assert annotator.get(url).status_code == 403


def test_admins_promote_and_roll_back_with_a_reason(admin: Any, researcher: Any, training_env: Path) -> None:
    old = ModelVersionFactory(status=ModelStatus.ACTIVE, checkpoints=["a.pt"])
    new = ModelVersionFactory(checkpoints=["b.pt"])
    assert admin.post(f"/api/v1/model-versions/{new.pk}/promote", {}, format="json").status_code == 400
    assert researcher.post(f"/api/v1/model-versions/{new.pk}/promote", {"reason": "x"}).status_code == 403
    promoted = admin.post(f"/api/v1/model-versions/{new.pk}/promote", {"reason": "better"}, format="json")
    assert promoted.status_code == 200, promoted.data
    assert promoted.data["status"] == "active"
    assert promoted.data["replaced"] == old.pk
    assert admin.post(f"/api/v1/model-versions/{new.pk}/promote", {"reason": "again"}).status_code == 409
    back = admin.post(f"/api/v1/model-versions/{new.pk}/rollback", {"reason": "worse in clinic"}, format="json")
    assert back.status_code == 200
    assert back.data["id"] == old.pk
    assert back.data["status"] == "active"
    assert list(AuditEvent.objects.filter(entity="model_version").values_list("action", flat=True)) == [
        "model_version.retire",
        "model_version.promote",
        "model_version.retire",
        "model_version.rollback",
    ]


def test_schedules_are_read_and_patched(admin: Any, researcher: Any) -> None:
    listed = researcher.get("/api/v1/training-schedules")
    assert listed.status_code == 200
    (row,) = listed.data["results"]
    assert row["name"] == "nightly"
    assert row["enabled"] is True
    assert row["min_new_cells"] == 500
    assert (row["minute"], row["hour"], row["day_of_week"]) == ("0", "2", "*")
    assert row["new_cells"] == 0
    url = f"/api/v1/training-schedules/{row['id']}"
    assert researcher.patch(url, {"enabled": False}, format="json").status_code == 403
    changed = admin.patch(url, {"enabled": False, "min_new_cells": 50, "hour": "3", "minute": "30"}, format="json")
    assert changed.status_code == 200, changed.data
    assert changed.data["enabled"] is False
    assert changed.data["min_new_cells"] == 50
    assert (changed.data["minute"], changed.data["hour"]) == ("30", "3")
    policy = RetrainPolicy.objects.get(pk=row["id"])
    task = PeriodicTask.objects.get(pk=policy.periodic_task_id)
    assert task.enabled is False
    assert task.crontab is not None
    assert (task.crontab.minute, task.crontab.hour) == ("30", "3")
    bad = admin.patch(url, {"hour": "99"}, format="json")
    assert bad.status_code == 400
    assert bad.data["errors"][0]["field"] == "hour"
    assert admin.put(url, {"enabled": True}, format="json").status_code == 405
    policy.refresh_from_db()
    assert policy.periodic_task is not None
    assert policy.periodic_task.crontab is not None
    assert policy.periodic_task.crontab.hour == "3"


def test_dataset_snapshots_are_read_only(admin: Any, researcher: Any, training_env: Path) -> None:
    truth_field("D1", [(1, 1, 10, 10, 12, True)], split="train")
    snapshot = dataset_snapshot_create()
    listed = researcher.get("/api/v1/dataset-snapshots")
    assert listed.status_code == 200
    (row,) = listed.data["results"]
    assert row["id"] == snapshot.pk
    assert row["counts"]["train"]["classes"] == {"12": 1}
    assert row["sources"] == {"consensus": {"fields": 1, "cells": 1}}
    assert row["content_hash"] == snapshot.content_hash
    assert admin.post("/api/v1/dataset-snapshots", {}).status_code == 403  # no write roles: default-deny


def test_the_schema_documents_the_training_api(admin: Any) -> None:
    schema = admin.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    paths = schema["paths"]
    for path in (
        "/api/v1/training-jobs",
        "/api/v1/training-jobs/{id}/cancel",
        "/api/v1/model-versions/{id}/promote",
        "/api/v1/model-versions/{id}/rollback",
        "/api/v1/model-versions/{id}/plots/{name}",
        "/api/v1/training-schedules/{id}",
        "/api/v1/dataset-snapshots",
    ):
        assert any(key.rstrip("/") == path for key in paths), path


def test_a_schedule_takes_json_only(admin: Any) -> None:
    """Issue 21's fuzzing (PostgreSQL): a form body `minute=` answered 200; an empty form value reads as absent."""
    url = f"/api/v1/training-schedules/{RetrainPolicy.objects.get().pk}"
    assert admin.patch(url, "minute=", content_type="application/x-www-form-urlencoded").status_code == 415
    assert admin.patch(url, {"minute": ""}, format="json").status_code == 400
