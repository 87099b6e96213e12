"""Seed the 21 taxonomy classes with their fixed ids (annotations.taxonomy is the single source)."""

from django.db import migrations

from annotations.taxonomy import CELL_CLASSES


def seed(apps, schema_editor):
    CellClass = apps.get_model("annotations", "CellClass")
    for spec in CELL_CLASSES:
        CellClass.objects.update_or_create(
            id=spec.id,
            defaults={"name": spec.name, "lineage": spec.lineage.value, "is_blast": spec.is_blast, "shortcut": spec.shortcut},
        )


class Migration(migrations.Migration):
    dependencies = [("annotations", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
