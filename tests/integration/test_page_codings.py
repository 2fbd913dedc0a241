"""Article pages are stored as the server sent them (gzip, deflate, br) and decoded once, in
the extract child, within FEEDPIPE_MAX_PAGE_BYTES (pipeline/page_store.py): from a loopback
server, through pipeline.poll in-process, and through the session's Celery workers."""

from __future__ import annotations

import gzip
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import brotli
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from pipeline import page_store
from pipeline.errors import ResponseTooLarge
from pipeline.extract_stage import begin_attempt, ingest_article
from pipeline.models import Entry, ExtractJob, FeedRef, Published
from pipeline.normalize import short_hash
from pipeline.settings import Settings
from tests.conftest import RedisServer
from tests.integration.conftest import KEYS, add_feeds, stream_items, wait_for_items
from tests.integration.hostile import rss, rss_item, text
from tests.integration.test_fetching import Jobs, poll, settings
from tests.unit.test_page_store import raw_deflate
from workers.runtime import extract_context


def page(name: str) -> bytes:
    paragraphs = "".join(f"<p>{text(f'{name}-{k}', 80)}</p>" for k in range(3))
    return (
        f"<!doctype html><html><head><title>{name} story</title></head><body>"
        f"<nav><a href='/'>Home</a> <a href='/world'>World</a></nav>"
        f"<article><h1>{name} story</h1>{paragraphs}</article>"
        "<footer>Copyright Harbour Post</footer></body></html>"
    ).encode()


def bomb() -> bytes:
    """~50 KB of gzip that inflates to 50 MB, past the 5 MiB default cap (made when served)."""
    return gzip.compress(b"<html>" + b" " * (50 * 1024 * 1024), 9)


