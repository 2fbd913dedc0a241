"""Turn one queued entry into a published item: load page, extract, build, publish."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from redis.asyncio import Redis

from pipeline.dedupe import DedupePolicy
from pipeline.extract import ExtractionPolicy, decompress_html, extract_article
from pipeline.keys import STAT_EXTRACT_FAILURES, STAT_FALLBACKS, Keys
from pipeline.logs import elapsed_ms
from pipeline.models import Discarded, ExtractJob, PublishOutcome
from pipeline.publish import PublishPolicy, build_item, publish_item
from pipeline.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestContext:
    redis: Redis
    keys: Keys
    extraction: ExtractionPolicy
    publish: PublishPolicy

    @classmethod
    def create(cls, settings: Settings, keys: Keys, redis: Redis) -> IngestContext:
        return cls(
            redis=redis,
            keys=keys,
            extraction=ExtractionPolicy.create(settings.min_text_chars),
            publish=PublishPolicy(
                maxlen=settings.stream_maxlen,
                dedupe_ttl_seconds=settings.seen_ttl_days * 86_400,
                min_text_chars=settings.min_text_chars,
                near=DedupePolicy(window_days=settings.dedupe_window_days),
            ),
        )


async def ingest_article(ctx: IngestContext, job: ExtractJob) -> PublishOutcome:
    start = time.monotonic()
    html = await _load_html(ctx, job)
    article = extract_article(html, job.charset, job.entry, ctx.extraction)
    item = build_item(job, article)
    outcome = await publish_item(ctx.redis, ctx.keys, job.feed.id, item, ctx.publish)
    async with ctx.redis.pipeline(transaction=False) as pipe:
        if article.extraction == "feed":
            pipe.hincrby(ctx.keys.stats, STAT_FALLBACKS, 1)
        if job.html_key:  # the claim check is spent once the item is decided
            pipe.delete(job.html_key)
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


async def count_failure(ctx: IngestContext) -> None:
    """An article whose task raised: counted for the exporter (the task itself fails)."""
    await ctx.redis.hincrby(ctx.keys.stats, STAT_EXTRACT_FAILURES, 1)


async def _load_html(ctx: IngestContext, job: ExtractJob) -> bytes | None:
    if not job.html_key:
        return None
    blob = await ctx.redis.get(job.html_key)
    if not isinstance(blob, bytes):
        # Expired (FEEDPIPE_HTML_TTL_SECONDS) before this task ran: the feed's text stands in.
        log.warning(
            "article page expired before extraction",
            extra={
                "stage": "extract",
                "feed_url": job.feed.url,
                "entry_url": job.entry.url,
                "reason": "html_expired",
            },
        )
        return None
    return decompress_html(blob)
