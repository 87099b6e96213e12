"""The shipped rule sets' M3 hint no longer counts promyelocytes as blasts (issue 15): a regenerating marrow with
15-20% promyelocytes reached the AML threshold. Databases seeded by 0006 before the change get a new version of
each shipped rule set still at its seeded version 1 (never revised by a lab), active where version 1 was; a rule
set a lab revised is left to the lab. Fresh databases already hold the corrected content (0006 reads the module).
"""

from django.db import migrations

from annotations.counting.rules import DEFAULT_RULE_SET, FAB_RULE_SET, parse_rule_set

SHIPPED = (("default", DEFAULT_RULE_SET), ("fab", FAB_RULE_SET))
NOTE = "shipped fix: the M3 hint no longer adds promyelocytes to the AML numerator (regenerating marrow)"


def _counts_promyelocytes(content):
    return any(
        hint.get("id") == "M3" and hint.get("adds_to_numerator")
        for rule in content.get("rules", [])
        for hint in rule.get("hints", [])
    )


def new_versions(apps, schema_editor):
    RuleSet = apps.get_model("annotations", "RuleSet")
    for name, content in SHIPPED:
        versions = list(RuleSet.objects.filter(name=name).order_by("-version"))
        if not versions:
            continue
        latest = versions[0]
        if latest.version != 1 or latest.created_by_id is not None or not _counts_promyelocytes(latest.content):
            continue
        active = latest.active
        if active:
            RuleSet.objects.filter(pk=latest.pk).update(active=False)
        RuleSet.objects.create(
            name=name, version=2, content=parse_rule_set(content).to_dict(), active=active, note=NOTE
        )


class Migration(migrations.Migration):
    dependencies = [("annotations", "0011_patient_birth_year_sex_smear_date")]

    operations = [migrations.RunPython(new_versions, migrations.RunPython.noop)]
