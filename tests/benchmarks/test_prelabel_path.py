"""The end-to-end pre-label benchmark, run small: a real worker process on its own temporary database stores every
field's prediction set, and the figures it prints add up (the real figures come from running it at full size)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.worker, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def test_the_null_model_path_stores_every_field_and_reports_its_figures(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "CELERY_", "AICELL_"))}
    env["TMPDIR"] = str(tmp_path)  # the benchmark's temporary folder (removed at its end)
    argv = [sys.executable, "-m", "benchmarks.prelabel_path", "--fields", "6", "--cells-per-field", "4"]
    argv += ["--chunk", "3", "--warmup", "1", "--model", "null", "--timeout", "240", "--json"]
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=400, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert (result["job_status"], result["done"], result["failed"]) == ("succeeded", 6, 0)
    assert (result["prediction_sets"], result["cells_stored"]) == (6, 24)
    assert (result["chunks"], result["chunk_fields"]) == (2, [3])
    queries = result["queries_per_chunk"]
    assert max(queries) - min(queries) <= 1  # equal chunks cost equal queries (the one that ends the job, one more)
    assert result["fields_per_s"] == pytest.approx(6 / result["wall_s"], rel=0.02)
    assert set(result["per_field_ms"]) == {"read", "decode", "model", "write", "settle", "worker_total"}
    assert not list(tmp_path.glob("aicell-prelabel-bench-*"))  # the temporary database and media are gone
