"""Every endpoint x every role (and anonymous): the expected status code, walked with real token auth.

Each row names the statuses that differ from the row's default; new endpoints add rows here.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from aicell.models import JobStatus
from aicell.roles import Role
from annotations.counting.rules import FAB_RULE_SET
from annotations.models import AnnotationKind, AnnotationStatus, ExportJob, ImportJob, RuleSet
from annotations.review.services import consensus_reopen
from inference.models import PrelabelJob
from tests.conftest import token_client
from tests.factories import (
    PASSWORD,
    AnnotationSetFactory,
    AssignmentFactory,
    CaseFactory,
    CellFactory,
    FieldFactory,
    ModelVersionFactory,
    PatientFactory,
    SmearFactory,
    UserFactory,
    image_bytes,
    prediction_set,
    reviewed_field,
)
from training.core.stages import DETECTOR, STAGES
from training.models import (
    DatasetSnapshot,
    ModelStatus,
    ModelVersion,
    PretrainingJob,
    RetrainPolicy,
    StartingPoint,
    TrainingJob,
)

pytestmark = pytest.mark.django_db

ANONYMOUS = "anonymous"
ROLES: tuple[str, ...] = (ANONYMOUS, *(role.value for role in Role))


class World:
    """The objects the requests name, made on first use (a test makes only what its request touches) and fresh
    for every test, so writes never depend on earlier rows. The annotator user is A of every reviewed field."""

    def __init__(self) -> None:
        self.users: dict[str, Any] = {role.value: UserFactory(roles=[role]) for role in Role}
        self._made: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        builder = BUILDERS.get(name)
        if builder is None:
            raise AttributeError(name)
        if name not in self._made:
            self._made[name] = builder(self)
        return self._made[name]

    @property
    def annotator(self) -> Any:
        return self.users["annotator"]


class _Ids(dict[str, int]):
    """Fills a path template such as "/api/v1/cells/{cell}" with the id of the world's object of that name."""

    def __init__(self, world: World) -> None:
        super().__init__()
        self.world = world

    def __missing__(self, name: str) -> int:
        return int(getattr(self.world, name).pk)


def _field_assigned_to_the_annotator(w: World) -> Any:
    # Assigned, so the annotator may start a set on it; its second slot stays free for POST /assignments.
    field = FieldFactory(smear=w.smear)
    AssignmentFactory(field=field, annotator=w.annotator)
    return field


def _own_set_with_suggestions(w: World) -> Any:
    # The annotator's own set, on another field than `field` so that starting a set on `field` stays possible.
    own: Any = AnnotationSetFactory(field=FieldFactory(smear=w.smear), annotator=w.annotator)
    prediction_set(own.field, [{"x": 100, "y": 100}])
    return own


CELL = {"x": 10, "y": 20, "width": 50, "height": 40, "cell_class_id": 11}


def _reviewed(w: World, cell_b: dict[str, Any]) -> Any:
    return reviewed_field(w.annotator, w.co_annotator, [CELL], [cell_b], smear=w.smear)


def _reopened_field(w: World) -> Any:
    field = _reviewed(w, CELL)
    consensus_reopen(field_id=field.pk, expected_version=1, reason="recount", actor=w.users["adjudicator"])
    return field


def _prelabel_request(w: World) -> dict[str, Any]:
    w.active_models  # noqa: B018  (a pre-label request needs an active model of every stage)
    return {"field_ids": [w.field.pk]}


def _locked_truth(w: World) -> Any:
    # Locked truth on a field of its own, so that an export has something to export.
    truth = AnnotationSetFactory(
        field=FieldFactory(smear=w.smear), kind=AnnotationKind.IMPORTED, annotator=None, status=AnnotationStatus.LOCKED
    )
    CellFactory(annotation_set=truth)
    return truth


def _export_request(w: World) -> dict[str, Any]:
    w.locked_truth  # noqa: B018  (something to export)
    return {}


def _version_with_plot(w: World) -> Any:
    version: Any = ModelVersionFactory(checkpoints=["matrix/model.pt"])
    relative = f"matrix-plots/{version.pk}/confusion_matrix.png"
    path = Path(settings.AICELL_MODEL_DIR) / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n")
    version.plots = [{"name": "confusion_matrix.png", "path": relative}]
    version.save()
    return version


