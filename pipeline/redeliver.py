"""Find extract jobs the broker lost, and queue them again.

kombu's Redis transport takes a message with ``BRPOP`` and records it as unacknowledged with a
second command: a worker killed, or Redis gone, between the two loses the message (kombu#305),
and so does a re-send that fails while Redis is away. The poll marks an entry seen once its
job is queued, so no later poll would bring it back. Every queued job is therefore also kept
in a ledger (``Keys.extract_pending`` / ``Keys.extract_jobs``) until its article is decided:
published, discarded or dead-lettered. A job the ledger has held without a sign of life for a
while, and that the broker holds neither in its queue nor delivered to a worker, is lost and
sent again under the same task id (a late duplicate is harmless: publishing is idempotent per
item, and every delivery counts as an attempt).

A job waiting in a long backlog is in the broker's queue, so it is never sent twice. The queue
is not read whole: it is first in, first out, and the jobs looked at are the ledger's oldest,
so they are among the messages next in line (``RedeliverPolicy.queue_margin`` more are read for
messages put back at the front). One that waits further back, because it was put back at the
end of a long queue after its attempt started, is taken for lost and sent once more: a wasted
delivery, nothing worse.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import msgspec
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from pipeline.keys import STAT_REDELIVERED, Keys, reply_text
from pipeline.logs import elapsed_ms
from pipeline.models import ExtractJob

log = logging.getLogger(__name__)


class ExtractQueue(Protocol):
    """Where extract jobs go (the Celery glue sends an ``extract_article`` task)."""

    def send(self, job: ExtractJob) -> None: ...


class BrokerView(Protocol):
    """What the broker holds of the extract queue (the Celery glue reads kombu's keys)."""

    async def held_item_ids(self, next_in_line: int) -> frozenset[str]:
        """Item ids of the extract jobs delivered and not yet acked, and of the
        ``next_in_line`` messages the queue delivers next (its oldest)."""
        ...


@dataclass(frozen=True)
class RedeliverPolicy:
    after_seconds: int  # no sign of life for this long, and not in the broker: lost
    batch: int = 1_000  # overdue jobs looked at per check, oldest first
    # Queued messages read beyond one per overdue job: kombu puts a dead worker's messages back
    # at the front of the queue, ahead of the oldest jobs.
    queue_margin: int = 1_000
    # A message moving between kombu's queue and its unacked hash (BRPOP then HSET, or a
    # requeue) is briefly in neither: only a job missing from two reads this far apart is lost.
    recheck_seconds: float = 1.0


@dataclass(frozen=True)
class RedeliverContext:
    redis: Redis
    keys: Keys
    broker: BrokerView
    queue: ExtractQueue
    policy: RedeliverPolicy


def track(pipe: Pipeline, keys: Keys, jobs: Sequence[ExtractJob], now: float) -> None:
    """Record jobs in the ledger (in the caller's pipeline), before they are sent: a job
    recorded after its task ran would stay in the ledger and be sent again."""
    if not jobs:
        return
    pipe.zadd(keys.extract_pending, {job.item_id: now for job in jobs})
    pipe.hset(keys.extract_jobs, mapping={job.item_id: msgspec.json.encode(job) for job in jobs})


def touch(pipe: Pipeline, keys: Keys, item_id: str, now: float) -> None:
    """A sign of life: an attempt at the job started (only if the ledger holds it)."""
    pipe.zadd(keys.extract_pending, {item_id: now}, xx=True)


def forget(pipe: Pipeline, keys: Keys, item_id: str) -> None:
    """The article is decided: its job leaves the ledger."""
    pipe.zrem(keys.extract_pending, item_id)
    pipe.hdel(keys.extract_jobs, item_id)


async def redeliver_lost(ctx: RedeliverContext, now: float | None = None) -> int:
    """Send again the jobs the broker lost; returns how many were sent."""
    start = time.monotonic()
    now = time.time() if now is None else now
    overdue = await _overdue(ctx, now)
    if not overdue:
        return 0
    missing = await _not_held(ctx, overdue, len(overdue))
    if missing:
        await asyncio.sleep(ctx.policy.recheck_seconds)
        still = await _still_overdue(ctx, missing, now)
        missing = await _not_held(ctx, still, len(overdue))
    if not missing:
        return 0
    sent = await _send_again(ctx, missing)
    log.warning(
        "lost extract jobs sent again",
        extra={
            "stage": "redeliver",
            "items": sent,
            "reason": f"no sign of life for {ctx.policy.after_seconds} s and in no broker queue",
            "duration_ms": elapsed_ms(start),
        },
    )
    return sent


async def _overdue(ctx: RedeliverContext, now: float) -> list[str]:
    ids = await ctx.redis.zrangebyscore(
        ctx.keys.extract_pending,
        "-inf",
        now - ctx.policy.after_seconds,
        start=0,
        num=ctx.policy.batch,
    )
    return [reply_text(i) for i in ids]


async def _still_overdue(ctx: RedeliverContext, ids: list[str], now: float) -> list[str]:
    """Those of ``ids`` still in the ledger with no sign of life since (decided ones left)."""
    scores = await ctx.redis.zmscore(ctx.keys.extract_pending, ids)
    limit = now - ctx.policy.after_seconds
    return [i for i, score in zip(ids, scores, strict=True) if score is not None and score <= limit]


async def _not_held(ctx: RedeliverContext, ids: list[str], overdue: int) -> list[str]:
    if not ids:
        return []
    held = await ctx.broker.held_item_ids(overdue + ctx.policy.queue_margin)
    return [i for i in ids if i not in held]


async def _send_again(ctx: RedeliverContext, ids: list[str]) -> int:
    payloads = await ctx.redis.hmget(ctx.keys.extract_jobs, ids)
    now, sent = time.time(), 0
    async with ctx.redis.pipeline(transaction=False) as pipe:
        for iid, payload in zip(ids, payloads, strict=True):
            job = _job(iid, payload)
            if job is None:
                forget(pipe, ctx.keys, iid)
                continue
            ctx.queue.send(job)
            pipe.zadd(ctx.keys.extract_pending, {iid: now}, xx=True)  # lost again: after_seconds
            sent += 1
            log.info(
                "extract job sent again",
                extra={
                    "stage": "redeliver",
                    "feed_url": job.feed.url,
                    "entry_url": job.entry.url,
                    "reason": "lost by the broker",
                },
            )
        pipe.hincrby(ctx.keys.stats, STAT_REDELIVERED, sent)
        await pipe.execute()
    return sent


def _job(item_id: str, payload: bytes | str | None) -> ExtractJob | None:
    """The ledger's job, or None when there is none to send: decided between the reads
    (forget() removes both keys), or unreadable (written by another version of feedpipe)."""
    if payload is None:
        return None
    try:
        return msgspec.json.decode(payload, type=ExtractJob)
    except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
        log.error(
            "unreadable job in the ledger dropped",
            extra={"stage": "redeliver", "reason": f"item {item_id}: {exc}"},
        )
        return None
