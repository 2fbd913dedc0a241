"""End to end through real parts: loopback feeds -> beat -> fetch worker -> extract worker ->
Redis stream, with a private redis-server and Celery worker subprocesses."""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import msgspec
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from pipeline import registry
from pipeline.models import Entry, ExtractJob, FeedRef
from pipeline.normalize import feed_id
from pipeline.settings import Settings
from tests.integration.conftest import (
    KEYS,
    add_feeds,
    stream_items,
    validate,
    wait_for,
    wait_for_items,
)
from workers.celery_config import TASK_EXTRACT, create_app
from workers.demo_site import (
    DemoArticle,
    DemoFeed,
    FeedFormat,
    NewsSite,
    demo_feeds,
    make_app,
    read_fixture,
)

ZWNJ = "\u200c"


async def serve(aiohttp_server: Any, feeds: list[DemoFeed]) -> tuple[NewsSite, TestServer]:
    site = NewsSite(feeds)
    server = await aiohttp_server(make_app(site), host="127.0.0.1")
    return site, server


def url(server: TestServer, path: str) -> str:
    return str(server.make_url(path))


async def feed_state(client: Redis, feed_url: str) -> Any:
    return await registry.load_feed(client, KEYS, feed_id(feed_url))


WORDS = [
    "council",
    "harbour",
    "ferry",
    "budget",
    "market",
    "rain",
    "school",
    "bridge",
    "museum",
    "library",
    "hospital",
    "station",
    "farmers",
    "tourists",
    "engineers",
    "nurses",
    "teachers",
    "drivers",
    "fishermen",
    "students",
    "pensioners",
    "traders",
    "approved",
    "delayed",
    "reopened",
    "expanded",
    "flooded",
    "repaired",
    "protested",
    "welcomed",
    "rejected",
    "funded",
    "north",
    "south",
    "eastern",
    "western",
    "old",
    "new",
    "busy",
    "quiet",
    "coastal",
    "central",
    "rural",
    "downtown",
    "riverside",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "morning",
    "evening",
    "night",
    "weekend",
    "winter",
    "summer",
]


def story(slug: str, title: str, day: int) -> DemoArticle:
    """A story whose text is its own: random words seeded by the slug (never a near-copy)."""
    rng = random.Random(slug)
    paragraphs = tuple(
        f"{title}. " + " ".join(rng.choice(WORDS) for _ in range(40)) + "." for _ in range(4)
    )
    return DemoArticle(
        slug=slug,
        title=title,
        paragraphs=paragraphs,
        author="Staff",
        published=datetime(2025, 6, day, 9, 0, tzinfo=UTC),
        summary=paragraphs[0],
    )


def english_feed(
    *articles: DemoArticle, path: str = "/en/atom.xml", fmt: FeedFormat = "atom"
) -> DemoFeed:
    """An English outlet's feed ("Harbour Post") carrying ``articles``."""
    return DemoFeed(
        path=path,
        format=fmt,
        title=path,
        site_name="Harbour Post",
        language="en",
        articles=list(articles),
    )


async def test_three_formats_end_to_end(
    aiohttp_server: Any, redis: Redis, item_schema: dict[str, Any], fixture_path: Path
) -> None:
    feeds = demo_feeds(fixture_path)
    site, server = await serve(aiohttp_server, feeds)
    await add_feeds(redis, *(url(server, f.path) for f in feeds))
    expected = {a.title: (f, a) for f in feeds for a in f.articles}
    items = await wait_for_items(redis, len(expected), url(server, "/"))

    assert sorted(i["title"] for i in items) == sorted(expected)
    for item in items:
        feed, article = expected[item["title"]]
        validate(item, item_schema)
        assert item["text"] == "\n\n".join(article.paragraphs)
        assert item["extraction"] == "trafilatura"
        assert item["source"] == feed.site_name
        assert item["language"] == feed.language
        assert item["feed"]["url"] == url(server, feed.path)
        assert item["url"] == url(server, site.article_path(feed.path, article.slug))
        assert item["published_at"] == article.published.isoformat().replace("+00:00", "Z")
    assert {(await feed_state(redis, url(server, f.path))).items for f in feeds} == {2}
    # Every job left the ledger of queued jobs once decided (none waits to be sent again).
    await wait_for(lambda: _ledger_empty(redis), timeout=10, what="an empty ledger")


