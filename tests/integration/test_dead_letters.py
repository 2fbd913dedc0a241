"""`feedpipe dead-letters ls` and `retry` as a user runs them: subprocesses, a real Redis,
letters written by the extract stage's own functions (tests/integration/test_poison.py takes a
real poison article through the workers, the dead-letter stream and back)."""

from __future__ import annotations

import json
import time
from typing import Any

import msgspec
import pytest
import redis as sync_redis
from redis.asyncio import Redis

from pipeline import registry
from pipeline.dead_letters import FEED_VALIDATORS, LetterFilter, read_letters
from pipeline.errors import MalformedJob
from pipeline.extract_stage import dead_letter, set_aside
from pipeline.models import DeadLetter, Entry, ExtractJob, FeedRef, FeedSpec
from pipeline.monitor import take_snapshot
from pipeline.normalize import feed_id
from pipeline.settings import Settings
from tests.integration.conftest import KEYS
from tests.integration.test_cli import cli_env, feedpipe
from workers.exporter import metrics_of
from workers.runtime import extract_context

SECRET = "s3cret-9f2"
FEED_URL = f"https://reader:{SECRET}@agency.example/rss?token={SECRET}"


def job(feed: FeedRef, slug: str) -> ExtractJob:
    entry = Entry(
        identity=f"guid:{slug}",
        title=f"{slug} story",
        url=f"https://agency.example/a/{slug}?sig={SECRET}",
    )
    return ExtractJob(item_id=f"{slug:0>24}", feed=feed, entry=entry, fetched_at="-")


async def write_letters(url: str) -> dict[str, str]:
    """Two articles given up, a message set aside, an entry nobody could read: their IDs."""
    client = Redis.from_url(url)
    ctx = extract_context(Settings(redis_url=url), KEYS, client)
    try:
        await registry.add_feeds(client, KEYS, [FeedSpec(url=FEED_URL)], time.time() + 3600)
        feed = FeedRef(id=feed_id(FEED_URL), url=FEED_URL, title=None)
        await client.hset(KEYS.feed(feed.id), mapping=dict.fromkeys(FEED_VALIDATORS, "x"))
        for slug in ("crash", "hang"):
            await client.set(KEYS.entry_seen_of(feed.id, f"guid:{slug}"), "done")
            await dead_letter(ctx, job(feed, slug), 3)
        await set_aside(ctx, {"item_id": 7}, MalformedJob("item_id: not a string"))
        await client.xadd(KEYS.dead_letter_stream, {"other": "by hand"})
        ids = [entry_id.decode() for entry_id, _ in await client.xrange(KEYS.dead_letter_stream)]
    finally:
        await client.aclose()
    return dict(zip(("crash", "hang", "malformed", "unreadable"), ids, strict=True))


@pytest.fixture
def letters_db(redis_server: Any) -> str:
    # A database no worker consumes: the session's workers would poll the feed.
    url = str(redis_server.url).rsplit("/", 1)[0] + "/10"
    sync_redis.Redis.from_url(url).flushdb()
    return url


async def test_dead_letters_are_listed_redacted_and_retried(letters_db: str) -> None:
    ids = await write_letters(letters_db)
    env = cli_env(letters_db)
    client = sync_redis.Redis.from_url(letters_db)
    fid = feed_id(FEED_URL)

    listed = feedpipe("dead-letters", "ls", env=env).stdout
    as_json = [
        json.loads(line)
        for line in feedpipe("dead-letters", "ls", "--json", env=env).stdout.splitlines()
    ]
    retried = feedpipe("dead-letters", "retry", ids["crash"], ids["malformed"], env=env).stdout
    due = client.zscore(KEYS.feeds_due, fid)

    assert SECRET not in listed + json.dumps(as_json)
    assert listed.index(ids["unreadable"]) < listed.index(ids["crash"])  # newest first
    assert "3 attempts" in listed and "crash story" in listed
    assert "https://***@agency.example/rss?token=***" in listed
    assert "malformed extract message: item_id: not a string" in listed
    assert f"{ids['unreadable']}" in listed and "unreadable: no `dead` field" in listed
    assert [row["id"] for row in as_json] == [
        ids[k] for k in ("unreadable", "malformed", "hang", "crash")
    ]
    assert as_json[3]["feed_id"] == fid and as_json[3]["identity"] == "guid:crash"

    assert f"{ids['crash']}  retried" in retried
    assert f"{ids['malformed']}  not_retryable: a malformed extract message" in retried
    assert client.exists(KEYS.entry_seen_of(fid, "guid:crash")) == 0
    assert client.exists(KEYS.entry_seen_of(fid, "guid:hang")) == 1  # only what was asked
    assert client.hmget(KEYS.feed(fid), list(FEED_VALIDATORS)) == [None, None, None]
    assert due is not None and abs(due - time.time()) < 30  # due now, not in an hour
    remaining = [entry_id.decode() for entry_id, _ in client.xrange(KEYS.dead_letter_stream)]
    assert remaining == [ids["hang"], ids["malformed"], ids["unreadable"]]


