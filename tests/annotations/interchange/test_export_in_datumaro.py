"""Our COCO export as Datumaro reads it: detected as COCO instances, no warning, our per-box fields kept as
attributes, and an Ultralytics YOLO export of it changes no box.

Datumaro pins versions this project's environment must not change (Pillow), so it may live in a venv of its own:
DATUMARO_PYTHON names that venv's python (e.g. a `python -m venv` with `pip install datumaro`); without it, the
test runs when this environment can import datumaro, and is skipped (an optional check) otherwise.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from annotations.interchange.coco_export import coco_export_write
from annotations.interchange.coco_format import CATEGORIES
from annotations.interchange.export_selection import ExportRequest, export_plan
from annotations.models import AnnotationKind, AnnotationStatus, ReviewOutcome
from tests.factories import AnnotationSetFactory, CaseFactory, CellFactory, FieldFactory, PatientFactory, SmearFactory

pytestmark = [pytest.mark.django_db, pytest.mark.datumaro]

SCRIPT = Path(__file__).with_name("datumaro_roundtrip.py")
BOX_FIELDS = ("source", "review_state", "review_outcome", "annotators_agreed", "countable", "cell_class")


def datumaro_python() -> str | None:
    configured = os.environ.get("DATUMARO_PYTHON")
    if configured:
        return configured
    return sys.executable if importlib.util.find_spec("datumaro") is not None else None


def _truth_field(split: str, seed: int, boxes: list[dict[str, Any]]) -> None:
    smear = SmearFactory(case=CaseFactory(patient=PatientFactory(split=split)))
    field = FieldFactory(smear=smear, seed=seed, width=320, height=240)
    truth = AnnotationSetFactory(
        field=field, kind=AnnotationKind.CONSENSUS, annotator=None, status=AnnotationStatus.LOCKED
    )
    for box in boxes:
        CellFactory(annotation_set=truth, **box)


def test_datumaro_reads_the_export_without_warnings_and_yolo_keeps_every_box(tmp_path: Path) -> None:
    python = datumaro_python()
    if python is None:
        pytest.skip("Datumaro is not installed here and DATUMARO_PYTHON names no Python that has it (optional check)")
    agreed = {"review_outcome": ReviewOutcome.AGREED}
    _truth_field("train", 1, [
        {"x": 10.5, "y": 12.25, "width": 40.0, "height": 30.0, "cell_class_id": 11, **agreed},
        {"x": 200.0, "y": 100.0, "width": 50.5, "height": 60.0, "cell_class_id": None},
        {"x": 0.0, "y": 0.0, "width": 320.0, "height": 240.0, "countable": False, "cell_class_id": 4},
    ])  # fmt: skip
    _truth_field("val", 2, [{"x": 5.0, "y": 6.0, "width": 70.0, "height": 70.0, "cell_class_id": 0}])
    _truth_field("test", 3, [{"x": 100.0, "y": 50.0, "width": 33.3, "height": 44.4, "cell_class_id": 20, **agreed}])
    buffer = io.BytesIO()
    coco_export_write(export_plan(ExportRequest()), buffer)
    export_dir = tmp_path / "export"
    with zipfile.ZipFile(buffer) as archive:
        archive.extractall(export_dir)
        ours = {
            name.split("_")[-1].removesuffix(".json"): json.loads(archive.read(name))
            for name in archive.namelist()
            if name.startswith("annotations/")
        }
    done = subprocess.run(
        [python, str(SCRIPT), str(export_dir), str(tmp_path / "yolo")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["detected"] == ["coco_instances"]
    assert seen["warnings"] == []  # no "Missing annotation field 'segmentation'" per box
    assert (seen["subsets"], seen["items"], seen["missing_media"]) == (["test", "train", "val"], 3, 0)
    assert seen["categories"] == len(CATEGORIES)
    names = {category["id"]: category["name"] for category in CATEGORIES}
    expected = sorted(
        [split, f"{a['image_id']:08d}", names[a["category_id"]], *a["bbox"]]
        for split, document in ours.items()
        for a in document["annotations"]
    )
    assert len(seen["boxes"]) == len(expected)
    for got, want in zip(seen["boxes"], expected, strict=True):
        assert got[:3] == want[:3]
        assert got[3:] == pytest.approx(want[3:])
    # Ultralytics YOLO through Datumaro: the same boxes (normalised coordinates, so equal to a thousandth of a pixel).
    assert len(seen["yolo_boxes"]) == len(expected)
    for got, want in zip(seen["yolo_boxes"], expected, strict=True):
        assert got[:3] == want[:3]
        assert got[3:] == pytest.approx(want[3:], abs=1e-3)
    exported = [a for document in ours.values() for a in document["annotations"]]
    kept = sorted(json.dumps({key: a[key] for key in BOX_FIELDS}, sort_keys=True) for a in seen["attributes"])
    assert kept == sorted(json.dumps({key: a[key] for key in BOX_FIELDS}, sort_keys=True) for a in exported)
