"""Load an unpacked AI-cell COCO export with Datumaro as a researcher would, then export it to Ultralytics YOLO and
read that back; print one JSON object with what was seen. Run with a Python that has Datumaro (it may live in a
venv of its own: this script imports nothing of the platform).

    python datumaro_roundtrip.py EXPORT_DIR OUT_DIR
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _boxes(dataset: Any, label_names: list[str]) -> list[list[Any]]:
    from datumaro.components.annotation import AnnotationType

    rows = []
    for item in dataset:
        for annotation in item.annotations:
            if annotation.type == AnnotationType.bbox:
                x, y, w, h = annotation.get_bbox()
                rows.append([item.subset, item.id, label_names[annotation.label], x, y, w, h])
    return sorted(rows)


def _label_names(dataset: Any) -> list[str]:
    from datumaro.components.annotation import AnnotationType

    return [label.name for label in dataset.categories()[AnnotationType.label]]


def main(export_dir: str, out_dir: str) -> dict[str, Any]:
    from datumaro.components.annotation import AnnotationType
    from datumaro.components.dataset import Dataset
    from datumaro.components.environment import Environment

    collected = _Collect()
    logging.getLogger().addHandler(collected)
    detected = Environment().detect_dataset(export_dir)
    dataset = Dataset.import_from(export_dir, "coco_instances")
    names = _label_names(dataset)
    attributes = [
        annotation.attributes
        for item in dataset
        for annotation in item.annotations
        if annotation.type == AnnotationType.bbox
    ]
    dataset.export(out_dir, "yolo_ultralytics", save_media=True)
    again = Dataset.import_from(out_dir, "yolo")  # its importer reads the Ultralytics layout
    return {
        "detected": detected,
        "warnings": collected.messages,
        "subsets": sorted(dataset.subsets()),
        "items": len(dataset),
        "missing_media": sum(1 for item in dataset if not Path(item.media.path).is_file()),
        "categories": len(names),
        "boxes": _boxes(dataset, names),
        "yolo_boxes": _boxes(again, _label_names(again)),
        "attributes": attributes,
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2]), default=str))
