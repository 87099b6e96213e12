"""One-statement bulk writes (aicell/bulk.py): every value lands as Django would store it, defaults and automatic
times included, in one query whatever the number of rows (SQLite here, PostgreSQL in CI)."""

from __future__ import annotations

from typing import Any

import pytest

from aicell.bulk import encode_rows, insert_row_groups, insert_rows, update_rows
from annotations.models import AnnotationSet, Cell
from inference.models import ItemStatus, PrelabelItem, PrelabelJob
from tests.factories import FieldFactory, PredictionSetFactory

pytestmark = pytest.mark.django_db


def test_insert_rows_writes_every_value_with_defaults_and_times_in_one_statement(
    django_assert_num_queries: Any,
) -> None:
    prediction = PredictionSetFactory(field=FieldFactory(width=640, height=480))
    rows = [
        {
            "annotation_set_id": prediction.pk,
            "x": 1.5 + i,
            "y": 2.0,
            "width": 10.0,
            "height": 12.25,
            "countable": i % 2 == 0,
            "cell_class_id": None,
            "scores": {"probabilities": [0.25, 0.75], "p_countable": None, "label": 'o\'brien "x"'},
            "confidence": 0.75 if i else None,
            "review_random": i / 300,  # a per-row default (a random draw) is the caller's to give
        }
        for i in range(300)
    ]
    with django_assert_num_queries(1):
        returned = insert_rows(Cell, rows, returning=("id", "x"))
    assert sorted(x for _, x in returned) == [1.5 + i for i in range(300)]
    cells = list(Cell.objects.filter(annotation_set=prediction).order_by("id"))
    assert [c.x for c in cells] == [1.5 + i for i in range(300)]
    first, second = cells[0], cells[1]
    assert (first.countable, second.countable, first.confidence, second.confidence) == (True, False, None, 0.75)
    assert first.scores == rows[0]["scores"]
    assert (first.review_outcome, first.source_cell_id, first.created_by_id) == ("", None, None)
    assert first.created_at is not None
    assert first.created_at == first.updated_at
    assert Cell.objects.filter(annotation_set=prediction, scores__probabilities__1=0.75).count() == 300


def test_insert_rows_returns_the_keys_it_made_and_fills_the_model_defaults() -> None:
    field = FieldFactory()
    model_version = PredictionSetFactory(field=FieldFactory()).model_version
    made: dict[int, int] = dict(
        insert_rows(
            AnnotationSet,
            [{"field_id": field.pk, "kind": "prediction", "model_version_id": model_version.pk, "pipeline": {}}],
            returning=("field_id", "id"),
        )
    )
    stored = AnnotationSet.objects.get(pk=made[field.pk])
    assert (stored.version, stored.status, stored.pipeline) == (1, "draft", {})


def test_update_rows_sets_each_row_its_values_in_one_statement(django_assert_num_queries: Any) -> None:
    job = PrelabelJob.objects.create(field_count=3, pipeline={})
    items = [PrelabelItem.objects.create(job=job, field_id_at_start=i) for i in range(3)]
    rows = [
        {"pk": items[0].pk, "status": ItemStatus.SUCCEEDED.value, "error": "", "cell_count": 7},
        {"pk": items[2].pk, "status": ItemStatus.FAILED.value, "error": "it's broken", "cell_count": 0},
    ]
    with django_assert_num_queries(1):
        update_rows(PrelabelItem, rows, ["status", "error", "cell_count"])
    got = {i.pk: (i.status, i.error, i.cell_count) for i in PrelabelItem.objects.all()}
    assert got == {
        items[0].pk: ("succeeded", "", 7),
        items[1].pk: ("queued", "", 0),
        items[2].pk: ("failed", "it's broken", 0),
    }


def test_insert_row_groups_gives_each_group_its_values_in_one_statement(django_assert_num_queries: Any) -> None:
    first, second, empty = (PredictionSetFactory(field=FieldFactory(width=640, height=480)) for _ in range(3))
    columns = ("x", "y", "width", "height", "scores", "review_random")

    def rows(count: int) -> str:
        return encode_rows(
            [
                {"x": float(i), "y": 1.0, "width": 5.0, "height": 6.0, "scores": {"i": i}, "review_random": 0.5}
                for i in range(count)
            ]
        )

    groups = [({"annotation_set_id": first.pk}, rows(3)), ({"annotation_set_id": empty.pk}, rows(0))]
    groups.append(({"annotation_set_id": second.pk, "countable": False}, rows(2)))
    with django_assert_num_queries(1):
        insert_row_groups(Cell, groups, columns)
    stored = {(c.annotation_set_id, c.x, c.countable, c.scores["i"]) for c in Cell.objects.all()}
    assert stored == {(first.pk, float(i), True, i) for i in range(3)} | {
        (second.pk, float(i), False, i) for i in range(2)
    }


def test_a_per_row_default_left_out_is_refused_rather_than_shared_by_every_row() -> None:
    prediction = PredictionSetFactory(field=FieldFactory(width=640, height=480))
    row = {"annotation_set_id": prediction.pk, "x": 1.0, "y": 1.0, "width": 5.0, "height": 5.0, "scores": {}}
    with pytest.raises(ValueError, match="review_random has a per-row default"):
        insert_rows(Cell, [row])
    assert not Cell.objects.filter(annotation_set=prediction).exists()
