"""The extract stage: one queued entry (an ExtractJob) to a published or withheld item, or a
dead letter: load the page, extract, build, fingerprint, publish; attempts per delivery."""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from typing import Any

import msgspec
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from pipeline import page_store, redeliver
from pipeline.article_text import ExtractionPolicy, extract_article
from pipeline.errors import FeedError, MalformedJob
from pipeline.fulltext import FulltextPolicy, feed_text_is_article, should_compare
from pipeline.keys import (
    RECORD_FAILURE,
    RECORD_FULLTEXT_CHECK,
    STAT_DEAD_LETTERED,
    STAT_EXTRACT_FAILURES,
    STAT_FALLBACKS,
    Keys,
)
from pipeline.language import LanguagePolicy, detect_language
from pipeline.logs import elapsed_ms
from pipeline.models import (
    Article,
    DeadLetter,
    Discarded,
    Entry,
    ExtractJob,
    PublishOutcome,
)
from pipeline.publish import PublishPolicy, build_item, publish_item
from pipeline.routes import Router

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExtractContext:
    redis: Redis
    keys: Keys
    extraction: ExtractionPolicy
    publish: PublishPolicy
    fulltext: FulltextPolicy
    router: Router  # this process's routes, reloaded when they change (pipeline/routes.py)
    language: LanguagePolicy


@dataclass(frozen=True)
class Attempt:
    """One delivery of an extract job, as ``begin_attempt`` found it."""

    number: int  # 1 = the first delivery
    stored_page: bytes | None  # the page as the fetch worker kept it; None: none, or expired


WARM_UP_PAGE = (
    b"<html><head><title>feedpipe</title></head><body><article><h1>feedpipe</h1>"
    + b"".join(
        b"<p>Paragraph %d of a news story, long enough to be kept as text.</p>" % n
        for n in range(8)
    )
    + b"</article></body></html>"
)


# pipeline.normalize.item_id: 24 hex digits of a SHA-256. Keys are built from it, so nothing
# else may pass for one.
ITEM_ID = re.compile(r"[0-9a-f]{24}")
MESSAGE_ID_CHARS = 64  # of an unreadable message's item_id, kept in its dead letter


def read_job(payload: Any, keys: Keys) -> ExtractJob:
    """An extract task's message, validated where it enters the worker. The page key must be
    the one this item's page is stored under: a message naming any other key would have the
    worker read it as a page and delete it with the dead letter."""
    try:
        job = msgspec.convert(payload, ExtractJob)
    except msgspec.ValidationError as exc:
        raise MalformedJob(f"not an extract job of this version: {exc}") from exc
    if not ITEM_ID.fullmatch(job.item_id):
        raise MalformedJob("item_id is not 24 lowercase hex digits")
    if job.html_key is not None and job.html_key != keys.html(job.item_id):
        raise MalformedJob("html_key is not the key of the item's stored page")
    return job


async def set_aside(ctx: ExtractContext, payload: Any, error: MalformedJob) -> Discarded:
    """A message ``read_job`` refused goes to the dead-letter stream whole, to be read and
    re-sent by hand. Nothing keyed by its item is touched: the ledger may hold a readable copy
    of the job, which the redelivery sweep sends again (pipeline/redeliver.py)."""
    item_id = payload.get("item_id") if isinstance(payload, dict) else None
    letter = DeadLetter(
        item_id=item_id[:MESSAGE_ID_CHARS] if isinstance(item_id, str) else None,
        attempts=0,
        reason=f"malformed extract message: {error}",
        message=payload,
    )
    async with ctx.redis.pipeline(transaction=True) as pipe:
        _add_dead_letter(ctx, pipe, letter)
        await pipe.execute()
    log.error(
        "extract message set aside on the dead-letter stream",
        extra={"stage": "extract", "reason": letter.reason},
    )
    return Discarded(item_id=letter.item_id or "", reason="dead_letter")


def _add_dead_letter(ctx: ExtractContext, pipe: Pipeline, letter: DeadLetter) -> None:
    pipe.xadd(
        ctx.keys.dead_letter_stream,
        # repr: a type a message can carry that JSON has no form for is kept as its text.
        {"dead": msgspec.json.encode(letter, enc_hook=repr)},
        maxlen=ctx.publish.maxlen,
        approximate=True,
    )
    pipe.hincrby(ctx.keys.stats, STAT_DEAD_LETTERED, 1)


def warm_up(extraction: ExtractionPolicy, language: LanguagePolicy) -> None:
    """Load in this process what extraction loads on first use: the language model, and
    trafilatura's and lxml's lazy state. A process that forks extract workers calls it first,
    so that each of them (a recycled one too) starts with these loaded instead of loading them."""
    entry = Entry(identity="warm-up", title="feedpipe")
    article = extract_article(WARM_UP_PAGE, "utf-8", entry, extraction)
    detect_language(article.title, article.text, None, language)


