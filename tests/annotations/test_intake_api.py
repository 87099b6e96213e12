"""Intake through the API, as the Intake page drives it: patients with optional birth year and sex, and one field
per upload request, so a batch with bad files stores every good file and names the bad ones with reasons."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from annotations.models import Field
from tests.conftest import token_client
from tests.factories import FieldFactory, SmearFactory, image_bytes

pytestmark = pytest.mark.django_db


def test_patient_with_birth_year_and_sex(lab_admin: Any) -> None:
    client = token_client(lab_admin)
    response = client.post("/api/v1/patients", {"code": "P-7", "birth_year": 2015, "sex": "F"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["birth_year"] == 2015
    assert response.json()["sex"] == "F"
    bad = client.post("/api/v1/patients", {"code": "Jane Doe", "birth_year": 1850, "sex": "Q"}, format="json")
    assert bad.status_code == 400
    assert {problem["field"] for problem in bad.json()["errors"]} == {"code", "birth_year", "sex"}


def test_per_file_uploads_store_the_good_and_name_the_bad(lab_admin: Any, settings: Any) -> None:
    settings.AICELL_MAX_UPLOAD_BYTES = 20_000
    client = token_client(lab_admin)
    smear = SmearFactory()
    files = [(f"good-{i}.jpg", image_bytes(seed=i)) for i in range(5)]
    files += [("notes.txt", b"not an image"), ("dup.jpg", image_bytes(seed=0))]
    files += [("huge.png", image_bytes(width=400, height=400, image_format="PNG", seed=9, compress_level=0))]
    answers = []
    for name, data in files:
        upload = SimpleUploadedFile(name, data)
        answers.append(client.post("/api/v1/fields", {"smear": smear.pk, "files": [upload]}, format="multipart"))
    assert [answer.status_code for answer in answers] == [201] * 5 + [400, 409, 400]
    assert Field.objects.filter(smear=smear).count() == 5
    first = answers[0].json()[0]["id"]
    assert f"already stored as field {first}" in answers[6].json()["errors"][0]["reason"]
    reasons = [answers[i].json()["errors"][0]["reason"] for i in (5, 7)]
    assert all(reasons), reasons


def test_a_fields_neighbours_in_its_case_are_one_row_each_with_the_counts(lab_admin: Any) -> None:
    """The annotator's `[` / `]`: the field before and after one, and how many there are, without listing the case."""
    smear = SmearFactory()
    ids = [FieldFactory(smear=smear).pk for _ in range(4)]
    FieldFactory()  # another case's field is no neighbour
    client = token_client(lab_admin)
    case = smear.case_id
    later = client.get(f"/api/v1/fields?case={case}&after={ids[1]}&ordering=id&page_size=1").json()
    earlier = client.get(f"/api/v1/fields?case={case}&before={ids[1]}&ordering=-id&page_size=1").json()
    assert ([row["id"] for row in later["results"]], later["count"]) == ([ids[2]], 2)
    assert ([row["id"] for row in earlier["results"]], earlier["count"]) == ([ids[0]], 1)
    assert client.get(f"/api/v1/fields?case={case}&after={ids[3]}").json()["count"] == 0
    assert client.get("/api/v1/fields?after=one").status_code == 400


def test_a_number_where_the_schema_says_string_is_refused_not_stored_as_text(lab_admin: Any) -> None:
    """Found by the fuzzing: DRF's CharField stored the number 1303 as the patient code "1303"."""
    client = token_client(lab_admin)
    patient = client.post("/api/v1/patients", {"code": "P-8"}, format="json").json()
    for body in ({"code": 1303}, {"code": 13.5}, {"code": True}):
        answer = client.patch(f"/api/v1/patients/{patient['id']}", body, format="json")
        assert answer.status_code == 400, (body, answer.content)
        assert [problem["field"] for problem in answer.json()["errors"]] == ["code"]
    assert client.get(f"/api/v1/patients/{patient['id']}").json()["code"] == "P-8"
