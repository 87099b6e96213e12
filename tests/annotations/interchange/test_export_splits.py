"""Exports never need a training run to have splits: patients without one get theirs from the split service (the
rule training snapshots use) and the report names them; `split_all` puts every image into one split instead."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from aicell.errors import ValidationFailed
from annotations.interchange.export_selection import ExportRequest
from annotations.interchange.jobs import coco_export_to_file, export_plan_assigning_splits
from annotations.models import AnnotationKind, AnnotationStatus, Patient
from annotations.services import split_settings
from annotations.splits import SPLITS, split_for_patient
from tests.annotations.interchange.builders import zip_entries
from tests.factories import AnnotationSetFactory, CaseFactory, CellFactory, FieldFactory, PatientFactory, SmearFactory

pytestmark = pytest.mark.django_db


def rule_split(code: str) -> str:
    seed, ratios = split_settings()
    return split_for_patient(code, seed=seed, ratios=ratios)


def one_code_per_split() -> dict[str, str]:
    """A patient code that the rule puts into each split."""
    codes: dict[str, str] = {}
    for number in range(1000):
        codes.setdefault(rule_split(f"FRESH-{number}"), f"FRESH-{number}")
    assert set(codes) == set(SPLITS)
    return codes


def truth_field_of(patient: Any, seed: int) -> Any:
    field = FieldFactory(smear=SmearFactory(case=CaseFactory(patient=patient)), seed=seed)
    truth = AnnotationSetFactory(
        field=field, kind=AnnotationKind.IMPORTED, annotator=None, status=AnnotationStatus.LOCKED
    )
    CellFactory(annotation_set=truth, cell_class_id=3)
    return field


def export(request: ExportRequest) -> tuple[dict[str, Any], dict[str, bytes]]:
    buffer = io.BytesIO()
    summary = coco_export_to_file(request, buffer)
    return summary.to_dict(), zip_entries(buffer.getvalue())


def image_splits(entries: dict[str, bytes]) -> dict[int, str]:
    return {
        image["id"]: image["split"]
        for name, data in entries.items()
        if name.startswith("annotations/")
        for image in json.loads(data)["images"]
    }


def test_a_fresh_case_exports_as_train_val_and_test_and_the_report_names_the_patients() -> None:
    codes = one_code_per_split()
    fields = {split: truth_field_of(PatientFactory(code=code), n) for n, (split, code) in enumerate(codes.items())}
    pinned = truth_field_of(PatientFactory(code="PINNED", split="val"), 9)

    summary, entries = export(ExportRequest())

    assert summary["splits_assigned"] == {code: split for split, code in codes.items()}
    assert sorted(summary["splits"]) == sorted(SPLITS)
    assert image_splits(entries) == {**{field.pk: split for split, field in fields.items()}, pinned.pk: "val"}
    assert not [name for name in entries if "unassigned" in name]
    assert dict(Patient.objects.values_list("code", "split")) == {**{c: s for s, c in codes.items()}, "PINNED": "val"}
    # The splits are kept: the next export assigns nothing and puts every image where it was.
    again, entries_again = export(ExportRequest())
    assert again["splits_assigned"] == {}
    assert image_splits(entries_again) == image_splits(entries)


def test_a_split_filter_sees_the_splits_the_export_assigns() -> None:
    codes = one_code_per_split()
    train = truth_field_of(PatientFactory(code=codes["train"]), 1)
    truth_field_of(PatientFactory(code=codes["test"]), 2)
    summary, entries = export(ExportRequest(splits=("train",)))
    assert image_splits(entries) == {train.pk: "train"}
    assert summary["splits_assigned"] == {codes["train"]: "train", codes["test"]: "test"}


def test_split_all_puts_every_image_into_one_split_and_assigns_nothing(tmp_path: Path) -> None:
    fields = [truth_field_of(PatientFactory(), 1), truth_field_of(PatientFactory(split="test"), 2)]
    out = tmp_path / "all-train.zip"
    stdout = io.StringIO()
    call_command("export_coco", f"--out={out}", "--split-all", "train", stdout=stdout)
    summary = json.loads(stdout.getvalue())
    entries = zip_entries(out.read_bytes())
    assert (summary["split_all"], summary["splits_assigned"], list(summary["splits"])) == ("train", {}, ["train"])
    assert image_splits(entries) == {field.pk: "train" for field in fields}
    assert sorted(name for name in entries if name.startswith("images/")) == sorted(
        f"images/train/{field.pk:08d}.jpg" for field in fields
    )
    assert sorted(Patient.objects.values_list("split", flat=True)) == ["", "test"]


@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        (ExportRequest(split_all="holdout"), "'holdout' is not one of train, val, test"),
        (ExportRequest(split_all="train", splits=("test",)), "puts every image into one split; leave out splits"),
    ],
)
def test_bad_split_all_requests_are_refused(request_: ExportRequest, reason: str) -> None:
    truth_field_of(PatientFactory(), 1)
    with pytest.raises(ValidationFailed) as refused:
        export_plan_assigning_splits(request_)
    assert [(error.field, error.reason) for error in refused.value.errors] == [("split_all", reason)]


def test_a_refused_export_assigns_no_split() -> None:
    truth_field_of(PatientFactory(), 1)
    with pytest.raises(ValidationFailed):
        export_plan_assigning_splits(ExportRequest(sources=("consensus", "predictions")))  # no model version
    assert list(Patient.objects.values_list("split", flat=True)) == [""]


def test_the_api_takes_split_all_and_reports_the_splits_it_assigned(client_for: Any, researcher: Any) -> None:
    from annotations.tasks import export_dataset

    field = truth_field_of(PatientFactory(code="API-1"), 1)
    client = client_for(researcher)
    one_split = client.post("/api/v1/exports", {"split_all": "test"}, format="json")
    assert one_split.status_code == 202, one_split.json()
    export_dataset(one_split.json()["id"])
    done = client.get(f"/api/v1/exports/{one_split.json()['id']}").json()
    assert (done["status"], done["result"]["split_all"], done["result"]["splits_assigned"]) == ("succeeded", "test", {})
    assert client.post("/api/v1/exports", {"split_all": "holdout"}, format="json").status_code == 400

    assigned = client.post("/api/v1/exports", {}, format="json")
    assert assigned.status_code == 202
    assert assigned.json()["result"] == {"splits_assigned": {"API-1": rule_split("API-1")}}  # given when asked
    export_dataset(assigned.json()["id"])
    done = client.get(f"/api/v1/exports/{assigned.json()['id']}").json()
    assert done["result"]["splits_assigned"] == {"API-1": rule_split("API-1")}
    assert list(done["result"]["splits"]) == [rule_split("API-1")]
    assert Patient.objects.get(pk=field.smear.case.patient_id).split == rule_split("API-1")
