"""bench/feedfarm.py serves what the benchmarks rely on: parseable feeds on several hosts, news
pages of 50-200 KB whose story trafilatura takes out, 304s, errors, latency and a schedule;
and the real pipeline ingests a small farm completely."""

from __future__ import annotations

import asyncio
import gzip
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import feedparser
import pytest
from multidict import CIMultiDict
from redis.asyncio import Redis

from bench.feedfarm import Farm, FarmConfig, FarmServer, load_stories, shared_dir, write_feeds_file
from pipeline.article_text import ExtractionPolicy, extract_article
from pipeline.models import Entry
from tests.integration.conftest import KEYS, add_feeds, stream_items, wait_for


@pytest.fixture(scope="module")
def stories() -> dict[str, Any]:
    return load_stories(shared_dir())  # English only when ../shared is absent


@pytest.fixture
def farm(stories: dict[str, Any]) -> Iterator[Farm]:
    config = FarmConfig(feeds=10, entries=3, hosts=3, new_entry_every=2.0)  # every language
    farm = Farm(config, stories)
    with FarmServer(farm):
        yield farm


async def get(url: str, **headers: str) -> tuple[int, CIMultiDict[str], bytes]:
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
        return response.status, CIMultiDict(response.headers), await response.read()


async def test_feeds_are_spread_over_hosts_and_parse(farm: Farm) -> None:
    assert len({farm.origin(n) for n in range(farm.config.feeds)}) == farm.config.hosts
    formats = set()
    for n, url in enumerate(farm.feed_urls()):
        status, _headers, body = await get(url)
        parsed = feedparser.parse(body)
        assert status == 200 and not parsed.bozo, url
        assert len(parsed.entries) == farm.config.entries
        assert parsed.entries[0].link.startswith(farm.origin(n))
        formats.add(parsed.version[:3])
    assert formats == {"rss", "ato"}


async def test_pages_are_news_sized_gzipped_and_their_story_is_extracted(farm: Farm) -> None:
    policy = ExtractionPolicy.create(200)
    for n in range(farm.config.feeds):
        status, headers, body = await get(farm.page_url(n, 0), **{"Accept-Encoding": "gzip"})
        assert status == 200
        assert headers["Content-Encoding"] == "gzip"
        size = len(gzip.decompress(farm.page(n, 0)))
        assert 50 * 1024 <= size <= 210 * 1024, size
        story = farm.story(n, 0)
        entry = Entry(identity=f"url:{n}", url=farm.page_url(n, 0), title=story.title)
        article = extract_article(body, "utf-8", entry, policy)
        assert article.extraction == "trafilatura"
        # The story's paragraphs, not the mega-menu, comments or scripts around them.
        assert story.paragraphs[0][:60] in article.text
        assert story.paragraphs[-1][-60:] in article.text
        assert "div-gpt-ad" not in article.text


async def test_validators_304_and_new_entries_on_schedule(farm: Farm) -> None:
    url = farm.feed_urls()[0]
    status, headers, _ = await get(url)
    assert status == 200 and headers["ETag"] and headers["Last-Modified"]
    status, _, body = await get(url, **{"If-None-Match": headers["ETag"]})
    assert (status, body) == (304, b"")
    # Entries appear on the schedule: within two periods the ETag changes and the feed grows.
    deadline = time.monotonic() + 2 * max(farm.period) + 2
    while farm.visible(0, time.time()) == farm.config.entries and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    status, headers2, body = await get(url, **{"If-None-Match": headers["ETag"]})
    assert status == 200 and headers2["ETag"] != headers["ETag"]
    newest = feedparser.parse(body).entries[0]
    assert newest.link == farm.page_url(0, farm.visible(0, time.time()) - 1)
    assert farm.appeared_at(0, farm.config.entries) <= time.time()


async def test_latency_and_error_rate(stories: dict[str, Any]) -> None:
    config = FarmConfig(feeds=1, entries=1, hosts=1, latency_ms=150, error_rate=0.5)
    farm = Farm(config, stories)
    with FarmServer(farm):
        start = time.monotonic()
        statuses = [(await get(farm.feed_urls()[0]))[0] for _ in range(20)]
        elapsed = time.monotonic() - start
    assert elapsed >= 20 * 0.15
    assert set(statuses) == {200, 503}
    assert farm.served["error"] == statuses.count(503)


def test_feeds_file_lists_every_feed(farm: Farm, tmp_path: Path) -> None:
    from pipeline.registry import load_feeds_file

    path = tmp_path / "farm.yaml"
    write_feeds_file(farm, path)
    assert [spec.url for spec in load_feeds_file(path)] == farm.feed_urls()


async def test_the_pipeline_ingests_a_small_farm_completely(
    redis: Redis, stories: dict[str, Any]
) -> None:
    # Real workers, real Redis, the farm on three loopback hosts: every entry is decided once
    # (published, or a duplicate when the farm reuses a story).
    farm = Farm(FarmConfig(feeds=6, entries=4, hosts=3), stories)
    with FarmServer(farm):
        await add_feeds(redis, *farm.feed_urls())

        async def all_decided() -> list[str] | None:
            published = [item["url"] for item in await stream_items(redis)]
            copies = [
                json.loads(fields[b"duplicate"])["url"]
                for _id, fields in await redis.xrange(KEYS.duplicates_stream)
            ]
            return published + copies if len(published) + len(copies) >= 24 else None

        urls = await wait_for(all_decided, timeout=90, what="24 farm articles decided")
    expected = {farm.page_url(n, k) for n in range(6) for k in range(4)}
    assert sorted(urls) == sorted(expected)  # each exactly once
