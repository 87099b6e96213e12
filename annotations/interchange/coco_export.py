"""The streaming COCO writer: one zip, written entry by entry, never holding more than one chunk of rows.

Layout of the zip:
    annotations/instances_<split>.json   COCO dataset of the split (images, 23 fixed categories, annotations; boxes
                                         with an empty "segmentation", our fields also under "attributes")
    results/predictions_<split>.json     COCO results file of the chosen model version (when predictions are asked
                                         for and the split has any), loadable with COCO.loadRes for COCOeval
    images/<split>/<image id, 8 digits>.<jpg|png>   the field images, metadata-free (`images.export_copy`)

JSON arrays are written into the zip entry chunk by chunk from a database cursor (server-side on PostgreSQL), so
memory stays flat however many annotations there are. Annotation rows are formatted straight into JSON text: at a
million boxes, building a dict per box and encoding it costs several times more. Image ids are field ids and
annotation ids cell ids: stable across exports. Cases, smears and annotators appear only as keyed pseudonyms; no
patient code, upload name or EXIF.
"""

from __future__ import annotations

import json
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import connection
from django.db.models import QuerySet

from annotations.images import EXPORT_EXTENSIONS, export_copy
from annotations.interchange.coco_format import (
    CATEGORIES,
    CATEGORY_ID_RULE,
    category_id,
    finite_or_none,
    prediction_score,
    pseudonym,
)
from annotations.interchange.export_selection import (
    CELL_COLUMNS,
    ExportPlan,
    export_provenance,
    export_splits,
    exported_fields,
    instance_cells,
    prediction_cells,
)
from annotations.models import AnnotationKind, ReviewOutcome
from annotations.truth import truth_source

CHUNK_ROWS = 5000
PROGRESS_EVERY_S = 1.0
ProgressCallback = Callable[[int, int], None]  # (rows done, rows in all)
IMAGE_COLUMNS = ("id", "width", "height", "format", "smear_id", "smear__case_id")
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
# SQLite returns booleans as 0/1, PostgreSQL as bool; both hash alike.
_JSON_BOOL = {True: "true", False: "false"}


@dataclass
class SplitSummary:
    images: int = 0
    annotations: int = 0
    predictions: int = 0


@dataclass
class ExportSummary:
    splits: dict[str, SplitSummary] = field(default_factory=dict)
    model_version: int | None = None
    left_out: dict[str, int] = field(default_factory=dict)
    split_all: str | None = None
    splits_assigned: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "splits": {name: vars(split) for name, split in self.splits.items()},
            "images": sum(split.images for split in self.splits.values()),
            "annotations": sum(split.annotations for split in self.splits.values()),
            "predictions": sum(split.predictions for split in self.splits.values()),
            "model_version": self.model_version,
            "left_out": self.left_out,
            "split_all": self.split_all,
            # Patients that had no split and got one for this export (patient code -> split), as training would.
            "splits_assigned": self.splits_assigned,
        }


class Progress:
    """Counts rows and calls back at most once a second (each call is a database write and a cancel check)."""

    def __init__(self, total: int, callback: ProgressCallback | None) -> None:
        self.total, self.done, self._callback, self._last = total, 0, callback, 0.0

    def advance(self, rows: int) -> None:
        self.done += rows
        now = time.monotonic()
        if self._callback is not None and now - self._last >= PROGRESS_EVERY_S:
            self._last = now
            self._callback(self.done, self.total)


def pseudonym_key() -> bytes:
    return settings.AICELL_EXPORT_PSEUDONYM_KEY.encode()


def image_file_name(field_id: int, image_format: str) -> str:
    return f"{field_id:08d}.{EXPORT_EXTENSIONS[image_format]}"


def row_chunks(queryset: QuerySet[Any], columns: Sequence[str]) -> Iterator[list[Sequence[Any]]]:
    """The rows of a values_list queryset, CHUNK_ROWS at a time, straight from the database cursor."""
    query = queryset.query
    selected = [*query.values_select, *query.annotation_select]
    if selected != list(columns):  # the raw SQL's column order must be the order the formatter unpacks
        raise RuntimeError(f"unexpected column order {selected}")
    sql, params = query.sql_with_params()
    # A server-side cursor on PostgreSQL (unless disabled, e.g. behind pgbouncer), as QuerySet.iterator() uses.
    server_side = not connection.settings_dict.get("DISABLE_SERVER_SIDE_CURSORS")
    with connection.chunked_cursor() if server_side else connection.cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(CHUNK_ROWS):
            yield rows


def _write_array(handle: IO[bytes], chunks: Iterable[list[str]], progress: Progress) -> int:
    """A JSON array of pre-encoded items written chunk by chunk; returns how many items it holds."""
    handle.write(b"[")
    count = 0
    for items in chunks:
        if not items:
            continue
        if count:
            handle.write(b",")
        handle.write(",".join(items).encode())
        count += len(items)
        progress.advance(len(items))
    handle.write(b"]")
    return count


