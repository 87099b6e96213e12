import pytest

from training.core.gate import MAIN_TOLERANCE, MIN_GUARDED_SUPPORT, RECALL_TOLERANCE, GateStatus, promotion_decision
from training.core.metrics import binary_metrics
from training.core.stages import BLAST_CLASS_IDS, STAGES

MAIN_METRIC = {name: spec.main_metric for name, spec in STAGES.items()}
ENOUGH = MIN_GUARDED_SUPPORT + 30


def _clf(macro_f1, recalls, support=ENOUGH):
    """Classifier metrics: every blast class present with `support` cells (recall 0.9 unless given)."""
    per_class = {str(k): {"name": "x", "recall": 0.9, "support": support} for k in BLAST_CLASS_IDS}
    for k, v in recalls.items():
        per_class[str(k)] = {"name": "x", "recall": v, "support": support}
    return {"macro_f1": macro_f1, "per_class": per_class}


def test_no_active_promotes():
    d = promotion_decision("detector", {"ap50": 0.1}, None)
    assert d.promote
    assert d.reason == "no active version"


@pytest.mark.parametrize("stage", ["detector", "countability"])
def test_main_metric_lower_beyond_the_tolerance_blocks(stage):
    key = MAIN_METRIC[stage]
    d = promotion_decision(stage, {key: 0.80}, {key: 0.85})
    assert d.status is GateStatus.REJECT
    assert key in d.reason
    assert "0.8000" in d.reason
    assert "0.8500" in d.reason


@pytest.mark.parametrize("stage", ["detector", "countability"])
def test_a_drop_within_the_tolerance_is_noise_and_promotes(stage):
    key = MAIN_METRIC[stage]
    assert promotion_decision(stage, {key: 0.8}, {key: 0.8}).promote
    assert promotion_decision(stage, {key: 0.8 - MAIN_TOLERANCE / 2}, {key: 0.8}).promote


def test_countability_is_gated_on_balanced_accuracy_not_accuracy():
    # 90% countable cells: a model that calls every cell countable has accuracy 0.9 but balanced accuracy 0.5.
    labels = [1] * 90 + [0] * 10
    lazy = binary_metrics(labels, [0.9] * 100)
    good = binary_metrics(labels, [0.9] * 78 + [0.1] * 12 + [0.1] * 10)  # finds the uncountable cells, errs more
    assert lazy["accuracy"] > good["accuracy"]
    assert lazy["balanced_accuracy"] == pytest.approx(0.5)
    assert lazy["uncountable_f1"] == 0.0
    assert MAIN_METRIC["countability"] == "balanced_accuracy"
    assert promotion_decision("countability", lazy, good).status is GateStatus.REJECT
    assert promotion_decision("countability", good, lazy).promote


def test_blast_recall_drop_blocks_even_with_better_main_metric():
    d = promotion_decision("classifier", _clf(0.90, {11: 0.70, 5: 0.99}), _clf(0.80, {11: 0.80, 5: 0.50}))
    assert d.status is GateStatus.REJECT
    assert "11" in d.reason
    assert "lymphoblast" in d.reason
    assert "0.8000" in d.reason
    assert "0.7000" in d.reason


def test_blast_recall_within_the_tolerance_and_non_blast_drop_promote():
    cand = _clf(0.85, {0: 0.6 - RECALL_TOLERANCE / 2, 12: 0.1})
    act = _clf(0.85, {0: 0.6, 12: 0.9})
    assert promotion_decision("classifier", cand, act).promote


def test_a_blast_class_absent_from_the_split_is_undecided_not_skipped():
    cand = _clf(0.95, {})
    act = _clf(0.80, {})
    del cand["per_class"]["17"], act["per_class"]["17"]
    d = promotion_decision("classifier", cand, act)
    assert d.status is GateStatus.UNDECIDED
    assert not d.promote
    assert "17 (megakaryoblast): 0" in d.reason


def test_a_blast_class_with_too_few_cells_is_undecided():
    d = promotion_decision("classifier", _clf(0.95, {}, support=3), _clf(0.80, {}, support=3))
    assert d.status is GateStatus.UNDECIDED
    assert "undecided" in d.reason


def test_the_selection_split_never_judges():
    d = promotion_decision("detector", {"ap50": 0.9}, {"ap50": 0.5}, split="val")
    assert d.status is GateStatus.UNDECIDED
    assert "no test split" in d.reason
    assert promotion_decision("detector", {"ap50": 0.9}, None, split="val").promote


def test_the_guarded_classes_are_the_blasts():
    assert BLAST_CLASS_IDS == (0, 7, 11, 14, 17)
    assert MAIN_METRIC == {"detector": "ap50", "countability": "balanced_accuracy", "classifier": "macro_f1"}


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
