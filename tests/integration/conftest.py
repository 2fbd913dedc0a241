"""Real Celery worker subprocesses (fetch, extract, beat) against the session's redis-server."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import pytest_asyncio
from redis.asyncio import Redis

from pipeline import registry
from pipeline.keys import PREFIX, Keys
from pipeline.models import FeedSpec
from pipeline.normalize import feed_id
from pipeline.settings import Settings
from workers.supervisor import celery_commands

KEYS = Keys()


def worker_env(redis_url: str, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDPIPE_")}
    return env | {
        "FEEDPIPE_REDIS_URL": redis_url,
        "FEEDPIPE_DATA_DIR": str(data_dir),
        "FEEDPIPE_DISPATCH_INTERVAL_SECONDS": "0.5",
        "FEEDPIPE_FETCH_CONCURRENCY": "2",
        "FEEDPIPE_EXTRACT_CONCURRENCY": "2",
        "FEEDPIPE_MIN_TEXT_CHARS": "200",
        # Every test server is on 127.0.0.1 (refused by default by the SSRF guard) and one
        # host serves many feeds: no politeness gap, or each test would wait seconds.
        "FEEDPIPE_ALLOW_PRIVATE_NETWORKS": "true",
        "FEEDPIPE_HOST_MIN_GAP_SECONDS": "0",
        "FEEDPIPE_HOST_MAX_IN_FLIGHT": "8",
    }


class Workers:
    """The processes `feedpipe run` and docker-compose start: fetch, extract and beat, and where
    asked the push worker that WebSub notifications go to."""

    def __init__(
        self,
        redis_url: str,
        data_dir: Path,
        extra_env: Mapping[str, str] | None = None,
        node: str = "test",
        roles: tuple[str, ...] = ("fetch", "extract", "beat"),
    ) -> None:
        env = worker_env(redis_url, data_dir) | dict(extra_env or {})
        settings = Settings(
            redis_url=redis_url,
            data_dir=data_dir,
            fetch_concurrency=2,
            extract_concurrency=2,
            websub_base_url="https://feeds.example",  # so that the push worker is among them
        )
        self.env = env
        self.commands = {k: v for k, v in celery_commands(settings, node).items() if k in roles}
        self.logs = {name: data_dir / f"{node}-{name}.log" for name in self.commands}
        self.procs = {name: self._spawn(name) for name in self.commands}
        self._wait_ready()

    def _spawn(self, name: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            self.commands[name],
            env=self.env,
            stdout=self.logs[name].open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self, name: str, sig: signal.Signals = signal.SIGKILL) -> None:
        """Signal a worker's whole process group (main process and pool children) and wait."""
        os.killpg(self.procs[name].pid, sig)
        self.procs[name].wait(120)

    def kill_one_child(self, name: str) -> int:
        """SIGKILL one pool child of a worker (as the OOM killer would); returns its pid."""
        main = self.procs[name].pid
        children = Path(f"/proc/{main}/task/{main}/children").read_text().split()
        victim = int(children[0])
        os.kill(victim, signal.SIGKILL)
        return victim

    def restart(self, name: str) -> None:
        self.procs[name] = self._spawn(name)

    def _wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        for name in set(self.procs) & {"fetch", "extract", "push"}:
            while self.logs[name].read_bytes().count(b" ready.") < 1:
                if self.procs[name].poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"{name} worker did not start:\n{self.log(name)}")
                time.sleep(0.1)

    def log(self, name: str) -> str:
        return self.logs[name].read_text(errors="replace")[-5000:]

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.procs.values())

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def workers(redis_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workers]:
    running = Workers(
        redis_server.url,
        tmp_path_factory.mktemp("workers"),
        roles=("fetch", "extract", "beat", "push"),
    )
    yield running
    running.stop()


@pytest_asyncio.fixture
async def redis(redis_server: Any, workers: Workers) -> AsyncIterator[Redis]:
    """An async client on the test's loop; feedpipe's keys are wiped before each test."""
    client = Redis.from_url(redis_server.url)
    # Only feedpipe's keys: the broker's own (_kombu.binding.*) must survive between tests.
    async for key in client.scan_iter(f"{PREFIX}:*"):
        await client.delete(key)
    yield client
    assert workers.alive(), f"a worker died:\n{workers.log('fetch')}\n{workers.log('extract')}"
    await client.aclose()


async def add_feeds(client: Redis, *urls: str, **options: Any) -> list[str]:
    specs = [FeedSpec(url=u, **options) for u in urls]
    await registry.add_feeds(client, KEYS, specs, time.time())
    return [feed_id(u) for u in urls]


async def stream_items(client: Redis, stream: str = KEYS.output_stream) -> list[dict[str, Any]]:
    return [json.loads(fields[b"item"]) for _id, fields in await client.xrange(stream)]


async def wait_for(check: Callable[[], Any], timeout: float = 45, what: str = "condition") -> Any:
    """Poll an async ``check`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.2)


async def wait_for_items(
    client: Redis, count: int, prefix: str, timeout: float = 45
) -> list[dict[str, Any]]:
    """Wait until ``count`` items whose URL starts with ``prefix`` are on the stream."""

    async def check() -> list[dict[str, Any]] | None:
        items = [i for i in await stream_items(client) if (i["url"] or "").startswith(prefix)]
        return items if len(items) >= count else None

    return list(await wait_for(check, timeout, f"{count} items from {prefix}"))


def validate(item: dict[str, Any], schema: dict[str, Any]) -> None:
    jsonschema.validate(item, schema, format_checker=jsonschema.FormatChecker())