def _rollback_version(w: World) -> ModelVersion:
    old = ModelVersion.objects.create(stage=DETECTOR.name, profile="cpu", architecture="a", status=ModelStatus.RETIRED)
    return ModelVersion.objects.create(
        stage=DETECTOR.name, profile="cpu", architecture="b", status=ModelStatus.ACTIVE, replaced=old
    )


BUILDERS: dict[str, Callable[[World], Any]] = {
    "patient": lambda w: PatientFactory(),
    "spare_patient": lambda w: PatientFactory(),
    "case": lambda w: CaseFactory(patient=w.patient),
    "smear": lambda w: SmearFactory(case=w.case),
    "field": _field_assigned_to_the_annotator,
    "annotation_set": _own_set_with_suggestions,
    "cell": lambda w: CellFactory(annotation_set=w.annotation_set),
    "co_annotator": lambda w: UserFactory(roles=[Role.ANNOTATOR]),
    "rule_set": lambda w: RuleSet.objects.get(name="fab", version=1),
    "active_models": lambda w: [ModelVersionFactory(stage=stage, status="active") for stage in STAGES],
    "prelabel_job": lambda w: PrelabelJob.objects.create(pipeline={}, field_count=1),
    "locked_truth": _locked_truth,
    "export": lambda w: ExportJob.objects.create(
        created_by=w.users["researcher"], status=JobStatus.SUCCEEDED, file=ContentFile(tiny_zip(), name="export.zip")
    ),
    "queued_export": lambda w: ExportJob.objects.create(created_by=w.users["researcher"]),
    "import_job": lambda w: ImportJob.objects.create(created_by=w.users["admin"], case=w.case, format="voc"),
    "queued_import": lambda w: ImportJob.objects.create(created_by=w.users["admin"], case=w.case, format="voc"),
    "reported_import": lambda w: ImportJob.objects.create(
        created_by=w.users["admin"],
        case=w.case,
        format="coco",
        status=JobStatus.FAILED,
        report=ContentFile(b"outcome,kind,file,image,boxes,reason\n", name="report.csv"),
    ),
    "assignment": lambda w: w.field.assignments.get(),
    "spare_assignment": lambda w: AssignmentFactory(field=FieldFactory(smear=w.smear), annotator=w.co_annotator),
    # Automatic assignment needs two annotators to choose from.
    "auto_field": lambda w: w.co_annotator and FieldFactory(smear=w.smear),
    "review_field": lambda w: _reviewed(w, {**CELL, "cell_class_id": 12}),
    "conflict": lambda w: w.review_field.conflicts.get(),
    "consensus_field": lambda w: _reviewed(w, CELL),
    "reopened_field": _reopened_field,
    "reopened_cell": lambda w: w.reopened_field.annotation_sets.get(kind="consensus").cells.get(),
    "training_job": lambda w: TrainingJob.objects.create(stages=["detector"], profile="cpu", status="succeeded"),
    "queued_training_job": lambda w: TrainingJob.objects.create(stages=["detector"], profile="cpu"),
    "pretraining_job": lambda w: PretrainingJob.objects.create(
        stage="classifier", profile="cpu", name="ssl-done", status="succeeded"
    ),
    "queued_pretraining_job": lambda w: PretrainingJob.objects.create(stage="classifier", profile="cpu", name="q"),
    "starting_point": lambda w: StartingPoint.objects.create(name="ssl-x", arch="resnet50", kind="self_supervised"),
    "model_version": _version_with_plot,
    "rollback_version": _rollback_version,
    "training_schedule": lambda w: RetrainPolicy.objects.get(name="nightly"),
    "dataset_snapshot": lambda w: DatasetSnapshot.objects.create(content_hash="0" * 64, file="matrix.jsonl"),
    "spare_user": lambda w: UserFactory(roles=[Role.ANNOTATOR]),
}


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # a template over World.ids(), e.g. "/api/v1/cells/{cell}"
    expected: dict[str, int]
    body: Callable[[World], Any] = lambda world: None
    multipart: bool = False

    def __str__(self) -> str:
        return f"{self.method.upper()} {self.path}"


def everyone(status: int, **overrides: int) -> dict[str, int]:
    statuses = {role: status for role in ROLES if role != ANONYMOUS}
    statuses[ANONYMOUS] = 401
    statuses.update(overrides)
    return statuses


