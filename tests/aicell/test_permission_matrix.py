"""Every endpoint x every role (and anonymous): the expected status code, walked with real token auth.

Each row names the statuses that differ from the row's default; new endpoints add rows here.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from aicell.models import JobStatus
from aicell.roles import Role
from annotations.models import AnnotationKind, AnnotationStatus, ExportJob, ImportJob
from tests.conftest import token_client
from tests.factories import (
    AnnotationSetFactory,
    CaseFactory,
    CellFactory,
    FieldFactory,
    PatientFactory,
    SmearFactory,
    UserFactory,
    image_bytes,
)

pytestmark = pytest.mark.django_db

ANONYMOUS = "anonymous"
ROLES: tuple[str, ...] = (ANONYMOUS, *(role.value for role in Role))


@dataclass
class World:
    """One object of each kind, made before each request so writes never depend on earlier rows."""

    users: dict[str, Any]
    patient: Any = None
    spare_patient: Any = None
    case: Any = None
    smear: Any = None
    field: Any = None
    annotation_set: Any = None
    cell: Any = None
    export: Any = None
    queued_export: Any = None
    import_job: Any = None
    queued_import: Any = None

    def ids(self) -> dict[str, int]:
        return {name: value.pk for name, value in vars(self).items() if hasattr(value, "pk")}


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


def tiny_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("Annotations/f.xml", "<annotation/>")
    return buffer.getvalue()


ENDPOINTS: list[Endpoint] = [
    Endpoint("get", "/api/v1/health", {**everyone(200), ANONYMOUS: 200}),
    Endpoint("get", "/api/v1/auth/session", {**everyone(200), ANONYMOUS: 200}),
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
    Endpoint("get", "/api/v1/smears", everyone(200)),
    Endpoint("post", "/api/v1/smears", only(MANAGERS, 201), lambda w: {"code": "SX1", "case": w.case.pk}),
    Endpoint("get", "/api/v1/smears/{smear}", everyone(200)),
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
    Endpoint("get", "/api/v1/exports", only(EXPORTERS, 200)),
    Endpoint("post", "/api/v1/exports", only(EXPORTERS, 202), lambda w: {}),
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
]


def build_world() -> World:
    users = {role.value: UserFactory(roles=[role]) for role in Role}
    world = World(users=users)
    world.patient = PatientFactory()
    world.spare_patient = PatientFactory()
    world.case = CaseFactory(patient=world.patient)
    world.smear = SmearFactory(case=world.case)
    world.field = FieldFactory(smear=world.smear)
    # The annotator user's own set, on another field so that starting a set on `field` stays possible.
    world.annotation_set = AnnotationSetFactory(field=FieldFactory(smear=world.smear), annotator=users["annotator"])
    world.cell = CellFactory(annotation_set=world.annotation_set)
    # Locked truth on a third field, so that an export has something to export.
    truth = AnnotationSetFactory(
        field=FieldFactory(smear=world.smear),
        kind=AnnotationKind.IMPORTED,
        annotator=None,
        status=AnnotationStatus.LOCKED,
    )
    CellFactory(annotation_set=truth)
    researcher = users["researcher"]
    world.export = ExportJob.objects.create(
        created_by=researcher, status=JobStatus.SUCCEEDED, file=ContentFile(tiny_zip(), name="export.zip")
    )
    world.queued_export = ExportJob.objects.create(created_by=researcher)
    world.import_job = ImportJob.objects.create(created_by=users["admin"], case=world.case, format="voc")
    world.queued_import = ImportJob.objects.create(created_by=users["admin"], case=world.case, format="voc")
    return world


def client_as(world: World, role: str) -> APIClient:
    return APIClient() if role == ANONYMOUS else token_client(world.users[role])


CASES = [(endpoint, role) for endpoint in ENDPOINTS for role in ROLES]


@pytest.mark.parametrize(("endpoint", "role"), CASES, ids=[f"{endpoint}-{role}" for endpoint, role in CASES])
def test_permission_matrix(endpoint: Endpoint, role: str) -> None:
    world = build_world()
    client = client_as(world, role)
    body = endpoint.body(world)
    path = endpoint.path.format(**world.ids())
    request = getattr(client, endpoint.method)
    if endpoint.multipart:
        response = request(path, body, format="multipart")
    elif body is not None:
        response = request(path, body, format="json")
    else:
        response = request(path)
    expected = endpoint.expected[role]
    assert response.status_code == expected, f"{endpoint} as {role}: {getattr(response, 'data', '')}"


def test_every_api_route_is_in_the_matrix() -> None:
    """A new router endpoint without a row here fails this test, so the matrix cannot fall behind the API."""
    from aicell.urls import router

    registered = {prefix for prefix, _, _ in router.registry}
    covered = {part for endpoint in ENDPOINTS for part in endpoint.path.split("?")[0].strip("/").split("/")}
    assert registered <= covered, f"routes without permission rows: {sorted(registered - covered)}"
