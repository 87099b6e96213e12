"""Seed a database for the load benchmark fast: bulk inserts, no image decoded per field.

Fields share a few stored image files (their rows still get unique hashes, as the schema requires); every field is
assigned to two annotators, each with a draft annotation set holding an equal share of the cells, as in the middle
of a double review. 10,000 fields and 300,000 cells take well under a minute on PostgreSQL.

Call `seed_load(...)` inside a configured Django process (benchmarks/load.py does) on a dedicated database.
"""

from __future__ import annotations

import hashlib
import io
import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SHARED_IMAGES = 4
IMAGE_SIZE = (640, 480)
BATCH = 5_000
MARKER_PREFIX = "LOADSEED"
OTHER_SEED_EXIT = 3  # main()'s exit status when the database holds a load seed of another size


@dataclass(frozen=True)
class LoadPlan:
    """What the load clients need: per annotator its token and its own sets, each with its field and cell ids."""

    annotators: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {"annotators": self.annotators}


def marker(fields: int, cells: int, annotators: int) -> str:
    return f"{MARKER_PREFIX}-{fields}-{cells}-{annotators}"


def write_shared_images(media_root: Path) -> list[tuple[str, int]]:
    """A few JPEGs under media/load/ that every seeded field points at: (storage name, byte size)."""
    from PIL import Image

    folder = media_root / "load"
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for index in range(SHARED_IMAGES):
        image = Image.new("RGB", IMAGE_SIZE, (200 - 10 * index, 180, 190))
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=85)
        (folder / f"field-{index}.jpg").write_bytes(buffer.getvalue())
        names.append((f"load/field-{index}.jpg", len(buffer.getvalue())))
    return names


def other_seed_present(fields: int, cells: int, annotators: int) -> bool:
    from annotations.models import Case

    return Case.objects.filter(code__startswith=MARKER_PREFIX).exclude(code=marker(fields, cells, annotators)).exists()


def is_seeded(fields: int, cells: int, annotators: int) -> bool:
    from annotations.models import Case

    return Case.objects.filter(code=marker(fields, cells, annotators)).exists()