def only(allowed: tuple[str, ...], status: int) -> dict[str, int]:
    return everyone(403, **{role: status for role in allowed})


MANAGERS = ("admin", "adjudicator")
EXPORTERS = ("admin", "researcher")
MODEL_READERS = ("admin", "researcher")


def tiny_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("Annotations/f.xml", "<annotation/>")
    return buffer.getvalue()


ENDPOINTS: list[Endpoint] = [
    Endpoint("get", "/api/v1/health", {**everyone(200), ANONYMOUS: 200}),
    Endpoint("get", "/api/v1/auth/session", {**everyone(200), ANONYMOUS: 200}),
    Endpoint(
        "post",
        "/api/v1/auth/token",
        {**everyone(200), ANONYMOUS: 200},
        lambda w: {"username": w.annotator.username, "password": PASSWORD},
    ),
    Endpoint("get", "/api/schema/", {**everyone(200), ANONYMOUS: 200}),
    Endpoint("get", "/api/v1/patients", everyone(200)),
    Endpoint("post", "/api/v1/patients", only(MANAGERS, 201), lambda w: {"code": "PX1"}),
    Endpoint("get", "/api/v1/patients/{patient}", everyone(200)),
    Endpoint("patch", "/api/v1/patients/{patient}", only(MANAGERS, 200), lambda w: {"code": "PX2"}),
    Endpoint("delete", "/api/v1/patients/{spare_patient}", only(MANAGERS, 204)),
    Endpoint("get", "/api/v1/cases", everyone(200)),
    Endpoint(
        "post",
        "/api/v1/cases",
        only(MANAGERS, 201),
        lambda w: {"code": "CX1", "patient": w.patient.pk, "confirmed_diagnosis": "ALL"},
    ),
    Endpoint("get", "/api/v1/cases/{case}", everyone(200)),
    Endpoint("get", "/api/v1/cases/{case}/differential", everyone(200)),
    Endpoint("get", "/api/v1/cases/{case}/differential?format=csv", everyone(200)),
    Endpoint("get", "/api/v1/cases/{case}/differential/report.pdf", everyone(200)),
    Endpoint("get", "/api/v1/cases/{case}/gallery", everyone(200)),
    Endpoint("get", "/api/v1/cases/{case}/gallery?source=model", everyone(200, researcher=403)),
    Endpoint("get", "/api/v1/smears", everyone(200)),
    Endpoint("post", "/api/v1/smears", only(MANAGERS, 201), lambda w: {"code": "SX1", "case": w.case.pk}),
    Endpoint("get", "/api/v1/smears/{smear}", everyone(200)),
    Endpoint("get", "/api/v1/smears/{smear}/differential", everyone(200)),
    Endpoint("get", "/api/v1/smears/{smear}/differential?format=csv", everyone(200)),
    Endpoint("get", "/api/v1/smears/{smear}/differential/report.pdf", everyone(200)),
    Endpoint("get", "/api/v1/smears/{smear}/gallery", everyone(200)),
    Endpoint("get", "/api/v1/smears/{smear}/gallery?source=mine", only(("annotator",), 200)),
    Endpoint("get", "/api/v1/fields", everyone(200)),
    Endpoint(
        "post",
        "/api/v1/fields",
        only(MANAGERS, 201),
        lambda w: {"smear": w.smear.pk, "files": [SimpleUploadedFile("f.jpg", image_bytes(seed=w.smear.pk + 1000))]},
        multipart=True,
    ),
    Endpoint("get", "/api/v1/fields/{field}", everyone(200)),
    Endpoint("get", "/api/v1/fields/{field}/image", everyone(200)),
    Endpoint("get", "/api/v1/fields/{field}/thumbnail", everyone(200)),
    Endpoint("get", "/api/v1/cell-classes", everyone(200)),
    Endpoint("get", "/api/v1/cell-classes/11", everyone(200)),
    Endpoint("get", "/api/v1/annotation-sets", everyone(200)),
    Endpoint("post", "/api/v1/annotation-sets", only(("annotator",), 201), lambda w: {"field": w.field.pk}),
    # The world's set belongs to the annotator user, so only roles that may see it get 200.
    Endpoint("get", "/api/v1/annotation-sets/{annotation_set}", everyone(200, researcher=404)),
    Endpoint("get", "/api/v1/annotation-sets/{annotation_set}/cells", everyone(200, researcher=404)),
    Endpoint(
        "post",
        "/api/v1/annotation-sets/{annotation_set}/cells",
        only(("annotator",), 201),
        lambda w: {"x": 1, "y": 1, "width": 10, "height": 10, "cell_class": 3, "version": 1},
    ),
    Endpoint(
        "post",
        "/api/v1/annotation-sets/{annotation_set}/submit",
        only(("annotator",), 200),
        lambda w: {"version": 1},
    ),
    Endpoint("get", "/api/v1/cells", everyone(200)),
    Endpoint("get", "/api/v1/cells/{cell}", everyone(200, researcher=404)),
    Endpoint("patch", "/api/v1/cells/{cell}", only(("annotator",), 200), lambda w: {"x": 2, "version": 1}),
    Endpoint("delete", "/api/v1/cells/{cell}?version=1", only(("annotator",), 204)),
    # Double review. The annotator user is A on `review_field`, `consensus_field` and `reopened_field`.
    Endpoint(
        "post",
        "/api/v1/annotation-sets/{annotation_set}/accept",
        only(("annotator",), 200),
        lambda w: {"all": True, "version": 1},
    ),
    Endpoint("get", "/api/v1/assignments", everyone(200, researcher=403)),
    Endpoint("get", "/api/v1/assignments?mine=1", everyone(200, researcher=403)),
    Endpoint("get", "/api/v1/assignments/{assignment}", everyone(200, researcher=403)),
    Endpoint(
        "post",
        "/api/v1/assignments",
        only(MANAGERS, 201),
        lambda w: {"field": w.field.pk, "annotator": w.co_annotator.pk},
    ),
    Endpoint("post", "/api/v1/assignments/auto", only(MANAGERS, 201), lambda w: {"fields": [w.auto_field.pk]}),
    Endpoint("delete", "/api/v1/assignments/{spare_assignment}", only(MANAGERS, 204)),
    Endpoint("get", "/api/v1/conflicts", everyone(200, researcher=403)),
    Endpoint("get", "/api/v1/conflicts/{conflict}", everyone(200, researcher=403)),
    # One body per kind of resolver: the annotators' decision is not the adjudicator's, and vice versa.
    Endpoint(
        "post",
        "/api/v1/conflicts/{conflict}/resolve",
        only(("annotator",), 200) | {"adjudicator": 400},
        lambda w: {"decision": "keep", "version": 1},
    ),
    Endpoint(
        "post",
        "/api/v1/conflicts/{conflict}/resolve",
        only(("adjudicator",), 200) | {"annotator": 400},
        lambda w: {"decision": "a", "version": 1},
    ),
    Endpoint("get", "/api/v1/fields/{review_field}/conflicts", everyone(200, researcher=403)),
    Endpoint("get", "/api/v1/fields/{review_field}/history", everyone(200, researcher=403)),
    Endpoint("get", "/api/v1/fields/{consensus_field}/consensus", everyone(200)),
    Endpoint(
        "post",
        "/api/v1/fields/{consensus_field}/consensus/reopen",
        only(("adjudicator",), 200),
        lambda w: {"reason": "a lymphoblast was missed", "version": 1},
    ),
    Endpoint(
        "post", "/api/v1/fields/{reopened_field}/consensus/lock", only(("adjudicator",), 200), lambda w: {"version": 2}
    ),
    Endpoint(
        "patch",
        "/api/v1/cells/{reopened_cell}",
        only(("adjudicator",), 200),
        lambda w: {"cell_class": 12, "version": 2},
    ),
    Endpoint("get", "/api/v1/agreement?case={case}", everyone(200, researcher=403)),
    Endpoint("get", "/api/v1/review-settings", everyone(200)),
    Endpoint("patch", "/api/v1/review-settings", only(("admin",), 200), lambda w: {"iou_threshold": 0.6}),
    Endpoint("get", "/api/v1/prelabel-jobs", only(MANAGERS, 200)),
    Endpoint("post", "/api/v1/prelabel-jobs", only(MANAGERS, 202), lambda w: _prelabel_request(w)),
    Endpoint("get", "/api/v1/prelabel-jobs/{prelabel_job}", only(MANAGERS, 200)),
    Endpoint("get", "/api/v1/prelabel-jobs/{prelabel_job}/items", only(MANAGERS, 200)),
    Endpoint("post", "/api/v1/prelabel-jobs/{prelabel_job}/cancel", only(MANAGERS, 200)),
    Endpoint("get", "/api/v1/review-queue", only(("annotator", "adjudicator"), 200)),
    Endpoint("post", "/api/v1/review-queue/renew", only(("annotator", "adjudicator"), 200)),
    Endpoint("post", "/api/v1/review-queue/release", only(("annotator", "adjudicator"), 200), lambda w: {}),
    # No queued cell in the world: reviewers get as far as "not a queued cell".
    Endpoint(
        "post",
        "/api/v1/review-queue/decisions",
        only(("annotator", "adjudicator"), 404),
        lambda w: {"cell": 987654, "verdict": "uncountable"},
    ),
    Endpoint("delete", "/api/v1/review-queue/decisions/987654", only(("annotator", "adjudicator"), 409)),
    Endpoint("get", "/api/v1/cell-reviews", only(("annotator", "adjudicator", "admin"), 200)),
    Endpoint("get", "/api/v1/cell-reviews/987654", only(("annotator", "adjudicator", "admin"), 404)),
    Endpoint("get", "/api/v1/review-strategies", only(("annotator", "adjudicator", "admin"), 200)),
    Endpoint("get", "/api/v1/rule-sets", everyone(200)),
    Endpoint("post", "/api/v1/rule-sets", only(("admin",), 201), lambda w: {"name": "fab", "content": FAB_RULE_SET}),
    Endpoint("get", "/api/v1/rule-sets/{rule_set}", everyone(200)),
    Endpoint("post", "/api/v1/rule-sets/{rule_set}/activate", only(("admin",), 200)),
    Endpoint("get", "/api/v1/exports", only(EXPORTERS, 200)),
    Endpoint("post", "/api/v1/exports", only(EXPORTERS, 202), lambda w: _export_request(w)),
    # The world's exports belong to the researcher user; admins see every export.
    Endpoint("get", "/api/v1/exports/{export}", only(EXPORTERS, 200)),
    Endpoint("get", "/api/v1/exports/{export}/download", only(EXPORTERS, 200)),
    Endpoint("post", "/api/v1/exports/{queued_export}/cancel", only(EXPORTERS, 200)),
    Endpoint("get", "/api/v1/imports", only(("admin",), 200)),
    Endpoint(
        "post",
        "/api/v1/imports",
        only(("admin",), 202),
        lambda w: {"archive": SimpleUploadedFile("set.zip", tiny_zip()), "format": "voc", "case": w.case.code},
        multipart=True,
    ),
    Endpoint("get", "/api/v1/imports/{import_job}", only(("admin",), 200)),
    Endpoint("post", "/api/v1/imports/{queued_import}/cancel", only(("admin",), 200)),
    Endpoint("get", "/api/v1/imports/{reported_import}/report", only(("admin",), 200)),
    Endpoint("get", "/api/v1/training-jobs", only(MODEL_READERS, 200)),
    Endpoint("post", "/api/v1/training-jobs", only(("admin",), 202), lambda w: {"stage": "detector", "profile": "cpu"}),
    Endpoint("get", "/api/v1/training-jobs/{training_job}", only(MODEL_READERS, 200)),
    Endpoint("post", "/api/v1/training-jobs/{queued_training_job}/cancel", only(("admin",), 200)),
    Endpoint("get", "/api/v1/pretraining-jobs", only(MODEL_READERS, 200)),
    Endpoint(
        "post", "/api/v1/pretraining-jobs", only(("admin",), 202), lambda w: {"stage": "countability", "profile": "cpu"}
    ),
    Endpoint("get", "/api/v1/pretraining-jobs/{pretraining_job}", only(MODEL_READERS, 200)),
    Endpoint("post", "/api/v1/pretraining-jobs/{queued_pretraining_job}/cancel", only(("admin",), 200)),
    Endpoint("get", "/api/v1/starting-points", only(MODEL_READERS, 200)),
    Endpoint("get", "/api/v1/starting-points/{starting_point}", only(MODEL_READERS, 200)),
    Endpoint("get", "/api/v1/model-versions", only(MODEL_READERS, 200)),
    Endpoint("get", "/api/v1/model-versions/{model_version}", only(MODEL_READERS, 200)),
    Endpoint("get", "/api/v1/model-versions/{model_version}/plots/confusion_matrix.png", only(MODEL_READERS, 200)),
    Endpoint(
        "post", "/api/v1/model-versions/{model_version}/promote", only(("admin",), 200), lambda w: {"reason": "better"}
    ),
    Endpoint(
        "post", "/api/v1/model-versions/{rollback_version}/rollback", only(("admin",), 200), lambda w: {"reason": "x"}
    ),
    Endpoint("get", "/api/v1/training-schedules", only(MODEL_READERS, 200)),
    Endpoint("get", "/api/v1/training-schedules/{training_schedule}", only(MODEL_READERS, 200)),
    Endpoint(
        "patch", "/api/v1/training-schedules/{training_schedule}", only(("admin",), 200), lambda w: {"min_new_cells": 9}
    ),
    Endpoint("get", "/api/v1/dataset-snapshots", only(MODEL_READERS, 200)),
    Endpoint("get", "/api/v1/dataset-snapshots/{dataset_snapshot}", only(MODEL_READERS, 200)),
    # Each role's home, the annotators' loads, user management.
    Endpoint("get", "/api/v1/home", everyone(200)),
    Endpoint("get", "/api/v1/assignments/loads", only(MANAGERS, 200)),
    Endpoint("get", "/api/v1/users", only(("admin",), 200)),
    Endpoint(
        "post",
        "/api/v1/users",
        only(("admin",), 201),
        lambda w: {"username": "newcomer", "password": "a long passphrase 42", "roles": ["annotator"]},
    ),
    Endpoint("get", "/api/v1/users/{spare_user}", only(("admin",), 200)),
    Endpoint("patch", "/api/v1/users/{spare_user}", only(("admin",), 200), lambda w: {"is_active": False}),
    Endpoint(
        "post", "/api/v1/users/{spare_user}/password", only(("admin",), 200), lambda w: {"password": "another 42 pass"}
    ),
]


