"""Training datasets from truth only: locked consensus sets and imported truth sets (never annotators' work or
model predictions), split per patient, recorded as a DatasetSnapshot for every training run.

Cell-level truth (queued cells two reviewers agreed on, or whose cross-check settled them: `annotations.truth.
cell_truth`) enters as one partial record per field (`whole_field=False`, key "cells:<field id>") holding only those
cells: the countability and class stages learn from their crops, the detector never (a partial field would teach it
that the other cells are background). "Not a white cell" decisions are left out. A field with field-level truth
keeps it as the stronger truth (`cell_truth` leaves its cells out).

Splits are assigned once per patient by `annotations.services.patient_splits_assign` (called by the snapshot builder
before it reads) and stored on `Patient.split`; a patient that already has a split (assigned earlier, or pinned by an
import that keeps a dataset's original split) keeps it, so no patient ever moves between train, val and test as the
data grows.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Prefetch
from django.utils import timezone

from annotations.models import AnnotationKind, Cell, CellReview, CellVerdict, Field
from annotations.services import patient_splits_assign, split_settings
from annotations.truth import cell_truth, fields_with_truth, truth
from training.core.records import CellRecord, FieldRecord, fields_to_jsonl
from training.models import DatasetSnapshot


@dataclass(frozen=True)
class TruthField:
    """A field with its truth set, as the snapshot sees it."""

    record: FieldRecord
    field_id: int
    sha256: str
    source: str  # "consensus", "imported:<source name>" or "cell_review" (cell-level truth)


def _local_image_path(field: Field) -> str:
    """An absolute local path of the field's image; a copy in a local cache for storages without paths (S3)."""
    try:
        return str(Path(field.image.path).resolve())
    except NotImplementedError:
        suffix = Path(field.image.name or "").suffix or ".img"
        cached = Path(settings.AICELL_DATASET_DIR) / "image-cache" / f"{field.sha256}{suffix}"
        if not cached.exists():
            cached.parent.mkdir(parents=True, exist_ok=True)
            partial = cached.with_suffix(cached.suffix + ".part")
            with field.image.open("rb") as source, partial.open("wb") as target:
                shutil.copyfileobj(source, target)
            partial.replace(cached)
        return str(cached)


def _cell_record(cell: Cell) -> CellRecord:
    return CellRecord(
        box=(cell.x, cell.y, cell.x + cell.width, cell.y + cell.height),
        countable=cell.countable,
        class_index=cell.cell_class_id,
    )


def truth_fields(*, field_ids: Iterable[int] | None = None) -> list[TruthField]:
    """Every field with a locked truth set, as training records in their patient's split. A read: the caller gives
    the patients their splits first (`patient_splits_assign`)."""
    sets = truth().select_related("field__smear__case__patient").order_by("field_id")
    if field_ids is not None:
        sets = sets.filter(field_id__in=list(field_ids))
    sets = sets.prefetch_related(Prefetch("cells", queryset=Cell.objects.order_by("id")))
    out: list[TruthField] = []
    for truth_set in sets:
        field = truth_set.field
        patient = field.smear.case.patient.code
        source = "consensus" if truth_set.kind == AnnotationKind.CONSENSUS else f"imported:{truth_set.source_name}"
        record = FieldRecord(
            key=f"field:{field.pk}",
            image_path=_local_image_path(field),
            width=field.width,
            height=field.height,
            patient=patient,
            split=field.smear.case.patient.split,
            cells=tuple(_cell_record(cell) for cell in truth_set.cells.all()),
        )
        out.append(TruthField(record=record, field_id=field.pk, sha256=field.sha256, source=source))
    return out


