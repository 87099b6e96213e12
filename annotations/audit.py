"""The audit trail: every change to a human annotation, a review step or a setting is recorded (who, when, before,
after, why) and never changed afterwards (the database refuses updates and deletes of audit rows)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from annotations.models import AnnotationSet, AuditEvent, Cell


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
