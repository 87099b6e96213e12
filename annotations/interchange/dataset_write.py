"""Writing a checked dataset: everything in one transaction, set-based.

Fields and annotation sets go in with one bulk insert each; cells, the bulk of the data, with `COPY` on PostgreSQL
and `executemany` of plain tuples on SQLite (no model object per cell). The database's box-inside-its-image guard
still checks every inserted cell, once for the whole insert (`db_guards.cells_bulk_insert_checked`). The audit
trail gets one event per stored field and one per imported set, with its counts and a content hash of its cells
(`cells_content_hash`), never a read-back of every box. Image files and thumbnails are written by threads while the
main thread inserts rows: the rows name the files as storage will (by content hash), and the rare file that storage
had to name otherwise (an orphan file of that name was in the way) is written back before the transaction ends. If
anything fails, the transaction rolls back and every file written is deleted again.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, cast

from django.db import connection, models, transaction
from django.utils import timezone

from aicell.errors import ValidationFailed
from annotations.db_guards import cells_bulk_insert_checked
from annotations.field_states import field_status_at_creation
from annotations.images import CheckedImage
from annotations.interchange.image_refs import ImageLookup
from annotations.interchange.parallel import in_background
from annotations.models import (
    AnnotationKind,
    AnnotationSet,
    AnnotationStatus,
    AuditEvent,
    Case,
    Cell,
    Field,
    FieldStatus,
    ImportedDataset,
    Patient,
    Smear,
)
from annotations.services import (
    field_files_removed_on_error,
    field_files_save,
    field_new,
    field_upload_snapshot,
    fields_notify_uploaded,
    patient_splits_pin,
)

# The columns a cell is inserted with: its set, the PlannedCell fields in order, then the same for every cell.
_PLANNED_COLUMNS = ("x", "y", "width", "height", "countable", "cell_class_id")
CELL_COLUMNS = (
    "annotation_set_id",
    *_PLANNED_COLUMNS,
    "scores",
    "review_outcome",
    "created_by_id",
    "created_at",
    "updated_at",
)
COPY_CHUNK_BYTES = 1 << 16
EXECUTEMANY_ROWS = 10_000
ROWS_PER_INSERT = 2000  # fields, sets and audit events per INSERT statement
_COPY_NULL = "\\N"
_COPY_BOOL = {True: "t", False: "f"}


class PlannedCell(NamedTuple):
    x: float
    y: float
    width: float
    height: float
    countable: bool
    cell_class: int | None


@dataclass
class PlannedField:
    """A checked image and its checked cells, ready to be written."""

    image_path: str
    name: str  # the image's file name, kept as the field's original name
    annotation_file: str
    checked: CheckedImage  # without its bytes: only the images being worked on are held in memory
    byte_size: int
    cells: list[PlannedCell]
    key: str = ""  # the image's name without extension (what --ids and --patients match)
    split: str | None = None  # the dataset's own split of the image
    patient: str | None = None  # the patient (and case) code the field goes to; None: the target's case


@dataclass(frozen=True)
class WriteTarget:
    """Where and as what a dataset is written."""

    case: Case | None  # None: every field goes to its patient's case (PlannedField.patient)
    smear_code: str
    annotator: Any  # None: as truth (locked imported sets); else that annotator's submitted sets
    source_name: str
    actor: Any
    # Patient code -> the split the dataset pins on it ("" = none): the case's patient, or each field's patient.
    patient_splits: Mapping[str, str] = dataclasses.field(default_factory=dict)
    provenance: Mapping[str, str] = dataclasses.field(default_factory=dict)  # license, source_url, description
    format: str = ""


def cells_content_hash(cells: Sequence[PlannedCell]) -> str:
    """sha256 of the set's cells as compact JSON `[[x, y, width, height, countable, cell_class], ...]` (floats,
    boolean, int or null) in the order they were inserted (cell id order): what the audit trail records of an
    imported set, checkable later against the stored cells."""
    return hashlib.sha256(json.dumps(cells, separators=(",", ":")).encode()).hexdigest()


def _user(actor: Any) -> Any:
    return actor if actor is not None and actor.is_authenticated else None


def _store_files(lookup: ImageLookup, written: list[str], item: PlannedField) -> tuple[str, str]:
    """Read the image again and store it with its thumbnail (in a thread); returns the storage names."""
    data = lookup.read(item.image_path)
    # Checked (fully decoded) before; the bytes must still be those that were checked.
    if hashlib.sha256(data).hexdigest() != item.checked.sha256:
        raise ValidationFailed(f"{item.image_path} changed during the import.", field=item.image_path)
    names_only = Field(sha256=item.checked.sha256, format=item.checked.format)  # never saved: names its files
    field_files_save(names_only, data, written)
    return str(names_only.image.name), str(names_only.thumbnail.name)


def _smears(planned: list[PlannedField], target: WriteTarget) -> dict[str | None, Smear]:
    """The smear of each field's patient (None: the target's case): patients, their cases (same code) and smears are
    made where missing, in bulk; the dataset's splits are pinned on patients that have none yet."""
    if target.case is not None:
        smear, _ = Smear.objects.get_or_create(case=target.case, code=target.smear_code)
        patient_splits_pin(target.patient_splits)
        return {None: smear}
    codes = sorted({item.patient for item in planned if item.patient is not None})
    patients = Patient.objects.in_bulk(codes, field_name="code")
    new = [Patient(code=code, split=target.patient_splits.get(code, "")) for code in codes if code not in patients]
    Patient.objects.bulk_create(new, batch_size=ROWS_PER_INSERT)
    patient_splits_pin(target.patient_splits)
    patients = Patient.objects.in_bulk(codes, field_name="code")
    cases = Case.objects.in_bulk(codes, field_name="code")
    Case.objects.bulk_create(
        [Case(patient=patients[code], code=code) for code in codes if code not in cases], batch_size=ROWS_PER_INSERT
    )
    cases = Case.objects.in_bulk(codes, field_name="code")
    case_ids = [case.pk for case in cases.values()]
    smears = {smear.case_id: smear for smear in Smear.objects.filter(case_id__in=case_ids, code=target.smear_code)}
    Smear.objects.bulk_create(
        [Smear(case_id=pk, code=target.smear_code) for pk in case_ids if pk not in smears], batch_size=ROWS_PER_INSERT
    )
    smears = {smear.case_id: smear for smear in Smear.objects.filter(case_id__in=case_ids, code=target.smear_code)}
    return {code: smears[cases[code].pk] for code in codes}


