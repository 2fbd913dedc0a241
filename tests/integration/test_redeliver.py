"""Extract jobs the broker lost are sent again, once; jobs waiting in a backlog are not.

A real run against its own redis-server: fetch worker and beat only at first, so the extract
jobs of one feed wait in kombu's ``extract`` list; one message is taken out of the list the way
a worker killed right after its ``BRPOP`` takes it (kombu#305), then the extract worker starts.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as sync_redis
from aiohttp import web
from redis.asyncio import Redis

from pipeline.keys import STAT_REDELIVERED
from pipeline.models import Entry, ExtractJob, FeedRef
from pipeline.normalize import feed_id
from pipeline.redeliver import RedeliverContext, RedeliverPolicy, redeliver_lost, track
from pipeline.settings import Settings
from tests.integration.conftest import KEYS, Workers
from tests.integration.servers import ServerThread
from tests.integration.test_crash_safety import farm_app
from tests.integration.test_fetching import Jobs, feed_of, poll, settings, setup_feed, start
from workers.broker import KombuRedisView
from workers.celery_config import EXTRACT_TASK_ID_PREFIX, QUEUE_EXTRACT, TASK_EXTRACT, create_app
from workers.embedded_redis import EmbeddedRedis

pytestmark = pytest.mark.slow

ENTRIES = 8
AFTER = 10  # FEEDPIPE_REDELIVER_AFTER_SECONDS: the sweep runs every 2 s
ENV = {"FEEDPIPE_REDELIVER_AFTER_SECONDS": str(AFTER)}


def wait(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    redis = EmbeddedRedis(tmp_path / "redis", persistent=False)
    redis.start()
    yield redis
    redis.stop()


def test_a_lost_extract_job_is_sent_again_once_and_a_waiting_backlog_is_not(
    server: EmbeddedRedis, tmp_path: Path
) -> None:
    farm = ServerThread(farm_app(ENTRIES))
    client = sync_redis.Redis.from_url(server.url)
    url = farm.url("/feed/0")
    fid = feed_id(url)
    client.hset(KEYS.feed(fid), mapping={"id": fid, "url": url, "tags": "[]", "interval": ""})
    client.zadd(KEYS.feeds_due, {fid: time.time()})
    producers = Workers(server.url, tmp_path, ENV, node="redeliver", roles=("fetch", "beat"))
    consumers: Workers | None = None
    try:
        wait(lambda: client.llen(QUEUE_EXTRACT) == ENTRIES, 60, "the feed's jobs to be queued")
        assert client.zcard(KEYS.extract_pending) == ENTRIES
        assert client.hlen(KEYS.extract_jobs) == ENTRIES
        lost = json.loads(client.rpop(QUEUE_EXTRACT) or b"{}")["headers"]["id"]  # as BRPOP
        assert lost.startswith(EXTRACT_TASK_ID_PREFIX)

        wait(lambda: client.llen(QUEUE_EXTRACT) == ENTRIES, 3 * AFTER, "the lost job again")
        queued = [json.loads(m)["headers"]["id"] for m in client.lrange(QUEUE_EXTRACT, 0, -1)]
        assert sorted(set(queued)) == sorted(queued) and lost in queued
        # The other jobs have waited in the queue longer than AFTER: still there, never re-sent.
        time.sleep(AFTER / 2)
        assert client.llen(QUEUE_EXTRACT) == ENTRIES
        assert int(client.hget(KEYS.stats, STAT_REDELIVERED) or 0) == 1

        consumers = Workers(server.url, tmp_path, ENV, node="redeliver", roles=("extract",))
        wait(lambda: client.xlen(KEYS.output_stream) >= ENTRIES, 60, "every story published")
        time.sleep(3)  # a second copy of anything would arrive late: give it the chance
        items = [json.loads(f[b"item"]) for _id, f in client.xrange(KEYS.output_stream)]
        urls = [item["url"] for item in items]
        assert sorted(urls) == sorted(farm.url(f"/page/0/{j}") for j in range(ENTRIES))
        assert client.zcard(KEYS.extract_pending) == client.hlen(KEYS.extract_jobs) == 0
        assert int(client.hget(KEYS.stats, STAT_REDELIVERED) or 0) == 1
        assert producers.alive() and consumers.alive()
    finally:
        for running in (producers, consumers):
            if running is not None:
                running.stop()
        client.close()
        farm.stop()


class LedgerCheckingQueue(Jobs):
    """Keeps the jobs, and looks, as each is sent, whether the ledger already holds it."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self.client = sync_redis.Redis.from_url(url)
        self.in_ledger: list[bool] = []

    def send(self, job: ExtractJob) -> None:
        super().send(job)
        self.in_ledger.append(self.client.zscore(KEYS.extract_pending, job.item_id) is not None)


