"""WebSub against a loopback hub written in the tests (tests/integration/websub_hub.py): the
hub verifies intent, pushes signed and badly signed content, and grants short leases; pushed
entries go through the session's real workers like polled ones."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from redis.asyncio import Redis

from pipeline import registry
from pipeline.fetch import Fetcher, new_session
from pipeline.keys import STAT_PUSHES, STAT_PUSHES_REFUSED
from pipeline.parse import parse_feed
from pipeline.settings import Settings
from pipeline.websub import (
    HubLink,
    WebSubContext,
    WebSubPolicy,
    hub_link,
    load_subscription,
    maintain_subscriptions,
    note_hub,
)
from tests.integration.conftest import KEYS, add_feeds, stream_items, wait_for
from tests.integration.test_cli import FEEDPIPE, run_env
from tests.integration.websub_hub import LoopbackHub
from workers import runtime
from workers.celery_config import TASK_INGEST_PUSH, create_app
from workers.embedded_redis import free_port
from workers.websub_service import make_app


class Deployment:
    """The hub, feedpipe's callback service and a maintenance context, all on loopback."""

    def __init__(self, hub: LoopbackHub, ctx: WebSubContext, callback_base: str) -> None:
        self.hub, self.ctx, self.callback_base = hub, ctx, callback_base


@pytest_asyncio.fixture
async def deployed(
    aiohttp_server: Any, redis: Redis, redis_server: Any
) -> AsyncIterator[Deployment]:
    hub = LoopbackHub(lease_seconds=60)
    hub_server = await aiohttp_server(hub.app(), host="127.0.0.1")
    hub.base = str(hub_server.make_url("")).rstrip("/")
    port = free_port()
    policy = WebSubPolicy(
        base_url=f"http://127.0.0.1:{port}", lease_seconds=864_000, poll_seconds=3600
    )
    settings = Settings(redis_url=redis_server.url, allow_private_networks=True)
    celery = create_app(settings)

    def send(feed_id: str, body_key: str) -> None:  # as `feedpipe websub` does
        celery.send_task(TASK_INGEST_PUSH, args=[feed_id, body_key])

    await aiohttp_server(
        make_app(redis, KEYS, policy, send, 1_000_000), host="127.0.0.1", port=port
    )
    network = runtime.network_policy(settings)
    async with new_session(settings.user_agent, network) as session:
        fetcher = Fetcher(session, network, None, 5, asyncio.Semaphore(4))
        ctx = WebSubContext(redis, KEYS, fetcher, runtime.feed_limits(settings), policy)
        yield Deployment(hub, ctx, policy.base_url)
    celery.close()


async def subscribed_feed(deployed: Deployment, redis: Redis) -> str:
    """The hub's topic added as a feed, subscribed at the hub and verified; its id."""
    hub = deployed.hub
    [fid] = await add_feeds(redis, hub.topic, fulltext="feed")
    await note_hub(redis, KEYS, fid, HubLink(hub=f"{hub.base}/hub", topic=hub.topic), time.time())
    assert await maintain_subscriptions(deployed.ctx) == 1
    await wait_for(lambda: _async(bool(hub.verified)), 10, "verification")
    return fid


async def items_from(redis: Redis, base: str) -> list[dict[str, Any]]:
    return [i for i in await stream_items(redis) if (i["url"] or "").startswith(base)]


async def wait_for_titles(redis: Redis, base: str, count: int) -> list[str]:
    async def check() -> list[dict[str, Any]] | None:
        found = await items_from(redis, base)
        return found if len(found) >= count else None

    return [i["title"] for i in await wait_for(check, what=f"{count} items from {base}")]


