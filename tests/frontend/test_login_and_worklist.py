"""Login (errors in words) and the worklist of an annotator."""

from __future__ import annotations

from typing import Any

from tests.factories import PASSWORD
from tests.frontend.conftest import BROWSER_TEST, log_in, screenshot
from tests.frontend.world import build_world

pytestmark = BROWSER_TEST


def test_login_refuses_a_wrong_password_in_words_then_shows_the_worklist(page: Any) -> None:
    world = build_world()
    page.goto("/")
    page.wait_for_selector("form.login")  # not logged in: sent to the login page
    assert page.url.endswith("/login?next=%2F")
    screenshot(page, "login")

    page.fill("#username", "anna")
    page.fill("#password", "not-the-password")
    page.click("form.login button[type=submit]")
    page.wait_for_selector(".form-error:has-text('Wrong username or password.')")

    log_in(page, "anna", PASSWORD)
    page.goto("/")
    page.wait_for_selector("table.worklist")
    rows = page.locator("table.worklist tbody tr")
    assert rows.count() == len(world.fields)
    assert page.locator(".case-block h2").first.inner_text().startswith(f"Case {world.case.code}")
    screenshot(page, "worklist")
