"""Importing a dataset into a case, all or nothing, in three steps that know nothing of the format:

1. read: the format's reader (FORMAT_READERS) turns the files into images with labelled boxes in pixels
   (`dataset.ForeignDataset`), finding image files through `image_refs.ImageLookup` (given an image folder, also by
   file name: absolute paths, URLs, Label Studio's references);
2. check (this module): map every box through the label map; check every image exactly as an upload is checked
   (full decode, size and pixel limits; in threads) and every kept box against its image. A box that overshoots
   its image by less than 1 px (other tools round like that) is clamped to the edge and reported; anything more is a
   problem. Images already stored (same sha256) or repeated in the dataset are reported and skipped;
3. if anything is wrong, raise DatasetRefused: its errors sum the problems up by kind, with counts and the first
   images named, and it carries every problem for the CSV report. Nothing is written;
4. otherwise write everything in one transaction, set-based (`dataset_write`).

"As consensus" makes an `imported` truth set (locked, source_name = the dataset's name) and puts the field in the
consensus state; "as annotator:USERNAME" makes that annotator's submitted set and the field waits for the second
annotator (and is pre-labelled like an upload). Images are read twice (check, then store) so that only the few
images the threads work on are ever held in memory.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError

from aicell.errors import FieldError, ValidationFailed
from aicell.roles import Role, has_role
from annotations.images import CheckedImage, ImageRejected
from annotations.interchange.archive import DatasetFiles, UnsafeArchive
from annotations.interchange.coco_import import coco_read
from annotations.interchange.cvat_import import cvat_read
from annotations.interchange.dataset import ForeignBox, ForeignDataset, ForeignImage, license_of
from annotations.interchange.dataset_write import PlannedCell, PlannedField, WriteTarget, dataset_write
from annotations.interchange.image_refs import ImageFolder, ImageLookup
from annotations.interchange.label_map import LabelMap, LabelTarget, class_from_field_types, label_map_for_taxonomy
from annotations.interchange.labelstudio_import import labelstudio_read
from annotations.interchange.parallel import map_in_threads
from annotations.interchange.problems import Problem, problems_grouped
from annotations.interchange.voc_import import voc_read
from annotations.interchange.yolo_import import yolo_read
from annotations.models import PSEUDONYM_VALIDATOR, Case, Field, ImportFormat, Patient
from annotations.services import field_image_check, patient_splits_conflicting, validate_box

ProgressCallback = Callable[[float, str], None]  # (percent, what is happening)
CONSENSUS = "consensus"
ANNOTATOR_PREFIX = "annotator:"
# A box that overshoots its image by less than this (rounding in other tools' exports) is clamped to the edge.
CLAMP_BELOW_PX = 1.0
PROGRESS_EVERY_IMAGES = 20

BAD_BOX_KIND = "box without usable coordinates"
BOX_OUTSIDE_KIND = f"box outside its image by {CLAMP_BELOW_PX:g} px or more"
CLAMPED_KIND = f"boxes clamped to the image edge (overshoot under {CLAMP_BELOW_PX:g} px)"
IMAGE_REFUSED_KIND = "image refused by the upload checks"
IMAGE_UNREADABLE_KIND = "image file unreadable"
SIZE_MISMATCH_KIND = "declared image size differs from the image file"
REPEATED_KIND = "image repeated in the dataset; skipped"
STORED_KIND = "image already stored; skipped"


@dataclass(frozen=True)
class ImportOptions:
    format: str
    case: Case | None  # None: each image goes to its patient's case (patient_per_image or patients)
    smear_code: str = "S1"
    annotator: Any = None  # None: the dataset is imported as truth
    label_map: LabelMap | None = None
    ids: frozenset[str] | None = None
    field_types: Mapping[str, list[str]] | None = None
    source_name: str = ""
    dry_run: bool = False
    coco_json: list[str] | None = None  # read only these annotation files of a COCO dataset
    images: ImageFolder | None = None  # where image references that lead nowhere are looked up by file name
    split_from_dataset: bool = False  # pin each image's split in the dataset on its patient
    patient_per_image: bool = False  # each image its own patient (and case): <patient_prefix>-<image name>
    patients: Mapping[str, str] | None = None  # image name (without extension) -> patient code
    patient_prefix: str = ""
    provenance: Mapping[str, str] = field(default_factory=dict)  # licence, source given on the command line


def _read_coco(files: DatasetFiles, lookup: ImageLookup, options: ImportOptions) -> ForeignDataset:
    return coco_read(files, lookup, json_names=options.coco_json)


def _read_voc(files: DatasetFiles, lookup: ImageLookup, options: ImportOptions) -> ForeignDataset:
    return voc_read(files, lookup)


def _read_cvat(files: DatasetFiles, lookup: ImageLookup, options: ImportOptions) -> ForeignDataset:
    return cvat_read(files, lookup)


def _read_labelstudio(files: DatasetFiles, lookup: ImageLookup, options: ImportOptions) -> ForeignDataset:
    return labelstudio_read(files, lookup)


def _read_yolo(files: DatasetFiles, lookup: ImageLookup, options: ImportOptions) -> ForeignDataset:
    return yolo_read(files, lookup)


# The readers by format: a new format is a reader producing a ForeignDataset, registered here.
FORMAT_READERS: Mapping[str, Callable[[DatasetFiles, ImageLookup, ImportOptions], ForeignDataset]] = {
    ImportFormat.COCO: _read_coco,
    ImportFormat.VOC: _read_voc,
    ImportFormat.YOLO: _read_yolo,
    ImportFormat.CVAT: _read_cvat,
    ImportFormat.LABEL_STUDIO: _read_labelstudio,
}


@dataclass
class ImportReport:
    fields: int = 0
    cells: int = 0
    unclassified_cells: int = 0
    ignored_boxes: dict[str, int] = field(default_factory=dict)
    duplicates: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    clamped: list[Problem] = field(default_factory=list)  # one per image with clamped boxes
    images_found_by_name: int = 0
    field_ids: list[int] = field(default_factory=list)
    smear: str = ""
    source_name: str = ""
    dry_run: bool = False
    images_per_split: dict[str, int] = field(default_factory=dict)
    patients: dict[str, dict[str, Any]] = field(default_factory=dict)  # code -> {split, images}
    splits_pinned: dict[str, str] = field(default_factory=dict)
    provenance: dict[str, str] = field(default_factory=dict)

    @property
    def clamped_boxes(self) -> int:
        return sum(note.boxes for note in self.clamped)

    def notes(self) -> list[tuple[str, Problem]]:
        """What the import did besides storing: (outcome, note) rows of the CSV report."""
        return [
            *(("skipped", note) for note in self.duplicates),
            *(("clamped", note) for note in self.clamped),
            *(("warning", note) for note in self.warnings),
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "fields": self.fields,
            "cells": self.cells,
            "unclassified_cells": self.unclassified_cells,
            "ignored_boxes": self.ignored_boxes,
            "clamped_boxes": self.clamped_boxes,
            "images_found_by_name": self.images_found_by_name,
            "summary": [group.summary() for group in problems_grouped(note for _, note in self.notes())],
            "duplicates": [problem.to_dict() for problem in self.duplicates],
            "warnings": [problem.to_dict() for problem in self.warnings],
            "field_ids": self.field_ids,
            "smear": self.smear,
            "source_name": self.source_name,
            "dry_run": self.dry_run,
            "images_per_split": self.images_per_split,
            "patients_per_split": dict(sorted(Counter(p["split"] for p in self.patients.values()).items())),
            "patients": self.patients,
            "splits_pinned": self.splits_pinned,
            "provenance": self.provenance,
        }


class DatasetRefused(ValidationFailed):
    """The dataset has problems; nothing was imported. The errors sum them up by kind (counts, first images named);
    `report_rows` lists every problem and note for the CSV report."""

    def __init__(self, problems: list[Problem], notes: list[tuple[str, Problem]]) -> None:
        groups = problems_grouped(problems)
        super().__init__(
            f"The dataset has {len(problems):,} problem(s) of {len(groups)} kind(s); nothing was imported.",
            errors=[FieldError(group.where, group.summary()) for group in groups],
            details={
                "problems": len(problems),
                "problem_groups": [group.to_dict() for group in groups],
                "warnings": [note.to_dict() for outcome, note in notes if outcome == "warning"],
            },
        )
        self.report_rows: list[tuple[str, Problem]] = [*(("refused", problem) for problem in problems), *notes]


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


def _image_checked(lookup: ImageLookup, image: ForeignImage) -> tuple[CheckedImage, int] | Problem:
    """The upload checks of one image (run in threads): the checks without the bytes and their size, or why not."""
    try:
        data = lookup.read(image.image_path)
        checked = field_image_check(data)
    except ImageRejected as exc:
        return Problem(image.image_path, str(exc), kind=IMAGE_REFUSED_KIND, image=image.name)
    except (UnsafeArchive, FileNotFoundError) as exc:
        return Problem(image.image_path, str(exc), kind=IMAGE_UNREADABLE_KIND, image=image.name)
    return dataclasses.replace(checked, data=b""), len(data)


def _clamped(cell: PlannedCell, width: int, height: int) -> PlannedCell | None:
    """The box cut at the image's edges, exactly inside it (x + width <= image width in floating point, as the
    database checks it); None when nothing of it is left."""
    left, top = max(cell.x, 0.0), max(cell.y, 0.0)
    box_width, box_height = min(cell.x + cell.width, width) - left, min(cell.y + cell.height, height) - top
    if box_width <= 0 or box_height <= 0:
        return None
    while left + box_width > width:
        box_width = math.nextafter(box_width, 0.0)
    while top + box_height > height:
        box_height = math.nextafter(box_height, 0.0)
    return cell._replace(x=left, y=top, width=box_width, height=box_height)


# Fractions scaled to pixels land a rounding error away from the edge they were written from: that is no overshoot.
_SCALING_SLACK_PX = 1e-6


def _scaled(cell: PlannedCell, width: int, height: int) -> PlannedCell:
    """A box given as fractions of the image size in pixels; an edge within _SCALING_SLACK_PX of the image's is
    put on it."""
    x, y, w, h = cell.x * width, cell.y * height, cell.width * width, cell.height * height
    if -_SCALING_SLACK_PX < x < 0:
        w, x = w + x, 0.0
    if -_SCALING_SLACK_PX < y < 0:
        h, y = h + y, 0.0
    if width < x + w < width + _SCALING_SLACK_PX:
        w = width - x
        while x + w > width:
            w = math.nextafter(w, 0.0)
    if height < y + h < height + _SCALING_SLACK_PX:
        h = height - y
        while y + h > height:
            h = math.nextafter(h, 0.0)
    return cell._replace(x=x, y=y, width=w, height=h)


class _Checker:
    """Maps and checks one image after another, collecting problems, notes and what to write."""

    def __init__(self, options: ImportOptions, report: ImportReport) -> None:
        self.options, self.report = options, report
        self.label_map = options.label_map or label_map_for_taxonomy(report.source_name)
        self.problems: list[Problem] = []
        self.ignored: Counter[str] = Counter()
        self.first_by_hash: dict[str, str] = {}
        self._targets: dict[str, tuple[bool, LabelTarget | None]] = {}  # label -> (known, target)

    def _target(self, label: str) -> tuple[bool, LabelTarget | None]:
        if label not in self._targets:
            try:
                self._targets[label] = (True, self.label_map.target(label))
            except KeyError:
                self._targets[label] = (False, None)
        return self._targets[label]

    def cells(self, image: ForeignImage) -> tuple[list[PlannedCell], list[ForeignBox], bool]:
        """The image's kept boxes as cells (before the size check), their boxes, and whether all mapped cleanly."""
        unknown: Counter[str] = Counter()
        cells: list[PlannedCell] = []
        kept: list[ForeignBox] = []
        typed: list[int] = []
        ok = True
        for box in image.boxes:
            known, target = self._target(box.label)
            if not known:
                unknown[box.label] += 1
                continue
            if target is None:
                self.ignored[box.label] += 1
                continue
            if box.error is not None:
                reason = f"{image.name}: {box.ref}: {box.error}"
                self.problems.append(Problem(image.annotation_file, reason, BAD_BOX_KIND, image.name, boxes=1))
                ok = False
                continue
            cell_class = target.cell_class if target.countable or box.cell_class is None else box.cell_class
            if target.class_from_field_types:
                typed.append(len(cells))
            cells.append(PlannedCell(box.x, box.y, box.width, box.height, target.countable, cell_class))
            kept.append(box)
        for label, count in unknown.items():
            self.problems.append(
                Problem(
                    image.annotation_file,
                    f"{image.name}: label {label!r} ({count} box(es)) is not in the label map",
                    kind=f"label {label!r} is not in the label map",
                    image=image.name,
                    boxes=count,
                )
            )
        return cells, kept, ok and not unknown and self._typed_classes(image, cells, typed)

    def _typed_classes(self, image: ForeignImage, cells: list[PlannedCell], typed: list[int]) -> bool:
        """Give the boxes whose class comes from the field's type list that class (see class_from_field_types)."""
        if not typed:
            return True
        types = (self.options.field_types or {}).get(image.key)
        try:
            decision = class_from_field_types(len(typed), types, self.label_map.field_types)
        except KeyError as exc:
            reason = f"cell type {exc.args[0]!r} is not in the label map's field_types"
            self.problems.append(Problem(image.key, reason, kind=reason, image=image.name, boxes=len(typed)))
            return False
        if decision.note:
            self.report.warnings.append(Problem(image.annotation_file, decision.note, image=image.name))
        for index in typed:
            cells[index] = cells[index]._replace(cell_class=decision.cell_class)
        return True

    def boxes_fit(
        self, image: ForeignImage, cells: list[PlannedCell], kept: list[ForeignBox], width: int, height: int
    ) -> bool:
        """Every box inside the image; boxes overshooting by less than CLAMP_BELOW_PX are clamped in place."""
        ok = True
        clamped, worst = 0, 0.0
        for index, cell in enumerate(cells):
            x, y, w, h = cell.x, cell.y, cell.width, cell.height
            if x >= 0.0 and y >= 0.0 and x + w <= width and y + h <= height:
                continue
            overshoot = max(-x, -y, x + w - width, y + h - height)
            fitted = _clamped(cell, width, height) if overshoot < CLAMP_BELOW_PX else None
            if fitted is not None:
                cells[index] = fitted
                clamped, worst = clamped + 1, max(worst, overshoot)
                continue
            ok = False
            box = {"x": x, "y": y, "width": w, "height": h}
            try:
                validate_box(box, image_width=width, image_height=height)
                reasons = "nothing of it is left inside the image"
            except ValidationFailed as exc:
                reasons = "; ".join(error.reason for error in exc.errors)
            reason = f"{image.name}: {kept[index].ref} {box}: {reasons}"
            self.problems.append(Problem(image.annotation_file, reason, BOX_OUTSIDE_KIND, image.name, boxes=1))
        if clamped:
            reason = f"{image.name}: {clamped} box(es) overshooting the image by up to {worst:.3g} px clamped to it"
            self.report.clamped.append(Problem(image.annotation_file, reason, CLAMPED_KIND, image.name, clamped))
        return ok

    def plan(self, image: ForeignImage, checked: tuple[CheckedImage, int] | Problem) -> PlannedField | None:
        """Every problem of the image is recorded (mapping, image, box sizes) before it is given up; the boxes of a
        refused image are counted under its problem, not checked against it."""
        cells, kept, mapped = self.cells(image)
        if isinstance(checked, Problem):
            self.problems.append(dataclasses.replace(checked, boxes=len(cells)))
            return None
        image_checks, byte_size = checked
        declared = (image.declared_width, image.declared_height)
        actual = (image_checks.width, image_checks.height)
        if all(declared) and declared != actual:
            reason = (
                f"declares the image as {declared[0]}x{declared[1]}, but {image.image_path} is {actual[0]}x{actual[1]}"
            )
            self.problems.append(Problem(image.annotation_file, reason, SIZE_MISMATCH_KIND, image.name, len(cells)))
            return None
        if image.normalized:
            cells[:] = [_scaled(cell, *actual) for cell in cells]
        if not (self.boxes_fit(image, cells, kept, *actual) and mapped):
            return None
        if image_checks.sha256 in self.first_by_hash:
            first = self.first_by_hash[image_checks.sha256]
            self.report.duplicates.append(
                Problem(image.image_path, f"the same image as {first}", REPEATED_KIND, image.name)
            )
            return None
        self.first_by_hash[image_checks.sha256] = image.image_path
        return PlannedField(
            image.image_path,
            image.name,
            image.annotation_file,
            image_checks,
            byte_size,
            cells,
            key=image.key,
            split=image.split,
        )


