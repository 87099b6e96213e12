"""`make bench`: run the benchmarks, each in its own process, and print one table of their figures.

    python -m benchmarks                    # all of them (the real-data training runs take ~20 min each)
    python -m benchmarks pipeline export    # a selection

Each benchmark module prints a JSON object as its last output line (`--json`); this runner collects them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Benchmark:
    name: str
    args: tuple[str, ...]
    figures: tuple[str, ...]
    goal: str


BENCHMARKS: tuple[Benchmark, ...] = (
    Benchmark(
        "pipeline",
        ("--profile", "cpu", "--fields", "32", "--json"),
        ("fields_per_s", "cells_per_s", "overhead_ratio"),
        "cpu profile >= 2 fields/s, overhead_ratio <= 1.3",
    ),
    Benchmark(
        "bccd_training",
        ("--time-limit-min", "20", "--json"),
        ("ap50", "ap50_95", "detector_train_min", "classifier_accuracy", "classifier_macro_f1"),
        "cpu detector WBC AP@0.5 >= 0.90 on BCCD val within 20 min of CPU training",
    ),
    Benchmark(
        "export",
        ("--annotations", "1000000", "--json"),
        ("annotations", "seconds", "peak_mb", "annotations_per_s"),
        "1,000,000 annotations well under a minute, flat memory",
    ),
    Benchmark(
        "import_dataset",
        ("--fields", "1000", "--boxes-per-field", "150", "--json"),
        (
            "postgresql.import_boxes_per_s",
            "postgresql.import_rss_peak_mb",
            "postgresql.export_boxes_per_s",
            "sqlite.import_boxes_per_s",
            "sqlite.import_rss_peak_mb",
            "sqlite.export_boxes_per_s",
        ),
        "150,000 boxes: PostgreSQL import >= 15,000 boxes/s, peak RSS < 500 MiB; export >= 19,000 boxes/s",
    ),
    Benchmark(
        "review_queue",
        ("--cells", "300000", "--requests", "30", "--json"),
        ("p50_ms", "p95_ms", "queries_limit_5", "queries_limit_20"),
        "300,000 queued cells: GET next batch p95 <= 50 ms, the same SQL queries whatever the batch",
    ),
    Benchmark(
        "load",
        ("--json",),
        ("all.rps", "read.p95_ms", "write.p95_ms", "all.p99_ms", "all.errors", "load_average"),
        "10,000 fields / 300,000 cells: p95 < 200 ms reads and writes, 0 errors",
    ),
    Benchmark(
        "ui",
        ("--json",),
        ("annotator.p95_ms", "gallery.p95_ms", "crosscheck.p95_ms", "gallery_first_paint.max_ms", "load_average"),
        "10,000 fields / 300,000 cells: key press to next field/cell p95 <= 150 ms, 2,000-cell gallery paint <= 1 s",
    ),
    Benchmark(
        "bccd_platform",
        ("--json",),
        ("detector_ap50", "detector_train_s", "classifier_accuracy", "classifier_macro_f1"),
        "BCCD val: WBC AP@0.5 >= 0.90 within 20 min of CPU training; classifier accuracy / macro-F1 reported",
    ),
)


def figure(result: dict[str, object], key: str) -> object:
    """A figure by its dotted name ("read.p95_ms" is result["read"]["p95_ms"])."""
    value: object = result
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def run(benchmark: Benchmark) -> dict[str, object]:
    started = time.monotonic()
    process = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{benchmark.name}", *benchmark.args],
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.monotonic() - started
    lines = [line for line in process.stdout.splitlines() if line.strip().startswith("{")]
    if process.returncode != 0 or not lines:
        tail = (process.stderr or process.stdout).strip().splitlines()[-5:]
        return {"error": f"exit {process.returncode}: {' | '.join(tail)}", "wall_s": round(elapsed, 1)}
    result: dict[str, object] = json.loads(lines[-1])
    result["wall_s"] = round(elapsed, 1)
    return result


def main(selected: list[str]) -> int:
    known = {benchmark.name: benchmark for benchmark in BENCHMARKS}
    unknown = [name for name in selected if name not in known]
    if unknown:
        print(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(known)}", file=sys.stderr)
        return 2
    chosen = [known[name] for name in selected] if selected else list(BENCHMARKS)
    failed = False
    rows = []
    for benchmark in chosen:
        print(f"running {benchmark.name} ...", file=sys.stderr, flush=True)
        result = run(benchmark)
        failed |= "error" in result
        shown = result.get("error") or ", ".join(f"{key}={figure(result, key)}" for key in benchmark.figures)
        rows.append((benchmark.name, str(shown), benchmark.goal, str(result["wall_s"])))
    widths = [max(len(row[i]) for row in [("benchmark", "figures", "goal", "wall s"), *rows]) for i in range(4)]
    for row in [("benchmark", "figures", "goal", "wall s"), *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
