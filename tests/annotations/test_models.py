"""Database constraints: what must never happen is refused by the database itself."""

from collections.abc import Callable

import pytest
from django.db import IntegrityError, connection, transaction

from annotations.db_guards import cells_bulk_insert_checked
from annotations.models import AnnotationKind, AnnotationSet, AuditEvent, AuditTrailImmutable, Cell, CellClass
from annotations.taxonomy import CELL_CLASSES, NUM_CLASSES
from tests.factories import AnnotationSetFactory, CellFactory, FieldFactory, ModelVersionFactory

pytestmark = pytest.mark.django_db


def _write_and_check_constraints(create: Callable[[], object]) -> None:
    with transaction.atomic():
        create()
        connection.check_constraints()


def refused(create: Callable[[], object]) -> None:
    """The write fails, at once or when deferred constraints (foreign keys) are checked."""
    with pytest.raises(IntegrityError):
        _write_and_check_constraints(create)


def test_taxonomy_is_seeded_with_fixed_ids() -> None:
    rows = list(CellClass.objects.values_list("id", "name", "lineage", "is_blast"))
    assert rows == [(c.id, c.name, c.lineage.value, c.is_blast) for c in CELL_CLASSES]
    assert CellClass.objects.get(pk=11).name == "lymphoblast"


def test_box_outside_the_image_is_refused_by_the_database() -> None:
    annotation_set = AnnotationSetFactory(field__width=100, field__height=80)
    CellFactory(annotation_set=annotation_set, x=50, y=40, width=50, height=40)  # touches the corner: fine
    refused(lambda: CellFactory(annotation_set=annotation_set, x=60, y=10, width=50, height=10))
    refused(lambda: CellFactory(annotation_set=annotation_set, x=10, y=50, width=10, height=31))
    cell = CellFactory(annotation_set=annotation_set, x=0, y=0, width=10, height=10)
    cell.x = 95
    refused(cell.save)


def test_a_bulk_insert_is_checked_as_a_whole_and_leaves_the_guard_in_place() -> None:
    """The import's set-based insert: one box outside refuses all of it, and the per-row guard stays for others."""
    annotation_set = AnnotationSetFactory(field__width=100, field__height=80)

    def bulk(*extra: Cell) -> None:
        with cells_bulk_insert_checked(connection):
            inside = [Cell(annotation_set=annotation_set, x=i, y=1, width=5, height=5) for i in range(20)]
            Cell.objects.bulk_create([*inside, *extra])

    _write_and_check_constraints(bulk)
    refused(lambda: bulk(Cell(annotation_set=annotation_set, x=95, y=1, width=10, height=5)))
    refused(lambda: CellFactory(annotation_set=annotation_set, x=60, y=10, width=50, height=10))
    assert Cell.objects.filter(annotation_set=annotation_set).count() == 20


@pytest.mark.parametrize(
    "box",
    [{"width": -5}, {"height": 0}, {"x": -1}, {"y": -0.5}],
    ids=["negative-width", "zero-height", "negative-x", "negative-y"],
)
def test_negative_or_empty_boxes_are_refused(box: dict[str, float]) -> None:
    annotation_set = AnnotationSetFactory()
    refused(lambda: CellFactory(annotation_set=annotation_set, **box))


def test_class_id_outside_the_taxonomy_is_refused() -> None:
    refused(lambda: CellClass.objects.create(id=NUM_CLASSES, name="invented", lineage="other", shortcut="z"))
    refused(lambda: CellFactory(cell_class_id=99))


def test_a_field_has_at_most_one_truth_set() -> None:
    field = FieldFactory()
    AnnotationSet.objects.create(field=field, kind=AnnotationKind.CONSENSUS)
    refused(lambda: AnnotationSet.objects.create(field=field, kind=AnnotationKind.CONSENSUS))
    refused(lambda: AnnotationSet.objects.create(field=field, kind=AnnotationKind.IMPORTED))


def test_annotator_and_prediction_sets_name_their_owner_once_per_field() -> None:
    existing = AnnotationSetFactory()
    refused(lambda: AnnotationSet.objects.create(field=existing.field, kind=AnnotationKind.ANNOTATOR))
    refused(
        lambda: AnnotationSet.objects.create(
            field=existing.field, kind=AnnotationKind.ANNOTATOR, annotator=existing.annotator
        )
    )
    refused(lambda: AnnotationSet.objects.create(field=existing.field, kind=AnnotationKind.PREDICTION))
    version = ModelVersionFactory()
    AnnotationSet.objects.create(field=existing.field, kind=AnnotationKind.PREDICTION, model_version=version)
    refused(
        lambda: AnnotationSet.objects.create(
            field=existing.field, kind=AnnotationKind.PREDICTION, model_version=version
        )
    )


def test_field_hash_is_unique_and_hexadecimal() -> None:
    field = FieldFactory()
    refused(lambda: FieldFactory(sha256=field.sha256))
    refused(lambda: FieldFactory(sha256="Z" * 64))


def test_only_one_active_model_per_stage() -> None:
    ModelVersionFactory(status="active")
    ModelVersionFactory(status="active", stage="detector")
    refused(lambda: ModelVersionFactory(status="active"))


def test_audit_trail_is_append_only_through_the_orm() -> None:
    event = AuditEvent.objects.create(action="test", entity="cell", entity_id=1)
    event.reason = "rewritten"
    for attempt in (
        event.save,
        event.delete,
        lambda: AuditEvent.objects.filter(pk=event.pk).update(reason="rewritten"),
        lambda: AuditEvent.objects.filter(pk=event.pk).delete(),
    ):
        with pytest.raises(AuditTrailImmutable):
            attempt()
    assert AuditEvent.objects.get(pk=event.pk).reason == ""


def test_audit_trail_is_append_only_in_the_database() -> None:
    """Raw SQL (a script, a careless admin) is stopped by the database's own trigger."""
    event = AuditEvent.objects.create(action="test", entity="cell", entity_id=1)
    table = AuditEvent._meta.db_table
    with connection.cursor() as cursor:
        refused(lambda: cursor.execute(f"UPDATE {table} SET reason = 'rewritten' WHERE id = %s", [event.pk]))
        if connection.vendor == "postgresql":
            refused(lambda: cursor.execute(f"DELETE FROM {table} WHERE id = %s", [event.pk]))
    assert AuditEvent.objects.get(pk=event.pk).reason == ""


def test_deleting_a_set_removes_its_cells_but_not_its_history() -> None:
    cell = CellFactory()
    AuditEvent.objects.create(action="cell.create", entity="cell", entity_id=cell.pk)
    cell.annotation_set.delete()
    assert not Cell.objects.filter(pk=cell.pk).exists()
    assert AuditEvent.objects.filter(entity_id=cell.pk).exists()
