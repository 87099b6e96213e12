"""The field annotator's main loop, by keyboard: draw and classify, accept suggestions, a stale-version conflict
that keeps both changes, submit."""

from __future__ import annotations

from typing import Any

from annotations.models import AnnotationSet, AnnotationStatus
from tests.conftest import token_client
from tests.factories import PASSWORD
from tests.frontend.conftest import BROWSER_TEST, log_in, screenshot
from tests.frontend.world import build_world, eventually

pytestmark = BROWSER_TEST

LYMPHOBLAST, LYMPHOCYTE, LYMPHOMA_CELL, MONOCYTE = 11, 12, 13, 16


def wait_saved(page: Any) -> None:
    page.wait_for_selector(".save-state[data-state='saved']")


def my_classes(annotation_set: AnnotationSet) -> list[int | None]:
    return sorted(annotation_set.cells.values_list("cell_class", flat=True), key=lambda c: -1 if c is None else c)


def select_next_suggestion(page: Any) -> None:
    for _ in range(12):
        page.keyboard.press("j")
        if page.locator(".selection .tag.suggestion").count():
            return
    raise AssertionError("no model suggestion reached with j")


def test_annotator_main_loop_by_keyboard(page: Any) -> None:
    world = build_world()
    field = world.fields[0]
    suggestions = world.suggestions(0)
    log_in(page, "anna", PASSWORD)
    page.goto(f"/fields/{field.pk}")
    page.wait_for_selector("#viewer[data-ready='1']")
    assert page.locator(".box-label.suggestion").count() == len(suggestions)
    assert "AI lymphoblast 28%" in page.locator(".box-label.suggestion").all_inner_texts()
    screenshot(page, "annotator")

    # Draw a box with the mouse in the left half of the field, classify it with its key (w = lymphoblast).
    page.keyboard.press("b")
    viewer = page.locator("#viewer").bounding_box()
    x, y = viewer["x"] + viewer["width"] * 0.25, viewer["y"] + viewer["height"] * 0.3
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 40, y + 35, steps=5)
    page.mouse.move(x + 80, y + 70, steps=5)
    page.mouse.up()
    page.wait_for_selector(".selection .tag.mine")
    page.keyboard.press("w")
    wait_saved(page)
    my_set = AnnotationSet.objects.get(field=field, annotator=world.annotator)
    assert my_classes(my_set) == [LYMPHOBLAST]
    drawn = my_set.cells.get()
    assert 20 < drawn.width < 120
    assert 20 < drawn.height < 120
    assert drawn.x + drawn.width < 320

    # Without the mouse: a new box at the centre of the view, moved left, classified (e = lymphocyte).
    page.keyboard.press("Escape")
    page.keyboard.press("n")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("Shift+ArrowDown")
    page.keyboard.press("e")
    wait_saved(page)
    assert my_classes(my_set) == [LYMPHOBLAST, LYMPHOCYTE]

    # Accept one model suggestion as predicted (a), then all the others at once (Shift+A).
    select_next_suggestion(page)
    page.keyboard.press("a")
    wait_saved(page)
    assert my_set.cells.filter(source_cell__in=suggestions).count() == 1
    page.keyboard.press("Shift+A")
    wait_saved(page)
    accepted = my_set.cells.filter(source_cell__isnull=False).values_list("source_cell_id", flat=True)
    assert sorted(accepted) == [s.pk for s in suggestions]
    assert page.locator(".box-label.suggestion").count() == 0

    # Mark one cell uncountable (c).
    page.keyboard.press("j")
    page.keyboard.press("c")
    wait_saved(page)
    assert my_set.cells.filter(countable=False).count() == 1

    # Another tab changes the set: this page's next write is stale (409). The page shows the other change and
    # keeps its own; "keep both" saves it on top.
    my_set.refresh_from_db()
    other_tab = token_client(world.annotator)
    response = other_tab.post(
        f"/api/v1/annotation-sets/{my_set.pk}/cells",
        {"x": 20, "y": 400, "width": 50, "height": 50, "cell_class": MONOCYTE, "version": my_set.version},
        format="json",
    )
    assert response.status_code == 201, response.content
    page.keyboard.press("j")
    page.keyboard.press("r")  # lymphoma cell
    page.wait_for_selector(".dialog.conflict")
    dialog = page.inner_text(".dialog.conflict")
    assert "added a box (monocyte)" in dialog
    assert "class → lymphoma cell" in dialog
    labels = page.locator(".box-label").all_inner_texts()
    assert any("monocyte" in label for label in labels), labels  # the other change, on the field
    assert any("lymphoma cell" in label for label in labels), labels  # mine, not lost
    screenshot(page, "annotator-conflict")
    page.keyboard.press("Enter")  # keep both
    wait_saved(page)
    classes = my_classes(my_set)
    assert MONOCYTE in classes
    assert LYMPHOMA_CELL in classes
    assert my_set.cells.count() == 6

    # The keyboard map, then submit (Ctrl+Enter, confirmed with Enter): the set is locked, the next field opens.
    page.keyboard.press("?")
    page.wait_for_selector(".help")
    screenshot(page, "keyboard-map")
    page.keyboard.press("Escape")
    page.keyboard.press("Control+Enter")
    page.wait_for_selector(".dialog")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/fields/{world.fields[1].pk}")
    my_set.refresh_from_db()
    assert my_set.status == AnnotationStatus.SUBMITTED


def test_submit_with_an_unclassified_cell_is_refused_in_words(page: Any) -> None:
    world = build_world(n_fields=1)
    field = world.fields[0]
    log_in(page, "anna", PASSWORD)
    page.goto(f"/fields/{field.pk}")
    page.wait_for_selector("#viewer[data-ready='1']")
    page.keyboard.press("n")
    wait_saved(page)
    page.keyboard.press("Control+Enter")
    page.wait_for_selector(".notice.error:has-text('have no class yet')")
    eventually(lambda: AnnotationSet.objects.filter(field=field, annotator=world.annotator, status="draft").exists())
