"""COCO category ids are fixed forever: the two special ids are pinned, and a class added to the taxonomy later
takes a new id instead of renumbering them."""

from annotations.interchange.coco_format import (
    CATEGORIES,
    UNCLASSIFIED_CATEGORY_ID,
    UNCOUNTABLE_CATEGORY_ID,
    category_class_id,
    category_id,
    category_id_of,
    class_category_id,
)
from annotations.taxonomy import CELL_CLASSES


def test_the_special_categories_are_pinned() -> None:
    assert (UNCOUNTABLE_CATEGORY_ID, UNCLASSIFIED_CATEGORY_ID) == (22, 23)
    assert (category_id(False, 5), category_id(True, None)) == (22, 23)
    assert (category_id_of("uncountable"), category_id_of("unclassified")) == (22, 23)


def test_the_first_21_classes_are_their_id_plus_one() -> None:
    assert [class_category_id(spec.id) for spec in CELL_CLASSES[:21]] == list(range(1, 22))
    assert category_id_of("lymphoblast") == 12


def test_classes_added_later_never_take_a_special_id_and_map_back() -> None:
    categories = [class_category_id(class_id) for class_id in range(60)]
    assert len(set(categories)) == 60
    assert not {UNCOUNTABLE_CATEGORY_ID, UNCLASSIFIED_CATEGORY_ID} & set(categories)
    assert categories[21:23] == [24, 25]
    assert [category_class_id(category) for category in categories] == list(range(60))


def test_every_export_lists_each_class_and_the_two_special_categories_once() -> None:
    ids = [category["id"] for category in CATEGORIES]
    assert len(ids) == len(set(ids)) == len(CELL_CLASSES) + 2
    assert {category["name"] for category in CATEGORIES} >= {"uncountable", "unclassified"}
