"""Which review strategy finds the labels that help most? A simulated active-learning loop on real BCCD white cells.

    python -m benchmarks.active_learning --dataset bccd --json          # default run (minutes on 2 cores)
    python -m benchmarks.active_learning --dataset bccd --quick --json  # a tiny run (the test's)

The pool is the BCCD `train` list, the fixed held-out part its `val` list (BCCD's own test list stays unseen).
Cells: the fields with exactly one WBC box and exactly one type in wbc_types.csv (`benchmarks.bccd_training.
load_bccd`); a field with several WBCs lists its types in an order not tied to its boxes, so its cells have no
unambiguous type and are left out. Each cell's crop is cut once, as the pipeline cuts it (the `cpu` profile's
input size and context margin), and cached.

Per seed and strategy: a random seed set of labelled cells (the same for every strategy of that seed), then rounds
in which the `cpu` classifier ensemble (built by name from the profile, trained from scratch with the project's
`train_one_epoch` and optimiser/schedule) predicts the unlabelled pool and the strategy picks the next B cells to
label. The picks go through the review queue's own code: `inference.core.uncertainty.compute_uncertainty` on the
ensemble's and members' probabilities, then `inference.core.selection.select_for_review` with the queue's default
arguments (class balancing on), so a strategy is measured exactly as the queue ranks. `random` is the control.
After every round the ensemble's macro-F1 on the held-out cells is recorded (`training.core.metrics`).

Per strategy it prints the area under the learning curve (AULC: the trapezoid area of mean macro-F1 over the
label counts, divided by the label range, so it is the curve's mean height in 0..1) and the number of labels at
which the strategy's mean curve first reaches random sampling's final mean macro-F1 (null = never), and writes
the learning curves (mean +- std over seeds) as a PNG. The `detector` strategy ranks by the detector's score and
countability is a separate stage: neither says anything about which *type* to label, so both are left out.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PLOT = REPO_ROOT / "var" / "benchmarks" / "active_learning.png"
CACHE_DIR = REPO_ROOT / "var" / "benchmarks" / "cache"
RANDOM = "random"
# The review-queue strategies that rank by the classifier's uncertainty (inference.core.selection).
UNCERTAINTY_STRATEGIES = ("least_confidence", "margin", "entropy", "disagreement")
STRATEGIES = (RANDOM, *UNCERTAINTY_STRATEGIES)
NOT_APPLICABLE = {
    "detector": "ranks by the detector's score (is it a cell at all?), which says nothing about a cell's type",
    "countability": "a separate stage (countable or not), not the type classifier this loop trains",
}


@dataclass(frozen=True)
class Settings:
    initial: int = 10  # labelled cells before the first round (random, the same for every strategy of a seed)
    batch: int = 10  # cells labelled per round
    rounds: int = 4
    epochs: int = 8  # epochs per training (from scratch each round)
    seeds: tuple[int, ...] = (0, 1, 2)
    crop_size: int = 64  # px; the cpu profile's classifier takes 112, smaller keeps the loop CPU-cheap
    batch_size: int = 8  # training batch (the profile's 16 gives too few steps on a few dozen cells)
    strategies: tuple[str, ...] = STRATEGIES
    members: tuple[int, ...] | None = None  # ensemble members of the cpu profile (None = all)
    pool_limit: int | None = None  # cap the pool (the --quick run)
    val_limit: int | None = None


QUICK = Settings(
    initial=8, batch=4, rounds=2, epochs=1, seeds=(0,), crop_size=32, members=(0, 1), pool_limit=24, val_limit=16
)


# ----------------------------------------------------------------------------------------------------------
# Pure parts: the curve summaries and the random control


def aulc(labels: Sequence[float], scores: Sequence[float]) -> float:
    """Area under the learning curve (trapezoids) divided by the label range: the curve's mean height."""
    x, y = np.asarray(labels, dtype=np.float64), np.asarray(scores, dtype=np.float64)
    if x.size == 0:
        raise ValueError("an empty learning curve has no area")
    if x.size == 1 or x[-1] == x[0]:
        return float(y.mean())
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2.0) / (x[-1] - x[0]))


def labels_to_reach(labels: Sequence[int], scores: Sequence[float], target: float) -> int | None:
    """The first label count whose score reaches `target` (None if the curve never does)."""
    for count, score in zip(labels, scores, strict=True):
        if score >= target - 1e-12:
            return int(count)
    return None


