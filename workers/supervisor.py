"""`feedpipe run`: Redis (embedded if needed), fetch + extract workers and beat, one summary line
per interval, and a clean stop of everything on Ctrl-C or SIGTERM."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Iterator, Mapping
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
from pipeline.redact import redact_url
from pipeline.settings import Settings
from workers.celery_config import QUEUE_DISPATCH, QUEUE_EXTRACT, QUEUE_FETCH, QUEUE_PUSH
from workers.parent_death import launcher

CELERY = [sys.executable, "-m", "celery", "-A", "workers.app"]
STOP_TIMEOUT = 75.0  # above the extract hard time limit (60 s): warm shutdown may finish a task
# An extract pool process is replaced after this many articles (or 400 MB): memory stays flat,
# and a replacement costs a fork, caches started cold, and at times seconds with one pool
# process missing (docs/performance.md, "Pool processes recycled less often").
EXTRACT_TASKS_PER_CHILD = 1000


def celery_commands(settings: Settings, node: str) -> dict[str, list[str]]:
    """The processes of a deployment: FEEDPIPE_FETCH_PROCESSES fetch workers ("fetch",
    "fetch-2", ...), one extract worker, beat, and, when FEEDPIPE_WEBSUB_BASE_URL is set, the
    WebSub callback service and the push worker that ingests what hubs send. docker-compose.yml
    runs the same commands, one fetch worker per container (scaled with --scale)."""
    common = ["-l", settings.log_level, "-E", "--without-gossip", "--without-mingle"]
    fetch = {
        name: _fetch_command(settings, f"{name}-{node}", f"{QUEUE_FETCH},{QUEUE_DISPATCH}", common)
        for name in fetch_names(settings.fetch_processes)
    }
    commands = fetch | {
        "extract": [
            *CELERY,
            "worker",
            "-Q",
            QUEUE_EXTRACT,
            "-n",
            f"extract-{node}@%h",
            "-c",
            str(settings.extract_concurrency),
            "--prefetch-multiplier=1",
            f"--max-tasks-per-child={EXTRACT_TASKS_PER_CHILD}",
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
    if settings.websub_base_url:
        commands["websub"] = [sys.executable, "-m", "workers.cli", "websub"]
        commands["push"] = _fetch_command(settings, f"push-{node}", QUEUE_PUSH, common)
    return commands


def fetch_names(processes: int) -> list[str]:
    return ["fetch", *(f"fetch-{k}" for k in range(2, processes + 1))]


def _fetch_command(settings: Settings, worker: str, queues: str, common: list[str]) -> list[str]:
    """A fetch worker (polls) or the push worker: the same kind of process, on other queues."""
    return [
        *CELERY,
        "worker",
        "-Q",
        queues,
        "-n",
        f"{worker}@%h",
        # Threads sharing one event loop (workers/runtime.py): polling is waiting on I/O. A
        # process is one core at most: FEEDPIPE_FETCH_PROCESSES of them use more.
        "-P",
        "threads",
        "-c",
        str(settings.fetch_concurrency),
        "--prefetch-multiplier=1",
        *common,
    ]


class Stop(Exception):
    """Raised from a signal handler to leave the watch loop: a clean stop."""


class OutputClosed(Stop):
    """Our stdout was closed (`feedpipe demo | head`): nobody reads on, so everything stops."""


RESTART_LIMIT, RESTART_WINDOW = 5, 300.0
LOG_TAIL_LINES = 8
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class CrashLoop(Exception):
    def __init__(self, name: str, code: int | None, log_tail: str) -> None:
        super().__init__(
            f"{name} exited {RESTART_LIMIT} times within {RESTART_WINDOW:g} s (last exit code "
            f"{code}); the end of its log:\n{log_tail}"
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
        # A role names every process of its kind ("fetch": fetch, fetch-2, ...).
        self.commands = {
            k: v for k, v in commands.items() if roles is None or k.split("-")[0] in roles
        }
        for name in self.commands:
            self.procs[name] = self._spawn(name)

    def _spawn(self, name: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [*launcher(os.getpid()), *self.commands[name]],  # dies with us, even on SIGKILL
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
                raise CrashLoop(name, self.procs[name].returncode, self.log_tail(name))
            self.procs[name] = self._spawn(name)
            restarted.append(name)
        return restarted

    def log_tail(self, name: str) -> str:
        """The last lines of a process's log, indented, for the terminal."""
        if self.log_dir is None:
            return "  (its log is above: --verbose)"
        lines = _last_lines(self.log_dir / f"{name}.log", LOG_TAIL_LINES)
        return "\n".join(f"  | {line}" for line in lines) or "  (its log is empty)"

    def stop(self) -> None:
        """Beat first (no new work), then workers: SIGTERM is Celery's warm shutdown. A second
        Ctrl-C (or SIGTERM) while they finish kills them at once."""
        try:
            self._stop_gracefully()
        except Stop:
            self._kill_all()

    def _stop_gracefully(self) -> None:
        order = {"websub": 0, "beat": 0, "fetch": 1, "push": 1, "extract": 2}
        for name in sorted(self.procs, key=lambda n: order.get(n.split("-")[0], 3)):
            proc = self.procs[name]
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT
        for proc in self.procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _kill_group(proc)

    def _kill_all(self) -> None:
        for proc in self.procs.values():
            _kill_group(proc)

    def _log(self, name: str) -> IO[bytes] | None:
        if self.log_dir is None:
            return None
        self.log_dir.mkdir(parents=True, exist_ok=True)
        return open(self.log_dir / f"{name}.log", "ab")


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL a child's whole process group (Celery's pool children too) and reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _last_lines(path: Path, count: int) -> list[str]:
    try:
        with path.open("rb") as log:
            log.seek(max(0, path.stat().st_size - 16384))
            text = log.read().decode(errors="replace")
    except OSError:
        return []
    return [line for line in text.splitlines() if line.strip()][-count:]


