"""The demo world of `make demo`: one user per role (two annotators for double review) and the shipped fields:
the BCCD `train` list arrives as reviewed truth through the dataset import, the `val` list as new uploads."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction

from aicell.accounts import user_roles_apply
from aicell.roles import Role
from annotations.interchange.archive import DirectoryDataset
from annotations.interchange.dataset import field_types_read
from annotations.interchange.dataset_import import ImportOptions, dataset_import
from annotations.interchange.label_map import label_map_parse
from annotations.models import Assignment, Case, Conflict, Diagnosis, Field, FieldStatus, ImportFormat, Patient, Smear
from annotations.review.services import assignment_create, conflict_resolve
from annotations.services import (
    Upload,
    annotation_set_create_for_annotator,
    annotation_set_submit,
    cell_create,
    field_upload_many,
)
from annotations.splits import DEFAULT_RATIOS, split_for_patient
from annotations.taxonomy import class_by_name
from training.jobs import open_training_job, training_job_create
from training.models import ModelStatus, ModelVersion

DEMO_DATA = settings.BASE_DIR / "demo" / "bccd"
DEMO_LABEL_MAP = settings.BASE_DIR / "demo" / "bccd_label_map.json"
DEMO_USERS: tuple[tuple[str, Role], ...] = (
    ("annotator1", Role.ANNOTATOR),
    ("annotator2", Role.ANNOTATOR),
    ("adjudicator", Role.ADJUDICATOR),
    ("labadmin", Role.ADMIN),
    ("researcher", Role.RESEARCHER),
)
FIELDS_PER_SMEAR = 4
# The demo trains from random init on a dozen fields, to show the whole loop (progress, gate, promotion, pre-labels
# in the review queue) within minutes on a laptop, not to make a useful model. At 3 epochs the detector finds no
# cell yet; at 30 it finds the white cells of the uploaded fields (measured: 1-6 boxes per field, ~5 min on 2 busy
# cores).
DEMO_TRAINING_EPOCHS = 30


@dataclass(frozen=True)
class DemoSetup:
    credentials: dict[str, str]
    fields_created: int
    fields_existing: int
    training_job_id: int | None


def demo_users_reset() -> dict[str, str]:
    """Create the demo users (or give them new passwords) and return username -> password to print."""
    credentials = {}
    for username, role in DEMO_USERS:
        user, _ = User.objects.get_or_create(username=username)
        password = secrets.token_urlsafe(9)
        user.set_password(password)
        user.is_active = True
        user.save()
        # The admin role makes the user staff (and superuser), so the Django admin works for labadmin.
        user_roles_apply(user, [role])
        credentials[username] = password
    return credentials


def demo_field_ids(split: str) -> list[str]:
    return (DEMO_DATA / "ImageSets" / f"{split}.txt").read_text().split()


# The splits of the demo's truth patients, batch by batch: at least one patient in `val`, so training picks its best
# epoch on validation (with DEMO-P01..P05 none hashed to `val`, and every epoch's val metric read "-").
DEMO_TRUTH_SPLITS = ("train", "val", "train", "test", "train")


def demo_patient_codes(splits: Sequence[str], seed: int = 0, ratios: Sequence[float] = DEFAULT_RATIOS) -> list[str]:
    """Distinct demo patient codes, the i-th one hashing to `splits[i]` under the split rule (stored splits never
    move, so the demo names its patients instead of assigning them)."""
    codes: list[str] = []
    number = 0
    for wanted in splits:
        number += 1
        while split_for_patient(f"DEMO-P{number:02d}", seed=seed, ratios=ratios) != wanted:
            number += 1
        codes.append(f"DEMO-P{number:02d}")
    return codes


def _demo_smear(number: int, patient_code: str | None = None) -> Smear:
    with transaction.atomic():
        patient, _ = Patient.objects.get_or_create(code=patient_code or f"DEMO-P{number:02d}")
        case, _ = Case.objects.get_or_create(
            code=f"DEMO-C{number:02d}",
            defaults={"patient": patient, "confirmed_diagnosis": Diagnosis.NO_MALIGNANCY, "diagnosis_method": "demo"},
        )
        smear, _ = Smear.objects.get_or_create(case=case, code="S1", defaults={"microscope": "BCCD demo"})
    return smear


def _demo_batches() -> list[tuple[str, list[str]]]:
    return [
        (split, ids[start : start + FIELDS_PER_SMEAR])
        for split in ("train", "val")
        for ids in [demo_field_ids(split)]
        for start in range(0, len(ids), FIELDS_PER_SMEAR)
    ]


def _demo_import_truth(smear: Smear, image_ids: list[str], actor: User) -> tuple[int, int]:
    """The fields with their BCCD boxes as imported truth (WBC types as classes), through the VOC import."""
    options = ImportOptions(
        format=ImportFormat.VOC,
        case=smear.case,
        smear_code=smear.code,
        label_map=label_map_parse(json.loads(DEMO_LABEL_MAP.read_text())),
        ids=frozenset(image_ids),
        field_types=field_types_read((DEMO_DATA / "wbc_types.csv").read_text()),
        source_name="BCCD",
    )
    report = dataset_import(DirectoryDataset(DEMO_DATA), options, actor=actor)
    return report.fields, len(report.duplicates)


def _demo_upload(smear: Smear, image_ids: list[str], actor: User) -> tuple[int, int]:
    """The fields as new uploads, without boxes: the demo model pre-labels them."""
    uploads = [
        Upload(f"{image_id}.jpg", (DEMO_DATA / "JPEGImages" / f"{image_id}.jpg").read_bytes()) for image_id in image_ids
    ]
    stored = set(
        Field.objects.filter(sha256__in=[hashlib.sha256(u.data).hexdigest() for u in uploads]).values_list(
            "sha256", flat=True
        )
    )
    new = [upload for upload in uploads if hashlib.sha256(upload.data).hexdigest() not in stored]
    created = len(field_upload_many(smear=smear, uploads=new, actor=actor)) if new else 0
    return created, len(uploads) - len(new)


def demo_fields_load(actor: User) -> tuple[int, int]:
    """Load the shipped fields, a few per demo case: the `train` list as reviewed (imported) truth, the `val` list
    as new uploads. Returns (created, already stored); running it again stores nothing twice."""
    created = existing = 0
    batches = _demo_batches()
    truth_batches = sum(1 for split, _ in batches if split == "train")
    wanted = [DEMO_TRUTH_SPLITS[i % len(DEMO_TRUTH_SPLITS)] for i in range(truth_batches)]
    ratios = [float(value) for value in settings.AICELL_SPLIT_RATIOS]
    truth_codes = iter(demo_patient_codes(wanted, seed=settings.AICELL_SPLIT_SEED, ratios=ratios))
    for number, (split, image_ids) in enumerate(batches, start=1):
        smear = _demo_smear(number, next(truth_codes) if split == "train" else f"DEMO-U{number:02d}")
        load = _demo_import_truth if split == "train" else _demo_upload
        new, old = load(smear, image_ids, actor)
        created += new
        existing += old
    return created, existing


def demo_training_start(actor: User) -> int | None:
    """Queue a `cpu`-profile run of all three stages (auto promotion) unless a model is active or a run is open;
    the worker of `make demo` takes it, and once it is promoted the uploaded fields are pre-labelled."""
    if open_training_job() is not None or ModelVersion.objects.filter(status=ModelStatus.ACTIVE).exists():
        return None
    return training_job_create(profile="cpu", epochs=DEMO_TRAINING_EPOCHS, actor=actor).pk


def demo_setup() -> DemoSetup:
    credentials = demo_users_reset()
    admin = User.objects.get(username="labadmin")
    created, existing = demo_fields_load(admin)
    demo_day_seed(admin)
    return DemoSetup(
        credentials=credentials,
        fields_created=created,
        fields_existing=existing,
        training_job_id=demo_training_start(admin),
    )


# Where the demo annotators put their one box on a seeded field (inside every 640x480 BCCD field).
DEMO_BOX = {"x": 260.0, "y": 180.0, "width": 110.0, "height": 110.0}
DEMO_ASSIGNED_FIELDS = 3


def _demo_annotate(field: Field, user: User, class_name: str) -> None:
    annotation_set = annotation_set_create_for_annotator(field=field, annotator=user)
    data = {**DEMO_BOX, "cell_class": class_by_name(class_name).id}
    cell_create(annotation_set_id=annotation_set.pk, expected_version=annotation_set.version, data=data, actor=user)
    annotation_set.refresh_from_db()
    annotation_set_submit(annotation_set_id=annotation_set.pk, expected_version=annotation_set.version, actor=user)


def demo_day_seed(admin: User) -> dict[str, list[int]]:
    """A day in progress, so every role has work at login: of the uploaded fields, some are assigned to both demo
    annotators, one is in cross-check with an open conflict (the annotators disagree on a cell's class), one in
    adjudication (both kept their version). Through the services, as the UI would do it; once only (a lab with
    any assignment is left as it is)."""
    if Assignment.objects.exists():
        return {}
    waiting = list(
        Field.objects.filter(status__in=[FieldStatus.UPLOADED, FieldStatus.PRELABELLED]).order_by("id")[
            : DEMO_ASSIGNED_FIELDS + 2
        ]
    )
    if len(waiting) < DEMO_ASSIGNED_FIELDS + 2:
        return {}
    one, two = User.objects.get(username="annotator1"), User.objects.get(username="annotator2")
    for field in waiting:
        for user in (one, two):
            assignment_create(field_id=field.pk, annotator_id=user.pk, actor=admin)
    crosscheck, adjudication = waiting[-2], waiting[-1]
    for field in (crosscheck, adjudication):
        _demo_annotate(field, one, "lymphoblast")
        _demo_annotate(field, two, "lymphocyte")
    for user in (one, two):
        conflict = Conflict.objects.get(field=adjudication)
        conflict_resolve(
            conflict_id=conflict.pk, expected_version=conflict.version, data={"decision": "keep"}, actor=user
        )
    return {
        "assigned": [field.pk for field in waiting[:DEMO_ASSIGNED_FIELDS]],
        "in_crosscheck": [crosscheck.pk],
        "in_adjudication": [adjudication.pk],
    }


def demo_credentials_file() -> Path:
    return settings.VAR_DIR / "demo-credentials.txt"
