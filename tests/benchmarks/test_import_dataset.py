"""The import benchmark's generated dataset: what it measures must be a clean import (the figures come from running
`python -m benchmarks.import_dataset`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from annotations.interchange.archive import DirectoryDataset
from annotations.interchange.dataset_import import ImportOptions, dataset_import
from benchmarks.import_dataset import write_dataset
from tests.factories import CaseFactory


@pytest.mark.django_db
def test_the_generated_dataset_imports_every_box_without_a_note(tmp_path: Path) -> None:
    boxes = write_dataset(tmp_path / "data", fields=3, boxes_per_field=150, size=(320, 240))
    document = json.loads((tmp_path / "data" / "annotations" / "instances_train.json").read_text())
    assert boxes == len(document["annotations"]) == 450
    report = dataset_import(
        DirectoryDataset(tmp_path / "data"), ImportOptions(format="coco", case=CaseFactory()), actor=None
    )
    assert (report.fields, report.cells, report.clamped_boxes, report.notes()) == (3, 450, 0, [])
