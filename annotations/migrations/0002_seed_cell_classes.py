"""Seed the 21 classes of the first taxonomy with their fixed ids (annotations.taxonomy is the single source).

The constraint of 0001 allows these ids only: a class added to the taxonomy later is seeded by the migration that
adds it, after that migration widens the constraint (ARCHITECTURE.md, "Add a cell class")."""

from django.db import migrations

from annotations.taxonomy import CELL_CLASSES

FIRST_TAXONOMY_SIZE = 21


def seed(apps, schema_editor):
    CellClass = apps.get_model("annotations", "CellClass")
    for spec in CELL_CLASSES[:FIRST_TAXONOMY_SIZE]:
        CellClass.objects.update_or_create(
            id=spec.id,
            defaults={"name": spec.name, "lineage": spec.lineage.value, "is_blast": spec.is_blast, "shortcut": spec.shortcut},
        )


class Migration(migrations.Migration):
    dependencies = [("annotations", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
