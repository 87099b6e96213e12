"""The review queue: the least certain cell first, its top-3 classes, one key per decision."""

from __future__ import annotations

from typing import Any

from annotations.models import Cell
from tests.factories import PASSWORD
from tests.frontend.conftest import BROWSER_TEST, log_in, screenshot
from tests.frontend.world import build_world, eventually

pytestmark = BROWSER_TEST


def test_review_queue_decides_with_one_key(page: Any) -> None:
    world = build_world(n_fields=1)
    least_certain = min(world.suggestions(0), key=lambda cell: cell.confidence or 0.0)
    log_in(page, "anna", PASSWORD)
    page.goto("/review")
    page.wait_for_selector("#choices")
    choices = page.locator("#choices li").all_inner_texts()
    assert len(choices) == 3
    assert choices[0].startswith("a lymphoblast")
    assert "28%" in choices[0]
    screenshot(page, "review-queue")

    page.keyboard.press("s")  # the model's second choice (class 12, lymphocyte)
    decided = eventually(
        lambda: Cell.objects.filter(annotation_set__annotator=world.annotator, source_cell=least_certain).first()
    )
    assert decided.cell_class_id == 12
    page.wait_for_selector("#review:has-text('cell 2 of')")
