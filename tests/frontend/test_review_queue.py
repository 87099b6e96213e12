"""The review queue: the least certain cell first, its top-3 classes, one key per decision."""

from __future__ import annotations

from typing import Any

from django.urls import Resolver404, resolve

from annotations.models import Cell
from tests.conftest import token_client
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
    # Taken over with /accept (as predicted), then corrected to the chosen class: one cell, naming the model's.
    mine = Cell.objects.filter(annotation_set__annotator=world.annotator, source_cell=least_certain)
    eventually(lambda: mine.filter(cell_class_id=12).exists())
    assert mine.count() == 1
    page.wait_for_selector("#review:has-text('cell 2 of')")


def strategies_listed() -> bool:
    """Whether this checkout has the review-strategy list (it arrives with the registry branch)."""
    try:
        resolve("/api/v1/review-strategies")
    except Resolver404:
        return False
    return True


def test_review_queue_lists_the_strategies_and_reorders_by_one(page: Any) -> None:
    world = build_world(n_fields=1)
    log_in(page, "anna", PASSWORD)
    page.click("header.top nav a:has-text('Review queue')")
    page.wait_for_selector("#choices")
    options = page.locator("#strategy option").all_inner_texts()
    if strategies_listed():
        served = token_client(world.annotator).get("/api/v1/review-strategies").json()
        assert options == [strategy["label"] for strategy in served]
        assert page.locator("#strategies-unlisted").count() == 0
    else:
        # Said in words, and the page offers the strategies the review-queue API accepts.
        assert "not on this server" in page.inner_text("#strategies-unlisted")
        assert options == ["Entropy", "Margin", "Least confidence", "Disagreement", "Detector"]
    page.select_option("#strategy", "margin")
    page.wait_for_selector("#review-source:has-text('margin first')")
    assert page.url.endswith("?strategy=margin")
