"""`feedpipe run`: Redis (embedded if needed), fetch + extract workers and beat, one summary line
per interval, and a clean stop of everything on Ctrl-C or SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO

import redis

from pipeline.keys import (
    STAT_DUPLICATES,
    STAT_NEW_ENTRIES,
    STAT_NOT_MODIFIED,
    STAT_POLL_ERRORS,
    STAT_POLLS,
    STAT_PUBLISHED,
    Keys,
    reply_text,
)
from pipeline.settings import Settings

CELERY = [sys.executable, "-m", "celery", "-A", "workers.app"]
STOP_TIMEOUT = 75.0  # above the extract hard time limit (60 s): warm shutdown may finish a task


def celery_commands(settings: Settings, node: str) -> dict[str, list[str]]:
    """The three processes of a deployment; docker-compose.yml runs the same commands."""
    common = ["-l", settings.log_level, "-E", "--without-gossip", "--without-mingle"]
    return {
        "fetch": [
            *CELERY,
            "worker",
            "-Q",
            "fetch,dispatch",
            "-n",
            f"fetch-{node}@%h",
            "-c",
            str(settings.fetch_concurrency),
            "--prefetch-multiplier=1",
            "--max-tasks-per-child=1000",
            *common,
        ],
        "extract": [
            *CELERY,
            "worker",
            "-Q",
            "extract",
            "-n",
            f"extract-{node}@%h",
            "-c",
            str(settings.extract_concurrency),
            "--prefetch-multiplier=1",
            "--max-tasks-per-child=200",
            "--max-memory-per-child=400000",
            *common,
        ],
        "beat": [
            *CELERY,
            "beat",
            "-l",
            settings.log_level,
            "-s",
            str(settings.data_dir / "celerybeat-schedule"),
        ],
    }


class Stop(Exception):
    """Raised from the signal handler to leave the watch loop."""


RESTART_LIMIT, RESTART_WINDOW = 5, 300.0


class CrashLoop(Exception):
    def __init__(self, name: str, code: int | None) -> None:
        super().__init__(
            f"{name} exited {RESTART_LIMIT} times within {RESTART_WINDOW:g} s (last exit code "
            f"{code}); see its log"
        )


@dataclass
class Supervisor:
    settings: Settings
    env: Mapping[str, str]
    log_dir: Path | None  # None: children log to our stderr
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    commands: dict[str, list[str]] = field(default_factory=dict)
    # Exit times of each process, to tell a crash now and then from a crash loop.
    exits: dict[str, list[float]] = field(default_factory=dict)

    def start(self, roles: Collection[str] | None = None) -> None:
        """Start every process, or only ``roles`` (names of celery_commands; benchmarks)."""
        node = f"{os.getpid()}"
        commands = celery_commands(self.settings, node)
        self.commands = {k: v for k, v in commands.items() if roles is None or k in roles}
        for name in self.commands:
            self.procs[name] = self._spawn(name)

    def _spawn(self, name: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            self.commands[name],
            env=dict(self.env),
            stdin=subprocess.DEVNULL,
            stdout=self._log(name),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # we decide the shutdown order, not the terminal
        )

    def dead(self) -> list[str]:
        return [name for name, proc in self.procs.items() if proc.poll() is not None]

    def restart_dead(self) -> list[str]:
        """Start again each process that exited, as compose's restart policy does (a worker
        that Celery gave up on after losing Redis, one killed by the OOM killer). Raises
        CrashLoop when one exited RESTART_LIMIT times within RESTART_WINDOW seconds."""
        restarted = []
        now = time.monotonic()
        for name in self.dead():
            recent = [t for t in self.exits.get(name, []) if now - t < RESTART_WINDOW]
            self.exits[name] = [*recent, now]
            if len(self.exits[name]) >= RESTART_LIMIT:
                raise CrashLoop(name, self.procs[name].returncode)
            self.procs[name] = self._spawn(name)
            restarted.append(name)
        return restarted

    def stop(self) -> None:
        # Beat first (no new work), then workers: SIGTERM is Celery's warm shutdown.
        for name in ("beat", "fetch", "extract"):
            proc = self.procs.get(name)
            if proc is not None and proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT
        for proc in self.procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def _log(self, name: str) -> IO[bytes] | None:
        if self.log_dir is None:
            return None
        self.log_dir.mkdir(parents=True, exist_ok=True)
        return open(self.log_dir / f"{name}.log", "ab")


@dataclass
class Summary:
    """Counters from Redis, printed as deltas since the previous line."""

    client: redis.Redis
    keys: Keys
    previous: dict[str, int] = field(default_factory=dict)

    def line(self) -> str:
        keys = self.keys
        raw = self.client.hgetall(keys.stats)
        now = {reply_text(k): int(v) for k, v in raw.items()}
        delta = {k: now.get(k, 0) - self.previous.get(k, 0) for k in _SUMMARY_STATS}
        self.previous = now
        feeds = self.client.zcard(keys.feeds_due)
        queued = self.client.llen("fetch") + self.client.llen("extract")
        return (
            f"{time.strftime('%H:%M:%S')} feeds {feeds} | polled {delta[STAT_POLLS]} "
            f"(not modified {delta[STAT_NOT_MODIFIED]}) | new items {delta[STAT_NEW_ENTRIES]} "
            f"| published {delta[STAT_PUBLISHED]} | duplicates {delta[STAT_DUPLICATES]} "
            f"| errors {delta[STAT_POLL_ERRORS]} | queued {queued}"
        )


_SUMMARY_STATS = (
    STAT_POLLS,
    STAT_NOT_MODIFIED,
    STAT_NEW_ENTRIES,
    STAT_PUBLISHED,
    STAT_DUPLICATES,
    STAT_POLL_ERRORS,
)


def watch(
    supervisor: Supervisor,
    tick: Callable[[], None],
    interval: float,
    until: Callable[[], bool] = lambda: False,
) -> int:
    """Call ``tick`` every ``interval`` seconds until Ctrl-C/SIGTERM or ``until()``; a child
    that dies is restarted, unless it keeps dying. Returns the exit code."""

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        raise Stop(signal.Signals(signum).name)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while True:
            time.sleep(interval)
            tick()
            for name in supervisor.restart_dead():
                print(f"feedpipe: {name} exited unexpectedly; restarted it", file=sys.stderr)
            if until():
                return 0
    except Stop:
        return 0
    except CrashLoop as exc:
        print(f"feedpipe: {exc}; stopping", file=sys.stderr)
        return 1
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
