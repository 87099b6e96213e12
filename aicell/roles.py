"""The four roles of DESIGN.md "Users and rights", carried by Django groups of the same names.

A superuser counts as an admin; Django's `is_staff` alone grants nothing here (staff accounts acting as
superusers is a known failure of annotation tools).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class Role(StrEnum):
    ANNOTATOR = "annotator"
    ADJUDICATOR = "adjudicator"
    ADMIN = "admin"
    RESEARCHER = "researcher"


ALL_ROLES: frozenset[Role] = frozenset(Role)
# The roles as (value, label) choices: the session's `roles` in the API schema (one enum, RoleEnum).
ROLE_CHOICES: list[tuple[str, str]] = [(role.value, role.value) for role in Role]
# Roles that see identifiable lab data (field images as uploaded, annotator names); researchers see exports only.
CLINICAL_ROLES: frozenset[Role] = frozenset({Role.ANNOTATOR, Role.ADJUDICATOR, Role.ADMIN})
# Roles that run the lab's work: manage patients, cases and assignments, see every annotation, start pre-labelling.
LAB_MANAGERS: frozenset[Role] = frozenset({Role.ADMIN, Role.ADJUDICATOR})

_CACHE_ATTR = "_aicell_roles"


def roles_of(user: Any) -> frozenset[Role]:
    if user is None or not user.is_authenticated or not user.is_active:
        return frozenset()
    cached = getattr(user, _CACHE_ATTR, None)
    if cached is None:
        names = set(user.groups.values_list("name", flat=True))
        cached = frozenset(role for role in Role if role.value in names)
        if user.is_superuser:
            cached = cached | {Role.ADMIN}
        setattr(user, _CACHE_ATTR, cached)
    return cached


def has_role(user: Any, *roles: Role) -> bool:
    return bool(roles_of(user) & set(roles))
