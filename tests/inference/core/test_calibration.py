import numpy as np
import pytest

from inference.core.calibration import (
    Calibration,
    fit_temperature,
    prior_correct,
    prior_weights,
    softmax_with_temperature,
)
from inference.core.checkpoints import CheckpointMeta, calibration_of
from inference.core.stages import CheckpointStage


def test_prior_correction_undoes_balanced_sampling():
    # 900 common and 100 rare cells sampled at n ** -0.5: the model learns a 30:10 prior instead of 90:10.
    weights = prior_weights([900, 100], 0.5)
    assert weights == pytest.approx((1.0, 1 / 3))
    # A cell the image cannot tell apart gets the training prior 0.75/0.25; Bayes' rule restores 0.9/0.1.
    corrected = prior_correct([[0.75, 0.25]], weights)
    np.testing.assert_allclose(corrected, [[0.9, 0.1]])
    # Raw argmax over-predicts the rare class; corrected, a 55% rare call on a 9:1 marrow is the common class.
    assert prior_correct([[0.45, 0.55]], weights).argmax() == 0


def test_no_balancing_no_correction():
    assert prior_weights([900, 100], 0.0) is None
    assert prior_weights([], 0.5) is None
    probs = np.array([[0.2, 0.8]], dtype=np.float32)
    assert prior_correct(probs, None) is not None
    np.testing.assert_array_equal(prior_correct(probs, None), probs)
    # A class never seen in training keeps factor 1 relative to a single-example class.
    assert prior_weights([0, 1, 4], 0.5) == pytest.approx((0.5, 0.5, 1.0))


def test_fit_temperature_recovers_an_overconfident_model():
    rng = np.random.default_rng(0)
    true_logits = rng.normal(0, 1.5, (4000, 5))
    labels = np.array([rng.choice(5, p=p) for p in softmax_with_temperature(true_logits, 1.0)])
    assert fit_temperature(3.0 * true_logits, labels) == pytest.approx(3.0, rel=0.1)
    assert fit_temperature(true_logits, labels) == pytest.approx(1.0, rel=0.1)
    assert fit_temperature(np.zeros((0, 5)), []) == 1.0


def test_a_checkpoint_carries_its_calibration():
    meta = CheckpointMeta(
        stage=CheckpointStage.COUNTABILITY,
        arch="a",
        classes=("uncountable", "countable"),
        profile="p",
        class_counts=(100, 900),
        temperature=1.7,
        config={"balance_power": 0.5},
    )
    back = CheckpointMeta.from_dict(meta.to_dict())
    assert calibration_of(back) == Calibration(1.7, prior_weights([100, 900], 0.5))
    old = CheckpointMeta.from_dict(
        {k: v for k, v in meta.to_dict().items() if k not in ("class_counts", "temperature")}
    )
    assert calibration_of(old) == Calibration()
    with pytest.raises(ValueError, match="class counts"):
        CheckpointMeta(stage=CheckpointStage.COUNTABILITY, arch="a", classes=("u", "c"), profile="p", class_counts=(1,))
