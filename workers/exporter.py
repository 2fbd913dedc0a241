"""`feedpipe exporter`: Prometheus metrics on /metrics, read from Redis at each scrape.

One small process rather than prometheus-client's multiprocess mode inside the workers: the
workers' prefork children are recycled (max-tasks-per-child) and spread over hosts, so their
own counters would need a shared directory per host and one scrape target per host, while the
state that matters (feeds, queues, streams, counters) already lives in Redis. One exporter
against one Redis sees the whole fleet, and a scrape costs a dozen Redis commands.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

from kombu.exceptions import OperationalError
from prometheus_client import start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry
from redis.asyncio import Redis
from redis.exceptions import RedisError

from pipeline.keys import (
    STAT_DEAD_LETTERED,
    STAT_DEFERRED,
    STAT_DUPLICATES,
    STAT_EXTRACT_FAILURES,
    STAT_FALLBACKS,
    STAT_NEW_ENTRIES,
    STAT_PAGES_DISALLOWED,
    STAT_PAGES_SKIPPED,
    STAT_POLLS_BY_CLASS,
    STAT_PUBLISHED,
    STAT_PUSHES,
    STAT_PUSHES_REFUSED,
    STAT_REDELIVERED,
    STAT_UNCHANGED,
    Keys,
)
from pipeline.monitor import Snapshot, latency_buckets, take_snapshot
from pipeline.settings import Settings
from workers.celery_config import QUEUE_DISPATCH, QUEUE_EXTRACT, QUEUE_FETCH, QUEUE_PUSH, create_app

QUEUES = (QUEUE_DISPATCH, QUEUE_FETCH, QUEUE_PUSH, QUEUE_EXTRACT)
# Counter name suffix (feedpipe_<name>_total) -> Keys.stats field.
COUNTERS = {
    "new_entries": (STAT_NEW_ENTRIES, "New feed entries queued for extraction."),
    "items_published": (STAT_PUBLISHED, "Items published on the output stream."),
    "duplicates": (STAT_DUPLICATES, "Items withheld as duplicates (exact or near)."),
    "extraction_fallbacks": (
        STAT_FALLBACKS,
        "Items made from the feed's text because their page failed or gave too little.",
    ),
    "pages_skipped": (
        STAT_PAGES_SKIPPED,
        "Entries of full-content feeds taken from the feed, their page not fetched.",
    ),
    "pages_disallowed": (
        STAT_PAGES_DISALLOWED,
        "Article pages robots.txt refused (or was unreachable for): items from the feed's text.",
    ),
    "extract_failures": (STAT_EXTRACT_FAILURES, "Extract tasks that raised."),
    "articles_dead_lettered": (
        STAT_DEAD_LETTERED,
        "Articles given up and extract messages set aside, onto the dead-letter stream.",
    ),
    "extract_jobs_redelivered": (STAT_REDELIVERED, "Extract jobs the broker lost, sent again."),
    "polls_deferred": (STAT_DEFERRED, "Polls put off because their host was busy."),
    "polls_unchanged": (STAT_UNCHANGED, "200 responses with the same body as last time."),
    "websub_pushes": (STAT_PUSHES, "WebSub notifications accepted (signed by the subscription)."),
    "websub_pushes_refused": (
        STAT_PUSHES_REFUSED,
        "WebSub notifications ignored: a missing or wrong signature.",
    ),
}


class FeedpipeCollector(Collector):
    def __init__(self, settings: Settings, redis_url: str, keys: Keys) -> None:
        self.redis_url = redis_url
        self.keys = keys
        self.failing_after = settings.failing_after_errors
        self.celery = create_app(settings.model_copy(update={"redis_url": redis_url}))

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("feedpipe_redis_up", "Whether the exporter could read Redis.")
        try:
            snapshot = asyncio.run(self._snapshot())
            workers = self._workers()
        except (RedisError, OSError, OperationalError):
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from metrics_of(snapshot)
        yield workers

    def _workers(self) -> GaugeMetricFamily:
        """Workers answering a Celery ping, by pool (the part of their name before "@")."""
        replies = self.celery.control.ping(timeout=1.0) or []
        pools = Counter(name.split("@", 1)[0].split("-", 1)[0] for r in replies for name in r)
        family = GaugeMetricFamily("feedpipe_workers", "Workers answering a ping.", labels=["pool"])
        for pool in ("fetch", "push", "extract"):
            family.add_metric([pool], pools.get(pool, 0))
        return family

    async def _snapshot(self) -> Snapshot:
        redis = Redis.from_url(self.redis_url, socket_timeout=5, socket_connect_timeout=5)
        try:
            return await take_snapshot(
                redis, self.keys, queues=QUEUES, failing_after=self.failing_after
            )
        finally:
            await redis.aclose()


def metrics_of(s: Snapshot) -> Iterator[Metric]:
    feeds = GaugeMetricFamily("feedpipe_feeds", "Feeds by health.", labels=["state"])
    by_state = (
        ("new", s.feeds_new),
        ("ok", s.feeds_ok),
        ("erroring", s.feeds_erroring),
        ("failing", s.feeds_failing),
    )
    for state, count in by_state:
        feeds.add_metric([state], count)
    yield feeds
    yield _gauge("feedpipe_feeds_overdue", "Feeds due and not yet dispatched.", s.feeds_overdue)
    yield _gauge(
        "feedpipe_scheduling_lag_seconds",
        "How long the most overdue feed has been waiting for its poll.",
        s.oldest_overdue_seconds,
    )
    polls = CounterMetricFamily("feedpipe_polls", "Feed polls by outcome.", labels=["outcome"])
    for field, value in s.counters.items():
        if field.startswith(STAT_POLLS_BY_CLASS):
            polls.add_metric([field.removeprefix(STAT_POLLS_BY_CLASS)], value)
    yield polls
    for name, (field, doc) in COUNTERS.items():
        yield CounterMetricFamily(f"feedpipe_{name}", doc, value=s.counters.get(field, 0))
    buckets, sum_ms, _count = latency_buckets(s.fetch_latency_ms)
    yield HistogramMetricFamily(
        "feedpipe_feed_fetch_seconds",
        "Duration of one feed request (a failed poll: until it failed).",
        buckets=buckets,
        sum_value=sum_ms / 1000,
    )
    yield from _labelled(s)


def _labelled(s: Snapshot) -> Iterator[Metric]:
    queues = GaugeMetricFamily("feedpipe_queue_length", "Tasks waiting.", labels=["queue"])
    for name, length in s.queues.items():
        queues.add_metric([name], length)
    yield queues
    streams = GaugeMetricFamily("feedpipe_stream_length", "Stream entries.", labels=["stream"])
    for name, length in s.streams.items():
        streams.add_metric([name], length)
    yield streams
    labels = ["stream", "group"]
    pending = GaugeMetricFamily(
        "feedpipe_consumer_group_pending", "Delivered, not acknowledged.", labels=labels
    )
    lag = GaugeMetricFamily(
        "feedpipe_consumer_group_lag", "Entries not yet delivered to the group.", labels=labels
    )
    for group in s.groups:
        pending.add_metric([group.stream, group.group], group.pending)
        if group.lag is not None:
            lag.add_metric([group.stream, group.group], group.lag)
    yield pending
    yield lag


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def serve(settings: Settings, redis_url: str, keys: Keys) -> None:
    """Serve /metrics until SIGTERM or SIGINT."""
    registry = CollectorRegistry()
    registry.register(FeedpipeCollector(settings, redis_url, keys))
    server, thread = start_http_server(
        settings.metrics_port, addr=settings.metrics_host, registry=registry
    )
    stop = threading.Event()

    def on_signal(*_: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    stop.wait()
    server.shutdown()
    thread.join(5)