async def _ledger_empty(redis: Redis) -> bool:
    return await redis.zcard(KEYS.extract_pending) == await redis.hlen(KEYS.extract_jobs) == 0


async def test_persian_fixture_body_comes_out_intact(
    aiohttp_server: Any, redis: Redis, fixture_path: Path
) -> None:
    fixture = read_fixture(fixture_path)
    feed = DemoFeed(
        path="/fa/rss.xml",
        format="rss2",
        title="ایلنا",
        site_name="خبرگزاری کار ایران",
        language="fa",
        articles=[fixture],
    )
    _site, server = await serve(aiohttp_server, [feed])
    await add_feeds(redis, url(server, feed.path))
    [item] = await wait_for_items(redis, 1, url(server, "/"))

    lines = fixture_path.read_text(encoding="utf-8").strip().splitlines()
    title, body = lines[1].strip(), "\n".join(lines[3:])
    assert item["title"] == title
    assert item["text"] == "\n\n".join(p.strip() for p in body.split("\n\n") if p.strip())
    assert item["source"] == "خبرگزاری کار ایران"


async def test_zwnj_survives_the_pipeline(aiohttp_server: Any, redis: Redis) -> None:
    paragraphs = tuple(
        f"به گزارش خبرگزاری نمونه، کتاب{ZWNJ}ها و نشریه{ZWNJ}های تازه در نمایشگاه بند {n} عرضه "
        f"می{ZWNJ}شوند و ناشران می{ZWNJ}گویند استقبال بازدیدکنندگان بیش از سال گذشته بوده است."
        for n in range(1, 5)
    )
    article = DemoArticle(
        slug="book-fair",
        title=f"نمایشگاه کتاب{ZWNJ}ها",
        paragraphs=paragraphs,
        author=None,
        published=datetime(2025, 5, 1, tzinfo=UTC),
        summary="خلاصه",
    )
    feed = DemoFeed(
        path="/fa/rss.xml",
        format="rss2",
        title="نمونه",
        site_name="نمونه",
        language="fa",
        articles=[article],
    )
    _site, server = await serve(aiohttp_server, [feed])
    await add_feeds(redis, url(server, feed.path))
    [item] = await wait_for_items(redis, 1, url(server, "/"))
    assert item["text"] == "\n\n".join(paragraphs)
    assert item["title"] == f"نمایشگاه کتاب{ZWNJ}ها"


async def test_second_poll_is_304_and_a_new_entry_is_published_once(
    aiohttp_server: Any, redis: Redis
) -> None:
    feed = english_feed(story("council", "Council approves harbour plan", 1))
    site, server = await serve(aiohttp_server, [feed])
    feed_url = url(server, feed.path)
    [fid] = await add_feeds(redis, feed_url)
    await wait_for_items(redis, 1, url(server, "/"))

    async def polled(status: str) -> Any:
        state = await feed_state(redis, feed_url)
        return state.last_status == status and state

    # Second poll: the server answers 304 and nothing is published or parsed.
    await registry.mark_due(redis, KEYS, fid, time.time())
    await wait_for(lambda: polled("304"), what="a 304 poll")
    assert site.requests[feed.path] == 2
    assert len(await stream_items(redis)) == 1

    # A new entry appears: published on the next poll, exactly once.
    site.add_article(feed.path, story("ferry", "Ferry service resumes", 2))
    await registry.mark_due(redis, KEYS, fid, time.time())
    items = await wait_for_items(redis, 2, url(server, "/"))
    assert items[-1]["title"] == "Ferry service resumes"
    await registry.mark_due(redis, KEYS, fid, time.time())
    await wait_for(lambda: polled("304"), what="a 304 poll after the new entry")
    assert [i["title"] for i in await stream_items(redis)].count("Ferry service resumes") == 1
    assert site.requests[site.article_path(feed.path, "ferry")] == 1


