"""Poll feeds: fetch, parse, claim new entries, fetch their pages, hand them to extraction."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, Protocol

import aiohttp
import msgspec
from redis.asyncio import Redis
from redis.exceptions import RedisError

from pipeline import registry
from pipeline.errors import FeedError, UnexpectedError
from pipeline.extract import compress_html, is_html
from pipeline.fetch import FetchLimits, fetch_feed, fetch_page
from pipeline.keys import (
    CLAIM_ENTRY,
    STAT_NEW_ENTRIES,
    STAT_NOT_MODIFIED,
    STAT_POLL_ERRORS,
    STAT_POLLS,
    Keys,
)
from pipeline.logs import elapsed_ms
from pipeline.models import Entry, ExtractJob, FeedState, FetchResult, ParsedFeed, PollOutcome
from pipeline.normalize import item_id, short_hash
from pipeline.parse import parse_feed
from pipeline.schedule import SchedulePolicy
from pipeline.settings import Settings

log = logging.getLogger(__name__)

CLAIM_NEW, CLAIM_TAKEN, CLAIM_PUBLISHED = 1, 0, 2


class ExtractQueue(Protocol):
    """Where new entries go (the Celery glue sends an ``extract_article`` task)."""

    def send(self, job: ExtractJob) -> None: ...


@dataclass(frozen=True)
class PollContext:
    settings: Settings
    keys: Keys
    redis: Redis
    http: aiohttp.ClientSession
    queue: ExtractQueue
    schedule: SchedulePolicy
    feed_limits: FetchLimits
    page_limits: FetchLimits
    rng: random.Random = field(default_factory=random.Random)

    @classmethod
    def create(
        cls,
        settings: Settings,
        keys: Keys,
        redis: Redis,
        http: aiohttp.ClientSession,
        queue: ExtractQueue,
    ) -> PollContext:
        return cls(
            settings=settings,
            keys=keys,
            redis=redis,
            http=http,
            queue=queue,
            schedule=SchedulePolicy.from_settings(settings),
            feed_limits=FetchLimits.for_feeds(settings),
            page_limits=FetchLimits.for_pages(settings),
        )


async def poll_feeds(ctx: PollContext, feed_ids: Iterable[str]) -> list[PollOutcome]:
    """Poll a batch concurrently; one feed's failure is recorded on it and never stops the rest."""
    limit = asyncio.Semaphore(ctx.settings.feed_concurrency)

    async def one(fid: str) -> PollOutcome:
        async with limit:
            return await poll_feed(ctx, fid)

    return list(await asyncio.gather(*(one(fid) for fid in feed_ids)))


async def poll_feed(ctx: PollContext, fid: str) -> PollOutcome:
    start = time.monotonic()
    state = await registry.load_feed(ctx.redis, ctx.keys, fid)
    if state is None:  # removed after it was dispatched
        return PollOutcome(feed_id=fid, feed_url="", status="gone")
    now = time.time()
    try:
        result = await fetch_feed(ctx.http, state, ctx.feed_limits)
        parsed = (
            None
            if result.not_modified
            else parse_feed(result, state.url, ctx.settings.max_entries_per_poll)
        )
        new_entries = await take_new_entries(ctx, state, parsed) if parsed else 0
    except FeedError as err:
        return await _record_failure(ctx, state, err, now, start)
    except RedisError:
        raise  # Redis itself is gone: the whole batch is retried when its lease runs out
    # One feed's surprise (a parser crash, a bug) is recorded on that feed, with its traceback
    # in the log, and never stops the other feeds of the batch.
    except Exception as exc:
        log.exception("poll crashed", extra={"stage": "poll", "feed_url": state.url})
        unexpected = UnexpectedError(state.url, f"{type(exc).__name__}: {exc}")
        return await _record_failure(ctx, state, unexpected, now, start)
    return await _record_success(ctx, state, result, parsed, new_entries, now, start)


async def take_new_entries(ctx: PollContext, state: FeedState, parsed: ParsedFeed) -> int:
    """Claim the entries not seen before, fetch their pages and queue them for extraction."""
    # Oldest first, so the output stream follows publication order within a feed.
    new = await _claim_entries(ctx, state, reversed(parsed.entries))
    if not new:
        return 0
    limit = asyncio.Semaphore(ctx.settings.article_concurrency)
    fetched_at = datetime.now(UTC).isoformat().replace("+00:00", "Z")

    async def prepare(entry: Entry, iid: str) -> ExtractJob:
        async with limit:
            return await _prepare_job(ctx, state, entry, iid, fetched_at)

    jobs = await asyncio.gather(*(prepare(entry, iid) for entry, iid in new))
    for job in jobs:
        ctx.queue.send(job)
    await _confirm_entries(ctx, state, [entry for entry, _ in new])
    return len(jobs)


async def _claim_entries(
    ctx: PollContext, state: FeedState, entries: Iterable[Entry]
) -> list[tuple[Entry, str]]:
    pending = [(e, item_id(e.canonical_url, f"{state.id}:{e.identity}")) for e in entries]
    async with ctx.redis.pipeline(transaction=False) as pipe:
        for entry, iid in pending:
            pipe.eval(
                CLAIM_ENTRY,
                2,
                _seen_key(ctx, state, entry),
                ctx.keys.item(iid),
                ctx.settings.claim_ttl_seconds,
                _seen_ttl(ctx),
            )
        claims = await pipe.execute()
    return [pair for pair, claim in zip(pending, claims, strict=True) if claim == CLAIM_NEW]


