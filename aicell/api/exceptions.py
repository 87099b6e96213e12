"""The single DRF exception handler: domain errors and DRF's own errors share one response shape.

{"status": 400, "code": "invalid", "detail": "<sentence>", "errors": [{"field": "...", "reason": "..."}]}
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import InterfaceError, OperationalError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from aicell.errors import DomainError, FieldError
from aicell.middleware import DATABASE_UNAVAILABLE, RETRY_AFTER_SECONDS


def _flatten(detail: Any, prefix: str = "") -> list[FieldError]:
    """DRF nests validation messages by field and list index; flatten them to `field.sub[2]: reason` rows."""
    if isinstance(detail, dict):
        rows: list[FieldError] = []
        for key, value in detail.items():
            name = "" if key == "non_field_errors" else str(key)
            rows.extend(_flatten(value, f"{prefix}.{name}".strip(".") if name else prefix))
        return rows
    if isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            return [FieldError(prefix or "non_field_errors", str(item)) for item in detail]
        rows = []
        for index, item in enumerate(detail):
            rows.extend(_flatten(item, f"{prefix}[{index}]"))
        return rows
    return [FieldError(prefix or "non_field_errors", str(detail))]


def _summary(errors: list[FieldError], fallback: str) -> str:
    if not errors:
        return fallback
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{first.field}: {first.reason}{more}" if first.field != "non_field_errors" else first.reason + more


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DomainError):
        return Response(exc.to_dict(), status=exc.status_code)
    if isinstance(exc, OperationalError | InterfaceError):
        # Every write runs in one transaction: a connection lost on the way rolled it back.
        return Response(
            DATABASE_UNAVAILABLE,
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten(exc.detail)
        detail = _summary(errors, "Invalid input.")
        code = "invalid"
    else:
        errors = []
        detail = str(exc.detail) if not isinstance(exc.detail, dict | list) else str(exc.default_detail)
        code = exc.default_code
    response.data = {
        "status": response.status_code,
        "code": code,
        "detail": detail,
        "errors": [e.to_dict() for e in errors],
    }
    return response
