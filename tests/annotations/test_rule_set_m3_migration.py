"""Migration 0010 gives a database seeded with the old M3 hint (promyelocytes counted as blasts) a corrected
version of each shipped rule set, active where the old one was."""

import copy
import importlib
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from annotations.counting.rules import DEFAULT_RULE_SET, parse_rule_set
from annotations.models import RuleSet

migration = importlib.import_module("annotations.migrations.0012_rule_sets_m3_without_promyelocytes")


def _historical_apps() -> Any:
    """The models as the migration sees them (no immutability guard: migrations write rows directly)."""
    return (
        MigrationExecutor(connection)
        .loader.project_state(("annotations", "0011_patient_birth_year_sex_smear_date"))
        .apps
    )


def _old_content() -> dict[str, Any]:
    content = parse_rule_set(DEFAULT_RULE_SET).to_dict()
    old = copy.deepcopy(content)
    old["rules"][1]["hints"][0]["adds_to_numerator"] = True
    return old


@pytest.mark.django_db
def test_a_seeded_default_counting_promyelocytes_gets_a_corrected_active_version() -> None:
    apps = _historical_apps()
    # As 0006 seeded it before the fix.
    apps.get_model("annotations", "RuleSet").objects.filter(name="default", version=1).update(content=_old_content())

    migration.new_versions(apps, None)

    rows = {row.version: row for row in RuleSet.objects.filter(name="default")}
    assert set(rows) == {1, 2}
    assert rows[1].active is False
    assert rows[2].active is True
    assert rows[2].content == parse_rule_set(DEFAULT_RULE_SET).to_dict()
    assert not migration._counts_promyelocytes(rows[2].content)
    # The fresh seed already holds the corrected fab set: nothing to add there.
    assert list(RuleSet.objects.filter(name="fab").values_list("version", flat=True)) == [1]


@pytest.mark.django_db
def test_a_corrected_seed_is_left_alone() -> None:
    migration.new_versions(_historical_apps(), None)
    assert sorted(RuleSet.objects.values_list("name", "version")) == [("default", 1), ("fab", 1)]
