"""Real-data training check on BCCD (issue 6): the `cpu` detector's WBC AP@0.5 on `val`, and the classifier.

    python -m benchmarks.bccd_training --json                          # detector + classifier, cpu profile
    python -m benchmarks.bccd_training --stages detector --time-limit-min 20 --json

Torch-only: reads the BCCD Pascal VOC boxes and ImageSets straight into FieldRecords (no database) and calls
`training.core.stage_run.train_stage`, the function the platform's training jobs call. Detector: WBC boxes only
(RBC and platelets are background), train split = ImageSets/train.txt, val = val.txt, and val.txt again as
the test split (BCCD's own test list is held out on purpose). Classifier: fields with exactly one WBC box and
one type in wbc_types.csv, the type mapped onto the taxonomy (neutrophil -> 5 neutrophilic segmented,
eosinophil -> 6, lymphocyte -> 12, monocyte -> 16, basophil -> 20 other). Every field is its own "patient"
(BCCD has no patient ids).

Figures (JSON, last line): ap50, ap50_95 (pycocotools on val), detector_train_min (wall minutes of the
detector's train_stage call, evaluation included), detector_epoch_train_s (seconds of each epoch's training
steps, evaluation excluded), detector_epochs/best_epoch, classifier_accuracy and
classifier_macro_f1 (ensemble on val), classifier_train_min, load_avg (1-min load average at start and end:
the machine may be shared, which inflates the minutes).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from defusedxml import ElementTree

from annotations.taxonomy import CLASS_NAMES
from training.core.records import CellRecord, FieldRecord

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ROOT = Path(os.environ.get("AICELL_BCCD_DIR", REPO_ROOT.parent / "shared" / "data" / "bccd"))
# The same type -> class mapping the platform's import uses (the demo's label map), as taxonomy ids.
WBC_TYPE_TO_CLASS = {
    kind: CLASS_NAMES.index(name)
    for kind, name in json.loads((REPO_ROOT / "demo" / "bccd_label_map.json").read_text())["field_types"].items()
}


def _ids(root: Path, name: str) -> list[str]:
    return [line.strip() for line in (root / "ImageSets" / f"{name}.txt").read_text().splitlines() if line.strip()]


def _wbc_boxes(root: Path, image_id: str) -> tuple[int, int, list[tuple[float, float, float, float]]]:
    tree = ElementTree.parse(root / "Annotations" / f"{image_id}.xml")
    size = tree.find("size")
    width = int(size.findtext("width")) if size is not None else 640
    height = int(size.findtext("height")) if size is not None else 480
    boxes = []
    for obj in tree.iter("object"):
        if (obj.findtext("name") or "").strip() != "WBC":
            continue
        bb = obj.find("bndbox")
        if bb is None:
            continue
        x0, y0, x1, y1 = (float(bb.findtext(k) or 0) for k in ("xmin", "ymin", "xmax", "ymax"))
        x0, y0, x1, y1 = max(0.0, x0), max(0.0, y0), min(float(width), x1), min(float(height), y1)
        if x1 > x0 and y1 > y0:
            boxes.append((x0, y0, x1, y1))
    return width, height, boxes


def _wbc_types(root: Path) -> dict[str, list[str]]:
    with (root / "wbc_types.csv").open(newline="") as handle:
        return {row["image"]: [t for t in row["wbc_types"].split(";") if t] for row in csv.DictReader(handle)}


def load_bccd(root: Path = DEFAULT_ROOT) -> tuple[list[FieldRecord], list[FieldRecord]]:
    """(detector fields, classifier fields): train from train.txt, val from val.txt, test = val again."""
    types = _wbc_types(root)
    detector: list[FieldRecord] = []
    classifier: list[FieldRecord] = []
    for source, splits in (("train", ("train",)), ("val", ("val", "test"))):
        for image_id in _ids(root, source):
            width, height, boxes = _wbc_boxes(root, image_id)
            path = str((root / "JPEGImages" / f"{image_id}.jpg").resolve())
            kinds = types.get(image_id, [])
            labelled = len(boxes) == 1 and len(kinds) == 1 and kinds[0] in WBC_TYPE_TO_CLASS
            for split in splits:
                key = f"bccd:{image_id}" if split != "test" else f"bccd:{image_id}:test"
                cells = tuple(CellRecord(box, True, None) for box in boxes)
                detector.append(FieldRecord(key, path, width, height, image_id, split, cells))
                if labelled:
                    cell = CellRecord(boxes[0], True, WBC_TYPE_TO_CLASS[kinds[0]])
                    classifier.append(FieldRecord(key, path, width, height, image_id, split, (cell,)))
    return detector, classifier


def _parse_overrides(items: list[str]) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            overrides[key] = json.loads(value)
        except ValueError:
            overrides[key] = value
    return overrides


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--stages", default="detector,classifier", help="comma list of detector,classifier")
    parser.add_argument("--epochs", type=int, default=None, help="detector epochs (default: the profile's)")
    parser.add_argument("--classifier-epochs", type=int, default=None)
    parser.add_argument("--time-limit-min", type=float, default=None, help="training time limit per stage")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--device", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--override", action="append", default=[], help="KEY=VALUE training override (detector)")
    parser.add_argument("--classifier-override", action="append", default=[], help="KEY=VALUE (classifier)")
    parser.add_argument("--out", type=Path, default=None, help="keep checkpoints here (default: a temp folder)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON line")
    args = parser.parse_args(argv)

    from training.core.config import TrainConfig
    from training.core.stage_run import train_stage

    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    detector_fields, classifier_fields = load_bccd(args.root)
    figures: dict[str, Any] = {"profile": args.profile, "load_avg_start": _load(), "cpu_count": os.cpu_count()}
    overrides = _parse_overrides(args.override)
    classifier_overrides = _parse_overrides(args.classifier_override)
    common: dict[str, Any] = {}
    if args.time_limit_min:
        common["time_limit_s"] = args.time_limit_min * 60
    if args.threads:
        common["num_threads"] = args.threads

    def progress(p: Any) -> None:
        if "done" in p.message:
            print(f"[{time.strftime('%H:%M:%S')} load {_load()}] {p.message}", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="bccd-training-") as temp:
        out = args.out or Path(temp)
        if "detector" in stages:
            started = time.monotonic()
            config = TrainConfig("detector", args.profile, args.epochs, args.seed, {**common, **overrides}, args.device)
            result = train_stage(config, detector_fields, out / "detector", on_progress=progress)
            figures.update(
                ap50=result.metrics.get("ap50"),
                ap50_95=result.metrics.get("ap50_95"),
                val_images=result.metrics.get("num_images"),
                val_boxes=result.metrics.get("num_boxes"),
                detector_arch=result.architecture,
                detector_epochs=len(result.history),
                detector_best_epoch=result.best_epochs[0],
                detector_train_min=round((time.monotonic() - started) / 60, 2),
                detector_ap50_by_epoch=[row.get("val_metric") for row in result.history],
                detector_epoch_train_s=[row.get("seconds") for row in result.history],
            )
        if "classifier" in stages:
            started = time.monotonic()
            config = TrainConfig(
                "classifier",
                args.profile,
                args.classifier_epochs,
                args.seed,
                {**common, **classifier_overrides},
                args.device,
            )
            result = train_stage(config, classifier_fields, out / "classifier", on_progress=progress)
            per_class = result.metrics.get("per_class") or {}
            figures.update(
                classifier_accuracy=result.metrics.get("accuracy"),
                classifier_macro_f1=result.metrics.get("macro_f1"),
                classifier_val_cells=sum(int(v.get("support") or 0) for v in per_class.values()),
                classifier_train_cells=sum(1 for f in classifier_fields if f.split == "train"),
                classifier_per_class_f1={v["name"]: v["f1"] for v in per_class.values()},
                classifier_arch=result.architecture,
                classifier_best_epochs=result.best_epochs,
                classifier_train_min=round((time.monotonic() - started) / 60, 2),
            )
    figures["load_avg_end"] = _load()
    if args.json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