class PreflightError(Exception):
    """What stops `feedpipe run`/`demo` before any worker starts: the cause and what to fix."""


PREFLIGHT_TIMEOUT = 60.0
WORKER_MODULES = "workers.app, workers.tasks"  # what `celery -A workers.app worker` imports


def preflight(env: Mapping[str, str], broker_url: str | None) -> None:
    """Fail in seconds, with the cause, instead of starting workers that cannot run: the
    broker (when it is another Redis) answers and the worker app imports."""
    if broker_url:
        check_redis(broker_url, "FEEDPIPE_BROKER_URL")
    check_worker_app(env)


def check_redis(url: str, setting: str) -> None:
    try:
        with redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5) as client:
            client.ping()
    except (redis.RedisError, ValueError, OSError) as exc:
        raise PreflightError(
            f"cannot reach Redis at {redact_url(url)} ({setting}): {type(exc).__name__}: {exc}"
        ) from exc


def check_worker_app(env: Mapping[str, str]) -> None:
    """Import the worker app as a worker would, in a child with the workers' environment: a
    missing dependency or a bad setting shows here as the exception line, not as a crash loop."""
    done = subprocess.run(
        [sys.executable, "-c", f"import {WORKER_MODULES}"],
        env=dict(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=PREFLIGHT_TIMEOUT,
        check=False,
    )
    if done.returncode == 0:
        return
    cause = ([line for line in done.stderr.splitlines() if line.strip()] or ["no output"])[-1]
    raise PreflightError(
        f"the workers cannot start: importing {WORKER_MODULES} failed: {cause}\n"
        "A missing module means an incomplete install: reinstall with "
        "`pip install -c constraints.txt -e .` (README, quick start); a setting's name "
        "in the line above is the one to fix."
    )


@dataclass
class RedisOutage:
    """Reports Redis going away and coming back, once each, instead of a traceback per tick.
    The workers wait and reconnect on their own; nothing is stopped while Redis is away."""

    url: str
    down_since: float | None = None

    def failed(self, exc: Exception) -> str | None:
        if self.down_since is not None:
            return None
        self.down_since = time.monotonic()
        return (
            f"feedpipe: Redis at {redact_url(self.url)} is unreachable ({exc}); the workers "
            "keep waiting for it and go on when it is back"
        )

    def answered(self) -> str | None:
        if self.down_since is None:
            return None
        away = time.monotonic() - self.down_since
        self.down_since = None
        return f"feedpipe: Redis is back after {away:.0f} s"


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
        queued = sum(self.client.llen(q) for q in (QUEUE_FETCH, QUEUE_PUSH, QUEUE_EXTRACT))
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
    outage: RedisOutage,
    until: Callable[[], bool] = lambda: False,
) -> int:
    """Call ``tick`` every ``interval`` seconds until a stop signal or ``until()``; a child
    that dies is restarted, unless it keeps dying; Redis going away is reported, not fatal.
    Returns the exit code. Signals must be routed with ``stop_signals`` around the call."""
    try:
        while True:
            time.sleep(interval)
            _tick(tick, outage)
            for name in supervisor.restart_dead():
                say(
                    f"feedpipe: {name} exited unexpectedly; restarted it. The end of its "
                    f"log:\n{supervisor.log_tail(name)}"
                )
            if outage.down_since is None and until():
                return 0
    except OutputClosed:
        raise  # up to the command: it has nothing more to say
    except Stop:
        return 0
    except CrashLoop as exc:
        say(f"feedpipe: {exc}\nfeedpipe: stopping")
        return 1


def _tick(tick: Callable[[], None], outage: RedisOutage) -> None:
    try:
        tick()
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        report = outage.failed(exc)
    except BrokenPipeError as exc:
        _silence_stdout()
        raise OutputClosed("output closed") from exc
    else:
        report = outage.answered()
    if report:
        say(report)


def say(message: str) -> None:
    """A line on stderr that never raises: a closed terminal must not stop the shutdown."""
    with contextlib.suppress(OSError, ValueError):
        print(message, file=sys.stderr, flush=True)


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that Python's flush at exit does not fail again."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


@contextlib.contextmanager
def stop_signals() -> Iterator[None]:
    """Turn Ctrl-C, SIGTERM and SIGHUP into ``Stop`` for the whole command, so every
    ``finally`` (workers, embedded Redis) runs however the stop is asked for."""

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        raise Stop(signal.Signals(signum).name)

    previous = {s: signal.signal(s, on_signal) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
