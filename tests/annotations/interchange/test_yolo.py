"""YOLO (Ultralytics layout): import with splits from the folders, export read back by a faithful label reader,
round trips through the platform, and hostile input refused with nothing written."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from annotations.interchange.archive import DirectoryDataset, UnsafeArchive, ZipDataset
from annotations.interchange.dataset_import import DatasetRefused, ImportOptions, dataset_import
from annotations.interchange.export_common import CATEGORY_NAMES
from annotations.interchange.export_selection import ExportRequest
from annotations.interchange.jobs import archive_limits, export_to_file
from annotations.interchange.label_map import label_map_parse
from annotations.models import Cell, Field, Patient
from tests.annotations.interchange.builders import zip_entries
from tests.factories import CaseFactory, image_bytes

pytestmark = pytest.mark.django_db

LABEL_MAP = {"name": "lab", "labels": {"blast": "myeloblast", "junk": "uncountable", "rbc": "ignore"}}


def write_yolo(root: Path, splits: dict[str, dict[str, list[str]]], *, names: Any = None) -> Path:
    """An Ultralytics folder: data.yaml, images/<split>/<stem>.jpg (64x48) and labels/<split>/<stem>.txt."""
    seed = 0
    for split, images in splits.items():
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for stem, lines in images.items():
            seed += 1
            (root / "images" / split / f"{stem}.jpg").write_bytes(image_bytes(64, 48, seed=500 + seed))
            (root / "labels" / split / f"{stem}.txt").write_text("".join(f"{line}\n" for line in lines))
    document = {"path": ".", "train": "images/train", "val": "images/val", "names": names or ["blast", "junk", "rbc"]}
    (root / "data.yaml").write_text(yaml.safe_dump(document))
    return root


def read_yolo_labels(entries: dict[str, bytes]) -> dict[str, list[tuple[str, float, float, float, float]]]:
    """A faithful YOLO reader (as Ultralytics reads labels): image path -> (class name, x, y, w, h) in pixels."""
    from PIL import Image

    names = yaml.safe_load(entries["data.yaml"])["names"]
    out: dict[str, list[tuple[str, float, float, float, float]]] = {}
    for name, data in entries.items():
        if not name.startswith("images/"):
            continue
        width, height = Image.open(io.BytesIO(data)).size
        label = "labels/" + name[len("images/") :].rsplit(".", 1)[0] + ".txt"
        boxes = []
        for line in entries[label].decode().splitlines():
            index, cx, cy, w, h = line.split()
            bw, bh = float(w) * width, float(h) * height
            boxes.append((names[int(index)], float(cx) * width - bw / 2, float(cy) * height - bh / 2, bw, bh))
        out[name] = boxes
    return out


def _import(files: Any, **options: Any) -> Any:
    if "case" not in options:
        options["case"] = CaseFactory()
    return dataset_import(files, ImportOptions(format="yolo", **options), actor=None)


def _cells(**filters: Any) -> set[tuple[str, float, float, float, float, bool, int | None]]:
    rows = Cell.objects.filter(**filters).values_list(
        "annotation_set__field__original_name", "x", "y", "width", "height", "countable", "cell_class_id"
    )
    return {(name, round(x, 6), round(y, 6), round(w, 6), round(h, 6), c, k) for name, x, y, w, h, c, k in rows}


def test_an_ultralytics_folder_imports_with_boxes_in_pixels_and_splits_per_patient(tmp_path: Path) -> None:
    root = write_yolo(
        tmp_path,
        {
            "train": {"a": ["0 0.5 0.5 0.25 0.5", "1 0.125 0.125 0.25 0.25", "2 0.9 0.9 0.1 0.1"], "b": []},
            "val": {"c": ["0 0.5 0.5 1 1"]},
        },
    )
    report = _import(
        DirectoryDataset(root),
        case=None,
        label_map=label_map_parse(LABEL_MAP),
        split_from_dataset=True,
        patient_per_image=True,
        patient_prefix="Y",
    )
    assert (report.fields, report.cells, report.ignored_boxes) == (3, 3, {"rbc": 1})
    assert _cells() == {
        ("a.jpg", 24.0, 12.0, 16.0, 24.0, True, 0),
        ("a.jpg", 0.0, 0.0, 16.0, 12.0, False, None),
        ("c.jpg", 0.0, 0.0, 64.0, 48.0, True, 0),
    }
    assert dict(Patient.objects.values_list("code", "split")) == {"Y-a": "train", "Y-b": "train", "Y-c": "val"}
    assert Field.objects.get(original_name="c.jpg").smear.case.code == "Y-c"
    assert report.images_per_split == {"train": 2, "val": 1}
    assert report.patients["Y-c"] == {"split": "val", "images": 1}


def test_roboflow_layout_names_as_a_mapping_and_classes_txt(tmp_path: Path) -> None:
    for split in ("train", "valid"):
        (tmp_path / split / "images").mkdir(parents=True)
        (tmp_path / split / "labels").mkdir(parents=True)
    (tmp_path / "train" / "images" / "x.png").write_bytes(image_bytes(64, 48, "PNG", seed=7))
    (tmp_path / "train" / "labels" / "x.txt").write_text("1 0.5 0.5 0.5 0.5\n")
    (tmp_path / "valid" / "images" / "y.jpg").write_bytes(image_bytes(64, 48, seed=8))
    (tmp_path / "data.yaml").write_text("names:\n  0: rbc\n  1: blast\nlicense: CC BY 4.0\nurl: https://x.test/d\n")
    report = _import(
        DirectoryDataset(tmp_path),
        label_map=label_map_parse(LABEL_MAP),
        split_from_dataset=True,
        patient_per_image=True,
    )
    assert report.fields == 2
    assert report.cells == 1
    assert report.images_per_split == {"train": 1, "val": 1}
    assert report.provenance == {"license": "CC BY 4.0", "source_url": "https://x.test/d"}
    (tmp_path / "data.yaml").unlink()
    (tmp_path / "classes.txt").write_text("rbc\nblast\n")
    Field.objects.all().delete()
    assert _import(DirectoryDataset(tmp_path), label_map=label_map_parse(LABEL_MAP)).cells == 1


def test_problems_are_listed_by_file_and_nothing_is_written(tmp_path: Path) -> None:
    root = write_yolo(
        tmp_path,
        {"train": {"a": ["7 0.5 0.5 0.1 0.1", "0 0.1 0.1 0.2 0.1 0.3 0.3 0.4", "0 x 1 2 3", "0 0.5 0.5 2 2"]}},
    )
    (root / "labels" / "train" / "orphan.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    with pytest.raises(DatasetRefused) as caught:
        _import(DirectoryDataset(root), label_map=label_map_parse(LABEL_MAP))
    kinds = {problem.kind: problem.file for _, problem in caught.value.report_rows}
    assert kinds == {
        "class 7 is not in the class names": "labels/train/a.txt",
        "label line is not 'class cx cy w h'": "labels/train/a.txt",
        "label file without its image": "labels/train/orphan.txt",
        "box outside its image by 1 px or more": "labels/train/a.txt",
    }
    assert Field.objects.count() == 0
    assert Patient.objects.count() == 1


def test_a_label_the_map_does_not_name_is_a_problem(tmp_path: Path) -> None:
    root = write_yolo(tmp_path, {"train": {"a": ["0 0.5 0.5 0.1 0.1"]}}, names=["promyelocyte?"])
    with pytest.raises(DatasetRefused) as caught:
        _import(DirectoryDataset(root))
    [error] = caught.value.errors
    assert error.field == "labels/train/a.txt"
    assert "'promyelocyte?' is not in the label map" in error.reason


@pytest.mark.parametrize(
    "document",
    [
        "a: &x [1, 2]\nb: *x\nnames: [blast]\n",  # anchors and aliases (the YAML bomb's ingredients)
        "names: !!python/object/apply:os.system ['true']\n",  # a constructor safe_load refuses
        "names: [unclosed\n",
    ],
)
def test_hostile_or_broken_yaml_is_refused(tmp_path: Path, document: str) -> None:
    root = write_yolo(tmp_path, {"train": {"a": ["0 0.5 0.5 0.1 0.1"]}})
    (root / "data.yaml").write_text(document)
    with pytest.raises(DatasetRefused) as caught:
        _import(DirectoryDataset(root), label_map=label_map_parse(LABEL_MAP))
    assert caught.value.errors[0].field == "data.yaml"
    assert Field.objects.count() == 0


def test_hostile_zips_are_refused_before_reading(tmp_path: Path) -> None:
    for name in ("../labels/train/a.txt", "/etc/passwd", "images\\..\\x.jpg"):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("data.yaml", "names: [blast]\n")
            archive.writestr(name, "0 0.5 0.5 0.1 0.1\n")
        with pytest.raises(UnsafeArchive):
            ZipDataset(io.BytesIO(buffer.getvalue()), archive_limits())
    link = zipfile.ZipInfo("labels/train/a.txt")
    link.external_attr = 0o120777 << 16
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(link, "/etc/passwd")
    with pytest.raises(UnsafeArchive):
        ZipDataset(io.BytesIO(buffer.getvalue()), archive_limits())
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("labels/train/a.txt", b"0" * (60 * 2**20))
    with pytest.raises(UnsafeArchive) as caught:
        ZipDataset(io.BytesIO(bomb.getvalue()), archive_limits())
    [problem] = caught.value.problems
    assert problem.file == "labels/train/a.txt"
    assert "zip bomb" in problem.reason or "the limit" in problem.reason


def test_the_export_reads_back_to_the_pixel_with_a_faithful_label_reader(tmp_path: Path) -> None:
    root = write_yolo(tmp_path, {"train": {"a": ["0 0.5 0.5 0.25 0.5", "1 0.3 0.3 0.2 0.2"]}, "val": {"c": []}})
    case = CaseFactory()
    _import(DirectoryDataset(root), case=case, label_map=label_map_parse(LABEL_MAP), source_name="lab")
    out = io.BytesIO()
    summary = export_to_file(ExportRequest(cases=(case.code,), format="yolo"), out)
    entries = zip_entries(out.getvalue())
    data = yaml.safe_load(entries["data.yaml"])
    assert list(data["names"].values()) == list(CATEGORY_NAMES)
    assert data["nc"] == 23
    read = read_yolo_labels(entries)
    stored = {
        (CATEGORY_NAMES[0] if countable else "uncountable", x, y, w, h)
        for x, y, w, h, countable in Cell.objects.values_list("x", "y", "width", "height", "countable")
    }
    got = {(label, *(round(v, 9) for v in box)) for boxes in read.values() for label, *box in boxes}
    assert got == {(label, *(round(v, 9) for v in box)) for label, *box in stored}
    assert summary.to_dict()["annotations"] == 2
    assert summary.to_dict()["images"] == 2
