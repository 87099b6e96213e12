"""The demo world of `make demo`: one user per role (two annotators for double review) and the shipped fields."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.db import transaction

from aicell.roles import Role
from annotations.models import Case, Diagnosis, Field, Patient, Smear
from annotations.services import Upload, field_upload_many

DEMO_DATA = settings.BASE_DIR / "demo" / "bccd"
DEMO_USERS: tuple[tuple[str, Role], ...] = (
    ("annotator1", Role.ANNOTATOR),
    ("annotator2", Role.ANNOTATOR),
    ("adjudicator", Role.ADJUDICATOR),
    ("labadmin", Role.ADMIN),
    ("researcher", Role.RESEARCHER),
)
FIELDS_PER_SMEAR = 4


@dataclass(frozen=True)
class DemoSetup:
    credentials: dict[str, str]
    fields_created: int
    fields_existing: int


def demo_users_reset() -> dict[str, str]:
    """Create the demo users (or give them new passwords) and return username -> password to print."""
    credentials = {}
    for username, role in DEMO_USERS:
        user, _ = User.objects.get_or_create(username=username)
        password = secrets.token_urlsafe(9)
        user.set_password(password)
        user.save()
        user.groups.set([Group.objects.get(name=role.value)])
        credentials[username] = password
    return credentials


def demo_field_ids(split: str) -> list[str]:
    return (DEMO_DATA / "ImageSets" / f"{split}.txt").read_text().split()


def demo_fields_load(actor: User) -> tuple[int, int]:
    """Upload the shipped fields into pseudonymous demo patients, a few fields per smear; skip those stored."""
    created = existing = 0
    image_ids = demo_field_ids("train") + demo_field_ids("val")
    for start in range(0, len(image_ids), FIELDS_PER_SMEAR):
        number = start // FIELDS_PER_SMEAR + 1
        batch = image_ids[start : start + FIELDS_PER_SMEAR]
        with transaction.atomic():
            patient, _ = Patient.objects.get_or_create(code=f"DEMO-P{number:02d}")
            case, _ = Case.objects.get_or_create(
                code=f"DEMO-C{number:02d}",
                defaults={
                    "patient": patient,
                    "confirmed_diagnosis": Diagnosis.NO_MALIGNANCY,
                    "diagnosis_method": "demo",
                },
            )
            smear, _ = Smear.objects.get_or_create(case=case, code="S1", defaults={"microscope": "BCCD demo"})
        uploads = [
            Upload(f"{image_id}.jpg", (DEMO_DATA / "JPEGImages" / f"{image_id}.jpg").read_bytes()) for image_id in batch
        ]
        stored = set(
            Field.objects.filter(original_name__in=[u.name for u in uploads]).values_list("original_name", flat=True)
        )
        new = [upload for upload in uploads if upload.name not in stored]
        existing += len(uploads) - len(new)
        if new:
            created += len(field_upload_many(smear=smear, uploads=new, actor=actor))
    return created, existing


def demo_setup() -> DemoSetup:
    credentials = demo_users_reset()
    created, existing = demo_fields_load(User.objects.get(username="labadmin"))
    return DemoSetup(credentials=credentials, fields_created=created, fields_existing=existing)


def demo_credentials_file() -> Path:
    return settings.VAR_DIR / "demo-credentials.txt"
