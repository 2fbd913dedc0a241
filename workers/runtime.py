"""Per-process resources of a worker: one event loop, one HTTP session, one Redis pool.

Created lazily inside the process that uses them. A prefork child (the extract worker) gets a
fresh Runtime in ``worker_process_init`` (after the fork), so no loop or socket is ever shared
across processes, and runs its coroutines on its own thread's loop. The fetch worker runs
Celery's thread pool: its tasks are threads that hand their coroutines to one event loop
running in a thread of its own, so every poll of the process shares one HTTP session, one
Redis pool and one set of per-host waiting lines, and a poll waiting for a polite host holds
no process (docs/fetching.md).
"""

from __future__ import annotations

import asyncio
import ipaddress
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp
from redis.asyncio import BlockingConnectionPool, Redis

from pipeline.article_text import ExtractionPolicy
from pipeline.dedupe import DedupePolicy
from pipeline.extract_stage import ExtractContext
from pipeline.fetch import Fetcher, FetchLimits, new_session
from pipeline.fulltext import FulltextPolicy
from pipeline.keys import Keys, keys_for
from pipeline.language import LanguagePolicy
from pipeline.netguard import NetworkPolicy
from pipeline.politeness import HostGate, HostLimits, HostQueues
from pipeline.poll import PollContext, PollPolicy
from pipeline.publish import PublishPolicy
from pipeline.redeliver import BrokerView, ExtractQueue, RedeliverContext, RedeliverPolicy
from pipeline.registry import FeedPolicy
from pipeline.robots import RobotsCache, RobotsPolicy, agent_token
from pipeline.routes import Router
from pipeline.schedule import SchedulePolicy
from pipeline.settings import Settings
from pipeline.websub import WebSubContext, WebSubPolicy

T = TypeVar("T")

