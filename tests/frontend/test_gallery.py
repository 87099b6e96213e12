"""The cell gallery: reclassify by key and by drag, mark uncountable, the live differential follows."""

from __future__ import annotations

from typing import Any

from annotations.models import AnnotationSet, Cell
from tests.factories import PASSWORD, CellFactory, ModelVersionFactory
from tests.frontend.conftest import BROWSER_TEST, log_in, screenshot
from tests.frontend.world import build_world, eventually, imported_truth, token_client

pytestmark = BROWSER_TEST

NEUROBLASTOMA_CELL, OTHER = 19, 20


def counted(page: Any) -> int:
    return int(page.get_attribute(".differential", "data-total"))


def test_gallery_reclassifies_by_key_and_drag_and_counts_live(page: Any) -> None:
    world = build_world()
    # Anna's own draft on the first field: two lymphocytes she drew. The second field has only suggestions.
    my_set = AnnotationSet.objects.create(field=world.fields[0], kind="annotator", annotator=world.annotator)
    for x in (40.0, 150.0):
        CellFactory(annotation_set=my_set, x=x, y=40.0, width=60.0, height=60.0, cell_class_id=12)
    log_in(page, "anna", PASSWORD)
    page.goto(f"/gallery/smear/{world.smear.pk}")
    page.wait_for_selector(".gallery-main[data-ready='1']")
    # 2 of mine + 3 open suggestions on the first field (mine do not cover them) + 3 on the second; my work counts
    # my 2 cells only (the suggestions I have not taken over are shown, not counted).
    assert page.locator(".crop").count() == 8
    assert counted(page) == 2
    assert page.locator("#gallery-source").input_value() == "mine"
    screenshot(page, "gallery")

    # By key: the focused crop (the least certain suggestion comes first in its class) selected with Space, then p.
    focused = page.get_attribute(".crop.focused", "data-key")
    page.keyboard.press(" ")
    page.keyboard.press("p")
    page.wait_for_selector(".diff-table tr[data-class='19']")
    assert counted(page) == 3  # the suggestion taken over is my work now
    field_id = int(focused.split(":")[0])
    eventually(
        lambda: Cell.objects.filter(
            annotation_set__annotator=world.annotator,
            annotation_set__field_id=field_id,
            cell_class_id=NEUROBLASTOMA_CELL,
        ).exists()
    )

    # By drag: one of my lymphocytes onto "other" in the palette, once the page has redrawn after the key's save.
    page.wait_for_selector(".gallery-side .save-state:has-text('All changes saved')")
    lymphocyte = page.locator(".group[data-group='12'] .crop").first
    lymphocyte.drag_to(page.locator(".palette-drop .class-button[data-class='20']"))
    eventually(lambda: my_set.cells.filter(cell_class_id=OTHER).count() == 1)
    page.wait_for_selector(".diff-table tr[data-class='20']")

    # Uncountable: leaves the count.
    page.locator(".group[data-group='12'] .crop").first.click()
    page.keyboard.press("c")
    eventually(lambda: my_set.cells.filter(countable=False).count() == 1)
    assert counted(page) == 2
    page.wait_for_selector(".group[data-group='uncountable'] .crop")
    page.wait_for_selector(".gallery-side .save-state:has-text('All changes saved')")
    screenshot(page, "gallery-after")


def test_gallery_source_switch_counts_as_the_report_and_read_only_has_no_palette(page: Any) -> None:
    """An adjudicator reaches the gallery by clicking (Cases -> Gallery): the consensus by default, read-only (no
    palette, no saving line), counted as the report counts it; switching to the active model shows its cells only,
    never those of an older version, each once."""
    world = build_world()
    truth = imported_truth(world.fields[0])
    for x, cls in ((40.0, 11), (150.0, 12), (260.0, 12)):
        CellFactory(annotation_set=truth, x=x, y=40.0, width=60.0, height=60.0, cell_class_id=cls)
    retired = ModelVersionFactory(status="retired")
    old = AnnotationSet.objects.create(field=world.fields[0], kind="prediction", model_version=retired)
    CellFactory(annotation_set=old, x=40.0, y=40.0, width=60.0, height=60.0, cell_class_id=0)
    log_in(page, "ada", PASSWORD)
    page.locator("header.top nav").get_by_role("link", name="Cases", exact=True).click()
    page.get_by_role("link", name="Gallery").first.click()
    page.wait_for_selector(".gallery-main[data-ready='1']")
    assert page.locator("#gallery-source").input_value() == "consensus"
    report = token_client(world.adjudicator).get(f"/api/v1/cases/{world.case.pk}/differential").json()
    assert page.locator(".crop").count() == 3
    assert counted(page) == report["differential"]["n_counted"] == 3
    assert page.locator(".palette-drop").count() == 0
    assert page.locator(".save-state").count() == 0
    page.wait_for_selector(".read-only-note")

    page.locator("#gallery-source").select_option("model")
    page.wait_for_selector(".gallery-main[data-ready='1']")
    page.wait_for_function("document.querySelector('#gallery-source').value === 'model'")
    model = (
        token_client(world.adjudicator).get(f"/api/v1/cases/{world.case.pk}/differential", {"source": "model"}).json()
    )
    active_cells = sum(prediction.cells.count() for prediction in world.predictions)
    eventually(lambda: page.locator(".crop").count() == active_cells)
    keys = page.eval_on_selector_all(".crop", "crops => crops.map(c => c.dataset.key)")
    assert len(keys) == len(set(keys))
    assert page.locator(".group[data-group='0'] .crop").count() == 0  # the retired version's myeloblast
    assert counted(page) == model["differential"]["n_counted"]
    assert page.locator(".palette-drop").count() == 0
    screenshot(page, "gallery-model-source")


