"""A local redis-server for `feedpipe run` when FEEDPIPE_REDIS_URL is not set."""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import IO

import redis

from pipeline.errors import ConfigError
from workers.parent_death import launcher

INSTALL_HINT = (
    "install Redis (Debian/Ubuntu: `sudo apt-get install redis-server`; macOS: "
    "`brew install redis`) or point feedpipe at an existing one with "
    "FEEDPIPE_REDIS_URL=redis://host:6379/0"
)
URL_FILE = "redis.url"


def find_redis_server() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        raise ConfigError(f"redis-server was not found on PATH: {INSTALL_HINT}")
    return binary


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmbeddedRedis:
    """redis-server on 127.0.0.1 with its data (AOF) in ``data_dir``; one per data dir.

    ``persistent=False`` (tests, benchmarks) keeps nothing on disk.
    """

    def __init__(self, data_dir: Path, *, persistent: bool = True) -> None:
        self.data_dir = data_dir
        self.persistent = persistent
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._lock: IO[str] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 15.0) -> str:
        binary = find_redis_server()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._lock is None:
            self._take_lock()
        self.port = self.port or free_port()  # a restart keeps its port: clients reconnect
        self.process = subprocess.Popen(
            [
                *launcher(os.getpid()),  # stops with its parent, even one killed outright
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.data_dir),
                "--appendonly",
                "yes" if self.persistent else "no",
                "--appendfsync",
                "everysec",
                "--save",
                "",
                "--maxmemory-policy",
                "noeviction",
                "--logfile",
                "redis.log",
                "--daemonize",
                "no",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C goes to us; we stop Redis last, after the workers
        )
        self._wait_ready(timeout)
        (self.data_dir / URL_FILE).write_text(self.url + "\n")
        return self.url

    def restart_if_dead(self) -> bool:
        """Start redis-server again (same port, same AOF) if it exited under us."""
        if self.process is None or self.process.poll() is None:
            return False
        self.start()
        return True

    def stop(self, timeout: float = 15.0) -> None:
        (self.data_dir / URL_FILE).unlink(missing_ok=True)
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # redis-server flushes the AOF on SIGTERM
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def _take_lock(self) -> None:
        lock = open(self.data_dir / "redis.lock", "w")  # noqa: SIM115 - held until stop()
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            lock.close()
            raise ConfigError(
                f"another feedpipe is already running with data dir {self.data_dir} "
                "(FEEDPIPE_DATA_DIR); stop it or choose another data dir"
            ) from exc
        self._lock = lock

    def _wait_ready(self, timeout: float) -> None:
        client = redis.Redis(port=self.port, socket_connect_timeout=1)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if self.process is not None and self.process.poll() is not None:
                    break
                try:
                    if client.ping():
                        return
                except redis.ConnectionError:
                    time.sleep(0.05)
        finally:
            client.close()
        log_tail = _tail(self.data_dir / "redis.log")
        self.stop()
        raise ConfigError(f"redis-server did not start in {self.data_dir}: {log_tail}")


def running_embedded_url(data_dir: Path) -> str | None:
    """The URL of the Redis a running `feedpipe run` started with this data dir, if any."""
    try:
        url = (data_dir / URL_FILE).read_text().strip()
    except OSError:
        return None
    try:
        with redis.Redis.from_url(url, socket_connect_timeout=1) as client:
            client.ping()
    except redis.ConnectionError:
        return None
    return url


def _tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"no log at {path}"
