import json

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from annotations.review.matching import (
    BoxAnnotation,
    FieldMatch,
    OutcomeKind,
    iou_matrix,
    kappa,
    match_boxes,
    measure_agreement,
)
from annotations.taxonomy import NUM_CLASSES, class_by_name

LYMPHOBLAST = class_by_name("lymphoblast").id
LYMPHOCYTE = class_by_name("lymphocyte").id
MYELOBLAST = class_by_name("myeloblast").id


def box(
    key: str, x: float, y: float = 0, w: float = 10, h: float = 10, cls: int | None = LYMPHOCYTE, countable: bool = True
) -> BoxAnnotation:
    return BoxAnnotation(key, x, y, w, h, cls, countable)


def grid_pairs(labels_a: list[int], labels_b: list[int]) -> FieldMatch:
    """One identical box pair per label pair, far apart, so every pair matches with IoU 1."""
    boxes_a = [box(f"a{i}", 100 * i, cls=label) for i, label in enumerate(labels_a)]
    boxes_b = [box(f"b{i}", 100 * i, cls=label) for i, label in enumerate(labels_b)]
    return match_boxes(boxes_a, boxes_b)


def pairs_of(match: FieldMatch) -> set[tuple[object, object]]:
    return {(o.key_a, o.key_b) for o in match.outcomes if o.is_pair}


def test_iou_matrix_by_hand() -> None:
    ious = iou_matrix([box("a", 0)], [box("b1", 5), box("b2", 0, w=10, h=5), box("b3", 50)])
    # b1: overlap 5x10=50, union 150; b2: overlap 50, union 100; b3: disjoint.
    assert ious == pytest.approx(np.array([[50 / 150, 0.5, 0.0]]))


def test_identical_boxes_agree_with_iou_one() -> None:
    match = match_boxes([box("a", 0, cls=LYMPHOBLAST)], [box("b", 0, cls=LYMPHOBLAST)])

    (outcome,) = match.outcomes
    assert outcome.kinds == (OutcomeKind.AGREE,)
    assert (outcome.key_a, outcome.key_b, outcome.iou) == ("a", "b", 1.0)
    assert outcome.is_agreement


def test_class_and_countability_conflicts_keep_both_flags() -> None:
    boxes_a = [box("a1", 0, cls=LYMPHOBLAST), box("a2", 100), box("a3", 200, cls=LYMPHOBLAST)]
    boxes_b = [box("b1", 0, cls=MYELOBLAST), box("b2", 100, countable=False), box("b3", 200, countable=False)]
    outcomes = {o.key_a: o for o in match_boxes(boxes_a, boxes_b).outcomes}

    assert outcomes["a1"].kinds == (OutcomeKind.CLASS_CONFLICT,)
    assert outcomes["a2"].kinds == (OutcomeKind.COUNTABILITY_CONFLICT,)
    assert outcomes["a3"].kinds == (OutcomeKind.CLASS_CONFLICT, OutcomeKind.COUNTABILITY_CONFLICT)
    assert outcomes["a3"].key_b == "b3"
    assert outcomes["a3"].class_a == LYMPHOBLAST
    assert outcomes["a3"].class_b == LYMPHOCYTE


def test_missing_class_on_an_uncountable_box_is_no_class_opinion() -> None:
    boxes_a = [box("a1", 0, cls=None, countable=False), box("a2", 100, cls=None, countable=False)]
    boxes_b = [box("b1", 0, cls=MYELOBLAST, countable=False), box("b2", 100, cls=MYELOBLAST)]
    outcomes = {o.key_a: o.kinds for o in match_boxes(boxes_a, boxes_b).outcomes}
    assert outcomes == {"a1": (OutcomeKind.AGREE,), "a2": (OutcomeKind.COUNTABILITY_CONFLICT,)}

    # A countable box without a class against a classified one is a class conflict.
    (outcome,) = match_boxes([box("a", 0, cls=None)], [box("b", 0)]).outcomes
    assert outcome.kinds == (OutcomeKind.CLASS_CONFLICT,)


