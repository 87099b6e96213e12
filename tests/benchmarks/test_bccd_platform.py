"""The BCCD platform benchmark's import step on a tiny VOC folder of the same shape (the figures come from running it):
each field its own patient with the original list's split, WBC boxes only, typed for the classifier part."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from annotations.models import AnnotationKind, AnnotationSet, Cell, Patient
from benchmarks.bccd_platform import SSL_NAME, SSL_PROFILE, _import, summarise, write_ssl_profiles
from inference.core.profiles import load_profiles
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


def test_the_self_supervised_column_trains_the_cpu_profile_from_the_pretrained_points(tmp_path: Path) -> None:
    path = write_ssl_profiles(tmp_path, "classifier")
    profiles = load_profiles(path)
    cpu, ssl = profiles["cpu"], profiles[SSL_PROFILE]
    assert ssl.classifier.inits == tuple(f"starting-point:{SSL_NAME}-{arch}" for arch in cpu.classifier.archs)
    assert ssl.classifier.training_pretrained == cpu.classifier.training, "only the start differs"
    assert ssl.classifier.archs == cpu.classifier.archs
    assert ssl.detector == cpu.detector
    detector = load_profiles(write_ssl_profiles(tmp_path / "d", "detector"))[SSL_PROFILE]
    assert detector.detector.inits == (f"starting-point:{SSL_NAME}",)
    assert detector.classifier == cpu.classifier


def test_columns_put_scratch_and_self_supervised_side_by_side() -> None:
    figures = {
        "detector": {
            "scratch": {"ap50": 0.9, "ap50_95": 0.5, "train_s": 600.0},
            "self_supervised": {
                "ap50": 0.95,
                "ap50_95": 0.6,
                "train_s": 600.0,
                "total_s": 900.0,
                "pretraining": {"pretrain_s": 300.0},
            },
        },
        "classifier": {
            "scratch": {"accuracy": 0.8, "macro_f1": 0.7, "train_s": 120.0},
            "self_supervised": {"error": "pretraining stopped", "pretraining": {"pretrain_s": 60.0}},
        },
    }
    columns = summarise(figures, ["scratch", "self-supervised"])
    assert columns["scratch"] == {
        "detector_ap50": 0.9,
        "detector_ap50_95": 0.5,
        "classifier_accuracy": 0.8,
        "classifier_macro_f1": 0.7,
        "minutes": {"detector": 10.0, "classifier": 2.0},
        "total_minutes": 12.0,
    }
    ssl = columns["self_supervised"]
    assert ssl["detector_ap50"] == 0.95
    assert ssl["classifier_accuracy"] is None
    assert ssl["minutes"] == {
        "detector": 15.0,
        "classifier": None,
        "detector_pretraining": 5.0,
        "classifier_pretraining": 1.0,
    }
    assert ssl["total_minutes"] is None, "a stage without a figure: no total"
