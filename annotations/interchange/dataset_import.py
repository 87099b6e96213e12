"""Importing a COCO or Pascal VOC dataset into a case, all or nothing.

1. read the dataset (`coco_import` / `voc_import`) and map every box through the label map;
2. check every image exactly as an upload is checked (full decode, size and pixel limits) and every kept box
   against its image; images already stored (same sha256) or repeated in the dataset are reported and skipped;
3. if anything is wrong, raise one ValidationFailed that lists every problem (file and reason): nothing is written;
4. otherwise write everything in one transaction: fields (through the upload path's `field_store`), one annotation
   set per field, its cells and the audit trail. Stored files are deleted again if the transaction fails.

"As consensus" makes an `imported` truth set (locked, source_name = the dataset's name) and puts the field in the
consensus state; "as annotator:USERNAME" makes that annotator's submitted set and the field waits for the second
annotator (and is pre-labelled like an upload). Images are read twice (check, then store) so that only one image
is ever held in memory.
"""

from __future__ import annotations

import dataclasses
import hashlib
import posixpath
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from aicell.errors import FieldError, ValidationFailed
from aicell.roles import Role, has_role
from annotations.audit import annotation_set_snapshot, audit_record
from annotations.field_states import field_transition
from annotations.images import CheckedImage, ImageRejected
from annotations.interchange.archive import DatasetFiles, Problem, UnsafeArchive
from annotations.interchange.coco_import import coco_read
from annotations.interchange.dataset import ForeignDataset, ForeignImage
from annotations.interchange.label_map import LabelMap, class_from_field_types, label_map_for_taxonomy
from annotations.interchange.voc_import import voc_read
from annotations.models import (
    AnnotationKind,
    AnnotationSet,
    AnnotationStatus,
    Case,
    Cell,
    Field,
    FieldStatus,
    ImportFormat,
    Smear,
)
from annotations.services import (
    field_files_removed_on_error,
    field_image_check,
    field_store,
    fields_notify_uploaded,
    validate_box,
)

ProgressCallback = Callable[[float, str], None]  # (percent, what is happening)
CONSENSUS = "consensus"
ANNOTATOR_PREFIX = "annotator:"


@dataclass(frozen=True)
class ImportOptions:
    format: str
    case: Case
    smear_code: str = "S1"
    annotator: Any = None  # None: the dataset is imported as truth
    label_map: LabelMap | None = None
    ids: frozenset[str] | None = None
    field_types: Mapping[str, list[str]] | None = None
    source_name: str = ""
    dry_run: bool = False
    coco_json: list[str] | None = None  # read only these annotation files of a COCO dataset


@dataclass(frozen=True)
class PlannedCell:
    x: float
    y: float
    width: float
    height: float
    countable: bool
    cell_class: int | None
    ref: str = ""


@dataclass
class PlannedField:
    image: ForeignImage
    checked: CheckedImage  # without its bytes: only one image is held in memory at a time
    cells: list[PlannedCell]


@dataclass
class ImportReport:
    fields: int = 0
    cells: int = 0
    unclassified_cells: int = 0
    ignored_boxes: dict[str, int] = field(default_factory=dict)
    duplicates: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    field_ids: list[int] = field(default_factory=list)
    smear: str = ""
    source_name: str = ""
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "fields": self.fields,
            "cells": self.cells,
            "unclassified_cells": self.unclassified_cells,
            "ignored_boxes": self.ignored_boxes,
            "duplicates": [vars(problem) for problem in self.duplicates],
            "warnings": [vars(problem) for problem in self.warnings],
            "field_ids": self.field_ids,
            "smear": self.smear,
            "source_name": self.source_name,
            "dry_run": self.dry_run,
        }


def import_annotator(value: str) -> Any:
    """The user an import's `as` names: None for "consensus", else the annotator of "annotator:USERNAME"."""
    from django.contrib.auth.models import User

    if value == CONSENSUS:
        return None
    username = value.removeprefix(ANNOTATOR_PREFIX) if value.startswith(ANNOTATOR_PREFIX) else None
    user = User.objects.filter(username=username, is_active=True).first() if username else None
    if user is None or not has_role(user, Role.ANNOTATOR):
        raise ValidationFailed(
            f"'as' must be 'consensus' or 'annotator:USERNAME' naming an active annotator, not {value!r}.", field="as"
        )
    return user


def _read(files: DatasetFiles, options: ImportOptions) -> ForeignDataset:
    if options.format == ImportFormat.VOC:
        return voc_read(files)
    if options.format == ImportFormat.COCO:
        return coco_read(files, json_names=options.coco_json)
    raise ValidationFailed(f"format must be coco or voc, not {options.format!r}.", field="format")


