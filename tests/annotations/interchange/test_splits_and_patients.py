"""Splits and patients from the dataset: --split-from-dataset pins each image's split (COCO instances_<split>.json,
VOC ImageSets/<split>.txt or ImageSets/Main/<split>.txt) on its patient; --patient-per-image and --patients FILE say
which patient each image belongs to; conflicts are problems and nothing is written."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from annotations.interchange.archive import DirectoryDataset
from annotations.interchange.dataset import patients_read
from annotations.interchange.dataset_import import DatasetRefused, ImportOptions, dataset_import
from annotations.models import Case, Field, ImportedDataset, Patient
from tests.annotations.interchange.builders import write_coco, write_voc
from tests.factories import CaseFactory, PatientFactory, image_bytes

pytestmark = pytest.mark.django_db

MAP = {"name": "bccd-like", "labels": {"WBC": "unclassified", "RBC": "ignore"}}


def _voc(root: Path, *, main: bool = False) -> Path:
    fields = {f"img{i}": (image_bytes(64, 48, seed=700 + i), 64, 48, [("WBC", 2, 2, 20, 20)]) for i in range(4)}
    write_voc(root, fields)
    sets = root / "ImageSets" / ("Main" if main else "")
    sets.mkdir(parents=True, exist_ok=True)
    (sets / "train.txt").write_text("img0\nimg1\n")
    (sets / "val.txt").write_text("img2\n")
    (sets / "trainval.txt").write_text("img0\nimg1\nimg2\n")  # no split of its own
    (root / "LICENSE").write_text("MIT License\n\nCopyright ...\n")
    return root


def _import(root: Path, fmt: str = "voc", **options: Any) -> Any:
    from annotations.interchange.label_map import label_map_parse

    options.setdefault("label_map", label_map_parse(MAP))
    if "case" not in options:
        options["case"] = None
    return dataset_import(DirectoryDataset(root), ImportOptions(format=fmt, **options), actor=None)


@pytest.mark.parametrize("main", [False, True], ids=["ImageSets/<split>.txt (BCCD)", "ImageSets/Main/<split>.txt"])
def test_voc_lists_pin_splits_on_one_patient_per_image(tmp_path: Path, main: bool) -> None:
    report = _import(_voc(tmp_path, main=main), split_from_dataset=True, patient_per_image=True, patient_prefix="B")
    assert dict(Patient.objects.values_list("code", "split")) == {
        "B-img0": "train",
        "B-img1": "train",
        "B-img2": "val",
        "B-img3": "",  # in no list: the per-patient rule gives it a split later
    }
    assert set(Case.objects.values_list("code", "patient__code")) == {(f"B-img{i}", f"B-img{i}") for i in range(4)}
    assert report.images_per_split == {"train": 2, "unassigned": 1, "val": 1}
    assert report.to_dict()["patients_per_split"] == {"train": 2, "unassigned": 1, "val": 1}
    assert [w.kind for w in report.warnings] == [
        "image in no split of the dataset; its patient gets one by the per-patient rule"
    ]
    assert report.provenance == {"license": "MIT License"}
    assert ImportedDataset.objects.get(name="bccd-like").license == "MIT License"


def test_coco_splits_into_one_case_are_refused_unless_patients_are_given(tmp_path: Path) -> None:
    for split, seed in (("train", 1), ("val", 2)):
        files = {f"{split}.jpg": image_bytes(64, 48, seed=800 + seed)}
        images = [{"id": 1, "file_name": f"{split}.jpg", "width": 64, "height": 48}]
        write_coco(tmp_path, images, [], files, split=split)
    case: Any = CaseFactory()
    with pytest.raises(DatasetRefused) as caught:
        _import(tmp_path, "coco", case=case, split_from_dataset=True)
    [error] = caught.value.errors
    assert "give --patient-per-image or --patients FILE" in error.reason
    assert Field.objects.count() == 0
    report = _import(tmp_path, "coco", patients={"train": "PX-1", "val": "PX-2"}, split_from_dataset=True)
    assert dict(Patient.objects.filter(code__startswith="PX").values_list("code", "split")) == {
        "PX-1": "train",
        "PX-2": "val",
    }
    assert report.patients == {"PX-1": {"split": "train", "images": 1}, "PX-2": {"split": "val", "images": 1}}


def test_one_split_into_one_case_pins_the_case_patient(tmp_path: Path) -> None:
    files = {"a.jpg": image_bytes(64, 48, seed=900)}
    write_coco(tmp_path, [{"id": 1, "file_name": "a.jpg"}], [], files, split="val")
    case: Any = CaseFactory()
    _import(tmp_path, "coco", case=case, split_from_dataset=True)
    case.patient.refresh_from_db()
    assert case.patient.split == "val"


def test_conflicts_are_problems_and_nothing_is_written(tmp_path: Path) -> None:
    root = _voc(tmp_path)
    PatientFactory(code="B-img2", split="test")  # stored elsewhere as test; the dataset says val
    other = PatientFactory(code="OTHER")
    CaseFactory(code="B-img0", patient=other)  # the per-image case code is taken by another patient
    with pytest.raises(DatasetRefused) as caught:
        _import(root, split_from_dataset=True, patient_per_image=True, patient_prefix="B")
    kinds = sorted(problem.kind for outcome, problem in caught.value.report_rows if outcome == "refused")
    assert kinds == ["a case of this code belongs to another patient", "patient already has another split"]
    assert Field.objects.count() == 0
    assert Patient.objects.get(code="B-img2").split == "test"
    with pytest.raises(DatasetRefused) as caught:  # a patient whose images the dataset puts in train and val
        _import(root, split_from_dataset=True, patients={"img0": "Q", "img1": "Q", "img2": "Q", "img3": "R"})
    [error] = caught.value.errors
    assert "patient Q: images in train, val" in error.reason
    with pytest.raises(DatasetRefused) as caught:  # an image the patients file does not name
        _import(root, patients={"img0": "Q"})
    assert {p.image for _, p in caught.value.report_rows} == {"img1.jpg", "img2.jpg", "img3.jpg"}


def test_patients_csv_is_read_strictly() -> None:
    assert patients_read("image,patient\nimg0.jpg,P1\nimg1,P2\n\n") == {"img0": "P1", "img1": "P2"}
    for text, reason in (
        ("file,patient\n", "header"),
        ("image,patient\nimg0,P1\nimg0.png,P2\n", "given twice"),
        ("image,patient\nimg0\n", "row 2"),
    ):
        with pytest.raises(ValueError, match=reason):
            patients_read(text)


def test_the_command_imports_bccd_style_lists_and_prints_images_per_split_and_patient(tmp_path: Path) -> None:
    root = _voc(tmp_path / "data")
    label_map = tmp_path / "map.json"
    label_map.write_text(json.dumps(MAP))
    out = StringIO()
    call_command(
        "import_dataset", str(root), "--format", "voc", "--case", "BC", "--label-map", str(label_map),
        "--split-from-dataset", "--patient-per-image", "--source-url", "https://example.test/bccd", stdout=out,
    )  # fmt: skip
    report = json.loads(out.getvalue())
    assert report["images_per_split"] == {"train": 2, "unassigned": 1, "val": 1}
    assert report["patients"]["BC-img2"] == {"split": "val", "images": 1}
    assert report["provenance"] == {"license": "MIT License", "source_url": "https://example.test/bccd"}
    with pytest.raises(CommandError, match="Name the case"):
        call_command("import_dataset", str(root), "--format", "voc", "--label-map", str(label_map))
