"""A pre-label chunk on the worker path: one transaction, a number of SQL queries that does not grow with the chunk,
and the per-field rules of a single field (a bad image fails alone, a deleted field is skipped)."""

from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from annotations.models import AnnotationKind, AnnotationSet, Cell, Field
from inference.models import ItemStatus, PrelabelItem, PrelabelJob, PrelabelTrigger
from inference.services import PrelabelTimings, prelabel_chunk, prelabel_fields_run, prelabel_job_create
from tests.factories import FieldFactory

pytestmark = [pytest.mark.services]


def run_chunk(count: int) -> tuple[int, PrelabelJob, list[Field]]:
    fields = [FieldFactory(width=160, height=120) for _ in range(count)]
    job = prelabel_job_create(
        fields=Field.objects.filter(pk__in=[f.pk for f in fields]), trigger=PrelabelTrigger.MANUAL
    )
    with CaptureQueriesContext(connection) as queries:
        outcomes = prelabel_fields_run(field_ids=[f.pk for f in fields], job_id=job.pk)
    assert [o.status for o in outcomes] == [ItemStatus.SUCCEEDED] * count
    job.refresh_from_db()
    return len(queries), job, fields


def test_a_chunk_costs_the_same_queries_whatever_its_size(active_models: dict[str, Any]) -> None:
    run_chunk(1)  # loads the pipeline
    small, _, _ = run_chunk(2)
    large, job, fields = run_chunk(6)
    assert small == large, (small, large)
    assert (job.status, job.done_count, job.progress) == ("succeeded", 6, 100.0)
    for field in fields:
        field.refresh_from_db()
        assert field.status == "prelabelled"
        (prediction,) = AnnotationSet.objects.filter(field=field, kind=AnnotationKind.PREDICTION)
        item = PrelabelItem.objects.get(job=job, field_id_at_start=field.pk)
        assert prediction.cells.count() == item.cell_count >= 1


def test_running_a_chunk_again_replaces_its_sets_in_the_same_number_of_queries(active_models: dict[str, Any]) -> None:
    _, _, fields = run_chunk(3)
    cells = Cell.objects.count()
    ids = [f.pk for f in fields]
    job = prelabel_job_create(fields=Field.objects.filter(pk__in=ids), trigger=PrelabelTrigger.MANUAL)
    timings = PrelabelTimings()
    prelabel_fields_run(field_ids=ids, job_id=job.pk, timings=timings)
    assert Cell.objects.count() == cells  # replaced, not duplicated
    assert AnnotationSet.objects.filter(field_id__in=ids, kind=AnnotationKind.PREDICTION).count() == 3
    assert timings.fields == 3
    assert timings.queries > 0
    assert timings.total_s > 0


def test_in_one_chunk_a_bad_image_fails_alone_and_a_deleted_field_is_skipped(active_models: dict[str, Any]) -> None:
    good, bad, gone, missing = (FieldFactory(width=160, height=120) for _ in range(4))
    Path(bad.image.path).write_bytes(b"not an image any more")
    Path(missing.image.path).unlink()
    ids = [good.pk, bad.pk, gone.pk, missing.pk]
    job = prelabel_job_create(fields=Field.objects.filter(pk__in=ids), trigger=PrelabelTrigger.MANUAL)
    Field.objects.filter(pk=gone.pk).delete()
    outcomes = {o.field_id: o for o in prelabel_fields_run(field_ids=ids, job_id=job.pk)}
    assert outcomes[good.pk].status == ItemStatus.SUCCEEDED
    assert outcomes[bad.pk].status == ItemStatus.FAILED
    assert "cannot be decoded" in outcomes[bad.pk].error
    assert outcomes[missing.pk].status == ItemStatus.FAILED
    assert "missing from storage" in outcomes[missing.pk].error
    assert outcomes[gone.pk].status == ItemStatus.SKIPPED
    job.refresh_from_db()
    assert (job.status, job.done_count, job.failed_count) == ("succeeded", 2, 2)
    assert not AnnotationSet.objects.filter(field_id__in=[bad.pk, missing.pk], kind=AnnotationKind.PREDICTION)
    assert prelabel_fields_run(field_ids=ids, job_id=job.pk) == []  # a redelivery finds the job finished


def test_the_chunk_size_is_the_profiles_unless_the_setting_overrides_it(
    active_models: dict[str, Any], settings: Any
) -> None:
    settings.AICELL_PRELABEL_CHUNK = 0
    assert prelabel_chunk(active_models) == 32  # the test profile keeps the default
    settings.AICELL_PRELABEL_CHUNK = 5
    assert prelabel_chunk(active_models) == 5