def _selected(dataset: ForeignDataset, ids: frozenset[str] | None, problems: list[Problem]) -> list[ForeignImage]:
    if ids is None:
        return dataset.images
    chosen = [image for image in dataset.images if image.matches(set(ids))]
    known = {name for image in chosen for name in (image.key, *image.aliases)}
    problems.extend(
        Problem("ids", f"{wanted}: no such image in the dataset", kind="--ids names an image the dataset lacks")
        for wanted in sorted(ids - known)
    )
    return chosen


PATIENT_UNKNOWN_KIND = "image not in the --patients file"
PATIENT_CODE_KIND = "not a valid patient code"
PATIENT_SPLITS_KIND = "patient's images are in more than one split of the dataset"
PATIENT_STORED_SPLIT_KIND = "patient already has another split"
CASE_OF_OTHER_PATIENT_KIND = "a case of this code belongs to another patient"
NO_SPLIT_KIND = "image in no split of the dataset; its patient gets one by the per-patient rule"
_CODE_CHARACTERS = re.compile(r"[^A-Za-z0-9._-]+")
CODE_MAX = 64


def _per_image_code(prefix: str, key: str) -> str:
    """A patient code from an image name: characters a code may not hold become '_'; a long one is cut and keeps a
    hash of the whole, so two names never meet."""
    code = _CODE_CHARACTERS.sub("_", f"{prefix}-{key}" if prefix else key).lstrip("._-") or "image"
    if len(code) > CODE_MAX:
        code = f"{code[: CODE_MAX - 9]}-{hashlib.sha256(code.encode()).hexdigest()[:8]}"
    return code