class _Checker:
    """Maps and checks one image after another, collecting problems, warnings and what to write."""

    def __init__(self, files: DatasetFiles, options: ImportOptions, report: ImportReport) -> None:
        self.files, self.options, self.report = files, options, report
        self.label_map = options.label_map or label_map_for_taxonomy(report.source_name)
        self.problems: list[Problem] = []
        self.ignored: Counter[str] = Counter()
        self.first_by_hash: dict[str, str] = {}

    def cells(self, image: ForeignImage) -> tuple[list[PlannedCell], bool]:
        """The image's kept boxes as cells (before the size check), and whether they all mapped without a problem."""
        unknown: Counter[str] = Counter()
        cells: list[PlannedCell] = []
        typed: list[int] = []
        ok = True
        for box in image.boxes:
            try:
                target = self.label_map.target(box.label)
            except KeyError:
                unknown[box.label] += 1
                continue
            if target is None:
                self.ignored[box.label] += 1
                continue
            if box.error is not None:
                self.problems.append(Problem(image.annotation_file, f"{box.ref}: {box.error}"))
                ok = False
                continue
            cell_class = target.cell_class if target.countable or box.cell_class is None else box.cell_class
            if target.class_from_field_types:
                typed.append(len(cells))
            cells.append(PlannedCell(box.x, box.y, box.width, box.height, target.countable, cell_class, box.ref))
        for label, count in unknown.items():
            self.problems.append(
                Problem(image.annotation_file, f"label {label!r} ({count} box(es)) is not in the label map")
            )
        return cells, ok and not unknown and self._typed_classes(image, cells, typed)

    def _typed_classes(self, image: ForeignImage, cells: list[PlannedCell], typed: list[int]) -> bool:
        """Give the boxes whose class comes from the field's type list that class (see class_from_field_types)."""
        if not typed:
            return True
        types = (self.options.field_types or {}).get(image.key)
        try:
            decision = class_from_field_types(len(typed), types, self.label_map.field_types)
        except KeyError as exc:
            self.problems.append(Problem(image.key, f"cell type {exc.args[0]!r} is not in the label map's field_types"))
            return False
        if decision.note:
            self.report.warnings.append(Problem(image.annotation_file, decision.note))
        for index in typed:
            cells[index] = dataclasses.replace(cells[index], cell_class=decision.cell_class)
        return True

    def image(self, image: ForeignImage) -> CheckedImage | None:
        """The checks of an image that passes the upload checks (without its bytes); None after a problem."""
        try:
            checked = field_image_check(self.files.read(image.image_path))
        except (ImageRejected, UnsafeArchive, FileNotFoundError) as exc:
            self.problems.append(Problem(image.image_path, str(exc)))
            return None
        declared = (image.declared_width, image.declared_height)
        if all(declared) and declared != (checked.width, checked.height):
            self.problems.append(
                Problem(
                    image.annotation_file,
                    f"declares the image as {declared[0]}x{declared[1]}, but {image.image_path} is "
                    f"{checked.width}x{checked.height}",
                )
            )
            return None
        return dataclasses.replace(checked, data=b"")

    def boxes_fit(self, image: ForeignImage, cells: list[PlannedCell], width: int, height: int) -> bool:
        ok = True
        for cell in cells:
            box = {"x": cell.x, "y": cell.y, "width": cell.width, "height": cell.height}
            try:
                validate_box(box, image_width=width, image_height=height)
            except ValidationFailed as exc:
                reasons = "; ".join(error.reason for error in exc.errors)
                self.problems.append(Problem(image.annotation_file, f"{cell.ref} {box}: {reasons}"))
                ok = False
        return ok

    def plan(self, image: ForeignImage) -> PlannedField | None:
        """Every problem of the image is recorded (mapping, image, box sizes) before it is given up."""
        cells, mapped = self.cells(image)
        checked = self.image(image)
        fits = checked is not None and self.boxes_fit(image, cells, checked.width, checked.height)
        if not (mapped and fits) or checked is None:
            return None
        if checked.sha256 in self.first_by_hash:
            first = self.first_by_hash[checked.sha256]
            self.report.duplicates.append(Problem(image.image_path, f"the same image as {first}"))
            return None
        self.first_by_hash[checked.sha256] = image.image_path
        return PlannedField(image, checked, cells)


def _selected(dataset: ForeignDataset, ids: frozenset[str] | None, problems: list[Problem]) -> list[ForeignImage]:
    if ids is None:
        return dataset.images
    chosen = [image for image in dataset.images if image.matches(set(ids))]
    known = {name for image in chosen for name in (image.key, *image.aliases)}
    problems.extend(Problem("ids", f"{wanted}: no such image in the dataset") for wanted in sorted(ids - known))
    return chosen


