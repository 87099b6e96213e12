"""Access beyond the role matrix (tests/aicell/test_permission_matrix.py): whose object it is, blindness of the
double review on the read paths the matrix does not walk, researchers seeing de-identified data only, staff
accounts that are no superusers, and the production posture (deploy check, secrets from the environment only)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib import admin
from django.test import Client
from pypdf import PdfReader

from aicell.roles import Role
from aicell.settings import secret_key_weakness
from annotations.models import Case, Field, Smear
from annotations.tasks import export_dataset
from tests.conftest import token_client
from tests.factories import AnnotationSetFactory, AssignmentFactory, CellFactory, FieldFactory, UserFactory
from tests.reliability.attack_world import World, seeded_id, seeded_world
from tests.reliability.figures import record_figure

NO_SUCH_ID = 987_654


# --- the production posture ----------------------------------------------------------------------------------------


def run_with(env: dict[str, str], *args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run Python in a clean production-like environment (nothing inherited that could supply a key)."""
    base = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}
    base.update(
        {
            "DJANGO_ENV": "production",
            "DJANGO_SETTINGS_MODULE": "aicell.settings",
            "AICELL_VAR_DIR": str(tmp_path),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
            "DJANGO_ALLOWED_HOSTS": "aicell.example.org",
        }
    )
    base.update(env)
    return subprocess.run(
        [sys.executable, *args], cwd=settings.BASE_DIR, env=base, capture_output=True, text=True, timeout=180
    )


STRONG_KEY = "kJ8v2Qz7-Lr4Wn0Xp5Ys1Tb6Uc3Vd9Ae2Bf8Cg4Dh7Ei1Fj5Gk0Hl6Im3Jn9Ko_Mp"


@pytest.mark.parametrize(
    ("key", "weak"),
    [
        ("", True),
        ("changeme", True),
        ("CHANGEME", True),
        ("secret", True),
        ("django-insecure-" + "x1y2z3" * 10, True),
        ("a" * 64, True),
        ("abab" * 20, True),
        ("k" + STRONG_KEY[:48], True),  # 49 characters
        (STRONG_KEY, False),
    ],
)
def test_weak_secret_keys_are_recognised(key: str, weak: bool) -> None:
    assert (secret_key_weakness(key) is not None) == weak


@pytest.mark.parametrize("key", [None, "changeme", "a" * 64], ids=["missing", "placeholder", "one-character"])
def test_production_refuses_to_start_without_a_strong_secret_key(key: str | None, tmp_path: Path) -> None:
    env = {} if key is None else {"DJANGO_SECRET_KEY": key}
    started = run_with(env, "-c", "import django; django.setup()", tmp_path=tmp_path)
    assert started.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in started.stderr
    assert not (tmp_path / "secret_key").exists()  # production never invents or stores a key


