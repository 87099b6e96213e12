"""Label maps, the per-field type rule, and the small text formats an import reads (--ids, --types-csv)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from annotations.interchange.dataset import field_types_read, ids_read
from annotations.interchange.label_map import (
    LabelMapInvalid,
    LabelTarget,
    class_from_field_types,
    label_map_for_taxonomy,
    label_map_parse,
)
from annotations.taxonomy import NUM_CLASSES

SHIPPED_BCCD_MAP = Path(__file__).resolve().parents[3] / "demo" / "bccd_label_map.json"
# The mapping, by taxonomy id: neutrophil -> 5 segmented, eosinophil -> 6, lymphocyte -> 12,
# monocyte -> 16, basophil -> 20 other.
BCCD_TYPES = {"neutrophil": 5, "eosinophil": 6, "lymphocyte": 12, "monocyte": 16, "basophil": 20}


def test_the_shipped_bccd_map_keeps_white_cells_and_ignores_red_cells_and_platelets() -> None:
    bccd = label_map_parse(json.loads(SHIPPED_BCCD_MAP.read_text()))
    assert bccd.name == "BCCD"
    assert bccd.target("WBC") == LabelTarget(countable=True, cell_class=None, class_from_field_types=True)
    assert bccd.target("RBC") is None
    assert bccd.target("Platelets") is None
    assert dict(bccd.field_types) == BCCD_TYPES


def test_labels_match_exactly_else_ignoring_case_and_spaces_and_unknown_labels_raise() -> None:
    label_map = label_map_parse({"labels": {"Blast": "myeloblast", "junk": "ignore"}})
    assert label_map.target(" blast ") == LabelTarget(True, 0)
    assert label_map.target("JUNK") is None
    with pytest.raises(KeyError):
        label_map.target("lymphocyte")


@pytest.mark.parametrize(
    ("value", "target"),
    [
        ("lymphoblast", LabelTarget(True, 11)),
        (12, LabelTarget(True, 12)),
        ("uncountable", LabelTarget(False, None)),
        ("unclassified", LabelTarget(True, None)),
        ({"class": "monocyte", "countable": False}, LabelTarget(False, 16)),
        ({"class": None}, LabelTarget(True, None)),
    ],
)
def test_every_target_form(value: object, target: LabelTarget) -> None:
    assert label_map_parse({"labels": {"x": value}}).target("x") == target


def test_every_mistake_of_a_label_map_is_listed() -> None:
    with pytest.raises(LabelMapInvalid) as caught:
        label_map_parse(
            {
                "labels": {"a": "cell", "b": NUM_CLASSES, "c": {"class": 3, "colour": "red"}, "A": "ignore", "d": True},
                "field_types": {"x": "nothing"},
                "extra": 1,
            }
        )
    reasons = "\n".join(caught.value.reasons)
    outside = f"outside 0..{NUM_CLASSES - 1}"
    for expected in ("'cell' is not a class", outside, "unknown keys colour", "a named twice", "True", "extra"):
        assert expected in reasons
    with pytest.raises(LabelMapInvalid, match="field_types is empty"):
        label_map_parse({"labels": {"WBC": {"class": "from_field_types"}}})


def test_the_taxonomy_map_reads_this_platforms_category_names() -> None:
    label_map = label_map_for_taxonomy()
    assert label_map.target("neutrophilic segmented") == LabelTarget(True, 5)
    assert label_map.target("uncountable") == LabelTarget(False, None)
    assert label_map.target("unclassified") == LabelTarget(True, None)


@pytest.mark.parametrize(
    ("boxes", "types", "expected", "note"),
    [
        (1, ["neutrophil"], 5, ""),
        (1, ["basophil"], 20, ""),
        (2, ["eosinophil", "eosinophil"], 6, ""),  # all the same: every box has it
        (2, ["neutrophil", "eosinophil"], None, "not tied to box order"),
        (2, ["lymphocyte"], None, "2 box(es) but 1 listed"),
        (1, ["monocyte", "monocyte"], None, "1 box(es) but 2 listed"),
        (1, [], None, "no cell types"),
        (1, None, None, "no cell types"),
    ],
)
def test_field_types_give_a_class_only_when_every_box_must_have_it(
    boxes: int, types: list[str] | None, expected: int | None, note: str
) -> None:
    decision = class_from_field_types(boxes, types, BCCD_TYPES)
    assert decision.cell_class == expected
    assert note in decision.note
    assert bool(decision.note) == (expected is None)


def test_an_unknown_field_type_raises() -> None:
    with pytest.raises(KeyError):
        class_from_field_types(1, ["erythrocyte"], BCCD_TYPES)


def test_types_csv_and_ids_files() -> None:
    text = "image,wbc_types\nBloodImage_00001,neutrophil\nBloodImage_00002.jpg,eosinophil; lymphocyte\n\n"
    assert field_types_read(text) == {
        "BloodImage_00001": ["neutrophil"],
        "BloodImage_00002": ["eosinophil", "lymphocyte"],
    }
    with pytest.raises(ValueError, match="header"):
        field_types_read("BloodImage_00001,neutrophil\n")
    with pytest.raises(ValueError, match="row 2"):
        field_types_read("image,types\na,b,c\n")
    assert ids_read("BloodImage_00001\n  # a comment\nBloodImage_00002.jpg # trailing\n\n") == {
        "BloodImage_00001",
        "BloodImage_00002.jpg",
    }
