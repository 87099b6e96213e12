"""Load benchmark: annotator traffic (locust, headless) against gunicorn on 127.0.0.1 over a seeded database.

    python -m benchmarks.load --json                                   # 10,000 fields, 300,000 cells, 60 s
    python -m benchmarks.load --fields 200 --cells 6000 --duration 10  # the bounded run of `make test`

The database is a dedicated one, never the user's: with DATABASE_URL pointing at PostgreSQL, the database
`<name>_load` on the same server (created, migrated and seeded on the first run, dropped at the end unless
`--keep`, which lets the next run skip seeding); otherwise a temporary SQLite file. `--database-url` names another.
gunicorn runs the production posture (DJANGO_ENV=production, DEBUG off) with `--workers` processes.

Figures (JSON with --json): requests/s, p50/p95/p99 latency (ms) and errors for reads, writes and all requests, and
per endpoint; the goal is p95 < 200 ms with 0 errors. Locust runs on the same machine and takes CPU from the server:
on a small machine the figures are a floor, and `load_average` says how busy the machine was.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from benchmarks import seed

REPO = Path(__file__).resolve().parent.parent
GOAL_P95_MS = 200.0
# p95 goals (ms) per engine and kind (issue 21): the server set-up is held to more than the embedded default.
GOALS_P95_MS: dict[str, dict[str, float]] = {
    "postgresql": {"read": 100.0, "write": 150.0},
    "sqlite": {"read": GOAL_P95_MS, "write": GOAL_P95_MS},
}


def goal_of(database: str) -> tuple[str, dict[str, float]]:
    goals = GOALS_P95_MS[database]
    return f"p95 < {goals['read']:.0f} ms reads, < {goals['write']:.0f} ms writes, 0 errors", goals


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of `values` (fraction in 0..1); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(fraction * len(ordered))))
    return ordered[rank - 1]


def summarise(samples: list[tuple[str, float, bool]], seconds: float) -> dict[str, Any]:
    """Figures per kind ("read", "write", "all") and per endpoint from locust's (name, ms, ok) samples."""

    def figures(rows: list[tuple[str, float, bool]]) -> dict[str, Any]:
        times = [ms for _, ms, _ in rows]
        return {
            "requests": len(rows),
            "rps": round(len(rows) / seconds, 1) if seconds else 0.0,
            "p50_ms": round(percentile(times, 0.50), 1),
            "p95_ms": round(percentile(times, 0.95), 1),
            "p99_ms": round(percentile(times, 0.99), 1),
            "errors": sum(1 for _, _, ok in rows if not ok),
        }

    kinds = {
        "read": [s for s in samples if s[0].startswith("read:")],
        "write": [s for s in samples if s[0].startswith("write:")],
        "all": samples,
    }
    result = {kind: figures(rows) for kind, rows in kinds.items()}
    result["endpoints"] = {
        name: figures([s for s in samples if s[0] == name]) for name in sorted({s[0] for s in samples})
    }
    return result


# --- the database ------------------------------------------------------------------------------------------------


def target_database(explicit: str | None, workdir: Path, *, suffix: str = "load") -> tuple[str, bool]:
    """(DATABASE_URL for the benchmark, whether it is a PostgreSQL database this run may create and drop): the
    explicit one, else `<DATABASE_URL>_<suffix>` on a configured PostgreSQL, else a SQLite file in `workdir`."""
    if explicit:
        return explicit, explicit.startswith("postgres")
    configured = os.environ.get("DATABASE_URL", "")
    if configured.startswith("postgres"):
        parts = urlsplit(configured)
        return urlunsplit(parts._replace(path=f"{parts.path.rstrip('/')}_{suffix}")), True
    return f"sqlite:///{workdir / f'{suffix}.sqlite3'}", False


def _maintenance(url: str) -> tuple[Any, str]:
    import psycopg2

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    conn = psycopg2.connect(urlunsplit(parts._replace(path="/postgres")))
    conn.autocommit = True
    return conn, name


def postgres_create(url: str) -> None:
    conn, name = _maintenance(url)
    with conn.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if cursor.fetchone() is None:
            cursor.execute(f'CREATE DATABASE "{name}"')
    conn.close()


def postgres_drop(url: str) -> None:
    conn, name = _maintenance(url)
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [name],
        )
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
    conn.close()


def prepare(args: argparse.Namespace, env: dict[str, str], workdir: Path, *, is_postgres: bool) -> tuple[Path, float]:
    """Migrate and seed the benchmark database (in a child process, so this one never loads Django) and return
    the load plan and the seconds seeding took (0 when an earlier --keep run left the same seed)."""
    plan_path = workdir / "plan.json"
    size = ["--fields", str(args.fields), "--cells", str(args.cells), "--annotators", str(args.annotators)]
    command = [sys.executable, "-m", "benchmarks.seed", *size, "--plan", str(plan_path)]
    done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, check=False)
    if done.returncode == seed.OTHER_SEED_EXIT and is_postgres:
        # A database kept (--keep) from a run of another size: start it again from scratch.
        postgres_drop(env["DATABASE_URL"])
        postgres_create(env["DATABASE_URL"])
        done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"seeding failed:\n{done.stderr[-3000:]}")
    seed_s = json.loads(done.stdout.strip().splitlines()[-1])["seed_s"]
    return plan_path, float(seed_s)


