"""Fetch and schedule policy through pipeline.poll, in-process, against a loopback server and
the session's redis-server: redirects, lying validators, hints, budgets. The feeds are kept
out of the session workers' way (not due) and polled here with poll_feeds."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from pipeline import registry
from pipeline.models import ExtractJob, FeedState, PollOutcome
from pipeline.poll import poll_feeds
from pipeline.settings import Settings
from tests.integration.conftest import KEYS, add_feeds
from tests.integration.hostile import rss, rss_item, text
from workers import runtime


class Jobs:
    """ExtractQueue that keeps the jobs (no Celery needed to test polling)."""

    def __init__(self) -> None:
        self.sent: list[ExtractJob] = []

    def send(self, job: ExtractJob) -> None:
        self.sent.append(job)

    @property
    def titles(self) -> list[str]:
        return [job.entry.title for job in self.sent]


def settings(**overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "redis_url": "redis://unused",
        "allow_private_networks": True,
        "host_min_gap_seconds": 0,
    }
    return Settings(**(base | overrides))


async def poll(redis: Redis, config: Settings, ids: list[str], jobs: Jobs) -> list[PollOutcome]:
    async with runtime.http_session(config) as http:
        ctx = runtime.poll_context(config, KEYS, redis, http, jobs)
        return await poll_feeds(ctx, ids)


async def setup_feed(redis: Redis, server: TestServer, path: str) -> tuple[str, str]:
    feed_url = str(server.make_url(path))
    (fid,) = await add_feeds(redis, feed_url)
    # Not due for the session's workers: these tests poll it themselves.
    await redis.zadd(KEYS.feeds_due, {fid: time.time() + 3600})
    return feed_url, fid


async def state_of(redis: Redis, fid: str) -> FeedState:
    state = await registry.load_feed(redis, KEYS, fid)
    assert state is not None
    return state


async def start(aiohttp_server: Any, routes: dict[str, Callable[..., Any]]) -> TestServer:
    app = web.Application()
    for path, handler in routes.items():
        app.router.add_get(path, handler)
    server: TestServer = await aiohttp_server(app, host="127.0.0.1")
    return server


def feed_of(*titles: str) -> str:
    return rss("feed", [rss_item(t, text(t), link=f"/story/{t.replace(' ', '-')}") for t in titles])


async def test_permanent_redirect_moves_the_feed_after_consistent_polls(
    aiohttp_server: Any, redis: Redis
) -> None:
    async def old(_r: web.Request) -> web.Response:
        raise web.HTTPMovedPermanently("/new")

    async def new(_r: web.Request) -> web.Response:
        return web.Response(text=feed_of("moved one"), content_type="application/rss+xml")

    server = await start(aiohttp_server, {"/old": old, "/new": new})
    feed_url, fid = await setup_feed(redis, server, "/old")
    config, jobs = settings(permanent_redirect_after=3), Jobs()
    for seen in (1, 2):
        await poll(redis, config, [fid], jobs)
        state = await state_of(redis, fid)
        assert state.redirect_seen == seen and state.fetch_url is None
    await poll(redis, config, [fid], jobs)
    state = await state_of(redis, fid)
    assert state.fetch_url == str(server.make_url("/new")) and state.url == feed_url
    assert state.redirect_seen == 0 and state.redirect_target is None
    assert jobs.titles == ["moved one"]  # the entry was taken once, on the first poll


async def test_temporary_redirects_never_move_the_feed(aiohttp_server: Any, redis: Redis) -> None:
    async def old(_r: web.Request) -> web.Response:
        raise web.HTTPFound("/elsewhere")

    async def elsewhere(_r: web.Request) -> web.Response:
        return web.Response(text=feed_of("temp one"), content_type="application/rss+xml")

    server = await start(aiohttp_server, {"/old": old, "/elsewhere": elsewhere})
    _url, fid = await setup_feed(redis, server, "/old")
    config = settings(permanent_redirect_after=1)
    for _ in range(3):
        await poll(redis, config, [fid], Jobs())
    state = await state_of(redis, fid)
    assert state.fetch_url is None and state.redirect_target is None


async def test_lying_validators_are_caught_by_body_hash_and_unconditional_fetch(
    aiohttp_server: Any, redis: Redis
) -> None:
    body = {"text": feed_of("first story")}
    requests: list[dict[str, str]] = []

    async def liar(request: web.Request) -> web.Response:
        requests.append(dict(request.headers))
        if "If-None-Match" in request.headers:
            return web.Response(status=304)  # whatever changed
        return web.Response(
            text=body["text"], content_type="application/rss+xml", headers={"ETag": '"same"'}
        )

    server = await start(aiohttp_server, {"/feed": liar})
    _url, fid = await setup_feed(redis, server, "/feed")
    config, jobs = settings(unconditional_fetch_seconds=3600), Jobs()
    statuses = [(await poll(redis, config, [fid], jobs))[0].status]
    body["text"] = feed_of("first story", "second story")
    statuses.append((await poll(redis, config, [fid], jobs))[0].status)  # a lying 304
    # An hour later by the feed's clock: the next poll ignores the validators.
    await redis.hset(KEYS.feed(fid), "last_full_fetch", repr(time.time() - 3601))
    statuses.append((await poll(redis, config, [fid], jobs))[0].status)
    assert statuses == ["ok", "not_modified", "ok"]
    assert "If-None-Match" not in requests[2]
    assert jobs.titles == ["first story", "second story"]
    # Same body again without validators: recognised by its hash, not even parsed.
    await redis.hset(KEYS.feed(fid), mapping={"etag": "", "last_full_fetch": repr(time.time())})
    assert (await poll(redis, config, [fid], jobs))[0].status == "unchanged"


async def test_feed_hints_set_the_interval(aiohttp_server: Any, redis: Redis) -> None:
    async def ttl(_r: web.Request) -> web.Response:
        document = feed_of("ttl story").replace("<channel>", "<channel><ttl>180</ttl>")
        return web.Response(text=document, content_type="application/rss+xml")

    async def cached(_r: web.Request) -> web.Response:
        return web.Response(
            text=feed_of("cached story"),
            content_type="application/rss+xml",
            headers={"Cache-Control": "public, max-age=7200"},
        )

    server = await start(aiohttp_server, {"/ttl": ttl, "/cached": cached})
    _u1, ttl_id = await setup_feed(redis, server, "/ttl")
    _u2, cached_id = await setup_feed(redis, server, "/cached")
    await poll(redis, settings(jitter_fraction=0), [ttl_id, cached_id], Jobs())
    for fid, seconds in ((ttl_id, 3 * 3600), (cached_id, 7200)):
        state = await state_of(redis, fid)
        assert state.hint == seconds
        assert state.next_poll is not None and state.last_poll is not None
        assert state.next_poll - state.last_poll == pytest.approx(seconds, abs=1)


async def test_entries_past_the_budget_are_left_for_the_next_poll(
    aiohttp_server: Any, redis: Redis
) -> None:
    titles = [f"budget story {i}" for i in range(6)]

    async def feed(_r: web.Request) -> web.Response:
        return web.Response(
            text=feed_of(*titles), content_type="application/rss+xml", headers={"ETag": '"v1"'}
        )

    async def page(_r: web.Request) -> web.Response:
        return web.Response(status=404)

    server = await start(aiohttp_server, {"/feed": feed, "/story/{slug}": page})
    _url, fid = await setup_feed(redis, server, "/feed")
    # One request per 0.5 s on this host, and 1.2 s per poll: a poll gets through 2 or 3. Each
    # poll() here is a new process's context, which would ask for robots.txt again and spend
    # one of those requests on it (test_robots.py tests robots.txt).
    config = settings(
        host_min_gap_seconds=0.5, poll_budget_seconds=1.2, jitter_fraction=0, obey_robots_txt=False
    )
    jobs = Jobs()
    first = (await poll(redis, config, [fid], jobs))[0]
    state = await state_of(redis, fid)
    assert 0 < first.new_entries < len(titles)
    assert state.etag is None and state.body_hash is None  # the next poll must see the feed
    assert state.next_poll is not None and state.next_poll - time.time() < 130  # soon
    for _ in range(5):
        if len(jobs.sent) == len(titles):
            break
        await poll(redis, config, [fid], jobs)
    assert sorted(jobs.titles) == sorted(titles)  # every entry once, none lost or repeated
    assert (await state_of(redis, fid)).etag == '"v1"'


async def test_failing_after_consecutive_errors(aiohttp_server: Any, redis: Redis) -> None:
    async def broken(_r: web.Request) -> web.Response:
        return web.Response(status=500)

    server = await start(aiohttp_server, {"/feed": broken})
    _url, fid = await setup_feed(redis, server, "/feed")
    config = settings(jitter_fraction=0, poll_interval_seconds=600)
    delays = []
    for _ in range(4):
        await poll(redis, config, [fid], Jobs())
        state = await state_of(redis, fid)
        assert state.next_poll is not None and state.last_poll is not None
        delays.append(round(state.next_poll - state.last_poll))
    assert delays == [600, 1200, 2400, 4800]
    # Still polled (at the backoff, up to its cap), and shown as failing once over the limit.
    assert registry.feed_health(state, failing_after=4) == "failing"
    assert registry.feed_health(state, failing_after=5) == "erroring"
    assert state.errors == 4 and state.last_error == (
        f"ServerError: {server.make_url('/feed')}: HTTP 500 Internal Server Error"
    )