# Connections per worker process: a fetch process runs thousands of coroutines at once, and
# waiting for a free connection costs CPU (a condition, a timer) on every command.
REDIS_POOL_SIZE = 200
REDIS_POOL_WAIT_SECONDS = 30.0  # then a ConnectionError: transient, the task is retried


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.keys: Keys = keys_for(settings.output_stream, settings.duplicates_stream)
        self._runner: asyncio.Runner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop thread's (thread pool)
        self._loop_thread: threading.Thread | None = None
        self._lock = threading.RLock()  # task threads create the shared clients once
        self._http: aiohttp.ClientSession | None = None
        self._redis: Redis | None = None
        self._extract: ExtractContext | None = None
        self._poll: PollContext | None = None
        self._broker: Redis | None = None

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on this process's persistent loop (reused by every task): in the
        calling thread when it is the process's main thread (prefork), else on the loop thread
        shared by every task thread (thread pool). One process uses one of the two: clients
        are bound to the loop that made them."""
        if threading.current_thread() is threading.main_thread():
            if self._loop is not None:
                coro.close()
                raise RuntimeError("this process's runtime already runs on a loop thread")
            if self._runner is None:
                self._runner = asyncio.Runner()
            return self._runner.run(coro)
        return asyncio.run_coroutine_threadsafe(coro, self._shared_loop()).result()

    def _shared_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._runner is not None:
                raise RuntimeError("this process's runtime already runs on its main thread")
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="feedpipe-loop", daemon=True
                )
                thread.start()
                self._loop, self._loop_thread = loop, thread
            return self._loop

    def redis(self) -> Redis:
        with self._lock:
            return self._redis_client()

    def _redis_client(self) -> Redis:
        if self._redis is None:
            # The polls of a fetch process run hundreds of coroutines that each talk to Redis
            # (politeness slots, claims, page blobs). redis-py's default pool fails the 101st
            # concurrent command with MaxConnectionsError; a blocking pool makes it wait for
            # a free connection instead (found by bench/ingest_bench.py with 200 feeds on 200
            # hosts).
            pool = BlockingConnectionPool.from_url(
                self.settings.require_redis_url(),
                max_connections=REDIS_POOL_SIZE,
                timeout=REDIS_POOL_WAIT_SECONDS,
                health_check_interval=30,
                **_keepalive(self.settings.require_redis_url()),
            )
            self._redis = Redis.from_pool(pool)
        return self._redis

    async def poll_context(self, queue: ExtractQueue) -> PollContext:
        """One per process, shared by every poll task: its per-host waiting lines and its cap
        on requests in flight hold for the whole process, not for one task."""
        if self._http is None or self._http.closed:
            self._http = http_session(self.settings)  # inside the running loop, as aiohttp needs
            self._poll = None
        if self._poll is None:
            self._poll = poll_context(self.settings, self.keys, self.redis(), self._http, queue)
        return self._poll

    async def websub_context(self, queue: ExtractQueue) -> WebSubContext | None:
        """The poll context's fetcher, limits and WebSub policy; None where WebSub is off."""
        poll = await self.poll_context(queue)
        if poll.websub is None:
            return None
        return WebSubContext(poll.redis, poll.keys, poll.fetcher, poll.feed_limits, poll.websub)

    def extract_context(self) -> ExtractContext:
        if self._extract is None:
            self._extract = extract_context(self.settings, self.keys, self.redis())
        return self._extract

    def redeliver_context(self, queue: ExtractQueue, broker: BrokerView) -> RedeliverContext:
        return RedeliverContext(
            redis=self.redis(),
            keys=self.keys,
            broker=broker,
            queue=queue,
            policy=redeliver_policy(self.settings),
        )

    def broker_redis(self) -> Redis:
        """The broker's Redis: feedpipe's own unless FEEDPIPE_BROKER_URL names another."""
        if self.settings.celery_broker_url == self.settings.require_redis_url():
            return self.redis()
        with self._lock:
            if self._broker is None:
                url = self.settings.celery_broker_url
                self._broker = Redis.from_url(url, **_keepalive(url))
            return self._broker

    def close(self) -> None:
        if self._runner is None and self._loop is None:
            return
        self._run_anywhere(self._aclose())
        if self._runner is not None:
            self._runner.close()
            self._runner = None
        if self._loop is not None and self._loop_thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._loop_thread.join(10)
            self._loop.close()
            self._loop = self._loop_thread = None

    def _run_anywhere(self, coro: Coroutine[Any, Any, None]) -> None:
        if self._loop is not None:
            asyncio.run_coroutine_threadsafe(coro, self._loop).result(30)
        elif self._runner is not None:
            self._runner.run(coro)

    async def _aclose(self) -> None:
        if self._http is not None and not self._http.closed:
            await self._http.close()
        for client in (self._redis, self._broker):
            if client is not None:
                await client.aclose()


# --- Policies: the settings read here, once per process. The pipeline's stages receive these
# value objects and never see Settings, so a stage's inputs are in its signature.


def network_policy(settings: Settings) -> NetworkPolicy:
    return NetworkPolicy(
        allow_private=settings.allow_private_networks,
        allowed_networks=tuple(
            ipaddress.ip_network(n, strict=False) for n in settings.allowed_networks
        ),
    )


def host_limits(settings: Settings) -> HostLimits:
    return HostLimits(
        max_in_flight=settings.host_max_in_flight,
        min_gap_seconds=settings.host_min_gap_seconds,
        # A slot is a lease: it must outlast the longest request.
        lease_seconds=settings.connect_timeout_seconds + settings.read_timeout_seconds + 5,
    )


def feed_limits(settings: Settings) -> FetchLimits:
    return FetchLimits(
        settings.connect_timeout_seconds, settings.read_timeout_seconds, settings.max_feed_bytes
    )


def page_limits(settings: Settings) -> FetchLimits:
    return FetchLimits(
        settings.connect_timeout_seconds, settings.read_timeout_seconds, settings.max_page_bytes
    )


def schedule_policy(settings: Settings) -> SchedulePolicy:
    return SchedulePolicy(
        default_interval=settings.poll_interval_seconds,
        min_interval=settings.min_poll_interval_seconds,
        max_interval=settings.max_poll_interval_seconds,
        backoff_max=settings.error_backoff_max_seconds,
        retry_after_max=settings.retry_after_max_seconds,
        jitter_fraction=settings.jitter_fraction,
    )


