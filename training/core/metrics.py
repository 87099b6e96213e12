"""Evaluation metrics of the three stages (issue 6 "Evaluation"): scikit-learn and pycocotools do the work.

Every function returns a JSON-able dict (plain floats and ints; NaN becomes None). Only the expected
calibration error is computed here, as a small numpy function, because scikit-learn has none.
"""

from __future__ import annotations

import contextlib
import io
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn import metrics as skm

from annotations.taxonomy import CLASS_NAMES


def _f(value: Any) -> float | None:
    """A plain float, or None for NaN/inf/None (JSON has no NaN)."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def expected_calibration_error(confidences: Any, correct: Any, *, n_bins: int = 15) -> float:
    """ECE with equal-width confidence bins: sum over bins of |accuracy - mean confidence| * bin share.

    Bins are (k/n, (k+1)/n], the first one also holding confidence 0. Empty input gives 0.
    """
    conf = np.asarray(confidences, dtype=np.float64).ravel()
    hit = np.asarray(correct, dtype=np.float64).ravel()
    if conf.shape != hit.shape:
        raise ValueError(f"{conf.shape[0]} confidences but {hit.shape[0]} correctness values")
    if conf.size == 0:
        return 0.0
    if np.any((conf < 0) | (conf > 1)):
        raise ValueError("confidences must lie in [0, 1]")
    bins = np.clip(np.ceil(conf * n_bins).astype(int) - 1, 0, n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        mask = bins == b
        if mask.any():
            ece += mask.mean() * abs(hit[mask].mean() - conf[mask].mean())
    return float(ece)


def _safe(fn: Any, *args: Any, **kwargs: Any) -> float | None:
    """A scikit-learn score, or None where it is undefined (e.g. AUC with one class present)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _f(fn(*args, **kwargs))
    except ValueError:
        return None


def binary_metrics(y_true: Any, p_positive: Any, *, threshold: float = 0.5) -> dict[str, Any]:
    """Countability metrics (positive = countable): accuracy, balanced_accuracy, precision, recall, f1,
    uncountable_f1 (F1 of the minority class), roc_auc, ece, support."""
    y = np.asarray(y_true, dtype=int).ravel()
    p = np.asarray(p_positive, dtype=np.float64).ravel()
    if y.shape != p.shape:
        raise ValueError(f"{y.shape[0]} labels but {p.shape[0]} probabilities")
    if y.size == 0:
        keys = ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "uncountable_f1", "roc_auc", "ece")
        return dict.fromkeys(keys) | {"support": 0}
    pred = (p >= threshold).astype(int)
    confidence = np.where(pred == 1, p, 1 - p)
    return {
        "accuracy": _f(skm.accuracy_score(y, pred)),
        # Mean recall of the two classes; with one class present, that class's recall.
        "balanced_accuracy": _f(np.mean([np.mean(pred[y == c] == c) for c in np.unique(y)])),
        "precision": _f(skm.precision_score(y, pred, zero_division=0)),
        "recall": _f(skm.recall_score(y, pred, zero_division=0)),
        "f1": _f(skm.f1_score(y, pred, zero_division=0)),
        "uncountable_f1": _f(skm.f1_score(y, pred, pos_label=0, zero_division=0)),
        "roc_auc": _safe(skm.roc_auc_score, y, p) if len(np.unique(y)) == 2 else None,
        "ece": expected_calibration_error(confidence, pred == y),
        "support": int(y.size),
    }


def multiclass_metrics(y_true: Any, probabilities: Any, *, class_names: Sequence[str] = CLASS_NAMES) -> dict[str, Any]:
    """Cell-class metrics over the taxonomy (probabilities (N, C), columns = class ids).

    Macro averages run over the classes present in `y_true` (support > 0), as do the per-class rows; the
    confusion matrix covers the classes present in the truth or the predictions.
    """
    y = np.asarray(y_true, dtype=int).ravel()
    probs = np.asarray(probabilities, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[0] != y.size:
        raise ValueError(f"probabilities must be (N={y.size}, C), got {probs.shape}")
    num_classes = probs.shape[1]
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"labels must lie in 0..{num_classes - 1}")
    if y.size == 0:
        keys = ("accuracy", "macro_f1", "macro_precision", "macro_recall", "ece")
        return {k: None for k in keys} | {"per_class": {}, "confusion_matrix": {"labels": [], "matrix": []}}
    pred = probs.argmax(axis=1)
    present = sorted(int(c) for c in np.unique(y))
    precision, recall, f1, support = skm.precision_recall_fscore_support(y, pred, labels=present, zero_division=0)
    per_class: dict[str, Any] = {}
    for i, class_id in enumerate(present):
        positive = (y == class_id).astype(int)
        scores = probs[:, class_id]
        both = 0 < positive.sum() < positive.size
        per_class[str(class_id)] = {
            "name": class_names[class_id] if class_id < len(class_names) else str(class_id),
            "precision": _f(precision[i]),
            "recall": _f(recall[i]),
            "f1": _f(f1[i]),
            "ap": _safe(skm.average_precision_score, positive, scores),
            "auc": _safe(skm.roc_auc_score, positive, scores) if both else None,
            "support": int(support[i]),
        }
    labels = sorted(set(present) | {int(c) for c in np.unique(pred)})
    matrix = skm.confusion_matrix(y, pred, labels=labels)
    return {
        "accuracy": _f(skm.accuracy_score(y, pred)),
        "macro_f1": _f(skm.f1_score(y, pred, labels=present, average="macro", zero_division=0)),
        "macro_precision": _f(skm.precision_score(y, pred, labels=present, average="macro", zero_division=0)),
        "macro_recall": _f(skm.recall_score(y, pred, labels=present, average="macro", zero_division=0)),
        "ece": expected_calibration_error(probs.max(axis=1), pred == y),
        "per_class": per_class,
        "confusion_matrix": {"labels": labels, "matrix": matrix.tolist()},
    }


