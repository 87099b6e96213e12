"""Tiny synthetic truth for the platform tests: fields with coloured discs as cells, stored as truth sets."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence

from django.core.files.base import ContentFile
from PIL import Image, ImageDraw

from annotations.models import (
    AnnotationKind,
    AnnotationSet,
    AnnotationStatus,
    Case,
    Cell,
    Field,
    FieldStatus,
    Patient,
    Smear,
)

# Two visibly different "cell types": class 12 (lymphocyte) blue discs, class 0 (myeloblast) red discs.
COLOURS = {12: (60, 60, 200), 0: (200, 40, 60)}
SIZE = 96


def disc_image(cells: Sequence[tuple[float, float, float, float, int | None, bool]], seed: int) -> bytes:
    image = Image.new("RGB", (SIZE, SIZE), (235, 215, 220))
    draw = ImageDraw.Draw(image)
    for x, y, w, h, cls, countable in cells:
        colour = COLOURS.get(cls if cls is not None else 12, (90, 90, 90))
        if not countable:
            colour = (120, 110, 100)
        draw.ellipse((x, y, x + w - 1, y + h - 1), fill=colour)
    # Unique bytes per field, drawn last so that no cell covers them (equal images would be one field).
    draw.point((seed % SIZE, (seed // SIZE) % SIZE), fill=(seed % 256, 1, 2))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


_counter = {"n": 0}


def truth_field(
    patient: str,
    cells: Sequence[tuple[float, float, float, float, int | None, bool]] = (),
    *,
    kind: str = AnnotationKind.CONSENSUS,
    source_name: str = "",
    status: str = AnnotationStatus.LOCKED,
    split: str = "",
) -> Field:
    """A field of `patient` (made if new, with `split` if given) whose truth set holds `cells`
    (x, y, w, h, class, countable)."""
    _counter["n"] += 1
    number = _counter["n"]
    patient_row, _ = Patient.objects.get_or_create(code=patient, defaults={"split": split})
    case, _ = Case.objects.get_or_create(code=f"C-{patient}", defaults={"patient": patient_row})
    smear, _ = Smear.objects.get_or_create(case=case, code="S1")
    data = disc_image(cells, number)
    field = Field.objects.create(
        smear=smear,
        image=ContentFile(data, name="field.png"),
        thumbnail=ContentFile(data, name="thumb.png"),
        width=SIZE,
        height=SIZE,
        sha256=hashlib.sha256(data).hexdigest(),
        format="PNG",
        byte_size=len(data),
        status=FieldStatus.CONSENSUS,
    )
    truth = AnnotationSet.objects.create(field=field, kind=kind, status=status, source_name=source_name)
    Cell.objects.bulk_create(
        Cell(annotation_set=truth, x=x, y=y, width=w, height=h, cell_class_id=cls, countable=countable)
        for x, y, w, h, cls, countable in cells
    )
    return field


def standard_cells(index: int) -> list[tuple[float, float, float, float, int | None, bool]]:
    """Two or three cells per field: a blue and a red disc, every third field an uncountable grey one."""
    cells: list[tuple[float, float, float, float, int | None, bool]] = [
        (8 + index % 5, 10, 28, 28, 12, True),
        (52, 50 - index % 7, 30, 30, 0, True),
    ]
    if index % 3 == 0:
        cells.append((10, 60, 22, 22, 12, False))
    return cells


def synthetic_truth(patients: int = 12, fields_per_patient: int = 1) -> list[Field]:
    """A small dataset with all three splits: patients T*, V*, X* pinned to train, val, test."""
    made = []
    for p in range(patients):
        split = "val" if p % 6 == 1 else "test" if p % 6 == 2 else "train"
        for f in range(fields_per_patient):
            made.append(truth_field(f"SYN{p:02d}", standard_cells(p * fields_per_patient + f), split=split))
    return made
