"""The COCO vocabulary of this platform's exports, fixed forever so that every export agrees with every other.

Category ids: taxonomy class id + 1 for the 21 classes (1..21, never remapped by what an export contains),
22 "uncountable" for cells outside the differential count, 23 "unclassified" for countable cells without a class
(e.g. imported detection-only data). The two are pinned, not derived from the number of classes: a class added to
the taxonomy later takes the next id after them (24, ...), and every id an export ever wrote keeps its meaning.
Every export lists all categories.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from typing import Any

from annotations.interchange.label_map import UNCLASSIFIED, UNCOUNTABLE
from annotations.taxonomy import CELL_CLASSES, class_by_name

UNCOUNTABLE_CATEGORY_ID = 22
UNCLASSIFIED_CATEGORY_ID = 23
CATEGORY_ID_RULE = "taxonomy class id + 1 (1..21, later classes from 24); 22 uncountable; 23 unclassified"


def class_category_id(class_id: int) -> int:
    """The category of a taxonomy class: id + 1, skipping the two pinned ids."""
    category = class_id + 1
    return category if category < UNCOUNTABLE_CATEGORY_ID else category + 2


def category_class_id(category: int) -> int:
    """The taxonomy class of a class category (the inverse of `class_category_id`)."""
    return category - 1 if category < UNCOUNTABLE_CATEGORY_ID else category - 3


CATEGORIES: tuple[dict[str, Any], ...] = (
    *(
        {"id": class_category_id(spec.id), "name": spec.name, "supercategory": spec.lineage.value}
        for spec in CELL_CLASSES
    ),
    {"id": UNCOUNTABLE_CATEGORY_ID, "name": UNCOUNTABLE, "supercategory": "cell"},
    {"id": UNCLASSIFIED_CATEGORY_ID, "name": UNCLASSIFIED, "supercategory": "cell"},
)
CATEGORY_IDS = frozenset(category["id"] for category in CATEGORIES)


def category_id(countable: bool, cell_class: int | None) -> int:
    if not countable:
        return UNCOUNTABLE_CATEGORY_ID
    if cell_class is None:
        return UNCLASSIFIED_CATEGORY_ID
    return class_category_id(cell_class)


def category_id_of(value: str) -> int:
    """A category from what a user typed: a taxonomy name, "uncountable", "unclassified", or a category id."""
    text = value.strip()
    if text.isdigit():
        number = int(text)
        if number not in CATEGORY_IDS:
            raise KeyError(f"{number} is not a category id ({CATEGORY_ID_RULE})")
        return number
    if text == UNCOUNTABLE:
        return UNCOUNTABLE_CATEGORY_ID
    if text == UNCLASSIFIED:
        return UNCLASSIFIED_CATEGORY_ID
    return class_category_id(class_by_name(text).id)


def pseudonym(key: bytes, kind: str, pk: int) -> str:
    """A stable, non-reversible id for a case, smear or annotator (same key, same id in every export)."""
    digest = hmac.new(key, f"{kind}:{pk}".encode(), hashlib.sha256).hexdigest()
    return f"{kind[0]}-{digest[:12]}"


def finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def prediction_score(detector_score: float | None, confidence: float | None) -> float:
    """The score of a predicted cell for COCO evaluation: P(cell) x P(class | cell) when both are known."""
    detector, klass = finite_or_none(detector_score), finite_or_none(confidence)
    if detector is not None and klass is not None:
        return detector * klass
    return next((value for value in (detector, klass) if value is not None), 1.0)
