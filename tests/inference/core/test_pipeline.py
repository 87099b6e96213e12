from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from annotations.taxonomy import CLASS_NAMES, NUM_CLASSES
from inference.core.calibration import Calibration, prior_correct, prior_weights, softmax_with_temperature
from inference.core.checkpoints import CheckpointMeta, CheckpointMismatchError, save_checkpoint
from inference.core.crops import crop_cells, field_to_tensor
from inference.core.pipeline import FieldPrediction, Pipeline
from inference.core.profiles import Profile
from inference.core.stages import COUNTABILITY_CLASSES, DETECTOR_CLASSES, CheckpointStage
from inference.core.uncertainty import MEASURES

Models = tuple[nn.Module, nn.Module, list[nn.Module]]


def synthetic_fields() -> list[np.ndarray | Image.Image]:
    rng = np.random.default_rng(0)
    first = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    second = Image.fromarray(rng.integers(0, 255, (90, 100, 3), dtype=np.uint8))
    return [first, second]


@pytest.fixture
def predictions(tiny_profile: Profile, tiny_models: Models) -> tuple[Pipeline, list[FieldPrediction]]:
    pipeline = Pipeline(*tiny_models, tiny_profile)
    return pipeline, pipeline.run(synthetic_fields())


def test_every_field_gets_cells_with_consistent_probabilities(
    predictions: tuple[Pipeline, list[FieldPrediction]],
) -> None:
    _, fields = predictions
    assert [(f.width, f.height) for f in fields] == [(160, 120), (100, 90)]
    for field in fields:
        assert len(field.cells) == 5  # score threshold 0: the detector's top max_detections
        for cell in field.cells:
            x, y, w, h = cell.box
            assert min(x, y, w, h) >= 0
            assert x + w <= field.width + 1e-4
            assert y + h <= field.height + 1e-4
            assert cell.p_countable is not None
            assert 0.0 <= cell.p_countable <= 1.0
            assert len(cell.probabilities) == NUM_CLASSES
            assert sum(cell.probabilities) == pytest.approx(1.0, abs=1e-5)
            assert len(cell.member_probabilities) == 2
            for member in cell.member_probabilities:
                assert sum(member) == pytest.approx(1.0, abs=1e-5)
            mean = np.mean(cell.member_probabilities, axis=0)
            np.testing.assert_allclose(cell.probabilities, mean, atol=1e-6)
            assert cell.predicted_class == int(np.argmax(cell.probabilities))
            assert set(cell.uncertainty) == set(MEASURES)
            assert cell.uncertainty["detector"] == pytest.approx(1.0 - cell.detector_score)
            assert cell.uncertainty["least_confidence"] == pytest.approx(1.0 - max(cell.probabilities))


def test_predictions_match_the_models_applied_by_hand(
    predictions: tuple[Pipeline, list[FieldPrediction]], tiny_profile: Profile
) -> None:
    pipeline, fields = predictions
    images = [field_to_tensor(image) for image in synthetic_fields()]
    boxes = [torch.tensor([[x, y, x + w, y + h] for x, y, w, h in (c.box for c in f.cells)]) for f in fields]
    norm = tiny_profile.normalisation
    cells = [cell for field in fields for cell in field.cells]
    with torch.inference_mode():
        for model, size, expected in [
            (pipeline.countability, 40, [c.p_countable for c in cells]),
            (pipeline.members[1], 32, [c.member_probabilities[1] for c in cells]),
        ]:
            crops = crop_cells(images, boxes, size=size, margin=0.2, mean=norm.mean, std=norm.std)
            probs = model(crops).softmax(dim=1)
            by_hand = probs[:, COUNTABILITY_CLASSES.index("countable")] if size == 40 else probs
            np.testing.assert_allclose(by_hand.numpy(), np.asarray(expected), atol=1e-5)


def test_timings_separate_forward_passes_from_the_total(predictions: tuple[Pipeline, list[FieldPrediction]]) -> None:
    pipeline, _ = predictions
    timings = pipeline.timings
    assert (timings.fields, timings.cells) == (2, 10)
    assert min(timings.detector_forward_s, timings.countability_forward_s, timings.classifier_forward_s) > 0
    assert timings.forward_s < timings.total_s


def test_fields_without_cells_give_empty_predictions(tiny_profile: Profile, tiny_models: Models) -> None:
    detector = dataclasses.replace(tiny_profile.detector, score_threshold=1.0)
    pipeline = Pipeline(*tiny_models, dataclasses.replace(tiny_profile, detector=detector))
    fields = pipeline.run(synthetic_fields())
    assert [len(f.cells) for f in fields] == [0, 0]