def websub_policy(settings: Settings) -> WebSubPolicy | None:
    """None when FEEDPIPE_WEBSUB_BASE_URL is unset: feeds are polled only."""
    if not settings.websub_base_url:
        return None
    return WebSubPolicy(
        base_url=settings.websub_base_url,
        lease_seconds=settings.websub_lease_seconds,
        poll_seconds=settings.websub_poll_seconds,
    )


def redeliver_policy(settings: Settings) -> RedeliverPolicy:
    return RedeliverPolicy(after_seconds=settings.redeliver_after_seconds)


def feed_policy(settings: Settings) -> FeedPolicy:
    """What a feed a user adds must satisfy under these settings (pipeline.registry)."""
    return FeedPolicy(
        network=network_policy(settings),
        min_interval=settings.min_poll_interval_seconds,
        max_interval=settings.max_poll_interval_seconds,
    )


def poll_policy(settings: Settings) -> PollPolicy:
    return PollPolicy(
        budget_seconds=settings.poll_budget_seconds,
        max_entries=settings.max_entries_per_poll,
        unconditional_fetch_seconds=settings.unconditional_fetch_seconds,
        claim_ttl_seconds=settings.claim_ttl_seconds,
        seen_ttl_seconds=settings.seen_ttl_days * 86_400,
        html_ttl_seconds=settings.html_ttl_seconds,
        permanent_redirect_after=settings.permanent_redirect_after,
    )


def http_session(settings: Settings) -> aiohttp.ClientSession:
    """Inside a running loop: aiohttp binds the session to it."""
    return new_session(settings.user_agent, network_policy(settings))


def fetcher(
    settings: Settings, session: aiohttp.ClientSession, redis: Redis, keys: Keys
) -> Fetcher:
    return Fetcher(
        session=session,
        network=network_policy(settings),
        gate=HostGate(redis, keys, host_limits(settings)),
        max_redirects=settings.max_redirects,
        in_flight=asyncio.Semaphore(settings.requests_in_flight),
    )


def poll_context(
    settings: Settings,
    keys: Keys,
    redis: Redis,
    http: aiohttp.ClientSession,
    queue: ExtractQueue,
) -> PollContext:
    return PollContext(
        policy=poll_policy(settings),
        keys=keys,
        redis=redis,
        fetcher=fetcher(settings, http, redis, keys),
        queue=queue,
        schedule=schedule_policy(settings),
        feed_limits=feed_limits(settings),
        page_limits=page_limits(settings),
        host_polls=HostQueues(settings.host_max_in_flight),
        fulltext=FulltextPolicy(min_chars=settings.min_text_chars),
        websub=websub_policy(settings),
        robots=robots_cache(settings),
    )


def robots_cache(settings: Settings) -> RobotsCache | None:
    if not settings.obey_robots_txt:
        return None
    return RobotsCache(RobotsPolicy(agent=agent_token(settings.user_agent)))


def extraction_policy(settings: Settings) -> ExtractionPolicy:
    return ExtractionPolicy.create(settings.min_text_chars, settings.max_page_bytes)


def extract_context(settings: Settings, keys: Keys, redis: Redis) -> ExtractContext:
    return ExtractContext(
        redis=redis,
        keys=keys,
        extraction=extraction_policy(settings),
        publish=PublishPolicy(
            maxlen=settings.stream_maxlen,
            dedupe_ttl_seconds=settings.seen_ttl_days * 86_400,
            min_text_chars=settings.min_text_chars,
            near=DedupePolicy(window_days=settings.dedupe_window_days),
        ),
        fulltext=FulltextPolicy(min_chars=settings.min_text_chars),
        router=Router(),
        language=LanguagePolicy(),
    )


def _keepalive(url: str) -> dict[str, bool]:
    """TCP keepalive (a peer gone without a word is noticed) where there is TCP: redis-py's
    unix socket connection takes no such option."""
    return {} if urlsplit(url).scheme == "unix" else {"socket_keepalive": True}
