"""A lab's day from a fresh database, through the browser alone (pages reached by clicking the navigation; the test
makes no API call): the lab admin (made with `manage.py create_user`) creates the team on the Users page, brings
a patient, case, smear and three fields in on the Intake page and gives them to two annotators on the Assignment
page; both annotate blind by keyboard and submit; they cross-check their one disagreement and both keep their
version; the adjudicator settles it; the case report shows the counts and its PDF downloads; the researcher
exports COCO and the zip loads in pycocotools. Every page of every role is photographed."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command

from annotations.models import Conflict, Field, FieldStatus
from tests.frontend.conftest import BROWSER_TEST, screenshot
from tests.frontend.world import eventually

pytestmark = BROWSER_TEST

PASSWORD = "a day at the lab 2026"
DEMO_IMAGES = sorted((settings.BASE_DIR / "demo" / "bccd" / "JPEGImages").glob("*.jpg"))[:3]
TEAM = (("anna", "annotator"), ("bert", "annotator"), ("ada", "adjudicator"), ("rita", "researcher"))


def log_in(page: Any, username: str) -> None:
    page.goto("/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("form.login button[type=submit]")
    page.wait_for_selector("header.top nav")
    page.wait_for_selector(".home-blocks")


def log_out(page: Any) -> None:
    page.click("header.top button:has-text('Log out')")
    page.wait_for_selector("form.login")


def nav(page: Any, label: str) -> None:
    page.click(f"header.top nav a:has-text('{label}')")


def screenshot_every_page(page: Any, role: str) -> None:
    """Each page of the role's navigation, once drawn, under test-output/screenshots/<role>-page-<name>.png."""
    for label in page.locator("header.top nav a").all_inner_texts():
        page.click(f"header.top nav a:text-is('{label}')")
        page.wait_for_selector(".page[data-loaded='1']")
        screenshot(page, f"{role}-page-{label.lower().replace(' ', '-')}")


def admin_builds_the_team(page: Any) -> None:
    nav(page, "Users")
    page.wait_for_selector("table.users")
    # Bad input: the server's reasons show next to each field.
    page.fill("#new-username", "labadmin")
    page.fill("#new-password", "123")
    page.click("#user-form button[type=submit]")
    page.wait_for_selector(".field-error[data-for='username']:has-text('taken')")
    assert page.inner_text(".field-error[data-for='password']")
    assert page.inner_text(".field-error[data-for='roles']")
    screenshot(page, "admin-users-errors")
    for username, role in TEAM:
        page.fill("#new-username", username)
        page.fill("#new-password", PASSWORD)
        page.check(f"#user-form input[name=role][value={role}]")
        page.click("#user-form button[type=submit]")
        page.wait_for_selector(f"table.users tr[data-user='{username}']")
    screenshot(page, "admin-users")


def admin_brings_fields_in(page: Any, tmp_path: Path) -> None:
    nav(page, "Intake")
    page.wait_for_selector("#patient-form")
    page.fill("#patient-code", "Jane Doe")
    page.fill("#patient-birth-year", "1850")
    page.click("#patient-form button[type=submit]")
    page.wait_for_selector("#patient-form .field-error[data-for='code']:not(:empty)")
    assert page.inner_text("#patient-form .field-error[data-for='birth_year']")
    page.fill("#patient-code", "P-LAB1")
    page.fill("#patient-birth-year", "2016")
    page.select_option("#patient-form select[name=sex]", "F")
    page.click("#patient-form button[type=submit]")
    page.wait_for_function("document.querySelector('#patient-pick').selectedOptions[0]?.text === 'P-LAB1'")
    page.fill("#case-code", "C-LAB1")
    page.select_option("#case-form select[name=confirmed_diagnosis]", "ALL")
    page.click("#case-form button[type=submit]")
    page.wait_for_function("document.querySelector('#case-pick').selectedOptions[0]?.text === 'C-LAB1'")
    page.fill("#smear-code", "S1")
    page.fill("#smear-date", "2026-12-01")
    page.click("#smear-form button[type=submit]")
    page.wait_for_function("document.querySelector('#smear-pick').selectedOptions[0]?.text.startsWith('S1')")
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")
    page.set_input_files("#field-files", [*map(str, DEMO_IMAGES), str(notes)])
    page.wait_for_selector("#upload-summary:has-text('3 stored, 1 refused, 0 to go')")
    refused = page.inner_text("#upload-list li.refused")
    assert "notes.txt" in refused
    page.wait_for_function("document.querySelectorAll('#field-list figure.thumb').length === 3")
    screenshot(page, "admin-intake")
    # The same image again: refused as a duplicate of the stored field, nothing stored twice.
    page.set_input_files("#field-files", [str(DEMO_IMAGES[0])])
    page.wait_for_selector("#upload-list li.refused:has-text('already stored as field')")
    assert Field.objects.count() == 3