def _provenance_record(target: WriteTarget) -> None:
    """The dataset's licence and source, kept by its name (what later imports do not say is kept)."""
    if not target.source_name:
        return
    given = {
        key: str(target.provenance.get(key, ""))[:limit]
        for key, limit in (("license", 200), ("source_url", 500), ("description", 500))
    }
    dataset, created = ImportedDataset.objects.get_or_create(
        name=target.source_name[:255], defaults={**given, "format": target.format}
    )
    changed = {key: value for key, value in given.items() if value and getattr(dataset, key) != value}
    if not created and changed:
        ImportedDataset.objects.filter(pk=dataset.pk).update(**changed, updated_at=timezone.now())


def _field_rows(
    smears: Mapping[str | None, Smear], planned: list[PlannedField], status: FieldStatus, actor: Any
) -> list[Field]:
    image_file = cast(models.FileField, Field._meta.get_field("image"))
    thumbnail_file = cast(models.FileField, Field._meta.get_field("thumbnail"))
    fields = []
    for item in planned:
        field = field_new(
            smear=smears[item.patient],
            image=item.checked,
            byte_size=item.byte_size,
            original_name=item.name,
            actor=actor,
        )
        field.status = field_status_at_creation(status)
        # The names storage gives the files unless one of that name exists (see _names_written_back).
        field.image = image_file.generate_filename(field, "original")
        field.thumbnail = thumbnail_file.generate_filename(field, "thumbnail")
        fields.append(field)
    return fields


def _names_written_back(fields: list[Field], stored: list[tuple[str, str]]) -> None:
    for field, (image_name, thumbnail_name) in zip(fields, stored, strict=True):
        if (field.image.name, field.thumbnail.name) != (image_name, thumbnail_name):
            Field.objects.filter(pk=field.pk).update(image=image_name, thumbnail=thumbnail_name)
            field.image, field.thumbnail = image_name, thumbnail_name


class _TextStream:
    """A read()-able view of text chunks, for COPY ... FROM STDIN without building the whole text."""

    def __init__(self, chunks: Iterator[str]) -> None:
        self._chunks, self._buffer = chunks, ""

    def read(self, size: int = -1) -> str:
        while size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        cut = len(self._buffer) if size < 0 else size
        data, self._buffer = self._buffer[:cut], self._buffer[cut:]
        return data


def _copy_lines(sets: list[tuple[int, list[PlannedCell]]], created_by: int | None, now: datetime) -> Iterator[str]:
    """The cells in COPY's text format, one chunk per set (floats as repr: exactly the checked values)."""
    stamp = now.isoformat()
    tail = f"\t{{}}\t\t{_COPY_NULL if created_by is None else created_by}\t{stamp}\t{stamp}\n"
    for set_id, cells in sets:
        yield "".join(
            f"{set_id}\t{x!r}\t{y!r}\t{w!r}\t{h!r}\t{_COPY_BOOL[countable]}\t"
            f"{_COPY_NULL if cell_class is None else cell_class}{tail}"
            for x, y, w, h, countable, cell_class in cells
        )