@pytest.mark.parametrize(("n_a", "n_b"), [(0, 0), (2, 0), (0, 3)])
def test_empty_sides(n_a: int, n_b: int) -> None:
    match = match_boxes([box(f"a{i}", 100 * i) for i in range(n_a)], [box(f"b{i}", 100 * i) for i in range(n_b)])

    kinds = [o.kinds for o in match.outcomes]
    assert kinds == [(OutcomeKind.ONLY_A,)] * n_a + [(OutcomeKind.ONLY_B,)] * n_b
    assert all(o.iou is None for o in match.outcomes)


def test_one_big_box_over_two_boxes_pairs_once() -> None:
    big = box("a", 0, w=20)
    left, right = box("b1", 0), box("b2", 10)  # each covers half of the big box: IoU 0.5
    match = match_boxes([big], [left, right])

    assert len(pairs_of(match)) == 1
    assert sorted(o.kinds[0] for o in match.outcomes if not o.is_pair) == [OutcomeKind.ONLY_B]


def test_assignment_is_optimal_not_greedy() -> None:
    # IoU: a1-b1 2/3, a1-b2 0.5, a2-b1 0.6, a2-b2 0.2. Greedy takes the best pair a1-b1 and leaves a2 and b2
    # unmatched; the optimal assignment pairs a1-b2 and a2-b1 (sum 1.1 > 0.87).
    boxes_a = [box("a1", 0, w=20), box("a2", 0, w=50)]
    boxes_b = [box("b1", 0, w=30), box("b2", 0, w=10)]
    assert iou_matrix(boxes_a, boxes_b) == pytest.approx(np.array([[2 / 3, 0.5], [0.6, 0.2]]))

    assert pairs_of(match_boxes(boxes_a, boxes_b)) == {("a1", "b2"), ("a2", "b1")}


def test_threshold_is_applied_before_maximising_iou() -> None:
    # IoU: a1-b1 0.5, a1-b2 1/3, a2-b1 1.0, a2-b2 2/3. Maximising raw IoU picks a1-b2 + a2-b1 (sum 1.33)
    # and then loses a1-b2 to the threshold; among valid pairs, a1-b1 + a2-b2 keeps both cells matched.
    boxes_a = [box("a1", 0, w=10), box("a2", 0, w=20)]
    boxes_b = [box("b1", 0, w=20), box("b2", 0, w=30)]

    assert pairs_of(match_boxes(boxes_a, boxes_b)) == {("a1", "b1"), ("a2", "b2")}


def test_threshold_edge_is_inclusive_and_configurable() -> None:
    a, b = box("a", 0, w=10, h=10), box("b", 0, w=10, h=5)  # IoU exactly 0.5
    assert pairs_of(match_boxes([a], [b])) == {("a", "b")}
    assert pairs_of(match_boxes([a], [b], iou_threshold=0.51)) == set()
    just_under = box("b", 0, w=10, h=4.99)
    assert pairs_of(match_boxes([a], [just_under])) == set()
    assert pairs_of(match_boxes([a], [just_under], iou_threshold=0.4)) == {("a", "b")}


def test_zero_area_boxes_never_match() -> None:
    point_a, point_b = box("a", 5, w=0, h=0), box("b", 5, w=0, h=0)
    line = box("c", 0, w=10, h=0)
    match = match_boxes([point_a, line], [point_b, box("d", 0)])

    assert pairs_of(match) == set()
    assert iou_matrix([point_a], [point_b])[0, 0] == 0.0


def test_invalid_input_is_refused() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        match_boxes([box("a", 0), box("a", 100)], [])
    with pytest.raises(ValueError, match="negative"):
        box("a", 0, w=-1)
    with pytest.raises(ValueError, match="finite"):
        box("a", float("nan"))
    with pytest.raises(ValueError, match="iou_threshold"):
        match_boxes([], [], iou_threshold=0)


def test_box_precision_recall_f1_by_hand_and_symmetric_f1() -> None:
    boxes_a = [box(f"a{i}", 100 * i) for i in range(4)]
    boxes_b = [box(f"b{i}", 100 * i) for i in range(3)] + [box("b3", 1000), box("b4", 1100)]
    forward = measure_agreement([match_boxes(boxes_a, boxes_b)]).boxes
    backward = measure_agreement([match_boxes(boxes_b, boxes_a)]).boxes

    assert (forward.n_matched, forward.precision, forward.recall) == (3, 3 / 5, 3 / 4)
    assert forward.f1 == pytest.approx(2 * 3 / (4 + 5))
    assert (backward.precision, backward.recall) == (forward.recall, forward.precision)
    assert backward.f1 == pytest.approx(forward.f1)