class _Placement:
    """Which patient each image goes to and the split the dataset pins on it (--split-from-dataset), checked
    against what is stored: a problem per image or patient, never a guess."""

    def __init__(self, options: ImportOptions, problems: list[Problem], report: ImportReport) -> None:
        self.options, self.problems, self.report = options, problems, report

    def patient_of(self, item: PlannedField) -> str | None:
        options = self.options
        if options.patients is not None:
            code = options.patients.get(item.key)
            if code is None:
                reason = f"{item.name}: no patient given for {item.key!r} in the --patients file"
                self.problems.append(Problem(item.annotation_file, reason, PATIENT_UNKNOWN_KIND, item.name))
                return None
            try:
                PSEUDONYM_VALIDATOR(code)
            except DjangoValidationError:
                reason = f"{item.name}: {code!r} is not a patient code (letters, digits, '.', '_', '-'; up to 64)"
                self.problems.append(Problem(item.annotation_file, reason, PATIENT_CODE_KIND, item.name))
                return None
            return code
        if options.patient_per_image:
            return _per_image_code(options.patient_prefix, item.key)
        return None

    def place(self, planned: list[PlannedField]) -> dict[str, str]:
        """Set each item's patient; returns patient code -> the split to pin ("" for none)."""
        options = self.options
        splits: dict[str | None, set[str]] = defaultdict(set)
        without_split: list[PlannedField] = []
        for item in planned:
            item.patient = self.patient_of(item)
            if not options.split_from_dataset:
                continue
            if item.split is None:
                without_split.append(item)
            else:
                splits[item.patient].add(item.split)
        for item in without_split[:1]:
            reason = f"{len(without_split)} image(s) in no split of the dataset (first: {item.name})"
            self.report.warnings.append(Problem(item.annotation_file, reason, NO_SPLIT_KIND, item.name))
        pinned: dict[str, str] = {}
        case_patient = options.case.patient.code if options.case is not None else None
        for patient, found in splits.items():
            code = patient if patient is not None else case_patient
            if code is None:
                continue
            if len(found) > 1:
                if patient is None:
                    reason = (
                        f"the dataset's images are in {', '.join(sorted(found))}, but all go to patient {code}: give "
                        "--patient-per-image or --patients FILE"
                    )
                else:
                    reason = f"patient {code}: images in {', '.join(sorted(found))}"
                self.problems.append(Problem(code, reason, PATIENT_SPLITS_KIND))
                continue
            pinned[code] = next(iter(found))
        for code, stored in patient_splits_conflicting(pinned).items():
            reason = f"patient {code} is in {stored}; the dataset puts it in {pinned[code]}"
            self.problems.append(Problem(code, reason, PATIENT_STORED_SPLIT_KIND))
        codes = sorted({item.patient for item in planned if item.patient is not None})
        for start in range(0, len(codes), 500):
            cases = Case.objects.filter(code__in=codes[start : start + 500]).select_related("patient")
            for case in cases:
                if case.patient.code != case.code:
                    reason = f"case {case.code} belongs to patient {case.patient.code}, not to patient {case.code}"
                    self.problems.append(Problem(case.code, reason, CASE_OF_OTHER_PATIENT_KIND))
        return pinned

    def count(self, planned: list[PlannedField], pinned: Mapping[str, str]) -> None:
        """Images per split and per patient, for the report (the split each patient has, stored or pinned now)."""
        case_patient = self.options.case.patient if self.options.case is not None else None
        images: Counter[str] = Counter()
        for item in planned:
            images[item.patient or (case_patient.code if case_patient is not None else "")] += 1
        stored = dict(Patient.objects.filter(code__in=list(images)[:10_000]).values_list("code", "split"))
        for code, count in sorted(images.items()):
            split = pinned.get(code) or stored.get(code) or ""
            self.report.patients[code] = {"split": split or "unassigned", "images": count}
        per_split: Counter[str] = Counter()
        for code, count in images.items():
            per_split[self.report.patients[code]["split"]] += count
        self.report.images_per_split = dict(sorted(per_split.items()))


