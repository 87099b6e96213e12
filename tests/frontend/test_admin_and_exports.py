"""The researcher's COCO export (needs the interchange branch and a Celery worker) and the admin's models page."""

from __future__ import annotations

from typing import Any

import pytest

from aicell.roles import Role
from tests.factories import PASSWORD, CellFactory, ModelVersionFactory, UserFactory
from tests.frontend.conftest import BROWSER_TEST, log_in, require_route, screenshot
from tests.frontend.world import build_world, eventually, imported_truth
from tests.training.platform_data import synthetic_truth
from training.models import ModelVersion, PretrainingJob, StartingPoint

pytestmark = BROWSER_TEST


@pytest.fixture
def exports_api() -> None:
    require_route("export-list", "dataset interchange (wt-interchange)")


def test_researcher_builds_and_downloads_a_coco_export(exports_api: None, page: Any, celery_worker_thread: Any) -> None:
    world = build_world(n_fields=1)
    truth = imported_truth(world.fields[0])
    CellFactory(annotation_set=truth, cell_class_id=12)
    UserFactory(username="rita", roles=[Role.RESEARCHER])
    log_in(page, "rita", PASSWORD)
    page.goto("/exports")
    page.wait_for_selector("form.export-form")
    page.select_option("#export-cases", [world.case.code])
    page.click("form.export-form button[type=submit]")
    link = page.wait_for_selector("#export-progress a[id^='download-']", timeout=90_000)
    screenshot(page, "exports")
    with page.expect_download() as download:
        link.click()
    assert download.value.suggested_filename.endswith(".zip")


def test_admin_models_page_speaks_about_each_section(page: Any) -> None:
    UserFactory(username="lena", roles=[Role.ADMIN])
    log_in(page, "lena", PASSWORD)
    page.locator("header.top nav").get_by_role("link", name="Models", exact=True).click()
    for section in ("#training-jobs", "#models", "#pretraining-jobs", "#starting-points", "#schedules"):
        page.wait_for_selector(f"{section} > *")
        # Either the registry's data or a sentence saying the endpoint is not there yet: never an empty box.
        assert page.inner_text(section).strip()
    screenshot(page, "models")


def test_researcher_chooses_the_yolo_format(exports_api: None, page: Any, celery_worker_thread: Any) -> None:
    import zipfile

    world = build_world(n_fields=1)
    truth = imported_truth(world.fields[0])
    CellFactory(annotation_set=truth, cell_class_id=12)
    UserFactory(username="yuri", roles=[Role.RESEARCHER])
    log_in(page, "yuri", PASSWORD)
    page.click("a[href='/exports']")
    page.wait_for_selector("form.export-form")
    page.select_option("#export-cases", [world.case.code])
    page.select_option("#export-format", "yolo")
    page.click("form.export-form button[type=submit]")
    link = page.wait_for_selector("#export-progress a[id^='download-']", timeout=90_000)
    with page.expect_download() as download:
        link.click()
    with zipfile.ZipFile(download.value.path()) as archive:
        assert "data.yaml" in archive.namelist()


def test_exports_page_offers_the_roles_sources_and_lists_model_versions(exports_api: None, page: Any) -> None:
    """Reached by clicking: a researcher is offered consensus and predictions only (annotator work is the admins'),
    the model version is a list of distinct classifier versions with the active one chosen, and a server refusal
    shows next to its field."""
    world = build_world(n_fields=1)
    active = world.predictions[0].model_version
    unused = ModelVersionFactory()  # a candidate without predictions on any field
    UserFactory(username="rita", roles=[Role.RESEARCHER])
    log_in(page, "rita", PASSWORD)
    page.locator("header.top nav").get_by_role("link", name="Exports", exact=True).click()
    page.wait_for_selector("form.export-form")
    offered = page.eval_on_selector_all("input[name=sources]", "inputs => inputs.map(i => i.value)")
    assert offered == ["consensus", "predictions"]
    assert page.locator("#export-model").input_value() == str(active.pk)
    versions = page.eval_on_selector_all("#export-model option", "options => options.map(o => o.value)")
    assert sorted(versions) == sorted({str(active.pk), str(unused.pk)})
    page.check("input[name=sources][value=predictions]")
    page.uncheck("input[name=sources][value=consensus]")
    page.select_option("#export-model", str(unused.pk))
    page.click("form.export-form button[type=submit]")
    error = page.wait_for_selector("[data-field=model_version] .field-error")
    assert f"Model version {unused.pk}" in error.inner_text()
    screenshot(page, "exports-field-error")


