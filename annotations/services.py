"""Writes to the domain data. Each function checks its input, writes in one transaction, records the audit trail
and raises a domain error (aicell.errors) that the API turns into a clear response."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import math
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from aicell.errors import FieldError, NotFound, PermissionDenied, StateConflict, ValidationFailed
from aicell.roles import Role, has_role
from annotations.audit import annotation_set_snapshot, audit_record, cell_snapshot
from annotations.field_states import field_transition
from annotations.images import CheckedImage, ImageRejected, check_image, make_thumbnail
from annotations.models import (
    AnnotationKind,
    AnnotationSet,
    AnnotationStatus,
    Assignment,
    Cell,
    CellClass,
    Field,
    FieldReview,
    FieldStatus,
    Patient,
    ReviewOutcome,
    ReviewSettings,
    Smear,
)
from annotations.splits import assign_splits
from annotations.taxonomy import NUM_CLASSES

User = AbstractBaseUser


@dataclass(frozen=True)
class Upload:
    name: str
    data: bytes


# --- fields ------------------------------------------------------------------------------------------------------


def field_image_check(data: bytes) -> CheckedImage:
    """The checks every stored field image passes, whichever way it arrives (upload, dataset import)."""
    return check_image(data, max_pixels=settings.AICELL_MAX_UPLOAD_PIXELS, max_bytes=settings.AICELL_MAX_UPLOAD_BYTES)


def field_upload_many(*, smear: Smear, uploads: Sequence[Upload], actor: Any) -> list[Field]:
    """Store a batch of field images into a smear: all of them, or (on any bad file) none of them.

    Every file is decoded before anything is written; a duplicate of a stored field answers 409 with its id.
    """
    if not uploads:
        raise ValidationFailed("Send at least one image file.", field="files")
    checked = []
    errors: list[FieldError] = []
    first_index_by_hash: dict[str, int] = {}
    for index, upload in enumerate(uploads):
        label = f"files[{index}] ({upload.name})"
        try:
            image = field_image_check(upload.data)
        except ImageRejected as exc:
            errors.append(FieldError(label, str(exc)))
            continue
        if image.sha256 in first_index_by_hash:
            errors.append(FieldError(label, f"the same image as files[{first_index_by_hash[image.sha256]}]"))
            continue
        first_index_by_hash[image.sha256] = index
        checked.append((upload, image))
    if errors:
        raise ValidationFailed(
            f"{len(errors)} of {len(uploads)} files were refused; nothing was stored.", errors=errors
        )
    existing = dict(Field.objects.filter(sha256__in=[image.sha256 for _, image in checked]).values_list("sha256", "id"))
    if existing:
        duplicates = [
            FieldError(
                f"files[{first_index_by_hash[image.sha256]}] ({upload.name})",
                f"already stored as field {existing[image.sha256]}",
            )
            for upload, image in checked
            if image.sha256 in existing
        ]
        raise StateConflict(
            "The batch holds images that are already stored; nothing was stored.",
            errors=duplicates,
            details={"existing_field_ids": sorted(existing.values())},
        )
    with field_files_removed_on_error() as written, transaction.atomic():
        fields = [
            field_store(smear=smear, image=image, original_name=upload.name, actor=actor, written=written)
            for upload, image in checked
        ]
    fields_notify_uploaded(fields)
    return fields


@contextlib.contextmanager
def field_files_removed_on_error() -> Iterator[list[str]]:
    """Collects the storage names of the files written for new fields (`field_files_save`); when the block fails (and
    its transaction rolls back), those files are deleted too, so a failed batch leaves no orphan files."""
    written: list[str] = []
    try:
        yield written
    except IntegrityError as exc:
        _delete_files(written)
        # A concurrent upload of the same image won the race between our duplicate check and the insert.
        raise StateConflict(
            "An image of this batch was stored by another upload meanwhile; nothing was stored."
        ) from exc
    except BaseException:
        _delete_files(written)
        raise


def field_files_save(field: Field, data: bytes, written: list[str]) -> None:
    """Store a new field's image and its thumbnail (names from the content hash and format set on `field`) and
    note their storage names in `written`. Touches no database, so threads may run it side by side."""
    thumbnail = make_thumbnail(data, settings.AICELL_THUMBNAIL_SIZE)
    field.image.save("original", ContentFile(data), save=False)
    written.append(str(field.image.name))
    field.thumbnail.save("thumbnail", ContentFile(thumbnail), save=False)
    written.append(str(field.thumbnail.name))


def field_new(*, smear: Smear, image: CheckedImage, byte_size: int, original_name: str, actor: Any) -> Field:
    """The unsaved row of a new field from a checked image."""
    return Field(
        smear=smear,
        width=image.width,
        height=image.height,
        sha256=image.sha256,
        format=image.format,
        byte_size=byte_size,
        original_name=original_name[:255],
        uploaded_by=actor if actor is not None and actor.is_authenticated else None,
    )


def field_upload_snapshot(field: Field) -> dict[str, Any]:
    """What the audit trail records of a stored field image."""
    return {"sha256": field.sha256, "smear": field.smear_id, "width": field.width, "height": field.height}


def field_store(*, smear: Smear, image: CheckedImage, original_name: str, actor: Any, written: list[str]) -> Field:
    """One checked image as a new field: file, thumbnail, row and audit event. Call it inside a transaction and
    `field_files_removed_on_error` (whose list is `written`)."""
    field = field_new(smear=smear, image=image, byte_size=len(image.data), original_name=original_name, actor=actor)
    field_files_save(field, image.data, written)
    field.save()
    audit_record(
        actor=actor,
        action="field.upload",
        entity="field",
        entity_id=field.pk,
        field_id=field.pk,
        after=field_upload_snapshot(field),
    )
    return field


def fields_notify_uploaded(fields: Sequence[Field]) -> None:
    """Run the upload hooks (pre-labelling) for new fields once the transaction that stored them commits."""
    transaction.on_commit(functools.partial(_notify_fields_uploaded, [field.pk for field in fields]))


def _delete_files(names: Sequence[str]) -> None:
    for name in names:
        default_storage.delete(name)


# Callbacks run with the ids of a batch of fields once its upload commits (the pre-label trigger registers itself
# here); kept as a list so the upload path does not import the inference app.
FIELD_UPLOADED_HOOKS: list[Callable[[list[int]], object]] = []


def _notify_fields_uploaded(field_ids: list[int]) -> None:
    for hook in FIELD_UPLOADED_HOOKS:
        hook(field_ids)


# --- annotation sets and cells ----------------------------------------------------------------------------------


def annotation_set_create_for_annotator(*, field: Field, annotator: Any) -> AnnotationSet:
    with transaction.atomic():
        # The field's status as it is now, locked: the co-annotator may have started the field since it was read.
        field = Field.objects.select_for_update().get(pk=field.pk)
        if not Assignment.objects.filter(field=field, annotator=annotator).exists():
            raise PermissionDenied(
                f"Field {field.pk} is not assigned to you; an adjudicator or admin assigns fields to annotators."
            )
        mine = AnnotationSet.objects.filter(field=field, annotator=annotator, kind=AnnotationKind.ANNOTATOR)
        if (existing := mine.first()) is not None:
            raise _set_exists(existing)
        try:
            with transaction.atomic():
                annotation_set = AnnotationSet.objects.create(
                    field=field, kind=AnnotationKind.ANNOTATOR, annotator=annotator
                )
        except IntegrityError:
            # Another request of the same annotator (a second tab) created it after the check: the same answer.
            raise _set_exists(mine.get()) from None
        if field.status in (FieldStatus.UPLOADED, FieldStatus.PRELABELLED):
            field_transition(field, FieldStatus.IN_ANNOTATION)
        audit_record(
            actor=annotator,
            action="annotation_set.create",
            entity="annotation_set",
            entity_id=annotation_set.pk,
            field_id=field.pk,
            annotation_set_id=annotation_set.pk,
            after={"kind": annotation_set.kind, "version": annotation_set.version},
        )
    return annotation_set


def _set_exists(existing: AnnotationSet) -> StateConflict:
    return StateConflict(
        f"You already have annotation set {existing.pk} for field {existing.field_id}.",
        details={"existing_annotation_set_id": existing.pk},
    )


def _finite(name: str, value: Any, errors: list[FieldError]) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        errors.append(FieldError(name, "must be a number"))
        return None
    if not math.isfinite(value):
        errors.append(FieldError(name, "must be a finite number"))
        return None
    return float(value)


def validate_box(box: Mapping[str, Any], *, image_width: int, image_height: int) -> tuple[float, float, float, float]:
    """A box in image pixels: finite, positive size, entirely inside the image."""
    errors: list[FieldError] = []
    x, y, w, h = (_finite(key, box.get(key), errors) for key in ("x", "y", "width", "height"))
    if errors or x is None or y is None or w is None or h is None:
        raise ValidationFailed("The box needs finite numbers x, y, width and height.", errors=errors)
    if w <= 0:
        errors.append(FieldError("width", "must be greater than 0"))
    if h <= 0:
        errors.append(FieldError("height", "must be greater than 0"))
    if x < 0:
        errors.append(FieldError("x", "must be 0 or more (the box starts left of the image)"))
    if y < 0:
        errors.append(FieldError("y", "must be 0 or more (the box starts above the image)"))
    if x + w > image_width:
        errors.append(FieldError("width", f"x + width = {x + w:g} exceeds the image width {image_width}"))
    if y + h > image_height:
        errors.append(FieldError("height", f"y + height = {y + h:g} exceeds the image height {image_height}"))
    if errors:
        raise ValidationFailed("The box lies outside the image.", errors=errors)
    return x, y, w, h


def validate_cell_class(value: Any) -> CellClass | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < NUM_CLASSES:
        raise ValidationFailed(
            f"cell_class must be a class id from 0 to {NUM_CLASSES - 1} or null.", field="cell_class"
        )
    return CellClass.objects.get(pk=value)


def lock_set_for_write(annotation_set_id: int, expected_version: int | None, actor: Any) -> AnnotationSet:
    """Lock the set row, then check the writer may change it and read the version it is changing."""
    annotation_set = (
        AnnotationSet.objects.select_for_update().select_related("field").filter(pk=annotation_set_id).first()
    )
    if annotation_set is None:
        raise NotFound(f"Annotation set {annotation_set_id} does not exist.")
    if annotation_set.kind == AnnotationKind.ANNOTATOR:
        _check_annotator_may_write(annotation_set, actor)
    elif annotation_set.kind == AnnotationKind.CONSENSUS:
        check_adjudicator_may_change(annotation_set, actor)
    else:
        raise PermissionDenied(f"A {annotation_set.kind} set cannot be edited through the annotators' endpoints.")
    check_version(expected_version, annotation_set.version, lambda: annotation_set_snapshot(annotation_set))
    return annotation_set


def check_version(expected: int | None, current: int, current_state: Callable[[], Any], what: str = "set") -> None:
    """The optimistic lock: a write names the version it read; a stale one is refused with the current state."""
    if expected is None:
        raise ValidationFailed(
            f"Say which version of the {what} you are changing (If-Match header or 'version').", field="version"
        )
    if expected != current:
        raise StateConflict(
            f"The {what} changed since you read it (you sent version {expected}, it is at version {current}); "
            "nothing was changed.",
            details={"current_version": current, "current": current_state()},
        )


def _check_annotator_may_write(annotation_set: AnnotationSet, actor: Any) -> None:
    if annotation_set.annotator_id != getattr(actor, "pk", None):
        raise PermissionDenied("This annotation set belongs to another annotator.")
    if annotation_set.status != AnnotationStatus.DRAFT:
        raise PermissionDenied("This annotation set is submitted and locked; changes go through the cross-check.")


def check_adjudicator_may_change(consensus: AnnotationSet, actor: Any, *, must_be_open: bool = True) -> None:
    """The consensus changes only by an adjudicator who did not annotate the field, and only while reopened."""
    if not has_role(actor, Role.ADJUDICATOR):
        raise PermissionDenied(
            "The consensus is final: only an adjudicator changes it, after reopening it with a reason."
        )
    if Assignment.objects.filter(field_id=consensus.field_id, annotator=actor).exists():
        raise PermissionDenied("You annotated this field; another adjudicator decides on it.")
    if must_be_open and consensus.status != AnnotationStatus.DRAFT:
        raise PermissionDenied("The consensus is locked; an adjudicator reopens it with a reason first.")


def _bump_version(annotation_set: AnnotationSet) -> None:
    annotation_set.version += 1
    annotation_set.save(update_fields=["version", "updated_at"])


def cell_create(
    *, annotation_set_id: int, expected_version: int | None, data: Mapping[str, Any], actor: Any, reason: str = ""
) -> Cell:
    with transaction.atomic():
        annotation_set = lock_set_for_write(annotation_set_id, expected_version, actor)
        field = annotation_set.field
        x, y, w, h = validate_box(data, image_width=field.width, image_height=field.height)
        cell = Cell.objects.create(
            annotation_set=annotation_set,
            x=x,
            y=y,
            width=w,
            height=h,
            countable=_countable(data.get("countable", True)),
            cell_class=validate_cell_class(data.get("cell_class")),
            source_cell=_source_cell(data.get("source_cell"), annotation_set),
            review_outcome=_outcome_of_edit(annotation_set),
            created_by=actor,
        )
        _bump_version(annotation_set)
        audit_record(
            actor=actor,
            action="cell.create",
            entity="cell",
            entity_id=cell.pk,
            field_id=field.pk,
            annotation_set_id=annotation_set.pk,
            after=cell_snapshot(cell),
            reason=_reason_of_edit(annotation_set, reason),
        )
    return cell


def _outcome_of_edit(annotation_set: AnnotationSet) -> str:
    return ReviewOutcome.ADJUDICATED if annotation_set.kind == AnnotationKind.CONSENSUS else ""


def _reason_of_edit(annotation_set: AnnotationSet, reason: str) -> str:
    """An edit of a reopened consensus without its own reason is recorded with the reason it was reopened for."""
    if reason or annotation_set.kind != AnnotationKind.CONSENSUS:
        return reason
    review = FieldReview.objects.filter(field_id=annotation_set.field_id).first()
    return review.reopen_reason if review is not None else ""


def _countable(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValidationFailed("countable must be true or false.", field="countable")
    return value


def _source_cell(value: Any, annotation_set: AnnotationSet) -> Cell | None:
    """Provenance of a new cell: an annotator copies a model suggestion of the field (when the project shows
    them); a consensus cell may come from any annotator or model cell of the field. The message is the same for
    a cell that does not exist and one the writer may not use, so it reveals nothing about other annotators."""
    if value is None:
        return None
    candidates = Cell.objects.filter(annotation_set__field_id=annotation_set.field_id)
    if annotation_set.kind == AnnotationKind.ANNOTATOR:
        shown = ReviewSettings.load().show_prelabels
        candidates = candidates.filter(annotation_set__kind=AnnotationKind.PREDICTION) if shown else candidates.none()
        allowed = "a model suggestion of this field"
    else:
        candidates = candidates.filter(annotation_set__kind__in=[AnnotationKind.ANNOTATOR, AnnotationKind.PREDICTION])
        allowed = "an annotator's or the model's cell of this field"
    source = candidates.filter(pk=value).first() if isinstance(value, int) and not isinstance(value, bool) else None
    if source is None:
        raise ValidationFailed(f"source_cell {value!r} is not {allowed}.", field="source_cell")
    return source


_EDITABLE = ("x", "y", "width", "height", "countable", "cell_class")


def cell_update(
    *, cell_id: int, expected_version: int | None, changes: Mapping[str, Any], actor: Any, reason: str = ""
) -> Cell:
    unknown = sorted(set(changes) - set(_EDITABLE) - {"version"})
    if unknown:
        raise ValidationFailed(
            f"These attributes cannot be changed: {', '.join(unknown)}.",
            errors=[FieldError(name, "not editable") for name in unknown],
        )
    with transaction.atomic():
        cell = _cell_for_write(cell_id)
        annotation_set = lock_set_for_write(cell.annotation_set_id, expected_version, actor)
        # The returned cell carries the set as this write left it: read lazily after the commit, the set could show
        # a later writer's version, and the ETag answered would let this client overwrite a change it never saw.
        cell.annotation_set = annotation_set
        field = annotation_set.field
        before = cell_snapshot(cell)
        box = {"x": cell.x, "y": cell.y, "width": cell.width, "height": cell.height}
        box.update({key: changes[key] for key in ("x", "y", "width", "height") if key in changes})
        cell.x, cell.y, cell.width, cell.height = validate_box(box, image_width=field.width, image_height=field.height)
        if "countable" in changes:
            cell.countable = _countable(changes["countable"])
        if "cell_class" in changes:
            cell.cell_class = validate_cell_class(changes["cell_class"])
        cell.review_outcome = _outcome_of_edit(annotation_set) or cell.review_outcome
        cell.save()
        _bump_version(annotation_set)
        audit_record(
            actor=actor,
            action="cell.update",
            entity="cell",
            entity_id=cell.pk,
            field_id=field.pk,
            annotation_set_id=annotation_set.pk,
            before=before,
            after=cell_snapshot(cell),
            reason=_reason_of_edit(annotation_set, reason),
        )
    return cell


def _cell_for_write(cell_id: int) -> Cell:
    cell = Cell.objects.filter(pk=cell_id).first()
    if cell is None:
        raise NotFound(f"Cell {cell_id} does not exist.")
    return cell


def cell_delete(*, cell_id: int, expected_version: int | None, actor: Any, reason: str = "") -> AnnotationSet:
    """Delete a cell; returns its set at the version this deletion produced (the ETag to answer)."""
    with transaction.atomic():
        cell = _cell_for_write(cell_id)
        annotation_set = lock_set_for_write(cell.annotation_set_id, expected_version, actor)
        before = cell_snapshot(cell)
        cell.delete()
        _bump_version(annotation_set)
        audit_record(
            actor=actor,
            action="cell.delete",
            entity="cell",
            entity_id=cell_id,
            field_id=annotation_set.field_id,
            annotation_set_id=annotation_set.pk,
            before=before,
            reason=_reason_of_edit(annotation_set, reason),
        )
    return annotation_set


# --- model suggestions -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Accepted:
    created: list[Cell]
    skipped: list[int]
    annotation_set: AnnotationSet


def annotation_set_accept_predictions(
    *,
    annotation_set_id: int,
    expected_version: int | None,
    cell_ids: Sequence[int] | None,
    accept_all: bool,
    prediction_set_id: int | None,
    actor: Any,
) -> Accepted:
    """Copy model suggestions of the set's field into an annotator's own set, `source_cell` naming each one.

    Either the listed prediction cells or every cell of one prediction set (the newest unless named); suggestions
    the set already holds a copy of are skipped. One version step for the whole batch.
    """
    if accept_all == (cell_ids is not None):
        raise ValidationFailed('Send either "cells": [prediction cell ids] or "all": true.', field="cells")
    with transaction.atomic():
        annotation_set = lock_set_for_write(annotation_set_id, expected_version, actor)
        if annotation_set.kind != AnnotationKind.ANNOTATOR:
            raise PermissionDenied("Model suggestions are accepted into an annotator's own set only.")
        if not ReviewSettings.load().show_prelabels:
            raise PermissionDenied("This project hides the model's pre-labels from annotators.")
        suggestions = _suggestions(annotation_set.field_id, cell_ids, prediction_set_id)
        already = set(annotation_set.cells.filter(source_cell__in=suggestions).values_list("source_cell_id", flat=True))
        created = [
            Cell.objects.create(
                annotation_set=annotation_set,
                x=suggestion.x,
                y=suggestion.y,
                width=suggestion.width,
                height=suggestion.height,
                countable=suggestion.countable,
                cell_class_id=suggestion.cell_class_id,
                source_cell=suggestion,
                created_by=actor,
            )
            for suggestion in suggestions
            if suggestion.pk not in already
        ]
        _bump_version(annotation_set)
        for cell in created:
            audit_record(
                actor=actor,
                action="cell.accept_suggestion",
                entity="cell",
                entity_id=cell.pk,
                field_id=annotation_set.field_id,
                annotation_set_id=annotation_set.pk,
                after=cell_snapshot(cell),
            )
    return Accepted(created=created, skipped=sorted(already), annotation_set=annotation_set)


def _suggestions(field_id: int, cell_ids: Sequence[int] | None, prediction_set_id: int | None) -> list[Cell]:
    predictions = Cell.objects.filter(
        annotation_set__field_id=field_id, annotation_set__kind=AnnotationKind.PREDICTION
    ).order_by("id")
    if cell_ids is not None:
        if not cell_ids or not all(isinstance(i, int) and not isinstance(i, bool) for i in cell_ids):
            raise ValidationFailed("cells must be a non-empty list of prediction cell ids.", field="cells")
        found = list(predictions.filter(pk__in=cell_ids))
        unknown = sorted(set(cell_ids) - {cell.pk for cell in found})
        if unknown:
            raise ValidationFailed(f"These are not model suggestions of this field: {unknown}.", field="cells")
        return found
    sets = AnnotationSet.objects.filter(field_id=field_id, kind=AnnotationKind.PREDICTION)
    chosen = (
        sets.filter(pk=prediction_set_id).first() if prediction_set_id is not None else sets.order_by("-id").first()
    )
    if chosen is None:
        name = "prediction_set" if prediction_set_id is not None else "all"
        raise ValidationFailed("This field has no such model pre-labels to accept.", field=name)
    return list(predictions.filter(annotation_set=chosen))


# Callbacks run with (field id, actor) inside the transaction that submits an annotator's set, the field row locked,
# so that what they start is committed with the submit or not at all. The double review registers its cross-check
# here (annotations app config): the annotation services never import review.
ANNOTATION_SET_SUBMITTED_HOOKS: list[Callable[[int, Any], object]] = []


def annotation_set_submit(*, annotation_set_id: int, expected_version: int | None, actor: Any) -> AnnotationSet:
    """Lock an annotator's set and tell the submit hooks (the double review starts the cross-check once the second
    of the field's two annotators submits)."""
    with transaction.atomic():
        field_id = AnnotationSet.objects.filter(pk=annotation_set_id).values_list("field_id", flat=True).first()
        if field_id is None:
            raise NotFound(f"Annotation set {annotation_set_id} does not exist.")
        # Both annotators' submits serialise on the field row, so the later one sees the earlier one and starts
        # the cross-check exactly once.
        lock_field(field_id)
        annotation_set = lock_set_for_write(annotation_set_id, expected_version, actor)
        if annotation_set.kind != AnnotationKind.ANNOTATOR:
            raise PermissionDenied("Only an annotator's set is submitted; a reopened consensus is locked again.")
        unclassified = annotation_set.cells.filter(countable=True, cell_class__isnull=True).count()
        if unclassified:
            raise ValidationFailed(
                f"{unclassified} countable cell(s) have no class yet; classify them or mark them uncountable.",
                field="cells",
            )
        annotation_set.status = AnnotationStatus.SUBMITTED
        annotation_set.submitted_at = timezone.now()
        annotation_set.version += 1
        annotation_set.save(update_fields=["status", "submitted_at", "version", "updated_at"])
        audit_record(
            actor=actor,
            action="annotation_set.submit",
            entity="annotation_set",
            entity_id=annotation_set.pk,
            field_id=annotation_set.field_id,
            annotation_set_id=annotation_set.pk,
            after=annotation_set_snapshot(annotation_set),
        )
        for hook in ANNOTATION_SET_SUBMITTED_HOOKS:
            hook(field_id, actor)
    return annotation_set


