"""The Celery app. Tasks take ids and call one service; GPU work is routed to the `gpu` queue (settings)."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aicell.settings")

app = Celery("aicell")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