def random_pick(pool: Sequence[int], k: int, rng: np.random.Generator) -> list[int]:
    """The control: k pool indices uniformly at random, without replacement."""
    if k >= len(pool):
        return list(pool)
    return [pool[i] for i in sorted(rng.choice(len(pool), size=k, replace=False).tolist())]


def uncertainty_pick(
    pool: Sequence[int], member_probs: np.ndarray, k: int, strategy: str, field_of: Callable[[int], Any]
) -> list[int]:
    """The review queue's pick of k pool cells under `strategy`, from the members' probabilities (M, N, C).

    The same code path as the queue: the uncertainty measures the pipeline stores with each predicted cell, the
    candidates the queue selector builds from them, and `select_for_review` with the queue's default arguments.
    """
    from inference.core.selection import ReviewCandidate, select_for_review
    from inference.core.uncertainty import compute_uncertainty

    probs = np.asarray(member_probs, dtype=np.float64)
    ensemble = probs.mean(axis=0)
    measures = compute_uncertainty(ensemble, probs, np.ones(len(pool))).per_cell()
    candidates = [
        ReviewCandidate(index, field_of(index), int(row.argmax()), measure, 1.0)
        for index, row, measure in zip(pool, ensemble, measures, strict=True)
    ]
    return [int(c.cell_id) for c in select_for_review(candidates, k, strategy)]  # type: ignore[call-overload]


def summarise(curves: dict[str, list[list[float]]], labels: list[int]) -> dict[str, dict[str, Any]]:
    """Per strategy: mean/std curve over seeds, AULC (of the mean and per seed), labels to reach random's final."""
    means = {name: np.mean(np.asarray(runs), axis=0) for name, runs in curves.items()}
    target = float(means[RANDOM][-1]) if RANDOM in means else None
    summary: dict[str, dict[str, Any]] = {}
    for name, runs in curves.items():
        mean = means[name]
        per_seed = [aulc(labels, run) for run in runs]
        summary[name] = {
            "aulc": round(aulc(labels, mean.tolist()), 4),
            "aulc_per_seed": [round(v, 4) for v in per_seed],
            "aulc_std": round(float(np.std(per_seed)), 4),
            "final_macro_f1": round(float(mean[-1]), 4),
            "labels_to_random_final": None if target is None else labels_to_reach(labels, mean.tolist(), target),
            "mean_curve": [round(float(v), 4) for v in mean],
            "std_curve": [round(float(v), 4) for v in np.std(np.asarray(runs), axis=0)],
        }
    return summary


# ----------------------------------------------------------------------------------------------------------
# The loop (torch)


@dataclass
class Cells:
    crops: Any  # Tensor (N, 3, S, S), normalised as the pipeline normalises
    labels: np.ndarray  # (N,) taxonomy class ids
    fields: list[str] = field(default_factory=list)  # the field of each cell


def cut_cells(records: Sequence[Any], settings: Any, cache_dir: Path | None = None) -> Cells:
    """Every labelled cell of `records`, cut once without augmentation as the pipeline cuts it; kept in
    `cache_dir` (keyed by the cells and the crop geometry) so later runs skip decoding the fields."""
    import hashlib

    import torch

    from training.core.data import Augment, CropDataset, ImageCache
    from training.core.engine import crop_spec

    items = settings.spec.examples(records)
    spec = crop_spec(settings)
    key = hashlib.sha256(repr((spec, [(records[i.field].image_path, i.box, i.label) for i in items])).encode())
    path = None if cache_dir is None else cache_dir / f"al-crops-{key.hexdigest()[:16]}.pt"
    fields = [records[item.field].key for item in items]
    if path is not None and path.exists():
        crops = torch.load(path, weights_only=True)
    else:
        dataset = CropDataset(records, items, spec, augment=Augment.none(), cache=ImageCache())
        crops = torch.stack([dataset[i][0] for i in range(len(dataset))]) if items else torch.zeros(0, 3, 1, 1)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save(crops, path)
    return Cells(crops, np.asarray([item.label for item in items], dtype=int), fields)


class _CachedCrops:
    """A training set over cached crops: flips and quarter turns drawn from the sampler's item seed."""

    def __init__(self, crops: Any, labels: Sequence[int]) -> None:
        self.crops, self.labels = crops, list(labels)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[Any, int]:
        import torch

        index, seed = (key, None) if isinstance(key, int) else key
        crop = self.crops[index]
        if seed is not None:
            gen = torch.Generator().manual_seed(int(seed))
            flips = torch.rand(2, generator=gen) < 0.5
            turns = int(torch.randint(0, 4, (), generator=gen))
            if flips[0]:
                crop = crop.flip(-1)
            if flips[1]:
                crop = crop.flip(-2)
            crop = torch.rot90(crop, turns, dims=(-2, -1))
        return crop, self.labels[index]


