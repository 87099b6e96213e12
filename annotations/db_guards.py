"""Guards a CHECK constraint cannot express, installed as triggers on both supported databases:

- a cell's box must lie inside its field's image (the size lives in another table);
- the audit trail is append-only: rows can be inserted, never updated or deleted. (On SQLite, the embedded
  single-machine database, updates only: its test-database flush deletes rows table by table; the ORM refuses
  audit deletes on every database.)

`install` is idempotent and runs after every `migrate` (post_migrate), because SQLite drops a table's triggers
whenever a migration rebuilds that table.
"""

from __future__ import annotations

from typing import Any

POSTGRES = """
CREATE OR REPLACE FUNCTION aicell_cell_box_inside_field() RETURNS trigger AS $$
DECLARE image_width integer; image_height integer;
BEGIN
    SELECT f.width, f.height INTO image_width, image_height
    FROM annotations_field f JOIN annotations_annotationset s ON s.field_id = f.id
    WHERE s.id = NEW.annotation_set_id;
    IF NOT (NEW.x + NEW.width <= image_width AND NEW.y + NEW.height <= image_height) THEN
        RAISE EXCEPTION 'cell_box_inside_field: box (%, %, %, %) exceeds the image %x%',
            NEW.x, NEW.y, NEW.width, NEW.height, image_width, image_height USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS cell_box_inside_field ON annotations_cell;
CREATE TRIGGER cell_box_inside_field BEFORE INSERT OR UPDATE ON annotations_cell
    FOR EACH ROW EXECUTE FUNCTION aicell_cell_box_inside_field();

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
SQLITE = [
    "CREATE TRIGGER IF NOT EXISTS cell_box_inside_field_insert BEFORE INSERT ON annotations_cell" + _SQLITE_BOX_CHECK,
    "CREATE TRIGGER IF NOT EXISTS cell_box_inside_field_update BEFORE UPDATE ON annotations_cell" + _SQLITE_BOX_CHECK,
    "CREATE TRIGGER IF NOT EXISTS audit_append_only_update BEFORE UPDATE ON annotations_auditevent "
    "BEGIN SELECT RAISE(ABORT, 'audit_append_only: the audit trail cannot be changed'); END;",
]


def install(schema_editor_or_cursor: Any, vendor: str) -> None:
    """Create or refresh the triggers; `schema_editor_or_cursor` needs an `execute(sql, params)` method."""
    if vendor == "postgresql":
        schema_editor_or_cursor.execute(POSTGRES, None)
    elif vendor == "sqlite":
        for statement in SQLITE:
            schema_editor_or_cursor.execute(statement, None)