def cell_truth_fields(*, field_ids: Iterable[int] | None = None) -> list[TruthField]:
    """One partial record per field holding cell-level truth: its truth cells only (countability, class)."""
    reviews = (
        cell_truth()
        .exclude(verdict=CellVerdict.NOT_A_CELL)
        .select_related("field__smear__case__patient")
        .order_by("field_id", "id")
    )
    if field_ids is not None:
        reviews = reviews.filter(field_id__in=list(field_ids))
    by_field: dict[int, list[CellReview]] = defaultdict(list)
    for review in reviews:
        by_field[review.field_id].append(review)
    out: list[TruthField] = []
    for decided in by_field.values():
        field = decided[0].field
        record = FieldRecord(
            key=f"cells:{field.pk}",
            image_path=_local_image_path(field),
            width=field.width,
            height=field.height,
            patient=field.smear.case.patient.code,
            split=field.smear.case.patient.split,
            cells=tuple(_review_record(review) for review in decided),
            whole_field=False,
        )
        out.append(TruthField(record=record, field_id=field.pk, sha256=field.sha256, source="cell_review"))
    return out


def _review_record(review: CellReview) -> CellRecord:
    x, y, w, h = (float(value or 0.0) for value in (review.x, review.y, review.width, review.height))
    return CellRecord(
        box=(x, y, x + w, y + h), countable=review.verdict == CellVerdict.CLASS, class_index=review.cell_class_id
    )


def fields_with_cell_truth() -> Any:
    return Field.objects.filter(pk__in=cell_truth().values("field_id"))