def train_ensemble(settings: Any, crops: Any, labels: Sequence[int], seed: int) -> list[Any]:
    """The cpu profile's classifier ensemble trained from scratch on the labelled crops, with the project's
    model builder, optimiser, schedule, class-balanced sampler, step and `train_one_epoch`."""
    import torch
    from torch.utils.data import DataLoader

    from training.core.config import derive_seed
    from training.core.data import SeededSampler, balanced_weights, stack_crops
    from training.core.engine import engine_of, make_optimizer, make_scheduler, train_one_epoch

    engine = engine_of(settings.spec)
    dataset = _CachedCrops(crops, labels)
    size = len(dataset)
    batch_size = min(settings.training.batch_size, size)
    drop_last = size > batch_size and size % batch_size == 1  # no batch of one (BatchNorm)
    steps = size // batch_size if drop_last else -(-size // batch_size)
    weights = balanced_weights(dataset.labels, settings.balance_power) if settings.balance_power > 0 else None
    models = []
    for member, arch in settings.models():
        torch.manual_seed(derive_seed(seed, "al", member, "init"))
        model = engine.build(settings.spec, settings.profile, arch)
        engine.prepare(model, settings.device)
        optimizer = make_optimizer(settings, model)
        scheduler = make_scheduler(settings, optimizer, steps)
        step = engine.step(settings.device, None, settings.label_smoothing)
        for epoch in range(1, settings.epochs + 1):
            epoch_seed = derive_seed(seed, "al", member, "epoch", epoch)
            torch.manual_seed(epoch_seed)
            loader: DataLoader[Any] = DataLoader(
                dataset,  # type: ignore[arg-type]
                batch_size=batch_size,
                sampler=SeededSampler(size, epoch_seed, weights),
                collate_fn=stack_crops,
                drop_last=drop_last,
            )
            train_one_epoch(model, loader, optimizer, scheduler, step=step)
        model.eval()
        models.append(model)
    return models


def predict(models: Sequence[Any], crops: Any, batch_size: int = 256) -> np.ndarray:
    """Softmax probabilities (M, N, C) of each member on the cached crops."""
    import torch

    with torch.inference_mode():
        return np.stack(
            [torch.cat([m(batch).float().softmax(dim=1) for batch in crops.split(batch_size)]).numpy() for m in models]
        )


