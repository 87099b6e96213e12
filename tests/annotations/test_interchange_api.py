"""/api/v1/exports and /api/v1/imports: 202 with a job, progress, download, ownership, early refusals."""

from __future__ import annotations

import csv
import io
import json
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from aicell.models import JobStatus
from aicell.roles import Role
from annotations.interchange import coco_export, jobs
from annotations.models import AnnotationKind, AnnotationStatus, Cell, ExportJob, Field, ImportJob, Patient
from annotations.tasks import export_dataset, import_dataset
from tests.annotations.interchange.builders import write_voc, zip_folder
from tests.factories import AnnotationSetFactory, CaseFactory, CellFactory, FieldFactory, image_bytes

BCCD_MAP = settings.BASE_DIR / "demo" / "bccd_label_map.json"


def truth_field(**kwargs: Any) -> Any:
    field = FieldFactory(**kwargs)
    truth = AnnotationSetFactory(
        field=field, kind=AnnotationKind.IMPORTED, annotator=None, status=AnnotationStatus.LOCKED
    )
    CellFactory(annotation_set=truth, cell_class_id=12)
    return field


def zip_members(response: Any) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


@pytest.mark.django_db
def test_a_researcher_exports_polls_and_downloads(
    client_for: Any, researcher: Any, make_user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Progress reported after every row: heartbeats and cancel checks run while the export's cursor is open.
    monkeypatch.setattr(coco_export, "CHUNK_ROWS", 1)
    monkeypatch.setattr(coco_export, "PROGRESS_EVERY_S", 0.0)
    reports: list[tuple[float, str]] = []
    report_progress = jobs.job_report_progress

    def recorded(job: Any, percent: float, message: str) -> None:
        reports.append((percent, message))
        report_progress(job, percent, message)

    monkeypatch.setattr(jobs, "job_report_progress", recorded)
    field = truth_field()
    CellFactory(annotation_set=field.annotation_sets.get(), x=100, cell_class_id=3)
    client = client_for(researcher)
    response = client.post("/api/v1/exports", {"cases": [field.smear.case.code]}, format="json")
    assert response.status_code == 202, response.json()
    job = response.json()
    assert (job["status"], job["download_url"], response["Location"]) == (
        "queued",
        None,
        f"/api/v1/exports/{job['id']}",
    )
    assert client.get(f"/api/v1/exports/{job['id']}/download").status_code == 409  # nothing to download yet
    assert export_dataset(job["id"]) == JobStatus.SUCCEEDED  # what the worker runs
    done = client.get(f"/api/v1/exports/{job['id']}").json()
    assert (done["status"], done["progress"]) == ("succeeded", 100.0)
    assert done["result"]["images"] == 1
    assert [percent for percent, _ in reports] == sorted(percent for percent, _ in reports)
    assert len(reports) >= 5  # 2 boxes, 1 image entry, 1 image file, the end, storing the zip
    assert done["download_url"] == f"http://testserver/api/v1/exports/{job['id']}/download"
    download = client.get(done["download_url"])
    assert download.status_code == 200
    assert download["Content-Type"] == "application/zip"
    # The patient had no split: the export gave it one, the way a training snapshot would, and says so.
    patient = Patient.objects.get(pk=field.smear.case.patient_id)
    assert done["result"]["splits_assigned"] == {patient.code: patient.split}
    instances = json.loads(zip_members(download)[f"annotations/instances_{patient.split}.json"])
    assert [image["id"] for image in instances["images"]] == [field.pk]
    # Exports are personal: another researcher does not see it, an admin does, other roles are refused.
    other = client_for(make_user(Role.RESEARCHER))
    assert other.get(f"/api/v1/exports/{job['id']}").status_code == 404
    assert other.get(f"/api/v1/exports/{job['id']}/download").status_code == 404
    assert other.get("/api/v1/exports").json()["count"] == 0
    assert client_for(make_user(Role.ADMIN)).get(f"/api/v1/exports/{job['id']}").status_code == 200
    assert client_for(make_user(Role.ANNOTATOR)).get("/api/v1/exports").status_code == 403


@pytest.mark.django_db
def test_bad_export_requests_are_refused_before_a_job_exists(client_for: Any, researcher: Any) -> None:
    field = truth_field()
    # A patient in train, so that a request for the test split has nothing to export whatever the split rule says.
    Patient.objects.filter(pk=field.smear.case.patient_id).update(split="train")
    client = client_for(researcher)
    unknown = client.post("/api/v1/exports", {"cases": ["NOPE"], "splits": ["train"]}, format="json")
    assert unknown.status_code == 400
    assert unknown.json()["errors"][0]["field"] == "cases"
    assert client.post("/api/v1/exports", {"sources": ["everything"]}, format="json").status_code == 400
    refused = client.post("/api/v1/exports", {"sources": ["annotations"]}, format="json")
    assert refused.status_code == 403
    assert refused.json()["errors"] == [{"field": "sources", "reason": refused.json()["detail"]}]
    empty = client.post("/api/v1/exports", {"splits": ["test"]}, format="json")
    assert empty.status_code == 400
    assert "Nothing to export" in empty.json()["detail"]
    assert ExportJob.objects.count() == 0


@pytest.mark.django_db
def test_cancelling_a_queued_export(client_for: Any, researcher: Any) -> None:
    truth_field()
    client = client_for(researcher)
    job = client.post("/api/v1/exports", {}, format="json").json()
    cancelled = client.post(f"/api/v1/exports/{job['id']}/cancel")
    assert (cancelled.status_code, cancelled.json()["status"]) == (200, "cancelled")
    assert client.post(f"/api/v1/exports/{job['id']}/cancel").status_code == 409
    assert export_dataset(job["id"]) == "skipped"


def voc_archive(tmp_path: Path, objects: list[Any] | None = None) -> SimpleUploadedFile:
    fields = {
        "BloodImage_1": (image_bytes(64, 48, seed=61), 64, 48, objects or [("WBC", 2, 2, 30, 30), ("RBC", 1, 1, 9, 9)]),
        "BloodImage_2": (image_bytes(64, 48, seed=62), 64, 48, [("WBC", 5, 5, 20, 20), ("WBC", 30, 5, 50, 20)]),
    }
    return SimpleUploadedFile("bccd.zip", zip_folder(write_voc(tmp_path / "voc", fields)), "application/zip")


TYPES_CSV = b"image,wbc_types\nBloodImage_1,lymphocyte\nBloodImage_2,eosinophil;eosinophil\n"


def import_form(tmp_path: Path, case_code: str, **overrides: Any) -> dict[str, Any]:
    form = {
        "archive": voc_archive(tmp_path),
        "format": "voc",
        "case": case_code,
        "label_map": SimpleUploadedFile("map.json", BCCD_MAP.read_bytes()),
        "types_csv": SimpleUploadedFile("types.csv", TYPES_CSV),
    }
    return form | overrides


@pytest.mark.django_db
def test_an_admin_imports_a_voc_zip_through_a_job(client_for: Any, lab_admin: Any, tmp_path: Path) -> None:
    case: Any = CaseFactory()
    client = client_for(lab_admin)
    response = client.post("/api/v1/imports", import_form(tmp_path, case.code), format="multipart")
    assert response.status_code == 202, response.json()
    job = response.json()
    assert (job["status"], job["case_code"], job["format"]) == ("queued", case.code, "voc")
    archive_name = str(ImportJob.objects.get(pk=job["id"]).archive.name)
    assert (Path(settings.MEDIA_ROOT) / archive_name).exists()
    assert import_dataset(job["id"]) == JobStatus.SUCCEEDED
    done = client.get(f"/api/v1/imports/{job['id']}").json()
    assert (done["status"], done["result"]["fields"], done["result"]["cells"]) == ("succeeded", 2, 3)
    assert done["result"]["ignored_boxes"] == {"RBC": 1}
    classes = sorted(Cell.objects.filter(annotation_set__field__smear__case=case).values_list("cell_class", flat=True))
    assert classes == [6, 6, 12]  # both white cells of field 2 are eosinophils; field 1's is a lymphocyte
    assert not (Path(settings.MEDIA_ROOT) / archive_name).exists()  # the uploaded archive is removed
    assert done["report_url"] is None  # nothing clamped, skipped or warned about
    assert client.get(f"/api/v1/imports/{job['id']}/report").status_code == 409


@pytest.mark.django_db
def test_imports_are_refused_early_when_the_request_is_wrong(client_for: Any, lab_admin: Any, tmp_path: Path) -> None:
    case: Any = CaseFactory()
    client = client_for(lab_admin)
    unsafe = io.BytesIO()
    with zipfile.ZipFile(unsafe, "w") as archive:
        archive.writestr("Annotations/a.xml", "<annotation/>")
        archive.writestr("../../etc/cron.d/evil", "* * * * * root sh")
    cases = {
        "archive": import_form(tmp_path, case.code, archive=SimpleUploadedFile("evil.zip", unsafe.getvalue())),
        "case": import_form(tmp_path, case.code, case="NO-SUCH-CASE"),
        "label_map": import_form(
            tmp_path, case.code, label_map=SimpleUploadedFile("m.json", b'{"labels": {"WBC": "cell"}}')
        ),
        "as": import_form(tmp_path, case.code, **{"as": "annotator:nobody"}),
        "smear": import_form(tmp_path, case.code, smear="no spaces allowed"),
    }
    for name, form in cases.items():
        response = client.post("/api/v1/imports", form, format="multipart")
        assert response.status_code == 400, (name, response.json())
        fields = [error["field"] for error in response.json()["errors"]]
        assert (fields == ["../../etc/cron.d/evil"]) if name == "archive" else (name in fields), (name, fields)
    assert ImportJob.objects.count() == 0
    assert not [p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()]


@pytest.mark.django_db
def test_dataset_problems_found_by_the_worker_fail_the_job_with_every_problem(
    client_for: Any, lab_admin: Any, tmp_path: Path
) -> None:
    case: Any = CaseFactory()
    form = import_form(
        tmp_path, case, archive=voc_archive(tmp_path, [("WBC", 2, 2, 90, 30), ("Eosinophil", 1, 1, 9, 9)])
    )
    job = client_for(lab_admin).post("/api/v1/imports", form, format="multipart").json()
    assert import_dataset(job["id"]) == JobStatus.FAILED
    failed = client_for(lab_admin).get(f"/api/v1/imports/{job['id']}").json()
    assert failed["status"] == "failed"
    assert failed["error"] == "The dataset has 2 problem(s) of 2 kind(s); nothing was imported."
    reasons = {error["reason"] for error in failed["result"]["errors"]}
    assert any("exceeds the image width 64" in reason for reason in reasons)
    assert any("'Eosinophil'" in reason for reason in reasons)
    assert Field.objects.count() == 0
    assert failed["report_url"] == f"http://testserver/api/v1/imports/{job['id']}/report"
    report = client_for(lab_admin).get(failed["report_url"])
    assert (report.status_code, report["Content-Type"]) == (200, "text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(report.streaming_content).decode())))
    assert sorted((row["outcome"], row["image"]) for row in rows) == [
        ("refused", "BloodImage_1.jpg"),
        ("refused", "BloodImage_1.jpg"),
    ]


@pytest.mark.django_db
def test_an_import_finds_images_by_file_name_in_a_folder_of_the_archive(
    client_for: Any, lab_admin: Any, tmp_path: Path
) -> None:
    """Label Studio names uploaded images /data/upload/<project>/<name>: `images` says where they are in the zip."""
    root = tmp_path / "ls"
    (root / "media").mkdir(parents=True)
    (root / "media" / "f1.jpg").write_bytes(image_bytes(64, 48, seed=71))
    document = {
        "images": [{"id": 0, "file_name": "/data/upload/1/f1.jpg", "width": 64, "height": 48}],
        "annotations": [{"id": 0, "image_id": 0, "category_id": 0, "bbox": [1, 1, 63.004, 9], "iscrowd": 0}],
        "categories": [{"id": 0, "name": "lymphoblast"}],
    }
    (root / "result.json").write_text(json.dumps(document))
    case: Any = CaseFactory()
    client = client_for(lab_admin)

    def form(**extra: Any) -> dict[str, Any]:
        archive = SimpleUploadedFile("ls.zip", zip_folder(root), "application/zip")
        return {"archive": archive, "format": "coco", "case": case.code, **extra}

    refused = client.post("/api/v1/imports", form(images="no/such/folder"), format="multipart")
    assert refused.status_code == 400
    assert [error["field"] for error in refused.json()["errors"]] == ["images"]
    job = client.post("/api/v1/imports", form(images="media"), format="multipart").json()
    assert import_dataset(job["id"]) == JobStatus.SUCCEEDED
    done = client.get(f"/api/v1/imports/{job['id']}").json()
    result = done["result"]
    assert (result["fields"], result["cells"], result["images_found_by_name"], result["clamped_boxes"]) == (1, 1, 1, 1)
    rows = list(csv.DictReader(io.StringIO(b"".join(client.get(done["report_url"]).streaming_content).decode())))
    assert [(row["outcome"], row["image"], row["boxes"]) for row in rows] == [("clamped", "f1.jpg", "1")]
    [cell] = Cell.objects.filter(annotation_set__field__smear__case=case)
    assert (cell.x, cell.width) == (1.0, 63.0)
    without = client.post("/api/v1/imports", form(), format="multipart").json()
    assert import_dataset(without["id"]) == JobStatus.FAILED
    [error] = client.get(f"/api/v1/imports/{without['id']}").json()["result"]["errors"]
    assert error["reason"].startswith("image named by an absolute path, a URL or '..' (give the image folder")


@pytest.mark.worker
@pytest.mark.services
def test_a_real_worker_runs_an_export_requested_through_the_api(
    celery_worker_thread: Any, client_for: Any, researcher: Any
) -> None:
    field = truth_field()
    client = client_for(researcher)
    job = client.post("/api/v1/exports", {}, format="json").json()
    deadline = time.monotonic() + 60
    while (state := client.get(f"/api/v1/exports/{job['id']}").json())["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, state
        time.sleep(0.2)
    assert state["status"] == "succeeded", state
    assert ExportJob.objects.get(pk=job["id"]).celery_task_id
    members = zip_members(client.get(state["download_url"]))
    split = Patient.objects.get(pk=field.smear.case.patient_id).split  # given by the export
    assert f"images/{split}/{field.pk:08d}.jpg" in members


@pytest.mark.django_db
def test_an_export_the_broker_cannot_take_fails_at_once(
    client_for: Any, researcher: Any, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    truth_field()

    def broker_down(*args: Any) -> None:
        raise OSError("Connection refused")

    monkeypatch.setattr(export_dataset, "delay", broker_down)
    client = client_for(researcher)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/api/v1/exports", {}, format="json")
    assert response.status_code == 202
    job = client.get(f"/api/v1/exports/{response.json()['id']}").json()
    assert (job["status"], job["error"]) == (
        "failed",
        "the task queue is unreachable (Connection refused); ask again later",
    )


@pytest.mark.django_db
@pytest.mark.parametrize("export_format", ["yolo", "cvat", "labelstudio"])
def test_an_export_in_another_format_through_the_api(client_for: Any, researcher: Any, export_format: str) -> None:
    field = truth_field()
    client = client_for(researcher)
    response = client.post(
        "/api/v1/exports", {"cases": [field.smear.case.code], "format": export_format}, format="json"
    )
    assert response.status_code == 202, response.json()
    job = response.json()
    assert job["parameters"]["format"] == export_format
    assert export_dataset(job["id"]) == JobStatus.SUCCEEDED
    members = zip_members(client.get(f"/api/v1/exports/{job['id']}/download"))
    expected = {"yolo": "data.yaml", "cvat": "annotations.xml", "labelstudio": "tasks.json"}[export_format]
    assert expected in members
    bad = client.post("/api/v1/exports", {"format": "voc"}, format="json")
    assert bad.status_code == 400


@pytest.mark.django_db
def test_an_import_with_a_patient_per_image_and_splits_from_the_dataset(
    client_for: Any, lab_admin: Any, tmp_path: Path
) -> None:
    case: Any = CaseFactory(code="BC")
    voc = tmp_path / "voc"
    archive = voc_archive(tmp_path)
    (voc / "ImageSets").mkdir()
    (voc / "ImageSets" / "train.txt").write_text("BloodImage_1\n")
    (voc / "ImageSets" / "val.txt").write_text("BloodImage_2\n")
    archive = SimpleUploadedFile("bccd.zip", zip_folder(voc), "application/zip")
    form = import_form(tmp_path, case.code, archive=archive, split_from_dataset="true", patient_per_image="true")
    response = client_for(lab_admin).post("/api/v1/imports", form, format="multipart")
    assert response.status_code == 202, response.json()
    assert import_dataset(response.json()["id"]) == JobStatus.SUCCEEDED
    assert dict(Patient.objects.filter(code__startswith="BC-").values_list("code", "split")) == {
        "BC-BloodImage_1": "train",
        "BC-BloodImage_2": "val",
    }
    result = ImportJob.objects.get(pk=response.json()["id"]).result
    assert result["images_per_split"] == {"train": 1, "val": 1}
