import json

import pytest
from scipy.stats import binomtest
from statsmodels.stats.proportion import proportion_confint

from annotations.counting.differential import CIMethod, CountedCell, build_differential, proportion_ci, share_of
from annotations.taxonomy import NUM_CLASSES, class_by_name


def cells_of(*groups: tuple[str, int], countable: bool = True, start: int = 0) -> list[CountedCell]:
    cells: list[CountedCell] = []
    for name, count in groups:
        for _ in range(count):
            cells.append(CountedCell(f"c{start + len(cells)}", class_by_name(name).id, countable))
    return cells


@pytest.fixture
def mixed_cells() -> list[CountedCell]:
    counted = cells_of(
        ("lymphoblast", 3),
        ("myeloblast", 2),
        ("pro-erythroblast", 1),
        ("polychromatic erythroblast", 2),
        ("lymphocyte", 1),
        ("neutrophilic segmented", 1),
    )
    uncountable = [CountedCell("u1", None, False), CountedCell("u2", class_by_name("lymphoblast").id, False)]
    unclassified = [CountedCell("n1", None, True)]
    return counted + uncountable + unclassified


def test_counts_and_percentages_of_countable_classified_cells(mixed_cells: list[CountedCell]) -> None:
    differential = build_differential(mixed_cells)

    assert (differential.n_cells, differential.n_counted) == (13, 10)
    assert (differential.n_uncountable, differential.n_unclassified) == (2, 1)
    assert differential.uncountable_cell_ids == ("u1", "u2")
    assert differential.unclassified_cell_ids == ("n1",)
    lymphoblasts = differential.classes[class_by_name("lymphoblast").id]
    assert lymphoblasts.share.count == 3  # the uncountable lymphoblast is not counted
    assert lymphoblasts.share.percent == pytest.approx(30.0)
    assert lymphoblasts.cell_ids == ("c0", "c1", "c2")
    assert differential.classes[class_by_name("lymphocyte").id].share.percent == pytest.approx(10.0)
    assert differential.classes[class_by_name("monocyte").id].share.percent == 0.0
    assert [c.class_id for c in differential.classes] == list(range(NUM_CLASSES))
    assert sum(c.share.count for c in differential.classes) == 10


def test_blasts_lineages_and_me_ratio(mixed_cells: list[CountedCell]) -> None:
    differential = build_differential(mixed_cells)

    # Blasts: 3 lymphoblasts + 2 myeloblasts + 1 pro-erythroblast of 10.
    assert differential.blasts.share.count == 6
    assert differential.blasts.share.percent == pytest.approx(60.0)
    assert sorted(differential.blasts.cell_ids) == ["c0", "c1", "c2", "c3", "c4", "c5"]
    lineages = {group.name: group.share.count for group in differential.lineages}
    assert lineages == {
        "granulocytic": 3,
        "erythroid": 3,
        "lymphoid": 4,
        "monocytic": 0,
        "megakaryocytic": 0,
        "other": 0,
    }
    # Myeloid = granulocytic + monocytic = 3, erythroid = 3.
    assert differential.me_ratio.value == pytest.approx(1.0)
    assert differential.me_ratio.reason is None


def test_me_ratio_is_none_without_erythroid_cells_and_zero_without_myeloid() -> None:
    no_erythroid = build_differential(cells_of(("myeloblast", 4)))
    assert no_erythroid.me_ratio.value is None
    assert "erythroid" in (no_erythroid.me_ratio.reason or "")

    only_erythroid = build_differential(cells_of(("orthochromatic erythroblast", 4)))
    assert only_erythroid.me_ratio.value == 0.0


def test_warnings_name_the_excluded_cells(mixed_cells: list[CountedCell]) -> None:
    warnings = build_differential(mixed_cells).warnings
    assert any("2 uncountable" in w for w in warnings)
    assert any("1 countable cell(s) without a class" in w for w in warnings)


@pytest.mark.parametrize(
    "cells",
    [[], [CountedCell(1, None, False), CountedCell(2, 11, False)], [CountedCell(1, None, True)]],
    ids=["empty", "only-uncountable", "only-unclassified"],
)
def test_nothing_counted_gives_a_valid_result_without_percentages(cells: list[CountedCell]) -> None:
    differential = build_differential(cells, source="model")

    assert differential.n_counted == 0
    assert differential.source == "model"
    assert all(c.share.percent is None and c.share.ci_low is None for c in differential.classes)
    assert differential.blasts.share.percent is None
    assert all(g.share.percent is None for g in differential.lineages)
    assert differential.me_ratio.value is None
    assert differential.warnings
    json.dumps(differential.to_dict(), allow_nan=False)