def test_fields_are_processed_in_passes_without_changing_results(tiny_profile: Profile, tiny_models: Models) -> None:
    whole = Pipeline(*tiny_models, tiny_profile).run(synthetic_fields())
    in_passes = Pipeline(*tiny_models, tiny_profile, max_fields_per_pass=1).run(synthetic_fields())
    assert [c.box for f in in_passes for c in f.cells] == [c.box for f in whole for c in f.cells]
    probabilities = [[c.probabilities for f in run for c in f.cells] for run in (in_passes, whole)]
    np.testing.assert_allclose(np.array(probabilities[0]), np.array(probabilities[1]), atol=1e-5)


def test_reduced_precision_path_runs_and_keeps_float32_boxes(tiny_profile: Profile, tiny_models: Models) -> None:
    # The CUDA path (autocast around classifiers, the detector backbone and head), exercised with CPU bf16.
    # CPU bf16 is slow without native support, so one small field only.
    pipeline = Pipeline(*tiny_models, tiny_profile, amp_dtype=torch.bfloat16)
    head_dtypes: list[torch.dtype] = []
    first_conv = next(m for m in pipeline.detector.head.modules() if isinstance(m, torch.nn.Conv2d))
    first_conv.register_forward_hook(lambda _m, _i, output: head_dtypes.append(output.dtype))
    field = synthetic_fields()[1]
    with torch.inference_mode():
        detections = pipeline.detect([field_to_tensor(field)])
    assert head_dtypes[0] == torch.bfloat16  # the head ran in reduced precision ...
    assert detections[0][0].dtype == torch.float32  # ... and the boxes were decoded from float32 regression
    (prediction,) = pipeline.run([field])
    assert len(prediction.cells) == 5
    for cell in prediction.cells:
        assert sum(cell.probabilities) == pytest.approx(1.0, abs=1e-4)


def _save_all(
    tmp_path: Path,
    profile: Profile,
    models: Models,
    member_input_size: int | None = None,
    context_margin: float | None = None,
) -> list[Path]:
    detector, countability, members = models
    norm: dict[str, Any] = {
        "mean": profile.normalisation.mean,
        "std": profile.normalisation.std,
        "profile": profile.name,
    }
    if context_margin is not None:
        norm["config"] = {"context_margin": context_margin}
    paths = [
        save_checkpoint(
            tmp_path / "detector.pt",
            detector,
            CheckpointMeta(
                stage=CheckpointStage.DETECTOR,
                arch=profile.detector.arch,
                classes=DETECTOR_CLASSES,
                model_kwargs=profile.detector.model_kwargs(),
                **norm,
            ),
        ),
        save_checkpoint(
            tmp_path / "countability.pt",
            countability,
            CheckpointMeta(
                stage=CheckpointStage.COUNTABILITY,
                arch=profile.countability.arch,
                classes=COUNTABILITY_CLASSES,
                input_size=profile.countability.input_size,
                **norm,
            ),
        ),
    ]
    for index, (arch, member) in enumerate(zip(profile.classifier.archs, members, strict=True)):
        meta = CheckpointMeta(
            stage=CheckpointStage.CLASSIFIER_MEMBER,
            arch=arch,
            classes=CLASS_NAMES,
            input_size=member_input_size or profile.classifier.input_size,
            **norm,
        )
        paths.append(save_checkpoint(tmp_path / f"member_{index}.pt", member, meta))
    return paths


def test_pipeline_from_checkpoints_reproduces_the_in_memory_pipeline(
    tmp_path: Path, tiny_profile: Profile, tiny_models: Models
) -> None:
    expected = Pipeline(*tiny_models, tiny_profile).run(synthetic_fields())
    detector, countability, *members = _save_all(tmp_path, tiny_profile, tiny_models)
    loaded = Pipeline.from_checkpoints(detector, countability, members, tiny_profile).run(synthetic_fields())
    assert [c.box for f in loaded for c in f.cells] == [c.box for f in expected for c in f.cells]
    np.testing.assert_allclose(
        [c.probabilities for f in loaded for c in f.cells], [c.probabilities for f in expected for c in f.cells]
    )


