"""`make reliability`: the whole reliability suite at full size, then one table of what it tried and what held.

    python -m tests.reliability.run               # pytest tests/reliability (full size) + the full load benchmark
    python -m tests.reliability.run --no-load     # the tests only
    python -m tests.reliability.run -- -k faults  # extra pytest arguments after --

The tests record their figures (tests/reliability/figures.py) into one JSON-lines file; counts recorded under the
same name by several tests are added up. The load benchmark (benchmarks/load.py: 10,000 fields, 300,000 cells)
adds requests/s, p50/p95/p99 and errors for reads and writes. Exit status: non-zero when a test failed or a load
request failed; a missed latency goal is reported in the table (it depends on the machine), not a failure.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from tests.reliability.figures import FIGURES_ENV, FULL_ENV

REPO = Path(__file__).resolve().parents[2]
SECTION_ORDER = ["engine", "fuzzing", "hostile input", "access", "queries", "faults", "concurrency", "load"]


def read_figures(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def combine(figures: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """{section: {name: value}}: numbers recorded more than once under one name are added; other values listed."""
    table: dict[str, dict[str, Any]] = defaultdict(dict)
    for row in figures:
        section, name, value = str(row["section"]), str(row["name"]), row["value"]
        previous = table[section].get(name)
        if previous is None:
            table[section][name] = value
        elif isinstance(previous, int | float) and isinstance(value, int | float):
            table[section][name] = previous + value
        elif str(value) not in str(previous).split(", "):
            table[section][name] = f"{previous}, {value}"
    return table


def load_figures(load: dict[str, Any]) -> list[dict[str, Any]]:
    """The load benchmark's result as rows of the table."""
    rows = []
    for kind in ("read", "write", "all"):
        f = load[kind]
        rows.append(
            {
                "section": "load",
                "name": f"{kind}: req/s, p50/p95/p99 ms, errors",
                "value": f"{f['rps']} req/s, {f['p50_ms']}/{f['p95_ms']}/{f['p99_ms']} ms, {f['errors']} errors "
                f"({f['requests']} requests)",
            }
        )
    rows.append(
        {
            "section": "load",
            "name": "setting",
            "value": f"{load['fields']} fields, {load['cells']} cells, {load['users']} users, {load['duration_s']} s, "
            f"{load['gunicorn_workers']} gunicorn workers, {load['database']}, {load['cpu_count']} CPUs, "
            f"load average {load['load_average']}",
        }
    )
    rows.append(
        {"section": "load", "name": f"goal ({load['goal']})", "value": "met" if load["goal_met"] else "NOT met"}
    )
    return rows


def engine_of(env: dict[str, str]) -> tuple[str, list[dict[str, Any]]]:
    """The engine this run tested (its table's title) and what it guarantees, as rows of the table: run once on the
    embedded default and once with DATABASE_URL (PostgreSQL) and CELERY_BROKER_URL (Redis) for both tables."""
    database_url = env.get("DATABASE_URL", "")
    broker_url = env.get("CELERY_BROKER_URL", "")
    database = "PostgreSQL" if database_url.startswith(("postgres", "postgis")) else "SQLite (embedded default)"
    broker = "Redis" if broker_url.startswith("redis") else "file-system broker"
    if database.startswith("SQLite"):
        held = [
            ("hostile input, fuzzing, access, query counts", "tested here, as on PostgreSQL"),
            ("concurrent editing: no lost update, 409 on stale versions", "tested here (one SQLite file, IMMEDIATE)"),
            ("a killed worker's job ends failed by the reaper, never left running", "tested here (file-system broker)"),
            ("a killed worker's task redelivered", "not given: the file-system broker has no acknowledgement"),
            ("broker or database server outages", "not applicable: no server (a folder and a file)"),
        ]
    else:
        held = [
            ("hostile input, fuzzing, access, query counts", "tested here"),
            ("concurrent editing: no lost update, 409 on stale versions", "tested here"),
            ("a killed worker's task redelivered once, complete, no duplicate", "tested here (acks_late)"),
            ("a killed worker's job ends failed by the reaper, never left running", "tested here"),
            ("Redis restart, PostgreSQL refusing/cutting connections: 503, nothing half-applied", "tested here"),
        ]
    rows = [{"section": "engine", "name": "database, broker", "value": f"{database}, {broker}"}]
    rows += [{"section": "engine", "name": guarantee, "value": how} for guarantee, how in held]
    return f"{database}, {broker}", rows


def render(table: dict[str, dict[str, Any]], outcome: dict[str, str]) -> str:
    rows = [("section", "figure", "value")]
    sections = sorted(table, key=lambda s: (SECTION_ORDER.index(s) if s in SECTION_ORDER else len(SECTION_ORDER), s))
    for section in sections:
        for name, value in table[section].items():
            rows.append((section, name, str(value)))
    for name, value in outcome.items():
        rows.append(("suite", name, value))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-load", action="store_true", help="skip the full-size load benchmark")
    parser.add_argument("--load-args", default="", help="extra arguments for benchmarks.load, e.g. '--users 30'")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="aicell-reliability-"))
    figures_path = workdir / "figures.jsonl"
    env = {**os.environ, FULL_ENV: "1", FIGURES_ENV: str(figures_path)}
    env.setdefault("DJANGO_ENV", "test")
    env.setdefault("AICELL_VAR_DIR", str(REPO / "var" / "test"))

    started = time.monotonic()
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/reliability", "-q", "-p", "no:cacheprovider", *args.pytest_args],
        cwd=REPO,
        env=env,
        check=False,
    )
    outcome = {"pytest tests/reliability": "passed" if tests.returncode == 0 else f"FAILED (exit {tests.returncode})"}
    outcome["tests wall time"] = f"{time.monotonic() - started:.0f} s"

    load_failed = False
    figures = read_figures(figures_path)
    if not args.no_load:
        print("running the load benchmark (benchmarks/load.py, full size) ...", file=sys.stderr, flush=True)
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.load", "--json", *args.load_args.split()],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if done.returncode != 0 or not lines:
            load_failed = True
            outcome["load benchmark"] = f"FAILED (exit {done.returncode}): {done.stderr.strip()[-500:]}"
        else:
            load = json.loads(lines[-1])
            figures += load_figures(load)
            load_failed = load["all"]["errors"] > 0
            outcome["load wall time"] = f"{time.monotonic() - started:.0f} s (seeding {load['seed_s']} s)"

    engine, engine_rows = engine_of(env)
    print()
    print(f"reliability on {engine}")
    print(render(combine(engine_rows + figures), outcome))
    return 1 if tests.returncode != 0 or load_failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
