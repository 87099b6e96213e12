"""POST /api/v1/fields: a batch is stored whole or not at all; the original stays byte-exact."""

from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from annotations.models import AuditEvent, Field
from tests.annotations.test_images import png_header_only
from tests.factories import FieldFactory, SmearFactory, image_bytes

pytestmark = pytest.mark.django_db


def stored_files() -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


def upload(client: Any, smear_id: Any, *files: tuple[str, bytes]) -> Any:
    payload = {"smear": smear_id, "files": [SimpleUploadedFile(name, data) for name, data in files]}
    return client.post("/api/v1/fields", payload, format="multipart")


def test_uploads_many_fields_and_keeps_originals_byte_exact(client_for: Any, lab_admin: Any) -> None:
    smear = SmearFactory()
    jpeg, png, tiff = (
        image_bytes(seed=1),
        image_bytes(seed=2, image_format="PNG"),
        image_bytes(seed=3, image_format="TIFF"),
    )
    names = ("Doe_Jane_1.jpg", "Doe_Jane_2.png", "Doe_Jane_3.tif")
    response = upload(client_for(lab_admin), smear.pk, *zip(names, (jpeg, png, tiff), strict=True))
    assert response.status_code == 201, response.json()
    body = response.json()
    assert [item["format"] for item in body] == ["JPEG", "PNG", "TIFF"]
    assert all(item["status"] == "uploaded" and item["smear"] == smear.pk for item in body)
    for item, data, name, extension in zip(body, (jpeg, png, tiff), names, ("jpg", "png", "tif"), strict=True):
        field = Field.objects.get(pk=item["id"])
        with field.image.open("rb") as handle:
            assert handle.read() == data
        assert field.original_name == item["original_name"] == name
        # The stored name is the content hash: upload names never reach the storage.
        assert field.image.name == f"fields/{field.sha256[:2]}/{field.sha256}.{extension}"
        downloaded = client_for(lab_admin).get(item["image_url"])
        assert b"".join(downloaded.streaming_content) == data
    assert AuditEvent.objects.filter(action="field.upload").count() == 3


@pytest.mark.parametrize(
    ("bad_name", "bad_data", "reason"),
    [
        ("notes.jpg", b"this is a text file renamed .jpg\n" * 20, "could not be decoded"),
        ("cut.jpg", image_bytes(400, 300, quality=100)[:-800], "truncated or corrupt"),
        ("bomb.png", png_header_only(20000, 20000), "decompression bomb"),
        ("empty.jpg", b"", "empty"),
    ],
    ids=["text-renamed", "truncated", "png-bomb", "empty-file"],
)
def test_one_bad_file_refuses_the_whole_batch_and_stores_nothing(
    client_for: Any, lab_admin: Any, bad_name: str, bad_data: bytes, reason: str
) -> None:
    smear = SmearFactory()
    response = upload(client_for(lab_admin), smear.pk, ("good.jpg", image_bytes(seed=5)), (bad_name, bad_data))
    assert response.status_code == 400
    body = response.json()
    assert body["errors"][0]["field"] == f"files[1] ({bad_name})"
    assert reason in body["errors"][0]["reason"]
    assert Field.objects.count() == 0
    assert stored_files() == []


def test_a_duplicate_answers_409_with_the_existing_field(client_for: Any, lab_admin: Any) -> None:
    smear = SmearFactory()
    data = image_bytes(seed=9)
    first = upload(client_for(lab_admin), smear.pk, ("one.jpg", data))
    existing_id = first.json()[0]["id"]
    files_before = stored_files()
    second = upload(client_for(lab_admin), smear.pk, ("new.jpg", image_bytes(seed=10)), ("again.jpg", data))
    assert second.status_code == 409
    assert second.json()["existing_field_ids"] == [existing_id]
    assert f"already stored as field {existing_id}" in second.json()["errors"][0]["reason"]
    assert Field.objects.count() == 1
    assert stored_files() == files_before


def test_the_same_image_twice_in_one_batch_is_refused(client_for: Any, lab_admin: Any) -> None:
    data = image_bytes(seed=4)
    response = upload(client_for(lab_admin), SmearFactory().pk, ("a.jpg", data), ("b.jpg", data))
    assert response.status_code == 400
    assert response.json()["errors"] == [{"field": "files[1] (b.jpg)", "reason": "the same image as files[0]"}]


@pytest.mark.parametrize("smear_id", [999999, "abc", ""])
def test_unknown_smear_is_refused(client_for: Any, lab_admin: Any, smear_id: Any) -> None:
    response = upload(client_for(lab_admin), smear_id, ("a.jpg", image_bytes()))
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "smear"
    assert Field.objects.count() == 0


def test_an_upload_without_files_is_refused(client_for: Any, lab_admin: Any) -> None:
    response = upload(client_for(lab_admin), SmearFactory().pk)
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "files"


def test_a_storage_failure_midway_leaves_no_rows_and_no_files(
    client_for: Any, lab_admin: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from annotations import services

    calls = {"n": 0}
    real_audit = services.audit_record

    def failing_second_audit(**kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full")
        return real_audit(**kwargs)

    monkeypatch.setattr(services, "audit_record", failing_second_audit)
    client = client_for(lab_admin)
    client.raise_request_exception = False
    response = upload(client, SmearFactory().pk, ("a.jpg", image_bytes(seed=1)), ("b.jpg", image_bytes(seed=2)))
    assert response.status_code == 500
    assert Field.objects.count() == 0
    assert stored_files() == []


def test_researchers_get_a_metadata_free_copy_and_no_upload_names(client_for: Any, researcher: Any) -> None:
    field = FieldFactory(original_name="JaneDoe_marrow.jpg")
    client = client_for(researcher)
    detail = client.get(f"/api/v1/fields/{field.pk}").json()
    assert "original_name" not in detail
    image = client.get(f"/api/v1/fields/{field.pk}/image")
    assert image["Content-Type"] == "image/png"
    assert image["X-Content-Type-Options"] == "nosniff"
