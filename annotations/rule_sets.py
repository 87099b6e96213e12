"""Diagnosis rule sets: versioned data (a new version is stored for every edit, rows never change), one version
active. The rules themselves are plain Python in `annotations.counting.rules`."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction

from aicell.errors import FieldError, NotFound, StateConflict, ValidationFailed
from annotations.audit import audit_record
from annotations.counting import rules
from annotations.models import RuleSet


def rule_set_snapshot(rule_set: RuleSet) -> dict[str, Any]:
    return {"id": rule_set.pk, "name": rule_set.name, "version": rule_set.version, "active": rule_set.active}


def rule_set_create_version(*, name: str, content: Any, note: str = "", activate: bool = False, actor: Any) -> RuleSet:
    """Store `content` as the next version of rule set `name` (version 1 for a new name). Stored rows never change:
    this is how a rule set is edited. The content is validated first; every problem is reported with its path."""
    problems = rules.validate_rule_set(content)
    if problems:
        raise ValidationFailed(
            f"The rule set has {len(problems)} problem(s); nothing was stored.",
            errors=[FieldError(f"content.{p.path}" if p.path else "content", p.message) for p in problems],
        )
    # Stored with every default written out, so that a later change of a default never alters an old version.
    normalized = rules.parse_rule_set(content).to_dict()
    try:
        with transaction.atomic():
            latest = RuleSet.objects.select_for_update().filter(name=name).order_by("-version").first()
            rule_set = RuleSet.objects.create(
                name=name,
                version=latest.version + 1 if latest else 1,
                content=normalized,
                note=note,
                created_by=actor if actor is not None and actor.is_authenticated else None,
            )
            audit_record(
                actor=actor,
                action="rule_set.create",
                entity="rule_set",
                entity_id=rule_set.pk,
                after={**rule_set_snapshot(rule_set), "content": normalized, "note": note},
            )
            if activate:
                rule_set = rule_set_activate(rule_set_id=rule_set.pk, actor=actor)
    except IntegrityError as exc:
        raise StateConflict(f"Another version of rule set {name!r} was stored at the same moment; try again.") from exc
    return rule_set


def rule_set_activate(*, rule_set_id: int, actor: Any) -> RuleSet:
    """Make one rule set version the one differentials are evaluated against (the previous one is kept)."""
    with transaction.atomic():
        rule_set = RuleSet.objects.select_for_update().filter(pk=rule_set_id).first()
        if rule_set is None:
            raise NotFound(f"Rule set {rule_set_id} does not exist.")
        if rule_set.active:
            return rule_set
        previous = RuleSet.objects.select_for_update().filter(active=True).first()
        # Deactivate first: at most one row may be active at any moment (partial unique index).
        RuleSet.objects.filter(active=True).update(active=False)
        RuleSet.objects.filter(pk=rule_set.pk).update(active=True)
        rule_set.refresh_from_db()
        audit_record(
            actor=actor,
            action="rule_set.activate",
            entity="rule_set",
            entity_id=rule_set.pk,
            before=rule_set_snapshot(previous) if previous else None,
            after=rule_set_snapshot(rule_set),
        )
    return rule_set
