"""The review settings row exists from the start, so that no request ever creates it: the annotator page's first
parallel requests all read it, and a read that writes races (two inserts of row 1, one of them a 500)."""

from django.db import migrations


def create_row(apps, schema_editor):
    ReviewSettings = apps.get_model("annotations", "ReviewSettings")
    if not ReviewSettings.objects.filter(pk=1).exists():
        ReviewSettings.objects.create(pk=1)


class Migration(migrations.Migration):
    dependencies = [("annotations", "0007_interchange")]

    # Rolling back leaves the row (and whatever an admin chose in it): the table belongs to 0005.
    operations = [migrations.RunPython(create_row, migrations.RunPython.noop)]