def _log_stderr(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run_curve(
    pool: Cells,
    held_out: Cells,
    train_config: Any,
    settings: Settings,
    seed: int,
    name: str,
    log: Callable[[str], None] | None = None,
    threads: int | None = None,
) -> list[float]:
    """One learning curve: strategy `name` from seed `seed`'s seed set, macro-F1 on the held-out cells per round.

    Everything derives from `seed` (seed set, model inits, epochs), so round 0 is the same model for every
    strategy of a seed, and a curve is the same whichever process runs it."""
    import torch

    from training.core.config import resolve_settings
    from training.core.metrics import multiclass_metrics

    stage_settings = resolve_settings(train_config)  # resolved here: a StageSpec does not cross processes
    if threads is not None:
        torch.set_num_threads(threads)
    n = len(pool.labels)
    seed_set = sorted(np.random.default_rng(seed).choice(n, size=min(settings.initial, n), replace=False).tolist())
    pick_rng = np.random.default_rng([seed, 1])
    labelled = list(seed_set)
    curve: list[float] = []
    for round_index in range(settings.rounds + 1):
        models = train_ensemble(stage_settings, pool.crops[labelled], pool.labels[labelled].tolist(), seed)
        held_probs = predict(models, held_out.crops).mean(axis=0)
        score = float(multiclass_metrics(held_out.labels, held_probs)["macro_f1"] or 0.0)
        curve.append(score)
        if log is not None:
            log(f"seed {seed} {name} round {round_index}: {len(labelled)} labels, macro-F1 {score:.4f}")
        if round_index < settings.rounds:
            taken = set(labelled)
            unlabelled = [i for i in range(n) if i not in taken]
            k = min(settings.batch, len(unlabelled))
            if name == RANDOM:
                picked = random_pick(unlabelled, k, pick_rng)
            else:
                probs = predict(models, pool.crops[unlabelled])
                picked = uncertainty_pick(unlabelled, probs, k, name, lambda i: pool.fields[i])
            labelled.extend(picked)
    return curve


def simulate(
    pool: Cells,
    held_out: Cells,
    train_config: Any,
    settings: Settings,
    *,
    jobs: int = 1,
    threads: int = 1,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Every (seed, strategy) curve, in `jobs` processes (each with `threads` torch threads); and their summary."""
    n = len(pool.labels)
    labels_axis = [min(n, settings.initial + r * settings.batch) for r in range(settings.rounds + 1)]
    tasks = [(seed, name) for seed in settings.seeds for name in settings.strategies]
    if jobs <= 1:
        results = [run_curve(pool, held_out, train_config, settings, seed, name, log) for seed, name in tasks]
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as executor:
            futures = [
                executor.submit(
                    run_curve,
                    pool,
                    held_out,
                    train_config,
                    settings,
                    seed,
                    name,
                    _log_stderr if log else None,
                    threads,
                )
                for seed, name in tasks
            ]
            results = [future.result() for future in futures]
    curves: dict[str, list[list[float]]] = {name: [] for name in settings.strategies}
    for (_, name), curve in zip(tasks, results, strict=True):
        curves[name].append(curve)
    return {"labels": labels_axis, "curves": curves, "summary": summarise(curves, labels_axis)}


_LOG_LINE = re.compile(r"seed (\d+) (\w+) round (\d+): (\d+) labels, macro-F1 ([0-9.]+)")


def curves_from_log(lines: Sequence[str], settings: Settings) -> dict[str, Any]:
    """The curves an earlier run logged (its stderr), e.g. one cut short on a busy machine: only the seeds whose
    every strategy finished every round are kept, so each strategy is summarised over the same seeds."""
    rounds: dict[tuple[int, str], dict[int, tuple[int, float]]] = {}
    for line in lines:
        match = _LOG_LINE.search(line)
        if match:
            seed, name, index, count, score = match.groups()
            rounds.setdefault((int(seed), name), {})[int(index)] = (int(count), float(score))
    complete = sorted(
        seed
        for seed in {seed for seed, _ in rounds}
        if all(len(rounds.get((seed, name), {})) == settings.rounds + 1 for name in settings.strategies)
    )
    if not complete:
        raise ValueError("the log holds no seed whose every strategy finished every round")
    first = rounds[(complete[0], settings.strategies[0])]
    labels = [first[index][0] for index in range(settings.rounds + 1)]
    curves = {
        name: [[rounds[(seed, name)][index][1] for index in range(settings.rounds + 1)] for seed in complete]
        for name in settings.strategies
    }
    return {"labels": labels, "curves": curves, "summary": summarise(curves, labels), "seeds": complete}


def plot(result: dict[str, Any], path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = result["labels"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, row in result["summary"].items():
        mean, std = np.asarray(row["mean_curve"]), np.asarray(row["std_curve"])
        style = "--" if name == RANDOM else "-"
        ax.plot(labels, mean, style, marker="o", markersize=3, label=f"{name} (AULC {row['aulc']:.3f})")
        ax.fill_between(labels, mean - std, mean + std, alpha=0.12)
    ax.set_xlabel("labelled cells")
    ax.set_ylabel("macro-F1 on held-out cells")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _settings_from(args: argparse.Namespace) -> Settings:
    base = QUICK if args.quick else Settings()
    changes: dict[str, Any] = {}
    for key in ("initial", "batch", "rounds", "epochs", "crop_size", "batch_size"):
        if getattr(args, key) is not None:
            changes[key] = getattr(args, key)
    if args.seeds is not None or args.first_seed:
        count = args.seeds if args.seeds is not None else len(base.seeds)
        changes["seeds"] = tuple(range(args.first_seed, args.first_seed + count))
    if args.strategies:
        names = tuple(s.strip() for s in args.strategies.split(",") if s.strip())
        unknown = [s for s in names if s not in STRATEGIES]
        if unknown:
            raise SystemExit(f"unknown strategies {unknown}; valid: {', '.join(STRATEGIES)}")
        changes["strategies"] = names if RANDOM in names else (RANDOM, *names)
    return Settings(**{**base.__dict__, **changes})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--dataset", choices=["bccd"], default="bccd")
    parser.add_argument("--root", type=Path, default=None, help="the BCCD folder (default: ../shared/data/bccd)")
    parser.add_argument("--quick", action="store_true", help="a tiny run: few cells, 2 members, 1 epoch, 1 seed")
    parser.add_argument("--initial", type=int, default=None, help="labelled cells before the first round")
    parser.add_argument("--batch", type=int, default=None, help="cells labelled per round (B)")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None, help="epochs per training")
    parser.add_argument(
        "--first-seed",
        type=int,
        default=0,
        help="seeds are first..first+n-1 (runs of other seeds can be merged "
        "with --from-log on their concatenated logs: each curve depends on its seed alone)",
    )
    parser.add_argument("--crop-size", type=int, default=None, help="crop side in px (cpu profile: 112)")
    parser.add_argument("--batch-size", type=int, default=None, help="training batch size")
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds (0..n-1)")
    parser.add_argument("--strategies", default=None, help=f"comma list of {', '.join(STRATEGIES)} (random always)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is fastest on a shared machine)")
    parser.add_argument("--jobs", type=int, default=2, help="processes running (seed, strategy) curves at once")
    parser.add_argument(
        "--from-log", type=Path, default=None, help="summarise the curves an earlier run logged (no training)"
    )
    parser.add_argument("--no-cache", action="store_true", help="cut the crops again instead of reading var/")
    parser.add_argument("--plot", type=Path, default=DEFAULT_PLOT, help="where the learning-curve PNG goes")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON line")
    args = parser.parse_args(argv)

    import torch

    from benchmarks.bccd_training import DEFAULT_ROOT, load_bccd
    from inference.core.profiles import get_profile
    from training.core.config import TrainConfig, resolve_settings

    settings = _settings_from(args)
    torch.set_num_threads(args.threads)
    started = time.monotonic()
    overrides: dict[str, Any] = {"batch_size": settings.batch_size}
    if settings.members is not None:
        overrides["members"] = list(settings.members)
    profile = get_profile("cpu")
    profile = dataclasses.replace(
        profile, classifier=dataclasses.replace(profile.classifier, input_size=settings.crop_size)
    )
    train_config = TrainConfig("classifier", profile, settings.epochs, 0, overrides, "cpu")
    stage_settings = resolve_settings(train_config)
    _, records = load_bccd(args.root or DEFAULT_ROOT)
    pool_records = [r for r in records if r.split == "train"][: settings.pool_limit]
    val_records = [r for r in records if r.split == "val"][: settings.val_limit]
    cache = None if args.no_cache else CACHE_DIR
    pool, held_out = cut_cells(pool_records, stage_settings, cache), cut_cells(val_records, stage_settings, cache)

    if args.from_log is not None:
        result = curves_from_log(args.from_log.read_text().splitlines(), settings)
        settings = dataclasses.replace(settings, seeds=tuple(result["seeds"]))
    else:
        result = simulate(pool, held_out, train_config, settings, jobs=args.jobs, threads=args.threads, log=_log_stderr)
    summary = result["summary"]
    ranked = sorted(summary, key=lambda name: summary[name]["aulc"], reverse=True)
    figures: dict[str, Any] = {
        "dataset": args.dataset,
        "profile": "cpu",
        "archs": [arch for _, arch in stage_settings.models()],
        "pool_cells": len(pool.labels),
        "held_out_cells": len(held_out.labels),
        "left_out": "fields with more than one WBC (their types are not tied to boxes) or without exactly one type",
        "settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in settings.__dict__.items()},
        "labels": result["labels"],
        "random_final_macro_f1": summary[RANDOM]["final_macro_f1"] if RANDOM in summary else None,
        "strategies": summary,
        "best_by_aulc": ranked[0],
        "beats_random": [n for n in ranked if n != RANDOM and summary[n]["aulc"] > summary[RANDOM]["aulc"]]
        if RANDOM in summary
        else [],
        "not_applicable": NOT_APPLICABLE,
        "plot": str(plot(result, args.plot, f"Active learning on BCCD white cells ({len(settings.seeds)} seeds)")),
        "from_log": None if args.from_log is None else str(args.from_log),
        "minutes": round((time.monotonic() - started) / 60, 2),
        "threads": args.threads,
        "jobs": args.jobs,
        "load_avg": round(os.getloadavg()[0], 2),
    }
    if args.json:
        print(json.dumps(figures))
    else:
        for name in ranked:
            row = summary[name]
            print(
                f"{name:18s} AULC {row['aulc']:.4f} (+-{row['aulc_std']:.4f})  final {row['final_macro_f1']:.4f}  "
                f"labels to random's final: {row['labels_to_random_final']}"
            )
        for name, why in NOT_APPLICABLE.items():
            print(f"{name}: not applicable ({why})")
        print(f"plot: {figures['plot']}  ({figures['minutes']} min)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