def _skip_stored(planned: list[PlannedField], report: ImportReport) -> list[PlannedField]:
    stored: dict[str, int] = {}
    hashes = [item.checked.sha256 for item in planned]
    for start in range(0, len(hashes), 500):
        stored.update(Field.objects.filter(sha256__in=hashes[start : start + 500]).values_list("sha256", "id"))
    for item in planned:
        if item.checked.sha256 in stored:
            field_id = stored[item.checked.sha256]
            report.duplicates.append(Problem(item.image.image_path, f"already stored as field {field_id}"))
    return [item for item in planned if item.checked.sha256 not in stored]


def _report_progress(progress: ProgressCallback | None, percent: float, message: str) -> None:
    if progress is not None:
        progress(percent, message)


def dataset_import(
    files: DatasetFiles, options: ImportOptions, *, actor: Any, progress: ProgressCallback | None = None
) -> ImportReport:
    """Import the dataset (see the module docstring); ValidationFailed lists every problem, nothing written."""
    report = ImportReport(
        smear=options.smear_code,
        source_name=options.source_name or (options.label_map.name if options.label_map else "") or files.label,
        dry_run=options.dry_run,
    )
    dataset = _read(files, options)
    checker = _Checker(files, options, report)
    checker.problems.extend(dataset.problems)
    report.warnings.extend(dataset.warnings)
    images = _selected(dataset, options.ids, checker.problems)
    planned: list[PlannedField] = []
    for number, image in enumerate(images, start=1):
        item = checker.plan(image)
        if item is not None:
            planned.append(item)
        if number % 20 == 0:
            _report_progress(progress, 50 * number / len(images), f"checked {number} of {len(images)} images")
    report.ignored_boxes = dict(sorted(checker.ignored.items()))
    if checker.problems:
        raise ValidationFailed(
            f"The dataset has {len(checker.problems)} problem(s); nothing was imported.",
            errors=[FieldError(problem.file, problem.reason) for problem in checker.problems],
            details={"warnings": [vars(problem) for problem in report.warnings]},
        )
    planned = _skip_stored(planned, report)
    report.fields = len(planned)
    report.cells = sum(len(item.cells) for item in planned)
    report.unclassified_cells = sum(
        1 for item in planned for cell in item.cells if cell.countable and cell.cell_class is None
    )
    if not options.dry_run:
        # Progress written inside the transaction would stay invisible until it commits: say so once, before.
        _report_progress(progress, 50, f"storing {len(planned)} fields in one transaction")
        report.field_ids = _write(files, options, planned, report.source_name, actor)
    return report


def _write(
    files: DatasetFiles,
    options: ImportOptions,
    planned: list[PlannedField],
    source_name: str,
    actor: Any,
) -> list[int]:
    as_truth = options.annotator is None
    fields: list[Field] = []
    with field_files_removed_on_error() as written, transaction.atomic():
        smear, _ = Smear.objects.get_or_create(case=options.case, code=options.smear_code)
        for item in planned:
            data = files.read(item.image.image_path)
            # Checked (fully decoded) before; the bytes must still be those that were checked.
            if hashlib.sha256(data).hexdigest() != item.checked.sha256:
                path = item.image.image_path
                raise ValidationFailed(f"{path} changed during the import.", field=path)
            image = dataclasses.replace(item.checked, data=data)
            field = field_store(
                smear=smear,
                image=image,
                original_name=posixpath.basename(item.image.image_path),
                actor=actor,
                written=written,
            )
            _write_set(field, item, options, source_name, actor)
            field_transition(field, FieldStatus.CONSENSUS if as_truth else FieldStatus.IN_ANNOTATION)
            fields.append(field)
    if not as_truth:
        fields_notify_uploaded(fields)
    return [field.pk for field in fields]


def _write_set(field: Field, item: PlannedField, options: ImportOptions, source_name: str, actor: Any) -> None:
    as_truth = options.annotator is None
    annotation_set = AnnotationSet.objects.create(
        field=field,
        kind=AnnotationKind.IMPORTED if as_truth else AnnotationKind.ANNOTATOR,
        annotator=options.annotator,
        source_name=source_name[:255],
        status=AnnotationStatus.LOCKED if as_truth else AnnotationStatus.SUBMITTED,
        submitted_at=timezone.now(),
    )
    Cell.objects.bulk_create(
        Cell(
            annotation_set=annotation_set,
            x=cell.x,
            y=cell.y,
            width=cell.width,
            height=cell.height,
            countable=cell.countable,
            cell_class_id=cell.cell_class,
            created_by=actor if actor is not None and actor.is_authenticated else None,
        )
        for cell in item.cells
    )
    audit_record(
        actor=actor,
        action="annotation_set.import",
        entity="annotation_set",
        entity_id=annotation_set.pk,
        field_id=field.pk,
        annotation_set_id=annotation_set.pk,
        after=annotation_set_snapshot(annotation_set),
        reason=f"imported from {source_name}: {item.image.annotation_file}",
    )
