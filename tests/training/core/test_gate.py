import pytest

from training.core.gate import promotion_decision
from training.core.stages import BLAST_CLASS_IDS, STAGES

MAIN_METRIC = {name: spec.main_metric for name, spec in STAGES.items()}


def _clf(macro_f1, recalls):
    return {"macro_f1": macro_f1, "per_class": {str(k): {"name": "x", "recall": v} for k, v in recalls.items()}}


def test_no_active_promotes():
    d = promotion_decision("detector", {"ap50": 0.1}, None)
    assert d.promote
    assert d.reason == "no active version"


@pytest.mark.parametrize("stage", sorted(MAIN_METRIC))
def test_main_metric_lower_blocks(stage):
    key = MAIN_METRIC[stage]
    d = promotion_decision(stage, {key: 0.80}, {key: 0.81})
    assert not d.promote
    assert key in d.reason
    assert "0.8000" in d.reason
    assert "0.8100" in d.reason


@pytest.mark.parametrize("stage", sorted(MAIN_METRIC))
def test_tie_promotes(stage):
    key = MAIN_METRIC[stage]
    assert promotion_decision(stage, {key: 0.8}, {key: 0.8}).promote


def test_higher_promotes():
    assert promotion_decision("countability", {"accuracy": 0.95}, {"accuracy": 0.9}).promote


def test_blast_recall_drop_blocks_even_with_better_main_metric():
    cand = _clf(0.90, {11: 0.70, 5: 0.99})
    act = _clf(0.80, {11: 0.75, 5: 0.50})
    d = promotion_decision("classifier", cand, act)
    assert not d.promote
    assert "11" in d.reason
    assert "lymphoblast" in d.reason
    assert "0.7500" in d.reason
    assert "0.7000" in d.reason


def test_blast_recall_tie_promotes_and_non_blast_drop_ignored():
    cand = _clf(0.85, {0: 0.6, 12: 0.1})
    act = _clf(0.85, {0: 0.6, 12: 0.9})
    assert promotion_decision("classifier", cand, act).promote


def test_blast_class_only_in_one_side_is_ignored():
    cand = _clf(0.85, {0: 0.1})
    act = _clf(0.80, {14: 0.9})
    assert promotion_decision("classifier", cand, act).promote


def test_the_guarded_classes_are_the_blasts():
    assert BLAST_CLASS_IDS == (0, 7, 11, 14, 17)
    assert MAIN_METRIC == {"detector": "ap50", "countability": "accuracy", "classifier": "macro_f1"}


def test_every_blast_class_is_checked():
    for cid in BLAST_CLASS_IDS:
        assert not promotion_decision("classifier", _clf(0.9, {cid: 0.4}), _clf(0.9, {cid: 0.5})).promote


def test_none_metrics():
    assert not promotion_decision("detector", {"ap50": None}, {"ap50": 0.5}).promote
    assert promotion_decision("detector", {"ap50": 0.5}, {"ap50": None}).promote
    assert not promotion_decision("detector", {}, {"ap50": 0.5}).promote


def test_unknown_stage():
    with pytest.raises(ValueError, match="stage"):
        promotion_decision("segmenter", {}, None)