def seed_load(*, fields: int, cells: int, annotators: int, media_root: Path) -> None:
    """Insert `fields` fields, `annotators` annotators (two per field) and `cells` cells into an empty database."""
    from django.contrib.auth.models import Group, User
    from django.db import transaction
    from rest_framework.authtoken.models import Token

    from annotations.models import (
        AnnotationKind,
        AnnotationSet,
        AnnotationStatus,
        Assignment,
        Case,
        Cell,
        Field,
        FieldStatus,
        Patient,
        Smear,
    )

    images = write_shared_images(media_root)
    cells_per_set = max(1, cells // (2 * fields))
    smears_n = max(1, fields // 100)
    with transaction.atomic():
        annotator_group = Group.objects.get(name="annotator")
        users = User.objects.bulk_create(
            User(username=f"load-annotator-{i}", password="!", is_active=True) for i in range(annotators)
        )
        annotator_group.user_set.add(*users)
        Token.objects.bulk_create(Token(user=user, key=secrets.token_hex(20)) for user in users)
        patient = Patient.objects.create(code="LOAD-P1")
        case = Case.objects.create(patient=patient, code=marker(fields, cells, annotators))
        smears = Smear.objects.bulk_create(Smear(case=case, code=f"S{i:04d}") for i in range(smears_n))
        run = secrets.token_hex(4)
        made_fields = Field.objects.bulk_create(
            (
                Field(
                    smear=smears[i % smears_n],
                    image=images[i % SHARED_IMAGES][0],
                    thumbnail=images[i % SHARED_IMAGES][0],
                    width=IMAGE_SIZE[0],
                    height=IMAGE_SIZE[1],
                    sha256=hashlib.sha256(f"load-{run}-{i}".encode()).hexdigest(),
                    format="JPEG",
                    byte_size=images[i % SHARED_IMAGES][1],
                    original_name=f"field-{i}.jpg",
                    status=FieldStatus.IN_ANNOTATION,
                )
                for i in range(fields)
            ),
            batch_size=BATCH,
        )
        pairs = [
            (field, users[(2 * i) % annotators], users[(2 * i + 1) % annotators]) for i, field in enumerate(made_fields)
        ]
        Assignment.objects.bulk_create(
            (
                Assignment(field=field, annotator=annotator, slot=slot)
                for field, a, b in pairs
                for slot, annotator in ((1, a), (2, b))
            ),
            batch_size=BATCH,
        )
        sets = AnnotationSet.objects.bulk_create(
            (
                AnnotationSet(
                    field=field, kind=AnnotationKind.ANNOTATOR, annotator=annotator, status=AnnotationStatus.DRAFT
                )
                for field, a, b in pairs
                for annotator in (a, b)
            ),
            batch_size=BATCH,
        )
        width, height = IMAGE_SIZE
        for start in range(0, len(sets), BATCH // cells_per_set or 1):
            chunk = sets[start : start + (BATCH // cells_per_set or 1)]
            Cell.objects.bulk_create(
                Cell(
                    annotation_set=annotation_set,
                    x=float((37 * k) % (width - 60)),
                    y=float((53 * k) % (height - 60)),
                    width=50.0,
                    height=45.0,
                    countable=True,
                    cell_class_id=k % 21,
                    created_by_id=annotation_set.annotator_id,
                )
                for annotation_set in chunk
                for k in range(cells_per_set)
            )


def load_plan(*, fields: int, cells: int, annotators: int, sets_per_annotator: int = 40) -> LoadPlan:
    """The tokens and a sample of the own sets (with their field and cells) of every seeded annotator."""
    from rest_framework.authtoken.models import Token

    from annotations.models import AnnotationSet, Cell

    plan = []
    case_code = marker(fields, cells, annotators)
    for token in Token.objects.filter(user__username__startswith="load-annotator-").select_related("user"):
        own = list(
            AnnotationSet.objects.filter(annotator=token.user, field__smear__case__code=case_code)
            .order_by("id")
            .values_list("id", "field_id")[:sets_per_annotator]
        )
        cell_ids: dict[int, list[int]] = {}
        for set_id, cell_id in Cell.objects.filter(annotation_set_id__in=[s for s, _ in own]).values_list(
            "annotation_set_id", "id"
        ):
            cell_ids.setdefault(set_id, []).append(cell_id)
        plan.append(
            {
                "username": token.user.username,
                "token": token.key,
                "sets": [{"id": s, "field": f, "cells": cell_ids.get(s, [])} for s, f in own],
            }
        )
    return LoadPlan(plan)


def main(argv: list[str] | None = None) -> int:
    """`python -m benchmarks.seed --fields N --cells N --annotators N --plan FILE`: migrate the configured
    (dedicated) database, seed it unless the same seed is there already, and write the load plan."""
    import argparse
    import json
    import time

    import django

    parser = argparse.ArgumentParser()
    parser.add_argument("--fields", type=int, required=True)
    parser.add_argument("--cells", type=int, required=True)
    parser.add_argument("--annotators", type=int, required=True)
    parser.add_argument("--plan", type=Path, required=True)
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aicell.settings")
    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    size = {"fields": args.fields, "cells": args.cells, "annotators": args.annotators}
    call_command("migrate", verbosity=0)
    if other_seed_present(**size):
        print("the database holds a load seed of another size", file=sys.stderr)
        return OTHER_SEED_EXIT
    started = time.monotonic()
    media_root = Path(settings.MEDIA_ROOT)
    if is_seeded(**size):
        write_shared_images(media_root)
        seed_s = 0.0
    else:
        seed_load(**size, media_root=media_root)
        seed_s = time.monotonic() - started
    args.plan.write_text(json.dumps(load_plan(**size).to_json()))
    print(json.dumps({"seed_s": round(seed_s, 1)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
