"""Browser tests: the built UI served by a live Django server, driven through the machine's Chromium by Playwright.

The UI must be built (`make frontend`); the session builds it when it is missing and npm is available, and fails
with a clear message otherwise. Under CI=true a missing Chromium is a failure, elsewhere a skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connections
from django.urls import NoReverseMatch, reverse

from tests.conftest import IN_CI

# Playwright's sync API keeps an event loop running in the test thread, which Django takes for async code and
# refuses database access from; the tests are plain synchronous code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
VIEWPORT = {"width": 1366, "height": 768}
BROWSER_TEST = pytest.mark.browser
FRONTEND = settings.BASE_DIR / "frontend"
DIST = FRONTEND / "dist"
SCREENSHOTS = settings.BASE_DIR / "test-output" / "screenshots"
# The machine running CI is shared and slow; waits are generous, they end as soon as the page is ready.
TIMEOUT_MS = 30_000


def _build_frontend() -> None:
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("frontend/dist is not built and npm is not installed: run `make frontend` (Node.js 20.19+).")
    for command in ([npm, "ci", "--no-audit", "--no-fund"], [npm, "run", "build"]):
        result = subprocess.run(command, cwd=FRONTEND, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            pytest.fail(f"`{' '.join(command)}` failed in frontend/:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")


@pytest.fixture(scope="session", autouse=True)
def _static_root() -> None:
    # whitenoise warns about a missing STATIC_ROOT at every request; these servers serve through the finders.
    Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)


@pytest.fixture(scope="session")
def frontend_dist() -> Path:
    if not (DIST / "index.html").exists():
        _build_frontend()
    # Settings were read before a build in this session could create the folder: serve it from now on.
    if DIST not in [Path(d) for d in settings.STATICFILES_DIRS]:
        from django.contrib.staticfiles.finders import get_finder

        settings.STATICFILES_DIRS = [*settings.STATICFILES_DIRS, DIST]
        get_finder.cache_clear()
    return DIST


@pytest.fixture(scope="session")
def browser(frontend_dist: Path) -> Iterator[Any]:
    if not CHROMIUM.exists():
        message = f"Chromium is not installed at {CHROMIUM} (apt-get install chromium; `make test` does it)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    # Playwright's sync API marks its event loop as running in this thread, so from its start on Django keeps the
    # thread's database connections in async-context storage: another connection object (same test database), which
    # lacks the rows Django serialized to restore after each committed test's flush. Hand it them.
    serialized = getattr(connections["default"], "_test_serialized_contents", None)
    with sync_playwright() as playwright:
        if serialized is not None:
            connections["default"]._test_serialized_contents = serialized
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, live_server: Any, committed_db: None) -> Iterator[Any]:
    """A fresh browser context at 1366x768 on the live server (which sees committed data only). JavaScript errors
    fail the test."""
    cache.clear()  # the login throttle counts per address; tests log in many times
    context = browser.new_context(viewport=VIEWPORT, base_url=live_server.url)
    context.set_default_timeout(TIMEOUT_MS)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def screenshot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def log_in(page: Any, username: str, password: str) -> None:
    page.goto("/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("form.login button[type=submit]")
    page.wait_for_selector("header.top nav")


def require_route(name: str, branch: str, **kwargs: Any) -> None:
    """A test whose endpoint arrives with another branch: outside CI it skips while the endpoint is missing; under
    CI it fails at once, saying which branch it needs (CI runs every browser test)."""
    try:
        reverse(name, kwargs=kwargs or None)
    except NoReverseMatch:
        reason = f"the {name} endpoint is not in this checkout (it arrives with the {branch} branch)"
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
