"""Fixtures of the reliability suite: a throwaway production-like stack per test (own Redis, a proxy in front of
PostgreSQL, gunicorn, real Celery worker processes) on the test database, whose rows the test process writes and
checks through the ORM.

The stack follows the engine the suite runs on. Under PostgreSQL it is production's: PostgreSQL behind a proxy that
can refuse and cut connections, and a `redis-server` binary (missing one fails under CI=true, else skips). On the
embedded default it is the embedded set-up: the test's SQLite file shared by every process, a file-system broker in
the test's folder, the database as result backend; the faults that need Redis or the proxy (`require_stack_services`)
do not exist there and say so (`not_on_embedded`), the others run.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from tests.reliability.stack import (
    Process,
    RedisServer,
    TcpProxy,
    celery_worker_argv,
    free_port,
    gunicorn_argv,
    http_json,
    port_accepts,
    wait_until,
)

IN_CI = os.environ.get("CI", "").lower() == "true"


def on_embedded_default() -> bool:
    return bool(settings.DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3")


def not_on_embedded(guarantee: str, why: str) -> None:
    """A guarantee of the server set-up that the embedded default does not give: recorded in the table, then
    skipped with the reason (never silently)."""
    from tests.reliability.figures import record_figure

    record_figure("faults", f"{guarantee} (embedded default)", f"not given: {why}")
    pytest.skip(f"the embedded default does not give this: {why}")


def require_stack_services() -> None:
    """Skip (or, in CI, fail) when PostgreSQL or redis-server is missing."""
    problems = []
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        problems.append(
            "PostgreSQL (set DATABASE_URL=postgres://...; it cuts the connections between the processes and PostgreSQL)"
        )
    if shutil.which("redis-server") is None:
        problems.append("a redis-server binary (the fault tests start and crash their own Redis)")
    if not problems:
        return
    message = "the reliability stack needs " + " and ".join(problems)
    if IN_CI:
        pytest.fail(f"CI=true: {message}")
    pytest.skip(message)


class Stack:
    """The processes of one test. `env()` is what every child gets: the test database (directly or through the
    proxy), this test's Redis, media folder and model files."""

    def __init__(self, workdir: Path, redis: RedisServer | None, proxy: TcpProxy | None) -> None:
        self.workdir = workdir
        self.redis = redis
        self.proxy = proxy
        self.processes: list[Process] = []
        self.extra_env: dict[str, str] = {}

    @property
    def broker_dir(self) -> Path:
        """The file-system broker's folder (embedded default)."""
        return self.workdir / "broker"

    def database_url(self, *, via_proxy: bool = False) -> str:
        db = connection.settings_dict
        if on_embedded_default():
            return f"sqlite:///{db['NAME']}"
        assert self.proxy is not None
        user = quote(db.get("USER") or "", safe="")
        password = quote(db.get("PASSWORD") or "", safe="")
        credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
        host, port = ("127.0.0.1", self.proxy.port) if via_proxy else (db.get("HOST") or "127.0.0.1", db["PORT"])
        return f"postgres://{credentials}{host}:{port or 5432}/{db['NAME']}"

    def env(self, *, via_proxy: bool = False, **overrides: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "DJANGO_ENV": "test",
                "DJANGO_SECRET_KEY": settings.SECRET_KEY,
                "DJANGO_DEBUG": "false",
                "AICELL_VAR_DIR": str(self.workdir / "var"),
                "MEDIA_ROOT": str(settings.MEDIA_ROOT),
                "AICELL_MODEL_DIR": str(settings.AICELL_MODEL_DIR),
                "AICELL_PROFILES_FILE": str(settings.AICELL_PROFILES_FILE),
                "DATABASE_URL": self.database_url(via_proxy=via_proxy),
                **(
                    {"CELERY_BROKER_URL": self.redis.url(0), "CELERY_RESULT_BACKEND": self.redis.url(1)}
                    if self.redis is not None
                    else {
                        "CELERY_BROKER_URL": "filesystem://localhost//",
                        "CELERY_RESULT_BACKEND": "django-db",
                        "AICELL_BROKER_DIR": str(self.broker_dir),
                    }
                ),
                "CELERY_VISIBILITY_TIMEOUT": "8",
                "AICELL_AUTO_PRELABEL": "false",
                "OMP_NUM_THREADS": "1",
                "MKL_NUM_THREADS": "1",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.extra_env)
        env.update(overrides)
        return env

    def worker(self, name: str, *, queues: str = "default,gpu", **env: str) -> Process:
        process = Process(f"worker-{name}", celery_worker_argv(name, queues), self.env(**env), self.workdir)
        self.processes.append(process.start())
        return process

    def gunicorn(self, *, workers: int = 2, threads: int = 1, via_proxy: bool = False, **env: str) -> Server:
        port = free_port()
        argv = gunicorn_argv(port, workers, threads)
        process = Process(f"gunicorn-{port}", argv, self.env(via_proxy=via_proxy, **env), self.workdir)
        self.processes.append(process.start())
        server = Server(process, f"http://127.0.0.1:{port}")
        wait_until(lambda: port_accepts(port) or not process.alive(), 60, "gunicorn to listen")
        assert process.alive(), process.log_tail()
        return server

    def wait_for_worker(self, worker: Process, timeout: float = 90) -> None:
        """Until the worker logs that it is ready (it consumes from then on)."""
        wait_until(
            lambda: " ready." in worker.log_tail(200) or not worker.alive(), timeout, f"{worker.name} to be ready"
        )
        assert worker.alive(), worker.log_tail()

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()


