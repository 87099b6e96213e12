"""The app shell: the built index.html at / and at every client route, with a CSRF cookie; API paths stay the API's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from frontend import views

pytestmark = pytest.mark.django_db


@pytest.fixture
def built_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    index = tmp_path / "index.html"
    index.write_text('<!doctype html><script type="module" src="/static/assets/index-abcd1234.js"></script>')
    monkeypatch.setattr(views, "INDEX", index)
    return index


@pytest.mark.parametrize("path", ["/", "/fields/12", "/gallery/case/3", "/crosscheck/7", "/cases/2"])
def test_every_client_route_gets_the_built_shell_with_a_csrf_cookie(built_index: Path, path: str) -> None:
    response = Client().get(path)
    assert response.status_code == 200
    assert response.content.decode() == built_index.read_text()
    assert response["Cache-Control"] == "no-cache"
    assert "csrftoken" in response.cookies


def test_api_paths_are_not_client_routes(built_index: Path) -> None:
    response = Client().get("/api/v1/no-such-endpoint")
    assert response.status_code == 404
    assert built_index.read_text().encode() not in response.content


def test_without_a_build_the_shell_says_how_to_build(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(views, "INDEX", tmp_path / "missing.html")
    response = Client().get("/")
    assert response.status_code == 200
    assert b"make frontend" in response.content


def test_the_icon_is_served_where_browsers_look_for_it() -> None:
    response = Client().get("/favicon.ico")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml"
    assert b"<svg" in b"".join(response.streaming_content)
    # The app shell links the same icon (Vite copies frontend/public/ into the build).
    assert (
        '<link rel="icon" type="image/svg+xml" href="/favicon.svg" />'
        in (views.FAVICON.parents[1] / "index.html").read_text()
    )
