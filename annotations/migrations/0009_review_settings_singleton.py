"""The review settings row exists from the start, so requests only ever read it: the annotator page's first
requests arrive in parallel, and reads that create a missing row race each other to insert row 1."""

from django.db import migrations


def create_row(apps, schema_editor):
    ReviewSettings = apps.get_model("annotations", "ReviewSettings")
    if not ReviewSettings.objects.filter(pk=1).exists():
        ReviewSettings.objects.create(pk=1)


class Migration(migrations.Migration):
    dependencies = [("annotations", "0008_importjob_report")]

    # Rolling back leaves the row (and whatever an admin chose in it): the table belongs to 0005.
    operations = [migrations.RunPython(create_row, migrations.RunPython.noop)]
