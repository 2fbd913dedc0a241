"""What Flower sees: a real run's task events, read by a real ``EventReceiver``.

The workers send task events in batches (workers/consumer.py); a receiver must still see, for
every extract and poll task, its ``task-received``, ``-started`` and ``-succeeded``, and the
workers' heartbeats. No ``task-sent`` (workers/celery_config.py says why).
"""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import redis as sync_redis
from redis.asyncio import Redis

from pipeline.settings import Settings
from tests.integration.conftest import KEYS, Workers, add_feeds
from tests.integration.servers import ServerThread
from tests.integration.test_crash_safety import farm_app
from tests.integration.test_redeliver import wait
from workers.celery_config import EXTRACT_TASK_ID_PREFIX, TASK_EXTRACT, TASK_POLL, create_app
from workers.embedded_redis import EmbeddedRedis

pytestmark = pytest.mark.slow

ENTRIES = 6


class Events:
    """Every event of the run, by task id, read in a thread as Flower reads them."""

    def __init__(self, redis_url: str) -> None:
        self.app = create_app(Settings(redis_url=redis_url))
        self.by_task: dict[str, list[str]] = defaultdict(list)
        self.names: dict[str, str] = {}
        self.types: set[str] = set()
        self._receiver: Any = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._capture, daemon=True)
        self._thread.start()
        assert self._ready.wait(15), "the event receiver did not start"

    def _on_event(self, event: dict[str, Any]) -> None:
        self.types.add(event["type"])
        if "uuid" in event:
            self.by_task[event["uuid"]].append(event["type"])
            if "name" in event:
                self.names[event["uuid"]] = event["name"]

    def _capture(self) -> None:
        with self.app.connection_for_read() as connection:
            self._receiver = self.app.events.Receiver(connection, handlers={"*": self._on_event})
            self._ready.set()
            self._receiver.capture(limit=None, timeout=None, wakeup=False)

    def stop(self) -> None:
        if self._receiver is not None:
            self._receiver.should_stop = True
        self._thread.join(10)


async def register(redis_url: str, feed_url: str) -> None:
    """The feed, due now, as `feedpipe add` registers it."""
    async with Redis.from_url(redis_url) as client:
        await add_feeds(client, feed_url)


def test_flower_sees_every_task_of_a_run_through_batched_events(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "redis", persistent=False)
    server.start()
    farm = ServerThread(farm_app(ENTRIES))
    asyncio.run(register(server.url, farm.url("/feed/0")))
    client = sync_redis.Redis.from_url(server.url)
    events = Events(server.url)
    workers = Workers(server.url, tmp_path, node="events")
    try:
        wait(lambda: client.xlen(KEYS.output_stream) >= ENTRIES, 60, "every story published")
        lifecycle = ["task-received", "task-started", "task-succeeded"]

        def seen_all() -> bool:
            extract = [t for t in events.by_task if t.startswith(EXTRACT_TASK_ID_PREFIX)]
            return len(extract) >= ENTRIES and all(
                events.by_task[t][-3:] == lifecycle for t in extract
            )

        wait(seen_all, 10, "every extract task's events")  # at most a flush interval late
        names = set(events.names.values())
        assert {TASK_EXTRACT, TASK_POLL} <= names
        polls = [t for t, name in events.names.items() if name == TASK_POLL]
        assert all(events.by_task[t][:3] == lifecycle for t in polls)
        assert "worker-heartbeat" in events.types or "worker-online" in events.types
        assert "task-sent" not in events.types
        # The log says each article once, in feedpipe's line (Celery's per-task lines are off).
        extract_log = workers.log("extract")
        assert " article stage=extract " in extract_log
        assert "succeeded in" not in extract_log and "] received" not in extract_log
        assert "] received" not in workers.log("fetch")
    finally:
        events.stop()  # first: the workers' heartbeats wake its loop to see it should stop
        workers.stop()
        client.close()
        farm.stop()
        server.stop()
