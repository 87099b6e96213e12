"""The pretraining API: admins queue self-supervised pretraining (202, one at a time 409, cancel) with each bad
parameter named; admins and researchers read jobs and starting points; a job run by the worker's service registers
its starting point, which the list then shows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from aicell.roles import Role
from tests.training.platform_data import synthetic_truth
from training.models import PretrainingJob, StartingPoint, StartingPointKind
from training.pretraining import pretraining_job_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(make_user: Any, client_for: Any) -> Any:
    return client_for(make_user(Role.ADMIN))


@pytest.fixture
def researcher(make_user: Any, client_for: Any) -> Any:
    return client_for(make_user(Role.RESEARCHER))


def test_an_admin_queues_pretraining_and_cancels_it(admin: Any, researcher: Any, training_env: Path) -> None:
    body = {"stage": "classifier", "epochs": 3, "exclude_splits": ["val", "test"], "time_limit_s": 600}
    response = admin.post("/api/v1/pretraining-jobs", body, format="json")
    assert response.status_code == 202, response.data
    job = response.data
    assert (job["status"], job["stage"], job["profile"]) == ("queued", "classifier", "test-tiny")
    assert job["name"] == f"ssl-test-tiny-classifier-{job['id']}"
    assert job["parameters"] == {"epochs": 3, "seed": 0, "time_limit_s": 600, "exclude_splits": ["val", "test"]}
    listed = researcher.get("/api/v1/pretraining-jobs").data["results"]
    assert [row["id"] for row in listed] == [job["id"]]
    assert "log" not in listed[0]
    assert researcher.get(f"/api/v1/pretraining-jobs/{job['id']}").data["log"] == ""
    assert researcher.post("/api/v1/pretraining-jobs", body, format="json").status_code == 403
    again = admin.post("/api/v1/pretraining-jobs", {"stage": "countability"}, format="json")
    assert again.status_code == 409
    assert again.data["pretraining_job"] == job["id"]
    cancelled = admin.post(f"/api/v1/pretraining-jobs/{job['id']}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.data["status"] == "cancelled"
    assert admin.post(f"/api/v1/pretraining-jobs/{job['id']}/cancel").status_code == 409


def test_bad_pretraining_parameters_are_named_and_nothing_is_queued(admin: Any, training_env: Path) -> None:
    cases = [
        ({"stage": "segmenter"}, {"stage"}),
        ({"stage": "classifier", "epochs": 0, "time_limit_s": 0}, {"epochs", "time_limit_s"}),
        ({"stage": "classifier", "epochs": True}, {"epochs"}),  # a boolean is not a number of epochs
        ({"stage": "classifier", "name": 1234}, {"name"}),  # the schema says string
        ({"stage": "classifier", "exclude_splits": ["later"]}, {"exclude_splits.0"}),
        ({"stage": "classifier", "profile": "nope"}, {"profile"}),
        ({"stage": "classifier", "name": "-bad"}, {"name"}),
    ]
    for body, fields in cases:
        response = admin.post("/api/v1/pretraining-jobs", body, format="json")
        assert response.status_code == 400, (body, response.data)
        assert {error["field"] for error in response.data["errors"]} == fields, (body, response.data)
    StartingPoint.objects.create(name="taken", arch="mobilenetv3_small_050", kind=StartingPointKind.IMPORTED)
    taken = admin.post("/api/v1/pretraining-jobs", {"stage": "countability", "name": "taken"}, format="json")
    assert taken.status_code == 400
    assert [error["field"] for error in taken.data["errors"]] == ["name"]
    assert not PretrainingJob.objects.exists()


def test_a_finished_job_shows_its_starting_point_in_the_list(
    admin: Any, researcher: Any, training_env: Path, django_capture_on_commit_callbacks: Any
) -> None:
    synthetic_truth(patients=4)
    with django_capture_on_commit_callbacks(execute=False):  # the worker's part is run here, below
        response = admin.post(
            "/api/v1/pretraining-jobs", {"stage": "countability", "epochs": 1, "name": "lab-ssl"}, format="json"
        )
    assert response.status_code == 202, response.data
    pretraining_job_run(response.data["id"])
    job = admin.get(f"/api/v1/pretraining-jobs/{response.data['id']}").data
    assert job["status"] == "succeeded", job["error"]
    assert job["progress"] == 100.0
    [point] = researcher.get("/api/v1/starting-points").data["results"]
    assert (point["name"], point["arch"], point["kind"]) == ("lab-ssl", "mobilenetv3_small_050", "self_supervised")
    assert point["sha256"] == StartingPoint.objects.get(name="lab-ssl").sha256
    assert point["keys"]["missing"] == []
    assert researcher.get(f"/api/v1/starting-points/{point['id']}").data["name"] == "lab-ssl"
    assert researcher.get("/api/v1/starting-points", {"kind": "imported"}).data["results"] == []
