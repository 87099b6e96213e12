"""Round trips that lose nothing: COCO -> import -> export A -> import -> export B -> import -> export COCO keeps
every box (to the pixel), class, countability and split, for every pair (A, B) of export formats; pycocotools loads
the final COCO export, and the licence of the imported dataset travels with it."""

from __future__ import annotations

import io
import itertools
from pathlib import Path
from typing import Any

import pytest
from pycocotools.coco import COCO

from annotations.interchange.archive import DirectoryDataset, ZipDataset
from annotations.interchange.dataset_import import ImportOptions, dataset_import
from annotations.interchange.export_selection import ExportRequest
from annotations.interchange.formats import EXPORT_FORMATS
from annotations.interchange.jobs import archive_limits, export_to_file
from annotations.models import Cell, Field
from tests.annotations.interchange.builders import write_coco, zip_entries
from tests.factories import CaseFactory, image_bytes

pytestmark = pytest.mark.django_db

CATEGORIES = [
    {"id": 1, "name": "myeloblast"},
    {"id": 6, "name": "neutrophilic segmented"},
    {"id": 22, "name": "uncountable"},
    {"id": 23, "name": "unclassified"},
]


def _source(root: Path) -> Path:
    """Three 64x48 images: classes, an uncountable and an unclassified cell, boxes on every edge, sub-pixel values."""
    files = {f"f{i}.jpg": image_bytes(64, 48, seed=1200 + i) for i in range(3)}
    images = [{"id": i + 1, "file_name": name, "width": 64, "height": 48} for i, name in enumerate(files)]
    boxes = [
        (1, 1, [1.5, 2.25, 20.125, 10.0]),
        (1, 6, [0.0, 0.0, 64.0, 48.0]),
        (2, 22, [30.0, 20.0, 34.0, 28.0]),
        (2, 23, [0.1, 47.0, 3.3, 1.0]),
        (2, 6, [10.0, 10.0, 5.0, 5.0]),
    ]
    annotations = [
        {"id": n, "image_id": image, "category_id": category, "bbox": bbox}
        for n, (image, category, bbox) in enumerate(boxes)
    ]
    root = write_coco(root, images, annotations, files, categories=CATEGORIES)
    (root / "LICENSE").write_text("CC BY 4.0\n")
    return root


def _state() -> set[tuple[Any, ...]]:
    """Every stored box by image content, with its patient's split (compares across imports)."""
    rows = Cell.objects.values_list(
        "annotation_set__field__sha256",
        "annotation_set__field__smear__case__patient__split",
        "x",
        "y",
        "width",
        "height",
        "countable",
        "cell_class_id",
    )
    return {(sha, split, *(round(v, 6) for v in (x, y, w, h)), c, k) for sha, split, x, y, w, h, c, k in rows}


def _export(fmt: str) -> bytes:
    out = io.BytesIO()
    export_to_file(ExportRequest(format=fmt), out)
    return out.getvalue()


def _reimport(fmt: str, data: bytes) -> None:
    """Import an export after removing the fields it came from (an image already stored would be skipped)."""
    Field.objects.all().delete()
    files = ZipDataset(io.BytesIO(data), archive_limits())
    options = ImportOptions(format=fmt, case=None, split_from_dataset=True, patient_per_image=True, source_name="RT")
    report = dataset_import(files, options, actor=None)
    assert report.duplicates == []


@pytest.mark.parametrize(("first", "second"), list(itertools.product(EXPORT_FORMATS, repeat=2)))
def test_every_pair_of_formats_keeps_boxes_classes_countability_and_splits(
    tmp_path: Path, first: str, second: str
) -> None:
    dataset_import(
        DirectoryDataset(_source(tmp_path)), ImportOptions(format="coco", case=CaseFactory(), source_name="RT"),
        actor=None,
    )  # fmt: skip
    _export("coco")  # gives the case's patient its split
    original = _state()
    assert len(original) == 5
    for fmt in (first, second):
        _reimport(fmt, _export(fmt))
        assert _state() == original, fmt
    final = zip_entries(_export("coco"))
    [(_name, document)] = [(n, d) for n, d in final.items() if n.startswith("annotations/")]
    path = tmp_path / "final.json"
    path.write_bytes(document)
    coco = COCO(str(path))
    assert len(coco.getAnnIds()) == 5
    assert len(coco.getImgIds()) == 3
    boxes = {(ann["category_id"], *(round(v, 6) for v in ann["bbox"])) for ann in coco.loadAnns(coco.getAnnIds())}
    assert boxes == {
        (1, 1.5, 2.25, 20.125, 10.0),
        (6, 0.0, 0.0, 64.0, 48.0),
        (22, 30.0, 20.0, 34.0, 28.0),
        (23, 0.1, 47.0, 3.3, 1.0),
        (6, 10.0, 10.0, 5.0, 5.0),
    }
    assert coco.dataset["licenses"] == [{"id": 1, "name": "CC BY 4.0", "url": ""}]
    assert coco.dataset["info"]["datasets"][0]["license"] == "CC BY 4.0"
