"""PNG figures of an evaluation (matplotlib, Agg backend, no display): confusion matrix, PR curves,
learning curve. Each function writes one file and returns its path."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import precision_recall_curve


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def confusion_matrix_png(
    labels: Sequence[int], matrix: Sequence[Sequence[int]], names: Sequence[str], path: Path, *, title: str = ""
) -> Path:
    """Row-normalised confusion matrix (truth rows, prediction columns), counts written in the cells."""
    counts = np.asarray(matrix, dtype=float).reshape(len(labels), len(labels))
    rows = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    side = max(4.0, 0.45 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(side + 1, side))
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ticks = [f"{names[i]} ({i})" if i < len(names) else str(i) for i in labels]
    ax.set_xticks(range(len(labels)), ticks, rotation=90, fontsize=7)
    ax.set_yticks(range(len(labels)), ticks, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("truth")
    for r in range(len(labels)):
        for c in range(len(labels)):
            if counts[r, c]:
                colour = "white" if share[r, c] > 0.5 else "black"
                ax.text(c, r, str(int(counts[r, c])), ha="center", va="center", fontsize=6, color=colour)
    fig.colorbar(image, ax=ax, fraction=0.046, label="share of the truth row")
    ax.set_title(title or "confusion matrix")
    return _save(fig, path)


def pr_curves_png(
    y_true: Any, scores: Any, class_ids: Sequence[int], names: Sequence[str], path: Path, *, title: str = ""
) -> Path:
    """One-vs-rest precision-recall curves, one per class id (scores[:, class_id] against y_true == class_id)."""
    y = np.asarray(y_true).ravel()
    s = np.asarray(scores, dtype=float)
    fig, ax = plt.subplots(figsize=(6, 5))
    for class_id in class_ids:
        positive = y == class_id
        if not positive.any():
            continue
        precision, recall, _ = precision_recall_curve(positive.astype(int), s[:, class_id])
        label = names[class_id] if class_id < len(names) else str(class_id)
        ax.plot(recall, precision, label=f"{label} (n={int(positive.sum())})")
    _pr_axes(ax, title or "precision-recall (one vs rest)")
    return _save(fig, path)


def detection_pr_png(recall: Any, precision: Any, path: Path, *, title: str = "") -> Path:
    """The COCO precision-recall curve at IoU 0.5 (precision -1 = unreachable recall, drawn as 0)."""
    fig, ax = plt.subplots(figsize=(6, 5))
    ax.plot(np.asarray(recall), np.clip(np.asarray(precision, dtype=float), 0, None), label="cell, IoU 0.5")
    _pr_axes(ax, title or "detector precision-recall")
    return _save(fig, path)


def _pr_axes(ax: Any, title: str) -> None:
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="lower left")
    ax.set_title(title)


def learning_curve_png(history: Sequence[Mapping[str, Any]], path: Path, *, metric: str, title: str = "") -> Path:
    """Train loss and the validation main metric per epoch, one line per ensemble member."""
    fig, (loss_ax, metric_ax) = plt.subplots(1, 2, figsize=(10, 4))
    members = sorted({row.get("member") for row in history}, key=lambda m: -1 if m is None else m)
    for member in members:
        rows = [row for row in history if row.get("member") == member]
        epochs = [row["epoch"] for row in rows]
        suffix = "" if member is None else f" member {member}"
        loss_ax.plot(epochs, [row.get("train_loss") for row in rows], marker=".", label=f"train loss{suffix}")
        values = [row.get(f"val_{metric}") for row in rows]
        if any(v is not None for v in values):
            plotted = [np.nan if v is None else v for v in values]
            metric_ax.plot(epochs, plotted, marker=".", label=f"val {metric}{suffix}")
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("loss")
    metric_ax.set_xlabel("epoch")
    metric_ax.set_ylabel(metric)
    for ax in (loss_ax, metric_ax):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.suptitle(title or "learning curve")
    return _save(fig, path)