async def ingest_article(ctx: ExtractContext, job: ExtractJob, attempt: Attempt) -> PublishOutcome:
    start = time.monotonic()
    html = _read_page(ctx, job, attempt.stored_page)
    article = extract_article(html, job.charset, job.entry, ctx.extraction)
    language = detect_language(article.title, article.text, article.language, ctx.language)
    item = build_item(job, article, language)
    outcome = await publish_item(
        ctx.redis, ctx.keys, job.feed.id, item, ctx.publish, router=ctx.router
    )
    async with ctx.redis.pipeline(transaction=False) as pipe:
        if article.extraction == "feed" and (job.html_key or job.page_error):
            pipe.hincrby(ctx.keys.stats, STAT_FALLBACKS, 1)  # a page was expected
        _record_fulltext_check(ctx, pipe, job, article)
        if job.html_key:  # the claim check is spent once the item is decided
            pipe.delete(job.html_key)
        pipe.delete(ctx.keys.attempts(job.item_id))
        redeliver.forget(pipe, ctx.keys, job.item_id)
        await pipe.execute()
    reason = outcome.reason if isinstance(outcome, Discarded) else "published"
    log.info(
        "article",
        extra={
            "stage": "extract",
            "feed_url": job.feed.url,
            "entry_url": job.entry.url,
            "reason": reason,
            "status": article.extraction,
            "duration_ms": elapsed_ms(start),
        },
    )
    return outcome


def _record_fulltext_check(
    ctx: ExtractContext, pipe: Pipeline, job: ExtractJob, article: Article
) -> None:
    """With the page's text extracted and the feed's own at hand, tell the feed whether its
    text was the article (pipeline/fulltext.py: how polls learn to skip pages)."""
    if article.extraction != "trafilatura":
        return
    if not should_compare(job.feed.fulltext, job.entry, ctx.fulltext):
        return
    same = feed_text_is_article(job.entry.content, article.text, ctx.fulltext)
    RECORD_FULLTEXT_CHECK.queue(pipe, [ctx.keys.feed(job.feed.id)], [int(same)])


ATTEMPTS_TTL = 86_400  # an article still failing a day later is a new story to us
CRASHED = "the worker process died while extracting it (killed, out of memory or crashed)"


async def begin_attempt(ctx: ExtractContext, job: ExtractJob) -> Attempt:
    """Count one more delivery of this article, and read its stored page in the same round
    trip.

    Counted in Redis, not in the message: a process killed mid-task never gets to update its
    message, and the broker redelivers the same one (task_reject_on_worker_lost)."""
    key = ctx.keys.attempts(job.item_id)
    async with ctx.redis.pipeline(transaction=True) as pipe:
        pipe.hincrby(key, "count", 1)
        pipe.expire(key, ATTEMPTS_TTL)
        redeliver.touch(pipe, ctx.keys, job.item_id, time.time())
        if job.html_key:
            pipe.get(job.html_key)
        count, *rest = await pipe.execute()
    stored_page = rest[-1] if job.html_key else None
    return Attempt(int(count), stored_page if isinstance(stored_page, bytes) else None)


async def record_failure(ctx: ExtractContext, job: ExtractJob, reason: str) -> None:
    """An attempt that raised or timed out: its reason is what the dead letter will say, if it
    was the last attempt."""
    async with ctx.redis.pipeline(transaction=False) as pipe:
        RECORD_FAILURE.queue(pipe, [ctx.keys.attempts(job.item_id)], [reason[:500]])
        pipe.hincrby(ctx.keys.stats, STAT_EXTRACT_FAILURES, 1)
        await pipe.execute()


async def dead_letter(ctx: ExtractContext, job: ExtractJob, attempts: int) -> Discarded:
    """Give the article up: a record on the dead-letter stream, its claim check freed."""
    letter = DeadLetter(
        item_id=job.item_id,
        attempts=attempts,
        reason=await _last_reason(ctx, job, attempts),
        feed_url=job.feed.url,
        entry_url=job.entry.url,
        title=job.entry.title,
        fetched_at=job.fetched_at,
        feed_id=job.feed.id,
        identity=job.entry.identity,
    )
    async with ctx.redis.pipeline(transaction=True) as pipe:
        _add_dead_letter(ctx, pipe, letter)
        pipe.delete(ctx.keys.attempts(job.item_id))
        redeliver.forget(pipe, ctx.keys, job.item_id)
        if job.html_key:
            pipe.delete(job.html_key)
        await pipe.execute()
    log.error(
        "article dead-lettered",
        extra={
            "stage": "extract",
            "feed_url": job.feed.url,
            "entry_url": job.entry.url,
            "reason": f"{letter.reason} ({attempts} attempts)",
        },
    )
    return Discarded(item_id=job.item_id, reason="dead_letter")


async def _last_reason(ctx: ExtractContext, job: ExtractJob, attempts: int) -> str:
    """Why the last attempt failed. One that recorded nothing died with its process (the
    reason recorded by an earlier attempt is not this one's)."""
    reason, attempt = await ctx.redis.hmget(
        ctx.keys.attempts(job.item_id), ["reason", "reason_attempt"]
    )
    if isinstance(reason, bytes) and attempt == str(attempts).encode():
        return reason.decode()
    return CRASHED


def _read_page(ctx: ExtractContext, job: ExtractJob, blob: bytes | None) -> bytes | None:
    if not job.html_key:
        return None
    if blob is None:
        # Expired (FEEDPIPE_HTML_TTL_SECONDS) before this task ran: the feed's text stands in.
        _no_page(job, "article page expired before extraction", "html_expired")
        return None
    try:
        return page_store.decode(
            blob,
            ctx.extraction.max_page_bytes,
            feed_url=job.feed.url,
            url=job.page_url or job.entry.url or "",
        )
    except FeedError as err:  # a bomb or a broken body: the feed's text stands in, as above
        _no_page(job, "article page not readable", str(err))
        return None


def _no_page(job: ExtractJob, message: str, reason: str) -> None:
    """The stored page cannot be used: said once, and the feed's text stands in."""
    extra = {"stage": "extract", "feed_url": job.feed.url, "entry_url": job.entry.url}
    log.warning(message, extra=extra | {"reason": reason})
