"""Exact-dedupe marks on real Redis, through the real publish script: entries share hash
buckets, are remembered for the TTL and pruned after it."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime, timedelta

import msgspec
from redis.asyncio import Redis

from pipeline.dedupe import DedupePolicy
from pipeline.keys import CLAIM_ENTRY
from pipeline.models import Discarded, Item, Published
from pipeline.publish import PublishPolicy, publish_item
from tests.integration.conftest import KEYS
from tests.integration.test_dedupe import distinct_story, item

DAY = timedelta(days=1)
START = datetime(2026, 3, 1, 12, tzinfo=UTC)
START_DAY = int(START.timestamp() // 86_400)
# Eight days remembered: a bucket written to is pruned when its last pruning was two days (a
# quarter of that) ago or more.
POLICY = PublishPolicy(
    maxlen=1000, dedupe_ttl_seconds=8 * 86_400, min_text_chars=250, near=DedupePolicy()
)
BUCKET = "beef"


def in_bucket(key: str) -> Item:
    """A story of its own whose id falls in BUCKET (an id's first hex digits choose it)."""
    story = item(key, "\n\n".join(distinct_story(zlib.crc32(key.encode()))))
    return msgspec.structs.replace(story, id=BUCKET + story.id[len(BUCKET) :])


async def publish(redis: Redis, story: Item, day: int) -> object:
    return await publish_item(redis, KEYS, "f", story, POLICY, now=START + day * DAY)


async def test_entries_share_a_bucket_and_carry_their_day(redis: Redis) -> None:
    first, second = in_bucket("first"), in_bucket("second")
    assert isinstance(await publish(redis, first, 0), Published)
    assert isinstance(await publish(redis, second, 0), Published)
    copy = msgspec.structs.replace(first, id=BUCKET + "0" * 20, url="https://other.example/1")
    outcome = await publish(redis, copy, 0)  # same text under another URL
    assert isinstance(outcome, Discarded) and outcome.duplicate_of == first.id

    bucket, field = KEYS.item_mark(first.id)
    assert bucket == KEYS.item_mark(second.id)[0] and field == first.id[len(BUCKET) :]
    entries = await redis.hgetall(bucket)
    assert entries[field.encode()] == str(START_DAY).encode()
    assert entries[copy.id[len(BUCKET) :].encode()] == f"{START_DAY}:{first.id}".encode()
    assert entries[b"~"] == str(START_DAY).encode()  # pruned (empty) on the first write
    assert await redis.object("encoding", bucket) == b"listpack"
    text_bucket, text_field = KEYS.content_mark(first.content_hash)
    assert await redis.hget(text_bucket, text_field) == f"{START_DAY}:{first.id}".encode()
    assert 0 < await redis.ttl(bucket) <= (8 + 2) * 86_400


async def test_an_entry_is_remembered_for_the_ttl_and_pruned_after_it(redis: Redis) -> None:
    old, later, last = in_bucket("old"), in_bucket("later"), in_bucket("last")
    assert isinstance(await publish(redis, old, 0), Published)
    # Day 8: a write prunes the bucket, and the day-0 entry is still inside the eight days.
    assert isinstance(await publish(redis, later, 8), Published)
    outcome = await publish(redis, old, 9)  # forgotten only at the next pruning
    assert isinstance(outcome, Discarded) and outcome.reason == "duplicate_url"
    # Day 10: pruned again (two days on); the day-0 entry goes, the day-8 one stays.
    assert isinstance(await publish(redis, last, 10), Published)
    bucket = KEYS.item_mark(old.id)[0]
    fields = set(await redis.hkeys(bucket))
    assert fields == {b"~", later.id[4:].encode(), last.id[4:].encode()}
    assert await redis.hget(bucket, "~") == str(START_DAY + 10).encode()
    again = await publish(redis, old, 10)
    assert isinstance(again, Published)  # remembered 8 days, not forever


async def test_a_large_bucket_is_pruned_whole(redis: Redis) -> None:
    """A bucket over the listpack limit (a deployment far above the planned volume) holds
    thousands of entries; pruning deletes them in batches (a Lua call takes ~8,000 arguments)."""
    bucket = KEYS.item_mark(BUCKET + "0" * 20)[0]
    old = {f"{n:020x}": str(START_DAY) for n in range(2500)}
    await redis.hset(bucket, mapping={**old, "~": str(START_DAY)})
    assert isinstance(await publish(redis, in_bucket("new"), 9), Published)
    assert await redis.hlen(bucket) == 2  # the marker and the new item


async def test_marks_written_before_the_buckets_are_still_read(redis: Redis) -> None:
    """An upgraded deployment keeps its old one-key-per-entry marks until they expire: an item
    published, or discarded as a copy, before the upgrade is not published again."""
    published, copied, text = in_bucket("published"), in_bucket("copied"), in_bucket("text")
    await redis.set(KEYS.legacy_item(published.id), "1764000000000-0", ex=3600)
    await redis.set(KEYS.legacy_item(copied.id), f"dup:{published.id}", ex=3600)
    await redis.set(KEYS.legacy_content(text.content_hash), published.id, ex=3600)

    outcome = await publish(redis, published, 0)
    assert isinstance(outcome, Discarded) and outcome.reason == "duplicate_url"
    assert outcome.duplicate_of == published.id
    outcome = await publish(redis, copied, 0)
    assert isinstance(outcome, Discarded) and outcome.duplicate_of == published.id
    outcome = await publish(redis, text, 0)
    assert isinstance(outcome, Discarded) and outcome.reason == "duplicate_content"
    assert outcome.duplicate_of == published.id


async def test_the_poll_claim_skips_urls_with_either_kind_of_mark(redis: Redis) -> None:
    """CLAIM_ENTRY returns 2 (published from another feed) for either kind of mark, 1 (new)
    otherwise."""
    published, legacy, new = in_bucket("a"), in_bucket("b"), in_bucket("c")
    assert isinstance(await publish(redis, published, 0), Published)
    await redis.set(KEYS.legacy_item(legacy.id), "1764000000000-0", ex=3600)
    for story, expected in ((published, 2), (legacy, 2), (new, 1)):
        bucket, field = KEYS.item_mark(story.id)
        seen = KEYS.entry_seen("feed", story.id)
        keys = (seen, bucket, KEYS.legacy_item(story.id))
        assert await CLAIM_ENTRY(redis, keys, [60, 3600, field]) == expected, story.id
