"""Project-wide error views: an address under /api/ that names no endpoint answers 404 in the API's error shape
(JSON), never an HTML page; elsewhere Django's own page. Its one problem names the `path`, which tells a client
"this server has no such endpoint" (a page whose API arrives with a later version) from "no such object"."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if request.path.startswith("/api/"):
        body = {
            "status": 404,
            "code": "not_found",
            "detail": "No such address in the API.",
            "errors": [{"field": "path", "reason": "no endpoint has this address"}],
        }
        return JsonResponse(body, status=404)
    return defaults.page_not_found(request, exception)
