"""Pre-labelling through a real Celery worker: predictions stored once per (field, model version), failures
recorded per field, deleted fields skipped."""

from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from annotations.models import AnnotationKind, AnnotationSet, Cell, Field
from inference.models import ItemStatus, PrelabelItem, PrelabelJob, PrelabelTrigger
from inference.services import prelabel_fields_run, prelabel_job_create
from inference.tasks import prelabel_fields
from tests.factories import FieldFactory, SmearFactory, image_bytes
from training.models import ModelStatus, ModelVersion

pytestmark = [pytest.mark.worker, pytest.mark.services]


def wait_for(job: PrelabelJob, timeout: float = 120) -> PrelabelJob:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if job.is_finished:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job.pk} still {job.status} after {timeout}s: {job.message}")


def prediction_sets(field: Field) -> list[AnnotationSet]:
    return list(AnnotationSet.objects.filter(field=field, kind=AnnotationKind.PREDICTION))


def test_new_uploads_are_prelabelled_by_a_real_worker(
    celery_worker_thread: Any, active_models: dict[str, Any], client_for: Any, lab_admin: Any
) -> None:
    smear = SmearFactory()
    files = [SimpleUploadedFile(f"f{i}.png", image_bytes(160, 120, "PNG", seed=i)) for i in range(2)]
    response = client_for(lab_admin).post("/api/v1/fields", {"smear": smear.pk, "files": files}, format="multipart")
    assert response.status_code == 201
    job = wait_for(PrelabelJob.objects.get(trigger=PrelabelTrigger.UPLOAD))
    assert job.status == "succeeded", job.error
    assert (job.done_count, job.failed_count, job.progress) == (2, 0, 100.0)
    assert job.pipeline == {stage: version.pk for stage, version in active_models.items()}
    for field in Field.objects.filter(smear=smear):
        assert field.status == "prelabelled"
        (predictions,) = prediction_sets(field)
        assert predictions.model_version == active_models["classifier"]
        cells = list(predictions.cells.all())
        assert 1 <= len(cells) <= 3  # the test profile keeps the top 3 boxes
        for cell in cells:
            probabilities = cell.scores["probabilities"]
            assert len(probabilities) == 21
            assert sum(probabilities) == pytest.approx(1.0, abs=1e-4)
            assert cell.cell_class_id == max(range(21), key=probabilities.__getitem__)
            assert cell.confidence == pytest.approx(max(probabilities))
            assert len(cell.scores["member_probabilities"]) == 2
            assert cell.entropy == pytest.approx(cell.scores["uncertainty"]["entropy"])
            assert cell.x >= 0
            assert cell.x + cell.width <= field.width + 1e-6


def test_running_again_replaces_the_prediction_set_never_duplicates(
    celery_worker_thread: Any, active_models: dict[str, Any]
) -> None:
    field = FieldFactory(width=160, height=120)
    first = wait_for(prelabel_job_create(fields=Field.objects.filter(pk=field.pk), trigger=PrelabelTrigger.MANUAL))
    (first_set,) = prediction_sets(field)
    boxes = sorted(first_set.cells.values_list("x", "y", "width", "height"))
    # The same chunk delivered twice (acks_late redelivery) and a second job for the same model version.
    prelabel_fields.delay(first.pk, [field.pk]).get(timeout=120)
    second = wait_for(prelabel_job_create(fields=Field.objects.filter(pk=field.pk), trigger=PrelabelTrigger.MANUAL))
    assert second.status == "succeeded"
    (replaced,) = prediction_sets(field)
    assert replaced.pk != first_set.pk
    replaced_boxes = sorted(replaced.cells.values_list("x", "y", "width", "height"))
    assert [v for box in replaced_boxes for v in box] == pytest.approx([v for box in boxes for v in box], abs=1e-3)
    assert Cell.objects.filter(annotation_set__field=field).count() == len(boxes)
    first.refresh_from_db()
    assert first.done_count == 1  # the redelivered chunk was not counted twice


def test_a_field_deleted_meanwhile_is_skipped_not_a_crash(
    celery_worker_thread: Any, active_models: dict[str, Any]
) -> None:
    kept, deleted = FieldFactory(width=160, height=120), FieldFactory(width=160, height=120)
    job = prelabel_job_create(fields=Field.objects.filter(pk__in=[kept.pk, deleted.pk]), trigger=PrelabelTrigger.MANUAL)
    Field.objects.filter(pk=deleted.pk).delete()
    job = wait_for(job)
    assert job.status == "succeeded"
    statuses = dict(PrelabelItem.objects.filter(job=job).values_list("field_id_at_start", "status"))
    assert statuses == {kept.pk: ItemStatus.SUCCEEDED, deleted.pk: ItemStatus.SKIPPED}
    assert prediction_sets(kept)