def client_as(world: World, role: str) -> APIClient:
    return APIClient() if role == ANONYMOUS else token_client(world.users[role])


CASES = [(endpoint, role) for endpoint in ENDPOINTS for role in ROLES]


@pytest.mark.parametrize(("endpoint", "role"), CASES, ids=[f"{endpoint}-{role}" for endpoint, role in CASES])
def test_permission_matrix(endpoint: Endpoint, role: str) -> None:
    world = World()
    client = client_as(world, role)
    body = endpoint.body(world)
    path = endpoint.path.format_map(_Ids(world))
    request = getattr(client, endpoint.method)
    if endpoint.multipart:
        response = request(path, body, format="multipart")
    elif body is not None:
        response = request(path, body, format="json")
    else:
        response = request(path)
    expected = endpoint.expected[role]
    assert response.status_code == expected, f"{endpoint} as {role}: {getattr(response, 'data', '')}"


def _api_routes() -> list[str]:
    """The regular expression of every route under /api/v1/ (router routes, their actions, plain paths)."""
    from django.urls import URLResolver, get_resolver

    def walk(patterns: Any, prefix: str) -> list[str]:
        routes = []
        for pattern in patterns:
            regex = prefix + pattern.pattern.regex.pattern.lstrip("^").rstrip("$").removesuffix("\\Z")
            if isinstance(pattern, URLResolver):
                routes += walk(pattern.url_patterns, regex)
            elif "(?P<format>" not in regex:
                routes.append(regex)
        return routes

    return [route for route in walk(get_resolver().url_patterns, "") if route.startswith("api/v1/")]


def test_every_api_route_is_in_the_matrix() -> None:
    """A new endpoint (a route, an action, a plain path) without a row here fails this test, so the matrix cannot
    fall behind the API."""
    paths = {re.sub(r"\{\w+\}", "1", endpoint.path.split("?")[0]).lstrip("/") for endpoint in ENDPOINTS}
    routes = [route for route in _api_routes() if route != "api/v1/"]  # the router's index page
    missing = [route for route in routes if not any(re.fullmatch(route, path) for path in paths)]
    assert not missing, f"routes without permission rows: {missing}"
    assert len(routes) > 30
