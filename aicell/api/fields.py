"""Serializer fields shared by the apps' APIs."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from aicell.roles import CLINICAL_ROLES, roles_of

# What every job serializer shows of `aicell.models.Job` (pre-label and training jobs add their own fields).
JOB_FIELDS = [
    "id",
    "status",
    "progress",
    "message",
    "error",
    "result",
    "cancel_requested",
    "created_at",
    "started_at",
    "finished_at",
    "heartbeat_at",
]


@extend_schema_field(serializers.CharField(allow_null=True))
class StaffUsernameField(serializers.Field):
    """The user name of the account a related user field points at, for clinical roles; researchers see the
    platform de-identified, so they get null (as for no user at all)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("read_only", True)
        kwargs.setdefault("allow_null", True)
        super().__init__(**kwargs)

    def to_representation(self, user: Any) -> str | None:
        request = self.context.get("request")
        if user is None or request is None or not roles_of(request.user) & CLINICAL_ROLES:
            return None
        return str(user.username)


# --- strict integers ----------------------------------------------------------------------------------------------
# Every integer the API reads (ids, versions, counts; body fields, query parameters, filters) goes through one rule:
# a JSON integer or a string of ASCII digits, never a boolean (`true` is not version 1), and inside what the database
# can store or compare for the column it meets, else 400 naming the field (never an OverflowError as a 500).
# Model serializers' own integer and related-id fields already hold to it (DRF refuses booleans there, the model
# field's validators carry the column's range, and Django answers an out-of-range primary key as "does not exist").

# What a value that meets no column must fit: the widest integer both engines compare (64-bit signed).
ANY_COLUMN = "BigIntegerField"


def db_integer_range(internal_type: str = ANY_COLUMN) -> tuple[int, int]:
    """The values the default database stores in a model field of `internal_type` (e.g. "PositiveIntegerField":
    0..2**31-1 on PostgreSQL, 0..2**63-1 on SQLite); 64-bit signed where the engine names no limit."""
    from django.db import connection

    low, high = connection.ops.integer_field_range(internal_type)
    return (-(2**63) if low is None else low, 2**63 - 1 if high is None else high)


def _bounds(internal_type: str, min_value: int | None, max_value: int | None) -> tuple[int, int]:
    low, high = db_integer_range(internal_type)
    return (low if min_value is None else max(low, min_value), high if max_value is None else min(high, max_value))


def parse_strict_int(
    raw: Any, name: str, *, min_value: int | None = None, max_value: int | None = None, column: str = ANY_COLUMN
) -> int:
    """`raw` (a query parameter, a header or a body value) as an integer of the column type `column`, or
    ValidationFailed naming `name`."""
    from aicell.errors import ValidationFailed

    low, high = _bounds(column, min_value, max_value)
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise ValidationFailed(f"{name} must be an integer; got {type(raw).__name__}", field=name)
    if isinstance(raw, str):
        text = raw.strip()
        digits = text[1:] if text[:1] in "+-" else text
        if not digits.isascii() or not digits.isdigit() or len(digits) > 40:
            raise ValidationFailed(f"{name} must be an integer; got {raw[:40]!r}", field=name)
        value = int(text)
    else:
        value = raw
    if not low <= value <= high:
        raise ValidationFailed(f"{name} must be between {low} and {high}", field=name)
    return value


class StrictIntegerField(serializers.IntegerField):
    """DRF's IntegerField that refuses booleans and is bounded by the database's range of `column` (a model field
    type such as "PositiveIntegerField"; default 64-bit signed) besides any min_value/max_value given."""

    def __init__(self, *, column: str = ANY_COLUMN, **kwargs: Any) -> None:
        kwargs["min_value"], kwargs["max_value"] = _bounds(column, kwargs.get("min_value"), kwargs.get("max_value"))
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool):
            self.fail("invalid")
        return int(super().to_internal_value(data))


# --- strict strings -----------------------------------------------------------------------------------------------
class StrictCharField(serializers.CharField):
    """DRF's CharField that takes only JSON strings: the schema says string, and DRF's own would store the number
    1303 as the code "1303" (found by the fuzzing). Model serializers map CharField and TextField to it
    (`AicellConfig.ready`)."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return str(super().to_internal_value(data))
