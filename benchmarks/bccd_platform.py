"""Real-data check of training through the platform (issue 6): BCCD peripheral-blood fields.

    python -m benchmarks.bccd_platform --json                      # the full check, scratch and self-supervised
    python -m benchmarks.bccd_platform --init scratch --json       # from random init only (as before issue 15)
    python -m benchmarks.bccd_platform --epochs 1 --classifier-epochs 1 --pretrain-epochs 1 --json   # a quick proof

1. Detector: ../shared/data/bccd is imported as truth with the platform's command alone,
   `manage.py import_dataset --format voc --split-from-dataset --patient-per-image` (label map
   demo/bccd_label_map.json: WBC boxes only, RBC and platelets ignored: the detector is a white-cell detector): each
   field is its own patient, its split pinned from the list naming it (ImageSets/train.txt -> train, val.txt -> val),
   so the platform's split service keeps it. Then `manage.py train --stage detector --profile cpu --wait` and
   `manage.py evaluate --split val --json`.
2. Classifier: in a separate database, the fields with exactly one WBC, typed from wbc_types.csv (neutrophil -> 5
   neutrophilic segmented, eosinophil -> 6, lymphocyte -> 12, monocyte -> 16, basophil -> 20 other), the same way;
   imported by the same command with `--ids` naming them; then `train --stage classifier` and `evaluate --split val`.

3. Self-supervised start (`--init self-supervised` or `both`): in the same database, after the scratch run,
   `manage.py pretrain --stage detector-backbone|classifier --profile cpu --exclude-split val --exclude-split test
   --wait` learns starting points from the imported fields of the train split (no label read; the val fields stay
   unseen), then the same training runs with profile `cpu-ssl`: the `cpu` profile whose stage starts from those
   starting points (`init: starting-point:<name>`, same recipe and epochs), written to a profiles file of the run's
   own. Its minutes count the pretraining too.

Each part runs in a child process with its own AICELL_VAR_DIR and SQLite database (a temporary folder, removed at
the end unless --keep), so the user's data is never touched. Note: `val` is also the split on which the runner picks
the best epoch, as the platform does for every run; the figures are those of the original `val` list.
The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from io import StringIO
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "bccd"
LABEL_MAP = ROOT / "demo" / "bccd_label_map.json"
TRAINING_LIMIT_S = 20 * 60
INITS = ("scratch", "self-supervised")
SSL_PROFILE = "cpu-ssl"
SSL_NAME = "bccd-ssl"
PRETRAIN_STAGE = {"detector": "detector-backbone", "classifier": "classifier"}


def write_ssl_profiles(var_dir: Path, stage: str) -> Path:
    """The shipped profiles plus `cpu-ssl`: the `cpu` profile whose `stage` starts from the benchmark's starting
    points (one per ensemble member), with the same recipe as from scratch (only the start differs)."""
    import yaml

    from inference.core.profiles import PROFILES_PATH, load_profiles
    from training.core.stages import pretrain_archs, starting_point_names

    profiles = yaml.safe_load(PROFILES_PATH.read_text())
    ssl = json.loads(json.dumps(profiles["cpu"]))
    archs = pretrain_archs(PRETRAIN_STAGE[stage], load_profiles(PROFILES_PATH)["cpu"])
    inits = [f"starting-point:{name}" for name in starting_point_names(SSL_NAME, archs)]
    ssl[stage]["init"] = inits if stage == "classifier" else inits[0]
    ssl[stage]["training_pretrained"] = dict(ssl[stage]["training"])
    ssl["description"] = f"the cpu profile, its {stage} starting from self-supervised pretraining (benchmark)"
    profiles[SSL_PROFILE] = ssl
    path = var_dir / "profiles.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(profiles, sort_keys=False))
    return path


def _setup_django(var_dir: Path, profiles_file: Path) -> None:
    os.environ.update(
        {
            "DJANGO_ENV": "test",
            "DJANGO_DEBUG": "false",
            "AICELL_VAR_DIR": str(var_dir),
            "MEDIA_ROOT": str(var_dir / "media"),
            "AICELL_TMP_DIR": str(var_dir / "tmp"),
            "AICELL_MODEL_DIR": str(var_dir / "models"),
            "AICELL_DATASET_DIR": str(var_dir / "datasets"),
            "AICELL_AUTO_PRELABEL": "false",
            "DATABASE_URL": f"sqlite:///{var_dir / 'bccd.sqlite3'}",
            "CELERY_BROKER_URL": "filesystem://localhost//",
            "DJANGO_SETTINGS_MODULE": "aicell.settings",
            "AICELL_PROFILES_FILE": str(profiles_file),
        }
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _wbc_count(data: Path, image: str) -> int:
    return len(re.findall(r"<name>\s*WBC\s*</name>", (data / "Annotations" / f"{image}.xml").read_text()))


def _import(data: Path, var_dir: Path, *, one_wbc_only: bool) -> dict[str, Any]:
    """Import the dataset through `manage.py import_dataset` alone: each field its own patient, its split the list
    that names it (--split-from-dataset --patient-per-image). The classifier's import names only the fields with
    exactly one typed WBC (--ids)."""
    args = [str(data), "--format", "voc", "--case", "BCCD", "--label-map", str(LABEL_MAP), "--source-name", "BCCD"]
    args += ["--types-csv", str(data / "wbc_types.csv"), "--split-from-dataset", "--patient-per-image"]
    if one_wbc_only:
        from annotations.interchange.dataset import field_types_read

        typed = field_types_read((data / "wbc_types.csv").read_text(encoding="utf-8-sig"))
        wanted = [path.stem for path in sorted((data / "Annotations").glob("*.xml")) if path.stem in typed]
        ids = var_dir / "one_wbc_ids.txt"
        ids.write_text("".join(f"{image}\n" for image in wanted if _wbc_count(data, image) == 1))
        args += ["--ids", str(ids)]
    report = _command("import_dataset", *args)
    skipped = [f"{note['image']}: {note['reason']}" for note in report["duplicates"]]
    return {"fields": report["images_per_split"], "cells": report["cells"], "skipped": skipped}


def _command(*args: str) -> dict[str, Any]:
    from django.core.management import call_command

    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    text = out.getvalue().strip()
    # import_dataset prints one indented JSON object; train and evaluate end with a one-line one.
    result: dict[str, Any] = json.loads(text if args[0] == "import_dataset" else text.splitlines()[-1])
    return result


def _train_and_evaluate(part: str, profile: str, epochs: int | None, time_limit: float) -> dict[str, Any]:
    stage = "detector" if part == "detector" else "classifier"
    args = ["train", "--stage", stage, "--profile", profile, "--wait", "--json"]
    args += ["--override", f"time_limit_s={time_limit:g}"]
    if epochs is not None:
        args += ["--epochs", str(epochs)]
    started = time.monotonic()
    trained = _command(*args)
    train_s = time.monotonic() - started
    if trained["status"] != "succeeded":
        return {"error": trained.get("error") or trained["status"]}
    version = trained["model_versions"][0]
    started = time.monotonic()
    evaluated = _command("evaluate", "--model-version", str(version["id"]), "--split", "val", "--json")
    metrics = evaluated["metrics"]
    from training.models import ModelVersion

    result: dict[str, Any] = {
        "profile": profile,
        "train_s": round(train_s, 1),
        "evaluate_s": round(time.monotonic() - started, 1),
        "timings": trained["timings"],
        "epochs": epochs,
        "best_epochs": ModelVersion.objects.get(pk=version["id"]).best_epochs,
        "model_version": version["id"],
        "status": version["status"],
        "val_fields": evaluated["fields"],
        "val_cells": evaluated["cells"],
    }
    if part == "detector":
        result.update({"ap50": metrics.get("ap50"), "ap50_95": metrics.get("ap50_95")})
    else:
        result.update(
            {
                "accuracy": metrics.get("accuracy"),
                "macro_f1": metrics.get("macro_f1"),
                "ece": metrics.get("ece"),
                "per_class": {
                    entry.get("name", key): {
                        "f1": entry.get("f1"),
                        "recall": entry.get("recall"),
                        "n": entry.get("support"),
                    }
                    for key, entry in (metrics.get("per_class") or {}).items()
                },
            }
        )
    return result


def _pretrain(part: str, epochs: int | None, time_limit: float) -> dict[str, Any]:
    args = ["pretrain", "--stage", PRETRAIN_STAGE[part], "--profile", "cpu", "--name", SSL_NAME, "--wait", "--json"]
    args += ["--exclude-split", "val", "--exclude-split", "test", "--time-limit", f"{time_limit:g}"]
    if epochs is not None:
        args += ["--epochs", str(epochs)]
    started = time.monotonic()
    report = _command(*args)
    return {
        "pretrain_s": round(time.monotonic() - started, 1),
        "status": report["status"],
        "error": report.get("error"),
        "fields": report.get("fields"),
        "boxes": report.get("boxes"),
        "starting_points": [
            {key: point[key] for key in ("name", "arch", "epochs", "loss", "stopped_early")}
            for point in report.get("starting_points", [])
        ],
        "not_trained": report.get("not_trained"),
    }


def run_part(
    part: str,
    data: Path,
    var_dir: Path,
    epochs: int | None,
    pretrain_epochs: int | None,
    time_limit: float,
    inits: list[str],
) -> dict[str, Any]:
    _setup_django(var_dir, write_ssl_profiles(var_dir, "detector" if part == "detector" else "classifier"))
    started = time.monotonic()
    dataset = _import(data, var_dir, one_wbc_only=part == "classifier")
    result: dict[str, Any] = {
        "part": part,
        "fields": dataset["fields"],
        "cells": dataset["cells"],
        "skipped": dataset["skipped"],
        "import_s": round(time.monotonic() - started, 1),
    }
    if "scratch" in inits:
        result["scratch"] = _train_and_evaluate(part, "cpu", epochs, time_limit)
    if "self-supervised" in inits:
        pretrained = _pretrain(part, pretrain_epochs, time_limit)
        if pretrained["status"] != "succeeded" or pretrained["not_trained"]:
            result["self_supervised"] = {
                "error": pretrained["error"] or "pretraining stopped",
                "pretraining": pretrained,
            }
        else:
            trained = _train_and_evaluate(part, SSL_PROFILE, epochs, time_limit)
            if "train_s" in trained:
                trained["total_s"] = round(trained["train_s"] + pretrained["pretrain_s"], 1)
            result["self_supervised"] = {**trained, "pretraining": pretrained}
    return result


def _child(part: str, args: argparse.Namespace, var_dir: Path) -> dict[str, Any]:
    epochs = args.epochs if part == "detector" else args.classifier_epochs
    command = [sys.executable, "-m", "benchmarks.bccd_platform", "--part", part, "--data", str(args.data)]
    command += ["--var", str(var_dir), "--time-limit", str(args.time_limit), "--init", args.init]
    if epochs is not None:
        command += ["--epochs", str(epochs)]
    if args.pretrain_epochs is not None:
        command += ["--pretrain-epochs", str(args.pretrain_epochs)]
    process = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    lines = [line for line in process.stdout.splitlines() if line.startswith("{")]
    if process.returncode != 0 or not lines:
        tail = " | ".join((process.stderr or process.stdout).strip().splitlines()[-6:])
        return {"part": part, "error": f"exit {process.returncode}: {tail}"}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def _minutes(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 60, 1)


def summarise(figures: dict[str, dict[str, Any]], inits: list[str]) -> dict[str, Any]:
    """One column per init: the goal figures and minutes per stage (self-supervised: pretraining included)."""
    columns: dict[str, Any] = {}
    for init in inits:
        key = init.replace("-", "_")
        detector = figures.get("detector", {}).get(key) or {}
        classifier = figures.get("classifier", {}).get(key) or {}
        minutes = {
            "detector": _minutes(detector.get("total_s", detector.get("train_s"))),
            "classifier": _minutes(classifier.get("total_s", classifier.get("train_s"))),
        }
        if init == "self-supervised":
            for name, part in (("detector", detector), ("classifier", classifier)):
                minutes[f"{name}_pretraining"] = _minutes((part.get("pretraining") or {}).get("pretrain_s"))
        # All stages (pretraining included in a part's total): unknown when a part that ran has no figure.
        totals = [minutes[name] for name in ("detector", "classifier") if name in figures]
        columns[key] = {
            "detector_ap50": detector.get("ap50"),
            "detector_ap50_95": detector.get("ap50_95"),
            "classifier_accuracy": classifier.get("accuracy"),
            "classifier_macro_f1": classifier.get("macro_f1"),
            "minutes": minutes,
            "total_minutes": None if None in totals else round(sum(m for m in totals if m is not None), 1),
        }
    return columns


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--epochs", type=int, default=None, help="detector epochs (default: the cpu profile's)")
    parser.add_argument("--classifier-epochs", type=int, default=None, help="default: the cpu profile's")
    parser.add_argument("--pretrain-epochs", type=int, default=None, help="self-supervised epochs (default: 20)")
    parser.add_argument(
        "--init", choices=[*INITS, "both"], default="both", help="start from scratch, pretraining, both"
    )
    parser.add_argument("--time-limit", type=float, default=TRAINING_LIMIT_S, help="training seconds per model")
    parser.add_argument("--skip", choices=["detector", "classifier"], action="append", default=[])
    parser.add_argument("--keep", action="store_true", help="keep the temporary databases and models")
    parser.add_argument("--json", action="store_true", help="(always) print the figures as JSON last")
    parser.add_argument("--part", choices=["detector", "classifier"], help=argparse.SUPPRESS)
    parser.add_argument("--var", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    inits = list(INITS) if args.init == "both" else [args.init]
    if not (args.data / "Annotations").is_dir():
        print(f"no BCCD data at {args.data}", file=sys.stderr)
        return 2
    if args.part:
        print(
            json.dumps(
                run_part(args.part, args.data, args.var, args.epochs, args.pretrain_epochs, args.time_limit, inits)
            )
        )
        return 0
    root = Path(tempfile.mkdtemp(prefix="aicell-bccd-"))
    figures: dict[str, Any] = {}
    try:
        for part in ("detector", "classifier"):
            if part in args.skip:
                continue
            print(f"{part}: importing, training, evaluating in {root / part} ...", file=sys.stderr, flush=True)
            figures[part] = _child(part, args, root / part)
    finally:
        if args.keep:
            print(f"kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    summary: dict[str, Any] = {**summarise(figures, inits), "parts": figures}
    errors = [
        f"{name}{'' if key == 'part' else f' {key}'}: {entry['error']}"
        for name, part in figures.items()
        for key, entry in [("part", part), *((k, part.get(k) or {}) for k in ("scratch", "self_supervised"))]
        if "error" in entry
    ]
    if errors:
        summary["error"] = "; ".join(errors)
    print(json.dumps(summary))
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