def lock_field(field_id: int) -> Field:
    """Lock a field row for the rest of the transaction: the double-review steps of one field run one at a time."""
    field = Field.objects.select_for_update().filter(pk=field_id).first()
    if field is None:
        raise NotFound(f"Field {field_id} does not exist.")
    return field


# --- storage integrity --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StorageCheck:
    checked: int
    missing: list[int]
    altered: list[int]

    def to_dict(self) -> dict[str, Any]:
        return {"checked": self.checked, "missing": self.missing, "altered": self.altered}


def fields_verify_storage(*, field_ids: Sequence[int] | None = None) -> StorageCheck:
    """Re-hash stored originals: a field whose file is gone or whose bytes no longer match its sha256 is reported
    (and recorded in the audit trail), so silent storage corruption cannot go unnoticed."""
    fields = Field.objects.all() if field_ids is None else Field.objects.filter(pk__in=field_ids)
    missing: list[int] = []
    altered: list[int] = []
    checked = 0
    for field in fields.only("id", "image", "sha256").iterator():
        checked += 1
        try:
            with field.image.open("rb") as handle:
                digest = hashlib.file_digest(handle, "sha256").hexdigest()
        except FileNotFoundError:
            missing.append(field.pk)
            continue
        if digest != field.sha256:
            altered.append(field.pk)
    for field_id in missing + altered:
        audit_record(
            actor=None,
            action="field.storage_fault",
            entity="field",
            entity_id=field_id,
            field_id=field_id,
            after={"fault": "missing" if field_id in missing else "altered"},
        )
    return StorageCheck(checked=checked, missing=missing, altered=altered)


