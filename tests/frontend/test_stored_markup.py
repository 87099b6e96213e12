"""Stored markup (issue 9, hostile input): text that users typed (rule labels and hints, an adjudicator's reason)
carrying script payloads is shown by the UI as text, and none of it runs. The API stores free text verbatim
(tests/reliability/test_hostile_input.py); escaping is the UI's job, and this drives the real browser to prove it."""

from __future__ import annotations

from typing import Any

from aicell.roles import Role
from tests.conftest import token_client
from tests.factories import PASSWORD, CellFactory, UserFactory
from tests.frontend.conftest import BROWSER_TEST, log_in, require_route, screenshot
from tests.frontend.test_crosscheck import annotate_and_submit
from tests.frontend.world import build_world, imported_truth
from tests.reliability.test_hostile_input import XSS

pytestmark = BROWSER_TEST


def assert_shown_as_text(page: Any) -> None:
    assert XSS in page.inner_text("body")
    assert page.evaluate("() => window.__xss || 0") == 0, "a stored payload ran in the page"
    assert page.locator("img[src='x']").count() == 0
    assert page.locator("body script:not([src])").count() == 0


def test_rule_set_text_with_markup_is_rendered_as_text_in_the_case_report(page: Any) -> None:
    require_route("case-differential", "differential (wt-differential)", pk=1)
    world = build_world(n_fields=1)
    truth = imported_truth(world.fields[0])
    for i in range(20):
        CellFactory(annotation_set=truth, x=5.0 + 30 * i, y=10.0, width=20.0, height=20.0, cell_class_id=11)
    content = {
        "description": XSS,
        "min_cells": 10,
        "ci_gate": False,
        "rules": [
            {
                "id": "ALL",
                "label": XSS,
                "numerator": ["lymphoblast"],
                "operator": ">",
                "threshold_percent": 20,
                "hints": [{"id": "X1", "text": XSS}],
            }
        ],
    }
    admin = token_client(UserFactory(roles=[Role.ADMIN]))
    created = admin.post("/api/v1/rule-sets", {"name": "xss", "content": content, "activate": True}, format="json")
    assert created.status_code == 201, created.json()
    log_in(page, "anna", PASSWORD)
    page.goto(f"/cases/{world.case.pk}")
    page.wait_for_selector("#diagnosis")
    assert_shown_as_text(page)
    screenshot(page, "stored-markup-report")


def test_an_adjudicators_reason_with_markup_is_rendered_as_text_in_the_crosscheck(page: Any) -> None:
    require_route("conflict-list", "double-review (wt-review)")
    world = build_world(n_fields=1)
    field = world.fields[0]
    annotate_and_submit(world.annotator, field.pk, 11)
    annotate_and_submit(world.second_annotator, field.pk, 12)
    adjudicator = token_client(world.adjudicator)
    conflict = adjudicator.get(f"/api/v1/conflicts?field={field.pk}").json()["results"][0]
    decided = adjudicator.post(
        f"/api/v1/conflicts/{conflict['id']}/resolve",
        {"decision": "a", "reason": XSS, "version": conflict["version"]},
        format="json",
    )
    assert decided.status_code == 200, decided.json()
    log_in(page, "anna", PASSWORD)
    page.goto(f"/crosscheck/{field.pk}")
    page.wait_for_function("text => document.body.innerText.includes(text)", arg=XSS)
    assert_shown_as_text(page)
    screenshot(page, "stored-markup-crosscheck")
