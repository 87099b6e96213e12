"""The training-input benchmark, run small: both loaders deliver every crop of every epoch and the figures it
prints are there and positive (the real figures come from running it at full size)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def test_the_loaders_and_the_model_report_their_crop_rates() -> None:
    argv = [sys.executable, "-m", "benchmarks.train_input", "--fields", "3", "--cells-per-field", "4"]
    argv += ["--epochs", "2", "--workers", "1", "--model-steps", "1", "--json"]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert (result["crops_per_epoch"], result["epochs"], result["profile"]) == (12, 2, "cpu")
    for key in ("before_crops_per_s", "after_crops_per_s", "model_crops_per_s", "cut_s"):
        assert result[key] > 0, key
    assert result["input_over_model"]["after"] == pytest.approx(
        result["after_crops_per_s"] / result["model_crops_per_s"], rel=0.05, abs=0.006
    )  # printed to 2 decimals
