"""The pipeline benchmark's bookkeeping, on the tiny test profile (the real figures come from running it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks.pipeline import RANDOM_MODEL_CELLS_PER_FIELD, benchmark, load_fields
from tests.inference.conftest import make_tiny_profile


def test_load_fields_decodes_and_repeats_the_folder(tmp_path: Path) -> None:
    for index, colour in enumerate([(255, 0, 0), (0, 255, 0)]):
        Image.new("RGB", (8, 6), colour).save(tmp_path / f"field_{index}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    fields = load_fields(tmp_path, 3)
    assert [f.shape for f in fields] == [(6, 8, 3)] * 3
    assert [tuple(f[0, 0]) for f in fields] == [(255, 0, 0), (0, 255, 0), (255, 0, 0)]


def test_benchmark_reports_consistent_figures() -> None:
    rng = np.random.default_rng(0)
    fields = [rng.integers(0, 255, (96, 128, 3), dtype=np.uint8) for _ in range(2)]
    result = benchmark(make_tiny_profile(), fields, repeats=1, device="cpu", checkpoints=None)
    # Random-init models: the detector keeps its top boxes with no score threshold.
    assert result["cells"] == 2 * RANDOM_MODEL_CELLS_PER_FIELD
    assert result["fields_per_s"] == pytest.approx(2 / result["pipeline_s"], rel=1e-2)
    assert result["cells_per_s"] == pytest.approx(result["cells"] / result["pipeline_s"], rel=1e-2)
    assert result["overhead_ratio"] == pytest.approx(result["pipeline_s"] / result["bare_forward_s"], rel=1e-2)
    assert result["device"] == "cpu"
    assert result["torch_threads"] >= 1