def _cells_insert(sets: list[tuple[int, list[PlannedCell]]], created_by: int | None, now: datetime) -> None:
    table, columns = Cell._meta.db_table, ", ".join(CELL_COLUMNS)
    with cells_bulk_insert_checked(connection), connection.cursor() as cursor, connection.wrap_database_errors:
        if connection.vendor == "postgresql":
            stream = _TextStream(_copy_lines(sets, created_by, now))
            cursor.copy_expert(f"COPY {table} ({columns}) FROM STDIN", stream, size=COPY_CHUNK_BYTES)
            return
        stamp = connection.ops.adapt_datetimefield_value(now)
        insert = f"INSERT INTO {table} ({columns}) VALUES ({', '.join(['%s'] * len(CELL_COLUMNS))})"
        rows: list[tuple[Any, ...]] = []
        for set_id, cells in sets:
            rows.extend((set_id, *cell, "{}", "", created_by, stamp, stamp) for cell in cells)
            if len(rows) >= EXECUTEMANY_ROWS:
                cursor.executemany(insert, rows)
                rows.clear()
        if rows:
            cursor.executemany(insert, rows)


def _set_summary(annotation_set: AnnotationSet, cells: list[PlannedCell]) -> dict[str, Any]:
    """What the audit trail records of an imported set (its ids are the event's): counts and a content hash, not
    every box."""
    return {
        "kind": annotation_set.kind,
        "status": annotation_set.status,
        "version": annotation_set.version,
        "source_name": annotation_set.source_name,
        "cells": len(cells),
        "countable": sum(1 for cell in cells if cell.countable),
        "unclassified": sum(1 for cell in cells if cell.countable and cell.cell_class is None),
        "content_sha256": cells_content_hash(cells),
    }


def _audit_events(
    fields: list[Field], sets: list[AnnotationSet], planned: list[PlannedField], target: WriteTarget
) -> list[AuditEvent]:
    """Per field: its upload, and the import of its set (who, which dataset file, counts)."""
    actor = _user(target.actor)
    events = []
    for field, annotation_set, item in zip(fields, sets, planned, strict=True):
        upload = AuditEvent(
            action="field.upload", entity="field", entity_id=field.pk, after=field_upload_snapshot(field)
        )
        imported = AuditEvent(
            action="annotation_set.import",
            entity="annotation_set",
            entity_id=annotation_set.pk,
            annotation_set_id=annotation_set.pk,
            after=_set_summary(annotation_set, item.cells),
            reason=f"imported from {target.source_name}: {item.annotation_file}",
        )
        for event in (upload, imported):
            event.actor, event.field_id = actor, field.pk
            events.append(event)
    return events


def dataset_write(lookup: ImageLookup, planned: list[PlannedField], target: WriteTarget) -> list[int]:
    """Store the planned fields, their sets and cells and the audit trail in one transaction; the new field ids."""
    as_truth = target.annotator is None
    actor = _user(target.actor)
    now = timezone.now()
    with field_files_removed_on_error() as written, transaction.atomic():
        smears = _smears(planned, target)
        _provenance_record(target)
        fields = _field_rows(smears, planned, FieldStatus.CONSENSUS if as_truth else FieldStatus.IN_ANNOTATION, actor)
        with in_background(functools.partial(_store_files, lookup, written), planned) as stored_files:
            Field.objects.bulk_create(fields, batch_size=ROWS_PER_INSERT)
            sets = AnnotationSet.objects.bulk_create(
                (
                    AnnotationSet(
                        field=field,
                        kind=AnnotationKind.IMPORTED if as_truth else AnnotationKind.ANNOTATOR,
                        annotator=target.annotator,
                        source_name=target.source_name[:255],
                        status=AnnotationStatus.LOCKED if as_truth else AnnotationStatus.SUBMITTED,
                        submitted_at=now,
                    )
                    for field in fields
                ),
                batch_size=ROWS_PER_INSERT,
            )
            cells = [(annotation_set.pk, item.cells) for annotation_set, item in zip(sets, planned, strict=True)]
            _cells_insert(cells, actor.pk if actor is not None else None, now)
            AuditEvent.objects.bulk_create(_audit_events(fields, sets, planned, target), batch_size=ROWS_PER_INSERT)
            _names_written_back(fields, stored_files())
    if not as_truth:
        fields_notify_uploaded(fields)
    return [field.pk for field in fields]