async def test_retry_says_what_it_cannot_do(letters_db: str) -> None:
    ids = await write_letters(letters_db)
    env = cli_env(letters_db)

    missing = feedpipe("dead-letters", "retry", "1-0", env=env, check=False)
    not_an_id = feedpipe("dead-letters", "retry", "1-0;FLUSHALL", env=env, check=False)
    neither = feedpipe("dead-letters", "retry", env=env, check=False)
    no_limit = feedpipe("dead-letters", "ls", "--limit", "0", env=env, check=False)
    client = Redis.from_url(letters_db)
    try:
        await registry.remove_feed(client, KEYS, FEED_URL)
    finally:
        await client.aclose()
    every = feedpipe("dead-letters", "retry", "--all", env=env).stdout

    assert missing.returncode == 1 and "1-0  not_found: no such dead letter" in missing.stdout
    assert not_an_id.returncode == 2
    assert "'1-0;FLUSHALL' is not a dead letter's ID" in not_an_id.stderr
    assert neither.returncode == 2 and "give the letters' IDs, or --all" in neither.stderr
    assert no_limit.returncode == 2 and "--limit" in no_limit.stderr
    assert f"{ids['crash']}  not_retryable: its feed is no longer registered" in every
    assert f"{ids['unreadable']}  not_retryable: no `dead` field" in every
    assert SECRET not in every
    assert sync_redis.Redis.from_url(letters_db).xlen(KEYS.dead_letter_stream) == 4  # all kept


async def test_letters_are_chosen_by_feed_and_reason(letters_db: str) -> None:
    ids = await write_letters(letters_db)
    env = cli_env(letters_db)
    fid = feed_id(FEED_URL)

    def listed(*options: str) -> list[str]:
        out = feedpipe("dead-letters", "ls", "--json", *options, env=env).stdout
        return [json.loads(line)["id"] for line in out.splitlines()]

    by_id, by_url = listed("--feed", fid), listed("--feed", FEED_URL, "--limit", "1")
    by_reason, other_feed = listed("--reason", "MALFORMED"), listed("--feed", "https://b.example/")
    mixed = feedpipe("dead-letters", "retry", ids["crash"], "--feed", fid, env=env, check=False)
    retried = feedpipe("dead-letters", "retry", "--all", "--feed", FEED_URL, env=env).stdout

    assert by_id == [ids["hang"], ids["crash"]] and by_url == [ids["hang"]]
    assert by_reason == [ids["malformed"]] and other_feed == []
    assert mixed.returncode == 2 and "--feed and --reason choose letters for --all" in mixed.stderr
    assert f"{ids['crash']}  retried" in retried and f"{ids['hang']}  retried" in retried
    assert ids["malformed"] not in retried and SECRET not in retried
    remaining = sync_redis.Redis.from_url(letters_db).xrange(KEYS.dead_letter_stream)
    assert [entry_id.decode() for entry_id, _ in remaining] == [ids["malformed"], ids["unreadable"]]


async def test_a_filter_reads_past_the_newest_page(letters_db: str) -> None:
    # The matching letters are the oldest, behind more than a page (500) of others.
    redis = Redis.from_url(letters_db)
    letter = DeadLetter(item_id="x", attempts=3, reason="page hung", feed_id="f-old")
    for _ in range(3):
        await redis.xadd(KEYS.dead_letter_stream, {"dead": msgspec.json.encode(letter)})
    others = msgspec.json.encode(msgspec.structs.replace(letter, feed_id="f-new"))
    async with redis.pipeline(transaction=False) as pipe:
        for _ in range(1200):
            pipe.xadd(KEYS.dead_letter_stream, {"dead": others})
        await pipe.execute()
    try:
        old = await read_letters(redis, KEYS, 2, LetterFilter(feed="f-old"))
        every_old = await read_letters(redis, KEYS, 2**31, LetterFilter(feed="f-old"))
        newest = await read_letters(redis, KEYS, 5)
    finally:
        await redis.aclose()

    assert len(old) == 2 and len(every_old) == 3 and len(newest) == 5
    assert all(stored.letter and stored.letter.feed_id == "f-old" for stored in every_old)
    assert old == every_old[:2]


async def test_dead_letters_are_counted_for_alerts_and_status(letters_db: str) -> None:
    await write_letters(letters_db)
    client = Redis.from_url(letters_db)
    try:
        snapshot = await take_snapshot(client, KEYS, queues=(), failing_after=3)
    finally:
        await client.aclose()
    samples = {
        (sample.name, tuple(sample.labels.values())): sample.value
        for family in metrics_of(snapshot)
        for sample in family.samples
    }
    # Two articles given up and one message set aside; the entry written by hand is not one.
    assert samples[("feedpipe_articles_dead_lettered_total", ())] == 3
    assert samples[("feedpipe_stream_length", (KEYS.dead_letter_stream,))] == 4
