"""Health of the three moving parts: database, broker, workers (each queue with the workers consuming it)."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.db import connection

from aicell.celery import app


def database_status() -> dict[str, Any]:
    started = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        return {"ok": False, "vendor": connection.vendor, "error": str(exc)}
    return {"ok": True, "vendor": connection.vendor, "latency_ms": round((time.perf_counter() - started) * 1000, 1)}


def broker_status() -> dict[str, Any]:
    transport = app.conf.broker_url.split("://", 1)[0]
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:
        return {"ok": False, "transport": transport, "error": str(exc)}
    return {"ok": True, "transport": transport}


def task_queues() -> list[str]:
    """The queues tasks are sent to: the default one and every routed one (settings.CELERY_TASK_ROUTES)."""
    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}
    return sorted({settings.CELERY_TASK_DEFAULT_QUEUE, *routed})


def worker_status(timeout: float = 1.0) -> dict[str, Any]:
    """Workers answering a broadcast, with the queues each consumes, and each queue with its consumers: a queue
    nobody consumes (no `gpu` worker: pre-labels and training wait for ever) makes the workers not ok."""
    try:
        queues = app.control.inspect(timeout=timeout).active_queues() or {}
    except Exception as exc:
        return {"ok": False, "workers": [], "error": str(exc)}
    workers = [
        {"name": name, "queues": sorted(q["name"] for q in consumed)} for name, consumed in sorted(queues.items())
    ]
    served = sorted({queue for worker in workers for queue in worker["queues"]})
    consumers = {
        queue: [worker["name"] for worker in workers if queue in worker["queues"]]
        for queue in sorted({*task_queues(), *served})
    }
    unserved = [queue for queue, names in consumers.items() if not names]
    return {
        "ok": bool(workers) and not unserved,
        "workers": workers,
        "queues_served": served,
        "consumers": consumers,
        "unserved_queues": unserved,
    }


def platform_health() -> dict[str, Any]:
    database = database_status()
    broker = broker_status()
    workers = worker_status() if broker["ok"] else {"ok": False, "workers": [], "error": "broker unreachable"}
    status = "ok" if database["ok"] and broker["ok"] and workers["ok"] else "degraded"
    return {"status": status, "database": database, "broker": broker, "workers": workers}
