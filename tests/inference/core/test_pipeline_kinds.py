"""Pipeline kinds: the registry matches the names profiles may use, and the null kind returns its fixed
predictions for any field without crops or forward passes per field."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from annotations.taxonomy import NUM_CLASSES
from inference.core.nets import NULL_CLASSIFIER, NULL_DETECTOR, build_classifier, build_detector
from inference.core.pipeline import PIPELINE_KINDS, NullPipeline
from inference.core.profiles import PIPELINE_KIND_NAMES, PROFILES_PATH, ProfileError, get_profile, load_profiles
from inference.core.stages import COUNTABILITY_CLASSES


def test_every_kind_a_profile_may_name_is_registered() -> None:
    assert set(PIPELINE_KINDS) == set(PIPELINE_KIND_NAMES)
    assert get_profile("null").kind == "null"
    assert get_profile("cpu").kind == "three_stage"
    assert get_profile("paper").prelabel_chunk >= 64  # a GPU worker's chunks fill its crop batches


def test_an_unknown_kind_is_refused(tmp_path: Path) -> None:
    data = yaml.safe_load(PROFILES_PATH.read_text())
    data["cpu"]["kind"] = "magic"
    path = tmp_path / "profiles.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ProfileError, match="kind"):
        load_profiles(path)


def null_pipeline(cells: int) -> NullPipeline:
    profile = get_profile("null")
    detector = build_detector(NULL_DETECTOR, cells=cells)
    countability = build_classifier(NULL_CLASSIFIER, len(COUNTABILITY_CLASSES))
    return NullPipeline(detector, countability, [build_classifier(NULL_CLASSIFIER, NUM_CLASSES)], profile, "cpu")


def test_the_null_kind_returns_fixed_cells_inside_every_field() -> None:
    pipeline = null_pipeline(cells=20)
    fields = [np.zeros((480, 640, 3), np.uint8), torch.zeros(3, 120, 160), np.zeros((480, 640, 3), np.uint8)]
    first, small, again = pipeline.run(fields)
    assert first is again  # computed once per field size
    assert (first.width, first.height, small.width, small.height) == (640, 480, 160, 120)
    for prediction in (first, small):
        assert len(prediction.cells) == 20
        for cell in prediction.cells:
            x, y, w, h = cell.box
            assert min(x, y) >= 0
            assert min(w, h) > 0
            assert x + w <= prediction.width
            assert y + h <= prediction.height
            assert sum(cell.probabilities) == pytest.approx(1.0, abs=1e-5)
            assert cell.predicted_class == 0
            assert cell.detector_score == pytest.approx(0.9)
    assert pipeline.timings.fields == 3
