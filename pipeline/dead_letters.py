"""The dead-letter stream, read and acted on: what ``feedpipe dead-letters`` lists, and a
letter's article given another chance.

A retry does not re-send the job: its page was deleted with the letter, and fetching belongs to
the poll (politeness, conditional GET, the claim). It makes the poll take the entry again: the
entry's seen mark is deleted, the feed's validators and body hash are dropped (so the next poll
reads the body instead of a 304), the feed is made due now, and the letter leaves the stream, in
one transaction. The entry comes back if its feed still lists it; as a new delivery it starts
again at attempt 1.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

import msgspec
from redis.asyncio import Redis

from pipeline.keys import Keys, reply_text
from pipeline.models import DeadLetter
from pipeline.normalize import feed_id

# The fields of the feed hash that let a poll skip parsing an unchanged feed (registry's
# encoding of FeedState).
FEED_VALIDATORS = ("etag", "last_modified", "body_hash")

_DECODER = msgspec.json.Decoder(DeadLetter)
_STREAM_ID = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")


def is_stream_id(text: str) -> bool:
    """Whether ``text`` is a full stream entry ID (``<ms>-<seq>``), as ``ls`` shows them."""
    return _STREAM_ID.fullmatch(text) is not None


class StoredLetter(msgspec.Struct, frozen=True):
    """One entry of the dead-letter stream: its letter, or why it could not be read (an entry
    written by hand or by another program is listed, never a reason to stop)."""

    stream_id: str
    letter: DeadLetter | None
    problem: str | None = None


RetryStatus = Literal["retried", "not_found", "not_retryable"]


class RetryResult(msgspec.Struct, frozen=True):
    stream_id: str
    status: RetryStatus
    detail: str
    letter: DeadLetter | None = None


def decode_letter(stream_id: str, fields: Mapping[Any, Any] | None) -> StoredLetter:
    """The letter of a stream entry's fields (``dead``: JSON), whatever they hold."""
    raw = next((value for key, value in (fields or {}).items() if key in (b"dead", "dead")), None)
    if raw is None:
        return StoredLetter(stream_id, None, "no `dead` field")
    try:
        return StoredLetter(stream_id, _DECODER.decode(raw))
    except (msgspec.DecodeError, TypeError) as exc:  # TypeError: a field that is not bytes/str
        return StoredLetter(stream_id, None, f"not a dead letter: {exc}")


class LetterFilter(msgspec.Struct, frozen=True):
    """Which letters a command acts on: those of one feed (``feed``: its ID, or its URL as
    registered) whose reason contains ``reason`` (case aside). An unreadable entry matches only
    the empty filter."""

    feed: str | None = None
    reason: str | None = None

    def matches(self, stored: StoredLetter) -> bool:
        if self.feed is None and self.reason is None:
            return True
        letter = stored.letter
        if letter is None:
            return False
        if self.feed is not None and not _of_feed(letter, self.feed):
            return False
        return self.reason is None or self.reason.casefold() in letter.reason.casefold()


def _of_feed(letter: DeadLetter, feed: str) -> bool:
    """Whether ``feed`` (an ID, or a URL as the user gave it) is the letter's feed."""
    return feed in (letter.feed_id, letter.feed_url) or feed_id(feed) == letter.feed_id


EVERY_LETTER = LetterFilter()
_PAGE = 500  # stream entries read per round trip while filtering


async def read_letters(
    redis: Redis, keys: Keys, limit: int, where: LetterFilter = EVERY_LETTER
) -> list[StoredLetter]:
    """The newest ``limit`` letters ``where`` matches, newest first (the stream is read
    backwards a page at a time until there are enough)."""
    found: list[StoredLetter] = []
    newest = "+"
    while len(found) < limit:
        count = limit - len(found) if where == EVERY_LETTER else _PAGE
        entries = await redis.xrevrange(keys.dead_letter_stream, max=newest, count=count) or []
        for stream_id, fields in entries:
            stored = decode_letter(reply_text(stream_id), fields)
            if where.matches(stored) and len(found) < limit:
                found.append(stored)
        if len(entries) < count:
            break
        newest = "(" + reply_text(entries[-1][0])
    return found


async def retry_letter(redis: Redis, keys: Keys, stream_id: str, now: float) -> RetryResult:
    """Have the poll take the letter's entry again (module docstring); the letter is removed."""
    found = await redis.xrange(keys.dead_letter_stream, stream_id, stream_id, count=1) or []
    if not found:
        return RetryResult(stream_id, "not_found", "no such dead letter")
    stored = decode_letter(stream_id, found[0][1])
    target = _retry_target(stored)
    if isinstance(target, str):
        return RetryResult(stream_id, "not_retryable", target, stored.letter)
    feed_id, identity = target
    if not await redis.exists(keys.feed(feed_id)):
        return RetryResult(
            stream_id, "not_retryable", "its feed is no longer registered", stored.letter
        )
    async with redis.pipeline(transaction=True) as pipe:
        pipe.delete(keys.entry_seen_of(feed_id, identity))
        pipe.hdel(keys.feed(feed_id), *FEED_VALIDATORS)
        pipe.zadd(keys.feeds_due, {feed_id: now}, xx=True)
        pipe.xdel(keys.dead_letter_stream, stream_id)
        await pipe.execute()
    return RetryResult(
        stream_id,
        "retried",
        "its feed is polled now; back if the feed still lists it",
        stored.letter,
    )


def _retry_target(stored: StoredLetter) -> tuple[str, str] | str:
    """(feed id, entry identity) of a letter a poll can take again, else why not."""
    letter = stored.letter
    if letter is None:
        return stored.problem or "unreadable"
    if letter.message is not None:
        return "a malformed extract message: no poll can take it again; read its `message`"
    if letter.feed_id is None or letter.identity is None:
        return "written by a feedpipe before retries: add the article again by hand"
    return letter.feed_id, letter.identity
