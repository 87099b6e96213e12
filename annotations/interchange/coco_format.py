"""The COCO vocabulary of this platform's exports, fixed forever so that every export agrees with every other.

Category ids: taxonomy class id + 1 for the 21 classes (1..21, never remapped by what an export contains),
22 "uncountable" for cells outside the differential count, 23 "unclassified" for countable cells without a class
(e.g. imported detection-only data). Every export lists all 23 categories.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from typing import Any

from annotations.interchange.label_map import UNCLASSIFIED, UNCOUNTABLE
from annotations.taxonomy import CELL_CLASSES, NUM_CLASSES, class_by_name

UNCOUNTABLE_CATEGORY_ID = NUM_CLASSES + 1
UNCLASSIFIED_CATEGORY_ID = NUM_CLASSES + 2
CATEGORIES: tuple[dict[str, Any], ...] = (
    *({"id": spec.id + 1, "name": spec.name, "supercategory": spec.lineage.value} for spec in CELL_CLASSES),
    {"id": UNCOUNTABLE_CATEGORY_ID, "name": UNCOUNTABLE, "supercategory": "cell"},
    {"id": UNCLASSIFIED_CATEGORY_ID, "name": UNCLASSIFIED, "supercategory": "cell"},
)
CATEGORY_IDS = frozenset(category["id"] for category in CATEGORIES)


def category_id(countable: bool, cell_class: int | None) -> int:
    if not countable:
        return UNCOUNTABLE_CATEGORY_ID
    if cell_class is None:
        return UNCLASSIFIED_CATEGORY_ID
    return cell_class + 1


def category_id_of(value: str) -> int:
    """A category from what a user typed: a taxonomy name, "uncountable", "unclassified", or a category id."""
    text = value.strip()
    if text.isdigit():
        number = int(text)
        if number not in CATEGORY_IDS:
            raise KeyError(f"{number} is not a category id (1..{UNCLASSIFIED_CATEGORY_ID})")
        return number
    if text == UNCOUNTABLE:
        return UNCOUNTABLE_CATEGORY_ID
    if text == UNCLASSIFIED:
        return UNCLASSIFIED_CATEGORY_ID
    return class_by_name(text).id + 1


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
