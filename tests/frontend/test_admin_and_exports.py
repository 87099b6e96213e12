"""The researcher's COCO export (needs the interchange branch and a Celery worker) and the admin's models page."""

from __future__ import annotations

from typing import Any

import pytest

from aicell.roles import Role
from tests.factories import PASSWORD, CellFactory, UserFactory
from tests.frontend.conftest import BROWSER_TEST, log_in, require_route, screenshot
from tests.frontend.world import build_world, imported_truth

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
    page.goto("/models")
    for section in ("#training-jobs", "#models", "#schedules"):
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