def test_checkpoints_that_do_not_fit_the_profile_are_refused(
    tmp_path: Path, tiny_profile: Profile, tiny_models: Models
) -> None:
    detector, countability, *members = _save_all(tmp_path, tiny_profile, tiny_models, member_input_size=64)
    with pytest.raises(CheckpointMismatchError, match="takes 64 px crops, profile uses 32"):
        Pipeline.from_checkpoints(detector, countability, members, tiny_profile)
    with pytest.raises(CheckpointMismatchError, match="stage is 'countability'"):
        Pipeline.from_checkpoints(detector, countability, [countability], tiny_profile)
    other = dataclasses.replace(tiny_profile, classifier=dataclasses.replace(tiny_profile.classifier, archs=("x",)))
    with pytest.raises(CheckpointMismatchError, match="does not use an architecture of profile"):
        Pipeline.from_checkpoints(detector, countability, members, other)


def test_a_checkpoint_trained_with_another_context_margin_is_refused(
    tmp_path: Path, tiny_profile: Profile, tiny_models: Models
) -> None:
    detector, countability, *members = _save_all(tmp_path, tiny_profile, tiny_models, context_margin=0.4)
    with pytest.raises(CheckpointMismatchError, match=r"context margin 0\.4, profile uses 0\.2"):
        Pipeline.from_checkpoints(detector, countability, members, tiny_profile)
    same = _save_all(tmp_path / "same", tiny_profile, tiny_models, context_margin=tiny_profile.context_margin)
    Pipeline.from_checkpoints(same[0], same[1], same[2:], tiny_profile)


def test_calibration_scales_members_and_corrects_the_prior_of_counted_probabilities(
    tiny_profile: Profile, tiny_models: Models
) -> None:
    detector, countability, members = tiny_models
    raw = Pipeline(detector, countability, members, tiny_profile).run(synthetic_fields())
    weights = prior_weights([1000] * 20 + [10], 0.5)  # class 20 rare in training: balanced sampling favoured it
    count_weights = prior_weights([100, 900], 0.5)
    calibrated = Pipeline(
        detector,
        countability,
        members,
        tiny_profile,
        countability_calibration=Calibration(1.5, count_weights),
        member_calibrations=[Calibration(2.0, weights)] * len(members),
    ).run(synthetic_fields())
    raw_cells = [c for f in raw for c in f.cells]
    cells = [c for f in calibrated for c in f.cells]
    assert cells
    member_raw = np.array([c.member_probabilities for c in raw_cells]).transpose(1, 0, 2)
    scaled = np.stack([softmax_with_temperature(np.log(m), 2.0) for m in member_raw])
    balanced = scaled.mean(axis=0)
    corrected = prior_correct(balanced, weights)
    np.testing.assert_allclose([c.member_probabilities for c in cells], scaled.transpose(1, 0, 2), atol=1e-5)
    np.testing.assert_allclose([c.probabilities for c in cells], corrected, atol=1e-5)
    assert [c.predicted_class for c in cells] == corrected.argmax(axis=1).tolist()
    # The review queue's uncertainty reads the balanced probabilities, not the corrected ones.
    expected_entropy = -(balanced * np.log(balanced)).sum(axis=1)
    np.testing.assert_allclose([c.uncertainty["entropy"] for c in cells], expected_entropy, atol=1e-4)
    p_raw = np.array([c.p_countable for c in raw_cells])
    two = np.log(np.stack([1 - p_raw, p_raw], axis=1))
    expected_countable = prior_correct(softmax_with_temperature(two, 1.5), count_weights)[:, 1]
    np.testing.assert_allclose([c.p_countable for c in cells], expected_countable, atol=1e-5)


def test_a_detector_alone_gives_unclassified_boxes(tiny_profile: Profile, tiny_models: Models) -> None:
    detector, countability, members = tiny_models
    full = Pipeline(detector, countability, members, tiny_profile).run(synthetic_fields())
    alone = Pipeline(detector, None, [], tiny_profile).run(synthetic_fields())
    np.testing.assert_allclose(
        [c.box for f in alone for c in f.cells], [c.box for f in full for c in f.cells], atol=1e-3
    )
    cells = [c for f in alone for c in f.cells]
    assert cells
    assert all(c.predicted_class is None and c.p_countable is None and c.probabilities == () for c in cells)
    assert all(c.uncertainty == {"detector": pytest.approx(1 - c.detector_score)} for c in cells)
    with pytest.raises(ValueError, match="or with neither"):
        Pipeline(detector, countability, [], tiny_profile)


def test_cuda_device_without_cuda_is_a_clear_error(tiny_profile: Profile, tiny_models: Models) -> None:
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        Pipeline(*tiny_models, tiny_profile, device="cuda")
