"""User management: admins create users, give and take roles, deactivate (never delete), reset passwords; the
`create_user` command; bad input answers 400 naming the field, other roles 403."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError

from aicell.roles import Role, roles_of
from annotations.models import AuditEvent
from tests.conftest import token_client

pytestmark = pytest.mark.django_db
GOOD_PASSWORD = "bone marrow 2026 smear"


def problems(response: Any) -> dict[str, str]:
    return {problem["field"]: problem["reason"] for problem in response.json()["errors"]}


def test_admin_creates_an_annotator_who_can_log_in(lab_admin: Any) -> None:
    client = token_client(lab_admin)
    body = {"username": "hema3", "email": "h3@lab.example", "password": GOOD_PASSWORD, "roles": ["annotator"]}
    response = client.post("/api/v1/users", body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["roles"] == ["annotator"]
    user = User.objects.get(username="hema3")
    assert roles_of(user) == {Role.ANNOTATOR}
    assert user.check_password(GOOD_PASSWORD)
    assert not user.is_staff
    assert AuditEvent.objects.filter(action="user.create", entity_id=user.pk, actor=lab_admin).exists()


def test_bad_input_names_each_field(lab_admin: Any, annotator: Any) -> None:
    client = token_client(lab_admin)
    body = {"username": annotator.username, "email": "not-an-address", "password": "123", "roles": ["wizard"]}
    response = client.post("/api/v1/users", body, format="json")
    assert response.status_code == 400
    assert set(problems(response)) == {"username", "email", "password", "roles"}
    assert "taken" in problems(response)["username"]
    no_roles = client.post("/api/v1/users", {"username": "x1", "password": GOOD_PASSWORD, "roles": []}, format="json")
    assert no_roles.status_code == 400
    assert set(problems(no_roles)) == {"roles"}


def test_roles_given_and_taken_admin_makes_staff(lab_admin: Any, annotator: Any) -> None:
    client = token_client(lab_admin)
    response = client.patch(f"/api/v1/users/{annotator.pk}", {"roles": ["adjudicator", "admin"]}, format="json")
    assert response.status_code == 200, response.content
    promoted = User.objects.get(pk=annotator.pk)
    assert roles_of(promoted) == {Role.ADJUDICATOR, Role.ADMIN}
    assert promoted.is_staff
    assert promoted.is_superuser
    client.patch(f"/api/v1/users/{annotator.pk}", {"roles": ["annotator"]}, format="json")
    demoted = User.objects.get(pk=annotator.pk)
    assert not demoted.is_staff
    assert not demoted.is_superuser
    assert roles_of(demoted) == {Role.ANNOTATOR}


def test_deactivate_keeps_the_user_and_locks_them_out(lab_admin: Any, annotator: Any) -> None:
    client = token_client(lab_admin)
    assert client.patch(f"/api/v1/users/{annotator.pk}", {"is_active": False}, format="json").status_code == 200
    assert User.objects.filter(pk=annotator.pk, is_active=False).exists()
    assert client.delete(f"/api/v1/users/{annotator.pk}").status_code == 405  # never deleted
    assert token_client(annotator).get("/api/v1/fields").status_code == 401


def test_an_admin_cannot_lock_themselves_out(lab_admin: Any) -> None:
    client = token_client(lab_admin)
    response = client.patch(f"/api/v1/users/{lab_admin.pk}", {"is_active": False}, format="json")
    assert response.status_code == 400
    assert "is_active" in problems(response)
    response = client.patch(f"/api/v1/users/{lab_admin.pk}", {"roles": ["annotator"]}, format="json")
    assert response.status_code == 400
    assert "roles" in problems(response)


def test_password_reset(lab_admin: Any, annotator: Any) -> None:
    client = token_client(lab_admin)
    weak = client.post(f"/api/v1/users/{annotator.pk}/password", {"password": "abc"}, format="json")
    assert weak.status_code == 400
    assert "password" in problems(weak)
    ok = client.post(f"/api/v1/users/{annotator.pk}/password", {"password": GOOD_PASSWORD}, format="json")
    assert ok.status_code == 200
    annotator.refresh_from_db()
    assert annotator.check_password(GOOD_PASSWORD)


@pytest.mark.parametrize("role", ["annotator", "adjudicator", "researcher"])
def test_only_admins_manage_users(role: str, make_user: Any) -> None:
    client = token_client(make_user(Role(role)))
    assert client.get("/api/v1/users").status_code == 403
    body = {"username": "sneaky", "password": GOOD_PASSWORD, "roles": ["admin"]}
    assert client.post("/api/v1/users", body, format="json").status_code == 403
    assert not User.objects.filter(username="sneaky").exists()


def test_create_user_command(monkeypatch: Any) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(GOOD_PASSWORD + "\n"))
    out = io.StringIO()
    call_command(
        "create_user", "hema9", "--role", "annotator", "--email", "h9@lab.example", "--password-from-stdin", stdout=out
    )
    user = User.objects.get(username="hema9")
    assert user.check_password(GOOD_PASSWORD)
    assert user.email == "h9@lab.example"
    assert roles_of(user) == {Role.ANNOTATOR}
    with pytest.raises(CommandError, match="username"):
        call_command("create_user", "hema9", "--role", "annotator", stdout=io.StringIO())
    generated = io.StringIO()
    call_command("create_user", "boss", "--role", "admin", stdout=generated)
    assert "Password: " in generated.getvalue()
    assert User.objects.get(username="boss").is_staff


def test_a_user_change_takes_json_only(lab_admin: Any, annotator: Any) -> None:
    """Issue 21's fuzzing (PostgreSQL): a form body with an empty `roles` answered 200."""
    client = token_client(lab_admin)
    form = client.patch(f"/api/v1/users/{annotator.pk}", {"roles": "", "is_active": "false"}, format="multipart")
    assert form.status_code == 415
    annotator.refresh_from_db()
    assert annotator.is_active
