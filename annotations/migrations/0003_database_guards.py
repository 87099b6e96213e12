"""Install the database guards of `annotations.db_guards` (box inside the image, append-only audit trail)."""

from django.db import migrations

from annotations import db_guards


def forward(apps, schema_editor):
    db_guards.install(schema_editor, schema_editor.connection.vendor)


class Migration(migrations.Migration):
    dependencies = [("annotations", "0002_seed_cell_classes")]
    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