def _skip_stored(planned: list[PlannedField], report: ImportReport) -> list[PlannedField]:
    stored: dict[str, int] = {}
    hashes = [item.checked.sha256 for item in planned]
    for start in range(0, len(hashes), 500):
        stored.update(Field.objects.filter(sha256__in=hashes[start : start + 500]).values_list("sha256", "id"))
    for item in planned:
        if item.checked.sha256 in stored:
            reason = f"already stored as field {stored[item.checked.sha256]}"
            report.duplicates.append(Problem(item.image_path, reason, STORED_KIND, item.name))
    return [item for item in planned if item.checked.sha256 not in stored]


def _report_progress(progress: ProgressCallback | None, percent: float, message: str) -> None:
    if progress is not None:
        progress(percent, message)


def _read(files: DatasetFiles, lookup: ImageLookup, options: ImportOptions) -> ForeignDataset:
    reader = FORMAT_READERS.get(options.format)
    if reader is None:
        names = " or ".join(FORMAT_READERS)
        raise ValidationFailed(f"format must be {names}, not {options.format!r}.", field="format")
    return reader(files, lookup, options)


def dataset_import(
    files: DatasetFiles, options: ImportOptions, *, actor: Any, progress: ProgressCallback | None = None
) -> ImportReport:
    """Import the dataset (see the module docstring); DatasetRefused lists every problem, nothing written."""
    report = ImportReport(
        smear=options.smear_code,
        source_name=options.source_name or (options.label_map.name if options.label_map else "") or files.label,
        dry_run=options.dry_run,
    )
    lookup = ImageLookup(files, options.images)
    dataset = _read(files, lookup, options)
    report.images_found_by_name = lookup.found_by_name
    report.provenance = {**dataset.provenance, **{k: v for k, v in options.provenance.items() if v}}
    if not report.provenance.get("license"):
        found = license_of(files.names(), files.read)
        if found:
            report.provenance["license"] = found
    checker = _Checker(options, report)
    checker.problems.extend(dataset.problems)
    report.warnings.extend(dataset.warnings)
    images = _selected(dataset, options.ids, checker.problems)
    del dataset  # its images live on in `images` until checked; the rest can go
    planned: list[PlannedField] = []
    checks = map_in_threads(functools.partial(_image_checked, lookup), images)
    for number, (image, checked) in enumerate(zip(images, checks, strict=True), start=1):
        item = checker.plan(image, checked)
        if item is not None:
            planned.append(item)
        if number % PROGRESS_EVERY_IMAGES == 0:
            _report_progress(progress, 50 * number / len(images), f"checked {number} of {len(images)} images")
    del images
    report.ignored_boxes = dict(sorted(checker.ignored.items()))
    placement = _Placement(options, checker.problems, report)
    pinned = placement.place(planned)
    if checker.problems:
        raise DatasetRefused(checker.problems, report.notes())
    planned = _skip_stored(planned, report)
    placement.count(planned, pinned)
    report.splits_pinned = {code: split for code, split in pinned.items() if split}
    report.fields = len(planned)
    report.cells = sum(len(item.cells) for item in planned)
    report.unclassified_cells = sum(
        1 for item in planned for cell in item.cells if cell.countable and cell.cell_class is None
    )
    if not options.dry_run:
        # Progress written inside the transaction would stay invisible until it commits: say so once, before.
        _report_progress(progress, 50, f"storing {len(planned)} fields in one transaction")
        case = options.case if options.patients is None and not options.patient_per_image else None
        target = WriteTarget(
            case,
            options.smear_code,
            options.annotator,
            report.source_name,
            actor,
            patient_splits=pinned,
            provenance=report.provenance,
            format=options.format,
        )
        report.field_ids = dataset_write(lookup, planned, target)
    return report