def cut(data: bytes) -> bytes:
    return data[: len(data) // 2]


# name: (Content-Encoding, bytes sent); what the page decodes to is page(name).
SENT: dict[str, tuple[str | None, bytes]] = {
    "gzip": ("gzip", gzip.compress(page("gzip"))),
    "deflate": ("deflate", zlib.compress(page("deflate"))),
    "rawdeflate": ("deflate", raw_deflate(page("rawdeflate"))),
    "brotli": ("br", brotli.compress(page("brotli"))),
    "plain": (None, page("plain")),
}
BAD: dict[str, tuple[str | None, Callable[[], bytes]]] = {
    "bomb": ("gzip", bomb),
    "cut": ("gzip", lambda: cut(gzip.compress(page("cut")))),
    "zstd": ("zstd", lambda: b"\x28\xb5\x2f\xfd" + b"\0" * 64),
}


class Site:
    """A feed whose entries link to pages sent with each coding; remembers what was asked."""

    def __init__(self, names: list[str]) -> None:
        self.names = names
        self.accept_encoding: dict[str, str] = {}

    async def feed(self, _request: web.Request) -> web.Response:
        items = [rss_item(f"{n} story", text(f"feed-{n}"), link=f"/a/{n}") for n in self.names]
        return web.Response(body=rss("codings", items), content_type="application/rss+xml")

    async def article(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        self.accept_encoding[name] = request.headers.get("Accept-Encoding", "")
        if name in BAD:
            coding, make = BAD[name]
            body = make()
        else:
            coding, body = SENT[name]
        headers = {"Content-Type": "text/html; charset=utf-8"}
        if coding:
            headers["Content-Encoding"] = coding
        return web.Response(body=body, headers=headers)


async def serve(aiohttp_server: Any, names: list[str]) -> tuple[Site, TestServer]:
    site = Site(names)
    app = web.Application()
    app.router.add_get("/feed.xml", site.feed)
    app.router.add_get("/a/{name}", site.article)
    server: TestServer = await aiohttp_server(app, host="127.0.0.1")
    return site, server


async def test_pages_are_stored_as_sent_and_decode_to_the_page(
    aiohttp_server: Any, redis: Redis
) -> None:
    site, server = await serve(aiohttp_server, sorted(SENT | BAD))
    feed_url = str(server.make_url("/feed.xml"))
    (fid,) = await add_feeds(redis, feed_url)
    await redis.zadd(KEYS.feeds_due, {fid: time.time() + 3600})  # polled here, not by workers
    jobs = Jobs()
    config: Settings = settings()
    await poll(redis, config, [fid], jobs)

    by_name = {job.entry.title.removesuffix(" story"): job for job in jobs.sent}
    assert sorted(by_name) == sorted(SENT | BAD)
    for name, (coding, sent) in SENT.items():
        job = by_name[name]
        assert job.html_key and job.page_error is None, name
        blob = await redis.get(job.html_key)
        assert isinstance(blob, bytes)
        if coding:
            assert blob[1:] == sent, name  # the bytes as sent: not inflated, not recompressed
        decoded = page_store.decode(blob, config.max_page_bytes, feed_url=feed_url, url=name)
        assert decoded == page(name)
        assert site.accept_encoding[name] == page_store.ACCEPT_ENCODING
    # The bomb crossed the wire as ~50 KB; it is stopped where it is inflated.
    bomb = await redis.get(by_name["bomb"].html_key or "")
    assert isinstance(bomb, bytes) and len(bomb) < 100_000
    with pytest.raises(ResponseTooLarge):
        page_store.decode(bomb, config.max_page_bytes, feed_url=feed_url, url="bomb")
    # A coding nobody asked for is refused at the fetch: the feed's text will stand in.
    assert "unsupported Content-Encoding 'zstd'" in (by_name["zstd"].page_error or "")
    assert by_name["zstd"].html_key is None


async def test_workers_extract_every_coding_and_fall_back_on_bad_pages(
    aiohttp_server: Any, redis: Redis
) -> None:
    _site, server = await serve(aiohttp_server, sorted(SENT | BAD))
    await add_feeds(redis, str(server.make_url("/feed.xml")))
    items = await wait_for_items(redis, len(SENT | BAD), str(server.make_url("/a/")))

    by_name = {item["title"].removesuffix(" story"): item for item in items}
    for name in SENT:
        assert by_name[name]["extraction"] == "trafilatura", name
        assert text(f"{name}-1", 80) in by_name[name]["text"]
    for name in BAD:  # a bomb, a body cut short, an unsupported coding: never a broken text
        assert by_name[name]["extraction"] == "feed", name
        assert by_name[name]["text"] == text(f"feed-{name}")


async def test_an_attempt_reads_its_stored_page_and_an_expired_one_leaves_the_feeds_text(
    tmp_path: Path,
) -> None:
    redis_server = RedisServer(tmp_path / "redis")
    client = Redis.from_url(redis_server.url)
    ctx = extract_context(Settings(redis_url=redis_server.url), KEYS, client)
    feed = FeedRef(id="f", url="https://harbour.example/rss", title=None)

    def job(name: str) -> ExtractJob:
        url = f"https://harbour.example/a/{name}"
        entry = Entry(f"guid:{name}", f"{name} story", url=url, content=text(f"feed-{name}", 60))
        item_id = short_hash(url)
        return ExtractJob(item_id, feed, entry, fetched_at="-", html_key=KEYS.html(item_id))

    try:
        kept, expired = job("kept"), job("expired")
        blob = page_store.encode(gzip.compress(page("kept")), "gzip", feed_url="f", url="kept")
        await client.set(kept.html_key or "", blob)
        attempt = await begin_attempt(ctx, kept)
        assert (attempt.number, attempt.stored_page) == (1, blob)
        published = await ingest_article(ctx, kept, attempt)
        attempt = await begin_attempt(ctx, expired)  # nothing under its key
        assert (attempt.number, attempt.stored_page) == (1, None)
        fallback = await ingest_article(ctx, expired, attempt)
        items = await stream_items(client)
        leftovers = await client.keys(KEYS.html("*"))
    finally:
        await client.aclose()
        redis_server.stop()
    assert isinstance(published, Published) and isinstance(fallback, Published)
    by_title = {item["title"]: item for item in items}
    assert by_title["kept story"]["extraction"] == "trafilatura"
    assert text("kept-1", 80) in by_title["kept story"]["text"]
    assert by_title["expired story"]["extraction"] == "feed"
    assert by_title["expired story"]["text"] == text("feed-expired", 60)
    assert leftovers == []
