"""Reads of the model registry."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from pathlib import Path

from django.conf import settings

from aicell.errors import NotFound
from annotations.counting.reports import ModelVersionRef
from training.core.stages import CLASSIFIER, STAGES
from training.models import ModelStatus, ModelVersion, StartingPoint


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


def active_classifier_id() -> int | None:
    return (
        ModelVersion.objects.filter(stage=CLASSIFIER.name, status=ModelStatus.ACTIVE)
        .values_list("id", flat=True)
        .first()
    )


def model_version_refs(ids: Collection[int]) -> tuple[ModelVersionRef, ...]:
    """How reports name model versions (the differential's provenance), in stage then id order."""
    if not ids:
        return ()
    rows = ModelVersion.objects.filter(pk__in=ids).order_by("stage", "id")
    return tuple(
        ModelVersionRef(row.pk, row.stage, row.architecture, row.profile, row.status)
        for row in rows.only("id", "stage", "architecture", "profile", "status")
    )


def starting_point_path(point: StartingPoint) -> Path:
    return Path(settings.AICELL_MODEL_DIR) / point.file


def starting_points_by_name(names: Iterable[str]) -> dict[str, StartingPoint]:
    """The registered starting points of `names`; NotFound (listing the registered ones) for any unknown name."""
    wanted = set(names)
    found = {point.name: point for point in StartingPoint.objects.filter(name__in=wanted)}
    unknown = sorted(wanted - set(found))
    if unknown:
        registered = ", ".join(StartingPoint.objects.values_list("name", flat=True)) or "none"
        raise NotFound(
            f"starting point(s) {', '.join(unknown)} not registered (registered: {registered}); "
            "register one with `manage.py import_weights FILE --arch ARCH --name NAME`",
            field="init",
        )
    return found