@dataclass(frozen=True)
class DetectionCurve:
    """Precision at the 101 COCO recall points for IoU 0.5 (for the PR plot); -1 = undefined."""

    recall: np.ndarray
    precision: np.ndarray


def detection_metrics(
    truths: Sequence[Any],
    predictions: Sequence[tuple[Any, Any]],
    *,
    with_curve: bool = False,
    max_detections: int = 100,
) -> dict[str, Any]:
    """AP@0.5 and AP@[.5:.95] with pycocotools' COCOeval (one class, boxes x0, y0, x1, y1 in pixels).

    `max_detections` is the profile's detector.max_detections: predictions are expected capped at it already, and
    COCOeval keeps up to max(100, max_detections) (its default 100 would cut a crowded field's recall below what
    the pipeline keeps).

    truths[i]: (K, 4) boxes of image i; predictions[i]: ((M, 4) boxes, (M,) scores). With `with_curve` the
    result also holds "_curve" (a DetectionCurve; pop it before storing the dict as JSON).
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if len(truths) != len(predictions):
        raise ValueError(f"{len(truths)} images of truth but {len(predictions)} of predictions")
    images, annotations, results = [], [], []
    num_boxes = 0
    for image_id, (gt, (boxes, scores)) in enumerate(zip(truths, predictions, strict=True), start=1):
        images.append({"id": image_id})
        for x0, y0, x1, y1 in np.asarray(gt, dtype=np.float64).reshape(-1, 4).tolist():
            num_boxes += 1
            w, h = x1 - x0, y1 - y0
            annotations.append(
                {
                    "id": num_boxes,
                    "image_id": image_id,
                    "category_id": 1,
                    "bbox": [x0, y0, w, h],
                    "area": w * h,
                    "iscrowd": 0,
                }
            )
        pred = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        for (x0, y0, x1, y1), score in zip(pred.tolist(), np.asarray(scores).ravel().tolist(), strict=True):
            results.append(
                {"image_id": image_id, "category_id": 1, "bbox": [x0, y0, x1 - x0, y1 - y0], "score": float(score)}
            )
    out: dict[str, Any] = {"ap50": None, "ap50_95": None, "num_images": len(images), "num_boxes": num_boxes}
    if not num_boxes:
        return out
    if not results:
        out.update(ap50=0.0, ap50_95=0.0)
        return out
    gt_api = COCO()
    gt_api.dataset = {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "cell"}]}
    with contextlib.redirect_stdout(io.StringIO()):
        gt_api.createIndex()
        dt_api = gt_api.loadRes(results)
        evaluator = COCOeval(gt_api, dt_api, iouType="bbox")
        # Never below COCO's (1, 10, 100): the caller already keeps at most its cap per image (predict_detector).
        evaluator.params.maxDets = [1, 10, max(100, int(max_detections))]
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    # stats[0] = AP@[.5:.95], stats[1] = AP@0.5 (area all, maxDets[2]); -1 means undefined.
    out["ap50_95"] = _f(evaluator.stats[0]) if evaluator.stats[0] >= 0 else None
    out["ap50"] = _f(evaluator.stats[1]) if evaluator.stats[1] >= 0 else None
    if with_curve:
        # precision[T, R, K, A, M]: IoU 0.5 is T=0, area "all" A=0, maxDets[2] is M=-1.
        out["_curve"] = DetectionCurve(
            recall=evaluator.params.recThrs.copy(), precision=evaluator.eval["precision"][0, :, 0, 0, -1].copy()
        )
    return out


__all__ = [
    "DetectionCurve",
    "binary_metrics",
    "detection_metrics",
    "expected_calibration_error",
    "multiclass_metrics",
]
