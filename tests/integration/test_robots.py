"""robots.txt before article pages (pipeline/robots.py), through pipeline.poll against loopback
servers and the session's redis-server: what it disallows is not fetched and the job says why,
one robots.txt request serves every page of the origin, feeds are never checked, an unreachable
robots.txt allows no page unless rules fetched before still serve, a missing one allows all, rules
are kept a day, and FEEDPIPE_OBEY_ROBOTS_TXT=false turns it off."""

from __future__ import annotations

import itertools
import logging
import time
from collections import Counter
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from pipeline.keys import STAT_PAGES_DISALLOWED
from pipeline.models import ExtractJob
from pipeline.robots import RobotsCache, RobotsPolicy
from tests.integration.conftest import KEYS
from tests.integration.test_fetching import Jobs, feed_of, poll, settings, setup_feed
from workers import runtime

ROBOTS = """\
User-agent: *
Disallow: /

User-agent: feedpipe
Disallow: /story/private
Disallow: /feed
"""
PAGE = "<html><body><article><h1>A story</h1><p>{}</p></article></body></html>"


class Site:
    """A feed of three stories, their pages, and robots.txt answered with ``robots`` (status,
    text), or 404 when None."""

    def __init__(self, robots: tuple[int, str] | None) -> None:
        self.robots = robots
        self.requests: Counter[str] = Counter()

    async def handle(self, request: web.Request) -> web.Response:
        self.requests[request.path] += 1
        if request.path == "/robots.txt":
            status, body = self.robots or (404, "")
            return web.Response(status=status, text=body)
        if request.path == "/feed":
            body = feed_of("public one", "public two", "private one")
            return web.Response(text=body, content_type="application/rss+xml")
        return web.Response(text=PAGE.format("words " * 80), content_type="text/html")

    async def serve(self, aiohttp_server: Any) -> TestServer:
        app = web.Application()
        app.router.add_get("/{path:.*}", self.handle)
        server: TestServer = await aiohttp_server(app, host="127.0.0.1")
        return server


