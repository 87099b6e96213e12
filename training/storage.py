"""Checkpoints and plots behind Django's storage API: the "models" storage (aicell/storage_settings.py).

Training writes its files under AICELL_MODEL_DIR (torch saves to paths) and registers them by their name relative
to it. With the default file-system storage that folder *is* the "models" storage and nothing moves; with S3 the
files are uploaded when a version is registered and every host that loads a version keeps a local copy under its
own AICELL_MODEL_DIR (downloaded once; names are per training job, and a registered checkpoint never changes).
Copies are streamed in both directions, never read whole into memory.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import FileSystemStorage, Storage, storages


class ModelDirStorage(FileSystemStorage):
    """AICELL_MODEL_DIR as a storage, following the setting whenever it changes."""

    @property
    def base_location(self) -> str:
        return str(settings.AICELL_MODEL_DIR)

    @property
    def location(self) -> str:
        return os.path.abspath(self.base_location)


def model_storage() -> Storage:
    return storages["models"]


def _is_model_dir(storage: Storage) -> bool:
    """Whether the storage is AICELL_MODEL_DIR itself (then local paths and stored names coincide)."""
    return (
        isinstance(storage, FileSystemStorage)
        and Path(storage.location).resolve() == Path(settings.AICELL_MODEL_DIR).resolve()
    )


def model_file_store(path: Path, name: str) -> str:
    """Put the local file `path` (under AICELL_MODEL_DIR, at relative `name`) into model storage; its stored name."""
    storage = model_storage()
    if _is_model_dir(storage):
        return name
    with path.open("rb") as handle:
        return storage.save(name, File(handle, name=name))


def model_file_local(name: str) -> Path:
    """A local path of the stored model file `name`: the file itself, or a copy under AICELL_MODEL_DIR (fetched
    once). A file missing from storage gives a path that does not exist; callers report it."""
    local = Path(settings.AICELL_MODEL_DIR) / name
    storage = model_storage()
    if _is_model_dir(storage) or local.exists() or not storage.exists(name):
        return local
    local.parent.mkdir(parents=True, exist_ok=True)
    partial = local.with_name(f"{local.name}.{os.getpid()}.part")
    with storage.open(name, "rb") as source, partial.open("wb") as target:
        shutil.copyfileobj(source, target, length=1 << 20)
    partial.replace(local)  # atomic: a reader never sees half a checkpoint
    return local