def test_a_read_only_field_view_shows_no_editing_affordances(page: Any) -> None:
    """An adjudicator opens a field from the gallery (double click): the truth, read-only, says so in a sentence and
    shows no palette, no drawing tools, no Submit and no "n adds a box"."""
    world = build_world()
    truth = imported_truth(world.fields[0])
    CellFactory(annotation_set=truth, x=40.0, y=40.0, width=60.0, height=60.0, cell_class_id=12)
    log_in(page, "ada", PASSWORD)
    page.locator("header.top nav").get_by_role("link", name="Cases", exact=True).click()
    page.get_by_role("link", name="Gallery").first.click()
    page.wait_for_selector(".gallery-main[data-ready='1']")
    page.locator(".crop").first.dblclick()
    banner = page.wait_for_selector(".read-only")
    assert banner.inner_text().endswith(".")
    assert "only annotators change boxes" in banner.inner_text()
    side = page.locator(".side, aside").first
    assert page.locator(".class-button").count() == 0
    assert page.get_by_role("button", name="Submit").count() == 0
    assert page.get_by_role("button", name="New box").count() == 0
    assert "adds a box" not in side.inner_text()
    screenshot(page, "annotator-read-only")


def test_labels_of_overlapping_boxes_show_on_selection_only(page: Any) -> None:
    world = build_world()
    truth = imported_truth(world.fields[0])
    for x in (40.0, 70.0):  # two overlapping boxes
        CellFactory(annotation_set=truth, x=x, y=40.0, width=60.0, height=60.0, cell_class_id=12)
    CellFactory(annotation_set=truth, x=400.0, y=300.0, width=60.0, height=60.0, cell_class_id=16)  # alone
    log_in(page, "ada", PASSWORD)
    page.locator("header.top nav").get_by_role("link", name="Cases", exact=True).click()
    page.get_by_role("link", name="Gallery").first.click()
    page.wait_for_selector(".gallery-main[data-ready='1']")
    page.locator(".crop").first.dblclick()
    page.wait_for_selector(".read-only")
    page.wait_for_function("document.querySelectorAll('.box-label').length >= 3")
    assert page.locator(".box-label.crowded").count() >= 2  # the two truth boxes (and suggestions over them)
    assert page.locator(".box-label.crowded:visible").count() == 0
    assert page.locator(".box-label:not(.crowded):visible").count() >= 1
    page.keyboard.press("j")
    page.wait_for_selector(".box-label.revealed")
    screenshot(page, "annotator-crowded-labels")


def test_a_2000_cell_case_gallery_paints_progressively_and_shows_every_cell(page: Any) -> None:
    """Issue 13: a 2,000-cell case's gallery paints its first crops, then the rest frame by frame, until every cell
    is shown once. How fast the first paint is (goal 1 s) is measured by `python -m benchmarks.ui`, not here."""
    world = build_world()
    for field in world.fields:
        truth = imported_truth(field)
        Cell.objects.bulk_create(
            Cell(
                annotation_set=truth,
                x=float((i * 37) % 560),
                y=float((i * 53) % 400),
                width=60.0,
                height=60.0,
                cell_class_id=i % 21,
            )
            for i in range(1000)
        )
    log_in(page, "ada", PASSWORD)
    page.locator("header.top nav").get_by_role("link", name="Cases", exact=True).click()
    link = page.get_by_role("link", name="Gallery").first
    link.wait_for()
    link.click()
    page.wait_for_selector(".gallery-main[data-ready='1'] .crop", state="visible")
    eventually(lambda: page.locator(".crop").count() == 2000)
