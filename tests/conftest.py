"""Shared fixtures: users per role, API clients, media in a temporary folder, a real Celery worker.

Under CI=true the suite must run against PostgreSQL and Redis: a missing service is a failure, not a skip.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from aicell.roles import Role
from tests.factories import UserFactory

IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture(scope="session", autouse=True)
def _ci_runs_on_real_services(django_db_setup: Any, django_db_blocker: Any) -> None:
    """In CI every test that touches the database or broker must hit the real PostgreSQL and Redis."""
    if not IN_CI:
        return
    engine = settings.DATABASES["default"]["ENGINE"]
    assert engine == "django.db.backends.postgresql", f"CI must run on PostgreSQL, DATABASE_URL gives {engine}"
    assert settings.CELERY_BROKER_URL.startswith("redis://"), "CI must run on Redis: set CELERY_BROKER_URL"


@pytest.fixture(autouse=True)
def _media_in_tmp(settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    # Test users are made by the hundred; production hashing strength is not what these tests check.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def make_user(db: None) -> Any:
    def make(*roles: Role, **kwargs: Any) -> Any:
        return UserFactory(roles=list(roles), **kwargs)

    return make


@pytest.fixture
def annotator(make_user: Any) -> Any:
    return make_user(Role.ANNOTATOR)


@pytest.fixture
def second_annotator(make_user: Any) -> Any:
    return make_user(Role.ANNOTATOR)


@pytest.fixture
def adjudicator(make_user: Any) -> Any:
    return make_user(Role.ADJUDICATOR)


@pytest.fixture
def lab_admin(make_user: Any) -> Any:
    return make_user(Role.ADMIN)


@pytest.fixture
def researcher(make_user: Any) -> Any:
    return make_user(Role.RESEARCHER)


def token_client(user: Any) -> APIClient:
    """A client that authenticates like a script does: with the user's API token."""
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def client_for() -> Any:
    return token_client


@pytest.fixture
def committed_db(transactional_db: None, django_db_serialized_rollback: None) -> None:
    """A test whose writes are committed, so other threads and processes (a worker, a second client) see them.
    Serialized rollback restores what migrations seeded (role groups, cell classes, rule sets) after the flush
    that ends such a test, so later tests still find them."""


@pytest.fixture
def celery_worker_thread(committed_db: None) -> Iterator[Any]:
    """A real Celery worker (consuming the default and gpu queues) in a thread of this process, on the broker
    the settings name (Redis in CI). The worker sees committed data only, hence committed_db."""
    from celery.contrib.testing.worker import start_worker

    from aicell.celery import app

    # Messages left by an earlier, interrupted run must not be executed against this test's database.
    app.control.purge()
    with start_worker(
        app, pool="solo", concurrency=1, queues=["default", "gpu"], perform_ping_check=False, shutdown_timeout=30
    ) as worker:
        yield worker
