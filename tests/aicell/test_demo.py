"""The demo load: BCCD `train` fields arrive as imported truth (WBC types as classes), `val` fields as uploads."""

from __future__ import annotations

import csv
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from aicell.demo import DEMO_ASSIGNED_FIELDS, DEMO_DATA, demo_field_ids, demo_setup, demo_users_reset
from aicell.home import home_summary
from aicell.models import JobStatus
from annotations.models import (
    AnnotationKind,
    AnnotationSet,
    AnnotationStatus,
    Assignment,
    Cell,
    Conflict,
    ConflictStatus,
    Field,
    FieldStatus,
)
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
    # The val fields are new uploads, but for the few the demo day puts into work (test below).
    seeded = set(Assignment.objects.values_list("field_id", flat=True))
    for image_id in val:
        field = by_name[f"{image_id}.jpg"]
        if field.pk in seeded:
            continue
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


def test_the_demo_seeds_a_day_with_work_for_every_role(settings: Any) -> None:
    settings.AICELL_AUTO_PRELABEL = False
    demo_setup()
    statuses = list(Field.objects.filter(assignments__isnull=False).distinct().values_list("status", flat=True))
    assert statuses.count(FieldStatus.IN_ANNOTATION) == DEMO_ASSIGNED_FIELDS
    assert statuses.count(FieldStatus.IN_CROSSCHECK) == 1
    assert statuses.count(FieldStatus.IN_ADJUDICATION) == 1
    assert Conflict.objects.filter(status=ConflictStatus.OPEN).count() == 1
    assert Conflict.objects.filter(status=ConflictStatus.ESCALATED).count() == 1
    admin = User.objects.get(username="labadmin")
    assert admin.is_staff  # the Django admin works for the demo's lab admin
    browser = Client()
    assert browser.login(username="labadmin", password=demo_users_reset()["labadmin"])
    assert browser.get("/admin/").status_code == 200
    for username, block, key in (
        ("annotator1", "annotator", "fields_to_annotate"),
        ("annotator2", "annotator", "conflicts_waiting"),
        ("adjudicator", "adjudicator", "escalated_conflicts"),
        ("labadmin", "admin", "fields_waiting_for_assignment"),
        ("researcher", "researcher", "cases"),
    ):
        summary = home_summary(User.objects.get(username=username))
        assert summary[block][key] > 0, (username, summary)
    # Running it again seeds nothing twice.
    assignments = Assignment.objects.count()
    demo_setup()
    assert Assignment.objects.count() == assignments


def test_the_demo_truth_has_a_validation_patient_so_every_epoch_is_validated() -> None:
    """With DEMO-P01..P05 no truth patient hashed to `val`: the training runs had no val fields and every epoch's val
    metric read "-". The demo names its truth patients so that their splits follow DEMO_TRUTH_SPLITS."""
    from aicell.demo import DEMO_TRUTH_SPLITS, demo_patient_codes
    from annotations.splits import split_for_patient

    codes = demo_patient_codes(DEMO_TRUTH_SPLITS)
    assert len(set(codes)) == len(codes)
    assert [split_for_patient(code) for code in codes] == list(DEMO_TRUTH_SPLITS)
    assert "val" in DEMO_TRUTH_SPLITS
