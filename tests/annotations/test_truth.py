"""Truth, defined once: locked consensus and imported truth; a reopened consensus only where asked for."""

import pytest

from annotations.models import AnnotationKind, AnnotationStatus
from annotations.truth import fields_with_truth, truth, truth_cells
from tests.factories import AnnotationSetFactory, CellFactory, FieldFactory, PredictionSetFactory, TruthSetFactory

pytestmark = pytest.mark.django_db


def test_truth_is_locked_consensus_and_imported_truth_and_a_reopened_consensus_only_when_asked() -> None:
    consensus = TruthSetFactory()
    imported = TruthSetFactory(kind=AnnotationKind.IMPORTED, source_name="lab-2020")
    reopened = TruthSetFactory(status=AnnotationStatus.DRAFT)
    others = [
        AnnotationSetFactory(status=AnnotationStatus.SUBMITTED),
        AnnotationSetFactory(status=AnnotationStatus.LOCKED),
        PredictionSetFactory(),
    ]
    FieldFactory()  # nothing at all
    for annotation_set in (consensus, imported, reopened, *others):
        CellFactory(annotation_set=annotation_set)

    assert set(truth()) == {consensus, imported}
    assert set(truth(with_reopened=True)) == {consensus, imported, reopened}
    assert {cell.annotation_set_id for cell in truth_cells()} == {consensus.pk, imported.pk}
    assert set(fields_with_truth()) == {consensus.field, imported.field}
