"""What the pipeline benchmarks share: their own redis-server, `feedpipe run`'s workers, feeds
registered the way `feedpipe feeds import` does it, CPU and memory readings from /proc, and the
JSON report with the machine it ran on."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
from redis.asyncio import Redis as AsyncRedis

from pipeline import registry
from pipeline.keys import STAT_DEAD_LETTERED, STAT_DUPLICATES, STAT_PUBLISHED, Keys
from pipeline.models import FeedSpec, Fulltext
from pipeline.settings import Settings
from workers.embedded_redis import EmbeddedRedis
from workers.supervisor import Supervisor

KEYS = Keys()
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def machine() -> dict[str, Any]:
    """Cores, memory, CPU model and Python of the machine the figures came from."""
    info: dict[str, Any] = {"cores": os.cpu_count(), "python": platform.python_version()}
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        total_kb = int(meminfo.read_text().split()[1])
        info["ram_gib"] = round(total_kb / 2**20, 1)
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    return info


def pipeline_env(redis_url: str, data_dir: Path, extra: Mapping[str, str]) -> dict[str, str]:
    """The environment `feedpipe run` would see: only our FEEDPIPE_ settings, farm allowed."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("FEEDPIPE_")}
    return base | {
        "FEEDPIPE_REDIS_URL": redis_url,
        "FEEDPIPE_DATA_DIR": str(data_dir),
        "FEEDPIPE_ALLOW_PRIVATE_NETWORKS": "true",  # the farm is on 127.0.0.1
        # A log line per article would be part of the cost; BENCH_LOG_LEVEL=INFO to look inside.
        "FEEDPIPE_LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
        **extra,
    }


def start_pipeline(
    redis_url: str, data_dir: Path, extra: Mapping[str, str], roles: Collection[str] | None = None
) -> Supervisor:
    """fetch worker, extract worker and beat as `feedpipe run` starts them (``roles``: a
    subset), under its supervisor, with the settings in ``extra`` (FEEDPIPE_ variables)."""
    env = pipeline_env(redis_url, data_dir, extra)
    settings = Settings.model_validate(
        {
            k.removeprefix("FEEDPIPE_").lower(): v
            for k, v in env.items()
            if k.startswith("FEEDPIPE_")
        }
    )
    supervisor = Supervisor(settings, env, data_dir / "logs")
    supervisor.start(roles)
    return supervisor


@dataclass
class Deployment:
    """A running feedpipe of a benchmark: its own redis-server and `feedpipe run`'s processes."""

    data_dir: Path
    redis_url: str
    client: redis.Redis
    supervisor: Supervisor

    def log_tails(self) -> None:
        log_tails(self.data_dir)


@contextmanager
def deployment(
    settings: Mapping[str, str],
    roles: Collection[str] = ("fetch", "extract", "beat"),
    before_workers: Callable[[str], None] | None = None,
) -> Iterator[Deployment]:
    """A redis-server (AOF, temporary directory, free port) and the ``roles`` of `feedpipe
    run` with ``settings``; ``before_workers(redis_url)`` runs before any worker starts.
    Yields once the workers answer a ping; stops everything on the way out."""
    with tempfile.TemporaryDirectory(prefix="feedpipe-bench-") as tmp:
        data_dir = Path(tmp)
        store = EmbeddedRedis(data_dir / "redis", persistent=True)
        store.start()
        supervisor: Supervisor | None = None
        try:
            if before_workers is not None:
                before_workers(store.url)
            supervisor = start_pipeline(store.url, data_dir, settings, roles)
            wait_for_workers(store.url, data_dir, count=len({"fetch", "extract"} & set(roles)))
            with redis.Redis.from_url(store.url) as client:
                yield Deployment(data_dir, store.url, client, supervisor)
        finally:
            if supervisor is not None:
                supervisor.stop()
            store.stop()