async def _confirm_entries(ctx: PollContext, state: FeedState, entries: list[Entry]) -> None:
    """Turn the short claims into long-lived "seen" marks, now that the jobs are queued."""
    async with ctx.redis.pipeline(transaction=False) as pipe:
        for entry in entries:
            pipe.set(_seen_key(ctx, state, entry), "done", ex=_seen_ttl(ctx))
        pipe.hincrby(ctx.keys.stats, STAT_NEW_ENTRIES, len(entries))
        await pipe.execute()


async def _prepare_job(
    ctx: PollContext, state: FeedState, entry: Entry, iid: str, fetched_at: str
) -> ExtractJob:
    job = ExtractJob(item_id=iid, feed=state.ref, entry=entry, fetched_at=fetched_at)
    if not entry.url:
        return job
    try:
        page = await fetch_page(ctx.http, entry.url, feed_url=state.url, limits=ctx.page_limits)
    except FeedError as err:
        log.info("article page failed", extra=_fields(state, entry, "fetch", str(err)))
        return msgspec.structs.replace(job, page_url=entry.url, page_error=str(err))
    if not is_html(page.content_type):
        reason = f"not an HTML page ({page.content_type})"
        log.info("article page skipped", extra=_fields(state, entry, "fetch", reason))
        return msgspec.structs.replace(job, page_url=page.final_url, page_error=reason)
    key = ctx.keys.html(iid)
    await ctx.redis.set(key, compress_html(page.body), ex=ctx.settings.html_ttl_seconds)
    return msgspec.structs.replace(job, html_key=key, page_url=page.final_url, charset=page.charset)


async def _record_success(
    ctx: PollContext,
    state: FeedState,
    result: FetchResult,
    parsed: ParsedFeed | None,
    new_entries: int,
    now: float,
    start: float,
) -> PollOutcome:
    fields = {"last_poll": repr(now), "last_status": str(result.status), "errors": "0"}
    if not result.not_modified:
        fields |= {"etag": result.etag or "", "last_modified": result.last_modified or ""}
    if parsed and parsed.problem:
        fields["last_error"] = f"malformed feed (entries kept): {parsed.problem}"
    if parsed and parsed.title and not state.title:
        fields["title"] = parsed.title
    next_poll = ctx.schedule.next_poll_after_success(state, now, ctx.rng)
    await registry.save_poll(ctx.redis, ctx.keys, state.id, fields, next_poll)
    await _count(ctx, STAT_NOT_MODIFIED if result.not_modified else None)
    status: Literal["ok", "not_modified"] = "not_modified" if result.not_modified else "ok"
    duration = elapsed_ms(start)
    log.info(
        "polled",
        extra={
            "stage": "poll",
            "feed_url": state.url,
            "status": result.status,
            "items": new_entries,
            "duration_ms": duration,
        },
    )
    return PollOutcome(
        feed_id=state.id,
        feed_url=state.url,
        status=status,
        new_entries=new_entries,
        duration_ms=duration,
    )


async def _record_failure(
    ctx: PollContext, state: FeedState, err: FeedError, now: float, start: float
) -> PollOutcome:
    errors = state.errors + 1
    fields = {
        "last_poll": repr(now),
        "last_status": "error",
        "errors": str(errors),
        "last_error": f"{err.reason}: {err}",
    }
    next_poll = ctx.schedule.next_poll_after_error(state, errors, now, ctx.rng)
    await registry.save_poll(ctx.redis, ctx.keys, state.id, fields, next_poll)
    await _count(ctx, STAT_POLL_ERRORS)
    duration = elapsed_ms(start)
    log.warning(
        "poll failed",
        extra={
            "stage": "poll",
            "feed_url": state.url,
            "reason": f"{err.reason}: {err.message}",
            "duration_ms": duration,
        },
    )
    return PollOutcome(
        feed_id=state.id,
        feed_url=state.url,
        status="error",
        error=f"{err.reason}: {err}",
        duration_ms=duration,
    )


async def _count(ctx: PollContext, extra_stat: str | None) -> None:
    async with ctx.redis.pipeline(transaction=False) as pipe:
        pipe.hincrby(ctx.keys.stats, STAT_POLLS, 1)
        if extra_stat:
            pipe.hincrby(ctx.keys.stats, extra_stat, 1)
        await pipe.execute()


def _seen_key(ctx: PollContext, state: FeedState, entry: Entry) -> str:
    return ctx.keys.entry_seen(state.id, short_hash(entry.identity, 32))


def _seen_ttl(ctx: PollContext) -> int:
    return ctx.settings.seen_ttl_days * 86_400


def _fields(state: FeedState, entry: Entry, stage: str, reason: str) -> dict[str, object]:
    return {"stage": stage, "feed_url": state.url, "entry_url": entry.url, "reason": reason}
