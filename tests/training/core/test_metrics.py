import contextlib
import io

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from sklearn import metrics as skm

from training.core.metrics import binary_metrics, detection_metrics, expected_calibration_error, multiclass_metrics


def test_ece_hand_computed():
    # Bin (0.8, 0.9]: accuracy 1/2, confidence 0.9 -> 0.4 * 2/4; bin (0.5, 0.6]: accuracy 1, confidence 0.6
    # -> 0.4 * 2/4. ECE = 0.4.
    assert expected_calibration_error([0.9, 0.9, 0.6, 0.6], [1, 0, 1, 1], n_bins=10) == pytest.approx(0.4)


def test_ece_edges():
    assert expected_calibration_error([], []) == 0.0
    assert expected_calibration_error([1.0, 1.0], [1, 1]) == pytest.approx(0.0)
    # Confidence 0 lands in the first bin: |0 - 0| = 0 there; confidence 1 wrong -> 1 * 1/2.
    assert expected_calibration_error([0.0, 1.0], [0, 0], n_bins=5) == pytest.approx(0.5)
    # Perfectly calibrated within a bin.
    assert expected_calibration_error([0.75] * 4, [1, 1, 1, 0]) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="confidences"):
        expected_calibration_error([1.2], [1])
    with pytest.raises(ValueError, match="correctness"):
        expected_calibration_error([0.5, 0.5], [1])


Y_BIN = np.array([1, 1, 0, 1, 0, 0, 1, 1, 0, 1])
P_BIN = np.array([0.9, 0.7, 0.4, 0.45, 0.2, 0.6, 0.8, 0.55, 0.1, 0.35])


def test_binary_metrics_agree_with_sklearn():
    m = binary_metrics(Y_BIN, P_BIN)
    pred = (P_BIN >= 0.5).astype(int)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(Y_BIN, pred))
    assert m["precision"] == pytest.approx(skm.precision_score(Y_BIN, pred))
    assert m["recall"] == pytest.approx(skm.recall_score(Y_BIN, pred))
    assert m["f1"] == pytest.approx(skm.f1_score(Y_BIN, pred))
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(Y_BIN, P_BIN))
    confidence = np.where(pred == 1, P_BIN, 1 - P_BIN)
    assert m["ece"] == pytest.approx(expected_calibration_error(confidence, pred == Y_BIN))
    assert m["support"] == 10


def test_binary_metrics_one_class_and_empty():
    m = binary_metrics([1, 1, 1], [0.9, 0.8, 0.3])
    assert m["roc_auc"] is None
    assert m["accuracy"] == pytest.approx(2 / 3)
    empty = binary_metrics([], [])
    assert empty["support"] == 0
    assert empty["accuracy"] is None


def _probs(rng, labels, num_classes=21, noise=1.0):
    logits = rng.normal(0, noise, (len(labels), num_classes))
    logits[np.arange(len(labels)), labels] += 1.5
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_multiclass_metrics_agree_with_sklearn():
    rng = np.random.default_rng(0)
    y = rng.choice([0, 5, 6, 11, 12], size=200, p=[0.1, 0.4, 0.2, 0.1, 0.2])
    probs = _probs(rng, y)
    m = multiclass_metrics(y, probs)
    pred = probs.argmax(axis=1)
    present = [0, 5, 6, 11, 12]
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["macro_f1"] == pytest.approx(skm.f1_score(y, pred, labels=present, average="macro"))
    assert m["macro_precision"] == pytest.approx(
        skm.precision_score(y, pred, labels=present, average="macro", zero_division=0)
    )
    assert m["macro_recall"] == pytest.approx(skm.recall_score(y, pred, labels=present, average="macro"))
    assert sorted(m["per_class"], key=int) == [str(c) for c in present]
    for c in present:
        row = m["per_class"][str(c)]
        assert row["recall"] == pytest.approx(skm.recall_score(y == c, pred == c))
        assert row["precision"] == pytest.approx(skm.precision_score(y == c, pred == c, zero_division=0))
        assert row["ap"] == pytest.approx(skm.average_precision_score(y == c, probs[:, c]))
        assert row["auc"] == pytest.approx(skm.roc_auc_score(y == c, probs[:, c]))
        assert row["support"] == int((y == c).sum())
    assert m["per_class"]["11"]["name"] == "lymphoblast"
    labels = m["confusion_matrix"]["labels"]
    assert set(present) <= set(labels)
    assert np.array_equal(np.array(m["confusion_matrix"]["matrix"]), skm.confusion_matrix(y, pred, labels=labels))
    assert m["ece"] == pytest.approx(expected_calibration_error(probs.max(axis=1), pred == y))


