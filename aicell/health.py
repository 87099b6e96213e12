"""Health of the three moving parts: database, broker, workers (with the queues they consume)."""

from __future__ import annotations

import time
from typing import Any

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


def worker_status(timeout: float = 1.0) -> dict[str, Any]:
    """Workers answering a broadcast ping, with the queues each consumes (is anyone serving `gpu`?)."""
    try:
        queues = app.control.inspect(timeout=timeout).active_queues() or {}
    except Exception as exc:
        return {"ok": False, "workers": [], "error": str(exc)}
    workers = [
        {"name": name, "queues": sorted(q["name"] for q in consumed)} for name, consumed in sorted(queues.items())
    ]
    served = sorted({queue for worker in workers for queue in worker["queues"]})
    return {"ok": bool(workers), "workers": workers, "queues_served": served}


def platform_health() -> dict[str, Any]:
    database = database_status()
    broker = broker_status()
    workers = worker_status() if broker["ok"] else {"ok": False, "workers": [], "error": "broker unreachable"}
    status = "ok" if database["ok"] and broker["ok"] and workers["ok"] else "degraded"
    return {"status": status, "database": database, "broker": broker, "workers": workers}
