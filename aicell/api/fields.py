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