class TimedSite(Site):
    """A Site that notes when each request came in."""

    def __init__(self, robots: tuple[int, str] | None) -> None:
        super().__init__(robots)
        self.starts: list[tuple[float, str]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.starts.append((time.monotonic(), request.path))
        return await super().handle(request)


def by_title(jobs: Jobs) -> dict[str, ExtractJob]:
    return {job.entry.title or "": job for job in jobs.sent}


async def test_disallowed_pages_are_not_fetched_and_robots_txt_is_read_once(
    aiohttp_server: Any, redis: Redis
) -> None:
    site = Site((200, ROBOTS))
    server = await site.serve(aiohttp_server)
    _, fid = await setup_feed(redis, server, "/feed")
    before = int(await redis.hget(KEYS.stats, STAT_PAGES_DISALLOWED) or 0)
    jobs = Jobs()

    await poll(redis, settings(), [fid], jobs)

    found = by_title(jobs)
    assert site.requests["/robots.txt"] == 1  # three pages, one request
    assert site.requests["/feed"] == 1  # feeds are not checked ("Disallow: /feed")
    assert site.requests["/story/private-one"] == 0
    assert site.requests["/story/public-one"] == site.requests["/story/public-two"] == 1
    private = found["private one"]
    assert private.html_key is None and private.page_error is not None
    assert private.page_error.endswith(": disallowed by robots.txt")
    assert found["public one"].html_key and found["public two"].html_key
    assert int(await redis.hget(KEYS.stats, STAT_PAGES_DISALLOWED) or 0) == before + 1


async def test_unreachable_robots_txt_allows_no_page_and_a_missing_one_allows_all(
    aiohttp_server: Any, redis: Redis
) -> None:
    failing = Site((503, ""))
    missing = Site(None)
    failing_server = await failing.serve(aiohttp_server)
    missing_server = await missing.serve(aiohttp_server)
    _, failing_id = await setup_feed(redis, failing_server, "/feed")
    _, missing_id = await setup_feed(redis, missing_server, "/feed")
    jobs = Jobs()

    await poll(redis, settings(), [failing_id, missing_id], jobs)

    from_failing = [job for job in jobs.sent if str(failing_server.port) in job.feed.url]
    from_missing = [job for job in jobs.sent if str(missing_server.port) in job.feed.url]
    assert len(from_failing) == len(from_missing) == 3
    assert failing.requests["/robots.txt"] == 1 and missing.requests["/robots.txt"] == 1
    assert all(
        job.html_key is None and "robots.txt unreachable: " in (job.page_error or "")
        for job in from_failing
    )
    assert not any(path.startswith("/story/") for path in failing.requests)
    assert all(job.html_key for job in from_missing)


async def test_robots_txt_is_not_read_when_turned_off(aiohttp_server: Any, redis: Redis) -> None:
    site = Site((200, ROBOTS))
    server = await site.serve(aiohttp_server)
    _, fid = await setup_feed(redis, server, "/feed")
    jobs = Jobs()

    await poll(redis, settings(obey_robots_txt=False), [fid], jobs)

    assert site.requests["/robots.txt"] == 0
    assert site.requests["/story/private-one"] == 1
    assert all(job.html_key for job in jobs.sent)


async def test_rules_are_kept_a_day_and_the_last_ones_serve_while_unreachable(
    aiohttp_server: Any, redis: Redis
) -> None:
    site = Site((200, ROBOTS))
    server = await site.serve(aiohttp_server)
    now = [1000.0]
    cache = RobotsCache(RobotsPolicy(agent="feedpipe"), clock=lambda: now[0])
    config = settings()

    async def verdicts() -> tuple[str | None, str | None]:
        async with runtime.http_session(config) as http:
            fetcher = runtime.fetcher(config, http, redis, KEYS)

            async def check(path: str) -> str | None:
                url = str(server.make_url(path))
                limits = runtime.page_limits(config)
                deadline = time.monotonic() + 30
                verdict = await cache.check(
                    fetcher, url, feed_url=url, limits=limits, deadline=deadline
                )
                return verdict.refusal

            return await check("/story/private-one"), await check("/story/public-one")

    first = await verdicts()
    now[0] += 3600  # within the day: no request
    cached = await verdicts()
    site.robots = (503, "")
    now[0] += 86_400  # a day later robots.txt is asked again, and is unreachable
    unreachable = await verdicts()
    now[0] += 601  # and asked again 10 minutes later
    await verdicts()

    assert first == cached == unreachable == ("disallowed by robots.txt", None)
    assert site.requests["/robots.txt"] == 3


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_a_robots_txt_past_512_kib_is_read_up_to_its_last_whole_line_within_them(
    aiohttp_server: Any, redis: Redis, chunked: bool
) -> None:
    # RFC 9309, 2.5: the first 500 KiB at least are parsed, the rest ignored. The padding ends
    # mid-line at the cap: "Disallow: /story/public-one" past it is not read, nor is its cut
    # prefix "Disallow: /story/p", which would refuse the private page's neighbours too.
    cap = RobotsPolicy(agent="feedpipe").max_bytes
    head = "User-agent: feedpipe\nDisallow: /story/private\n"
    padding = "# " + "x" * 97 + "\n"
    body = head + padding * ((cap - len(head)) // len(padding) - 1)
    body += "#" * (cap - 18 - len(body) - 1) + "\n"  # the cap falls after "Disallow: /story/p"
    body += "Disallow: /story/public-one\n" + padding * 20
    assert body.encode()[cap - 18 : cap] == b"Disallow: /story/p"

    async def handle(request: web.Request) -> web.StreamResponse:
        response = web.Response(text=body)
        if chunked:
            response.enable_chunked_encoding()
        return response

    app = web.Application()
    app.router.add_get("/robots.txt", handle)
    server = await aiohttp_server(app, host="127.0.0.1")
    cache = RobotsCache(RobotsPolicy(agent="feedpipe"))
    config = settings()
    async with runtime.http_session(config) as http:
        fetcher = runtime.fetcher(config, http, redis, KEYS)

        async def check(path: str) -> str | None:
            url = str(server.make_url(path))
            deadline = time.monotonic() + 30
            limits = runtime.page_limits(config)
            verdict = await cache.check(
                fetcher, url, feed_url=url, limits=limits, deadline=deadline
            )
            return verdict.refusal

        private, public = await check("/story/private-one"), await check("/story/public-one")

    assert (private, public) == ("disallowed by robots.txt", None)


async def test_crawl_delay_spaces_the_article_pages_and_is_capped(
    aiohttp_server: Any, redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    # FEEDPIPE_HOST_MIN_GAP_SECONDS is 0 here: the gaps between pages are the site's own ask.
    caplog.set_level(logging.INFO, logger="pipeline.robots")
    site = TimedSite((200, "User-agent: feedpipe\nCrawl-delay: 0.6\n"))
    server = await site.serve(aiohttp_server)
    _, fid = await setup_feed(redis, server, "/feed")
    jobs = Jobs()

    await poll(redis, settings(), [fid], jobs)

    pages = [t for t, path in site.starts if path.startswith("/story/")]
    assert len(pages) == 3 and all(job.html_key for job in jobs.sent)
    # Each page's request sets the host's next start 0.6 s on (Redis's clock, ms rounding).
    assert min(b - a for a, b in itertools.pairwise(pages)) >= 0.58, pages
    [line] = [r for r in caplog.records if r.getMessage() == "robots.txt asks a crawl delay"]
    assert line.reason.endswith("asks 0.6 s between requests (0.6 s kept)")  # type: ignore[attr-defined]
    capped = RobotsCache(RobotsPolicy(agent="feedpipe", max_crawl_delay_seconds=0.25))
    site.robots = (200, "User-agent: *\nCrawl-delay: 3600\n")
    config = settings()
    async with runtime.http_session(config) as http:
        fetcher = runtime.fetcher(config, http, redis, KEYS)
        url = str(server.make_url("/story/public-one"))
        verdict = await capped.check(
            fetcher,
            url,
            feed_url=url,
            limits=runtime.page_limits(config),
            deadline=time.monotonic() + 30,
        )
    assert (verdict.refusal, verdict.crawl_delay) == (None, 0.25)


async def test_a_page_behind_a_redirect_obeys_the_robots_txt_of_the_site_it_lands_on(
    aiohttp_server: Any, redis: Redis
) -> None:
    # The feed's links go through a redirector (its own robots.txt: none) to the agency's site,
    # whose robots.txt disallows the private story for us.
    site = Site((200, ROBOTS))
    target = await site.serve(aiohttp_server)
    redirector = Site(None)

    async def redirect(request: web.Request) -> web.Response:
        if request.path.startswith("/story/"):
            redirector.requests[request.path] += 1
            raise web.HTTPFound(str(target.make_url(request.path)))
        return await redirector.handle(request)  # the feed; robots.txt: 404

    app = web.Application()
    app.router.add_get("/{path:.*}", redirect)
    server = await aiohttp_server(app, host="127.0.0.1")
    _, fid = await setup_feed(redis, server, "/feed")
    jobs = Jobs()

    await poll(redis, settings(), [fid], jobs)

    found = by_title(jobs)
    assert redirector.requests["/story/private-one"] == 1  # the redirector's robots.txt allows it
    assert site.requests["/story/private-one"] == 0  # where it leads, ours is disallowed
    assert site.requests["/story/public-one"] == site.requests["/story/public-two"] == 1
    assert site.requests["/robots.txt"] == redirector.requests["/robots.txt"] == 1
    assert (found["private one"].page_error or "").endswith(": disallowed by robots.txt")
    assert found["public one"].html_key and found["public two"].html_key