async def test_same_article_in_two_feeds_is_published_once(
    aiohttp_server: Any, redis: Redis
) -> None:
    shared = story("budget", "Budget passes first reading", 3)
    main = english_feed(shared)
    top = english_feed(
        shared, story("rain", "Rain floods the market", 4), path="/en/top.xml", fmt="rss2"
    )
    site, server = await serve(aiohttp_server, [main, top])
    assert site.article_path(main.path, "budget") == site.article_path(top.path, "budget")
    await add_feeds(redis, url(server, main.path), url(server, top.path))
    await wait_for_items(redis, 2, url(server, "/"))
    await wait_for(lambda: _both_polled(redis, server, main, top), what="both feeds polled")
    await wait_for(lambda: _queues_empty(redis), what="queues drained")
    titles = [i["title"] for i in await stream_items(redis)]
    assert sorted(titles) == ["Budget passes first reading", "Rain floods the market"]


async def _both_polled(redis: Redis, server: TestServer, *feeds: DemoFeed) -> bool:
    states = [await feed_state(redis, url(server, f.path)) for f in feeds]
    return all(s.last_status == "200" for s in states)


async def _queues_empty(redis: Redis) -> bool:
    return await redis.llen("fetch") == 0 and await redis.llen("extract") == 0


async def test_failing_feeds_are_recorded_and_others_flow(
    aiohttp_server: Any, redis: Redis
) -> None:
    good = english_feed(story("good", "Healthy feed still flows", 5))
    broken = DemoFeed(
        path="/en/broken.xml",
        format="rss2",
        title="Broken",
        site_name="X",
        language="en",
        articles=[],
    )
    garbage = DemoFeed(
        path="/en/garbage.xml",
        format="rss2",
        title="Garbage",
        site_name="X",
        language="en",
        articles=[],
    )
    site, server = await serve(aiohttp_server, [good, broken, garbage])
    site.fail_paths[broken.path] = (500, b"Internal Server Error")
    site.fail_paths[garbage.path] = (200, b"\x89PNG\r\n\x1a\n not a feed at all \x00\xff")
    await add_feeds(redis, *(url(server, f.path) for f in (good, broken, garbage)))
    [item] = await wait_for_items(redis, 1, url(server, "/"))
    assert item["title"] == "Healthy feed still flows"

    async def failed(feed: DemoFeed) -> Any:
        state = await feed_state(redis, url(server, feed.path))
        return state.last_status == "error" and state

    server_error = await wait_for(lambda: failed(broken), what="500 recorded")
    assert server_error.errors == 1 and server_error.last_error.startswith("ServerError:")
    assert (
        "HTTP 500" in server_error.last_error
        and url(server, broken.path) in server_error.last_error
    )
    assert server_error.next_poll > time.time()
    not_feed = await wait_for(lambda: failed(garbage), what="garbage recorded")
    assert not_feed.last_error.startswith("NotAFeed:")


async def test_same_extract_task_twice_publishes_once(
    redis_server: Any, redis: Redis, item_schema: dict[str, Any]
) -> None:
    producer = create_app(Settings(redis_url=redis_server.url))
    entry = Entry(
        identity="guid:twice",
        title="Delivered twice",
        url=None,
        summary="A retried task must not publish this story a second time. " * 6,
    )
    job = ExtractJob(
        item_id="b" * 24,
        feed=FeedRef(id="f" * 16, url="http://127.0.0.1:1/feed", title="Twice"),
        entry=entry,
        fetched_at="2025-06-01T00:00:00Z",
    )
    for _ in range(2):
        producer.send_task(TASK_EXTRACT, args=[msgspec.to_builtins(job)])
    await wait_for(lambda: _queues_empty(redis), what="extract queue drained")
    await wait_for(lambda: _stat(redis, "published", 1), what="one publish")
    items = [i for i in await stream_items(redis) if i["id"] == "b" * 24]
    assert len(items) == 1 and items[0]["extraction"] == "feed"
    validate(items[0], item_schema)


