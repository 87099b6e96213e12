from collections import Counter
from typing import Any

import pytest

from annotations.models import Field, Patient, Split
from annotations.services import patient_splits_assign
from annotations.splits import DEFAULT_RATIOS, SPLITS, assign_splits, split_for_patient
from tests.factories import FieldFactory, PatientFactory


def test_the_database_choices_are_the_rule_splits():
    assert tuple(Split.values) == SPLITS


def test_split_is_deterministic_and_valid():
    for i in range(50):
        code = f"P{i:04d}"
        first = split_for_patient(code, seed=3)
        assert first in SPLITS
        assert split_for_patient(code, seed=3) == first


def test_seed_changes_the_assignment():
    codes = [f"P{i:04d}" for i in range(200)]
    a = [split_for_patient(c, seed=0) for c in codes]
    b = [split_for_patient(c, seed=1) for c in codes]
    assert a != b


def test_ratios_roughly_respected_on_1000_patients():
    counts = Counter(split_for_patient(f"patient-{i}") for i in range(1000))
    for split, ratio in zip(SPLITS, DEFAULT_RATIOS, strict=True):
        assert abs(counts[split] / 1000 - ratio) < 0.05, counts


def test_custom_ratios():
    counts = Counter(split_for_patient(f"p{i}", ratios=(0.5, 0.5, 0.0)) for i in range(1000))
    assert counts["test"] == 0
    assert 400 < counts["train"] < 600


def test_stable_as_data_grows():
    small = assign_splits([f"P{i}" for i in range(100)], {})
    big = assign_splits([f"P{i}" for i in range(1000)], {})
    assert all(big[p] == s for p, s in small.items())
    # Growing from the stored assignment gives the same answer as growing from scratch.
    grown = assign_splits([f"P{i}" for i in range(1000)], small)
    assert grown == big


def test_patient_never_changes_split_even_if_ratios_change():
    stored = {"A": "test", "B": "train"}
    out = assign_splits(["A", "B", "C"], stored, ratios=(1.0, 0.0, 0.0))
    assert out["A"] == "test"
    assert out["B"] == "train"
    assert out["C"] == "train"


def test_patients_are_the_split_unit():
    # Fields of one patient all land in one split: no patient on both sides.
    splits = assign_splits([f"P{i % 37}" for i in range(500)], {})
    assert len(splits) == 37


def test_bad_inputs():
    with pytest.raises(ValueError, match="ratios"):
        split_for_patient("x", ratios=(0.5, 0.5))
    with pytest.raises(ValueError, match="ratios"):
        split_for_patient("x", ratios=(0.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="stored split"):
        assign_splits(["x"], {"x": "holdout"})


@pytest.mark.django_db
def test_the_split_service_gives_new_patients_of_the_fields_their_split_and_keeps_stored_ones(settings: Any) -> None:
    settings.AICELL_SPLIT_SEED, settings.AICELL_SPLIT_RATIOS = 7, [0.0, 0.0, 1.0]
    new, pinned, elsewhere = PatientFactory(code="NEW"), PatientFactory(code="PINNED", split="val"), PatientFactory()
    fields = [FieldFactory(smear__case__patient=patient) for patient in (new, new, pinned, elsewhere)]

    assigned = patient_splits_assign(fields=Field.objects.filter(pk__in=[field.pk for field in fields[:3]]))

    assert assigned == {"NEW": "test"}
    assert dict(Patient.objects.values_list("code", "split")) == {"NEW": "test", "PINNED": "val", elsewhere.code: ""}
    settings.AICELL_SPLIT_RATIOS = [1.0, 0.0, 0.0]  # later settings never move a stored split
    assert patient_splits_assign(fields=Field.objects.all()) == {elsewhere.code: "train"}
    assert Patient.objects.get(code="NEW").split == "test"
