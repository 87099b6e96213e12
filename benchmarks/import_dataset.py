"""Dataset import benchmark: a generated COCO dataset imported with the real import service, then exported again,
on both database engines.

    python -m benchmarks.import_dataset --fields 1000 --boxes-per-field 150 --json
    python -m benchmarks.import_dataset --fields 700 --boxes-per-field 150 --format yolo --json   # SQLite only

With `--format yolo|cvat|labelstudio` the imported case is exported in that format, and the export imported again
into a fresh SQLite database (`reimport_*` figures: the same as `import_*`, for that format's reader).

The dataset (a COCO folder: `annotations/instances_train.json`, distinct JPEG fields under `images/train/`, boxes
labelled with this platform's category names) is written once into a temporary folder. Each engine gets a fresh,
dedicated database: a temporary SQLite file (the embedded default), and with DATABASE_URL pointing at PostgreSQL
the database `<name>_import` on the same server, created, migrated and dropped at the end (`--database-url` names
another dedicated, empty PostgreSQL database instead; it is dropped at the end too). The user's data is never
touched.

Figures per engine, each step in a fresh child process that does nothing else (migrating never distorts them):
`import_s` is the wall time of `dataset_import` (read, decode and check every image and box, store files and
thumbnails, write everything in one transaction) and `import_boxes_per_s` the boxes it stored per second;
`import_rss_peak_mb` is the child's whole peak resident set (getrusage ru_maxrss: interpreter, Django, import),
`import_cpu_s` the CPU time it used (all its threads; a PostgreSQL server's own work is not in it), which says more
than the wall time on busy shared cores.
`export_*` are the same for `coco_export_write` of the imported case (JSON and image copies). `load_average` says how
busy the machine was: on shared cores the figures are a floor.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.export import max_rss_mb, setup_django
from benchmarks.load import load_average, postgres_create, postgres_drop, target_database

IMPORT_GOAL_BOXES_PER_S = 15_000
EXPORT_GOAL_BOXES_PER_S = 19_000
RSS_GOAL_MB = 500
CASE_CODE = "BENCH-IMPORT"


def _field_image(index: int, size: tuple[int, int], rng: random.Random) -> bytes:
    """A distinct smear-like field: a tinted background with round blobs (cells) where the boxes are."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", size, (226 - index % 7, 200 + index % 11, 205))
    draw = ImageDraw.Draw(image)
    for _ in range(40):
        x, y, radius = rng.uniform(0, size[0]), rng.uniform(0, size[1]), rng.uniform(6, 22)
        colour = (rng.randrange(90, 180), rng.randrange(40, 120), rng.randrange(120, 200))
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=colour)
    draw.text((4, 4), f"{index}", fill=(0, 0, 0))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=88)
    return buffer.getvalue()


def write_dataset(root: Path, *, fields: int, boxes_per_field: int, size: tuple[int, int]) -> int:
    """The COCO folder the benchmark imports; returns the number of boxes."""
    from annotations.interchange.coco_format import CATEGORIES

    (root / "annotations").mkdir(parents=True)
    (root / "images" / "train").mkdir(parents=True)
    rng = random.Random(20)
    columns = max(1, int((boxes_per_field * size[0] / size[1]) ** 0.5))
    rows = -(-boxes_per_field // columns)
    step_x, step_y = size[0] / columns, size[1] / rows
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for index in range(fields):
        name = f"field_{index:06d}.jpg"
        (root / "images" / "train" / name).write_bytes(_field_image(index, size, rng))
        images.append({"id": index + 1, "file_name": name, "width": size[0], "height": size[1]})
        for k in range(boxes_per_field):
            width, height = step_x * rng.uniform(0.5, 0.95), step_y * rng.uniform(0.5, 0.95)
            x = (k % columns) * step_x + rng.uniform(0, step_x - width)
            y = (k // columns) * step_y + rng.uniform(0, step_y - height)
            category = CATEGORIES[(index + k) % len(CATEGORIES)]["id"]
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": index + 1,
                    "category_id": category,
                    "bbox": [round(x, 2), round(y, 2), round(width, 2), round(height, 2)],
                    "area": round(width * height, 2),
                    "iscrowd": 0,
                    "segmentation": [],
                }
            )
    document = {"images": images, "annotations": annotations, "categories": list(CATEGORIES)}
    (root / "annotations" / "instances_train.json").write_text(json.dumps(document))
    return len(annotations)


