"""The rooms of ARCHITECTURE.md that import-linter cannot see: web code never imports torch at import time.

(import-linter counts an import inside a function as an import, and the web side legitimately imports the torch
libraries inside the functions a worker runs; so this is checked by importing the web side with torch blocked.)
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from django.conf import settings

TORCH_PACKAGES = ("torch", "torchvision", "timm")

WEB_IMPORTS = textwrap.dedent(
    """
    import importlib.abc
    import sys

    BLOCKED = {blocked!r}


    class NoTorch(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"web code imported {{name}} at import time")
            return None


    sys.meta_path.insert(0, NoTorch())

    import django

    django.setup()

    from django.urls import get_resolver

    get_resolver().url_patterns  # every view, serializer and filter of the API and the UI
    from drf_spectacular.generators import SchemaGenerator

    SchemaGenerator().get_schema(request=None, public=True)  # every serializer the schema reaches
    from aicell.celery import app

    app.loader.import_default_modules()  # every Celery task module (a worker imports torch only when it runs one)
    import aicell.urls, aicell.wsgi, inference.tasks, training.tasks  # noqa: E401, F401
    print("web imports without torch: ok")
    """
)


def test_the_web_side_imports_without_torch() -> None:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "aicell.settings"}
    result = subprocess.run(
        [sys.executable, "-c", WEB_IMPORTS.format(blocked=TORCH_PACKAGES)],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "web imports without torch: ok" in result.stdout
