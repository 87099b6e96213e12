"""Where files live (aicell/storage_settings.py, training/storage.py): the AICELL_STORAGE setting picks the backend;
model files go through the "models" storage and come back as local copies when it is not AICELL_MODEL_DIR."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import FileSystemStorage, InMemoryStorage
from django.core.files.storage.handler import StorageHandler
from storages.backends.s3 import S3Storage

from aicell.storage_settings import storages_setting
from training.storage import ModelDirStorage, model_file_local, model_file_store, model_storage

ROOT = Path(__file__).resolve().parents[2]
STATIC = "django.contrib.staticfiles.storage.StaticFilesStorage"


def test_s3_settings_give_s3_storages_for_files_and_models_in_one_bucket() -> None:
    handler = StorageHandler(
        storages_setting(
            "s3",
            static_backend=STATIC,
            bucket="lab-bucket",
            endpoint_url="http://minio:9000",
            region="eu-1",
            prefix="/ai/",
        )
    )
    files, models = handler["default"], handler["models"]
    assert isinstance(files, S3Storage)
    assert isinstance(models, S3Storage)
    assert (files.bucket_name, files.endpoint_url, files.region_name) == ("lab-bucket", "http://minio:9000", "eu-1")
    assert (files.location, models.location) == ("ai/media", "ai/models")
    assert files.default_acl is None
    assert files.querystring_auth
    assert (files.file_overwrite, models.file_overwrite) == (False, True)
    # No network: the names map to keys under the prefix without asking the bucket.
    assert files._normalize_name("fields/1/a.jpg") == "ai/media/fields/1/a.jpg"


def test_s3_without_a_bucket_or_an_unknown_kind_is_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="AICELL_S3_BUCKET"):
        storages_setting("s3", static_backend=STATIC)
    with pytest.raises(ValueError, match="filesystem, s3"):
        storages_setting("ftp", static_backend=STATIC)


def test_the_environment_switches_the_deployment_to_s3() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AICELL_S3", "AICELL_STORAGE"))}
    env.update(AICELL_STORAGE="s3", AICELL_S3_BUCKET="b", AICELL_S3_ENDPOINT_URL="http://s3.lab:9000")
    code = (
        "import django, json; django.setup(); from django.conf import settings; "
        "from django.core.files.storage import storages; "
        "print(json.dumps([type(storages[n]).__name__ for n in ('default', 'models')] + [settings.STORAGES]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    default, models, setting = json.loads(done.stdout.strip().splitlines()[-1])
    assert (default, models) == ("S3Storage", "S3Storage")
    assert setting["default"]["OPTIONS"]["endpoint_url"] == "http://s3.lab:9000"


def test_by_default_the_models_storage_is_the_model_folder_and_nothing_is_copied(settings: Any, tmp_path: Path) -> None:
    settings.AICELL_MODEL_DIR = tmp_path / "models"
    storage = model_storage()
    assert isinstance(storage, ModelDirStorage)
    assert Path(storage.location) == tmp_path / "models"
    path = tmp_path / "models" / "training" / "job-1" / "best.pt"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"weights")
    assert model_file_store(path, "training/job-1/best.pt") == "training/job-1/best.pt"
    assert model_file_local("training/job-1/best.pt") == path
    assert storage.open("training/job-1/best.pt").read() == b"weights"


@pytest.mark.parametrize("backend", [FileSystemStorage, InMemoryStorage], ids=["other-folder", "in-memory"])
def test_with_another_models_storage_files_are_uploaded_and_fetched_back_as_local_copies(
    settings: Any, tmp_path: Path, backend: type
) -> None:
    settings.AICELL_MODEL_DIR = tmp_path / "training-host"
    options = {"location": str(tmp_path / "bucket")} if backend is FileSystemStorage else {}
    settings.STORAGES = {
        **settings.STORAGES,
        "models": {"BACKEND": f"{backend.__module__}.{backend.__name__}", "OPTIONS": options},
    }
    data = os.urandom(3 << 20)  # several copy blocks
    path = tmp_path / "training-host" / "training" / "job-2" / "classifier" / "best.pt"
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    name = model_file_store(path, "training/job-2/classifier/best.pt")
    assert model_storage().open(name).read() == data

    settings.AICELL_MODEL_DIR = tmp_path / "worker-host"  # another host: no local file yet
    local = model_file_local(name)
    assert local == tmp_path / "worker-host" / name
    assert local.read_bytes() == data
    assert not list(local.parent.glob("*.part"))
    assert not model_file_local("training/job-9/missing.pt").exists()
