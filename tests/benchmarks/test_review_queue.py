"""The review-queue benchmark runs end to end on a small queue: a batch every request, the same number of SQL
queries for a batch of 5 and of 20 (the figures at 300,000 cells come from `python -m benchmarks.review_queue`)."""

from __future__ import annotations

import json
import subprocess
import sys

from django.conf import settings


def test_the_benchmark_reports_latency_and_constant_queries() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.review_queue", "--cells", "600", "--requests", "3", "--json"],
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["cells"] == 600
    assert figures["p95_ms"] >= figures["p50_ms"] > 0
    assert figures["queries_limit_5"] == figures["queries_limit_20"]
