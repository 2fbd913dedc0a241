"""Full-content feeds through the real pipeline: `auto` learns to skip pages, `feed` never
fetches them, a summary-only feed always does (pipeline/fulltext.py)."""

from __future__ import annotations

import time
from typing import Any

from redis.asyncio import Redis

from pipeline import registry
from pipeline.fulltext import FulltextPolicy
from pipeline.keys import STAT_PAGES_SKIPPED
from tests.integration.conftest import KEYS, add_feeds, stream_items, wait_for, wait_for_items
from tests.integration.test_pipeline import english_feed, serve, story, url

LEARN = FulltextPolicy().learn_after


def stories(prefix: str, count: int, day: int = 1) -> list[Any]:
    return [story(f"{prefix}{i}", f"{prefix.title()} story {i}", day) for i in range(count)]


def page_requests(site: Any, feed_path: str, articles: list[Any]) -> int:
    return sum(site.requests[site.article_path(feed_path, a.slug)] for a in articles)


async def test_auto_learns_that_the_feed_is_the_article_and_stops_fetching_pages(
    aiohttp_server: Any, redis: Redis
) -> None:
    first = stories("learn", LEARN + 1)
    feed = english_feed(*first, path="/full/rss.xml", fmt="rss2")
    feed.full_content = True
    site, server = await serve(aiohttp_server, [feed])
    [fid] = await add_feeds(redis, url(server, feed.path))
    await wait_for_items(redis, len(first), url(server, "/"))
    assert page_requests(site, feed.path, first) == len(first)  # auto starts with pages

    async def learned() -> bool:
        state = await registry.load_feed(redis, KEYS, fid)
        return state is not None and state.fulltext_streak >= LEARN

    await wait_for(learned, what="the feed's text learned to be the article")
    later = stories("later", 10, day=2)
    for article in later:
        site.add_article(feed.path, article)
    await registry.mark_due(redis, KEYS, fid, time.time())
    await wait_for_items(redis, len(first) + len(later), url(server, "/"))
    fetched = page_requests(site, feed.path, later)
    assert fetched <= 2, f"{fetched} of 10 pages fetched after learning"  # rechecks only
    items = {i["title"]: i for i in await stream_items(redis)}
    unfetched = [a for a in later if not site.requests[site.article_path(feed.path, a.slug)]]
    for article in unfetched:  # made from the feed's own text, the whole of it
        assert items[article.title]["extraction"] == "feed"
        assert article.paragraphs[-1][-80:] in items[article.title]["text"]
    assert int(await redis.hget(KEYS.stats, STAT_PAGES_SKIPPED) or 0) == 10 - fetched


async def test_feed_mode_never_fetches_and_page_mode_always_does(
    aiohttp_server: Any, redis: Redis
) -> None:
    by_feed = english_feed(*stories("byfeed", 3), path="/byfeed/rss.xml", fmt="rss2")
    by_page = english_feed(*stories("bypage", 3), path="/bypage/atom.xml")
    summaries = english_feed(*stories("summary", 3), path="/summary/atom.xml")
    by_feed.full_content = by_page.full_content = True
    site, server = await serve(aiohttp_server, [by_feed, by_page, summaries])
    await add_feeds(redis, url(server, by_feed.path), fulltext="feed")
    await add_feeds(redis, url(server, by_page.path), fulltext="page")
    await add_feeds(redis, url(server, summaries.path), fulltext="feed")
    items = await wait_for_items(redis, 9, url(server, "/"))
    assert page_requests(site, by_feed.path, by_feed.articles) == 0
    assert page_requests(site, by_page.path, by_page.articles) == 3
    # A feed set to `feed` whose entries are summaries: their pages are still fetched.
    assert page_requests(site, summaries.path, summaries.articles) == 3
    extraction = {i["title"]: i["extraction"] for i in items}
    assert extraction["Byfeed story 0"] == "feed"
    assert extraction["Bypage story 0"] == "trafilatura"
    assert extraction["Summary story 0"] == "trafilatura"
