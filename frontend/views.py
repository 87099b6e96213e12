"""Serves the built single-page app (frontend/dist, built by `make`), or a page that says how to build it."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie

INDEX = settings.BASE_DIR / "frontend" / "dist" / "index.html"


@ensure_csrf_cookie
def app_shell(request: HttpRequest, route: str = "") -> HttpResponse:
    if INDEX.exists():
        response = HttpResponse(INDEX.read_text(encoding="utf-8"))
        # The shell names the current build's hashed assets: always revalidate it, so a new build shows at once.
        response["Cache-Control"] = "no-cache"
        return response
    return render(request, "frontend/not_built.html")
