"""Per-host politeness holds across worker processes: two fetch workers (four processes) poll
twelve feeds of one host and fetch their articles; the server itself counts requests in flight
and the gaps between request starts (robots.txt requests, one per fetch process that fetched a
page, take their turn like the rest)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from redis.asyncio import Redis

from pipeline import registry
from pipeline.models import FeedSpec
from tests.conftest import RedisServer
from tests.integration.conftest import KEYS, Workers, wait_for
from tests.integration.hostile import rss, rss_item, text

pytestmark = pytest.mark.slow

MAX_IN_FLIGHT = 2
MIN_GAP = 0.25
FEEDS, ENTRIES = 12, 2
POLITE_ENV = {
    "FEEDPIPE_HOST_MAX_IN_FLIGHT": str(MAX_IN_FLIGHT),
    "FEEDPIPE_HOST_MIN_GAP_SECONDS": str(MIN_GAP),
    # One feed per poll task, so the feeds really are spread over all the processes.
    "FEEDPIPE_DISPATCH_BATCH_SIZE": "1",
    "FEEDPIPE_FETCH_CONCURRENCY": "2",
}


class CountingHost:
    """Answers slowly (so requests would overlap) and records what it saw."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.max_in_flight = 0
        self.starts: list[float] = []
        self.paths: list[str] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self.starts.append(time.monotonic())
        self.paths.append(request.path)
        try:
            await asyncio.sleep(0.4)
            name = request.match_info["name"]
            if name.startswith("feed"):
                items = [
                    rss_item(f"{name} story {i}", text(f"{name}-{i}"), link=f"/page-{name}-{i}")
                    for i in range(ENTRIES)
                ]
                return web.Response(text=rss(name, items), content_type="application/rss+xml")
            return web.Response(status=404)  # article pages: the feed's text stands in
        finally:
            self.in_flight -= 1


async def test_two_workers_never_exceed_the_per_host_limits(
    aiohttp_server: Any, tmp_path: Path
) -> None:
    host = CountingHost()
    app = web.Application()
    app.router.add_get("/{name}", host.handle)
    server = await aiohttp_server(app, host="127.0.0.1")
    redis_server = RedisServer(tmp_path / "redis")
    first = Workers(redis_server.url, tmp_path, POLITE_ENV, node="polite-a")
    second = Workers(redis_server.url, tmp_path, POLITE_ENV, node="polite-b", roles=("fetch",))
    client = Redis.from_url(redis_server.url)
    try:
        specs = [FeedSpec(url=str(server.make_url(f"/feed{i}"))) for i in range(FEEDS)]
        await registry.add_feeds(client, KEYS, specs, time.time())
        await wait_for(
            lambda: _published_at_least(client, FEEDS * ENTRIES), 120, "every item published"
        )
        assert first.alive() and second.alive()
        assert "polled" in first.log("fetch") and "polled" in second.log("fetch")
    finally:
        first.stop()
        second.stop()
        await client.aclose()
        redis_server.stop()
    robots = host.paths.count("/robots.txt")
    assert 1 <= robots <= 4  # one per fetch process that fetched a page, at most
    requests = FEEDS * (1 + ENTRIES) + robots
    assert len(host.starts) == requests
    assert host.max_in_flight <= MAX_IN_FLIGHT
    gaps = [b - a for a, b in zip(host.starts, host.starts[1:], strict=False)]
    # Slots are handed out on Redis's clock; the server sees each start a moment later, so
    # allow a few milliseconds of network and scheduling jitter.
    assert min(gaps) >= MIN_GAP - 0.03, sorted(gaps)[:5]
    assert host.starts[-1] - host.starts[0] >= (requests - 1) * MIN_GAP - 0.1


async def _published_at_least(client: Redis, count: int) -> bool:
    return int(await client.xlen(KEYS.output_stream)) >= count


SLOW_FEEDS, SLOW_ENTRIES = 6, 3
WAITING_ENV = {
    "FEEDPIPE_HOST_MAX_IN_FLIGHT": "1",
    "FEEDPIPE_HOST_MIN_GAP_SECONDS": "1.0",
    # One fetch process with a single request in flight: if a poll waiting for its host's
    # turn held that permit, the other host's feed would wait behind the slow host's 24 s.
    "FEEDPIPE_FETCH_CONCURRENCY": "1",
    "FEEDPIPE_REQUESTS_IN_FLIGHT": "1",
}


def _feed_host(prefix: str, entries: int) -> web.Application:
    async def handle(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if not name.startswith("feed"):
            return web.Response(status=404)  # article pages: the feed's text stands in
        items = [
            rss_item(f"{prefix}{name} story {i}", text(f"{prefix}{name}-{i}"), link=f"/p{name}-{i}")
            for i in range(entries)
        ]
        return web.Response(text=rss(name, items), content_type="application/rss+xml")

    app = web.Application()
    app.router.add_get("/{name}", handle)
    return app


async def test_waiting_for_a_busy_host_holds_no_slot(aiohttp_server: Any, tmp_path: Path) -> None:
    slow = await aiohttp_server(_feed_host("slow ", SLOW_ENTRIES), host="127.0.0.1")
    fast = await aiohttp_server(_feed_host("fast ", 1), host="127.0.0.1")
    redis_server = RedisServer(tmp_path / "redis")
    workers = Workers(redis_server.url, tmp_path, WAITING_ENV, node="waiting")
    client = Redis.from_url(redis_server.url)
    try:
        # One dispatch, one poll task: the slow host's feeds first (due earlier), the fast
        # host's last; with feeds polled one after another it would wait for all of them.
        slow_specs = [FeedSpec(url=str(slow.make_url(f"/feed{i}"))) for i in range(SLOW_FEEDS)]
        start = time.monotonic()
        await registry.add_feeds(
            client, KEYS, [FeedSpec(url=str(fast.make_url("/feed0")))], time.time()
        )
        await registry.add_feeds(client, KEYS, slow_specs, time.time() - 10)
        await wait_for(lambda: _titles_with(client, "fast "), 30, "the fast host's item")
        fast_after = time.monotonic() - start
        slow_then = len(await _titles_with(client, "slow "))
        await wait_for(
            lambda: _published_at_least(client, SLOW_FEEDS * SLOW_ENTRIES + 1),
            120,
            "every item published",
        )
        slow_after = time.monotonic() - start
        assert workers.alive()
    finally:
        workers.stop()
        await client.aclose()
        redis_server.stop()
    # The slow host needs 24 requests 1 s apart; the fast one 2 (its feed, its page).
    assert slow_after >= SLOW_FEEDS * (1 + SLOW_ENTRIES) - 1
    assert fast_after < 12, f"the fast host waited {fast_after:.1f} s behind the slow one"
    assert slow_then < SLOW_FEEDS * SLOW_ENTRIES


async def _titles_with(client: Redis, prefix: str) -> list[str]:
    items = [json.loads(fields[b"item"]) for _id, fields in await client.xrange(KEYS.output_stream)]
    return [item["title"] for item in items if item["title"].startswith(prefix)]
