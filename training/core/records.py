"""Training records: what a training run sees of a field (pure dataclasses, no torch, no Django).

The platform builds these from consensus annotations (and imported truth sets); the torch library in
`training/core` trains on them. A list of FieldRecords written with `fields_to_jsonl` is the dataset snapshot
of a run: which fields, which cells, which split.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from annotations.splits import SPLITS


@dataclass(frozen=True)
class CellRecord:
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in image pixels
    countable: bool
    class_index: int | None  # taxonomy id 0..20 (annotations/taxonomy.py); None = unknown

    def to_json(self) -> dict[str, Any]:
        return {"box": list(self.box), "countable": self.countable, "class_index": self.class_index}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CellRecord:
        box = data["box"]
        if len(box) != 4:
            raise ValueError(f"cell box must have 4 numbers, got {box!r}")
        class_index = data.get("class_index")
        return cls(
            box=(float(box[0]), float(box[1]), float(box[2]), float(box[3])),
            countable=bool(data["countable"]),
            class_index=None if class_index is None else int(class_index),
        )


@dataclass(frozen=True)
class FieldRecord:
    key: str  # stable id, e.g. "field:123"
    image_path: str  # absolute local path of the image file
    width: int
    height: int
    patient: str  # pseudonymous patient code: the split unit
    split: str  # one of SPLITS
    cells: tuple[CellRecord, ...]
    # True: every white cell of the field is in `cells` (field-level truth; detector training). False: only the
    # cells decided one by one in the review queue (cell-level truth; countability and class training only).
    whole_field: bool = True

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise ValueError(f"field {self.key}: split must be one of {SPLITS}, got {self.split!r}")

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "image_path": self.image_path,
            "width": self.width,
            "height": self.height,
            "patient": self.patient,
            "split": self.split,
            "cells": [c.to_json() for c in self.cells],
            "whole_field": self.whole_field,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FieldRecord:
        return cls(
            key=str(data["key"]),
            image_path=str(data["image_path"]),
            width=int(data["width"]),
            height=int(data["height"]),
            patient=str(data["patient"]),
            split=str(data["split"]),
            cells=tuple(CellRecord.from_json(c) for c in data.get("cells", [])),
            whole_field=bool(data.get("whole_field", True)),
        )


def whole_fields(fields: Sequence[FieldRecord]) -> list[FieldRecord]:
    """The fields whose every white cell is known (field-level truth): what a detector learns from."""
    return [field for field in fields if field.whole_field]


@dataclass(frozen=True)
class CropItem:
    """One cell as a crop classifier's example: which field (index into the run's field list), where, which label."""

    field: int
    box: tuple[float, float, float, float]
    label: int


def countability_items(fields: Sequence[FieldRecord]) -> list[CropItem]:
    """Every cell, labelled 1 = countable, 0 = uncountable (inference.core.stages.COUNTABILITY_CLASSES order)."""
    return [CropItem(i, cell.box, int(cell.countable)) for i, field in enumerate(fields) for cell in field.cells]


def classifier_items(fields: Sequence[FieldRecord], num_classes: int) -> list[CropItem]:
    """Countable cells with a known class (class_index not None), labelled with the taxonomy id.

    An uncountable cell (crushed, smudged, a naked nucleus) never reaches the classifier at inference (the
    countability stage sets it aside) and its class, when an annotator gave one, is a guess from a damaged cell:
    it neither trains nor measures the classifier (issue 15).
    """
    items = []
    for i, field in enumerate(fields):
        for cell in field.cells:
            if cell.class_index is None or not cell.countable:
                continue
            if not 0 <= cell.class_index < num_classes:
                raise ValueError(f"field {field.key}: class_index {cell.class_index} is outside 0..{num_classes - 1}")
            items.append(CropItem(i, cell.box, cell.class_index))
    return items


def fields_to_jsonl(fields: Iterable[FieldRecord], path: str | Path) -> None:
    """Write the snapshot file: one JSON object per field, one line each."""
    with Path(path).open("w", encoding="utf-8") as fh:
        for field in fields:
            fh.write(json.dumps(field.to_json(), separators=(",", ":")) + "\n")


def fields_from_jsonl(path: str | Path) -> list[FieldRecord]:
    """Read a snapshot file written by `fields_to_jsonl`."""
    out: list[FieldRecord] = []
    with Path(path).open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                out.append(FieldRecord.from_json(json.loads(line)))
    return out