def _number(value: float | None) -> str:
    finite = finite_or_none(value)
    return "null" if finite is None else repr(float(finite))


class Rows:
    """Turns database rows into COCO JSON text; pseudonyms and string literals are cached."""

    def __init__(self, key: bytes, split: str) -> None:
        self.split = split
        self._key = key
        self._sources: dict[tuple[Any, ...], str] = {}
        self._texts: dict[str | None, str] = {None: "null"}
        self._pseudonyms: dict[tuple[str, int], str] = {}

    def _pseudonym(self, kind: str, pk: int) -> str:
        if (kind, pk) not in self._pseudonyms:
            self._pseudonyms[kind, pk] = pseudonym(self._key, kind, pk)
        return self._pseudonyms[kind, pk]

    def _text(self, value: str | None) -> str:
        if value not in self._texts:
            self._texts[value] = json.dumps(value)
        return self._texts[value]

    def image(self, row: Sequence[Any]) -> dict[str, Any]:
        field_id, width, height, image_format, smear_id, case_id = row
        extra = {
            "case": self._pseudonym("case", case_id),
            "smear": self._pseudonym("smear", smear_id),
            "split": self.split,
        }
        return {
            "id": field_id,
            "file_name": image_file_name(field_id, image_format),
            "width": width,
            "height": height,
            **extra,
            "attributes": extra,
        }

    def source(self, kind: str, source_name: str, annotator_id: int | None, model_version_id: int | None) -> str:
        """The box's source as a JSON string: consensus, imported:<dataset>, annotator:<pseudonym>, model:<id>."""
        cache_key = (kind, source_name, annotator_id, model_version_id)
        if cache_key not in self._sources:
            if kind == AnnotationKind.CONSENSUS:
                source = "consensus"
            elif kind == AnnotationKind.IMPORTED:
                source = f"imported:{source_name}" if source_name else "imported"
            elif kind == AnnotationKind.ANNOTATOR:
                source = f"annotator:{self._pseudonym('annotator', annotator_id or 0)}"
            else:
                source = f"model:{model_version_id}"
            self._sources[cache_key] = json.dumps(source)
        return self._sources[cache_key]

    def annotation(self, row: Sequence[Any], *, as_result: bool = False) -> str:
        """One annotation (or, as_result, one entry of a COCO results file) as JSON text."""
        (cell_id, field_id, x, y, w, h, countable, cell_class, kind, status, source_name, annotator_id,
         model_version_id, review_outcome, detector_score, confidence, consensus_outcome, cell_truth_outcome,
         ) = row  # fmt: skip
        countable = bool(countable)
        category = category_id(countable, cell_class)
        source = self.source(kind, source_name, annotator_id, model_version_id)
        klass = "null" if cell_class is None else str(cell_class)
        bbox = f"[{x!r},{y!r},{w!r},{h!r}]"
        score = ""
        if kind == AnnotationKind.PREDICTION:
            score = f',"score":{prediction_score(detector_score, confidence)!r}'
        if as_result:
            return (
                f'{{"image_id":{field_id},"category_id":{category},"bbox":{bbox}{score},"source":{source},'
                f'"countable":{_JSON_BOOL[countable]},"cell_class":{klass}}}'
            )
        outcome = review_outcome or consensus_outcome or None
        agreed = "null" if outcome is None else _JSON_BOOL[outcome == ReviewOutcome.AGREED]
        if score:
            score += f',"detector_score":{_number(detector_score)},"class_confidence":{_number(confidence)}'
        truth = self._text(truth_source(kind, status, cell_truth_outcome))
        extra = (
            f'"source":{source},"review_state":{self._text(status)},"review_outcome":{self._text(outcome)},'
            f'"annotators_agreed":{agreed},"truth_source":{truth},"countable":{_JSON_BOOL[countable]},'
            f'"cell_class":{klass}{score}'
        )
        # Box-only, so "segmentation" is empty (as tools expect it present); our fields twice: where readers of
        # earlier exports find them, and under "attributes", the only place Datumaro and CVAT keep extra fields.
        return (
            f'{{"id":{cell_id},"image_id":{field_id},"category_id":{category},"segmentation":[],"bbox":{bbox},'
            f'"area":{w * h!r},"iscrowd":0,{extra},"attributes":{{{extra}}}}}'
        )


def coco_licenses(provenance: list[dict[str, str]]) -> list[dict[str, Any]]:
    """COCO `licenses`: one per distinct licence of the exported datasets (id from 1), with the source's URL."""
    licenses: dict[str, dict[str, Any]] = {}
    for dataset in provenance:
        if dataset["license"] and dataset["license"] not in licenses:
            licenses[dataset["license"]] = {"id": len(licenses) + 1, "name": dataset["license"], "url": dataset["url"]}
    return list(licenses.values())