def test_a_corrupt_image_fails_its_field_with_the_reason_visible_in_the_api(
    celery_worker_thread: Any, active_models: dict[str, Any], client_for: Any, adjudicator: Any
) -> None:
    good, bad = FieldFactory(width=160, height=120), FieldFactory(width=160, height=120)
    Path(bad.image.path).write_bytes(b"not an image any more")
    job = wait_for(
        prelabel_job_create(fields=Field.objects.filter(pk__in=[good.pk, bad.pk]), trigger=PrelabelTrigger.MANUAL)
    )
    assert (job.status, job.done_count, job.failed_count) == ("succeeded", 1, 1)
    response = client_for(adjudicator).get(f"/api/v1/prelabel-jobs/{job.pk}/items?status=failed")
    assert response.status_code == 200
    (item,) = response.json()["results"]
    assert item["field"] == bad.pk
    assert "cannot be decoded" in item["error"]
    assert not prediction_sets(bad)


def test_a_checkpoint_of_the_wrong_shape_fails_the_job_with_the_mismatch_named(
    settings: Any, tmp_path: Path, active_models: dict[str, Any]
) -> None:
    from tests.models_on_disk import write_random_checkpoints

    wrong = write_random_checkpoints(tmp_path, classes=[f"class {i}" for i in range(21)])
    settings.AICELL_MODEL_DIR = tmp_path
    active_models["classifier"].checkpoints = wrong["classifier"]
    active_models["classifier"].save()
    field = FieldFactory(width=160, height=120)
    job = prelabel_job_create(fields=Field.objects.filter(pk=field.pk), trigger=PrelabelTrigger.MANUAL)
    prelabel_fields.apply(args=(job.pk, [field.pk]))  # runs the task body here: no worker needed for a refusal
    job.refresh_from_db()
    assert job.status == "failed"
    assert "class list differ" in job.error
    assert "expected ['myeloblast'" in job.error


def test_without_an_active_detector_a_prelabel_request_is_refused(client_for: Any, adjudicator: Any) -> None:
    FieldFactory()
    response = client_for(adjudicator).post("/api/v1/prelabel-jobs", {}, format="json")
    assert response.status_code == 400
    assert "No active model for: detector, countability, classifier" in response.json()["detail"]
    assert "Train and promote a detector first" in response.json()["detail"]


def test_a_detector_alone_prelabels_unclassified_boxes(active_models: dict[str, Any]) -> None:
    # Only the detector is active (DESIGN.md: "A detector alone already pre-labels (unclassified boxes)").
    ModelVersion.objects.filter(stage__in=["countability", "classifier"]).update(status=ModelStatus.RETIRED)
    field = FieldFactory(width=160, height=120)
    job = prelabel_job_create(fields=Field.objects.filter(pk=field.pk), trigger=PrelabelTrigger.MANUAL)
    assert job.pipeline == {"detector": active_models["detector"].pk}
    outcome = prelabel_fields_run(field_ids=[field.pk], job_id=job.pk)
    assert [o.status for o in outcome] == [ItemStatus.SUCCEEDED]
    (prediction,) = prediction_sets(field)
    assert prediction.model_version == active_models["detector"]
    cells = list(Cell.objects.filter(annotation_set=prediction))
    assert cells, "the random test detector finds boxes at its score threshold"
    assert all(cell.cell_class_id is None and cell.confidence is None for cell in cells)
    assert all(cell.scores["p_countable"] is None and cell.scores["probabilities"] == [] for cell in cells)
    assert all(cell.detector_score is not None for cell in cells)
    assert all("detector" in cell.scores["uncertainty"] for cell in cells)
    # Written in bulk, each predicted cell is in the review queue's indexes under its version, with its random draw.
    assert {cell.review_version_id for cell in cells} == {active_models["detector"].pk}
    assert all(cell.review_random is not None and 0 <= cell.review_random < 1 for cell in cells)


def test_prelabel_command_waits_with_progress(
    celery_worker_thread: Any, active_models: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    field = FieldFactory(width=160, height=120)
    call_command("prelabel", "--case", field.smear.case.code, "--wait")
    out = capsys.readouterr()
    assert "1 fields queued" in out.out
    assert "succeeded" in out.out
    assert prediction_sets(field)


def test_service_run_outside_a_worker_counts_each_field_once(active_models: dict[str, Any]) -> None:
    field = FieldFactory(width=160, height=120)
    job = prelabel_job_create(fields=Field.objects.filter(pk=field.pk), trigger=PrelabelTrigger.MANUAL)
    first = prelabel_fields_run(field_ids=[field.pk], job_id=job.pk)
    assert [o.status for o in first] == [ItemStatus.SUCCEEDED]
    assert prelabel_fields_run(field_ids=[field.pk], job_id=job.pk) == []  # the job is finished