# --- the run -----------------------------------------------------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_server(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("gunicorn exited before serving")
        try:
            with urllib.request.urlopen(url + "/api/v1/cell-classes", timeout=5):
                return
        except urllib.error.HTTPError:
            return  # it answers (401 without a token): it is up
        except OSError:
            time.sleep(0.3)
    raise SystemExit("gunicorn did not answer in time")


def production_env(database_url: str, workdir: Path) -> dict[str, str]:
    """The environment of the benchmark's server and seeding processes: the production posture on `database_url`,
    with its variable files and media under `workdir`."""
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": database_url,
            "DJANGO_ENV": "production",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DJANGO_SECURE_SSL_REDIRECT": "false",
            "DJANGO_SECURE_HSTS_SECONDS": "0",
            "AICELL_VAR_DIR": str(workdir / "var"),
            "MEDIA_ROOT": str(workdir / "media"),
            "AICELL_AUTO_PRELABEL": "false",
            "LOG_LEVEL": "WARNING",
            "OMP_NUM_THREADS": "1",
        }
    )
    return env


def start_gunicorn(env: dict[str, str], workdir: Path, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    """gunicorn on a free port of 127.0.0.1, answering: (the process, its base URL)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "aicell.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--timeout",
            "60",
            "--log-level",
            "warning",
        ],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=(workdir / "gunicorn.log").open("wb"),
    )
    wait_for_server(url, server)
    return server, url


def stop(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="aicell-load-"))
    database_url, is_postgres = target_database(args.database_url, workdir)
    if is_postgres:
        postgres_create(database_url)
    env = production_env(database_url, workdir)
    server: subprocess.Popen[bytes] | None = None
    try:
        plan_path, seed_s = prepare(args, env, workdir, is_postgres=is_postgres)
        server, url = start_gunicorn(env, workdir, args.workers)
        samples_path = workdir / "samples.json"
        load_before = load_average()
        started = time.monotonic()
        locust = subprocess.run(
            [
                sys.executable,
                "-m",
                "locust",
                "-f",
                str(REPO / "benchmarks" / "locustfile.py"),
                "--headless",
                "--users",
                str(args.users),
                "--spawn-rate",
                str(args.users),
                "--run-time",
                f"{args.duration}s",
                "--host",
                url,
                "--only-summary",
                "--stop-timeout",
                "5",
                "--loglevel",
                "WARNING",
            ],
            env={**env, "LOAD_PLAN": str(plan_path), "LOAD_SAMPLES": str(samples_path)},
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        )
        elapsed = time.monotonic() - started
        if not samples_path.exists():
            raise SystemExit(f"locust wrote no samples (exit {locust.returncode}):\n{locust.stderr[-3000:]}")
        recorded = json.loads(samples_path.read_text())
        samples = [(str(name), float(ms), bool(ok)) for name, ms, ok in recorded["samples"]]
        figures = summarise(samples, float(args.duration))
        figures["error_examples"] = recorded["errors"][:5]
        goal, goals = goal_of("postgresql" if is_postgres else "sqlite")
        figures.update(
            {
                "fields": args.fields,
                "cells": args.cells,
                "users": args.users,
                "duration_s": args.duration,
                "gunicorn_workers": args.workers,
                "database": "postgresql" if is_postgres else "sqlite",
                "seed_s": round(seed_s, 1),
                "wall_s": round(elapsed, 1),
                "cpu_count": os.cpu_count(),
                "load_average": max(load_before, load_average()),
                "goal": goal,
                "goal_met": all(
                    figures[kind]["p95_ms"] < goals[kind] and figures[kind]["errors"] == 0 for kind in ("read", "write")
                ),
            }
        )
        return figures
    finally:
        if server is not None:
            stop(server)
        if is_postgres and not args.keep:
            postgres_drop(database_url)
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fields", type=int, default=10_000)
    parser.add_argument("--cells", type=int, default=300_000)
    parser.add_argument("--annotators", type=int, default=50, help="seeded annotators (two per field)")
    parser.add_argument("--users", type=int, default=20, help="concurrent locust users, one annotator each")
    parser.add_argument("--duration", type=int, default=60, help="seconds of load")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    parser.add_argument("--database-url", help="a dedicated database to use instead of <DATABASE_URL>_load")
    parser.add_argument("--keep", action="store_true", help="keep the seeded PostgreSQL database for the next run")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON line")
    args = parser.parse_args(argv)
    if args.users > args.annotators:
        parser.error("--users must not exceed --annotators (one simulated user per annotator)")
    figures = run(args)
    if args.json:
        print(json.dumps(figures))
    else:
        for kind in ("read", "write", "all"):
            f = figures[kind]
            print(
                f"{kind:5}  {f['requests']:7} req  {f['rps']:7.1f} req/s  p50 {f['p50_ms']:6.1f}  "
                f"p95 {f['p95_ms']:6.1f}  p99 {f['p99_ms']:6.1f} ms  errors {f['errors']}"
            )
        for name, f in figures["endpoints"].items():
            line = f"p50 {f['p50_ms']:6.1f}  p95 {f['p95_ms']:6.1f}  p99 {f['p99_ms']:6.1f} ms  errors {f['errors']}"
            print(f"  {name:22} {f['requests']:6} req  {line}")
        verdict = "met" if figures["goal_met"] else "NOT met"
        print(f"goal: {figures['goal']}: {verdict} (load average {figures['load_average']})")
        for example in figures["error_examples"]:
            print(f"error: {example}")
    return 0 if figures["all"]["requests"] > 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