# --- the children ------------------------------------------------------------------------------------------------


def cpu_seconds() -> float:
    """CPU time of this process, all threads (the database server's, on PostgreSQL, is not in it)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child_migrate(_: str) -> dict[str, Any]:
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return {}


def child_import(argument: str) -> dict[str, Any]:
    """Import `[format|]path` (a folder, or a zip) into a new case."""
    from annotations.interchange.archive import DirectoryDataset, ZipDataset
    from annotations.interchange.dataset_import import ImportOptions, dataset_import
    from annotations.interchange.jobs import archive_limits
    from annotations.models import Case, Patient

    import_format, _, dataset = argument.rpartition("|")
    patient = Patient.objects.create(code="BENCH-IMPORT-P")
    case = Case.objects.create(patient=patient, code=CASE_CODE)
    files: Any
    if dataset.endswith(".zip"):
        files = ZipDataset(Path(dataset).open("rb"), archive_limits())  # noqa: SIM115 (open for the whole child)
    else:
        files = DirectoryDataset(Path(dataset))
    before = max_rss_mb()
    cpu = cpu_seconds()
    start = time.perf_counter()
    report = dataset_import(files, ImportOptions(format=import_format or "coco", case=case), actor=None)
    seconds = time.perf_counter() - start
    return {
        "fields": report.fields,
        "boxes": report.cells,
        "import_s": round(seconds, 2),
        "import_cpu_s": round(cpu_seconds() - cpu, 2),
        "import_rss_peak_mb": round(max_rss_mb(), 1),
        "import_rss_growth_mb": round(max_rss_mb() - before, 1),
    }


def child_export(argument: str) -> dict[str, Any]:
    """Export the imported case as `[format|]out_path`."""
    from annotations.interchange.export_selection import ExportRequest, export_plan
    from annotations.interchange.formats import export_write

    export_format, _, out_path = argument.rpartition("|")
    plan = export_plan(ExportRequest(cases=(CASE_CODE,), split_all="train"))
    cpu = cpu_seconds()
    start = time.perf_counter()
    with open(out_path, "wb") as out:
        summary = export_write(export_format or "coco", plan, out).to_dict()
    seconds = time.perf_counter() - start
    return {
        "exported_boxes": summary["annotations"],
        "export_s": round(seconds, 2),
        "export_cpu_s": round(cpu_seconds() - cpu, 2),
        "export_rss_peak_mb": round(max_rss_mb(), 1),
    }


CHILDREN: dict[str, Callable[[str], dict[str, Any]]] = {
    "migrate": child_migrate,
    "import": child_import,
    "export": child_export,
}


def _run_child(step: str, argument: str, var_dir: Path, database_url: str) -> dict[str, Any]:
    command = [sys.executable, "-m", "benchmarks.import_dataset", "--child", step, argument]
    command += ["--var-dir", str(var_dir), "--database-url", database_url]
    child = subprocess.run(command, capture_output=True, text=True, check=False)
    if child.returncode != 0:
        raise RuntimeError(f"the {step} child failed:\n{child.stderr[-4000:]}")
    return dict(json.loads(child.stdout.strip().splitlines()[-1]))


def measure_engine(
    dataset: Path,
    database_url: str,
    workdir: Path,
    *,
    is_postgres: bool,
    fresh: bool = False,
    export_format: str = "coco",
) -> dict[str, Any]:
    """Migrate, import, export; a PostgreSQL database is created (dropped first when `fresh`) and dropped after."""
    var_dir = workdir / ("var-postgresql" if is_postgres else "var-sqlite")
    if is_postgres:
        if fresh:
            postgres_drop(database_url)  # the benchmark's own database, left by an interrupted run
        postgres_create(database_url)
    try:
        _run_child("migrate", "-", var_dir, database_url)
        load_before = load_average()
        figures = _run_child("import", str(dataset), var_dir, database_url)
        figures |= _run_child("export", f"{export_format}|{var_dir / 'export.zip'}", var_dir, database_url)
        if export_format != "coco" and not is_postgres:
            again = workdir / "var-reimport"
            url = f"sqlite:///{workdir / 'reimport.sqlite3'}"
            _run_child("migrate", "-", again, url)
            reimported = _run_child("import", f"{export_format}|{var_dir / 'export.zip'}", again, url)
            figures |= {f"reimport_{key}": value for key, value in reimported.items()}
            figures["reimport_boxes_per_s"] = round(reimported["boxes"] / max(reimported["import_s"], 1e-9))
    finally:
        if is_postgres:
            postgres_drop(database_url)
    figures["import_boxes_per_s"] = round(figures["boxes"] / max(figures["import_s"], 1e-9))
    figures["export_boxes_per_s"] = round(figures["exported_boxes"] / max(figures["export_s"], 1e-9))
    figures["load_average"] = max(load_before, load_average())
    return figures


def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="aicell-bench-import-"))
    try:
        size = tuple(int(v) for v in args.image_size.lower().split("x"))
        dataset = workdir / "dataset"
        start = time.perf_counter()
        boxes = write_dataset(
            dataset, fields=args.fields, boxes_per_field=args.boxes_per_field, size=(size[0], size[1])
        )
        report: dict[str, Any] = {
            "format": args.format,
            "fields": args.fields,
            "boxes": boxes,
            "image_size": args.image_size,
            "dataset_s": round(time.perf_counter() - start, 1),
            "cpu_count": os.cpu_count(),
        }
        engines = [("sqlite", f"sqlite:///{workdir / 'import.sqlite3'}", False)]
        postgres_url, is_postgres = target_database(args.database_url, workdir, suffix="import")
        if is_postgres:
            engines.append(("postgresql", postgres_url, True))
        for name, url, postgres in engines:
            report[name] = measure_engine(
                dataset, url, workdir, is_postgres=postgres, fresh=not args.database_url, export_format=args.format
            )
        report["goal"] = (
            f"PostgreSQL import >= {IMPORT_GOAL_BOXES_PER_S:,} boxes/s with peak RSS < {RSS_GOAL_MB} MiB; "
            f"export >= {EXPORT_GOAL_BOXES_PER_S:,} boxes/s"
        )
        if "postgresql" in report:
            postgresql = report["postgresql"]
            report["goal_met"] = (
                postgresql["import_boxes_per_s"] >= IMPORT_GOAL_BOXES_PER_S
                and postgresql["import_rss_peak_mb"] < RSS_GOAL_MB
                and postgresql["export_boxes_per_s"] >= EXPORT_GOAL_BOXES_PER_S
            )
        return report
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fields", type=int, default=200)
    parser.add_argument("--format", default="coco", help="export (and import again) in this format")
    parser.add_argument("--boxes-per-field", type=int, default=150)
    parser.add_argument("--image-size", default="640x480", help="WIDTHxHEIGHT of the generated fields")
    parser.add_argument("--database-url", help="a dedicated PostgreSQL database instead of <DATABASE_URL>_import")
    parser.add_argument("--json", action="store_true", help="print one JSON object only")
    parser.add_argument("--child", nargs=2, metavar=("STEP", "ARGUMENT"), help=argparse.SUPPRESS)
    parser.add_argument("--var-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        step, argument = args.child
        args.var_dir.mkdir(parents=True, exist_ok=True)
        setup_django(str(args.var_dir), args.database_url)
        print(json.dumps(CHILDREN[step](argument)))
        return 0
    report = run(args)
    if args.json:
        print(json.dumps(report))
    else:
        for key, value in report.items():
            print(f"{key:>12}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
