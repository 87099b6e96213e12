import pytest

from training.core.records import (
    CellRecord,
    FieldRecord,
    classifier_items,
    countability_items,
    fields_from_jsonl,
    fields_to_jsonl,
)


def test_jsonl_round_trip(tmp_path):
    fields = [
        FieldRecord(
            key="field:1",
            image_path="/tmp/a.png",
            width=64,
            height=48,
            patient="P1",
            split="train",
            cells=(CellRecord((1.0, 2.0, 10.5, 12.0), True, 5), CellRecord((3, 4, 5, 6), False, None)),
        ),
        FieldRecord(key="field:2", image_path="/tmp/b.png", width=8, height=8, patient="P2", split="test", cells=()),
    ]
    path = tmp_path / "snap.jsonl"
    fields_to_jsonl(fields, path)
    back = fields_from_jsonl(path)
    assert back == fields
    assert all(isinstance(v, float) for v in back[0].cells[1].box)
    assert len(path.read_text().splitlines()) == 2


def test_field_record_rejects_unknown_split():
    with pytest.raises(ValueError, match="split"):
        FieldRecord(key="k", image_path="/x", width=1, height=1, patient="p", split="holdout", cells=())


def test_classifier_items_leave_out_uncountable_cells():
    field = FieldRecord(
        key="field:1",
        image_path="/tmp/a.png",
        width=64,
        height=48,
        patient="P1",
        split="train",
        cells=(
            CellRecord((1, 2, 10, 12), True, 5),
            CellRecord((3, 4, 15, 16), False, 0),  # an uncountable cell an annotator still called a myeloblast
            CellRecord((5, 6, 17, 18), True, None),
        ),
    )
    assert [item.label for item in classifier_items([field], 21)] == [5]
    assert [item.label for item in countability_items([field])] == [1, 0, 1]