async def test_jobs_are_in_the_ledger_before_they_are_sent(
    aiohttp_server: Any, redis: Redis, redis_server: Any
) -> None:
    """A job an idle worker finishes within a millisecond must find itself in the ledger, or
    the ledger would keep it and send it again as lost."""

    async def feed(_request: web.Request) -> web.Response:
        return web.Response(text=feed_of("one", "two", "three"), content_type="application/rss+xml")

    server = await start(aiohttp_server, {"/feed": feed})
    _url, fid = await setup_feed(redis, server, "/feed")
    queue = LedgerCheckingQueue(redis_server.url)
    await poll(redis, settings(), [fid], queue)
    assert queue.in_ledger == [True, True, True]
    assert await redis.hlen(KEYS.extract_jobs) == 3


async def test_the_broker_view_reads_the_messages_next_in_line_and_the_unacked(
    server: EmbeddedRedis,
) -> None:
    """Real kombu messages (sent through Celery, no worker): the view sees the oldest first."""
    app = create_app(Settings(redis_url=server.url))
    for n in range(5):
        app.send_task(TASK_EXTRACT, args=[{}], task_id=f"{EXTRACT_TASK_ID_PREFIX}item{n}")
    client = Redis.from_url(server.url)
    try:
        view = KombuRedisView(client)
        assert await view.held_item_ids(2) == {"item0", "item1"}
        assert await view.held_item_ids(100) == {f"item{n}" for n in range(5)}
        # Delivered to a worker and not acked: kombu moves it to its "unacked" hash.
        raw = await client.rpop(QUEUE_EXTRACT)
        assert raw is not None
        await client.hset("unacked", "tag-1", json.dumps([json.loads(raw), "", QUEUE_EXTRACT]))
        assert await view.held_item_ids(1) == {"item0", "item1"}
    finally:
        await client.aclose()
        app.close()


async def test_the_sweep_sends_lost_jobs_and_drops_unreadable_ones(server: EmbeddedRedis) -> None:
    """redeliver_lost against a real Redis and the kombu view of an empty broker: an old job
    is sent again (and not again at once), a job it cannot read is dropped with an error."""
    client = Redis.from_url(server.url)
    feed = FeedRef(id="f", url="https://agency.example/rss", title=None)
    job = ExtractJob(
        item_id="lost", feed=feed, entry=Entry(identity="guid:1", title="t"), fetched_at="now"
    )
    queue = Jobs()
    policy = RedeliverPolicy(after_seconds=60, recheck_seconds=0)
    ctx = RedeliverContext(client, KEYS, KombuRedisView(client), queue, policy)
    try:
        async with client.pipeline(transaction=True) as pipe:
            track(pipe, KEYS, [job], time.time() - 120)
            await pipe.execute()
        await client.zadd(KEYS.extract_pending, {"garbled": time.time() - 120})
        await client.hset(KEYS.extract_jobs, "garbled", b'{"item_id": 3}')
        assert await redeliver_lost(ctx) == 1
        assert queue.sent == [job]
        assert await client.hkeys(KEYS.extract_jobs) == [b"lost"]  # the unreadable one dropped
        assert await redeliver_lost(ctx) == 0  # sent again just now: a sign of life
    finally:
        await client.aclose()