async def test_subscribe_push_renew_and_unsubscribe(deployed: Deployment, redis: Redis) -> None:
    hub, ctx = deployed.hub, deployed.ctx
    hub.entries = [("first", "First story, polled")]
    [fid] = await add_feeds(redis, hub.topic, fulltext="feed")  # the session's workers poll it
    assert await wait_for_titles(redis, hub.base, 1) == ["First story, polled"]

    # Discovery, as a poll sees the feed, then the subscription a poll asks for.
    limits = runtime.feed_limits(Settings())
    fetched = await ctx.fetcher.fetch_page(
        hub.topic, feed_url=hub.topic, limits=limits, deadline=time.monotonic() + 10
    )
    assert fetched.hub_link == f"{hub.base}/hub"  # the relative Link header, made absolute
    link = hub_link(parse_feed(fetched, hub.topic, 100), fetched)
    assert link == HubLink(hub=f"{hub.base}/hub", topic=hub.topic)
    await note_hub(redis, KEYS, fid, link, time.time())
    assert await maintain_subscriptions(ctx) == 1
    await wait_for(lambda: _async(hub.verified == [("subscribe", True)]), 10, "verification")
    [form] = hub.requests
    assert form["hub.callback"] == f"{deployed.callback_base}/websub/{fid}"
    assert (form["hub.mode"], form["hub.topic"], form["hub.lease_seconds"]) == (
        "subscribe",
        hub.topic,
        "864000",
    )
    assert len(form["hub.secret"]) == 64
    state = await registry.load_feed(redis, KEYS, fid)
    assert state is not None and state.push_until is not None
    assert 50 < state.push_until - time.time() <= 60  # the hub granted 60 s, not 10 days

    # A new entry pushed by the hub, signed with the subscription's secret: published.
    hub.entries.append(("second", "Second story, pushed"))
    assert await hub.publish() == 202
    assert (await wait_for_titles(redis, hub.base, 2))[1] == "Second story, pushed"

    # Badly signed notifications are acknowledged (the spec wants a 2xx) and dropped.
    hub.entries.append(("third", "Third story, badly signed"))
    assert await hub.publish(secret="not-the-secret") == 202
    assert await hub.publish(method="sha1") == 202
    stats = await redis.hgetall(KEYS.stats)
    assert (int(stats[STAT_PUSHES.encode()]), int(stats[STAT_PUSHES_REFUSED.encode()])) == (1, 2)
    await asyncio.sleep(2)
    assert len(await items_from(redis, hub.base)) == 2

    # Polling goes on as the safety net: the ignored entry arrives, the pushed one stays one.
    await registry.mark_due(redis, KEYS, fid, 0)
    titles = await wait_for_titles(redis, hub.base, 3)
    assert sorted(titles) == sorted(title for _, title in hub.entries)

    # The lease is renewed before it runs out.
    assert await maintain_subscriptions(ctx, time.time() + 50) == 1
    await wait_for(lambda: _async(len(hub.verified) == 2), 10, "renewal verified")
    assert [f["hub.mode"] for f in hub.requests] == ["subscribe", "subscribe"]
    assert hub.verified[1] == ("subscribe", True)

    # A removed feed is unsubscribed; its callback then refuses pushes.
    await registry.remove_feed(redis, KEYS, fid)
    assert await maintain_subscriptions(ctx) == 1
    await wait_for(lambda: _async(len(hub.verified) == 3), 10, "unsubscription verified")
    assert hub.requests[-1]["hub.mode"] == "unsubscribe" and hub.verified[-1] == (
        "unsubscribe",
        True,
    )
    assert await load_subscription(redis, KEYS, fid) is None
    callback = f"{deployed.callback_base}/websub/{fid}"
    async with aiohttp.ClientSession() as session, session.post(callback, data=b"<f/>") as gone:
        assert gone.status == 410


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/websub/0123456789abcdef", {"hub.mode": "subscribe", "hub.challenge": "x"}),
        ("/websub/not-a-feed-id", {"hub.mode": "subscribe", "hub.challenge": "x"}),
    ],
)
async def test_a_verification_we_did_not_ask_for_is_refused(
    deployed: Deployment, path: str, query: dict[str, str]
) -> None:
    url = deployed.callback_base + path
    async with aiohttp.ClientSession() as session, session.get(url, params=query) as response:
        assert response.status == 404


async def test_a_verification_for_another_topic_is_refused(
    deployed: Deployment, redis: Redis
) -> None:
    fid = await subscribed_feed(deployed, redis)
    query = {"hub.mode": "subscribe", "hub.topic": "http://evil.example/", "hub.challenge": "x"}
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{deployed.callback_base}/websub/{fid}", params=query) as response:
            assert response.status == 404
        big = b"x" * 1_000_001
        async with session.post(f"{deployed.callback_base}/websub/{fid}", data=big) as response:
            assert response.status == 413


async def _async(value: bool) -> bool:
    return value


async def test_feedpipe_run_subscribes_serves_the_callback_and_publishes_pushes(
    aiohttp_server: Any, tmp_path: Path
) -> None:
    """The whole thing as a user runs it: `feedpipe run` with FEEDPIPE_WEBSUB_BASE_URL polls
    the feed, subscribes at its hub (beat's websub-maintain), answers the hub's verification
    from its `feedpipe websub` process, and publishes what the hub pushes."""
    hub = LoopbackHub(lease_seconds=3600)
    hub_server = await aiohttp_server(hub.app(), host="127.0.0.1")
    hub.base = str(hub_server.make_url("")).rstrip("/")
    hub.entries = [("run-first", "Quokka census begins")]
    feeds_file = tmp_path / "feeds.yaml"
    feeds_file.write_text(f"feeds:\n  - url: {hub.topic}\n    fulltext: feed\n")
    port = free_port()
    env = run_env(
        tmp_path,
        FEEDPIPE_FETCH_PROCESSES="1",
        FEEDPIPE_WEBSUB_BASE_URL=f"http://127.0.0.1:{port}",
        FEEDPIPE_WEBSUB_PORT=str(port),
        FEEDPIPE_WEBSUB_MAINTAIN_SECONDS="1",
    )
    proc = await asyncio.create_subprocess_exec(
        *FEEDPIPE, "run", "--feeds", str(feeds_file), env=env, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        banner = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        client = Redis.from_url(banner.split("Redis ")[1].split(";")[0])
        await wait_for(lambda: _async(("subscribe", True) in hub.verified), 60, "subscription")
        hub.entries.append(("run-second", "Zanzibar ferry resumes"))
        assert await hub.publish() == 202
        titles = await wait_for_titles(client, hub.base, 2)
        assert sorted(titles) == ["Quokka census begins", "Zanzibar ferry resumes"]
        await client.aclose()
    finally:
        proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(proc.wait(), 90) == 0


async def test_a_removed_feed_is_not_subscribed_again_by_a_late_verification(
    deployed: Deployment, redis: Redis
) -> None:
    hub = deployed.hub
    fid = await subscribed_feed(deployed, redis)
    await registry.remove_feed(redis, KEYS, fid)
    query = {"hub.mode": "subscribe", "hub.topic": hub.topic, "hub.challenge": "late"}
    url = f"{deployed.callback_base}/websub/{fid}"
    async with aiohttp.ClientSession() as session, session.get(url, params=query) as response:
        assert response.status == 404
    assert await redis.exists(KEYS.feed(fid)) == 0  # no half feed left behind
