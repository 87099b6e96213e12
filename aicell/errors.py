"""Domain errors raised by services and selectors; one DRF exception handler turns them into responses.

Every error names what went wrong in words, and where possible the input field it concerns, so that a client
(or a hematologist reading the UI) can act on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FieldError:
    field: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "reason": self.reason}


class DomainError(Exception):
    status_code = 400
    code = "invalid"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        errors: list[FieldError] | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.errors = list(errors or [])
        if field is not None:
            self.errors.insert(0, FieldError(field, message))
        self.details = details or {}

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"status": self.status_code, "code": self.code, "detail": self.message}
        body["errors"] = [error.to_dict() for error in self.errors]
        body.update(self.details)
        return body


class ValidationFailed(DomainError):
    status_code = 400
    code = "invalid"


class PermissionDenied(DomainError):
    status_code = 403
    code = "forbidden"


class NotFound(DomainError):
    status_code = 404
    code = "not_found"


class StateConflict(DomainError):
    """The request conflicts with the current state (a stale version, a step already taken, a duplicate)."""

    status_code = 409
    code = "conflict"


class PayloadTooLarge(DomainError):
    status_code = 413
    code = "too_large"


class ServiceUnavailable(DomainError):
    status_code = 503
    code = "unavailable"