def admin_assigns(page: Any) -> list[int]:
    nav(page, "Assignment")
    page.wait_for_selector("#assign-fields table.assign")
    field_ids = sorted(Field.objects.values_list("pk", flat=True))
    page.check("#select-all")
    page.select_option("#annotator-a", label="anna (0 open)")
    page.select_option("#annotator-b", label="bert (0 open)")
    screenshot(page, "admin-assignment-choose")
    page.click("#assign-chosen")
    # "Waiting for assignment" empties; every field shows both annotators under "any state".
    page.wait_for_selector("#assign-fields p.empty")
    page.select_option("#assign-state", "")
    page.wait_for_function("document.querySelectorAll('#assign-fields .chip').length === 6")
    assert page.inner_text("#annotator-loads tr[data-annotator='anna'] td.open") == "3"
    # Take one back, then let the workload balance give it out again.
    page.click(f"tr[data-field='{field_ids[2]}'] .chip[data-annotator='bert'] button.take-back")
    page.click(".dialog button.primary")
    page.wait_for_function("document.querySelectorAll('#assign-fields .chip').length === 5")
    page.check(f"tr[data-field='{field_ids[2]}'] input[type=checkbox]")
    page.click("#assign-auto")
    page.wait_for_function("document.querySelectorAll('#assign-fields .chip').length === 6")
    screenshot(page, "admin-assignment")
    return field_ids


def annotate_all(page: Any, username: str, classes: list[str]) -> None:
    """Each field in worklist order: a box at the centre of the view (n), its class by key, submit (Ctrl+Enter)."""
    log_in(page, username)
    assert page.inner_text("#home-annotator [data-stat='to-annotate'] .stat-value") == "3"
    page.wait_for_selector("table.worklist img.thumb-small")
    screenshot(page, f"annotator-home-{username}")
    page.click("table.worklist tbody tr:first-child a.button")
    for index, key in enumerate(classes):
        page.wait_for_selector("#viewer[data-ready='1']")
        page.keyboard.press("n")
        page.keyboard.press(key)
        page.wait_for_selector(".save-state[data-state='saved']")
        if index == 0:
            screenshot(page, f"annotator-field-{username}")
        before = page.url
        page.keyboard.press("Control+Enter")
        page.wait_for_selector(".dialog")
        page.keyboard.press("Enter")
        page.wait_for_url(lambda url, before=before: url != before)
    page.wait_for_selector(".home-blocks")
    log_out(page)


def keep_my_version(page: Any, username: str, field_id: int) -> None:
    log_in(page, username)
    assert page.inner_text("#home-annotator [data-stat='conflicts'] .stat-value") == "1"
    nav(page, "Cross-check")
    page.click(f"table.crosscheck-list tr[data-field='{field_id}'] a.button")
    page.wait_for_selector("#conflict-status:has-text('open')")
    screenshot(page, f"annotator-crosscheck-{username}")
    page.keyboard.press("s")  # keep mine
    page.wait_for_selector(".card.version")
    eventually(
        lambda: (
            Conflict.objects.filter(field_id=field_id)
            .exclude(**{f"decision_{'a' if username == 'anna' else 'b'}": ""})
            .exists()
        )
    )
    screenshot_every_page(page, f"annotator-{username}")
    log_out(page)


