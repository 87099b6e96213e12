"""The cross-check, as the second annotator: A's and B's versions side by side; B concedes. Needs the
double-review branch (assignments, conflicts); skipped outside CI where its endpoints are missing."""

from __future__ import annotations

from typing import Any

from tests.conftest import token_client
from tests.factories import PASSWORD
from tests.frontend.conftest import BROWSER_TEST, log_in, require_route, screenshot
from tests.frontend.world import build_world, eventually

pytestmark = BROWSER_TEST


def annotate_and_submit(user: Any, field_id: int, cell_class: int) -> None:
    client = token_client(user)
    created = client.post("/api/v1/annotation-sets", {"field": field_id}, format="json")
    assert created.status_code == 201, created.content
    set_id, version = created.json()["id"], created.json()["version"]
    box = {"x": 100, "y": 100, "width": 60, "height": 60, "cell_class": cell_class, "version": version}
    cell = client.post(f"/api/v1/annotation-sets/{set_id}/cells", box, format="json")
    assert cell.status_code == 201, cell.content
    submitted = client.post(f"/api/v1/annotation-sets/{set_id}/submit", {"version": version + 1}, format="json")
    assert submitted.status_code == 200, submitted.content


def test_second_annotator_concedes_a_conflict(page: Any) -> None:
    require_route("conflict-list", "double-review (wt-review)")
    world = build_world(n_fields=1)
    field = world.fields[0]
    # Same box, different class: one class conflict once both have submitted.
    annotate_and_submit(world.annotator, field.pk, 11)
    annotate_and_submit(world.second_annotator, field.pk, 12)

    log_in(page, "bert", PASSWORD)
    page.goto("/crosscheck")
    page.wait_for_selector(f"table.crosscheck-list tr[data-field='{field.pk}']")
    screenshot(page, "crosscheck-list")
    page.goto(f"/crosscheck/{field.pk}")
    page.wait_for_selector("#conflict-status:has-text('open')")
    versions = page.locator(".card.version").all_inner_texts()
    assert any("lymphoblast" in text for text in versions)
    assert any("lymphocyte" in text for text in versions)
    screenshot(page, "crosscheck")

    page.keyboard.press("a")  # concede: take the other annotator's version
    page.wait_for_selector("#conflict-status:has-text('resolved')")
    adjudicator = token_client(world.adjudicator)
    conflicts = eventually(lambda: adjudicator.get(f"/api/v1/conflicts?field={field.pk}").json()["results"])
    assert [c["status"] for c in conflicts] == ["resolved"]


def test_adjudicator_decides_a_class_from_the_palette(page: Any) -> None:
    require_route("conflict-list", "double-review (wt-review)")
    world = build_world(n_fields=1)
    field = world.fields[0]
    annotate_and_submit(world.annotator, field.pk, 11)
    annotate_and_submit(world.second_annotator, field.pk, 12)
    # Both keep their version: the conflict goes to adjudication.
    for user in (world.annotator, world.second_annotator):
        client = token_client(user)
        conflict = client.get(f"/api/v1/conflicts?field={field.pk}").json()["results"][0]
        body = {"decision": "keep", "version": conflict["version"]}
        response = client.post(f"/api/v1/conflicts/{conflict['id']}/resolve", body, format="json")
        assert response.status_code == 200, response.content

    log_in(page, "ada", PASSWORD)
    page.click("header.top nav a:has-text('Cross-check')")
    page.click(f"table.crosscheck-list tr[data-field='{field.pk}'] a.button")
    page.wait_for_selector("#conflict-status:has-text('escalated')")
    screenshot(page, "crosscheck-adjudicator")
    page.fill("#reason", "a lymphoma cell, not a lymphocyte")
    page.click("#crosscheck .palette .class-button[data-class='13']")  # lymphoma cell: the box with that class
    page.wait_for_selector("#conflict-status:has-text('adjudicated')")
    adjudicator = token_client(world.adjudicator)
    decided = adjudicator.get(f"/api/v1/conflicts?field={field.pk}").json()["results"][0]
    assert decided["resolution"] == "custom"
    assert decided["final_cell"]["cell_class"] == 13
    assert decided["reason"] == "a lymphoma cell, not a lymphocyte"
