"""Training datasets: truth only (locked consensus + imported truth, marked), per-patient splits that never leak and
never move, and the snapshot recorded for a run."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from annotations.models import (
    AnnotationKind,
    AnnotationSet,
    AnnotationStatus,
    Cell,
    CellReview,
    CellReviewStatus,
    Patient,
    ReviewOutcome,
)
from tests.factories import AnnotationSetFactory, CellFactory, ModelVersionFactory
from tests.training.platform_data import standard_cells, truth_field
from training.core.stages import CLASSIFIER, COUNTABILITY, DETECTOR
from training.datasets import dataset_snapshot_create, snapshot_path, snapshot_records, snapshot_sources
from training.models import DatasetSnapshot

pytestmark = pytest.mark.django_db


def test_a_snapshot_holds_locked_consensus_and_imported_truth_only(training_env: Path) -> None:
    consensus = truth_field("P1", [(5, 5, 20, 20, 12, True), (40, 40, 20, 20, None, False)])
    imported = truth_field("P2", [(10, 10, 30, 30, 0, True)], kind=AnnotationKind.IMPORTED, source_name="BCCD")
    reopened = truth_field("P3", [(10, 10, 30, 30, 5, True)], status=AnnotationStatus.DRAFT)
    # Annotators' work and model predictions on a truth field, and a field with annotator work only: never used.
    other = truth_field("P4", [])
    AnnotationSet.objects.filter(field=other).delete()
    for field in (consensus, other):
        annotator_set = AnnotationSetFactory(field=field, status=AnnotationStatus.SUBMITTED)
        CellFactory(annotation_set=annotator_set, x=1, y=1, width=9, height=9, cell_class_id=3)
        prediction = AnnotationSet.objects.create(
            field=field, kind=AnnotationKind.PREDICTION, model_version=ModelVersionFactory(), status="locked"
        )
        Cell.objects.create(annotation_set=prediction, x=2, y=2, width=8, height=8, cell_class_id=4)

    snapshot = dataset_snapshot_create()
    records = {record.key: record for record in snapshot_records(snapshot)}

    assert set(records) == {f"field:{consensus.pk}", f"field:{imported.pk}"}, "reopened consensus is not truth"
    cells = records[f"field:{consensus.pk}"].cells
    assert [(c.box, c.countable, c.class_index) for c in cells] == [
        ((5.0, 5.0, 25.0, 25.0), True, 12),
        ((40.0, 40.0, 60.0, 60.0), False, None),
    ]
    assert records[f"field:{imported.pk}"].cells[0].box == (10.0, 10.0, 40.0, 40.0)
    assert Path(records[f"field:{imported.pk}"].image_path).is_file()
    # Imported truth is marked as such, per field and in the summary.
    sources = snapshot_sources(snapshot)
    assert sources[f"field:{consensus.pk}"]["source"] == "consensus"
    assert sources[f"field:{imported.pk}"]["source"] == "imported:BCCD"
    assert snapshot.sources == {"consensus": {"fields": 1, "cells": 2}, "imported:BCCD": {"fields": 1, "cells": 1}}
    assert reopened.pk not in [item["field_id"] for item in sources.values()]
    assert snapshot.field_count == 2
    assert snapshot.cell_count == 3
    assert snapshot.seed == 0
    assert snapshot.ratios == [0.7, 0.1, 0.2]
    assert snapshot_path(snapshot).is_file()
    assert len(snapshot.content_hash) == 64


def test_counts_per_split_and_class(training_env: Path) -> None:
    truth_field("A", [(1, 1, 10, 10, 12, True), (20, 20, 10, 10, 0, True)], split="train")
    truth_field("A", [(1, 1, 10, 10, 12, True), (20, 20, 10, 10, None, False), (40, 40, 9, 9, None, True)])
    truth_field("B", [(1, 1, 10, 10, 5, True)], split="test")
    snapshot = dataset_snapshot_create()
    assert snapshot.counts["train"] == {
        "fields": 2,
        "patients": 1,
        "cells": 5,
        "countable": 4,
        "uncountable": 1,
        "unclassified": 1,
        "cell_truth": 0,
        "classes": {"0": 1, "12": 2},
    }
    assert snapshot.counts["test"]["classes"] == {"5": 1}
    assert "val" not in snapshot.counts


def test_splits_are_per_patient_and_never_leak(training_env: Path) -> None:
    for patient in range(40):
        for field in range(3):
            truth_field(f"PT{patient:03d}", standard_cells(field))
    records = snapshot_records(dataset_snapshot_create())
    splits_of: dict[str, set[str]] = defaultdict(set)
    for record in records:
        splits_of[record.patient].add(record.split)
    assert all(len(splits) == 1 for splits in splits_of.values()), "a patient sits in two splits"
    assert {split for splits in splits_of.values() for split in splits} == {"train", "val", "test"}
    stored = dict(Patient.objects.values_list("code", "split"))
    assert all(stored[patient] == next(iter(splits)) for patient, splits in splits_of.items())


def test_splits_are_stable_as_data_grows_and_pinned_splits_are_kept(training_env: Path) -> None:
    for patient in range(20):
        truth_field(f"G{patient:03d}", standard_cells(patient))
    truth_field("PINNED", standard_cells(0), split="val")  # e.g. an import that keeps the original split
    first = {record.patient: record.split for record in snapshot_records(dataset_snapshot_create())}
    assert first["PINNED"] == "val"
    # More patients and more fields of known patients: nobody moves.
    for patient in range(20, 60):
        truth_field(f"G{patient:03d}", standard_cells(patient))
    for patient in range(0, 20, 3):
        truth_field(f"G{patient:03d}", standard_cells(patient + 1))
    second = {record.patient: record.split for record in snapshot_records(dataset_snapshot_create())}
    assert {patient: second[patient] for patient in first} == first
    assert len(second) == 61


def test_a_stored_split_is_never_overwritten_even_if_the_seed_changes(training_env: Path, settings: Any) -> None:
    truth_field("KEEP", standard_cells(1))
    first = snapshot_records(dataset_snapshot_create())[0].split
    settings.AICELL_SPLIT_SEED = 12345
    settings.AICELL_SPLIT_RATIOS = [0.0, 0.0, 1.0] if first != "test" else [1.0, 0.0, 0.0]
    snapshot = dataset_snapshot_create()
    assert snapshot_records(snapshot)[0].split == first
    assert snapshot.seed == 12345


def test_the_content_hash_follows_the_data_not_the_moment(training_env: Path) -> None:
    field = truth_field("H1", [(1, 1, 10, 10, 12, True)])
    first, second = dataset_snapshot_create(), dataset_snapshot_create()
    assert first.content_hash == second.content_hash
    assert first.file != second.file
    Cell.objects.filter(annotation_set__field=field).update(cell_class_id=11)
    assert dataset_snapshot_create().content_hash != first.content_hash
    assert DatasetSnapshot.objects.count() == 3


def test_the_snapshot_file_is_jsonl_of_field_records(training_env: Path) -> None:
    truth_field("J1", [(1, 2, 10, 10, 12, True)])
    lines = snapshot_path(dataset_snapshot_create()).read_text().splitlines()
    row = json.loads(lines[0])
    assert set(row) == {"key", "image_path", "width", "height", "patient", "split", "cells", "whole_field"}
    assert row["cells"] == [{"box": [1.0, 2.0, 11.0, 12.0], "countable": True, "class_index": 12}]


def test_cell_truth_enters_crop_training_as_partial_fields_counted_apart(training_env: Path) -> None:
    """Cells two reviewers agreed on in the review queue train countability and class, never the detector; "not a
    white cell" is left out; a field with field-level truth keeps it as the stronger truth."""
    queued = truth_field("Q1", [])
    AnnotationSet.objects.filter(field=queued).delete()  # no field-level truth: only cell truth
    stronger = truth_field("Q2", [(5, 5, 20, 20, 12, True)])
    truth = {"status": CellReviewStatus.TRUTH, "outcome": ReviewOutcome.AGREED, "width": 20.0, "height": 20.0}
    CellReview.objects.create(field=queued, verdict="class", cell_class_id=11, x=5.0, y=5.0, **truth)
    CellReview.objects.create(field=queued, verdict="uncountable", x=40.0, y=40.0, **truth)
    CellReview.objects.create(field=queued, verdict="not_a_cell", x=60.0, y=5.0, **truth)
    CellReview.objects.create(field=queued, x=1.0, y=1.0)  # still open: no truth
    CellReview.objects.create(field=stronger, verdict="class", cell_class_id=0, x=5.0, y=5.0, **truth)

    snapshot = dataset_snapshot_create()
    records = {record.key: record for record in snapshot_records(snapshot)}
    assert set(records) == {f"field:{stronger.pk}", f"cells:{queued.pk}"}
    partial = records[f"cells:{queued.pk}"]
    assert partial.whole_field is False
    assert [(c.box, c.countable, c.class_index) for c in partial.cells] == [
        ((5.0, 5.0, 25.0, 25.0), True, 11),
        ((40.0, 40.0, 60.0, 60.0), False, None),
    ]
    assert records[f"field:{stronger.pk}"].cells[0].class_index == 12  # not the cell review's 0
    assert snapshot.sources == {"cell_review": {"fields": 1, "cells": 2}, "consensus": {"fields": 1, "cells": 1}}
    assert snapshot.field_count == 1
    assert snapshot.cell_count == 1
    split = Patient.objects.get(code="Q1").split
    assert snapshot.counts[split]["cell_truth"] == 2
    assert snapshot_sources(snapshot)[f"cells:{queued.pk}"]["source"] == "cell_review"

    fields = list(records.values())
    assert [record.key for record in DETECTOR.examples(fields)] == [f"field:{stronger.pk}"]
    assert sorted(item.label for item in COUNTABILITY.examples(fields)) == [0, 1, 1]
    assert sorted(item.label for item in CLASSIFIER.examples(fields)) == [11, 12]
