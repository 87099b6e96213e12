"""What the training app announces to the other apps, as hook lists they subscribe to in their app configs (the
pattern of `annotations.services.FIELD_UPLOADED_HOOKS`), so training never imports another app's services."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

from django.db import transaction

# Callbacks run with the ids of the model versions that became active (a training run's promotions, an admin's
# promotion or rollback) once the transaction that activated them commits; inference subscribes to pre-label
# again with the new pipeline.
MODEL_PROMOTED_HOOKS: list[Callable[[list[int]], object]] = []


def model_versions_announce_promoted(version_ids: Sequence[int]) -> None:
    """Run the promotion hooks after the current transaction commits (at once outside one)."""
    transaction.on_commit(functools.partial(_notify_promoted, list(version_ids)))


def _notify_promoted(version_ids: list[int]) -> None:
    for hook in MODEL_PROMOTED_HOOKS:
        hook(version_ids)
