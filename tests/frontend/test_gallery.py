"""The cell gallery: reclassify by key and by drag, mark uncountable, the live differential follows."""

from __future__ import annotations

from typing import Any

from annotations.models import AnnotationSet, Cell
from tests.factories import PASSWORD, CellFactory
from tests.frontend.conftest import BROWSER_TEST, log_in, screenshot
from tests.frontend.world import build_world, eventually

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
    # 2 of mine + 3 open suggestions on the first field (mine do not cover them) + 3 on the second.
    assert page.locator(".crop").count() == 8
    assert counted(page) == 8
    screenshot(page, "gallery")

    # By key: the focused crop (the least certain suggestion comes first in its class) selected with Space, then p.
    focused = page.get_attribute(".crop.focused", "data-key")
    page.keyboard.press(" ")
    page.keyboard.press("p")
    page.wait_for_selector(".diff-table tr[data-class='19']")
    field_id = int(focused.split(":")[0])
    eventually(
        lambda: Cell.objects.filter(
            annotation_set__annotator=world.annotator,
            annotation_set__field_id=field_id,
            cell_class_id=NEUROBLASTOMA_CELL,
        ).exists()
    )

    # By drag: one of my lymphocytes onto "other" in the palette.
    lymphocyte = page.locator(".group[data-group='12'] .crop").first
    lymphocyte.drag_to(page.locator(".palette-drop .class-button[data-class='20']"))
    eventually(lambda: my_set.cells.filter(cell_class_id=OTHER).count() == 1)
    page.wait_for_selector(".diff-table tr[data-class='20']")

    # Uncountable: leaves the count.
    page.locator(".group[data-group='12'] .crop").first.click()
    page.keyboard.press("c")
    eventually(lambda: my_set.cells.filter(countable=False).count() == 1)
    assert counted(page) == 7
    page.wait_for_selector(".group[data-group='uncountable'] .crop")
    page.wait_for_selector(".gallery-side .save-state:has-text('All changes saved')")
    screenshot(page, "gallery-after")
