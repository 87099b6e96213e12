"""The BCCD platform benchmark's import step on a tiny VOC folder of the same shape (the figures come from running it):
each field its own patient with the original list's split, WBC boxes only, typed for the classifier part."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from annotations.models import AnnotationKind, AnnotationSet, Cell, Patient
from benchmarks.bccd_platform import _import
from training.datasets import dataset_snapshot_create, snapshot_records

pytestmark = pytest.mark.django_db


def _voc(folder: Path, name: str, objects: list[tuple[str, tuple[int, int, int, int]]]) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (len(objects) * 40, 120, 200)).save(buffer, format="JPEG")
    (folder / "JPEGImages" / f"{name}.jpg").write_bytes(buffer.getvalue())
    boxes = "".join(
        f"<object><name>{label}</name><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax>"
        "</bndbox></object>"
        for label, (x0, y0, x1, y1) in objects
    )
    (folder / "Annotations" / f"{name}.xml").write_text(
        f"<annotation><filename>{name}.jpg</filename><size><width>64</width><height>48</height><depth>3</depth>"
        f"</size>{boxes}</annotation>"
    )


@pytest.fixture
def bccd(tmp_path: Path) -> Path:
    for sub in ("Annotations", "JPEGImages", "ImageSets"):
        (tmp_path / sub).mkdir()
    _voc(tmp_path, "img_a", [("WBC", (2, 2, 20, 20)), ("RBC", (30, 30, 40, 40))])
    _voc(tmp_path, "img_b", [("WBC", (2, 2, 20, 20)), ("WBC", (30, 20, 50, 40)), ("Platelets", (1, 30, 5, 34))])
    _voc(tmp_path, "img_c", [("WBC", (10, 10, 30, 30))])
    (tmp_path / "ImageSets" / "train.txt").write_text("img_a\nimg_b\n")
    (tmp_path / "ImageSets" / "val.txt").write_text("img_c\n")
    (tmp_path / "wbc_types.csv").write_text(
        "image,wbc_types\nimg_a,lymphocyte\nimg_b,neutrophil;monocyte\nimg_c,eosinophil\n"
    )
    return tmp_path


def test_every_field_is_its_own_patient_pinned_to_its_list(bccd: Path, settings: Any, tmp_path: Path) -> None:
    settings.AICELL_DATASET_DIR = tmp_path / "datasets"
    report = _import(bccd, tmp_path, one_wbc_only=False)
    assert report == {"fields": {"train": 2, "val": 1}, "cells": 4, "skipped": []}
    assert dict(Patient.objects.values_list("code", "split")) == {
        "BCCD-img_a": "train",
        "BCCD-img_b": "train",
        "BCCD-img_c": "val",
    }
    assert set(AnnotationSet.objects.values_list("kind", "source_name")) == {(AnnotationKind.IMPORTED, "BCCD")}
    # White cells only; one WBC with one type gets its class, two WBCs with two types stay unclassified.
    assert sorted(Cell.objects.values_list("cell_class_id", flat=True), key=str) == [12, 6, None, None]
    records = {record.patient: record for record in snapshot_records(dataset_snapshot_create())}
    assert {patient: record.split for patient, record in records.items()} == {
        "BCCD-img_a": "train",
        "BCCD-img_b": "train",
        "BCCD-img_c": "val",
    }


def test_the_classifier_part_takes_fields_with_exactly_one_wbc(bccd: Path, settings: Any, tmp_path: Path) -> None:
    settings.AICELL_DATASET_DIR = tmp_path / "datasets"
    report = _import(bccd, tmp_path, one_wbc_only=True)
    assert report["fields"] == {"train": 1, "val": 1}
    assert sorted(Cell.objects.values_list("cell_class_id", flat=True)) == [6, 12]
