"""Label maps: how a foreign dataset's labels become cells of the taxonomy (or are ignored).

A label map is JSON:

    {
      "name": "BCCD",
      "labels": {"WBC": {"class": "from_field_types"}, "RBC": "ignore", "Platelets": "ignore"},
      "field_types": {"neutrophil": "neutrophilic segmented", "eosinophil": "eosinophil", "basophil": "other"}
    }

A label's target is "ignore"; a taxonomy class (its name or id) for a countable cell of that class; "uncountable"
(a cell outside the count, class unknown); "unclassified" (a countable cell whose class is not known); or an object
{"class": <name | id | null | "from_field_types">, "countable": true|false}. "from_field_types" takes the class from
a per-field list of cell types (e.g. BCCD's wbc_types.csv) through `field_types`; see `class_from_field_types`.
Labels match exactly, else ignoring case and surrounding spaces.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from annotations.taxonomy import CELL_CLASSES, NUM_CLASSES, class_by_name

IGNORE = "ignore"
UNCOUNTABLE = "uncountable"
UNCLASSIFIED = "unclassified"
FROM_FIELD_TYPES = "from_field_types"


class LabelMapInvalid(ValueError):
    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


@dataclass(frozen=True)
class LabelTarget:
    countable: bool
    cell_class: int | None
    class_from_field_types: bool = False


@dataclass(frozen=True)
class LabelMap:
    name: str
    # label -> target; None means the label's boxes are ignored.
    labels: Mapping[str, LabelTarget | None]
    field_types: Mapping[str, int] = field(default_factory=dict)

    def target(self, label: str) -> LabelTarget | None:
        """The target of a label; KeyError when the map does not know it (a problem, never silently dropped)."""
        if label in self.labels:
            return self.labels[label]
        folded = label.strip().casefold()
        for known, target in self.labels.items():
            if known.strip().casefold() == folded:
                return target
        raise KeyError(label)


def _class_id(value: Any, where: str, reasons: list[str]) -> int | None:
    if isinstance(value, bool):
        reasons.append(f"{where}: {value!r} is not a class")
        return None
    if isinstance(value, int):
        if 0 <= value < NUM_CLASSES:
            return value
        reasons.append(f"{where}: class id {value} is outside 0..{NUM_CLASSES - 1}")
        return None
    if isinstance(value, str):
        try:
            return class_by_name(value.strip()).id
        except KeyError:
            reasons.append(f"{where}: {value!r} is not a class of the taxonomy")
            return None
    reasons.append(f"{where}: {value!r} is not a class name or id")
    return None


def _target(value: Any, where: str, reasons: list[str]) -> LabelTarget | None:
    if value == IGNORE:
        return None
    if value == UNCOUNTABLE:
        return LabelTarget(countable=False, cell_class=None)
    if value == UNCLASSIFIED:
        return LabelTarget(countable=True, cell_class=None)
    if isinstance(value, Mapping):
        unknown = sorted(set(value) - {"class", "countable"})
        if unknown:
            reasons.append(f"{where}: unknown keys {', '.join(unknown)} (use 'class' and 'countable')")
        countable = value.get("countable", True)
        if not isinstance(countable, bool):
            reasons.append(f"{where}.countable: must be true or false")
            countable = True
        raw = value.get("class")
        if raw == FROM_FIELD_TYPES:
            return LabelTarget(countable=countable, cell_class=None, class_from_field_types=True)
        return LabelTarget(countable=countable, cell_class=None if raw is None else _class_id(raw, where, reasons))
    return LabelTarget(countable=True, cell_class=_class_id(value, where, reasons))


def label_map_parse(data: Any) -> LabelMap:
    """A checked label map from its JSON value; LabelMapInvalid lists every mistake."""
    if not isinstance(data, Mapping):
        raise LabelMapInvalid(["the label map must be a JSON object"])
    reasons: list[str] = []
    unknown = sorted(set(data) - {"name", "labels", "field_types"})
    if unknown:
        reasons.append(f"unknown keys {', '.join(unknown)} (use 'name', 'labels' and 'field_types')")
    name = data.get("name", "")
    if not isinstance(name, str):
        reasons.append("name: must be a string")
        name = ""
    labels_data = data.get("labels")
    if not isinstance(labels_data, Mapping) or not labels_data:
        raise LabelMapInvalid([*reasons, "labels: must be an object naming at least one label"])
    labels = {str(label): _target(value, f"labels.{label}", reasons) for label, value in labels_data.items()}
    folded = [label.strip().casefold() for label in labels]
    clashes = sorted({label for label in folded if folded.count(label) > 1})
    if clashes:
        reasons.append(f"labels: {', '.join(clashes)} named twice (labels match ignoring case)")
    types_data = data.get("field_types", {})
    field_types: dict[str, int] = {}
    if not isinstance(types_data, Mapping):
        reasons.append("field_types: must be an object of type name -> class")
    else:
        for type_name, value in types_data.items():
            class_id = _class_id(value, f"field_types.{type_name}", reasons)
            if class_id is not None:
                field_types[str(type_name).strip().casefold()] = class_id
    needs_types = any(target is not None and target.class_from_field_types for target in labels.values())
    if needs_types and not field_types:
        reasons.append("a label takes its class from field types, but field_types is empty")
    if reasons:
        raise LabelMapInvalid(reasons)
    return LabelMap(name=name, labels=labels, field_types=field_types)


def label_map_for_taxonomy(name: str = "") -> LabelMap:
    """The map for datasets labelled with this platform's categories (its own COCO exports)."""
    labels: dict[str, LabelTarget | None] = {spec.name: LabelTarget(True, spec.id) for spec in CELL_CLASSES}
    labels[UNCOUNTABLE] = LabelTarget(countable=False, cell_class=None)
    labels[UNCLASSIFIED] = LabelTarget(countable=True, cell_class=None)
    return LabelMap(name=name, labels=labels)


@dataclass(frozen=True)
class FieldTypesDecision:
    cell_class: int | None
    note: str = ""


def class_from_field_types(
    box_count: int, types: Sequence[str] | None, field_types: Mapping[str, int]
) -> FieldTypesDecision:
    """The class of each of a field's `box_count` boxes whose label takes its class from the field's type list.

    The list names the types of the field's cells in no particular order, so a class is only certain when every box
    must have it: one box and one type, or as many types as boxes and all of them the same. Otherwise the class is
    left empty (the boxes still count as cells) and the note says why. Unknown type names raise KeyError.
    """
    if not types:
        return FieldTypesDecision(None, "no cell types are listed for this field; class left empty")
    classes = [field_types[name.strip().casefold()] for name in types]
    if len(classes) != box_count:
        return FieldTypesDecision(
            None, f"{box_count} box(es) but {len(classes)} listed type(s) ({';'.join(types)}); class left empty"
        )
    if len(set(classes)) == 1:
        return FieldTypesDecision(classes[0])
    return FieldTypesDecision(
        None, f"{box_count} boxes of different types ({';'.join(types)}) not tied to box order; class left empty"
    )
