"""Optimistic locking over HTTP: a writer names the version it read, as an ETag in If-Match or a `version` field."""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.response import Response

from aicell.api.fields import parse_strict_int

# Every versioned model stores its version in a PositiveIntegerField.
VERSION_COLUMN = "PositiveIntegerField"


def request_value(request: Request, name: str) -> Any:
    """A top-level value of the body, whatever its parser produced (a JSON list body has none)."""
    return request.data.get(name) if hasattr(request.data, "get") else None


def expected_version(request: Request) -> int | None:
    """The version a writer read: the If-Match header (an ETag such as "3" or W/"3") or a `version` field."""
    header = request.headers.get("If-Match")
    raw: Any = header.removeprefix("W/").strip('"') if header else request_value(request, "version")
    if raw is None or raw == "":
        return None
    return parse_strict_int(raw, "version", column=VERSION_COLUMN)


def with_version_etag(response: Response, version: int) -> Response:
    response["ETag"] = f'"{version}"'
    return response