# --- patient splits -----------------------------------------------------------------------------------------------


def split_settings() -> tuple[int, tuple[float, float, float]]:
    """The seed and (train, val, test) ratios of new patients' splits (AICELL_SPLIT_SEED, AICELL_SPLIT_RATIOS)."""
    ratios = tuple(float(value) for value in settings.AICELL_SPLIT_RATIOS)
    return int(settings.AICELL_SPLIT_SEED), (ratios[0], ratios[1], ratios[2])


def patient_splits_conflicting(splits: Mapping[str, str]) -> dict[str, str]:
    """Of patient code -> split, the patients whose stored split is another one: {code: stored split}."""
    wanted = {code: split for code, split in splits.items() if split}
    conflicts: dict[str, str] = {}
    codes = sorted(wanted)
    for start in range(0, len(codes), 500):
        stored = Patient.objects.filter(code__in=codes[start : start + 500]).exclude(split="")
        for code, split in stored.values_list("code", "split"):
            if split != wanted[code]:
                conflicts[code] = split
    return conflicts


def patient_splits_pin(splits: Mapping[str, str]) -> dict[str, str]:
    """Pin the split a dataset gives its patients (patient code -> train|val|test; "" leaves one alone) on those that
    have none yet; a stored split never changes. Returns {code: split} of the patients pinned now.

    Like `patient_splits_assign`, only rows whose split is still empty are written; a patient whose stored split is
    another one is refused (check with `patient_splits_conflicting` first)."""
    conflicts = patient_splits_conflicting(splits)
    if conflicts:
        shown = ", ".join(f"{code} ({split})" for code, split in list(conflicts.items())[:5])
        raise ValidationFailed(f"{len(conflicts)} patient(s) already have another split: {shown}.", field="split")
    by_split: dict[str, list[str]] = defaultdict(list)
    for code, split in splits.items():
        if split:
            by_split[split].append(code)
    pinned: dict[str, str] = {}
    for split, members in by_split.items():
        for start in range(0, len(members), 500):
            chunk = members[start : start + 500]
            empty = list(Patient.objects.filter(code__in=chunk, split="").values_list("code", flat=True))
            Patient.objects.filter(code__in=empty, split="").update(split=split)
            pinned.update(dict.fromkeys(empty, split))
    return pinned


def patient_splits_assign(*, fields: QuerySet[Field]) -> dict[str, str]:
    """Give every patient of `fields` that has no split yet its split by the per-patient rule (`annotations.splits`,
    with `split_settings`): the one place splits are written. Stored splits never change. Returns {patient code:
    split} of the patients that got one now.

    The update only touches rows whose split is still empty, so two concurrent calls never move a patient."""
    seed, ratios = split_settings()
    stored = dict(Patient.objects.filter(pk__in=fields.values("smear__case__patient_id")).values_list("code", "split"))
    existing = {code: split for code, split in stored.items() if split}
    splits = assign_splits(stored, existing, seed=seed, ratios=ratios)
    assigned = {code: splits[code] for code in sorted(stored) if code not in existing}
    by_split: dict[str, list[str]] = defaultdict(list)
    for code, split in assigned.items():
        by_split[split].append(code)
    for split, members in by_split.items():
        for start in range(0, len(members), 500):
            Patient.objects.filter(code__in=members[start : start + 500], split="").update(split=split)
    return assigned
