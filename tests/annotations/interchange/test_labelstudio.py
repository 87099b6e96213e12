"""Label Studio JSON: import (percent boxes, Label Studio's image references, one annotation per task), export read
back to the pixel, hostile input refused with nothing written."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from annotations.interchange.archive import DirectoryDataset
from annotations.interchange.dataset_import import DatasetRefused, ImportOptions, dataset_import
from annotations.interchange.export_selection import ExportRequest
from annotations.interchange.jobs import export_to_file, image_folder_open
from annotations.interchange.label_map import label_map_parse
from annotations.models import Cell, Field
from tests.annotations.interchange.builders import zip_entries
from tests.factories import CaseFactory, image_bytes

pytestmark = pytest.mark.django_db

MAP = label_map_parse({"name": "ls-lab", "labels": {"blast": "myeloblast", "junk": "uncountable", "rbc": "ignore"}})


def rect(label: str, x: float, y: float, w: float, h: float, **extra: Any) -> dict[str, Any]:
    value = {"x": x, "y": y, "width": w, "height": h, "rotation": extra.pop("rotation", 0), "rectanglelabels": [label]}
    return {"type": "rectanglelabels", "from_name": "label", "to_name": "image", "original_width": 64,
            "original_height": 48, "value": value, **extra}  # fmt: skip


def write_ls(root: Path, tasks: list[dict[str, Any]]) -> Path:
    (root / "media").mkdir(parents=True, exist_ok=True)
    for i in range(2):
        (root / "media" / f"img{i}.jpg").write_bytes(image_bytes(64, 48, seed=1100 + i))
    (root / "export.json").write_text(json.dumps(tasks))
    return root


def task(image: str, results: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"id": 1, "data": {"image": image}, "annotations": [{"result": results}], **extra}


TASKS = [
    task(
        "/data/upload/3/0a1b2c3d-img0.jpg",
        [
            rect("blast", 25, 25, 50, 50),
            rect("junk", 0, 0, 100, 100, meta={"cell_class": 12}),
            rect("rbc", 1, 1, 2, 2),
            {"type": "choices", "value": {"choices": ["ok"]}},
        ],
    ),
    task("media/img1.jpg", []),
]


def _import(root: Path, **options: Any) -> Any:
    options.setdefault("label_map", MAP)
    if "case" not in options:
        options["case"] = CaseFactory()
    return dataset_import(DirectoryDataset(root), ImportOptions(format="labelstudio", **options), actor=None)


def test_label_studio_tasks_import_with_percent_boxes_and_upload_references(tmp_path: Path) -> None:
    root = write_ls(tmp_path, TASKS)
    report = _import(root, images=image_folder_open(root / "media"))
    assert (report.fields, report.cells, report.ignored_boxes) == (2, 2, {"rbc": 1})
    assert set(Cell.objects.values_list("x", "y", "width", "height", "countable", "cell_class_id")) == {
        (16.0, 12.0, 32.0, 24.0, True, 0),
        (0.0, 0.0, 64.0, 48.0, False, 12),
    }
    assert [w.kind for w in report.warnings] == ["result other than a rectangle; skipped"]


@pytest.mark.parametrize(
    ("tasks", "kind"),
    [
        ([task("media/img0.jpg", [rect("blast", 1, 1, 5, 5, rotation=45)])],
         "rotated box (cells are axis-aligned boxes)"),
        ([task("media/img0.jpg", [rect("neutro", 1, 1, 5, 5)])], "label 'neutro' is not in the label map"),
        ([{"data": {"image": "media/img0.jpg"}, "annotations": [{"result": []}, {"result": []}]}],
         "task with more than one annotation"),
        ([task("/data/upload/3/0a1b2c3d-img0.jpg", [])],
         "image named by an absolute path, a URL or '..' (give the image folder, --images, to find it by name)"),
        ([task("media/img0.jpg", [rect("blast", 90, 1, 20, 5)])], "box outside its image by 1 px or more"),
        ([task("media/img0.jpg", [{**rect("blast", 1, 1, 5, 5), "original_width": 640}])],
         "declared image size differs from the image file"),
    ],
)  # fmt: skip
def test_problems_are_listed_by_file_and_nothing_is_written(tmp_path: Path, tasks: Any, kind: str) -> None:
    with pytest.raises(DatasetRefused) as caught:
        _import(write_ls(tmp_path, tasks))
    assert [(p.file, p.kind) for _, p in caught.value.report_rows] == [("export.json", kind)]
    assert Field.objects.count() == 0


def test_the_export_reads_back_to_the_pixel(tmp_path: Path) -> None:
    root = write_ls(tmp_path / "in", TASKS)
    case = CaseFactory()
    _import(root, case=case, images=image_folder_open(root / "media"), source_name="ls-lab")
    out = io.BytesIO()
    export_to_file(ExportRequest(cases=(case.code,), format="labelstudio"), out)
    entries = zip_entries(out.getvalue())
    tasks = json.loads(entries["tasks.json"])
    boxes = set()
    for item in tasks:
        assert item["data"]["image"] in entries
        for result in item["annotations"][0]["result"]:
            value, w, h = result["value"], result["original_width"], result["original_height"]
            box = (value["x"] * w / 100, value["y"] * h / 100, value["width"] * w / 100, value["height"] * h / 100)
            boxes.add((value["rectanglelabels"][0], *(round(v, 9) for v in box), result["meta"]["cell_class"]))
    assert boxes == {("myeloblast", 16.0, 12.0, 32.0, 24.0, 0), ("uncountable", 0.0, 0.0, 64.0, 48.0, 12)}
    assert "RectangleLabels" in entries["labelling_config.xml"].decode()
