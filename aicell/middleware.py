"""Answer 503 (not 500) while the database refuses connections, for views outside DRF too."""

from __future__ import annotations

from collections.abc import Callable

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse

DATABASE_UNAVAILABLE = {
    "status": 503,
    "code": "database_unavailable",
    "detail": "The database is unavailable; try again in a few seconds.",
    "errors": [],
}
RETRY_AFTER_SECONDS = "5"


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, OperationalError | InterfaceError):
            response = JsonResponse(DATABASE_UNAVAILABLE, status=503)
            response["Retry-After"] = RETRY_AFTER_SECONDS
            return response
        return None