async def test_malformed_extract_messages_are_set_aside_and_block_nothing(
    redis_server: Any, redis: Redis, workers: Any
) -> None:
    """Messages no extract job of this version reads (another layout, an id keys cannot be
    built from, a page key that is not the item's) go to the dead-letter stream as they came,
    once each, with one log line naming what is wrong; the key a forged message names is left
    alone, and the good job sent after them is published."""
    producer = create_app(Settings(redis_url=redis_server.url))
    feed = FeedRef(id="f" * 16, url="http://127.0.0.1:1/feed", title="Malformed")

    def job(item_id: str, **fields: Any) -> dict[str, Any]:
        entry = Entry(identity=f"guid:{item_id}", title=f"Story {item_id}", summary=TEXT)
        made = ExtractJob(item_id=item_id, feed=feed, entry=entry, fetched_at="-", **fields)
        return cast(dict[str, Any], msgspec.to_builtins(made))

    await redis.set("victim", b"kept")
    log = workers.logs["extract"]
    logged_before = log.read_text(errors="replace").count("extract message set aside")
    bad = [
        {"item_id": 3, "feed": "?"},
        job("../" + "c" * 21),
        job("d" * 24, html_key="victim"),
    ]
    for payload in [*bad, job("e" * 24)]:
        producer.send_task(TASK_EXTRACT, args=[payload])
    await wait_for(lambda: _stat(redis, "published", 1), what="the good job published")
    await wait_for(lambda: _stat(redis, "dead_lettered", 3), what="three set aside")
    letters = [json.loads(f[b"dead"]) for _id, f in await redis.xrange(KEYS.dead_letter_stream)]
    # Two pool processes: the letters come in either order.
    reasons = {str(letter["message"]["item_id"]): letter["reason"] for letter in letters}
    as_sent = sorted(json.dumps(letter["message"], sort_keys=True) for letter in letters)
    assert as_sent == sorted(json.dumps(message, sort_keys=True) for message in bad)
    assert "$.item_id" in reasons["3"] and "item_id is not 24" in reasons["../" + "c" * 21]
    assert "html_key is not the key of the item's stored page" in reasons["d" * 24]
    assert await redis.get("victim") == b"kept"
    assert [i["id"] for i in await stream_items(redis)] == ["e" * 24]

    async def logged() -> list[str]:  # a line follows its letter; repeats are held back
        lines = log.read_text(errors="replace").splitlines()
        return [line for line in lines if "extract message set aside" in line][logged_before:]

    # One line per message and process every 30 s (pipeline.logs.RepeatedErrorFilter).
    lines = await wait_for(logged, what="the set-aside logged")
    assert all('reason="malformed extract message: ' in line for line in lines)


TEXT = "A story told at length enough to be published from the feed's own text. " * 6


async def _stat(redis: Redis, name: str, value: int) -> bool:
    return int(await redis.hget(KEYS.stats, name) or 0) >= value


async def test_article_page_that_is_not_html_falls_back_to_the_feed(
    aiohttp_server: Any, redis: Redis
) -> None:
    article = story("photo", "Only a photo at the link", 7)
    feed = english_feed(article)
    site, server = await serve(aiohttp_server, [feed])
    site.fail_paths[site.article_path(feed.path, "photo")] = (200, b"\x89PNG\r\n\x1a\n" * 4000)
    await add_feeds(redis, url(server, feed.path))
    [item] = await wait_for_items(redis, 1, url(server, "/"))
    assert item["extraction"] == "feed"
    assert item["text"] == article.summary  # the feed's own text, never the image's bytes


class BrokenQueue:
    """An ExtractQueue whose send fails as a bug would (pipeline.poll's own seam)."""

    def send(self, job: Any) -> None:
        raise RuntimeError(f"cannot queue {job.item_id}")


async def test_a_crash_in_one_feed_is_recorded_and_the_batch_goes_on(
    aiohttp_server: Any, redis: Redis
) -> None:
    import aiohttp

    from pipeline.poll import poll_feeds
    from pipeline.settings import Settings
    from workers.runtime import poll_context

    broken = english_feed(story("crash", "Crashes on queueing", 8))
    empty = english_feed(path="/en/empty.xml")
    _site, server = await serve(aiohttp_server, [broken, empty])
    ids = await add_feeds(redis, url(server, broken.path), url(server, empty.path))
    # Not due for the session's workers: this test polls them itself, in-process.
    await redis.zadd(KEYS.feeds_due, dict.fromkeys(ids, time.time() + 3600))
    settings = Settings(redis_url="redis://unused", allow_private_networks=True)
    async with aiohttp.ClientSession() as http:
        ctx = poll_context(settings, KEYS, redis, http, BrokenQueue())
        outcomes = await poll_feeds(ctx, ids)
    assert [o.status for o in outcomes] == ["error", "ok"]
    state = await feed_state(redis, url(server, broken.path))
    assert state.errors == 1 and state.last_error.startswith("UnexpectedError: ")
    assert "RuntimeError: cannot queue" in state.last_error
