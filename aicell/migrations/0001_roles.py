"""The four role groups of DESIGN.md "Users and rights" (their rights are enforced by the API's RoleAccess)."""

from django.db import migrations

ROLES = ("annotator", "adjudicator", "admin", "researcher")


def seed(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for name in ROLES:
        Group.objects.get_or_create(name=name)


class Migration(migrations.Migration):
    dependencies = [("auth", "0012_alter_user_first_name_max_length")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
