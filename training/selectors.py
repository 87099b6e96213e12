"""Reads of the model registry."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from django.conf import settings

from training.core.stages import STAGES
from training.models import ModelStatus, ModelVersion


def active_model_versions() -> dict[str, ModelVersion]:
    """The active version of each stage that has one."""
    return {version.stage: version for version in ModelVersion.objects.filter(status=ModelStatus.ACTIVE)}


def missing_active_stages(versions: dict[str, ModelVersion]) -> list[str]:
    return [stage for stage in STAGES if stage not in versions]


def model_versions_by_id(version_ids: Mapping[str, int]) -> dict[str, ModelVersion]:
    """{stage: version} for a {stage: version id} mapping (a pre-label job's pipeline)."""
    versions = ModelVersion.objects.in_bulk(list(version_ids.values()))
    return {stage: versions[version_id] for stage, version_id in version_ids.items()}


def checkpoint_paths(version: ModelVersion) -> list[Path]:
    """Absolute paths of a version's checkpoint files (stored relative to AICELL_MODEL_DIR)."""
    return [Path(settings.AICELL_MODEL_DIR) / relative for relative in version.checkpoints]
