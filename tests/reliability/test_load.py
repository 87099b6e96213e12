"""The load benchmark in small: the same annotator traffic (locust against gunicorn over a seeded database) for a
few seconds, which must answer every request without an error. `make reliability` runs it at full size
(benchmarks/load.py: 10,000 fields, 300,000 cells) and reports its latencies."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from benchmarks.load import percentile, summarise
from tests.reliability.stack import REPO

pytestmark = [pytest.mark.slow]


def test_percentiles_and_figures_per_kind() -> None:
    assert percentile([], 0.95) == 0.0
    assert percentile([5.0], 0.99) == 5.0
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 0.5), percentile(values, 0.95), percentile(values, 0.99)) == (50.0, 95.0, 99.0)
    samples = [("read: field", 10.0, True), ("read: field", 30.0, False), ("write: edit cell", 20.0, True)]
    figures = summarise(samples, seconds=2.0)
    assert figures["read"] == {"requests": 2, "rps": 1.0, "p50_ms": 10.0, "p95_ms": 30.0, "p99_ms": 30.0, "errors": 1}
    assert figures["write"]["requests"] == 1
    assert figures["all"]["rps"] == 1.5
    assert figures["endpoints"]["read: field"]["errors"] == 1


def test_a_short_load_of_annotator_traffic_answers_every_request() -> None:
    """A dedicated database (<DATABASE_URL>_load on PostgreSQL, a temporary SQLite file otherwise): 200 fields,
    6,000 cells, 4 annotators' traffic for 8 seconds against gunicorn."""
    size = ["--fields", "200", "--cells", "6000", "--annotators", "8", "--users", "4", "--duration", "8"]
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.load", *size, "--workers", "2", "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["read"]["requests"] > 0
    assert figures["write"]["requests"] > 0
    assert figures["all"]["errors"] == 0, figures["error_examples"]
    assert {name.split(":")[0] for name in figures["endpoints"]} == {"read", "write"}