def wait_for_workers(redis_url: str, data_dir: Path, count: int, timeout: float = 60) -> None:
    """Until ``count`` Celery workers answer a ping (workers take a few seconds to boot)."""
    env = pipeline_env(redis_url, data_dir, {})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ping = subprocess.run(
            [sys.executable, "-m", "celery", "-A", "workers.app", "inspect", "ping", "-t", "2"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if ping.stdout.count("pong") >= count:
            return
        time.sleep(1)
    raise TimeoutError(f"{count} workers did not answer within {timeout} s")


def register_feeds(
    redis_url: str,
    urls: list[str],
    interval: int | Sequence[int] | None = None,
    fulltext: Fulltext = "auto",
) -> None:
    """Through registry.add_feeds, as `feedpipe feeds import` does: every feed due now.
    ``interval``: one for every feed, or each feed's own."""
    every = interval if isinstance(interval, Sequence) else [interval] * len(urls)

    async def add() -> None:
        client = AsyncRedis.from_url(redis_url)
        try:
            specs = [
                FeedSpec(url=url, interval=seconds, fulltext=fulltext)
                for url, seconds in zip(urls, every, strict=True)
            ]
            await registry.add_feeds(client, KEYS, specs, time.time())
        finally:
            await client.aclose()

    asyncio.run(add())


def decided(client: redis.Redis) -> int:
    """Articles whose fate is settled: published, discarded as duplicates, or dead-lettered."""
    stats = client.hmget(KEYS.stats, [STAT_PUBLISHED, STAT_DUPLICATES, STAT_DEAD_LETTERED])
    return sum(int(v or 0) for v in stats)


def wait_until(
    probe: Callable[[], int], target: int, stall: float, every: float = 0.5
) -> tuple[int, float]:
    """Poll ``probe`` until it reaches ``target`` or stops moving for ``stall`` seconds.
    Returns the last value and the monotonic time it was first seen."""
    value, changed = probe(), time.monotonic()
    while value < target and time.monotonic() - changed < stall:
        time.sleep(every)
        now_value = probe()
        if now_value != value:
            value, changed = now_value, time.monotonic()
    return value, changed


def process_tree(pid: int) -> list[int]:
    """``pid`` and its live children (a worker's pool processes)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return [pid]
    return [pid, *(int(c) for c in children)]


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, plus its children that have exited and were reaped
    (a Celery pool's recycled processes), from /proc/<pid>/stat."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
    return (utime + stime + cutime + cstime) / CLOCK_TICKS


def tree_cpu_seconds(pid: int) -> float:
    """CPU of a worker: its main process (with reaped children) and its live children."""
    main, *children = process_tree(pid)
    return cpu_seconds(main) + sum(cpu_seconds(c) for c in children)


def cpu_by_role(supervisor: Supervisor, redis_pid: int | None) -> dict[str, float]:
    """CPU seconds by role: the fetch workers ("fetch", "fetch-2", ...) summed as "fetch",
    each also under its own name when there are several."""
    found: dict[str, float] = {}
    for name, proc in supervisor.procs.items():
        seconds = tree_cpu_seconds(proc.pid)
        role = name.split("-")[0]
        found[role] = found.get(role, 0.0) + seconds
        if name != role:
            found[name] = seconds
    if redis_pid is not None:
        found["redis"] = cpu_seconds(redis_pid)
    return found


def redis_pid(client: redis.Redis) -> int:
    return int(client.info("server")["process_id"])


def write_report(path: Path, report: dict[str, Any]) -> None:
    report = {
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        **report,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1, ensure_ascii=False))
    print(f"report written to {path}")


def log_tails(data_dir: Path, lines: int = 15) -> None:
    """The end of every worker log (printed when a run fell short, before its logs go)."""
    for log in sorted((data_dir / "logs").glob("*.log")):
        tail = log.read_text(errors="replace").splitlines()[-lines:]
        print(f"--- {log.name}\n" + "\n".join(tail))


def ratio(value: float, baseline: float) -> float:
    return round(value / baseline, 3) if baseline else float("nan")
