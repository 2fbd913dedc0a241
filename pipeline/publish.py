"""Build the output item and publish it exactly once on the output stream."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec
from redis.asyncio import Redis

from pipeline.keys import PUBLISH_ITEM, Keys
from pipeline.models import (
    Article,
    Cluster,
    Discarded,
    DiscardReason,
    ExtractJob,
    FeedInfo,
    Item,
    Published,
    PublishOutcome,
)
from pipeline.normalize import content_hash

_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True)
class PublishPolicy:
    maxlen: int  # MAXLEN ~ of the output streams
    dedupe_ttl_seconds: int  # how long "already published" is remembered
    min_text_chars: int  # shorter texts are too generic to dedupe by content hash


def build_item(job: ExtractJob, article: Article) -> Item:
    entry = job.entry
    return Item(
        id=job.item_id,
        url=entry.url or job.page_url,
        canonical_url=entry.canonical_url,
        feed=FeedInfo(url=job.feed.url, title=job.feed.title, tags=job.feed.tags),
        source=article.site_name or job.feed.title,
        title=article.title,
        author=article.author,
        published_at=article.published_at,
        fetched_at=job.fetched_at,
        language=article.language,
        text=article.text,
        summary=entry.summary or _first_paragraph(article.text),
        categories=entry.categories,
        image=article.image,
        extraction=article.extraction,
        content_hash=content_hash(article.text),
        cluster=Cluster(id=job.item_id, size=1),
    )


def item_json(item: Item) -> bytes:
    return _encode(item)


async def publish_item(
    redis: Redis, keys: Keys, feed_id: str, item: Item, policy: PublishPolicy
) -> PublishOutcome:
    """XADD the item unless its URL (or, for substantial texts, its exact text) was published.

    Idempotent: a retried or redelivered task gets ``Discarded(duplicate_url)`` the second time.
    """
    if not item.title and not item.text:
        return Discarded(item_id=item.id, reason="too_short")
    dedupe_content = len(item.text) >= policy.min_text_chars
    kind, value = await redis.eval(
        PUBLISH_ITEM,
        6,
        keys.item(item.id),
        keys.content(item.content_hash),
        keys.output_stream,
        keys.duplicates_stream,
        keys.stats,
        keys.feed(feed_id),
        item.id,
        policy.dedupe_ttl_seconds,
        policy.maxlen,
        item_json(item),
        _encode(_duplicate_record(item)),
        "1" if dedupe_content else "0",
    )
    kind, value = _str(kind), _str(value)
    if kind == "published":
        return Published(item_id=item.id, stream_id=value)
    reason: DiscardReason = "duplicate_url" if kind == "duplicate_url" else "duplicate_content"
    return Discarded(item_id=item.id, reason=reason, duplicate_of=value)


def _duplicate_record(item: Item) -> dict[str, object]:
    return {
        "id": item.id,
        "url": item.url,
        "feed": {"url": item.feed.url, "title": item.feed.title},
        "source": item.source,
        "title": item.title,
        "reason": "same_text",
        "fetched_at": item.fetched_at,
    }


def _first_paragraph(text: str) -> str:
    return text.partition("\n\n")[0]


def _str(value: object) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