def test_the_deploy_check_reports_nothing_in_production(tmp_path: Path) -> None:
    checked = run_with(
        {"DJANGO_SECRET_KEY": STRONG_KEY},
        "manage.py",
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        tmp_path=tmp_path,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "System check identified no issues" in checked.stdout, checked.stdout + checked.stderr
    assert not (tmp_path / "secret_key").exists()
    record_figure("access", "deploy check issues (production settings)", 0)


# --- staff accounts are nobody without a role ---------------------------------------------------------------------


@pytest.mark.django_db
def test_a_staff_account_without_a_role_gets_nothing() -> None:
    staff = UserFactory(is_staff=True)
    api = token_client(staff)
    refused = 0
    for path in ("patients", "cases", "smears", "fields", "annotation-sets", "cells", "assignments", "conflicts"):
        assert api.get(f"/api/v1/{path}").status_code == 403, path
        refused += 1
    for path, body in (("patients", {"code": "P1"}), ("rule-sets", {"name": "x", "content": {}})):
        assert api.post(f"/api/v1/{path}", body, format="json").status_code == 403, path
        refused += 1
    # The Django admin lets staff log in, but every model page is closed without model permissions.
    browser = Client()
    browser.force_login(staff)
    for model in admin.site._registry:
        url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        assert browser.get(url).status_code == 403, url
        refused += 1
    # Staff plus the annotator role is an annotator, no more.
    as_annotator = token_client(UserFactory(is_staff=True, roles=[Role.ANNOTATOR]))
    assert as_annotator.post("/api/v1/patients", {"code": "P2"}, format="json").status_code == 403
    assert as_annotator.get("/api/v1/prelabel-jobs").status_code == 403
    refused += 2
    record_figure("access", "staff-only requests refused", refused)


# --- an annotator's objects are theirs ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(django_db_setup: None, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with seeded_world(django_db_blocker, tmp_path_factory.mktemp("access-media")) as built:
        yield built


@pytest.fixture(autouse=True)
def _media_in_tmp() -> None:
    """The seeded world's images stay where they were stored (replaces the suite's per-test media folder)."""


def same_as_absent(client: Any, path: str, hidden_id: int, method: str = "get", body: Any = None) -> None:
    """`hidden_id` answers exactly like an id that does not exist: same status, same body shape."""
    send = getattr(client, method)
    hidden = send(path.format(hidden_id), body, format="json") if body is not None else send(path.format(hidden_id))
    absent = send(path.format(NO_SUCH_ID), body, format="json") if body is not None else send(path.format(NO_SUCH_ID))
    assert hidden.status_code == absent.status_code == 404, (path, hidden.status_code, absent.status_code)
    strip = str(hidden_id), str(NO_SUCH_ID)
    assert hidden.json()["code"] == absent.json()["code"]
    assert hidden.json()["detail"].replace(strip[0], "#") == absent.json()["detail"].replace(strip[1], "#")


@pytest.mark.django_db
def test_an_annotator_reaches_only_own_work_and_the_fields_assigned(world: World) -> None:
    """The world's annotator owns a draft set (with a cell), an assignment and, with a co-annotator, a reviewed
    field with a conflict. Another annotator, on fields of their own, finds none of it: not in a list, not by id,
    not by writing to it."""
    owner = token_client(world.users["annotator"])
    stranger_user = UserFactory(roles=[Role.ANNOTATOR])
    own_field = FieldFactory(smear=world.smear)
    AssignmentFactory(field=own_field, annotator=stranger_user)
    own_set = AnnotationSetFactory(field=own_field, annotator=stranger_user)
    CellFactory(annotation_set=own_set)
    stranger = token_client(stranger_user)
    theirs = {
        "/api/v1/annotation-sets/{}": world.annotation_set.pk,
        "/api/v1/annotation-sets/{}/cells": world.annotation_set.pk,
        "/api/v1/cells/{}": world.cell.pk,
        "/api/v1/assignments/{}": world.assignment.pk,
        "/api/v1/conflicts/{}": world.conflict.pk,
    }
    for path, hidden in theirs.items():
        assert owner.get(path.format(hidden)).status_code == 200, path
        same_as_absent(stranger, path, hidden)
    writes = [
        ("patch", "/api/v1/cells/{}", world.cell.pk, {"x": 1, "version": 1}),
        ("delete", "/api/v1/cells/{}", world.cell.pk, None),
        (
            "post",
            "/api/v1/annotation-sets/{}/cells",
            world.annotation_set.pk,
            {"x": 1, "y": 1, "width": 5, "height": 5},
        ),
        ("post", "/api/v1/annotation-sets/{}/submit", world.annotation_set.pk, {"version": 1}),
        ("post", "/api/v1/annotation-sets/{}/accept", world.annotation_set.pk, {"all": True, "version": 1}),
        ("post", "/api/v1/conflicts/{}/resolve", world.conflict.pk, {"decision": "keep", "version": 1}),
    ]
    for method, path, hidden, body in writes:
        same_as_absent(stranger, path, hidden, method, body)
    assert stranger.get(f"/api/v1/fields/{world.review_field.pk}/conflicts").status_code == 404
    # Lists hold only the stranger's own work (and truth and predictions, which everyone may read).
    sets = stranger.get("/api/v1/annotation-sets?kind=annotator&page_size=500").json()
    assert {row["id"] for row in sets["results"]} == {own_set.pk}
    assignments = stranger.get("/api/v1/assignments?page_size=500").json()["results"]
    assert {row["annotator"] for row in assignments} == {stranger_user.pk}
    assert stranger.get("/api/v1/conflicts").json()["count"] == 0
    assert stranger.get("/api/v1/agreement").json()["n_fields"] == 0
    cells = stranger.get("/api/v1/cells?kind=annotator&page_size=500").json()["results"]
    assert {row["annotation_set"] for row in cells} == {own_set.pk}
    history = stranger.get(f"/api/v1/fields/{world.review_field.pk}/history?page_size=500").json()["results"]
    assert {event["annotation_set_id"] for event in history} <= {None}
    # Nor may an annotator hand work out or take it back.
    assert stranger.delete(f"/api/v1/assignments/{world.assignment.pk}").status_code in (403, 404)
    assert (
        stranger.post("/api/v1/assignments", {"field": own_field.pk, "annotator": stranger_user.pk}).status_code == 403
    )
    record_figure("access", "other annotator's objects probed (all hidden)", len(theirs) + len(writes) + 7)


@pytest.mark.django_db
def test_the_differential_and_review_queue_say_nothing_of_a_co_annotators_draft(world: World) -> None:
    """Blindness on the read paths outside the annotation endpoints: counts, CSV, PDF and the review queue."""
    co_annotator = world.co_annotator
    field = FieldFactory(smear=world.smear)
    AssignmentFactory(field=field, annotator=world.users["annotator"])
    AssignmentFactory(field=field, annotator=co_annotator)
    draft = AnnotationSetFactory(field=field, annotator=co_annotator)
    for i in range(5):
        CellFactory(annotation_set=draft, x=10.0 + 60 * i, cell_class_id=13)  # lymphoma cells, counted nowhere
    reader = token_client(world.users["annotator"])
    for path in (
        f"/api/v1/smears/{world.smear.pk}/differential",
        f"/api/v1/smears/{world.smear.pk}/differential?format=csv",
        f"/api/v1/cases/{world.case.pk}/differential?source=model",
        f"/api/v1/smears/{world.smear.pk}/differential/report.pdf",
        "/api/v1/review-queue",
        f"/api/v1/fields/{field.pk}/history",
    ):
        assert co_annotator.username not in response_text(reader.get(path)), path
    sets = reader.get(f"/api/v1/annotation-sets?field={field.pk}").json()["results"]
    assert draft.pk not in {row["id"] for row in sets}
    cells = reader.get(f"/api/v1/cells?field={field.pk}").json()["results"]
    assert draft.pk not in {row["annotation_set"] for row in cells}
    table = response_text(reader.get(f"/api/v1/smears/{world.smear.pk}/differential?format=csv"))
    lymphoma = next(line for line in table.splitlines() if line.startswith("class,13,"))
    assert lymphoma.split(",")[4] == "0", lymphoma  # the draft's five lymphoma cells are counted nowhere


def response_text(response: Any) -> str:
    """What a reader receives, as text: JSON and CSV as they are, a PDF's extracted text, a zip's entries."""
    content = b"".join(response.streaming_content) if response.streaming else response.content
    kind = response.get("Content-Type", "")
    if kind.startswith("application/pdf"):
        return "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(content)).pages)
    if kind.startswith("application/zip"):
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            return "\n".join(archive.read(name).decode("utf-8", "replace") for name in archive.namelist())
    if kind.startswith("image/"):
        return content.decode("latin-1")
    return content.decode("utf-8", "replace")


# --- researchers see de-identified data only ------------------------------------------------------------------------

IDENTIFIERS = ("Jane Doe", "MRN-4711", "jane.doe@", "@hospital.example")


@pytest.mark.django_db
def test_researchers_read_nothing_that_identifies_a_person(world: World) -> None:
    """Every GET of the API a researcher may call, with the seeded objects' ids, and the researcher's own export:
    no user name or e-mail of the lab, no free text that may carry a patient's name, no upload name."""
    from tests.reliability.test_fuzzing import OPERATIONS

    for role, user in world.users.items():
        user.username = f"dr-{role}-{user.pk}x"
        user.email = f"jane.doe.{role}@hospital.example"
        user.save()
    staff_names = [user.username for role, user in world.users.items() if role != "researcher"]
    staff_names += [world.co_annotator.username]
    Case.objects.filter(pk=world.case.pk).update(notes="Jane Doe, MRN-4711, referred by Dr. Smith")
    Smear.objects.filter(pk=world.smear.pk).update(notes="Jane Doe MRN-4711")
    Field.objects.filter(smear=world.smear).update(original_name="JaneDoe_MRN-4711.jpg")
    researcher = token_client(world.users["researcher"])
    read = 0
    for label, operation in OPERATIONS.items():
        if operation.method.upper() != "GET" or "/auth/session" in operation.path:
            continue
        path = (
            operation.path.replace("{id}", str(seeded_id(world, operation.path)))
            if "{id}" in operation.path
            else operation.path
        )
        response = researcher.get(path)
        if response.status_code != 200:
            continue
        text = response_text(response)
        for secret in (*IDENTIFIERS, *staff_names):
            assert secret not in text, (label, secret, text[:300])
        read += 1
    assert read >= 25
    export = researcher.post("/api/v1/exports", {}, format="json")
    assert export.status_code == 202, export.json()
    assert export_dataset(export.json()["id"]) == "succeeded"
    download = researcher.get(f"/api/v1/exports/{export.json()['id']}/download")
    text = response_text(download)
    for secret in (*IDENTIFIERS, *staff_names):
        assert secret not in text, ("export", secret)
    record_figure("access", "researcher read paths checked for identifiers", read + 1)
