"""The BCCD training benchmark reads the real VOC files into the right FieldRecords."""

from __future__ import annotations

from collections import Counter

import pytest

from benchmarks.bccd_training import DEFAULT_ROOT, WBC_TYPE_TO_CLASS, load_bccd

pytestmark = pytest.mark.skipif(not (DEFAULT_ROOT / "ImageSets").is_dir(), reason="BCCD data not on this machine")


def test_load_bccd_splits_and_boxes():
    detector, _ = load_bccd(DEFAULT_ROOT)
    assert Counter(f.split for f in detector) == {"train": 205, "val": 87, "test": 87}
    # val is used twice (val and test), with distinct keys.
    assert len({f.key for f in detector}) == len(detector)
    val = {f.image_path: f.cells for f in detector if f.split == "val"}
    test = {f.image_path: f.cells for f in detector if f.split == "test"}
    assert val == test
    # WBC boxes only: BCCD fields hold about one white cell each (and many red cells, which are ignored).
    boxes = [c for f in detector for c in f.cells]
    assert 1.0 <= len(boxes) / len(detector) <= 1.2
    assert all(c.class_index is None for c in boxes)
    assert all(0 <= c.box[0] < c.box[2] <= 640 and 0 <= c.box[1] < c.box[3] <= 480 for c in boxes)


def test_load_bccd_classifier_fields():
    _, classifier = load_bccd(DEFAULT_ROOT)
    assert all(len(f.cells) == 1 for f in classifier)
    classes = Counter(f.cells[0].class_index for f in classifier if f.split == "train")
    assert set(classes) <= set(WBC_TYPE_TO_CLASS.values())
    assert classes.most_common(1)[0][0] == 5  # neutrophils dominate
    assert classes[6] > classes[12] > classes[16] > 0
