"""The single DRF exception handler: domain errors and DRF's own errors share one response shape.

{"status": 400, "code": "invalid", "detail": "<sentence>", "errors": [{"field": "...", "reason": "..."}]}
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import (
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.db import InterfaceError, OperationalError
from django.db.models import ProtectedError, RestrictedError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from aicell.errors import DomainError, FieldError, PayloadTooLarge, StateConflict, ValidationFailed
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


def _still_referenced(blocking_objects: Any) -> StateConflict:
    """A delete refused because other rows still point at the object (a patient's cases, a case's smears...)."""
    kinds = sorted({str(obj._meta.verbose_name_plural) for obj in blocking_objects if hasattr(obj, "_meta")})
    return StateConflict(
        f"This cannot be deleted while {', '.join(kinds) or 'other objects'} refer to it; nothing was deleted."
    )


def _refused_request(exc: SuspiciousOperation) -> DomainError:
    """Django's refusals of a request body (too big, too many files or fields, malformed) in the API's shape."""
    if isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return PayloadTooLarge(f"The request body is larger than the limit of {limit:,} bytes.", field="body")
    if isinstance(exc, TooManyFilesSent):
        limit = settings.DATA_UPLOAD_MAX_NUMBER_FILES
        return ValidationFailed(f"Too many files in one request; the limit is {limit}.", field="files")
    if isinstance(exc, TooManyFieldsSent):
        limit = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
        return ValidationFailed(f"Too many form fields in one request; the limit is {limit}.", field="body")
    return ValidationFailed("The request is malformed and was refused.", field="body")


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ProtectedError):
        exc = _still_referenced(exc.protected_objects)
    elif isinstance(exc, RestrictedError):
        exc = _still_referenced(exc.restricted_objects)
    elif isinstance(exc, SuspiciousOperation):
        exc = _refused_request(exc)
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
        detail = str(exc.detail) if not isinstance(exc.detail, dict | list) else str(exc.default_detail)
        # A body that cannot be parsed is a problem of the whole body: name it, so every 400 names a field.
        errors = [FieldError("body", detail)] if isinstance(exc, exceptions.ParseError) else []
        code = exc.default_code
    response.data = {
        "status": response.status_code,
        "code": code,
        "detail": detail,
        "errors": [e.to_dict() for e in errors],
    }
    return response