class Server:
    def __init__(self, process: Process, url: str) -> None:
        self.process = process
        self.url = url

    def request(self, method: str, path: str, token: str | None = None, json: Any = None, **headers: str) -> Any:
        import json as json_module

        body = json_module.dumps(json).encode() if json is not None else None
        return http_json(method, self.url + path, token, body, headers)


@pytest.fixture(scope="session")
def reliability_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, list[str]]]:
    """Random checkpoints of every stage (the test profile), written once per session for the worker processes."""
    from tests.models_on_disk import write_profiles_file, write_random_checkpoints

    folder = tmp_path_factory.mktemp("reliability-models")
    return folder, write_profiles_file(folder), write_random_checkpoints(folder)


@pytest.fixture
def stack(committed_db: None, settings: Any, tmp_path: Path) -> Iterator[Stack]:
    """Own redis-server (ports 6390-6399) and a PostgreSQL proxy; the test starts gunicorn and workers on it. On the
    embedded default: the test's SQLite file and a file-system broker in the test's folder."""
    settings.AICELL_MODEL_DIR = tmp_path / "models"
    settings.AICELL_PROFILES_FILE = tmp_path / "models" / "profiles.yaml"
    (tmp_path / "var").mkdir()
    if on_embedded_default():
        embedded = Stack(tmp_path, None, None)
        try:
            yield embedded
        finally:
            embedded.stop()
        return
    require_stack_services()
    redis = RedisServer(tmp_path).start()
    db = connection.settings_dict
    proxy = TcpProxy((db.get("HOST") or "127.0.0.1", int(db["PORT"] or 5432))).start()
    made = Stack(tmp_path, redis, proxy)
    try:
        yield made
    finally:
        made.stop()
        redis.stop()
        proxy.stop()
        # Connections of the killed processes may linger a moment on the server; the flush that ends this test
        # must not wait for their locks.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()"
            )


@pytest.fixture
def stack_models(stack: Stack, settings: Any, reliability_models: tuple[Path, Path, dict[str, list[str]]]) -> Any:
    """The random checkpoints registered as the active model versions, visible to the workers."""
    from tests.models_on_disk import register_active_versions

    folder, profiles_file, paths = reliability_models
    settings.AICELL_MODEL_DIR = folder
    settings.AICELL_PROFILES_FILE = profiles_file
    return register_active_versions(paths)


@pytest.fixture
def token_of() -> Any:
    from rest_framework.authtoken.models import Token

    def token(user: Any) -> str:
        return Token.objects.get_or_create(user=user)[0].key

    return token


__all__ = ["Server", "Stack", "not_on_embedded", "on_embedded_default", "require_stack_services"]
