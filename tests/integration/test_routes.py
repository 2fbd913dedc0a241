"""Routes on a real Redis: each matching route's stream gets an item exactly once, in the
publish script's atomic run; a copy from a routed source reaches a route its story did not;
route changes reach running workers without a restart."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import msgspec
from redis.asyncio import Redis

from pipeline.models import Cluster, Discarded, Item, Published
from pipeline.monitor import take_snapshot
from pipeline.publish import publish_item
from pipeline.routes import Route, Router, save_routes
from tests.integration.conftest import KEYS, add_feeds, stream_items, wait_for
from tests.integration.test_dedupe import POLICY, copies_of, distinct_story
from tests.integration.test_dedupe import item as dedupe_item
from tests.integration.test_pipeline import english_feed, serve, story, url
from tests.unit.test_dedupe import STORY
from workers.exporter import metrics_of

ARABIC = Route(name="arabic", languages=("ar",))
WATCH = Route(name="watch", sources=("Watched",))


def item(key: str, text: str, source: str) -> Item:
    """An item as build_item makes it: its cluster named by its own id."""
    made = dedupe_item(key, text, source=source)
    return msgspec.structs.replace(made, cluster=Cluster(id=made.id))


async def route_items(redis: Redis, name: str) -> list[dict[str, Any]]:
    return await stream_items(redis, KEYS.route_stream(name))


async def test_a_published_item_goes_to_its_routes_once(redis: Redis) -> None:
    await save_routes(redis, KEYS, [ARABIC, WATCH, Route(name="never", tags=("none",))])
    original = item("o", "\n\n".join(STORY), source="Watched")
    assert isinstance(await publish_item(redis, KEYS, "f", original, POLICY), Published)
    again = await publish_item(redis, KEYS, "f", original, POLICY)  # a retried task
    assert isinstance(again, Discarded) and again.reason == "duplicate_url"

    assert [i["id"] for i in await stream_items(redis)] == [original.id]
    assert [i["id"] for i in await route_items(redis, "watch")] == [original.id]
    assert await route_items(redis, "arabic") == []  # the story is Persian
    assert await redis.exists(KEYS.route_stream("never")) == 0


async def test_a_copy_from_a_routed_source_reaches_the_route_its_story_missed(
    redis: Redis,
) -> None:
    await save_routes(redis, KEYS, [WATCH])
    first_copy, second_copy = copies_of(STORY, 2)
    original = item("o", "\n\n".join(STORY), source="Elsewhere")
    watched = item("w", first_copy, source="Watched")
    watched_again = item("w2", second_copy, source="Watched")
    assert isinstance(await publish_item(redis, KEYS, "f", original, POLICY), Published)

    withheld = await publish_item(redis, KEYS, "f", watched, POLICY)
    assert isinstance(withheld, Discarded) and withheld.duplicate_of == original.id
    [routed] = await route_items(redis, "watch")
    assert routed["id"] == watched.id and routed["cluster"] == {"id": original.id, "size": 2}
    [(_, fields)] = await redis.xrange(KEYS.duplicates_stream)
    assert b'"routed":["watch"]' in fields[b"duplicate"]

    # The route has the story now: a third copy, from the same source, is not sent again.
    third = await publish_item(redis, KEYS, "f", watched_again, POLICY)
    assert isinstance(third, Discarded) and third.duplicate_of == original.id
    assert [i["id"] for i in await route_items(redis, "watch")] == [watched.id]
    assert [i["id"] for i in await stream_items(redis)] == [original.id]


async def test_a_router_holding_old_routes_reloads_before_publishing(redis: Redis) -> None:
    router = Router()
    await save_routes(redis, KEYS, [ARABIC])
    assert [r.name for r in (await router.current(redis, KEYS)).routes] == ["arabic"]
    await save_routes(redis, KEYS, [WATCH])  # changed while this worker runs
    watched = item("o", "\n\n".join(STORY), source="Watched")
    outcome = await publish_item(redis, KEYS, "f", watched, POLICY, router=router)
    assert isinstance(outcome, Published)
    assert [i["id"] for i in await route_items(redis, "watch")] == [watched.id]
    assert [r.name for r in (await router.current(redis, KEYS)).routes] == ["watch"]


async def test_route_changes_reach_running_workers(aiohttp_server: Any, redis: Redis) -> None:
    """The session's workers keep running between the two route tables."""
    first = english_feed(story("routes-one", "Quokka census begins", 3), path="/r1.xml")
    second = english_feed(story("routes-two", "Zanzibar ferry resumes", 4), path="/r2.xml")
    _site, server = await serve(aiohttp_server, [first, second])
    await save_routes(redis, KEYS, [Route(name="quokka", match="(?i)quokka")])
    await add_feeds(redis, url(server, first.path))
    items = await wait_for(lambda: route_items(redis, "quokka"), what="an item on route quokka")
    assert [i["title"] for i in items] == ["Quokka census begins"]

    await save_routes(
        redis, KEYS, [Route(name="zanzibar", match="(?i)zanzibar"), Route(name="quokka")]
    )
    await add_feeds(redis, url(server, second.path))
    items = await wait_for(lambda: route_items(redis, "zanzibar"), what="an item on route zanzibar")
    assert [i["title"] for i in items] == ["Zanzibar ferry resumes"]
    quokka = [i["title"] for i in await route_items(redis, "quokka")]  # now: every item
    assert quokka == ["Quokka census begins", "Zanzibar ferry resumes"]


