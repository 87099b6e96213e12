import pytest

from inference.core.profiles import get_profile
from inference.core.stages import COUNTABILITY_CLASSES, DETECTOR_CLASSES
from training.core.engine import ENGINES
from training.core.records import CellRecord, FieldRecord
from training.core.stages import STAGES, stage_spec

FIELD = FieldRecord(
    key="field:1",
    image_path="/nowhere.png",
    width=100,
    height=100,
    patient="P1",
    split="train",
    cells=(CellRecord((1, 1, 20, 20), True, 12), CellRecord((30, 30, 50, 50), False, None)),
)


def test_the_stages_in_training_order_with_their_classes():
    assert list(STAGES) == ["detector", "countability", "classifier"]
    assert STAGES["detector"].classes == DETECTOR_CLASSES
    assert STAGES["countability"].classes == COUNTABILITY_CLASSES
    assert len(STAGES["classifier"].classes) == 21


def test_every_stage_has_an_engine_and_a_profile_block():
    profile = get_profile("cpu")
    for spec in STAGES.values():
        assert spec.task in ENGINES
        assert spec.archs(profile)
        assert len(spec.archs(profile)) == 1 or spec.ensemble


def test_each_stage_says_what_it_trains_on():
    assert len(STAGES["detector"].examples([FIELD])) == 1
    assert [item.label for item in STAGES["countability"].examples([FIELD])] == [1, 0]
    assert [item.label for item in STAGES["classifier"].examples([FIELD])] == [12]


def test_model_folders():
    assert STAGES["detector"].model_folder(None, "fcos") == "detector"
    assert STAGES["classifier"].model_folder(2, "resnet18") == "member2_resnet18"


def test_unknown_stage_names_the_valid_ones():
    with pytest.raises(ValueError, match="detector, countability, classifier"):
        stage_spec("segmenter")
