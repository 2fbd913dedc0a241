"""registry.save_poll against a real Redis: one script stores a poll's outcome, schedules the
feed and keeps the erroring index, or writes nothing at all for a feed removed meanwhile."""

from __future__ import annotations

import time

from redis.asyncio import Redis

from pipeline import registry
from pipeline.keys import SAVE_POLL
from pipeline.models import PollRecord
from tests.integration.conftest import KEYS


async def _stored_feed(redis: Redis, fid: str) -> float:
    """A feed hash the session workers leave alone: due an hour from now."""
    later = time.time() + 3600
    await redis.hset(KEYS.feed(fid), mapping={"id": fid, "url": f"https://{fid}.example/rss"})
    await redis.zadd(KEYS.feeds_due, {fid: later})
    return later


async def test_a_poll_record_is_stored_scheduled_and_indexed(redis: Redis) -> None:
    fid = "poll-record-stored"
    later = await _stored_feed(redis, fid)
    failed = PollRecord(
        last_poll=1.5, last_status="error", errors=3, last_error="ServerError: HTTP 503"
    )
    assert await registry.save_poll(redis, KEYS, fid, failed, later + 1)
    state = await registry.load_feed(redis, KEYS, fid)
    assert state is not None
    assert (state.errors, state.last_error, state.last_poll) == (3, "ServerError: HTTP 503", 1.5)
    assert state.next_poll == later + 1
    assert await redis.zscore(KEYS.feeds_due, fid) == later + 1
    assert await redis.zscore(KEYS.feeds_erroring, fid) == 3

    # A deferred poll only moves the schedule: the failure count and its index stay.
    assert await registry.save_poll(redis, KEYS, fid, PollRecord(), later + 2)
    state = await registry.load_feed(redis, KEYS, fid)
    assert state is not None and (state.errors, state.next_poll) == (3, later + 2)
    assert await redis.zscore(KEYS.feeds_erroring, fid) == 3

    # A success clears the count, the error (None writes an empty field) and the index.
    ok = PollRecord(last_poll=2.5, last_status="200", errors=0, last_error=None, etag='"v1"')
    assert await registry.save_poll(redis, KEYS, fid, ok, later + 3)
    state = await registry.load_feed(redis, KEYS, fid)
    assert state is not None
    assert (state.errors, state.last_error, state.etag, state.last_status) == (
        0,
        None,
        '"v1"',
        "200",
    )
    assert await redis.zscore(KEYS.feeds_erroring, fid) is None


async def test_a_poll_of_a_removed_feed_writes_nothing(redis: Redis) -> None:
    fid = "poll-record-removed"
    later = await _stored_feed(redis, fid)
    await registry.remove_feed(redis, KEYS, fid)
    failed = PollRecord(last_poll=1.5, last_status="error", errors=4, last_error="timeout")
    assert not await registry.save_poll(redis, KEYS, fid, failed, later)
    # Not a hash with only the poll's fields, nor a schedule or an erroring entry for it.
    assert await redis.exists(KEYS.feed(fid)) == 0
    assert await redis.zscore(KEYS.feeds_due, fid) is None
    assert await redis.zscore(KEYS.feeds_erroring, fid) is None


async def test_a_script_the_server_lost_is_loaded_again(redis: Redis) -> None:
    """As after a Redis restart: EVALSHA answers NOSCRIPT, the script is sent once more."""
    fid = "poll-record-flushed"
    later = await _stored_feed(redis, fid)
    await redis.script_flush()
    assert await registry.save_poll(redis, KEYS, fid, PollRecord(errors=1), later + 5)
    assert await redis.script_exists(SAVE_POLL.sha) == [True]
    assert await redis.zscore(KEYS.feeds_erroring, fid) == 1


async def test_a_lease_end_is_written_only_on_a_feed_that_still_exists(redis: Redis) -> None:
    fid = "poll-record-lease"
    await _stored_feed(redis, fid)
    await registry.set_push_until(redis, KEYS, fid, 1234.5)
    state = await registry.load_feed(redis, KEYS, fid)
    assert state is not None and state.push_until == 1234.5
    await registry.set_push_until(redis, KEYS, fid, None)
    state = await registry.load_feed(redis, KEYS, fid)
    assert state is not None and state.push_until is None
    await registry.remove_feed(redis, KEYS, fid)
    await registry.set_push_until(redis, KEYS, fid, 99.0)  # a hub's late verification
    assert await redis.exists(KEYS.feed(fid)) == 0
