"""Poison articles: a page whose extraction kills the worker process every time, and one that
hangs past the hard time limit every time, are each tried FEEDPIPE_EXTRACT_MAX_ATTEMPTS times
and then recorded on the dead-letter stream with the reason; they never loop and never block
the healthy articles of the same feed. Real workers, their own redis-server, a loopback site;
the faults are injected by tests/faults/sitecustomize.py."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from redis.asyncio import Redis

from pipeline import registry
from pipeline.ingest import CRASHED
from pipeline.models import FeedSpec
from tests.conftest import ROOT, RedisServer
from tests.integration.conftest import KEYS, Workers
from tests.integration.hostile import rss, rss_item, text

pytestmark = pytest.mark.slow

FAULT_ENV = {
    "PYTHONPATH": os.pathsep.join([str(ROOT / "tests" / "faults"), str(ROOT)]),
    "FEEDPIPE_TEST_FAULTS": "1",
    "FEEDPIPE_EXTRACT_TIME_LIMIT_SECONDS": "4",
    "FEEDPIPE_EXTRACT_MAX_ATTEMPTS": "3",
}
PAGES = {"healthy-1": "", "crash": "crash", "hang": "hang", "healthy-2": ""}


def page(slug: str, fault: str) -> str:
    paragraphs = "".join(f"<p>{text(f'{slug}-{i}', 40)}</p>" for i in range(4))
    marker = f'<div id="feedpipe-fault">{fault}</div>' if fault else ""
    return (
        f"<html><head><title>{slug}</title></head><body><article><h1>{slug} story</h1>"
        f"{paragraphs}</article>{marker}</body></html>"
    )


async def test_poison_articles_are_dead_lettered_and_block_nothing(
    aiohttp_server: Any, tmp_path: Path
) -> None:
    async def feed(_r: web.Request) -> web.Response:
        items = [rss_item(f"{slug} story", text(slug, 10), link=f"/a/{slug}") for slug in PAGES]
        return web.Response(text=rss("poison", items), content_type="application/rss+xml")

    async def article(request: web.Request) -> web.Response:
        slug = request.match_info["slug"]
        return web.Response(text=page(slug, PAGES[slug]), content_type="text/html")

    app = web.Application()
    app.router.add_get("/feed", feed)
    app.router.add_get("/a/{slug}", article)
    server = await aiohttp_server(app, host="127.0.0.1")
    redis_server = RedisServer(tmp_path / "redis")
    workers = Workers(redis_server.url, tmp_path, FAULT_ENV, node="poison")
    client = Redis.from_url(redis_server.url)
    try:
        spec = FeedSpec(url=str(server.make_url("/feed")))
        await registry.add_feeds(client, KEYS, [spec], time.time())
        deadline = time.monotonic() + 120
        while (
            await client.xlen(KEYS.dead_letter_stream) < 2
            or await client.xlen(KEYS.output_stream) < 2
        ):
            assert time.monotonic() < deadline, workers.log("extract")
            await asyncio.sleep(0.5)
        await asyncio.sleep(6)  # and then nothing more happens: no redelivery loop
        published = [
            json.loads(f[b"item"])["title"] for _id, f in await client.xrange(KEYS.output_stream)
        ]
        letters = [
            json.loads(f[b"dead"]) for _id, f in await client.xrange(KEYS.dead_letter_stream)
        ]
        leftovers = await client.keys("feedpipe:v1:html:*") + await client.keys(
            "feedpipe:v1:attempts:*"
        )
        assert workers.alive(), workers.log("extract")
    finally:
        workers.stop()
        await client.aclose()
        redis_server.stop()
    assert sorted(published) == ["healthy-1 story", "healthy-2 story"]
    dead = {letter["title"]: letter for letter in letters}
    assert dead.keys() == {"crash story", "hang story"}
    assert dead["crash story"]["reason"] == CRASHED and dead["crash story"]["attempts"] == 3
    assert dead["hang story"]["reason"] == "hard time limit (4 s) exceeded"
    assert dead["hang story"]["attempts"] == 3
    assert dead["hang story"]["entry_url"] == str(server.make_url("/a/hang"))
    assert leftovers == []  # claim checks and attempt counters are cleaned up