def test_box_metrics_without_boxes_are_none_with_reason() -> None:
    both_empty = measure_agreement([match_boxes([], [])]).boxes
    assert (both_empty.precision, both_empty.recall, both_empty.f1) == (None, None, None)
    assert both_empty.reason

    only_a = measure_agreement([match_boxes([box("a", 0)], [])]).boxes
    assert (only_a.precision, only_a.recall, only_a.f1) == (None, 0.0, 0.0)


def test_kappa_on_a_two_by_two_table_by_hand() -> None:
    # A\B        blast  lymphocyte
    # blast        20        5
    # lymphocyte   10       15
    # p_o = 35/50 = 0.7; p_e = 0.5*0.6 + 0.5*0.4 = 0.5; kappa = (0.7-0.5)/(1-0.5) = 0.4
    labels_a = [LYMPHOBLAST] * 25 + [LYMPHOCYTE] * 25
    labels_b = [LYMPHOBLAST] * 20 + [LYMPHOCYTE] * 5 + [LYMPHOBLAST] * 10 + [LYMPHOCYTE] * 15
    agreement = measure_agreement([grid_pairs(labels_a, labels_b)])

    assert agreement.class_kappa.value == pytest.approx(0.4)
    assert agreement.class_kappa.n_pairs == 50
    # With two classes, one-vs-rest kappa of either class is the same table.
    assert agreement.per_class[LYMPHOBLAST].kappa.value == pytest.approx(0.4)


def test_kappa_equals_sklearn_overall_and_one_vs_rest() -> None:
    rng = np.random.default_rng(7)
    labels_a = rng.integers(0, 5, size=60).tolist()
    labels_b = [label if rng.random() < 0.7 else int(rng.integers(0, 5)) for label in labels_a]
    agreement = measure_agreement([grid_pairs(labels_a, labels_b)])

    assert agreement.class_kappa.value == pytest.approx(cohen_kappa_score(labels_a, labels_b))
    for class_id in range(5):
        expected = cohen_kappa_score([x == class_id for x in labels_a], [x == class_id for x in labels_b])
        assert agreement.per_class[class_id].kappa.value == pytest.approx(expected)


def test_kappa_is_none_with_a_reason_when_undefined() -> None:
    no_pairs = measure_agreement([match_boxes([box("a", 0)], [box("b", 500)])])
    assert no_pairs.class_kappa.value is None
    assert no_pairs.class_kappa.reason

    one_label = measure_agreement([grid_pairs([LYMPHOCYTE] * 3, [LYMPHOCYTE] * 3)])
    assert one_label.class_kappa.value is None
    assert "only the label" in (one_label.class_kappa.reason or "")
    unused_class = one_label.per_class[MYELOBLAST].kappa
    assert unused_class.value is None
    assert unused_class.reason
    json.dumps(one_label.to_dict(), allow_nan=False)

    # Complete disagreement on two labels is defined (kappa 0 here, p_o = p_e = 0), not an error.
    assert kappa([1, 1], [2, 2]).value == pytest.approx(cohen_kappa_score([1, 1], [2, 2]))


def test_per_class_table_by_hand() -> None:
    boxes_a = [
        box("a1", 0, cls=LYMPHOBLAST),
        box("a2", 100, cls=LYMPHOBLAST),
        box("a3", 200, cls=LYMPHOCYTE),
        box("a4", 900, cls=LYMPHOBLAST),  # unmatched
    ]
    boxes_b = [
        box("b1", 0, cls=LYMPHOBLAST),
        box("b2", 100, cls=LYMPHOCYTE),
        box("b3", 200, cls=LYMPHOCYTE),
        box("b5", 700, cls=MYELOBLAST),  # unmatched
    ]
    per_class = measure_agreement([match_boxes(boxes_a, boxes_b)]).per_class
    blast, lymphocyte, myeloblast = per_class[LYMPHOBLAST], per_class[LYMPHOCYTE], per_class[MYELOBLAST]

    assert (blast.count_a, blast.count_b, blast.matched_agree, blast.class_conflicts) == (3, 1, 1, 1)
    assert (blast.only_a, blast.only_b) == (1, 0)
    assert (lymphocyte.count_a, lymphocyte.count_b, lymphocyte.matched_agree, lymphocyte.class_conflicts) == (
        1,
        2,
        1,
        1,
    )
    assert (myeloblast.count_b, myeloblast.only_b, myeloblast.matched_agree) == (1, 1, 0)


