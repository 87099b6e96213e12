"""The review queue: the least certain cell first, its top-3 classes, one key per decision."""

from __future__ import annotations

from typing import Any

from django.urls import Resolver404, resolve, reverse

from annotations.models import Cell, CellDecision, CellReview, Conflict
from inference.models import ReviewClaim
from tests.conftest import token_client
from tests.factories import PASSWORD
from tests.frontend.conftest import BROWSER_TEST, log_in, screenshot
from tests.frontend.world import build_world, eventually

pytestmark = BROWSER_TEST


def test_review_queue_decides_with_one_key(page: Any) -> None:
    world = build_world(n_fields=1)
    least_certain = min(world.suggestions(0), key=lambda cell: cell.confidence or 0.0)
    log_in(page, "anna", PASSWORD)
    page.click("header.top nav a:has-text('Review queue')")
    page.wait_for_selector("#choices")
    choices = page.locator("#choices li").all_inner_texts()
    assert len(choices) == 3
    assert choices[0].startswith("a lymphoblast")
    assert "28%" in choices[0]
    screenshot(page, "review-queue")

    page.keyboard.press("s")  # the model's second choice (class 12, lymphocyte)
    # A blind decision on the model's cell, not a cell of an annotation set.
    mine = CellDecision.objects.filter(reviewer=world.annotator, review__cell=least_certain)
    eventually(lambda: mine.filter(cell_class_id=12, verdict="class").exists())
    page.wait_for_selector("#review-position:has-text('cell 2 of')")
    page.wait_for_selector("#progress:has-text('decided today: 1')")
    assert not Cell.objects.filter(annotation_set__annotator=world.annotator).exists()
    # Undo takes the decision back (the other reviewer has not decided yet) and shows the cell again.
    page.keyboard.press("Control+z")
    page.wait_for_selector("#review-position:has-text('cell 1 of')")
    eventually(lambda: not mine.exists())


def test_a_decision_that_fails_to_save_stops_the_page_until_retried(page: Any) -> None:
    world = build_world(n_fields=1)
    log_in(page, "anna", PASSWORD)
    page.click("header.top nav a:has-text('Review queue')")
    page.wait_for_selector("#choices")
    held = list(ReviewClaim.objects.filter(reviewer=world.annotator).values_list("cell_id", "expires_at"))
    ReviewClaim.objects.filter(reviewer=world.annotator).delete()  # the hold is gone: the server refuses

    page.keyboard.press("s")
    page.wait_for_selector("#review-error")
    assert "do not hold" in page.inner_text("#review-error")
    assert "cell 1 of" in page.inner_text("#review-position")  # the page did not move on
    assert not CellDecision.objects.exists()

    ReviewClaim.objects.bulk_create(
        [ReviewClaim(cell_id=cell_id, reviewer=world.annotator, expires_at=expires) for cell_id, expires in held]
    )
    page.click("#review-retry")
    page.wait_for_selector("#review-position:has-text('cell 2 of')")
    assert page.locator("#review-error").count() == 0
    assert CellDecision.objects.filter(reviewer=world.annotator).count() == 1


def test_leaving_the_page_releases_the_hold(page: Any) -> None:
    world = build_world(n_fields=1)
    log_in(page, "anna", PASSWORD)
    page.click("header.top nav a:has-text('Review queue')")
    page.wait_for_selector("#choices")
    assert ReviewClaim.objects.filter(reviewer=world.annotator).exists()
    page.click("header.top nav a:has-text('Home')")
    eventually(lambda: not ReviewClaim.objects.filter(reviewer=world.annotator).exists())


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
        assert options == [
            "Entropy",
            "Margin",
            "Least confidence",
            "Disagreement",
            "Detector",
            "Countability",
            "Random",
        ]
    page.select_option("#strategy", "margin")
    page.wait_for_selector("#review-source:has-text('margin first')")
    assert page.url.endswith("?strategy=margin")


def test_the_adjudicator_decides_escalated_cells_first_in_the_queue(page: Any) -> None:
    world = build_world(n_fields=1)
    cell = min(world.suggestions(0), key=lambda c: c.confidence or 0.0)
    anna, bert = token_client(world.annotator), token_client(world.second_annotator)
    for client, body in ((anna, {"verdict": "class", "cell_class": 11}), (bert, {"verdict": "not_a_cell"})):
        assert client.get("/api/v1/review-queue", {"limit": 10}).status_code == 200
        response = client.post("/api/v1/review-queue/decisions", {"cell": cell.pk, **body}, format="json")
        assert response.status_code == 201, response.content
    conflict = Conflict.objects.get(cell_review__cell=cell)
    for client, version in ((anna, 1), (bert, 2)):
        response = client.post(
            f"/api/v1/conflicts/{conflict.pk}/resolve", {"decision": "keep", "version": version}, format="json"
        )
        assert response.status_code == 200, response.content

    log_in(page, "ada", PASSWORD)
    page.click("header.top nav a:has-text('Review queue')")
    page.wait_for_selector("#escalated")
    # The cell is shown on its crop: the field's image around both reviewers' boxes, large enough to judge.
    crop = page.locator(f"#escalated li[data-conflict='{conflict.pk}'] .conflict-crop")
    crop.wait_for()
    assert reverse("field-image", kwargs={"pk": cell.annotation_set.field_id}) in crop.evaluate(
        "element => getComputedStyle(element).backgroundImage"
    )
    assert crop.locator(".mark").count() == 2
    assert (crop.bounding_box() or {}).get("width", 0) >= 224
    text = page.inner_text("#escalated")
    assert "lymphoblast" in text
    assert "not a white cell" in text
    page.click("#escalated button:has-text('B is right')")
    page.wait_for_selector("#escalated", state="detached")
    review = CellReview.objects.get(cell=cell)
    eventually(lambda: CellReview.objects.filter(pk=review.pk, status="truth", verdict="not_a_cell").exists())
