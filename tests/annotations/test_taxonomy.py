"""The taxonomy is the one registry of cell classes: the database seed and its constraint follow it, so adding a
class is an edit of `annotations/taxonomy.py` plus the migration `makemigrations` asks for (ARCHITECTURE.md)."""

import io

import pytest
from django.core.management import call_command
from django.db.models import Q

from annotations.models import CellClass
from annotations.taxonomy import CELL_CLASSES, NUM_CLASSES

pytestmark = pytest.mark.django_db


def test_ids_are_dense_and_shortcuts_unique() -> None:
    assert [spec.id for spec in CELL_CLASSES] == list(range(NUM_CLASSES))
    assert len({spec.shortcut for spec in CELL_CLASSES}) == NUM_CLASSES
    assert len({spec.name for spec in CELL_CLASSES}) == NUM_CLASSES


def test_the_database_constraint_on_class_ids_follows_the_taxonomy() -> None:
    (constraint,) = CellClass._meta.constraints
    assert constraint.condition == Q(id__lt=NUM_CLASSES)


def test_no_migration_is_missing_for_the_taxonomy() -> None:
    """A class added without its migration (the widened id constraint) fails here."""
    out = io.StringIO()
    call_command("makemigrations", "annotations", "--check", "--dry-run", stdout=out)
