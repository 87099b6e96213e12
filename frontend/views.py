"""Serves the built single-page app (frontend/dist, built by `make`), or a page that says how to build it."""

from __future__ import annotations

from django.conf import settings
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import cache_control
from django.views.decorators.csrf import ensure_csrf_cookie

INDEX = settings.BASE_DIR / "frontend" / "dist" / "index.html"
# The app's icon (the shell links its built copy, /static/favicon.svg).
FAVICON = settings.BASE_DIR / "frontend" / "public" / "favicon.svg"


@ensure_csrf_cookie
def app_shell(request: HttpRequest, route: str = "") -> HttpResponse:
    if INDEX.exists():
        response = HttpResponse(INDEX.read_text(encoding="utf-8"))
        # The shell names the current build's hashed assets: always revalidate it, so a new build shows at once.
        response["Cache-Control"] = "no-cache"
        return response
    return render(request, "frontend/not_built.html")


@cache_control(public=True, max_age=24 * 3600)
def favicon(request: HttpRequest) -> FileResponse:
    """The icon at the address browsers try on pages that link none (admin, browsable API, the not-built page)."""
    return FileResponse(FAVICON.open("rb"), content_type="image/svg+xml")