def test_a_lab_day_through_the_ui(page: Any, celery_worker_thread: Any, tmp_path: Path) -> None:
    call_command("create_user", "labadmin", "--role", "admin", "--password-from-stdin", stdin=io.StringIO(PASSWORD))
    log_in(page, "labadmin")
    screenshot(page, "admin-home")
    admin_builds_the_team(page)
    admin_brings_fields_in(page, tmp_path)
    field_ids = admin_assigns(page)
    nav(page, "Home")
    page.wait_for_selector("#home-admin [data-stat='waiting'] .stat-value:text-is('0')")
    screenshot(page, "admin-home-after")
    screenshot_every_page(page, "admin")
    log_out(page)

    # Blind annotation: they agree on fields 2 and 3 (lymphocyte) and differ on field 1 (lymphoblast / lymphocyte).
    annotate_all(page, "anna", ["w", "e", "e"])
    annotate_all(page, "bert", ["e", "e", "e"])
    first = field_ids[0]
    eventually(lambda: Field.objects.get(pk=first).status == FieldStatus.IN_CROSSCHECK)
    assert Field.objects.filter(pk__in=field_ids[1:], status=FieldStatus.CONSENSUS).count() == 2

    keep_my_version(page, "anna", first)
    keep_my_version(page, "bert", first)
    eventually(lambda: Field.objects.get(pk=first).status == FieldStatus.IN_ADJUDICATION)

    # The adjudicator settles it: A's version (lymphoblast).
    log_in(page, "ada")
    assert page.inner_text("#home-adjudicator [data-stat='escalated'] .stat-value") == "1"
    screenshot(page, "adjudicator-home")
    nav(page, "Cross-check")
    page.click(f"table.crosscheck-list tr[data-field='{first}'] a.button")
    page.wait_for_selector("#conflict-status:has-text('escalated')")
    screenshot(page, "adjudicator-crosscheck")
    page.keyboard.press("h")
    page.wait_for_selector("#conflict-status:has-text('adjudicated')")
    eventually(lambda: Field.objects.get(pk=first).status == FieldStatus.CONSENSUS)

    # The case report: one lymphoblast, two lymphocytes; the PDF downloads.
    nav(page, "Cases")
    page.click("tr[data-case] a:has-text('C-LAB1')")
    page.wait_for_selector(".differential-table")
    assert page.locator(".differential-table tr[data-class='11'] td").nth(1).inner_text() == "1"
    assert page.locator(".differential-table tr[data-class='12'] td").nth(1).inner_text() == "2"
    screenshot(page, "adjudicator-report")
    with page.expect_download() as pdf:
        page.click("#download-pdf")
    assert pdf.value.suggested_filename.endswith(".pdf")
    assert Path(pdf.value.path()).read_bytes().startswith(b"%PDF")
    # The gallery of the same case and source (consensus) counts what the report counts.
    page.click("a:has-text('Cell gallery')")
    page.wait_for_selector(".gallery-main[data-ready='1']")
    assert page.input_value("#gallery-source") == "consensus"
    assert page.get_attribute(".differential", "data-total") == "3"
    assert page.locator(".diff-table tr[data-class='11'] td").nth(1).inner_text() == "1"
    assert page.locator(".diff-table tr[data-class='12'] td").nth(1).inner_text() == "2"
    screenshot(page, "adjudicator-gallery")
    screenshot_every_page(page, "adjudicator")
    log_out(page)

    # The researcher exports COCO; the zip loads in pycocotools.
    log_in(page, "rita")
    screenshot(page, "researcher-home")
    nav(page, "Exports")
    page.wait_for_selector("form.export-form")
    page.select_option("#export-cases", ["C-LAB1"])
    page.click("form.export-form button[type=submit]")
    link = page.wait_for_selector("#export-progress a[id^='download-']", timeout=90_000)
    screenshot(page, "researcher-exports")
    with page.expect_download() as download:
        link.click()
    archive = zipfile.ZipFile(download.value.path())
    from pycocotools.coco import COCO

    names = [name for name in archive.namelist() if name.startswith("annotations/instances_")]
    assert names
    total = 0
    for name in names:
        target = tmp_path / Path(name).name
        target.write_bytes(archive.read(name))
        coco = COCO(str(target))
        total += len(coco.getAnnIds())
        assert json.loads(target.read_text())["images"]
    assert total == 3
    nav(page, "Home")
    page.wait_for_selector("#home-researcher [data-stat='exports'] .stat-value:text-is('1')")
    screenshot_every_page(page, "researcher")
