"""Where files live: the `STORAGES` setting from the deployment's choice (README "Storage").

Two storages hold the platform's files: "default" (field images, thumbnails, exports, import reports) and
"models" (checkpoints and plots). With `AICELL_STORAGE=filesystem` (the default) they are folders (MEDIA_ROOT,
AICELL_MODEL_DIR); with `AICELL_STORAGE=s3` both are prefixes of one S3-compatible bucket (AWS S3, MinIO, Ceph,
...) through django-storages, so several web and worker hosts share them. Credentials are never settings: boto3
reads them from its own environment (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, a profile or an instance role).

A module of its own, free of Django setup, so a test can build the setting for either choice.
"""

from __future__ import annotations

from typing import Any

STORAGE_KINDS = ("filesystem", "s3")
S3_BACKEND = "storages.backends.s3.S3Storage"
FILESYSTEM_BACKEND = "django.core.files.storage.FileSystemStorage"
MODEL_DIR_BACKEND = "training.storage.ModelDirStorage"


def storages_setting(
    kind: str,
    *,
    static_backend: str,
    default_backend: str = FILESYSTEM_BACKEND,
    bucket: str = "",
    endpoint_url: str = "",
    region: str = "",
    prefix: str = "",
) -> dict[str, dict[str, Any]]:
    """The STORAGES setting; `ValueError` names what is missing or wrong (settings turn it into
    ImproperlyConfigured)."""
    if kind == "filesystem":
        # Both follow their setting (MEDIA_ROOT, AICELL_MODEL_DIR) when it changes, as tests change them.
        files: dict[str, Any] = {"BACKEND": default_backend}
        models: dict[str, Any] = {"BACKEND": MODEL_DIR_BACKEND}
    elif kind == "s3":
        if not bucket:
            raise ValueError("AICELL_STORAGE=s3 needs AICELL_S3_BUCKET (the bucket name)")
        base = prefix.strip("/")
        common: dict[str, Any] = {
            "bucket_name": bucket,
            "endpoint_url": endpoint_url or None,  # None: AWS itself
            "region_name": region or None,
            "default_acl": None,  # the bucket's policy decides; objects are never public
            "querystring_auth": True,  # URLs, if ever handed out, are signed and expire
            "file_overwrite": False,  # a second upload of the same name gets a new name, never replaces
        }
        files = {"BACKEND": S3_BACKEND, "OPTIONS": {**common, "location": f"{base}/media".lstrip("/")}}
        # A checkpoint's name says its job and stage; a retried job writes the same names again.
        models = {
            "BACKEND": S3_BACKEND,
            "OPTIONS": {**common, "location": f"{base}/models".lstrip("/"), "file_overwrite": True},
        }
    else:
        raise ValueError(f"AICELL_STORAGE={kind!r}: use one of {', '.join(STORAGE_KINDS)}")
    return {"default": files, "models": models, "staticfiles": {"BACKEND": static_backend}}
