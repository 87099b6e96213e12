"""End-to-end pre-labelling throughput: stored JPEG fields to stored prediction sets, through a real worker.

    python -m benchmarks.prelabel_path --fields 512 --cells-per-field 20 --model null --json
    python -m benchmarks.prelabel_path --fields 128 --cells-per-field 20 --model cpu --json
    python -m benchmarks.prelabel_path --model paper --database-url postgres://postgres@127.0.0.1:5432/x --json

What runs: a fresh database (a temporary SQLite file, or with --database-url a new database created on that
server and dropped at the end: never the one the URL names), a temporary media folder with one JPEG per field
(the BCCD fields, 640x480, each stored as its own file), randomly initialised checkpoints of the chosen model kind
registered as the active versions, and a real Celery worker process (`celery -A aicell worker -Q gpu`, as
docker-compose runs it) on the embedded file-system broker (or --broker-url redis://...). A warm-up job loads the
pipeline in the worker; then one pre-label job over --fields fields is timed from its creation to its end.

Models: `null` is the registered null kind (profile `null`: fixed boxes and probabilities, no computation), so the
figure is the platform alone; `cpu` and `paper` are the shipped profiles with random-init models whose detector
keeps its top --cells-per-field boxes (score threshold 0). For those, `bare_forward_ms_per_field` is the bare
batched forward passes of the same models on the same fields (benchmarks/pipeline.py's measure), run in this
process after the job, and `model_overhead_ratio` is the end-to-end time per field over it.

Figures: fields_per_s (end to end); per_field_ms from the worker's own timings (each task returns them: read =
storage reads, decode, model = pipeline run, write = prediction sets, settle = items and job); queue_ms_per_field
is the rest (broker, task start); queries_per_chunk from the worker's SQL count per task.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
IMAGE_FOLDERS = (ROOT.parent / "shared" / "data" / "bccd" / "JPEGImages", ROOT / "demo" / "bccd" / "JPEGImages")
MODELS = ("null", "cpu", "paper")
STAGE_TIMINGS = ("read_s", "decode_s", "model_s", "write_s", "settle_s")


def _environment(var_dir: Path, database_url: str, broker_url: str, chunk: int | None) -> dict[str, str]:
    env = {
        "DJANGO_ENV": "development",
        "DJANGO_DEBUG": "false",
        "DJANGO_SETTINGS_MODULE": "aicell.settings",
        "AICELL_VAR_DIR": str(var_dir),
        "MEDIA_ROOT": str(var_dir / "media"),
        "AICELL_TMP_DIR": str(var_dir / "tmp"),
        "AICELL_MODEL_DIR": str(var_dir / "models"),
        "AICELL_DATASET_DIR": str(var_dir / "datasets"),
        "AICELL_BROKER_DIR": str(var_dir / "broker"),
        "AICELL_PROFILES_FILE": str(var_dir / "profiles.yaml"),
        "AICELL_AUTO_PRELABEL": "false",
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker_url,
        "CELERY_RESULT_BACKEND": "django-db",
    }
    if chunk is not None:
        env["AICELL_PRELABEL_CHUNK"] = str(chunk)
    return env


def _create_database(server_url: str) -> tuple[str, str]:
    """A new, empty database on the server of `server_url`: (its URL, its name)."""
    name = f"aicell_prelabel_bench_{uuid.uuid4().hex[:8]}"
    _server_command(server_url, f'CREATE DATABASE "{name}"')
    parts = urlsplit(server_url)
    return urlunsplit(parts._replace(path=f"/{name}")), name


def _drop_database(server_url: str, name: str) -> None:
    _server_command(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _server_command(server_url: str, sql: str) -> None:
    import psycopg2

    conn = psycopg2.connect(server_url.replace("postgres://", "postgresql://", 1))
    try:
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute(sql)
    finally:
        conn.close()


def write_profiles(path: Path, model: str, cells: int) -> None:
    """The shipped profiles, the chosen one keeping its top `cells` boxes per field whatever their score."""
    import yaml

    from inference.core.profiles import PROFILES_PATH

    profiles = yaml.safe_load(PROFILES_PATH.read_text())
    detector = profiles[model]["detector"]
    detector["max_detections"] = cells
    if model == "null":
        detector["kwargs"] = {**(detector.get("kwargs") or {}), "cells": cells}
    else:
        detector["score_threshold"] = 0.0
    path.write_text(yaml.safe_dump(profiles))


def write_checkpoints(model_dir: Path, profiles_file: Path, model: str) -> dict[str, list[str]]:
    """Random-init checkpoints of every stage model of the profile, paths relative to `model_dir`."""
    import torch

    from annotations.taxonomy import CLASS_NAMES
    from benchmarks.pipeline import favour_cell_label
    from inference.core.checkpoints import CheckpointMeta, build_model, save_checkpoint
    from inference.core.profiles import load_profiles
    from inference.core.stages import COUNTABILITY_CLASSES, DETECTOR_CLASSES, CheckpointStage

    torch.manual_seed(0)
    profile = load_profiles(profiles_file)[model]
    norm: dict[str, Any] = {"mean": profile.normalisation.mean, "std": profile.normalisation.std, "profile": model}
    metas = {
        "detector": [
            CheckpointMeta(
                stage=CheckpointStage.DETECTOR.value,
                arch=profile.detector.arch,
                classes=DETECTOR_CLASSES,
                model_kwargs=profile.detector.model_kwargs(),
                **norm,
            )
        ],
        "countability": [
            CheckpointMeta(
                stage=CheckpointStage.COUNTABILITY.value,
                arch=profile.countability.arch,
                classes=COUNTABILITY_CLASSES,
                input_size=profile.countability.input_size,
                **norm,
            )
        ],
        "classifier": [
            CheckpointMeta(
                stage=CheckpointStage.CLASSIFIER_MEMBER.value,
                arch=arch,
                classes=CLASS_NAMES,
                input_size=profile.classifier.input_size,
                **norm,
            )
            for arch in profile.classifier.archs
        ],
    }
    paths: dict[str, list[str]] = {}
    for stage, stage_metas in metas.items():
        for index, meta in enumerate(stage_metas):
            relative = f"{stage}/{meta.arch}-{index}.pt"
            network = build_model(meta)
            if stage == "detector":
                favour_cell_label(network)
            save_checkpoint(model_dir / relative, network, meta)
            paths.setdefault(stage, []).append(relative)
    return paths


def register_versions(model: str, paths: dict[str, list[str]]) -> None:
    from training.core.stages import STAGES
    from training.models import ModelStatus, ModelVersion

    for stage in STAGES:
        ModelVersion.objects.create(
            stage=stage,
            profile=model,
            architecture="+".join(Path(p).stem for p in paths[stage]),
            checkpoints=paths[stage],
            status=ModelStatus.ACTIVE,
        )


def source_images(folder: Path | None) -> list[Path]:
    folders = [folder] if folder else [f for f in IMAGE_FOLDERS if f.is_dir()]
    for candidate in folders:
        images = sorted(p for p in candidate.iterdir() if p.suffix.lower() in {".jpg", ".jpeg"})
        if images:
            return images
    raise SystemExit(f"no JPEG fields found in {folders}")


def store_fields(count: int, images: Sequence[Path], media_root: Path, prefix: str) -> list[int]:
    """`count` fields, each with its own stored JPEG file (copies of `images`, in turn), status uploaded."""
    import hashlib

    from PIL import Image

    from annotations.models import Case, Field, Patient, Smear

    folder = media_root / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    patient, _ = Patient.objects.get_or_create(code="BENCH-P1")
    case, _ = Case.objects.get_or_create(patient=patient, code="BENCH-C1")
    smear, _ = Smear.objects.get_or_create(case=case, code="BENCH-S1")
    rows = []
    for index in range(count):
        source = images[index % len(images)]
        data = source.read_bytes() + f"{prefix}{index}".encode()  # distinct bytes: the sha256 is unique
        name = f"bench/{prefix}-{index:05d}.jpg"
        (media_root / name).write_bytes(data)
        with Image.open(source) as image:
            width, height = image.size
        rows.append(
            Field(
                smear=smear,
                image=name,
                thumbnail=name,
                width=width,
                height=height,
                sha256=hashlib.sha256(data).hexdigest(),
                format="JPEG",
                byte_size=len(data),
                original_name=source.name,
            )
        )
    return [field.pk for field in Field.objects.bulk_create(rows, batch_size=200)]


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "celery", "-A", "aicell", "worker", "-Q", "gpu", "-c", "1", "-l", "warning"]
    argv += ["-n", f"bench-{uuid.uuid4().hex[:6]}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat"]
    with open(log, "wb") as handle:
        return subprocess.Popen(argv, cwd=ROOT, env={**os.environ, **env}, stdout=handle, stderr=subprocess.STDOUT)


def run_job(field_ids: list[int], timeout: float) -> Any:
    from annotations.models import Field
    from inference.models import PrelabelJob, PrelabelTrigger
    from inference.services import prelabel_job_create

    job = prelabel_job_create(fields=Field.objects.filter(pk__in=field_ids), trigger=PrelabelTrigger.MANUAL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = PrelabelJob.objects.get(pk=job.pk)
        if job.is_finished:
            return job
        time.sleep(0.25)
    raise SystemExit(f"pre-label job {job.pk} not finished after {timeout:.0f}s ({job.status}: {job.message})")


def task_timings(job_id: int) -> list[dict[str, float]]:
    """The timings every task of the job returned (the result backend keeps them)."""
    from django_celery_results.models import TaskResult

    found = []
    for row in TaskResult.objects.filter(task_name="inference.prelabel_fields", status="SUCCESS"):
        args = json.loads(row.task_args or "[]")
        if isinstance(args, str):  # celery stores the repr of the args tuple
            import ast

            args = ast.literal_eval(args)
        if args and int(args[0]) == job_id:
            result = json.loads(row.result or "{}")
            if "timings" in result:
                found.append(result["timings"])
    return found


def bare_forward_ms_per_field(model: str, profiles_file: Path, model_dir: Path, images: Sequence[Path], n: int) -> Any:
    """The bare batched forward passes of the same models on `n` of the fields (median of 3), ms per field."""
    import statistics

    import numpy as np
    from PIL import Image

    from benchmarks.pipeline import bare_inputs, time_bare_forwards
    from inference.core.pipeline import Pipeline
    from inference.core.profiles import load_profiles

    profile = load_profiles(profiles_file)[model]
    members = sorted((model_dir / "classifier").glob("*.pt"))
    pipeline = Pipeline.from_checkpoints(
        next((model_dir / "detector").glob("*.pt")), next((model_dir / "countability").glob("*.pt")), members, profile
    )
    fields = [np.asarray(Image.open(images[i % len(images)]).convert("RGB")) for i in range(n)]
    tensors, crops = bare_inputs(pipeline, fields)
    time_bare_forwards(pipeline, tensors, crops)
    return 1000 * statistics.median(time_bare_forwards(pipeline, tensors, crops) for _ in range(3)) / n


def benchmark(args: argparse.Namespace, var_dir: Path, database_url: str) -> dict[str, Any]:
    env = _environment(var_dir, database_url, args.broker_url, args.chunk)
    os.environ.update(env)
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    from annotations.models import AnnotationKind, AnnotationSet, Cell

    call_command("migrate", verbosity=0)
    profiles_file = Path(env["AICELL_PROFILES_FILE"])
    write_profiles(profiles_file, args.model, args.cells_per_field)
    register_versions(args.model, write_checkpoints(Path(env["AICELL_MODEL_DIR"]), profiles_file, args.model))
    images = source_images(args.images)
    media_root = Path(settings.MEDIA_ROOT)
    warm_ids = store_fields(args.warmup, images, media_root, "warm")
    field_ids = store_fields(args.fields, images, media_root, "field")
    connection.close()  # SQLite: leave the file to the worker while it runs
    worker = start_worker(env, var_dir / "worker.log")
    try:
        warm = run_job(warm_ids, args.timeout)
        if warm.status != "succeeded":
            raise SystemExit(f"warm-up job {warm.status}: {warm.error}\n{(var_dir / 'worker.log').read_text()[-3000:]}")
        load_before = os.getloadavg()[0]
        job = run_job(field_ids, args.timeout)
        load_after = os.getloadavg()[0]
    finally:
        worker.terminate()
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
    wall_s = (job.finished_at - job.created_at).total_seconds()
    chunks = task_timings(job.pk)
    sets = AnnotationSet.objects.filter(field_id__in=field_ids, kind=AnnotationKind.PREDICTION)
    stored_cells = Cell.objects.filter(annotation_set__in=sets).count()
    worker_s = sum(chunk["total_s"] for chunk in chunks)
    per_field = {name.removesuffix("_s"): 1000 * sum(c[name] for c in chunks) / args.fields for name in STAGE_TIMINGS}
    per_field["worker_total"] = 1000 * worker_s / args.fields
    result: dict[str, Any] = {
        "model": args.model,
        "database": connection.vendor,
        "broker": env["CELERY_BROKER_URL"].split(":", 1)[0],
        "fields": args.fields,
        "cells_per_field": args.cells_per_field,
        "job_status": job.status,
        "done": job.done_count,
        "failed": job.failed_count,
        "prediction_sets": sets.count(),
        "cells_stored": stored_cells,
        "chunks": len(chunks),
        "chunk_fields": sorted({int(c["fields"]) for c in chunks}),
        "wall_s": round(wall_s, 3),
        "fields_per_s": round(args.fields / wall_s, 2),
        "ms_per_field": round(1000 * wall_s / args.fields, 3),
        "per_field_ms": {k: round(v, 3) for k, v in per_field.items()},
        "queue_ms_per_field": round(1000 * (wall_s - worker_s) / args.fields, 3),
        "queries_per_chunk": sorted({int(c["queries"]) for c in chunks}),
        "load_average_1min": [round(load_before, 2), round(load_after, 2)],
    }
    if args.model != "null" and not args.no_bare:
        bare = bare_forward_ms_per_field(
            args.model, profiles_file, Path(env["AICELL_MODEL_DIR"]), images, min(args.fields, 64)
        )
        result["bare_forward_ms_per_field"] = round(bare, 3)
        result["model_overhead_ratio"] = round(1000 * wall_s / args.fields / bare, 3)
    return result


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fields", type=int, default=512)
    parser.add_argument("--cells-per-field", type=int, default=20)
    parser.add_argument("--model", choices=MODELS, default="null")
    parser.add_argument("--chunk", type=int, help="fields per task (AICELL_PRELABEL_CHUNK; default: the platform's)")
    parser.add_argument("--warmup", type=int, default=8, help="fields of the warm-up job that loads the pipeline")
    parser.add_argument("--images", type=Path, help="folder of JPEG fields (default: BCCD)")
    parser.add_argument("--database-url", help="a PostgreSQL server URL; a new database is made there and dropped")
    parser.add_argument("--broker-url", default="filesystem://localhost//", help="default: the embedded broker")
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--no-bare", action="store_true", help="skip the bare forward-pass measure")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    var_dir = Path(tempfile.mkdtemp(prefix="aicell-prelabel-bench-"))
    created: str | None = None
    try:
        if args.database_url:
            database_url, created = _create_database(args.database_url)
        else:
            database_url = f"sqlite:///{var_dir / 'bench.sqlite3'}"
        result = benchmark(args, var_dir, database_url)
    finally:
        if created and args.database_url:
            from django.db import connections

            connections.close_all()
            _drop_database(args.database_url, created)
        if not args.keep:
            shutil.rmtree(var_dir, ignore_errors=True)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>26}: {value}")


if __name__ == "__main__":
    main()
