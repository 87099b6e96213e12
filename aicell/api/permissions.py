"""Role-based access for every endpoint: a view names the roles that may read and write, per action if needed."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from aicell.roles import Role, has_role


def required_roles(request: Request, view: Any) -> frozenset[Role]:
    action = getattr(view, "action", None)
    action_roles: dict[str, frozenset[Role]] = getattr(view, "action_roles", {})
    if action in action_roles:
        return frozenset(action_roles[action])
    if request.method in SAFE_METHODS:
        return frozenset(getattr(view, "read_roles", frozenset()))
    return frozenset(getattr(view, "write_roles", frozenset()))


class RoleAccess(BasePermission):
    """Default-deny: a view that declares no roles for a method is closed to everyone."""

    message = "Your role does not allow this."

    def has_permission(self, request: Request, view: Any) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        return has_role(request.user, *required_roles(request, view))
