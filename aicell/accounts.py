"""Users and their roles: an admin creates people, gives and takes roles, deactivates (never deletes: the audit
trail keeps their names) and resets passwords. Roles are the Django groups of `aicell.roles`; the admin role also
makes a user staff and superuser, so the Django admin works for lab admins (and taking it away undoes both)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.contrib.auth.models import Group, User
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import QuerySet

from aicell.errors import FieldError, NotFound, ValidationFailed
from aicell.roles import Role
from annotations.audit import audit_record


def users_all() -> QuerySet[User]:
    return User.objects.prefetch_related("groups").order_by("username")


def user_snapshot(user: User) -> dict[str, Any]:
    return {
        "username": user.username,
        "email": user.email,
        "roles": sorted(role.value for role in _group_roles(user)),
        "is_active": user.is_active,
    }


def _group_roles(user: User) -> frozenset[Role]:
    names = set(user.groups.values_list("name", flat=True))
    return frozenset(role for role in Role if role.value in names)


def _checked_roles(roles: Iterable[Any]) -> list[Role]:
    values = list(roles)
    known = {role.value for role in Role}
    unknown = [value for value in values if value not in known]
    if unknown:
        raise ValidationFailed(
            f"Unknown role(s): {', '.join(map(str, unknown))}; choose from {', '.join(sorted(known))}.", field="roles"
        )
    return sorted({Role(value) for value in values})


def _checked_password(password: Any, user: User | None = None) -> str:
    if not isinstance(password, str) or not password:
        raise ValidationFailed("Give a password.", field="password")
    try:
        validate_password(password, user=user)
    except DjangoValidationError as exc:
        raise ValidationFailed(" ".join(exc.messages), field="password") from exc
    return password


def _checked_email(email: Any) -> str:
    email = str(email or "").strip()
    if email:
        try:
            validate_email(email)
        except DjangoValidationError:
            raise ValidationFailed("Enter a valid e-mail address.", field="email") from None
    return email


def user_roles_apply(user: User, roles: Sequence[Role]) -> None:
    """The user's roles become exactly `roles` (groups; the admin role makes staff and superuser, its absence undoes
    both). No checks and no audit: the services above and the demo call it."""
    user.groups.set([Group.objects.get_or_create(name=role.value)[0] for role in roles])
    is_admin = Role.ADMIN in roles
    user.is_staff = is_admin
    user.is_superuser = is_admin
    user.save(update_fields=["is_staff", "is_superuser"])


def user_create(*, username: Any, roles: Iterable[Any], password: Any, email: Any = "", actor: Any) -> User:
    errors: list[FieldError] = []
    username = str(username or "").strip()
    if not username:
        errors.append(FieldError("username", "Give a username."))
    else:
        try:
            UnicodeUsernameValidator()(username)
        except DjangoValidationError as exc:
            errors.append(FieldError("username", " ".join(exc.messages)))
        if User.objects.filter(username__iexact=username).exists():
            errors.append(FieldError("username", f"The username {username!r} is taken."))
    checks = ((_checked_roles, roles, "roles"), (_checked_email, email, "email"))
    checked: dict[str, Any] = {}
    for check, value, name in checks:
        try:
            checked[name] = check(value)
        except ValidationFailed as exc:
            errors.extend(exc.errors)
    if not checked.get("roles") and "roles" not in {error.field for error in errors}:
        errors.append(FieldError("roles", "Give the user at least one role."))
    try:
        _checked_password(password, User(username=username, email=checked.get("email", "")))
    except ValidationFailed as exc:
        errors.extend(exc.errors)
    if errors:
        raise ValidationFailed(errors[0].reason if len(errors) == 1 else "The user was not created.", errors=errors)
    with transaction.atomic():
        user = User.objects.create_user(username=username, email=checked["email"], password=password)
        user_roles_apply(user, checked["roles"])
        audit_record(actor=actor, action="user.create", entity="user", entity_id=user.pk, after=user_snapshot(user))
    return user


def _lock_user(user_id: int) -> User:
    user = User.objects.select_for_update().filter(pk=user_id).first()
    if user is None:
        raise NotFound(f"User {user_id} does not exist.")
    return user


def user_update(
    *, user_id: int, actor: Any, roles: Iterable[Any] | None = None, is_active: bool | None = None, email: Any = None
) -> User:
    """Give or take roles, deactivate or reactivate, change the e-mail. An admin cannot take their own admin role
    or deactivate themselves (the lab would lose its last way in)."""
    with transaction.atomic():
        user = _lock_user(user_id)
        before = user_snapshot(user)
        if roles is not None:
            checked = _checked_roles(roles)
            if user.pk == getattr(actor, "pk", None) and Role.ADMIN not in checked:
                raise ValidationFailed("You cannot take your own admin role.", field="roles")
            user_roles_apply(user, checked)
        if is_active is not None:
            if user.pk == getattr(actor, "pk", None) and not is_active:
                raise ValidationFailed("You cannot deactivate yourself.", field="is_active")
            user.is_active = bool(is_active)
        if email is not None:
            user.email = _checked_email(email)
        user.save(update_fields=["is_active", "email"])
        after = user_snapshot(user)
        if after != before:
            audit_record(
                actor=actor, action="user.update", entity="user", entity_id=user.pk, before=before, after=after
            )
    return user


def user_password_set(*, user_id: int, password: Any, actor: Any) -> User:
    with transaction.atomic():
        user = _lock_user(user_id)
        user.set_password(_checked_password(password, user))
        user.save(update_fields=["password"])
        audit_record(actor=actor, action="user.password_reset", entity="user", entity_id=user.pk)
    return user
