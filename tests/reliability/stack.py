"""Throwaway pieces of a production stack for the fault and concurrency tests: a Redis server of our own, a TCP
proxy in front of PostgreSQL that can refuse connections, gunicorn and real Celery worker processes.

Each piece is a real process (or socket) started by the test and stopped by it; nothing here fakes a service.
Redis servers take ports 6390-6399 so that the shared Redis on 6379 is never touched.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
REDIS_PORTS = range(6390, 6400)


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    """Poll until `predicate()` is truthy and return it; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def port_accepts(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


class Process:
    """A child process in its own process group (so kill -9 takes its children too), output kept in a log file."""

    def __init__(self, name: str, argv: list[str], env: Mapping[str, str], log_dir: Path) -> None:
        self.name = name
        self.argv = argv
        self.env = dict(env)
        self.log_path = log_dir / f"{name}.log"
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            self.argv, env=self.env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None, f"{self.name} was never started"
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill9(self) -> None:
        """SIGKILL the whole process group: the process and every child it forked, with no chance to clean up."""
        if self.popen is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=30)

    def stop(self, timeout: float = 20) -> None:
        if not self.alive():
            return
        assert self.popen is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill9()

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


class RedisServer:
    """redis-server on a port of 6390-6399, append-only with fsync on every write (as production runs it: the
    compose file's `--appendonly yes`), so that a crash or restart keeps what was queued."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError("redis-server is not installed")
        self.binary = binary
        self.dir = workdir / "redis"
        self.dir.mkdir(parents=True, exist_ok=True)
        port = next((p for p in REDIS_PORTS if port_is_free(p)), None)
        if port is None:
            raise RuntimeError("no free port in 6390-6399 for a throwaway redis-server")
        self.port = port
        self.process: Process | None = None
        self.restarts = 0

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> RedisServer:
        argv = [
            self.binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--dir",
            str(self.dir),
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--save",
            "",
        ]
        self.process = Process(f"redis-{self.port}", argv, os.environ, self.dir).start()
        wait_until(lambda: port_accepts(self.port), 20, f"redis-server on port {self.port}")
        return self

    def crash(self) -> None:
        """kill -9: the server vanishes mid-conversation, as when its host or container dies."""
        assert self.process is not None
        self.process.kill9()

    def restart(self, down_for: float = 2.0) -> None:
        self.crash()
        time.sleep(down_for)
        self.restarts += 1
        self.start()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


class TcpProxy:
    """A TCP proxy (one thread, selectors) from a local port to PostgreSQL. `refuse()` closes the listening socket
    and cuts every open connection, as a database restart or network loss does; `accept()` serves again."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = free_port()
        self._selector = selectors.DefaultSelector()
        self._listener: socket.socket | None = None
        self._pairs: dict[socket.socket, socket.socket] = {}
        self._lock = threading.Lock()
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="pg-proxy", daemon=True)
        self.connections = 0
        self.cuts = 0

    def start(self) -> TcpProxy:
        self.accept()
        self._thread.start()
        return self

    def accept(self) -> None:
        with self._lock:
            if self._listener is not None:
                return
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", self.port))
            listener.listen(128)
            listener.setblocking(False)
            self._listener = listener
            self._selector.register(listener, selectors.EVENT_READ, "listen")

    def refuse(self) -> None:
        with self._lock:
            if self._listener is not None:
                self._selector.unregister(self._listener)
                self._listener.close()
                self._listener = None
            for sock in list(self._pairs):
                self._drop(sock)
            self.cuts += 1

    def stop(self) -> None:
        self._stopping = True
        self.refuse()
        self._thread.join(timeout=5)

    def _drop(self, sock: socket.socket) -> None:
        other = self._pairs.pop(sock, None)
        for s in (sock, other):
            if s is None:
                continue
            self._pairs.pop(s, None)
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(s)
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def _loop(self) -> None:
        while not self._stopping:
            with self._lock:
                events = self._selector.select(timeout=0.05) if self._selector.get_map() else []
                for key, _ in events:
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    if key.data == "listen":
                        self._accept_one(sock)
                    elif sock in self._pairs:
                        self._pump(sock)
            if not events:
                time.sleep(0.005)

    def _accept_one(self, listener: socket.socket) -> None:
        try:
            client, _ = listener.accept()
        except BlockingIOError:
            return
        try:
            server = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            client.close()
            return
        for s in (client, server):
            s.setblocking(False)
            self._selector.register(s, selectors.EVENT_READ, "pipe")
        self._pairs[client], self._pairs[server] = server, client
        self.connections += 1

    def _pump(self, sock: socket.socket) -> None:
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._drop(sock)
            return
        other = self._pairs[sock]
        try:
            other.setblocking(True)
            other.sendall(data)
            other.setblocking(False)
        except OSError:
            self._drop(sock)


def http_json(
    method: str, url: str, token: str | None = None, body: bytes | None = None, headers: Mapping[str, str] = {}
) -> tuple[int, Any, Mapping[str, str]]:
    """One HTTP request with the standard library (no connection reuse); (status, parsed JSON or None, headers)."""
    import json

    request = urllib.request.Request(url, data=body, method=method)
    if token:
        request.add_header("Authorization", f"Token {token}")
    if body is not None:
        request.add_header("Content-Type", "application/json")
    for key, value in headers.items():
        request.add_header(key, value)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            raw, status, got = response.read(), response.status, response.headers
    except urllib.error.HTTPError as error:
        raw, status, got = error.read(), error.code, error.headers
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = None
    return status, parsed, got


def gunicorn_argv(port: int, workers: int, threads: int = 1) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "aicell.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--timeout",
        "120",
        "--graceful-timeout",
        "5",
        "--access-logfile",
        "-",
    ]


def celery_worker_argv(name: str, queues: str = "default,gpu", concurrency: int = 1) -> list[str]:
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "aicell",
        "worker",
        "-Q",
        queues,
        "-c",
        str(concurrency),
        "-P",
        "prefork",
        "-n",
        f"{name}@%h",
        "-l",
        "info",
        "--without-gossip",
        "--without-mingle",
    ]


@contextlib.contextmanager
def running(*processes: Process) -> Iterator[None]:
    try:
        yield
    finally:
        for process in processes:
            process.stop()
