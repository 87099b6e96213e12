"""The demo load: BCCD `train` fields arrive as imported truth (WBC types as classes), `val` fields as uploads."""

from __future__ import annotations

import csv
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from django.contrib.auth.models import User

from aicell.demo import DEMO_DATA, demo_field_ids, demo_setup
from aicell.models import JobStatus
from annotations.models import AnnotationKind, AnnotationSet, AnnotationStatus, Cell, Field, FieldStatus
from training.core.stages import STAGES
from training.models import TrainingJob

pytestmark = pytest.mark.django_db
TYPE_CLASS = {"neutrophil": 5, "eosinophil": 6, "lymphocyte": 12, "monocyte": 16, "basophil": 20}


def _white_cells(image_id: str) -> int:
    root = ET.parse(DEMO_DATA / "Annotations" / f"{image_id}.xml").getroot()
    return sum(1 for obj in root.iter("object") if obj.findtext("name") == "WBC")


def test_the_demo_loads_train_fields_as_truth_and_val_fields_as_uploads_once(settings: Any) -> None:
    settings.AICELL_AUTO_PRELABEL = False
    first = demo_setup()
    train, val = demo_field_ids("train"), demo_field_ids("val")
    assert (first.fields_created, first.fields_existing) == (len(train) + len(val), 0)
    by_name = {field.original_name: field for field in Field.objects.all()}
    with (DEMO_DATA / "wbc_types.csv").open() as handle:
        types = {row["image"]: row["wbc_types"].split(";") for row in csv.DictReader(handle)}
    for image_id in train:
        field = by_name[f"{image_id}.jpg"]
        assert field.status == FieldStatus.CONSENSUS
        truth = AnnotationSet.objects.get(field=field)
        assert (truth.kind, truth.status, truth.source_name) == (
            AnnotationKind.IMPORTED,
            AnnotationStatus.LOCKED,
            "BCCD",
        )
        classes = list(Cell.objects.filter(annotation_set=truth).values_list("cell_class", flat=True))
        assert len(classes) == _white_cells(image_id)
        listed = types.get(image_id, [])
        if len(classes) == len(listed) and len(set(listed)) == 1:
            assert set(classes) == {TYPE_CLASS[listed[0]]}
    for image_id in val:
        field = by_name[f"{image_id}.jpg"]
        assert field.status == FieldStatus.UPLOADED
        assert not field.annotation_sets.exists()
    assert set(User.objects.values_list("username", flat=True)) >= {"annotator1", "labadmin", "researcher"}
    again = demo_setup()
    assert (again.fields_created, again.fields_existing) == (0, len(train) + len(val))
    # One cpu training run of all stages is queued for the demo's worker, and only one.
    job = TrainingJob.objects.get()
    assert first.training_job_id == job.pk
    assert again.training_job_id is None
    assert (job.profile, job.status, list(job.stages)) == ("cpu", JobStatus.QUEUED, list(STAGES))
    assert Field.objects.count() == len(train) + len(val)


def test_the_demo_truth_has_a_validation_patient_so_every_epoch_is_validated() -> None:
    """With DEMO-P01..P05 no truth patient hashed to `val`: the training runs had no val fields and every epoch's val
    metric read "-". The demo names its truth patients so that their splits follow DEMO_TRUTH_SPLITS."""
    from aicell.demo import DEMO_TRUTH_SPLITS, demo_patient_codes
    from annotations.splits import split_for_patient

    codes = demo_patient_codes(DEMO_TRUTH_SPLITS)
    assert len(set(codes)) == len(codes)
    assert [split_for_patient(code) for code in codes] == list(DEMO_TRUTH_SPLITS)
    assert "val" in DEMO_TRUTH_SPLITS