async def test_concurrent_copies_reach_a_route_once(redis_server: Any, redis: Redis) -> None:
    """Six workers publishing copies of one story from routed sources at the same moment."""
    await save_routes(redis, KEYS, [Route(name="all-copies")])
    clients = [Redis.from_url(redis_server.url) for _ in range(6)]
    try:
        for round_ in range(5):
            texts = copies_of(distinct_story(round_), 6)
            outcomes = await asyncio.gather(
                *(
                    publish_item(c, KEYS, "f", item(f"r{round_}-{k}", text, "Agency"), POLICY)
                    for k, (c, text) in enumerate(zip(clients, texts, strict=True))
                )
            )
            assert sum(isinstance(o, Published) for o in outcomes) == 1, outcomes
    finally:
        for c in clients:
            await c.aclose()
    assert await redis.xlen(KEYS.output_stream) == 5
    assert await redis.xlen(KEYS.route_stream("all-copies")) == 5


async def test_status_and_exporter_show_each_route_and_its_consumers(redis: Redis) -> None:
    await save_routes(redis, KEYS, [WATCH])
    stream = KEYS.route_stream("watch")
    await publish_item(redis, KEYS, "f", item("o", "\n\n".join(STORY), "Watched"), POLICY)
    await redis.xgroup_create(stream, "desk", id="0")
    snapshot = await take_snapshot(redis, KEYS, queues=(), failing_after=3)
    assert snapshot.streams[stream] == 1
    [group] = [g for g in snapshot.groups if g.stream == stream]
    assert (group.group, group.lag) == ("desk", 1)
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in metrics_of(snapshot)
        for sample in family.samples
    }
    assert samples[("feedpipe_stream_length", (("stream", stream),))] == 1
    assert samples[("feedpipe_consumer_group_lag", (("group", "desk"), ("stream", stream)))] == 1


async def test_a_mis_tagged_edition_is_routed_by_the_language_of_its_text(
    aiohttp_server: Any, redis: Redis
) -> None:
    """An agency's English edition whose feed and pages say ``fa``: the item's language is
    detected from the text, the declared one kept beside it, and routes follow the text."""
    english = story("mis-tagged", "Quokka census begins", 5)
    feed = dataclasses.replace(english_feed(english, path="/en-as-fa.xml"), language="fa")
    _site, server = await serve(aiohttp_server, [feed])
    await save_routes(redis, KEYS, [Route(name="english", languages=("en",)), ARABIC])
    await add_feeds(redis, url(server, feed.path))
    [routed] = await wait_for(lambda: route_items(redis, "english"), what="the English item")
    assert (routed["language"], routed["declared_language"], routed["schema"]) == ("en", "fa", 2)
    assert await route_items(redis, "arabic") == []
