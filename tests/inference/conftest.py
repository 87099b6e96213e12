from pathlib import Path
from typing import Any

import pytest

from tests.models_on_disk import register_active_versions, write_profiles_file, write_random_checkpoints


@pytest.fixture(scope="session")
def model_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, list[str]]]:
    """Random checkpoints of every stage, written once per test session."""
    folder = tmp_path_factory.mktemp("models")
    return folder, write_profiles_file(folder), write_random_checkpoints(folder)


@pytest.fixture
def active_models(settings: Any, model_files: tuple[Path, Path, dict[str, list[str]]], db: None) -> dict[str, Any]:
    folder, profiles_file, paths = model_files
    settings.AICELL_MODEL_DIR = folder
    settings.AICELL_PROFILES_FILE = profiles_file
    return register_active_versions(paths)
