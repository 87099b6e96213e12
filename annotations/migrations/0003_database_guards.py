"""Guards a CHECK constraint cannot express, as triggers on both supported databases:

- a cell's box must lie inside its field's image (the size lives in another table);
- the audit trail is append-only: rows can be inserted, never updated or deleted. (SQLite, the embedded
  single-machine database, guards updates only: its test-database flush deletes rows one table at a time;
  the ORM refuses audit deletes on every database.)
"""

from django.db import migrations

POSTGRES_FORWARD = """
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
CREATE TRIGGER cell_box_inside_field BEFORE INSERT OR UPDATE ON annotations_cell
    FOR EACH ROW EXECUTE FUNCTION aicell_cell_box_inside_field();

CREATE OR REPLACE FUNCTION aicell_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_append_only: the audit trail cannot be changed' USING ERRCODE = 'integrity_constraint_violation';
END $$ LANGUAGE plpgsql;
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON annotations_auditevent
    FOR EACH ROW EXECUTE FUNCTION aicell_audit_append_only();
"""
POSTGRES_BACKWARD = """
DROP TRIGGER IF EXISTS cell_box_inside_field ON annotations_cell;
DROP FUNCTION IF EXISTS aicell_cell_box_inside_field();
DROP TRIGGER IF EXISTS audit_append_only ON annotations_auditevent;
DROP FUNCTION IF EXISTS aicell_audit_append_only();
"""

_SQLITE_BOX_CHECK = """
    WHEN NOT (NEW.x + NEW.width <= (SELECT f.width FROM annotations_field f JOIN annotations_annotationset s
                                     ON s.field_id = f.id WHERE s.id = NEW.annotation_set_id)
          AND NEW.y + NEW.height <= (SELECT f.height FROM annotations_field f JOIN annotations_annotationset s
                                     ON s.field_id = f.id WHERE s.id = NEW.annotation_set_id))
    BEGIN SELECT RAISE(ABORT, 'cell_box_inside_field: the box exceeds the image'); END;
"""
SQLITE_FORWARD = [
    "CREATE TRIGGER cell_box_inside_field_insert BEFORE INSERT ON annotations_cell" + _SQLITE_BOX_CHECK,
    "CREATE TRIGGER cell_box_inside_field_update BEFORE UPDATE ON annotations_cell" + _SQLITE_BOX_CHECK,
    "CREATE TRIGGER audit_append_only_update BEFORE UPDATE ON annotations_auditevent "
    "BEGIN SELECT RAISE(ABORT, 'audit_append_only: the audit trail cannot be changed'); END;",
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS cell_box_inside_field_insert",
    "DROP TRIGGER IF EXISTS cell_box_inside_field_update",
    "DROP TRIGGER IF EXISTS audit_append_only_update",
]


def forward(apps, schema_editor):
    statements = [POSTGRES_FORWARD] if schema_editor.connection.vendor == "postgresql" else SQLITE_FORWARD
    for statement in statements:
        schema_editor.execute(statement, params=None)


def backward(apps, schema_editor):
    statements = [POSTGRES_BACKWARD] if schema_editor.connection.vendor == "postgresql" else SQLITE_BACKWARD
    for statement in statements:
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [("annotations", "0002_seed_cell_classes")]
    operations = [migrations.RunPython(forward, backward)]
