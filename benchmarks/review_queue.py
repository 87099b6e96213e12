"""Review-queue benchmark: GET the next batch with N queued cells; wall time per request and SQL queries per request.

    python -m benchmarks.review_queue --cells 300000 --requests 30 --json
    python -m benchmarks.review_queue --database-url postgres://postgres@127.0.0.1:5432/aicell --json

Everything lives in a temporary folder (SQLite database, media) deleted at the end; with `--database-url` of a
PostgreSQL server, in a scratch database `<name>_bench_review_queue` beside the named one, dropped at the end (the
statistics are gathered after seeding, as autovacuum would). Seeding: fields of 15 predicted
cells of one active classifier, with a skewed class mix (a rare blast class at 0.5%) and random uncertainty. Each
measured request is `services.review_claims_take` (pool per class by window function, pure selection, claims) for a
reviewer whose claims are released before the next request, so every request really picks a fresh batch; the query
count is taken for batch sizes 5 and 20 (constant: it does not grow with the batch or the queue).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from typing import Any

CELLS_PER_FIELD = 15
INSERT_ROWS = 500


def scratch_database_url(url: str) -> str:
    """The URL of a fresh scratch database next to `url`'s (created here, dropped by `drop_scratch_database`)."""
    import psycopg2

    base, _, name = url.rpartition("/")
    scratch = f"{name}_bench_review_queue"
    connection = psycopg2.connect(url)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{scratch}"')
        cursor.execute(f'CREATE DATABASE "{scratch}"')
    connection.close()
    return f"{base}/{scratch}"


def drop_scratch_database(url: str, scratch_url: str) -> None:
    import psycopg2
    from django.db import connections

    connections.close_all()
    connection = psycopg2.connect(url)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{scratch_url.rpartition("/")[2]}"')
    connection.close()


def setup_django(var_dir: str, database_url: str | None) -> None:
    os.environ.update(
        {
            "DJANGO_ENV": "test",
            "DJANGO_DEBUG": "false",
            "AICELL_VAR_DIR": var_dir,
            "MEDIA_ROOT": os.path.join(var_dir, "media"),
            "AICELL_TMP_DIR": os.path.join(var_dir, "tmp"),
            "DATABASE_URL": database_url or f"sqlite:///{os.path.join(var_dir, 'bench.sqlite3')}",
            "DJANGO_SETTINGS_MODULE": "aicell.settings",
        }
    )
    import django

    django.setup()


def seed(cells: int) -> Any:
    """Seed `cells` predicted cells; returns the reviewer."""
    from django.contrib.auth.models import Group, User
    from django.db import connection, transaction
    from django.utils import timezone

    from aicell.roles import Role
    from annotations.models import AnnotationKind, AnnotationSet, AnnotationStatus, Case, Field, Patient, Smear
    from training.models import ModelVersion

    reviewer = User.objects.create(username="bench-reviewer")
    reviewer.groups.add(Group.objects.get_or_create(name=Role.ANNOTATOR.value)[0])
    model = ModelVersion.objects.create(stage="classifier", profile="cpu", architecture="resnet18", status="active")
    patient = Patient.objects.create(code="BENCH-P")
    smear = Smear.objects.create(case=Case.objects.create(patient=patient, code="BENCH-C"), code="S1")
    n_fields = -(-cells // CELLS_PER_FIELD)
    Field.objects.bulk_create(
        (
            Field(
                smear=smear,
                image="bench/f.jpg",
                thumbnail="bench/f.jpg",
                width=640,
                height=480,
                sha256=hashlib.sha256(str(i).encode()).hexdigest(),
                format="JPEG",
                byte_size=1,
                status="prelabelled",
            )
            for i in range(n_fields)
        ),
        batch_size=5000,
    )
    field_ids = list(Field.objects.values_list("id", flat=True))
    AnnotationSet.objects.bulk_create(
        (
            AnnotationSet(
                field_id=f, kind=AnnotationKind.PREDICTION, model_version=model, status=AnnotationStatus.LOCKED
            )
            for f in field_ids
        ),
        batch_size=5000,
    )
    set_ids = list(AnnotationSet.objects.values_list("id", flat=True))
    rng = random.Random(0)
    common = [12, 5, 4, 9, 10, 16, 3, 2]
    now = timezone.now()

    def rows() -> Any:
        made = 0
        for set_id in set_ids:
            for k in range(CELLS_PER_FIELD):
                if made == cells:
                    return
                made += 1
                cls = 0 if rng.random() < 0.005 else rng.choice(common)
                p = rng.random()
                entropy = rng.random() * (0.2 if cls == 0 else 2.5)  # the blasts are predicted confidently
                scores = json.dumps({"p_countable": p, "uncertainty": {"entropy": entropy}, "probabilities": []})
                yield (set_id, float(k * 40), 10.0, 30.0, 30.0, True, cls, scores, 0.9, 1 - entropy / 3, 0.5,
                       entropy, 0.1, abs(2 * p - 1), "", now, now, rng.random(), model.pk)  # fmt: skip

    columns = (
        "annotation_set_id, x, y, width, height, countable, cell_class_id, scores, detector_score, confidence, "
        "margin, entropy, mutual_information, countability_margin, review_outcome, created_at, updated_at, "
        "review_random, review_version_id"
    )
    placeholders = "(" + ", ".join(["%s"] * 19) + ")"
    generator = rows()
    with transaction.atomic(), connection.cursor() as cursor:
        while batch := list(itertools.islice(generator, INSERT_ROWS)):
            cursor.execute(
                f"INSERT INTO annotations_cell ({columns}) VALUES " + ", ".join([placeholders] * len(batch)),
                [value for row in batch for value in row],
            )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    return reviewer


def measure(reviewer: Any, requests: int, strategy: str) -> dict[str, Any]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from inference import selectors, services

    times = []
    for _ in range(requests):
        services.review_claims_release(reviewer)
        start = time.perf_counter()
        batch = services.review_claims_take(reviewer, selectors.ReviewQueueRequest(strategy=strategy, limit=10))
        times.append((time.perf_counter() - start) * 1000)
        assert batch.cells, "the queue is empty"
    queries = {}
    for limit in (5, 20):
        services.review_claims_release(reviewer)
        with CaptureQueriesContext(connection) as captured:
            services.review_claims_take(reviewer, selectors.ReviewQueueRequest(strategy=strategy, limit=limit))
        queries[limit] = len(captured)
    ordered = sorted(times)
    return {
        "strategy": strategy,
        "p50_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 1),
        "queries_limit_5": queries[5],
        "queries_limit_20": queries[20],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=300_000)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--strategy", default="entropy")
    parser.add_argument("--database-url", help="a PostgreSQL server's database URL (default: a temporary SQLite file)")
    parser.add_argument("--json", action="store_true", help="print one JSON object only")
    args = parser.parse_args(argv)
    var_dir = tempfile.mkdtemp(prefix="aicell-bench-queue-")
    scratch_url = scratch_database_url(args.database_url) if args.database_url else None
    try:
        setup_django(var_dir, scratch_url)
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        start = time.perf_counter()
        reviewer = seed(args.cells)
        from django.db import connection

        result = {"cells": args.cells, "database": connection.vendor, "seed_s": round(time.perf_counter() - start, 1)}
        result.update(measure(reviewer, args.requests, args.strategy))
    finally:
        if scratch_url is not None:
            drop_scratch_database(args.database_url, scratch_url)
        shutil.rmtree(var_dir, ignore_errors=True)
    if not args.json:
        for key, value in result.items():
            print(f"{key:>18}: {value}", file=sys.stderr)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
