"""Export benchmark: seed N annotations into a throwaway database, export them with the real export service.

    python -m benchmarks.export --annotations 1000000 --json
    python -m benchmarks.export --format yolo|cvat|labelstudio --annotations 1000000 --json

By default everything lives in a temporary folder (SQLite database, media, scratch) that is deleted at the end, so
the user's data is never touched. `--database-url URL` benchmarks an existing, migrated database instead (e.g.
PostgreSQL): the benchmark's rows get their own patient, case and smear and are deleted afterwards.

Seeding uses bulk inserts: fields of 200 cells each that share one small stored image (1,000,000 annotations =
5,000 fields), as imported truth (the default export source).

Figures, each from a fresh child process that does nothing but export (seeding never distorts them):
`seconds` is the wall time of the format's writer (`interchange.formats.export_write`: queries, text, deflate, image
copies) in an untraced run;
`peak_mb` is tracemalloc's peak of Python allocations during a second, traced run of the same export;
`rss_peak_mb` is the untraced child's whole peak resident set (getrusage ru_maxrss: interpreter, Django, export)
and `rss_growth_mb` how much of it the export added.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import itertools
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

CELLS_PER_FIELD = 200
FIELD_SIZE = (640, 480)
BATCH = 10_000
INSERT_ROWS = 1000


def setup_django(var_dir: str, database_url: str | None) -> None:
    os.environ.update(
        {
            "DJANGO_ENV": "test",
            "DJANGO_DEBUG": "false",  # DEBUG keeps every query in memory
            "AICELL_VAR_DIR": var_dir,
            "MEDIA_ROOT": os.path.join(var_dir, "media"),
            "AICELL_TMP_DIR": os.path.join(var_dir, "tmp"),
            "DATABASE_URL": database_url or f"sqlite:///{os.path.join(var_dir, 'bench.sqlite3')}",
            "DJANGO_SETTINGS_MODULE": "aicell.settings",
        }
    )
    import django

    django.setup()


def _image() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", FIELD_SIZE, (220, 190, 200)).save(buffer, format="JPEG", quality=80)
    return buffer.getvalue()


def _cell_rows(annotation_set_ids: list[int], now: datetime) -> Iterator[tuple[Any, ...]]:
    for set_id in annotation_set_ids:
        for k in range(CELLS_PER_FIELD):
            x, y = float((k % 20) * 31), float((k // 20) * 45)
            yield (set_id, x, y, 28.0, 40.0, k % 17 != 0, k % 21, "{}", "", now, now)


def _insert_cells(annotation_set_ids: list[int]) -> None:
    """Multi-row INSERTs: building a million model instances for bulk_create would dominate the seeding time."""
    from django.db import connection, transaction
    from django.utils import timezone

    columns = "annotation_set_id, x, y, width, height, countable, cell_class_id, scores, review_outcome"
    placeholders = "(" + ", ".join(["%s"] * 11) + ")"
    rows = _cell_rows(annotation_set_ids, timezone.now())
    with transaction.atomic(), connection.cursor() as cursor:
        while batch := list(itertools.islice(rows, INSERT_ROWS)):
            cursor.execute(
                f"INSERT INTO annotations_cell ({columns}, created_at, updated_at) VALUES "
                + ", ".join([placeholders] * len(batch)),
                [value for row in batch for value in row],
            )


def _bulk(model: Any, objects: Iterator[Any]) -> None:
    while batch := list(itertools.islice(objects, BATCH)):
        model.objects.bulk_create(batch)


def seed(annotations: int) -> str:
    """Seed about `annotations` cells (whole fields of CELLS_PER_FIELD); returns the benchmark case code."""
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from annotations.models import (
        AnnotationKind,
        AnnotationSet,
        AnnotationStatus,
        Case,
        Field,
        FieldStatus,
        Patient,
        Smear,
    )

    tag = uuid.uuid4().hex[:12]
    patient = Patient.objects.create(code=f"BENCH-P-{tag}")
    case = Case.objects.create(patient=patient, code=f"BENCH-C-{tag}")
    smear = Smear.objects.create(case=case, code="S1")
    data = _image()
    image_name = default_storage.save(f"bench/{tag}.jpg", ContentFile(data))
    fields = -(-annotations // CELLS_PER_FIELD)
    _bulk(
        Field,
        (
            Field(
                smear=smear,
                image=image_name,
                thumbnail=image_name,
                width=FIELD_SIZE[0],
                height=FIELD_SIZE[1],
                sha256=hashlib.sha256(f"{tag}-{i}".encode()).hexdigest(),
                format="JPEG",
                byte_size=len(data),
                status=FieldStatus.CONSENSUS,
            )
            for i in range(fields)
        ),
    )
    field_ids = list(Field.objects.filter(smear=smear).values_list("id", flat=True))
    _bulk(
        AnnotationSet,
        (
            AnnotationSet(field_id=f, kind=AnnotationKind.IMPORTED, status=AnnotationStatus.LOCKED, source_name="bench")
            for f in field_ids
        ),
    )
    _insert_cells(list(AnnotationSet.objects.filter(field__smear=smear).values_list("id", flat=True)))
    return case.code


def remove(case_code: str) -> None:
    """Delete the benchmark's rows (raw deletes: the ORM would load a million cells to cascade)."""
    from django.db import connection, transaction

    from annotations.models import Case

    case = Case.objects.get(code=case_code)
    smear_ids = list(case.smears.values_list("id", flat=True))
    fields = "SELECT id FROM annotations_field WHERE smear_id IN ({})".format(",".join(["%s"] * len(smear_ids)))
    sets = f"SELECT id FROM annotations_annotationset WHERE field_id IN ({fields})"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM annotations_cell WHERE annotation_set_id IN ({sets})", smear_ids)
        cursor.execute(f"DELETE FROM annotations_annotationset WHERE id IN ({sets})", smear_ids)
        cursor.execute(f"DELETE FROM annotations_field WHERE id IN ({fields})", smear_ids)
        case.smears.all().delete()
        patient = case.patient
        case.delete()
        patient.delete()


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def measure_export(case_code: str, out_path: str, *, trace: bool, export_format: str = "coco") -> dict[str, Any]:
    """The child's work: export the benchmark case; time and resident memory, or (trace) tracemalloc's peak."""
    import gc
    import tracemalloc

    from annotations.interchange.export_selection import ExportRequest, export_plan
    from annotations.interchange.formats import export_write

    plan = export_plan(ExportRequest(cases=(case_code,)))
    gc.collect()
    if trace:
        tracemalloc.start()
    before = max_rss_mb()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    with open(out_path, "wb") as out:
        summary = export_write(export_format, plan, out)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu_s = after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime
    if trace:
        return {"python_peak_mb": round(tracemalloc.get_traced_memory()[1] / 2**20, 1)}
    return {
        "seconds": round(seconds, 2),
        "cpu_s": round(cpu_s, 2),
        "rss_peak_mb": round(max_rss_mb(), 1),
        "rss_growth_mb": round(max_rss_mb() - before, 1),
        "exported_annotations": summary.to_dict()["annotations"],
        "zip_mb": round(os.path.getsize(out_path) / 1e6, 1),
    }


