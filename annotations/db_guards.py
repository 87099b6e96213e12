"""Guards a CHECK constraint cannot express, installed as triggers on both supported databases:

- a cell's box must lie inside its field's image (the size lives in another table). On PostgreSQL the check runs
  once per statement over the rows it inserted or updated (a transition table), so a bulk insert (`COPY` of a
  whole dataset) is checked by one join instead of one query per row; SQLite, which has no statement triggers,
  checks row by row;
- the audit trail is append-only: rows can be inserted, never updated or deleted. (On SQLite, the embedded
  single-machine database, updates only: its test-database flush deletes rows table by table; the ORM refuses
  audit deletes on every database.)

`install` is idempotent and runs after every `migrate` (post_migrate), because SQLite drops a table's triggers
whenever a migration rebuilds that table.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from django.db import IntegrityError

POSTGRES = """
CREATE OR REPLACE FUNCTION aicell_cell_box_inside_field() RETURNS trigger AS $$
DECLARE bad record;
BEGIN
    SELECT c.x, c.y, c.width, c.height, f.width AS image_width, f.height AS image_height INTO bad
    FROM changed_cells c
    JOIN annotations_annotationset s ON s.id = c.annotation_set_id
    JOIN annotations_field f ON f.id = s.field_id
    WHERE NOT (c.x + c.width <= f.width AND c.y + c.height <= f.height)
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'cell_box_inside_field: box (%, %, %, %) exceeds the image %x%',
            bad.x, bad.y, bad.width, bad.height, bad.image_width, bad.image_height USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS cell_box_inside_field ON annotations_cell;
CREATE TRIGGER cell_box_inside_field AFTER INSERT ON annotations_cell
    REFERENCING NEW TABLE AS changed_cells FOR EACH STATEMENT EXECUTE FUNCTION aicell_cell_box_inside_field();
DROP TRIGGER IF EXISTS cell_box_inside_field_update ON annotations_cell;
CREATE TRIGGER cell_box_inside_field_update AFTER UPDATE ON annotations_cell
    REFERENCING NEW TABLE AS changed_cells FOR EACH STATEMENT EXECUTE FUNCTION aicell_cell_box_inside_field();

CREATE OR REPLACE FUNCTION aicell_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_append_only: the audit trail cannot be changed'
        USING ERRCODE = 'integrity_constraint_violation';
END $$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS audit_append_only ON annotations_auditevent;
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON annotations_auditevent
    FOR EACH ROW EXECUTE FUNCTION aicell_audit_append_only();
"""

_SQLITE_BOX_CHECK = """
    WHEN NOT (NEW.x + NEW.width <= (SELECT f.width FROM annotations_field f JOIN annotations_annotationset s
                                     ON s.field_id = f.id WHERE s.id = NEW.annotation_set_id)
          AND NEW.y + NEW.height <= (SELECT f.height FROM annotations_field f JOIN annotations_annotationset s
                                     ON s.field_id = f.id WHERE s.id = NEW.annotation_set_id))
    BEGIN SELECT RAISE(ABORT, 'cell_box_inside_field: the box exceeds the image'); END;
"""
_SQLITE_INSERT_GUARD = "cell_box_inside_field_insert"
SQLITE = [
    f"CREATE TRIGGER IF NOT EXISTS {_SQLITE_INSERT_GUARD} BEFORE INSERT ON annotations_cell" + _SQLITE_BOX_CHECK,
    "CREATE TRIGGER IF NOT EXISTS cell_box_inside_field_update BEFORE UPDATE ON annotations_cell" + _SQLITE_BOX_CHECK,
    "CREATE TRIGGER IF NOT EXISTS audit_append_only_update BEFORE UPDATE ON annotations_auditevent "
    "BEGIN SELECT RAISE(ABORT, 'audit_append_only: the audit trail cannot be changed'); END;",
]


# The same condition over every cell inserted after a given id, for a bulk insert on SQLite (see below).
_SQLITE_CELLS_OUTSIDE = """
SELECT c.x, c.y, c.width, c.height, f.width, f.height FROM annotations_cell c
JOIN annotations_annotationset s ON s.id = c.annotation_set_id JOIN annotations_field f ON f.id = s.field_id
WHERE c.id > %s AND NOT (c.x + c.width <= f.width AND c.y + c.height <= f.height) LIMIT 1
"""


@contextlib.contextmanager
def cells_bulk_insert_checked(connection: Any) -> Iterator[None]:
    """Around a bulk insert of cells (in a transaction that rolls back if the block raises): the boxes are checked as
    the guard checks them, once for the whole insert.

    PostgreSQL's guard already runs once per statement. SQLite has only row triggers, whose per-row cost triples a
    bulk insert, so there the insert trigger is dropped for the block and one query checks every row it inserted
    before the trigger is created again; SQLite's DDL is part of the transaction (a failure restores the trigger),
    and the transaction holds the database's single write lock, so no other writer ever sees the table unguarded."""
    if connection.vendor != "sqlite":
        yield
        return
    if not connection.in_atomic_block:
        raise RuntimeError("a bulk insert of cells runs in a transaction")
    with connection.cursor() as cursor:
        cursor.execute("SELECT COALESCE(MAX(id), 0) FROM annotations_cell")
        (last_id,) = cursor.fetchone()
        cursor.execute(f"DROP TRIGGER IF EXISTS {_SQLITE_INSERT_GUARD}")
    yield
    with connection.cursor() as cursor:
        cursor.execute(_SQLITE_CELLS_OUTSIDE, [last_id])
        outside = cursor.fetchone()
        cursor.execute(SQLITE[0])
    if outside is not None:
        x, y, width, height, image_width, image_height = outside
        raise IntegrityError(
            f"cell_box_inside_field: box ({x}, {y}, {width}, {height}) exceeds the image {image_width}x{image_height}"
        )


def install(schema_editor_or_cursor: Any, vendor: str) -> None:
    """Create or refresh the triggers; `schema_editor_or_cursor` needs an `execute(sql, params)` method."""
    if vendor == "postgresql":
        schema_editor_or_cursor.execute(POSTGRES, None)
    elif vendor == "sqlite":
        for statement in SQLITE:
            schema_editor_or_cursor.execute(statement, None)
