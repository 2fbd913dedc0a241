"""What an operator needs to know, read from Redis in one pass: the source of both the
Prometheus exporter (``workers/exporter.py``) and ``feedpipe status``.

Everything comes from Redis, where the workers already keep it (counters, the due ZSET, the
erroring ZSET, the broker's queue lists, the streams): one reader sees the whole fleet, however
many worker hosts there are, and nothing is lost when a worker process is recycled.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import msgspec
from redis.asyncio import Redis

from pipeline import registry
from pipeline.keys import COUNT_NEW_FEEDS, FETCH_LATENCY_BUCKETS_MS, Keys, reply_text
from pipeline.routes import stored_routes


class GroupLag(msgspec.Struct, frozen=True):
    stream: str
    group: str
    consumers: int
    pending: int  # delivered, not yet acknowledged
    lag: int | None  # entries not yet delivered to the group (None: Redis cannot tell)


class FeedProblem(msgspec.Struct, frozen=True):
    url: str
    errors: int
    last_error: str | None
    last_poll: float | None


class Snapshot(msgspec.Struct, frozen=True):
    taken_at: float
    feeds: int
    feeds_erroring: int  # last poll failed, fewer than failing_after errors in a row
    feeds_failing: int  # failing_after or more consecutive failed polls
    feeds_overdue: int  # due now and not yet claimed by a dispatch
    oldest_overdue_seconds: float  # 0 when nothing is overdue: the scheduling lag
    queues: dict[str, int]  # broker queue -> tasks waiting
    streams: dict[str, int]  # output / duplicates / dead letters / each route's stream -> length
    groups: tuple[GroupLag, ...]
    counters: dict[str, int]  # Keys.stats
    fetch_latency_ms: dict[str, int]  # Keys.fetch_latency, as stored (see keys.py)
    worst: tuple[FeedProblem, ...]  # most consecutive errors first
    # Never polled yet (registry.feed_health "new"): not counted as ok. Last, with a default,
    # so the JSON of `feedpipe status --json` only gained a field.
    feeds_new: int = 0

    @property
    def feeds_ok(self) -> int:
        """Polled, and the last poll succeeded (registry.feed_health "ok")."""
        return self.feeds - self.feeds_new - self.feeds_erroring - self.feeds_failing


async def take_snapshot(
    redis: Redis,
    keys: Keys,
    *,
    queues: Iterable[str],
    failing_after: int,
    worst: int = 10,
    now: float | None = None,
) -> Snapshot:
    now = time.time() if now is None else now
    queue_names = list(queues)
    routed = (await stored_routes(redis, keys)).routes
    streams = [keys.output_stream, keys.duplicates_stream, keys.dead_letter_stream]
    streams += [keys.route_stream(route.name) for route in routed]
    async with redis.pipeline(transaction=False) as pipe:
        pipe.zcard(keys.feeds_due)
        pipe.zcard(keys.feeds_erroring)
        pipe.zcount(keys.feeds_erroring, failing_after, "+inf")
        pipe.zcount(keys.feeds_due, "-inf", now)
        pipe.zrange(keys.feeds_due, 0, 0, withscores=True)
        for name in queue_names:
            pipe.llen(name)
        for stream in streams:
            pipe.xlen(stream)
        pipe.hgetall(keys.stats)
        pipe.hgetall(keys.fetch_latency)
        pipe.zrevrange(keys.feeds_erroring, 0, worst - 1)
        values = await pipe.execute()
    feeds, erroring, failing, overdue, first = values[:5]
    rest = values[5:]
    queue_lengths, rest = rest[: len(queue_names)], rest[len(queue_names) :]
    stream_lengths, rest = rest[: len(streams)], rest[len(streams) :]
    counters, latency, worst_ids = rest
    return Snapshot(
        taken_at=now,
        feeds=feeds,
        feeds_erroring=erroring - failing,
        feeds_failing=failing,
        feeds_overdue=overdue,
        oldest_overdue_seconds=max(0.0, now - first[0][1]) if first and overdue else 0.0,
        queues=dict(zip(queue_names, queue_lengths, strict=True)),
        streams=dict(zip(streams, stream_lengths, strict=True)),
        groups=tuple(await stream_groups(redis, streams)),
        counters=_ints(counters),
        fetch_latency_ms=_ints(latency),
        worst=tuple(await _problems(redis, keys, worst_ids)),
        feeds_new=await count_new_feeds(redis, keys),
    )


NEW_FEEDS_CHUNK = 2000


async def count_new_feeds(redis: Redis, keys: Keys, chunk: int = NEW_FEEDS_CHUNK) -> int:
    """Feeds never polled yet. Redis keeps no count of them (a poll would have to keep it, and
    feeds stored before could not be in it): each feed's hash is looked at, by a script on
    ``chunk`` feeds at a time so Redis is never held for long (bench/import_bench.py measures
    it; docs/operations.md has the figures). Feeds rescheduled during the count may
    be counted twice or missed: a gauge, not a ledger."""
    new = start = 0
    while True:
        looked, found = await COUNT_NEW_FEEDS(
            redis, [keys.feeds_due], [start, start + chunk - 1, keys.feed("")]
        )
        new += int(found)
        if int(looked) < chunk:
            return new
        start += chunk


def latency_buckets(stored: dict[str, int]) -> tuple[list[tuple[str, int]], int, int]:
    """Cumulative (upper bound in seconds, count) pairs ending with "+Inf", the sum in ms
    and the count: the shape of a Prometheus histogram."""
    cumulative, running = [], 0
    for bound in FETCH_LATENCY_BUCKETS_MS:
        running += stored.get(f"le:{bound}", 0)
        cumulative.append((f"{bound / 1000:g}", running))
    cumulative.append(("+Inf", running + stored.get("le:inf", 0)))
    return cumulative, stored.get("sum_ms", 0), stored.get("count", 0)


async def count_since(redis: Redis, stream: str, since: float, cap: int = 1_000_000) -> int:
    """Entries added to ``stream`` since a time (stream ids are millisecond timestamps).

    Counted in pages so a busy stream costs memory for one page at a time; stops at ``cap``."""
    start, total = f"{int(since * 1000)}-0", 0
    while total < cap:
        page = await redis.xrange(stream, min=start, max="+", count=10_000)
        if not page:
            break
        total += len(page)
        start = "(" + reply_text(page[-1][0])
    return min(total, cap)


async def stream_groups(redis: Redis, streams: list[str]) -> list[GroupLag]:
    """Every consumer group of the streams, with its lag and pending entries."""
    found = []
    for stream in streams:
        if not await redis.exists(stream):
            continue
        for info in await redis.xinfo_groups(stream):
            fields = {reply_text(k): v for k, v in info.items()}
            found.append(
                GroupLag(
                    stream=stream,
                    group=reply_text(fields["name"]),
                    consumers=int(fields["consumers"]),
                    pending=int(fields["pending"]),
                    lag=None if fields.get("lag") is None else int(fields["lag"]),
                )
            )
    return found


async def _problems(redis: Redis, keys: Keys, ids: list[Any]) -> list[FeedProblem]:
    problems = []
    for raw_id in ids:
        state = await registry.load_feed(redis, keys, reply_text(raw_id))
        if state is not None:
            problems.append(FeedProblem(state.url, state.errors, state.last_error, state.last_poll))
    return problems


def _ints(raw: dict[Any, Any]) -> dict[str, int]:
    return {reply_text(k): int(v) for k, v in raw.items()}
