"""The active-learning benchmark: its pure curve summaries, that its picks are the review queue's ranking, and a
--quick run on the real BCCD cells."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks import active_learning as al
from benchmarks.bccd_training import DEFAULT_ROOT


def test_aulc_is_the_mean_height_of_the_curve() -> None:
    assert al.aulc([10, 20, 30], [0.5, 0.5, 0.5]) == pytest.approx(0.5)
    # Trapezoids over uneven steps: (10 * 0.3 + 30 * 0.7) / 40.
    assert al.aulc([0, 10, 40], [0.2, 0.4, 1.0]) == pytest.approx((10 * 0.3 + 30 * 0.7) / 40)
    assert al.aulc([5], [0.3]) == pytest.approx(0.3)
    with pytest.raises(ValueError, match="empty"):
        al.aulc([], [])


def test_labels_to_reach_is_the_first_count_at_or_above_the_target() -> None:
    assert al.labels_to_reach([10, 20, 30], [0.2, 0.6, 0.5], 0.55) == 20
    assert al.labels_to_reach([10, 20, 30], [0.2, 0.3, 0.5], 0.5) == 30
    assert al.labels_to_reach([10, 20, 30], [0.2, 0.3, 0.4], 0.5) is None


def test_summary_compares_with_random_final() -> None:
    labels = [10, 20, 30]
    curves = {"random": [[0.2, 0.4, 0.6], [0.2, 0.4, 0.4]], "entropy": [[0.2, 0.6, 0.7], [0.2, 0.4, 0.5]]}
    summary = al.summarise(curves, labels)
    assert summary["random"]["final_macro_f1"] == pytest.approx(0.5)
    assert summary["random"]["labels_to_random_final"] == 30
    assert summary["entropy"]["labels_to_random_final"] == 20  # mean 0.5 at 20 labels
    assert summary["entropy"]["aulc"] > summary["random"]["aulc"]
    assert len(summary["entropy"]["aulc_per_seed"]) == 2


# Three pool cells over two members and three classes: a sure cell, a cell torn between two classes on which the
# members agree (high entropy, small margin, no disagreement), and a cell each member calls confidently but
# differently (the members' disagreement, BALD's favourite).
MEMBERS = np.array(
    [
        [[0.98, 0.01, 0.01], [0.36, 0.33, 0.31], [0.90, 0.05, 0.05]],
        [[0.98, 0.01, 0.01], [0.36, 0.33, 0.31], [0.20, 0.75, 0.05]],
    ]
)


@pytest.mark.parametrize(
    ("strategy", "order"),
    [
        ("entropy", [11, 12, 10]),
        ("margin", [11, 12, 10]),
        ("least_confidence", [11, 12, 10]),
        ("disagreement", [12, 10, 11]),  # members agree on 10 and 11 (no information gain): a tie, input order
    ],
)
def test_the_pick_is_the_review_queue_ranking(strategy: str, order: list[int]) -> None:
    pool = [10, 11, 12]
    assert al.uncertainty_pick(pool, MEMBERS, 1, strategy, lambda index: f"field-{index}") == order[:1]
    assert al.uncertainty_pick(pool, MEMBERS, 3, strategy, lambda index: f"field-{index}") == order


def test_random_pick_draws_without_replacement() -> None:
    rng = np.random.default_rng(0)
    picked = al.random_pick(list(range(100, 120)), 5, rng)
    assert len(set(picked)) == 5
    assert set(picked) <= set(range(100, 120))
    assert al.random_pick([1, 2], 5, rng) == [1, 2]


@pytest.mark.skipif(not (DEFAULT_ROOT / "ImageSets").is_dir(), reason="BCCD data not on this machine")
def test_quick_run_on_bccd(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plot = tmp_path / "curves.png"
    assert al.main(["--dataset", "bccd", "--quick", "--json", "--plot", str(plot), "--no-cache", "--jobs", "1"]) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    settings = al.QUICK
    assert figures["pool_cells"] == settings.pool_limit
    assert figures["held_out_cells"] == settings.val_limit
    assert figures["labels"] == [settings.initial + r * settings.batch for r in range(settings.rounds + 1)]
    assert set(figures["strategies"]) == set(al.STRATEGIES)
    for row in figures["strategies"].values():
        assert 0.0 <= row["aulc"] <= 1.0
        assert len(row["mean_curve"]) == settings.rounds + 1
        assert len(row["aulc_per_seed"]) == len(settings.seeds)
        reached = row["labels_to_random_final"]
        assert reached is None or reached in figures["labels"]
    # Every strategy starts from the same seed set, so round 0 is one model.
    assert len({row["mean_curve"][0] for row in figures["strategies"].values()}) == 1
    assert figures["random_final_macro_f1"] == figures["strategies"]["random"]["final_macro_f1"]
    assert figures["best_by_aulc"] in al.STRATEGIES
    assert set(figures["not_applicable"]) == {"detector", "countability"}
    assert Path(figures["plot"]) == plot
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_curves_from_log_keep_only_seeds_every_strategy_finished() -> None:
    settings = al.Settings(rounds=1, strategies=("random", "entropy"))
    lines = [
        "[20:00:00] seed 0 random round 0: 10 labels, macro-F1 0.2000",
        "[20:00:01] seed 0 entropy round 0: 10 labels, macro-F1 0.2000",
        "[20:00:02] seed 0 random round 1: 20 labels, macro-F1 0.4000",
        "[20:00:03] seed 0 entropy round 1: 20 labels, macro-F1 0.5000",
        "[20:00:04] seed 1 random round 0: 10 labels, macro-F1 0.1000",
        "[20:00:05] seed 1 random round 1: 20 labels, macro-F1 0.3000",
        "[20:00:06] seed 1 entropy round 0: 10 labels, macro-F1 0.1000",  # seed 1 entropy never finished
    ]
    result = al.curves_from_log(lines, settings)
    assert result["seeds"] == [0]
    assert result["labels"] == [10, 20]
    assert result["curves"] == {"random": [[0.2, 0.4]], "entropy": [[0.2, 0.5]]}
    assert result["summary"]["entropy"]["labels_to_random_final"] == 20
    with pytest.raises(ValueError, match="no seed"):
        al.curves_from_log(lines[4:], settings)