def test_agreement_pools_fields() -> None:
    field1 = match_boxes([box("a1", 0), box("a2", 100)], [box("b1", 0)])
    field2 = match_boxes([box("a1", 0, cls=LYMPHOBLAST)], [box("b1", 0), box("b2", 100), box("b3", 200)])
    pooled = measure_agreement([field1, field2])

    assert pooled.n_fields == 2
    assert (pooled.n_agree, pooled.n_class_conflicts, pooled.n_only_a, pooled.n_only_b) == (1, 1, 1, 2)
    # Pooled F1 = 2 * all matches / all boxes, not the mean of the per-field F1s (2/3 and 1/2).
    assert pooled.boxes.f1 == pytest.approx(2 * 2 / (3 + 4))


def test_differential_difference_has_blasts_first() -> None:
    boxes_a = [box("a1", 0, cls=LYMPHOBLAST), box("a2", 100, cls=LYMPHOBLAST), box("a3", 200), box("a4", 300)]
    boxes_b = [box("b1", 0, cls=LYMPHOBLAST), box("b2", 100), box("b3", 200), box("b4", 300)]
    boxes_b.append(box("b5", 400, cls=MYELOBLAST, countable=False))  # uncountable: not in B's count
    difference = measure_agreement([match_boxes(boxes_a, boxes_b)]).differential_difference

    assert (difference[0].name, difference[0].class_id) == ("blasts", None)
    assert (difference[0].percent_a, difference[0].percent_b, difference[0].difference) == (50.0, 25.0, 25.0)
    lymphocytes = next(d for d in difference if d.class_id == LYMPHOCYTE)
    assert lymphocytes.difference == pytest.approx(50.0 - 75.0)
    assert len(difference) == 1 + NUM_CLASSES

    empty = measure_agreement([match_boxes([], [box("b", 0)])]).differential_difference
    assert (empty[0].percent_a, empty[0].difference) == (None, None)


def test_to_dict_is_plain_json() -> None:
    match = match_boxes([box("a", 0, cls=LYMPHOBLAST)], [box("b", 0, countable=False)])
    data = match.to_dict()

    assert json.loads(json.dumps(data, allow_nan=False)) == data
    assert data["outcomes"][0]["kinds"] == ["class_conflict", "countability_conflict"]
    json.dumps(measure_agreement([match]).to_dict(), allow_nan=False)


def test_a_stored_match_reads_back_equal() -> None:
    match = match_boxes(
        [box("a1", 0, cls=LYMPHOBLAST), box("a2", 100, countable=False), box("a3", 300)],
        [box("b1", 0, cls=MYELOBLAST), box("b2", 100), box("b3", 500)],
    )
    stored = json.loads(json.dumps(match.to_dict()))

    assert FieldMatch.from_dict(stored) == match


def test_swapping_sides_mirrors_every_outcome_and_keeps_symmetric_figures() -> None:
    boxes_a = [box("a1", 0, cls=LYMPHOBLAST), box("a2", 100), box("a3", 300, cls=LYMPHOBLAST)]
    boxes_b = [box("b1", 0, cls=MYELOBLAST), box("b2", 100), box("b4", 500), box("b5", 700)]
    match = match_boxes(boxes_a, boxes_b)
    mirrored = match_boxes(boxes_b, boxes_a)

    swapped = match.swapped()
    assert sorted(map(repr, swapped.outcomes)) == sorted(map(repr, mirrored.outcomes))
    assert swapped.swapped() == match
    forward, backward = measure_agreement([match]), measure_agreement([swapped])
    assert (backward.n_only_a, backward.n_only_b) == (forward.n_only_b, forward.n_only_a) == (2, 1)
    assert backward.boxes.f1 == forward.boxes.f1
    assert backward.class_kappa == forward.class_kappa