def test_multiclass_bad_input():
    with pytest.raises(ValueError, match="probabilities"):
        multiclass_metrics([0, 1], np.ones((3, 21)) / 21)
    with pytest.raises(ValueError, match="labels"):
        multiclass_metrics([25], np.ones((1, 21)) / 21)
    assert multiclass_metrics([], np.zeros((0, 21)))["accuracy"] is None


def _cocoeval(truths, predictions):
    images = [{"id": i + 1} for i in range(len(truths))]
    anns: list[dict] = []
    dets: list[dict] = []
    for i, boxes in enumerate(truths):
        for x0, y0, x1, y1 in boxes:
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": i + 1,
                    "category_id": 1,
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "area": (x1 - x0) * (y1 - y0),
                    "iscrowd": 0,
                }
            )
    for i, (boxes, scores) in enumerate(predictions):
        for (x0, y0, x1, y1), s in zip(boxes, scores, strict=True):
            dets.append({"image_id": i + 1, "category_id": 1, "bbox": [x0, y0, x1 - x0, y1 - y0], "score": s})
    gt = COCO()
    gt.dataset = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "cell"}]}
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        ev = COCOeval(gt, gt.loadRes(dets), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats


def test_detection_metrics_agree_with_pycocotools():
    truths = [
        [(10, 10, 60, 60), (100, 100, 180, 170)],
        [(20, 30, 90, 100)],
        [(5, 5, 40, 50), (200, 40, 260, 110), (300, 300, 360, 350)],
    ]
    predictions = [
        ([(12, 8, 62, 58), (100, 110, 175, 170), (300, 300, 330, 330)], [0.9, 0.8, 0.3]),
        ([(25, 35, 95, 105)], [0.6]),
        ([(5, 5, 30, 40), (205, 45, 262, 108)], [0.7, 0.95]),
    ]
    m = detection_metrics(truths, predictions, with_curve=True)
    stats = _cocoeval(truths, predictions)
    assert m["ap50_95"] == pytest.approx(stats[0])
    assert m["ap50"] == pytest.approx(stats[1])
    assert 0 < m["ap50_95"] < m["ap50"] < 1
    assert m["num_images"] == 3
    assert m["num_boxes"] == 6
    curve = m["_curve"]
    assert curve.recall.shape == curve.precision.shape == (101,)


def test_detection_metrics_edges():
    truth = [[(10, 10, 50, 50)]]
    perfect = detection_metrics(truth, [([(10, 10, 50, 50)], [0.9])])
    assert perfect["ap50"] == pytest.approx(1.0)
    assert perfect["ap50_95"] == pytest.approx(1.0)
    assert detection_metrics(truth, [([], [])])["ap50"] == 0.0
    no_truth = detection_metrics([[]], [([(1, 1, 5, 5)], [0.5])])
    assert no_truth["ap50"] is None
    assert no_truth["num_boxes"] == 0
    with pytest.raises(ValueError, match="images"):
        detection_metrics(truth, [])


def test_detection_metrics_cap_follows_the_profile_not_cocoeval_default():
    # A crowded field: 150 cells, all found. COCOeval's default cap (100) would drop the lowest 50 detections.
    boxes = np.array([[10.0 * i, 0.0, 10.0 * i + 8, 8.0] for i in range(150)])
    scores = np.linspace(1.0, 0.5, 150)
    capped = detection_metrics([boxes], [(boxes, scores)])
    full = detection_metrics([boxes], [(boxes, scores)], max_detections=200)
    assert capped["ap50"] < 0.8
    assert full["ap50"] == pytest.approx(1.0)


def test_detector_evaluation_takes_its_cap_from_the_profile(train_profile):
    from training.core.config import TrainConfig, resolve_settings
    from training.core.engine import DetectionEngine

    settings = resolve_settings(TrainConfig(stage="detector", profile=train_profile, epochs=1))
    engine = DetectionEngine()
    assert engine.evaluation_options(settings)["max_detections"] == train_profile.detector.max_detections
    _, config = engine.checkpoint_meta(settings)
    assert config["max_detections"] == train_profile.detector.max_detections