def _run_child(
    case_code: str, var_dir: str, database_url: str | None, *, trace: bool, export_format: str = "coco"
) -> dict[str, Any]:
    command = [sys.executable, "-m", "benchmarks.export", "--child-export", case_code, "--var-dir", var_dir]
    command += ["--format", export_format]
    command += ["--database-url", database_url] if database_url else []
    command += ["--trace"] if trace else []
    child = subprocess.run(command, capture_output=True, text=True, check=False)
    if child.returncode != 0:
        raise RuntimeError(f"the export child failed:\n{child.stderr}")
    return dict(json.loads(child.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--annotations", type=int, default=100_000)
    parser.add_argument("--format", default="coco", help="coco, yolo, cvat or labelstudio")
    parser.add_argument("--no-trace", action="store_true", help="skip the traced rerun (tracemalloc's peak)")
    parser.add_argument("--json", action="store_true", help="print one JSON object only")
    parser.add_argument("--database-url", help="an existing, migrated database to use instead of a throwaway one")
    parser.add_argument("--child-export", metavar="CASE", help=argparse.SUPPRESS)
    parser.add_argument("--var-dir", help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_export:
        setup_django(args.var_dir, args.database_url)
        out_path = os.path.join(args.var_dir, "export.zip")
        print(json.dumps(measure_export(args.child_export, out_path, trace=args.trace, export_format=args.format)))
        return 0

    var_dir = tempfile.mkdtemp(prefix="aicell-bench-export-")
    case_code = None
    try:
        setup_django(var_dir, args.database_url)
        from django.core.management import call_command
        from django.db import connection

        if args.database_url is None:
            call_command("migrate", verbosity=0)
        start = time.perf_counter()
        case_code = seed(args.annotations)
        seed_seconds = time.perf_counter() - start
        measured = _run_child(case_code, var_dir, args.database_url, trace=False, export_format=args.format)
        measured["python_peak_mb"] = None
        if not args.no_trace:
            measured |= _run_child(case_code, var_dir, args.database_url, trace=True, export_format=args.format)
    finally:
        if case_code is not None and args.database_url:
            remove(case_code)
        shutil.rmtree(var_dir, ignore_errors=True)
    report = {
        "format": args.format,
        "annotations": measured["exported_annotations"],
        "seconds": measured["seconds"],
        "cpu_s": measured["cpu_s"],  # the export's own CPU time: what wall time would be on an idle core
        "load_average": round(os.getloadavg()[0], 1),
        "peak_mb": measured["python_peak_mb"],
        "peak_mb_measure": "tracemalloc peak of the export (traced rerun in a fresh child; seconds are untraced)",
        "rss_peak_mb": measured["rss_peak_mb"],
        "rss_growth_mb": measured["rss_growth_mb"],
        "annotations_per_s": round(measured["exported_annotations"] / max(measured["seconds"], 1e-9)),
        "zip_mb": measured["zip_mb"],
        "database": connection.vendor,
        "seed_seconds": round(seed_seconds, 1),
    }
    if args.json:
        print(json.dumps(report))
    else:
        for key, value in report.items():
            print(f"{key:>18}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
