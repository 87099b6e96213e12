"""Reads of the model registry."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings

from training.models import ModelStatus, ModelVersion, Stage


def active_model_versions() -> dict[str, ModelVersion]:
    """The active version of each stage that has one."""
    return {version.stage: version for version in ModelVersion.objects.filter(status=ModelStatus.ACTIVE)}


def missing_active_stages(versions: dict[str, ModelVersion]) -> list[str]:
    return [stage.value for stage in Stage if stage.value not in versions]


def checkpoint_paths(version: ModelVersion) -> list[Path]:
    """Absolute paths of a version's checkpoint files (stored relative to AICELL_MODEL_DIR)."""
    return [Path(settings.AICELL_MODEL_DIR) / relative for relative in version.checkpoints]
