"""Writes to the domain data. Each function checks its input, writes in one transaction, records the audit trail
and raises a domain error (aicell.errors) that the API turns into a clear response."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils import timezone

from aicell.errors import Conflict, FieldError, NotFound, PermissionDenied, ValidationFailed
from aicell.roles import Role, has_role
from annotations import rules
from annotations.images import CheckedImage, ImageRejected, check_image, make_thumbnail
from annotations.models import (
    AnnotationKind,
    AnnotationSet,
    AnnotationStatus,
    Assignment,
    AuditEvent,
    Cell,
    CellClass,
    Field,
    FieldReview,
    FieldStatus,
    ReviewOutcome,
    ReviewSettings,
    RuleSet,
    Smear,
)
from annotations.taxonomy import NUM_CLASSES

User = AbstractBaseUser


@dataclass(frozen=True)
class Upload:
    name: str
    data: bytes


# --- audit -------------------------------------------------------------------------------------------------------


def audit_record(
    *,
    actor: Any,
    action: str,
    entity: str,
    entity_id: int,
    field_id: int | None = None,
    annotation_set_id: int | None = None,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    reason: str = "",
) -> AuditEvent:
    return AuditEvent.objects.create(
        actor=actor if actor is not None and actor.is_authenticated else None,
        action=action,
        entity=entity,
        entity_id=entity_id,
        field_id=field_id,
        annotation_set_id=annotation_set_id,
        before=dict(before) if before is not None else None,
        after=dict(after) if after is not None else None,
        reason=reason,
    )


def cell_snapshot(cell: Cell) -> dict[str, Any]:
    return {
        "id": cell.pk,
        "x": cell.x,
        "y": cell.y,
        "width": cell.width,
        "height": cell.height,
        "countable": cell.countable,
        "cell_class": cell.cell_class_id,
        "source_cell": cell.source_cell_id,
        "review_outcome": cell.review_outcome,
    }


def annotation_set_snapshot(annotation_set: AnnotationSet) -> dict[str, Any]:
    return {
        "id": annotation_set.pk,
        "field": annotation_set.field_id,
        "kind": annotation_set.kind,
        "status": annotation_set.status,
        "version": annotation_set.version,
        "cells": [cell_snapshot(cell) for cell in annotation_set.cells.order_by("id")],
    }


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
        raise Conflict(
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
def field_files_removed_on_error() -> Iterator[list[Field]]:
    """Collects the fields `field_store` writes; when the block fails (and its transaction rolls back), their image
    and thumbnail files are deleted too, so a failed batch leaves no orphan files."""
    written: list[Field] = []
    try:
        yield written
    except IntegrityError as exc:
        _delete_files(written)
        # A concurrent upload of the same image won the race between our duplicate check and the insert.
        raise Conflict("An image of this batch was stored by another upload meanwhile; nothing was stored.") from exc
    except BaseException:
        _delete_files(written)
        raise


def field_store(*, smear: Smear, image: CheckedImage, original_name: str, actor: Any, written: list[Field]) -> Field:
    """One checked image as a new field: file, thumbnail, row and audit event. Call it inside a transaction and
    `field_files_removed_on_error` (whose list is `written`)."""
    thumbnail = make_thumbnail(image.data, settings.AICELL_THUMBNAIL_SIZE)
    field = Field(
        smear=smear,
        width=image.width,
        height=image.height,
        sha256=image.sha256,
        format=image.format,
        byte_size=len(image.data),
        original_name=original_name[:255],
        uploaded_by=actor if actor is not None and actor.is_authenticated else None,
    )
    field.image.save("original", ContentFile(image.data), save=False)
    written.append(field)
    field.thumbnail.save("thumbnail", ContentFile(thumbnail), save=False)
    field.save()
    audit_record(
        actor=actor,
        action="field.upload",
        entity="field",
        entity_id=field.pk,
        field_id=field.pk,
        after={"sha256": field.sha256, "smear": smear.pk, "width": field.width, "height": field.height},
    )
    return field


def fields_notify_uploaded(fields: Sequence[Field]) -> None:
    """Run the upload hooks (pre-labelling) for new fields once the transaction that stored them commits."""
    transaction.on_commit(functools.partial(_notify_fields_uploaded, [field.pk for field in fields]))


def _delete_files(fields: Sequence[Field]) -> None:
    for field in fields:
        for file in (field.image, field.thumbnail):
            if file.name:
                file.storage.delete(file.name)


# Callbacks run with the ids of a batch of fields once its upload commits (the pre-label trigger registers itself
# here); kept as a list so the upload path does not import the inference app.
FIELD_UPLOADED_HOOKS: list[Callable[[list[int]], object]] = []


def _notify_fields_uploaded(field_ids: list[int]) -> None:
    for hook in FIELD_UPLOADED_HOOKS:
        hook(field_ids)


def field_set_status(field: Field, status: FieldStatus) -> None:
    if field.status != status:
        Field.objects.filter(pk=field.pk).update(status=status, updated_at=timezone.now())
        field.status = status


# --- annotation sets and cells ----------------------------------------------------------------------------------


def annotation_set_create_for_annotator(*, field: Field, annotator: Any) -> AnnotationSet:
    with transaction.atomic():
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
            field_set_status(field, FieldStatus.IN_ANNOTATION)
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


def _set_exists(existing: AnnotationSet) -> Conflict:
    return Conflict(
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
        raise Conflict(
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


def cell_delete(*, cell_id: int, expected_version: int | None, actor: Any, reason: str = "") -> None:
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


def annotation_set_submit(*, annotation_set_id: int, expected_version: int | None, actor: Any) -> AnnotationSet:
    """Lock an annotator's set; the second of the field's two annotators to submit starts the cross-check."""
    # review_services builds on this module, so it is imported where it is needed.
    from annotations.review_services import field_review_start_if_ready

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
        field_review_start_if_ready(field_id, actor)
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


# --- diagnosis rule sets -----------------------------------------------------------------------------------------


def rule_set_snapshot(rule_set: RuleSet) -> dict[str, Any]:
    return {"id": rule_set.pk, "name": rule_set.name, "version": rule_set.version, "active": rule_set.active}


def rule_set_create_version(*, name: str, content: Any, note: str = "", activate: bool = False, actor: Any) -> RuleSet:
    """Store `content` as the next version of rule set `name` (version 1 for a new name). Stored rows never change:
    this is how a rule set is edited. The content is validated first; every problem is reported with its path."""
    problems = rules.validate_rule_set(content)
    if problems:
        raise ValidationFailed(
            f"The rule set has {len(problems)} problem(s); nothing was stored.",
            errors=[FieldError(f"content.{p.path}" if p.path else "content", p.message) for p in problems],
        )
    # Stored with every default written out, so that a later change of a default never alters an old version.
    normalized = rules.parse_rule_set(content).to_dict()
    try:
        with transaction.atomic():
            latest = RuleSet.objects.select_for_update().filter(name=name).order_by("-version").first()
            rule_set = RuleSet.objects.create(
                name=name,
                version=latest.version + 1 if latest else 1,
                content=normalized,
                note=note,
                created_by=actor if actor is not None and actor.is_authenticated else None,
            )
            audit_record(
                actor=actor,
                action="rule_set.create",
                entity="rule_set",
                entity_id=rule_set.pk,
                after={**rule_set_snapshot(rule_set), "content": normalized, "note": note},
            )
            if activate:
                rule_set = rule_set_activate(rule_set_id=rule_set.pk, actor=actor)
    except IntegrityError as exc:
        raise Conflict(f"Another version of rule set {name!r} was stored at the same moment; try again.") from exc
    return rule_set


def rule_set_activate(*, rule_set_id: int, actor: Any) -> RuleSet:
    """Make one rule set version the one differentials are evaluated against (the previous one is kept)."""
    with transaction.atomic():
        rule_set = RuleSet.objects.select_for_update().filter(pk=rule_set_id).first()
        if rule_set is None:
            raise NotFound(f"Rule set {rule_set_id} does not exist.")
        if rule_set.active:
            return rule_set
        previous = RuleSet.objects.select_for_update().filter(active=True).first()
        # Deactivate first: at most one row may be active at any moment (partial unique index).
        RuleSet.objects.filter(active=True).update(active=False)
        RuleSet.objects.filter(pk=rule_set.pk).update(active=True)
        rule_set.refresh_from_db()
        audit_record(
            actor=actor,
            action="rule_set.activate",
            entity="rule_set",
            entity_id=rule_set.pk,
            before=rule_set_snapshot(previous) if previous else None,
            after=rule_set_snapshot(rule_set),
        )
    return rule_set
