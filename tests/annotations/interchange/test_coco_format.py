"""The COCO category ids every export has used: pinned, whatever the taxonomy grows into."""

from __future__ import annotations

from annotations.interchange.coco_format import (
    CATEGORIES,
    UNCLASSIFIED_CATEGORY_ID,
    UNCOUNTABLE_CATEGORY_ID,
    category_id,
    category_id_of,
)
from annotations.taxonomy import CELL_CLASSES


def test_the_special_category_ids_are_the_ones_exports_have_always_had() -> None:
    assert (UNCOUNTABLE_CATEGORY_ID, UNCLASSIFIED_CATEGORY_ID) == (22, 23)
    assert category_id(countable=False, cell_class=3) == 22
    assert category_id(countable=True, cell_class=None) == 23
    assert (category_id_of("uncountable"), category_id_of("unclassified")) == (22, 23)


def test_every_class_keeps_its_id_and_none_collides_with_the_special_ones() -> None:
    """A class added to the taxonomy must take a new id (24 on): taxonomy id + 1 would land on 22 and renumber
    every uncountable cell of every past export. This fails until such a class gets its own id."""
    class_ids = {spec.id: category_id(countable=True, cell_class=spec.id) for spec in CELL_CLASSES}
    assert class_ids == {spec.id: spec.id + 1 for spec in CELL_CLASSES}
    assert not set(class_ids.values()) & {UNCOUNTABLE_CATEGORY_ID, UNCLASSIFIED_CATEGORY_ID}
    ids = [category["id"] for category in CATEGORIES]
    assert len(ids) == len(set(ids)) == len(CELL_CLASSES) + 2