def _info(plan: ExportPlan, split: str, provenance: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "description": f"AI-cell export, split {split}",
        "version": "1",
        "date_created": datetime.now(UTC).isoformat(timespec="seconds"),
        "sources": sorted(plan.sources),
        "instance_sources": sorted(plan.instance_sources),
        "classes": sorted(plan.category_ids) if plan.category_ids is not None else "all",
        "model_version": plan.model_version_id,
        "category_ids": f"{CATEGORY_ID_RULE} (countable, class unknown)",
        "url": "; ".join(sorted({dataset["url"] for dataset in provenance if dataset["url"]})),
        "datasets": provenance,  # the imported datasets of this export: name, licence, source URL, description
    }


def _write_instances(
    archive: zipfile.ZipFile, plan: ExportPlan, rows: Rows, progress: Progress, provenance: list[dict[str, str]]
) -> SplitSummary:
    split = rows.split
    head = {
        "info": _info(plan, split, provenance),
        "licenses": coco_licenses(provenance),
        "categories": list(CATEGORIES),
    }
    with archive.open(f"annotations/instances_{split}.json", "w", force_zip64=True) as handle:
        handle.write(json.dumps(head, separators=(",", ":"))[:-1].encode())
        handle.write(b',"images":')
        images_query = exported_fields(plan, split).values_list(*IMAGE_COLUMNS)
        image_chunks = (
            [json.dumps(rows.image(row), separators=(",", ":")) for row in chunk]
            for chunk in row_chunks(images_query, IMAGE_COLUMNS)
        )
        images = _write_array(handle, image_chunks, progress)
        handle.write(b',"annotations":')
        cells_query = instance_cells(plan, split).values_list(*CELL_COLUMNS)
        cell_chunks = ([rows.annotation(row) for row in chunk] for chunk in row_chunks(cells_query, CELL_COLUMNS))
        annotations = _write_array(handle, cell_chunks, progress)
        handle.write(b"}")
    return SplitSummary(images=images, annotations=annotations)


def _write_results(archive: zipfile.ZipFile, plan: ExportPlan, rows: Rows, progress: Progress) -> int:
    query = prediction_cells(plan, rows.split)
    # pycocotools' loadRes cannot read an empty results list, so a split without predictions gets no file.
    if not query.exists():
        return 0
    with archive.open(f"results/predictions_{rows.split}.json", "w", force_zip64=True) as handle:
        chunks = (
            [rows.annotation(row, as_result=True) for row in chunk]
            for chunk in row_chunks(query.values_list(*CELL_COLUMNS), CELL_COLUMNS)
        )
        return _write_array(handle, chunks, progress)


def write_images(archive: zipfile.ZipFile, plan: ExportPlan, split: str, progress: Progress) -> None:
    fields = exported_fields(plan, split).values_list("id", "image", "format")
    for field_id, image_name, image_format in fields.iterator(CHUNK_ROWS):
        with default_storage.open(image_name, "rb") as handle:
            data = export_copy(handle.read(), image_format)
        entry = zipfile.ZipInfo(f"images/{split}/{image_file_name(field_id, image_format)}", date_time=ZIP_EPOCH)
        entry.compress_type = zipfile.ZIP_STORED  # JPEG and PNG are compressed already
        entry.external_attr = 0o100644 << 16  # a regular file, rw-r--r--
        archive.writestr(entry, data)
        progress.advance(1)


def total_rows(plan: ExportPlan, splits: list[str]) -> int:
    total = 0
    for split in splits:
        total += 2 * exported_fields(plan, split).count() + instance_cells(plan, split).count()
        if plan.with_results:
            total += prediction_cells(plan, split).count()
    return total


def export_start(plan: ExportPlan, progress: ProgressCallback | None) -> tuple[list[str], Progress, ExportSummary]:
    """What every format's writer starts from: the plan's splits, a progress tracker over all rows, an empty summary."""
    splits = export_splits(plan)
    tracker = Progress(total_rows(plan, splits) if progress else 0, progress)
    summary = ExportSummary(
        model_version=plan.model_version_id,
        left_out=dict(plan.left_out),
        split_all=plan.split_all,
        splits_assigned=dict(plan.splits_assigned),
    )
    return splits, tracker, summary


def coco_export_write(plan: ExportPlan, out: IO[bytes], *, progress: ProgressCallback | None = None) -> ExportSummary:
    """Write the export zip into `out` (a file opened for binary writing) and say what it holds."""
    splits, tracker, summary = export_start(plan, progress)
    provenance = export_provenance(plan)
    level = settings.AICELL_EXPORT_ZIP_LEVEL
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=level) as archive:
        for split in splits:
            rows = Rows(pseudonym_key(), split)
            summary.splits[split] = _write_instances(archive, plan, rows, tracker, provenance)
            if plan.with_results:
                summary.splits[split].predictions = _write_results(archive, plan, rows, tracker)
            write_images(archive, plan, split, tracker)
    if progress:
        progress(tracker.total, tracker.total)
    return summary
