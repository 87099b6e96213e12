"""The pipeline a worker runs for the registry's model versions, loaded once per process and reused.

torch is imported only when a pipeline is first needed, so web processes that import this module stay light.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING

from django.conf import settings

from training.core.stages import CLASSIFIER, COUNTABILITY, DETECTOR, STAGES
from training.selectors import checkpoint_file, checkpoint_paths

if TYPE_CHECKING:
    from inference.core.pipeline import Pipeline
    from inference.core.profiles import Profile
    from training.models import ModelVersion


class PipelineUnavailable(Exception):
    """The registry's versions cannot form a pipeline (mixed profiles, missing files, wrong checkpoints)."""


def profile_named(name: str) -> Profile:
    from inference.core.profiles import UnknownProfileError, load_profiles

    profiles = load_profiles(settings.AICELL_PROFILES_FILE)
    if name not in profiles:
        raise UnknownProfileError(name, tuple(profiles))
    return profiles[name]


def pipeline_key(versions: Mapping[str, ModelVersion]) -> tuple[tuple[str, int, str, tuple[str, ...]], ...]:
    return tuple(
        (stage, versions[stage].pk, versions[stage].profile, tuple(versions[stage].checkpoints))
        for stage in STAGES
        if stage in versions
    )


def pipeline_for(versions: Mapping[str, ModelVersion]) -> Pipeline:
    profiles = {version.profile for version in versions.values()}
    if len(profiles) != 1:
        raise PipelineUnavailable(f"the active stage versions use different profiles: {sorted(profiles)}")
    return _load_pipeline(pipeline_key(versions), str(settings.AICELL_MODEL_DIR), str(settings.AICELL_PROFILES_FILE))


@functools.lru_cache(maxsize=2)
def _load_pipeline(
    key: tuple[tuple[str, int, str, tuple[str, ...]], ...], model_dir: str, profiles_file: str
) -> Pipeline:
    from inference.core.checkpoints import CheckpointError
    from inference.core.pipeline import PIPELINE_KINDS

    by_stage = {stage: [checkpoint_file(name) for name in names] for stage, _, _, names in key}
    profile = profile_named(key[0][2])
    for stage, paths in by_stage.items():
        if not paths:
            raise PipelineUnavailable(f"the {stage} version has no checkpoint files")
        missing = [str(path) for path in paths if not path.exists()]
        if missing:
            raise PipelineUnavailable(f"checkpoint files of the {stage} version are missing: {', '.join(missing)}")
    # Without an active countability model and classifier, the detector pre-labels alone (unclassified boxes).
    classifying = COUNTABILITY.name in by_stage and CLASSIFIER.name in by_stage
    try:
        return PIPELINE_KINDS[profile.kind].from_checkpoints(
            by_stage[DETECTOR.name][0],
            by_stage[COUNTABILITY.name][0] if classifying else None,
            by_stage[CLASSIFIER.name] if classifying else [],
            profile,
            device=settings.AICELL_DEVICE or None,
        )
    except CheckpointError as exc:
        raise PipelineUnavailable(str(exc)) from exc


__all__ = ["PipelineUnavailable", "checkpoint_paths", "pipeline_for", "profile_named"]
