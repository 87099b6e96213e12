"""Serve the platform with real Celery workers (one per queue) and beat until Ctrl-C; children stop with it."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from aicell.demo import demo_credentials_file

# One worker per queue, as production's CPU and GPU workers (docker-compose.yml): a task on `default` (exports,
# imports, storage checks, the reaper) never waits behind one on `gpu` (pre-labelling, training runs of minutes).
DEMO_QUEUES = ("default", "gpu")


def worker_argv(queue: str) -> list[str]:
    """The demo's worker for one queue, named after it (default@host, gpu@host) so health tells them apart."""
    return [sys.executable, "-m", "celery", "-A", "aicell", "worker", "-Q", queue, "-n", f"{queue}@%h", "-c", "1"]


class Command(BaseCommand):
    help = "Run the web server, one Celery worker per queue (default, gpu) and beat, together."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)

    def handle(self, *args: Any, **options: Any) -> None:
        python = sys.executable
        commands = {
            **{f"{queue} worker": [*worker_argv(queue), "-l", "info"] for queue in DEMO_QUEUES},
            "beat": [
                python,
                "-m",
                "celery",
                "-A",
                "aicell",
                "beat",
                "-l",
                "info",
                "-s",
                str(settings.VAR_DIR / "beat"),
            ],
            "web": [python, "manage.py", "runserver", f"{options['host']}:{options['port']}", "--noreload"],
        }
        children = {name: subprocess.Popen(command, cwd=settings.BASE_DIR) for name, command in commands.items()}
        url = f"http://{options['host']}:{options['port']}"
        self.stdout.write(
            f"\nAI-cell is starting at {url}/  (API docs {url}/api/docs/, admin {url}/admin/)\n"
            f"Demo users and passwords: {demo_credentials_file()}\nCtrl-C stops everything.\n"
        )
        stopping = False

        def stop(*_: Any) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            while not stopping:
                for name, child in children.items():
                    if child.poll() is not None:
                        self.stderr.write(f"{name} exited with status {child.returncode}; stopping the demo.")
                        stopping = True
                time.sleep(0.5)
        finally:
            for child in children.values():
                if child.poll() is None:
                    child.terminate()
            for child in children.values():
                try:
                    child.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    child.kill()
