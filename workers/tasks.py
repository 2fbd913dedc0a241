"""Celery tasks: deserialize, run one pipeline coroutine, map errors to retry or ack."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import msgspec
import redis.exceptions
from celery import Task

from pipeline import ingest, poll, registry
from pipeline.models import ExtractJob, Published
from workers.app import app
from workers.config import (
    EXTRACT_HARD_LIMIT,
    EXTRACT_SOFT_LIMIT,
    POLL_HARD_LIMIT,
    POLL_SOFT_LIMIT,
    TASK_DISPATCH,
    TASK_EXTRACT,
    TASK_POLL,
)

log = logging.getLogger(__name__)

# Lost connections to Redis are worth a retry; everything else in ingest is a bug or a bad page.
REDIS_TRANSIENT = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


class CeleryExtractQueue:
    """pipeline.poll.ExtractQueue over Celery: one extract_article task per new entry."""

    def send(self, job: ExtractJob) -> None:
        extract_article.apply_async(
            args=[msgspec.to_builtins(job)],
            task_id=f"extract-{job.item_id}",
            # Flower shows this instead of the whole entry.
            argsrepr=repr([job.entry.url or job.entry.title]),
        )


@app.task(name=TASK_DISPATCH, ignore_result=True)
def dispatch_due_feeds() -> int:
    """Claim the feeds that are due and send them to the fetch queue in batches."""
    settings, rt = app.settings, app.runtime
    ids = rt.run(
        registry.claim_due_feeds(
            rt.redis(),
            rt.keys,
            time.time(),
            settings.poll_lease_seconds,
            settings.dispatch_max_feeds,
        )
    )
    size = settings.dispatch_batch_size
    for start in range(0, len(ids), size):
        # expires: a batch still queued when its lease ends would race the re-dispatched one.
        poll_feeds.apply_async(
            args=[ids[start : start + size]], expires=settings.poll_lease_seconds
        )
    return len(ids)


@app.task(name=TASK_POLL, soft_time_limit=POLL_SOFT_LIMIT, time_limit=POLL_HARD_LIMIT)
def poll_feeds(feed_ids: list[str]) -> dict[str, int]:
    rt = app.runtime

    async def run() -> list[Any]:
        ctx = await rt.poll_context(CeleryExtractQueue())
        # Finish (or cancel cleanly) before Celery's soft limit interrupts the loop.
        async with asyncio.timeout(POLL_SOFT_LIMIT - 10):
            return await poll.poll_feeds(ctx, feed_ids)

    outcomes = rt.run(run())
    summary: dict[str, int] = {}
    for outcome in outcomes:
        summary[outcome.status] = summary.get(outcome.status, 0) + 1
    return summary


@app.task(
    name=TASK_EXTRACT,
    bind=True,
    max_retries=5,
    soft_time_limit=EXTRACT_SOFT_LIMIT,
    time_limit=EXTRACT_HARD_LIMIT,
)
def extract_article(self: Task, payload: dict[str, Any]) -> str:
    job = msgspec.convert(payload, ExtractJob)
    try:
        outcome = app.runtime.run(ingest.ingest_article(app.runtime.ingest_context(), job))
    except REDIS_TRANSIENT as exc:
        raise self.retry(exc=exc, countdown=min(300, 5 * 2**self.request.retries)) from exc
    except Exception:
        # Counted for the exporter (feedpipe_extract_failures_total), then failed as before.
        app.runtime.run(ingest.count_failure(app.runtime.ingest_context()))
        raise
    return outcome.stream_id if isinstance(outcome, Published) else outcome.reason
