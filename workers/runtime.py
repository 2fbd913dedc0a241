"""Per-process resources of a worker: one event loop, one HTTP session, one Redis pool.

Created lazily inside the process that uses them. A prefork child gets a fresh Runtime in
``worker_process_init`` (after the fork), so no loop or socket is ever shared across processes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import aiohttp
from redis.asyncio import BlockingConnectionPool, Redis

from pipeline.fetch import new_session
from pipeline.ingest import IngestContext
from pipeline.keys import Keys, keys_for
from pipeline.netguard import NetworkPolicy
from pipeline.poll import PollContext
from pipeline.redeliver import BrokerView, ExtractQueue, RedeliverContext, RedeliverPolicy
from pipeline.settings import Settings

T = TypeVar("T")

REDIS_POOL_SIZE = 50  # connections per worker process
REDIS_POOL_WAIT_SECONDS = 30.0  # then a ConnectionError: transient, the task is retried


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.keys: Keys = keys_for(settings.output_stream, settings.duplicates_stream)
        self._runner: asyncio.Runner | None = None
        self._http: aiohttp.ClientSession | None = None
        self._redis: Redis | None = None
        self._ingest: IngestContext | None = None
        self._broker: Redis | None = None

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on this process's persistent loop (reused by every task)."""
        if self._runner is None:
            self._runner = asyncio.Runner()
        return self._runner.run(coro)

    def redis(self) -> Redis:
        if self._redis is None:
            # A poll runs up to FEED_CONCURRENCY x (ARTICLE_CONCURRENCY + 1) coroutines that
            # each talk to Redis (politeness slots, claims, page blobs). redis-py's default
            # pool fails the 101st concurrent command with MaxConnectionsError; a blocking
            # pool makes it wait for a free connection instead (found by bench/ingest_bench.py
            # with 200 feeds on 200 hosts).
            pool = BlockingConnectionPool.from_url(
                self.settings.require_redis_url(),
                max_connections=REDIS_POOL_SIZE,
                timeout=REDIS_POOL_WAIT_SECONDS,
                health_check_interval=30,
                socket_keepalive=True,
            )
            self._redis = Redis.from_pool(pool)
        return self._redis

    async def poll_context(self, queue: ExtractQueue) -> PollContext:
        if self._http is None or self._http.closed:
            self._http = new_session(
                self.settings, NetworkPolicy.from_settings(self.settings)
            )  # inside the running loop, as aiohttp needs
        return PollContext.create(self.settings, self.keys, self.redis(), self._http, queue)

    def ingest_context(self) -> IngestContext:
        if self._ingest is None:
            self._ingest = IngestContext.create(self.settings, self.keys, self.redis())
        return self._ingest

    def redeliver_context(self, queue: ExtractQueue, broker: BrokerView) -> RedeliverContext:
        return RedeliverContext(
            redis=self.redis(),
            keys=self.keys,
            broker=broker,
            queue=queue,
            policy=RedeliverPolicy.from_settings(self.settings),
        )

    def broker_redis(self) -> Redis:
        """The broker's Redis: feedpipe's own unless FEEDPIPE_BROKER_URL names another."""
        if self.settings.celery_broker_url == self.settings.require_redis_url():
            return self.redis()
        if self._broker is None:
            self._broker = Redis.from_url(self.settings.celery_broker_url, socket_keepalive=True)
        return self._broker

    def close(self) -> None:
        if self._runner is None:
            return
        if self._http is not None and not self._http.closed:
            self._runner.run(self._http.close())
        for client in (self._redis, self._broker):
            if client is not None:
                self._runner.run(client.aclose())
        self._runner.close()
        self._runner = None
