"""Poison articles: a page whose extraction kills the worker process every time, and one that
hangs past the hard time limit every time, are each tried FEEDPIPE_EXTRACT_MAX_ATTEMPTS times
and then recorded on the dead-letter stream with the reason; they never loop and never block
the healthy articles of the same feed. Once its page is fixed, `feedpipe dead-letters retry`
brings an article back. Real workers, their own redis-server, a loopback site; the faults are
injected by tests/faults/sitecustomize.py."""

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
from pipeline.extract_stage import CRASHED, begin_attempt, dead_letter, record_failure
from pipeline.models import Entry, ExtractJob, FeedRef, FeedSpec
from pipeline.settings import Settings
from tests.conftest import ROOT, RedisServer
from tests.integration.conftest import KEYS, Workers
from tests.integration.hostile import rss, rss_item, text
from tests.integration.test_cli import cli_env, feedpipe
from workers.runtime import extract_context

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
    faults = dict(PAGES)

    async def feed(_r: web.Request) -> web.Response:
        items = [rss_item(f"{slug} story", text(slug, 10), link=f"/a/{slug}") for slug in PAGES]
        return web.Response(text=rss("poison", items), content_type="application/rss+xml")

    async def article(request: web.Request) -> web.Response:
        slug = request.match_info["slug"]
        return web.Response(text=page(slug, faults[slug]), content_type="text/html")

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
        faults["crash"] = ""  # fixed at its source
        crash_letter = next(
            entry_id.decode()
            for entry_id, f in await client.xrange(KEYS.dead_letter_stream)
            if json.loads(f[b"dead"])["title"] == "crash story"
        )
        retried = feedpipe(
            "dead-letters", "retry", crash_letter, env=cli_env(redis_server.url)
        ).stdout
        while await client.xlen(KEYS.output_stream) < 3:
            assert time.monotonic() < deadline + 60, workers.log("fetch")
            await asyncio.sleep(0.5)
        back = json.loads((await client.xrevrange(KEYS.output_stream, count=1))[0][1][b"item"])
        still_dead = await client.xlen(KEYS.dead_letter_stream)
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
    assert f"{crash_letter}  retried" in retried
    assert back["title"] == "crash story" and back["url"] == str(server.make_url("/a/crash"))
    assert still_dead == 1  # the hang story's letter; the retried one left the stream


async def test_the_dead_letter_gives_the_last_attempts_reason(tmp_path: Path) -> None:
    """An attempt whose process died records no reason: the dead letter must say so, not
    repeat an earlier attempt's (billiard, slow to notice a dead child, once reported a crash
    as a hard time limit; the next attempts crashed and the letter kept that reason)."""
    redis_server = RedisServer(tmp_path / "redis")
    client = Redis.from_url(redis_server.url)
    ctx = extract_context(Settings(redis_url=redis_server.url), KEYS, client)
    feed = FeedRef(id="f", url="https://agency.example/rss", title=None)

    def job(item_id: str) -> ExtractJob:
        return ExtractJob(item_id=item_id, feed=feed, entry=Entry("guid:1", "t"), fetched_at="-")

    try:
        raised_then_died = job("a")
        assert (await begin_attempt(ctx, raised_then_died)).number == 1
        await record_failure(ctx, raised_then_died, "ValueError: bad page")
        assert (await begin_attempt(ctx, raised_then_died)).number == 2  # its process dies
        await dead_letter(ctx, raised_then_died, 2)
        died_then_raised = job("b")
        await begin_attempt(ctx, died_then_raised)  # its process dies
        await begin_attempt(ctx, died_then_raised)
        await record_failure(ctx, died_then_raised, "ValueError: bad page")
        await dead_letter(ctx, died_then_raised, 2)
        letters = [
            json.loads(f[b"dead"]) for _id, f in await client.xrange(KEYS.dead_letter_stream)
        ]
    finally:
        await client.aclose()
        redis_server.stop()
    assert [(letter["item_id"], letter["reason"]) for letter in letters] == [
        ("a", CRASHED),
        ("b", "ValueError: bad page"),
    ]