def _content_hash(fields: Sequence[TruthField]) -> str:
    """sha256 of what the data is (image hashes, sizes, patients, splits, cells), not of where it lies."""
    digest = hashlib.sha256()
    for item in fields:
        record = item.record
        line = {
            "key": record.key,
            "sha256": item.sha256,
            "size": [record.width, record.height],
            "patient": record.patient,
            "split": record.split,
            "source": item.source,
            "whole_field": record.whole_field,
            "cells": [cell.to_json() for cell in record.cells],
        }
        digest.update(json.dumps(line, sort_keys=True, separators=(",", ":")).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def snapshot_counts(records: Sequence[FieldRecord]) -> dict[str, Any]:
    counts: dict[str, Any] = {}
    patients: dict[str, set[str]] = defaultdict(set)
    for record in records:
        empty = {"fields": 0, "patients": 0, "cells": 0, "countable": 0, "uncountable": 0, "unclassified": 0}
        split = counts.setdefault(record.split, {**empty, "cell_truth": 0, "classes": {}})
        patients[record.split].add(record.patient)
        if not record.whole_field:  # cell-level truth: counted apart from whole fields (and their cells)
            split["cell_truth"] += len(record.cells)
            continue
        split["fields"] += 1
        classes: Counter[str] = Counter(split["classes"])
        for cell in record.cells:
            split["cells"] += 1
            split["countable" if cell.countable else "uncountable"] += 1
            if cell.class_index is None:
                split["unclassified"] += int(cell.countable)
            else:
                classes[str(cell.class_index)] += 1
        split["classes"] = dict(sorted(classes.items(), key=lambda item: int(item[0])))
    for name, members in patients.items():
        counts[name]["patients"] = len(members)
    return counts


def _sources(fields: Sequence[TruthField]) -> dict[str, dict[str, int]]:
    sources: dict[str, dict[str, int]] = {}
    for item in fields:
        entry = sources.setdefault(item.source, {"fields": 0, "cells": 0})
        entry["fields"] += 1
        entry["cells"] += len(item.record.cells)
    return dict(sorted(sources.items()))


def dataset_snapshot_create(*, actor: Any = None, field_ids: Iterable[int] | None = None) -> DatasetSnapshot:
    """Record today's truth as a snapshot: the JSONL file of FieldRecords plus a manifest naming each field's
    source, and the row with counts per split and class."""
    seed, ratios = split_settings()
    ids = None if field_ids is None else list(field_ids)
    patient_splits_assign(fields=fields_with_truth() if ids is None else fields_with_truth().filter(pk__in=ids))
    patient_splits_assign(
        fields=fields_with_cell_truth() if ids is None else fields_with_cell_truth().filter(pk__in=ids)
    )
    fields = truth_fields(field_ids=ids) + cell_truth_fields(field_ids=ids)
    records = [item.record for item in fields]
    content_hash = _content_hash(fields)
    folder = Path(settings.AICELL_DATASET_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S-%f")
    name = f"snapshot-{stamp}-{content_hash[:12]}.jsonl"
    partial = folder / f".{name}.part"
    fields_to_jsonl(records, partial)
    partial.replace(folder / name)
    manifest = {
        item.record.key: {"field_id": item.field_id, "sha256": item.sha256, "source": item.source} for item in fields
    }
    (folder / f"{name.removesuffix('.jsonl')}.sources.json").write_text(json.dumps(manifest, indent=0))
    with transaction.atomic():
        return DatasetSnapshot.objects.create(
            seed=seed,
            ratios=list(ratios),
            content_hash=content_hash,
            file=name,
            field_count=sum(record.whole_field for record in records),
            cell_count=sum(len(record.cells) for record in records if record.whole_field),
            counts=snapshot_counts(records),
            sources=_sources(fields),
            created_by=actor if actor is not None and actor.is_authenticated else None,
        )


def snapshot_path(snapshot: DatasetSnapshot) -> Path:
    return Path(settings.AICELL_DATASET_DIR) / snapshot.file


def snapshot_records(snapshot: DatasetSnapshot) -> list[FieldRecord]:
    from aicell.errors import StateConflict
    from training.core.records import fields_from_jsonl

    path = snapshot_path(snapshot)
    if not path.is_file():
        raise StateConflict(
            f"The file of dataset snapshot {snapshot.pk} is missing ({path}).", field="dataset_snapshot"
        )
    return fields_from_jsonl(path)


def snapshot_sources(snapshot: DatasetSnapshot) -> dict[str, dict[str, Any]]:
    path = snapshot_path(snapshot)
    manifest = path.with_name(f"{path.name.removesuffix('.jsonl')}.sources.json")
    return json.loads(manifest.read_text()) if manifest.is_file() else {}


# --- self-supervised pretraining: every stored field and box, labelled or not ----------------------------------------

_SET_ORDER: dict[str, int] = {
    AnnotationKind.CONSENSUS: 0,
    AnnotationKind.IMPORTED: 0,
    AnnotationKind.ANNOTATOR: 1,
}  # predictions last
SAME_CELL_IOU = 0.7  # boxes of one field overlapping this much are one cell drawn twice (two annotators, a model)


def _iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def pretraining_fields(*, exclude_splits: Sequence[str] = ()) -> list[FieldRecord]:
    """Every stored field with every box any set draws on it (truth, annotators' work, model predictions), each cell
    once (boxes of one field with IoU >= SAME_CELL_IOU merged, truth kept first): self-supervision reads no label.
    Fields of patients in `exclude_splits` stay out (a benchmark keeps its val fields unseen). A read."""
    fields = Field.objects.select_related("smear__case__patient").order_by("id")
    if exclude_splits:
        fields = fields.exclude(smear__case__patient__split__in=list(exclude_splits))
    fields = fields.prefetch_related(
        Prefetch("annotation_sets__cells", queryset=Cell.objects.order_by("id")),
    )
    records = []
    for field in fields:
        sets = sorted(field.annotation_sets.all(), key=lambda s: (_SET_ORDER.get(s.kind, 2), s.pk))
        cells: list[CellRecord] = []
        for annotation_set in sets:
            for cell in annotation_set.cells.all():
                record = _cell_record(cell)
                if cell.width > 0 and cell.height > 0 and all(_iou(record.box, c.box) < SAME_CELL_IOU for c in cells):
                    cells.append(record)
        patient = field.smear.case.patient
        records.append(
            FieldRecord(
                key=f"field:{field.pk}",
                image_path=_local_image_path(field),
                width=field.width,
                height=field.height,
                patient=patient.code,
                split=patient.split or "train",  # no split yet: pretraining reads no split anyway
                cells=tuple(cells),
                whole_field=False,  # boxes of any origin: never a detector's truth
            )
        )
    return records