@pytest.mark.parametrize(("count", "n"), [(0, 10), (1, 7), (40, 200), (41, 200), (199, 1000), (25, 25)])
@pytest.mark.parametrize(("method", "statsmodels_method"), [("exact", "beta"), ("wilson", "wilson")])
def test_intervals_equal_statsmodels_and_scipy(count: int, n: int, method: CIMethod, statsmodels_method: str) -> None:
    share = share_of(count, n, method)

    expected = proportion_confint(count, n, alpha=0.05, method=statsmodels_method)
    scipy_ci = binomtest(count, n).proportion_ci(confidence_level=0.95, method=method)
    assert share.percent == pytest.approx(100 * count / n)
    assert (share.ci_low, share.ci_high) == pytest.approx((100 * expected[0], 100 * expected[1]), abs=1e-9)
    assert (share.ci_low, share.ci_high) == pytest.approx((100 * scipy_ci.low, 100 * scipy_ci.high), abs=1e-9)


def test_differential_uses_the_requested_interval_method() -> None:
    cells = cells_of(("lymphoblast", 5), ("lymphocyte", 15))
    exact = build_differential(cells).classes[class_by_name("lymphoblast").id].share
    wilson = build_differential(cells, ci_method="wilson").classes[class_by_name("lymphoblast").id].share

    assert exact.ci_method == "exact"
    assert (exact.ci_low, exact.ci_high) == pytest.approx([100 * v for v in proportion_confint(5, 20, method="beta")])
    assert (wilson.ci_low, wilson.ci_high) == pytest.approx(
        [100 * v for v in proportion_confint(5, 20, method="wilson")]
    )


def test_group_counts_several_classes_together() -> None:
    differential = build_differential(cells_of(("myeloblast", 2), ("monoblast", 3), ("lymphocyte", 5)))
    group = differential.group("aml", [class_by_name("myeloblast").id, class_by_name("monoblast").id])

    assert group.share.count == 5
    assert group.share.percent == pytest.approx(50.0)
    assert sorted(group.cell_ids) == ["c0", "c1", "c2", "c3", "c4"]


def test_invalid_input_is_refused() -> None:
    with pytest.raises(ValueError, match="outside"):
        CountedCell("x", NUM_CLASSES, True)
    with pytest.raises(ValueError, match="method"):
        build_differential([], ci_method="normal")
    with pytest.raises(ValueError, match="total > 0"):
        proportion_ci(0, 0)


def test_to_dict_is_plain_json(mixed_cells: list[CountedCell]) -> None:
    data = build_differential(mixed_cells, source="consensus+model").to_dict()

    assert json.loads(json.dumps(data, allow_nan=False)) == data
    assert data["source"] == "consensus+model"
    assert data["classes"][11]["name"] == "lymphoblast"
    assert data["classes"][11]["share"]["count"] == 3


@pytest.mark.parametrize("method", ["exact", "wilson"])
@pytest.mark.parametrize("n", [1, 2, 7, 9, 12, 30, 97, 200, 1000])
def test_intervals_lie_in_0_1_and_hold_the_proportion_at_p_0_and_p_1(method: CIMethod, n: int) -> None:
    """Regression (issue 21): Wilson's bounds at p = 0 and p = 1 came out a hair outside (2.8e-17, 1 - 1.1e-16), and
    the PDF's error bars went negative."""
    for count in (0, 1, n - 1, n):
        if not 0 <= count <= n:
            continue
        low, high = proportion_ci(count, n, method)
        assert 0.0 <= low <= count / n <= high <= 1.0, (count, n, low, high)
        share = share_of(count, n, method)
        bounds = (share.ci_low or 0.0, share.percent or 0.0, share.ci_high or 0.0)
        assert None not in (share.percent, share.ci_low, share.ci_high)
        assert 0.0 <= bounds[0] <= bounds[1] <= bounds[2] <= 100.0, share
    assert proportion_ci(0, n, method)[0] == 0.0
    assert proportion_ci(n, n, method)[1] == 1.0
