"""The UI benchmark runs end to end at a tiny size: every page's key-press figures and the gallery's first paint are
there and positive (the full-size figures come from `python -m benchmarks.ui --json`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from benchmarks.ui import CHROMIUM
from tests.conftest import IN_CI


def test_the_benchmark_reports_key_press_times_and_first_paint(tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        message = f"Chromium is not installed at {CHROMIUM}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    if not (settings.BASE_DIR / "frontend" / "dist" / "index.html").exists():
        pytest.fail("frontend/dist is not built: run `make frontend`")
    size = ["--fields", "40", "--cells", "1200", "--gallery-cells", "60", "--presses", "2", "--loads", "1"]
    # A database of its own (never a kept full-size one), deleted with tmp_path.
    database = ["--database-url", f"sqlite:///{tmp_path / 'ui.sqlite3'}"]
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.ui", *size, *database, "--json"],
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        check=True,
        timeout=900,
    )
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    for page, keys in {"annotator": {"j", "]"}, "gallery": {"ArrowRight", "]"}, "crosscheck": {"j", "]"}}.items():
        assert figures[page]["presses"] == 2 * len(keys)
        assert set(figures[page]["keys"]) == keys
        assert figures[page]["p95_ms"] >= figures[page]["p50_ms"] > 0
    assert figures["gallery_first_paint"]["loads"] == 1
    assert figures["gallery_first_paint"]["p50_ms"] > 0
    assert figures["gallery_cells"] == 60
