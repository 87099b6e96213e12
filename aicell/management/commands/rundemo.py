"""Serve the platform with a real Celery worker (and beat) until Ctrl-C; children stop with it."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from aicell.demo import demo_credentials_file


class Command(BaseCommand):
    help = "Run the web server, a Celery worker on the default and gpu queues, and beat, together."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)

    def handle(self, *args: Any, **options: Any) -> None:
        python = sys.executable
        commands = {
            "worker": [python, "-m", "celery", "-A", "aicell", "worker", "-Q", "default,gpu", "-c", "1", "-l", "info"],
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
