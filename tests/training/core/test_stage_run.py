"""Real (tiny) training runs on the synthetic dataset: beats chance, resumes, is deterministic, cancels."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from inference.core.checkpoints import calibration_of, load_checkpoint, read_meta
from inference.core.pipeline import Pipeline
from training.core.config import TrainConfig
from training.core.data import CropSpec
from training.core.engine import evaluate
from training.core.records import CellRecord, FieldRecord
from training.core.stage_run import Progress, StageResult, evaluate_checkpoints, train_stage


class Cancelled(Exception):
    pass


@pytest.fixture(scope="module")
def trained(synthetic_fields, train_profile, tmp_path_factory) -> dict[str, StageResult]:
    """One short run of every stage (shared by the tests below)."""
    out = tmp_path_factory.mktemp("trained")
    results = {}
    for stage, epochs in (("detector", 6), ("countability", 3), ("classifier", 3)):
        config = TrainConfig(stage=stage, profile=train_profile, epochs=epochs, seed=0)
        results[stage] = train_stage(config, synthetic_fields, out / stage, data_snapshot="snap-1")
    return results


def test_classifier_beats_chance(trained):
    result = trained["classifier"]
    # Three classes: chance accuracy is 1/3.
    assert result.metrics["accuracy"] > 0.7
    assert result.metrics["macro_f1"] > 0.6
    assert result.metrics["split"] == "test"
    assert set(result.metrics["per_class"]) <= {"0", "6", "12"}
    assert result.architecture == "test_resnet+test_efficientnet"
    assert len(result.checkpoints) == 2
    assert len(result.best_epochs) == 2
    assert [(row["member"], row["epoch"]) for row in result.history] == [(m, e) for m in (0, 1) for e in (1, 2, 3)]
    assert all(row["val_macro_f1"] is not None and row["train_loss"] > 0 for row in result.history)
    assert result.val_metrics["accuracy"] is not None


def test_countability_beats_chance(trained):
    metrics = trained["countability"].metrics
    assert metrics["roc_auc"] > 0.9
    assert metrics["accuracy"] > 0.85
    assert metrics["support"] > 0


def test_detector_beats_chance(trained):
    result = trained["detector"]
    assert result.metrics["ap50"] > 0.5
    assert result.metrics["ap50_95"] > 0.1
    assert result.metrics["num_images"] == 8
    assert result.architecture == "fcos_convnet_tiny"


def test_checkpoints_carry_what_inference_needs(trained, train_profile, synthetic_fields):
    meta = read_meta(trained["classifier"].checkpoints[0])
    assert meta.stage == "classifier_member"
    assert meta.input_size == train_profile.classifier.input_size
    assert meta.mean == train_profile.normalisation.mean
    assert meta.data_snapshot == "snap-1"
    assert meta.config["context_margin"] == train_profile.context_margin
    assert meta.config["lr"] == pytest.approx(3e-3)
    assert "macro_f1" in meta.metrics
    # What the prior correction and the calibration need travels with the weights (issue 15).
    assert len(meta.class_counts) == 21
    assert sum(meta.class_counts) == sum(
        1 for f in synthetic_fields if f.split == "train" for c in f.cells if c.countable and c.class_index is not None
    )
    assert meta.config["balance_power"] == pytest.approx(0.5)
    assert meta.temperature > 0
    assert meta.temperature != 1.0  # fitted on val
    countability = read_meta(trained["countability"].checkpoints[0])
    assert countability.class_counts[0] + countability.class_counts[1] == sum(
        len(f.cells) for f in synthetic_fields if f.split == "train"
    )
    detector = read_meta(trained["detector"].checkpoints[0])
    assert detector.model_kwargs == {"min_size": 64, "max_size": 64}


def test_trained_checkpoints_run_in_the_pipeline(trained, train_profile, synthetic_fields):
    pipeline = Pipeline.from_checkpoints(
        trained["detector"].checkpoints[0],
        trained["countability"].checkpoints[0],
        trained["classifier"].checkpoints,
        dataclasses.replace(train_profile, detector=dataclasses.replace(train_profile.detector, score_threshold=0.2)),
        device="cpu",
    )
    test_fields = [f for f in synthetic_fields if f.split == "test"]
    images = [np.asarray(Image.open(f.image_path).convert("RGB")) for f in test_fields]
    predictions = pipeline.run(images)
    assert len(predictions) == len(test_fields)
    found = sum(len(p.cells) for p in predictions)
    truth = sum(len(f.cells) for f in test_fields)
    assert truth / 2 <= found <= truth * 2
    # The trained classifier ensemble is right on most of the detected, classifiable cells.
    hits = total = 0
    for prediction, field in zip(predictions, test_fields, strict=True):
        for cell in prediction.cells:
            x, y, w, h = cell.box
            cx, cy = x + w / 2, y + h / 2
            for truth_cell in field.cells:
                x0, y0, x1, y1 = truth_cell.box
                if truth_cell.class_index is not None and x0 <= cx <= x1 and y0 <= cy <= y1:
                    total += 1
                    hits += cell.predicted_class == truth_cell.class_index
    assert total > 0
    assert hits / total > 0.6


def test_evaluate_checkpoints_reproduces_the_run_metrics(trained, synthetic_fields, tmp_path):
    for stage in ("detector", "countability", "classifier"):
        result = trained[stage]
        again = evaluate_checkpoints(stage, result.checkpoints, synthetic_fields, split="test", plots_dir=tmp_path)
        keys = {"detector": "ap50", "countability": "accuracy", "classifier": "macro_f1"}
        assert again[keys[stage]] == pytest.approx(result.metrics[keys[stage]], abs=1e-6)
    assert (tmp_path / "classifier_confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="no fields in the val split"):
        evaluate_checkpoints(
            "detector", trained["detector"].checkpoints, [f for f in synthetic_fields if f.split != "val"], split="val"
        )
    with pytest.raises(ValueError, match="stage"):
        evaluate_checkpoints("segmenter", trained["detector"].checkpoints, synthetic_fields)


def test_plots_are_written(trained):
    names = {p.name for result in trained.values() for p in result.plots}
    assert {
        "detector_pr_curves.png",
        "detector_learning_curve.png",
        "countability_confusion_matrix.png",
        "classifier_confusion_matrix.png",
        "classifier_pr_curves.png",
        "classifier_learning_curve.png",
    } <= names
    for result in trained.values():
        for path in result.plots:
            assert path.read_bytes()[:4] == b"\x89PNG"


def _countability(profile, epochs=3, seed=0, **overrides):
    return TrainConfig(stage="countability", profile=profile, epochs=epochs, seed=seed, overrides=overrides)


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path).model.state_dict()


def test_same_seed_same_weights_and_metrics(small_fields, train_profile, tmp_path):
    a = train_stage(_countability(train_profile, epochs=2), small_fields, tmp_path / "a")
    b = train_stage(_countability(train_profile, epochs=2), small_fields, tmp_path / "b")
    c = train_stage(_countability(train_profile, epochs=2, seed=1), small_fields, tmp_path / "c")
    wa, wb, wc = (_weights(r.checkpoints[0]) for r in (a, b, c))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert a.metrics == b.metrics
    assert [row["train_loss"] for row in a.history] == [row["train_loss"] for row in b.history]
    assert any(not torch.equal(wa[k], wc[k]) for k in wa)


def test_cancel_propagates_and_resume_continues_at_the_next_epoch(small_fields, train_profile, tmp_path):
    seen: list[Progress] = []

    def cancel_after_epoch_2(progress: Progress) -> None:
        seen.append(progress)
        if progress.epoch == 2 and "done" in progress.message:
            raise Cancelled

    config = _countability(train_profile, epochs=4, progress_every=1)
    with pytest.raises(Cancelled):
        train_stage(config, small_fields, tmp_path / "run", on_progress=cancel_after_epoch_2)
    assert max(p.epoch for p in seen) == 2
    assert all(0 <= p.fraction <= 0.5 for p in seen)
    assert [p.fraction for p in seen] == sorted(p.fraction for p in seen)
    assert any("step" in p.message for p in seen)
    assert load_checkpoint(tmp_path / "run" / "countability" / "last.pt").epoch == 2

    resumed_epochs: list[int] = []
    resumed = train_stage(config, small_fields, tmp_path / "run", on_progress=lambda p: resumed_epochs.append(p.epoch))
    assert min(resumed_epochs) == 3
    assert [row["epoch"] for row in resumed.history] == [1, 2, 3, 4]
    # The interrupted-and-resumed run ends where an uninterrupted one does.
    straight = train_stage(config, small_fields, tmp_path / "straight")
    ws, wr = _weights(straight.checkpoints[0]), _weights(resumed.checkpoints[0])
    assert all(torch.equal(ws[k], wr[k]) for k in ws)
    assert straight.metrics == resumed.metrics
    # A finished run called again trains nothing more.
    again = train_stage(config, small_fields, tmp_path / "run")
    assert again.history == resumed.history
    # Resuming with other settings is refused.
    with pytest.raises(ValueError, match="other settings"):
        train_stage(_countability(train_profile, epochs=4, lr=0.1), small_fields, tmp_path / "run")


def test_time_limit_stops_early(small_fields, train_profile, tmp_path):
    result = train_stage(_countability(train_profile, epochs=50, time_limit_s=0.01), small_fields, tmp_path)
    assert len(result.history) == 1
    assert result.best_epochs == [1]


def test_undefined_val_metric_keeps_the_latest_epoch_and_warns(small_fields, train_profile, tmp_path):
    # Val fields exist but hold no cell: the val metric is undefined on every epoch. The best checkpoint (hence
    # the test metrics and the gate's candidate) must be the latest epoch, not the near-untrained first one.
    fields = [dataclasses.replace(f, cells=()) if f.split == "val" else f for f in small_fields]
    assert any(f.split == "val" for f in fields)
    messages: list[str] = []
    result = train_stage(
        _countability(train_profile, epochs=3), fields, tmp_path, on_progress=lambda p: messages.append(p.message)
    )
    assert result.best_epochs == [3]
    assert load_checkpoint(result.checkpoints[0]).epoch == 3
    assert len(result.warnings) == 1
    assert "undefined" in result.warnings[0]
    assert any(m.startswith("warning:") and "latest epoch" in m for m in messages)


def test_bad_input(small_fields, train_profile, tmp_path):
    no_train = [dataclasses.replace(f, split="val") for f in small_fields]
    with pytest.raises(ValueError, match="train split has no usable examples"):
        train_stage(_countability(train_profile), no_train, tmp_path / "x")
    with pytest.raises(ValueError, match="train split has no usable examples"):
        train_stage(_countability(train_profile), [], tmp_path / "x")
    unlabelled = [
        dataclasses.replace(f, cells=tuple(dataclasses.replace(c, class_index=None) for c in f.cells))
        for f in small_fields
    ]
    with pytest.raises(ValueError, match="cells with a known class"):
        train_stage(TrainConfig(stage="classifier", profile=train_profile), unlabelled, tmp_path / "x")
    with pytest.raises(ValueError, match="unknown stage"):
        train_stage(TrainConfig(stage="segmenter", profile=train_profile), small_fields, tmp_path / "x")
    with pytest.raises(ValueError, match="unknown overrides"):
        train_stage(_countability(train_profile, learning_rate=0.1), small_fields, tmp_path / "x")
    with pytest.raises(ValueError, match="unknown profile"):
        train_stage(TrainConfig(stage="detector", profile="no-such-profile"), small_fields, tmp_path / "x")
    with pytest.raises(ValueError, match="epochs"):
        train_stage(_countability(train_profile, epochs=0), small_fields, tmp_path / "x")
    missing = [
        *small_fields,
        FieldRecord("gone", "/nonexistent/x.png", 8, 8, "P9", "train", (CellRecord((0, 0, 4, 4), True, 0),)),
    ]
    with pytest.raises(ValueError, match="not found"):
        train_stage(_countability(train_profile), missing, tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_evaluate_returns_the_metric_dict(trained, train_profile, synthetic_fields):
    loaded = load_checkpoint(trained["countability"].checkpoints[0])
    norm = train_profile.normalisation
    spec = CropSpec(train_profile.countability.input_size, train_profile.context_margin, norm.mean, norm.std)
    test_fields = [f for f in synthetic_fields if f.split == "test"]
    # The run reports the metrics of the calibrated probabilities (the checkpoint's temperature and prior).
    calibrations = [calibration_of(loaded.meta)]
    metrics = evaluate(
        "countability", [loaded.model], test_fields, device=torch.device("cpu"), crop=spec, calibrations=calibrations
    )
    assert metrics == {k: v for k, v in trained["countability"].metrics.items() if k != "split"}


def test_cell_windows_are_cut_once_per_snapshot_and_persistent_workers_train_the_same(
    small_fields, train_profile, tmp_path
):
    cache = tmp_path / "crop-cache"
    config = _countability(train_profile, epochs=2)
    a = train_stage(config, small_fields, tmp_path / "a", data_snapshot="snap-7", crop_cache_dir=cache)
    kept = list(cache.glob("*.pt"))
    assert len(kept) == 1
    stamp = kept[0].stat().st_mtime_ns
    # Two persistent DataLoader workers over the cached windows: the same epochs, item by item, as one process.
    workers = _countability(train_profile, epochs=2, num_workers=2)
    b = train_stage(workers, small_fields, tmp_path / "b", data_snapshot="snap-7", crop_cache_dir=cache)
    assert [p.stat().st_mtime_ns for p in cache.glob("*.pt")] == [stamp]  # reused, not cut again
    wa, wb = _weights(a.checkpoints[0]), _weights(b.checkpoints[0])
    assert all(torch.allclose(wa[k].float(), wb[k].float(), atol=1e-5) for k in wa)
    assert [row["train_loss"] for row in a.history] == pytest.approx([row["train_loss"] for row in b.history])
    train_stage(config, small_fields, tmp_path / "c", data_snapshot="snap-8", crop_cache_dir=cache)
    assert len(list(cache.glob("*.pt"))) == 2  # another snapshot, its own windows
