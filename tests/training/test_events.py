"""Promotions announce themselves (training.events) after commit; inference subscribes in its app config, so
training never calls inference's services."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from aicell.roles import Role
from inference.services import prelabel_after_promotion
from tests.factories import ModelVersionFactory
from training.events import MODEL_PROMOTED_HOOKS
from training.models import ModelStatus
from training.registry import model_version_promote, model_version_rollback

pytestmark = pytest.mark.django_db


def test_inference_subscribes_to_promotions_in_its_app_config() -> None:
    assert prelabel_after_promotion in MODEL_PROMOTED_HOOKS


def test_a_promotion_and_a_rollback_announce_the_version_made_active_after_commit(
    make_user: Any, django_capture_on_commit_callbacks: Any, monkeypatch: pytest.MonkeyPatch, training_env: Path
) -> None:
    heard: list[list[int]] = []
    monkeypatch.setattr("training.events.MODEL_PROMOTED_HOOKS", [heard.append])
    admin = make_user(Role.ADMIN)
    old = ModelVersionFactory(status=ModelStatus.ACTIVE)
    new = ModelVersionFactory(checkpoints=["classifier/a.pt"])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        model_version_promote(version_id=new.pk, actor=admin, reason="better")
    assert heard == [], "nothing is announced before the promotion commits"
    for callback in callbacks:
        callback()
    assert heard == [[new.pk]]
    with django_capture_on_commit_callbacks(execute=True):
        model_version_rollback(version_id=new.pk, actor=admin, reason="worse on the ward's smears")
    assert heard == [[new.pk], [old.pk]]