def test_admins_are_offered_annotator_work_too(exports_api: None, page: Any) -> None:
    build_world(n_fields=1)
    UserFactory(username="lena", roles=[Role.ADMIN])
    log_in(page, "lena", PASSWORD)
    page.locator("header.top nav").get_by_role("link", name="Exports", exact=True).click()
    page.wait_for_selector("form.export-form")
    offered = page.eval_on_selector_all("input[name=sources]", "inputs => inputs.map(i => i.value)")
    assert offered == ["consensus", "annotations", "predictions"]


def test_admin_promotes_and_rolls_back_on_the_models_page_with_readable_metrics(page: Any) -> None:
    """Reached by clicking: per version the weights it started from, a metrics table with a row per class and its
    support, the learning curve, and promote / roll back with a reason (audited)."""
    world = build_world(n_fields=1)
    active = world.predictions[0].model_version
    candidate = ModelVersionFactory(
        metrics={
            "accuracy": 0.8,
            "per_class": {"12": {"name": "lymphocyte", "precision": 0.9, "recall": 0.75, "f1": 0.82, "support": 12}},
        },
        history=[{"epoch": 1, "member": None, "train_loss": 1.5, "val_metric": None}],
        checkpoints=["classifier/candidate.pt"],
        starting_points=[{"name": "resnet18-in1k", "sha256": "ab" * 32}],
    )
    UserFactory(username="lena", roles=[Role.ADMIN])
    log_in(page, "lena", PASSWORD)
    page.locator("header.top nav").get_by_role("link", name="Models", exact=True).click()
    card = page.locator(f"[data-model='{candidate.pk}']")
    card.wait_for()
    assert "per_class" not in card.inner_text()
    assert card.locator(".starting-points").inner_text() == (
        "Started from resnet18: starting point resnet18-in1k (sha256 abababababab)."
    )
    card.locator("details.per-class summary").click()
    row = card.locator("details.per-class tr", has_text="lymphocyte")
    assert row.locator("td").all_inner_texts() == ["lymphocyte", "0.900", "0.750", "0.820", "12"]
    card.locator("details.learning-curve summary").click()
    assert "no field of a patient in the val split" in card.inner_text()

    card.locator("button.promote").click()
    page.fill("#registry-reason", "better on the held-out set")
    page.click(".dialog button[data-value='ok']")
    eventually(lambda: ModelVersion.objects.get(pk=candidate.pk).status == "active")
    page.locator(f"[data-model='{candidate.pk}'] .tag.active").wait_for()
    assert ModelVersion.objects.get(pk=active.pk).status == "retired"
    screenshot(page, "models-promoted")

    page.locator(f"[data-model='{candidate.pk}'] button.rollback").click()
    page.fill("#registry-reason", "worse on new smears")
    page.click(".dialog button[data-value='ok']")
    eventually(lambda: ModelVersion.objects.get(pk=active.pk).status == "active")
    page.locator(f"[data-model='{active.pk}'] .tag.active").wait_for()


def test_admin_pretrains_a_starting_point_from_the_models_page(page: Any, celery_worker_thread: Any) -> None:
    """Reached by clicking: a refused pretraining request names its field and queues nothing; a valid one runs on the
    worker with live progress and its starting point appears in the list."""
    synthetic_truth(patients=4)
    UserFactory(username="lena", roles=[Role.ADMIN])
    log_in(page, "lena", PASSWORD)
    page.locator("header.top nav").get_by_role("link", name="Models", exact=True).click()
    form = page.locator("form.pretrain-form")
    form.wait_for()
    page.select_option("#pretrain-stage", "countability")
    page.fill("#pretrain-name", "-not-a-name")
    form.locator("button[type=submit]").click()
    form.locator("[data-field='name'] .field-error", has_text="letters, digits").wait_for()
    assert not PretrainingJob.objects.exists()

    page.fill("#pretrain-name", "lab-ssl")
    page.fill("#pretrain-epochs", "1")
    form.locator("button[type=submit]").click()
    job = page.locator("#pretraining-jobs .job").first
    job.wait_for()
    assert "Pretraining" in job.inner_text()
    assert "countability (cpu) as lab-ssl" in job.inner_text()
    page.locator("#pretraining-jobs .job[data-status='succeeded']").wait_for(timeout=120_000)
    row = page.locator("#starting-points tr", has_text="lab-ssl")
    row.wait_for()
    point = StartingPoint.objects.get()
    assert point.name == "lab-ssl"  # one network in the countability stage: no '-<arch>' suffix
    cells = row.locator("td").all_inner_texts()
    assert cells[:3] == [point.name, point.arch, "self-supervised"]
    assert cells[4] == point.sha256[:12]
    assert PretrainingJob.objects.get().parameters["exclude_splits"] == ["test"]  # the form's default
    screenshot(page, "models-pretraining")
