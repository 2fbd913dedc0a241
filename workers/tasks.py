"""Celery tasks: deserialize, run one pipeline coroutine, map errors to retry or ack."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import kombu.exceptions
import msgspec
import redis.exceptions
from celery import Task
from celery.exceptions import Reject, TimeLimitExceeded

from pipeline import extract_stage, poll, redeliver, registry
from pipeline.errors import MalformedJob, QueueUnavailable
from pipeline.models import ExtractJob, Published
from pipeline.schedule import dispatch_batches
from pipeline.websub import maintain_subscriptions
from workers.app import app
from workers.broker import KombuRedisView
from workers.celery_config import (
    EXTRACT_TASK_ID_PREFIX,
    TASK_DISPATCH,
    TASK_EXTRACT,
    TASK_INGEST_PUSH,
    TASK_POLL,
    TASK_REDELIVER,
    TASK_WEBSUB_MAINTAIN,
    task_time_limits,
)

log = logging.getLogger(__name__)

# Lost connections to Redis are worth a retry; everything else in ingest is a bug or a bad page.
REDIS_TRANSIENT = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
REQUEUE_PAUSE = 5.0  # seconds before a message is put back because a retry could not be sent
LIMITS = task_time_limits(app.settings)  # every task's time limits (celery_config)


class CeleryExtractQueue:
    """pipeline.redeliver.ExtractQueue over Celery: one extract_article task per article."""

    def send(self, job: ExtractJob) -> None:
        try:
            extract_article.apply_async(
                args=[msgspec.to_builtins(job)],
                task_id=EXTRACT_TASK_ID_PREFIX + job.item_id,
                # Flower shows this instead of the whole entry.
                argsrepr=repr([job.entry.url or job.entry.title]),
            )
        except kombu.exceptions.OperationalError as exc:  # kombu gave up on the broker
            raise QueueUnavailable(f"extract job {job.item_id} not sent: {exc}") from exc


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
    tasks_at_once = settings.fetch_concurrency * settings.fetch_processes
    for batch in dispatch_batches(ids, settings.dispatch_batch_size, tasks_at_once):
        # expires: a batch still queued when its lease ends would race the re-dispatched one.
        poll_feeds.apply_async(args=[batch], expires=settings.poll_lease_seconds)
    return len(ids)


@app.task(name=TASK_POLL, soft_time_limit=LIMITS.poll_soft, time_limit=LIMITS.poll_hard)
def poll_feeds(feed_ids: list[str]) -> dict[str, int]:
    rt = app.runtime

    async def run() -> list[Any]:
        ctx = await rt.poll_context(CeleryExtractQueue())
        # Finish (or cancel cleanly) before Celery's soft limit interrupts the loop.
        async with asyncio.timeout(LIMITS.poll_work):
            return await poll.poll_feeds(ctx, feed_ids)

    outcomes = rt.run(run())
    summary: dict[str, int] = {}
    for outcome in outcomes:
        summary[outcome.status] = summary.get(outcome.status, 0) + 1
    return summary


@app.task(name=TASK_INGEST_PUSH, soft_time_limit=LIMITS.poll_soft, time_limit=LIMITS.poll_hard)
def ingest_push(feed_id: str, body_key: str) -> int:
    """A hub's notification, stored by `feedpipe websub`: its new entries, as a poll takes them."""
    rt = app.runtime

    async def run() -> int:
        ctx = await rt.poll_context(CeleryExtractQueue())
        async with asyncio.timeout(LIMITS.poll_work):
            return await poll.ingest_push(ctx, feed_id, body_key)

    return rt.run(run())


@app.task(name=TASK_WEBSUB_MAINTAIN, ignore_result=True)
def websub_maintain() -> int:
    """Subscribe, renew, retry and unsubscribe the WebSub subscriptions that are due."""
    rt = app.runtime

    async def run() -> int:
        ctx = await rt.websub_context(CeleryExtractQueue())
        return 0 if ctx is None else await maintain_subscriptions(ctx)

    return rt.run(run())


@app.task(name=TASK_REDELIVER, ignore_result=True)
def redeliver_lost_extract_jobs() -> int:
    """Send again the extract jobs the broker lost (pipeline/redeliver.py)."""
    rt = app.runtime
    ctx = rt.redeliver_context(CeleryExtractQueue(), KombuRedisView(rt.broker_redis()))
    return rt.run(redeliver.redeliver_lost(ctx))


class ExtractTask(Task):
    """Hard time limits kill the child; Celery then acks the message and calls on_failure in
    the worker's main process. The article is sent again from here, so a page that always
    hangs is tried a bounded number of times and dead-lettered, like one that always crashes."""

    def on_failure(self, exc: Exception, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        if not isinstance(exc, TimeLimitExceeded):
            return
        job = msgspec.convert(args[0], ExtractJob)
        rt = app.runtime
        reason = f"hard time limit ({LIMITS.extract_hard} s) exceeded"
        rt.run(extract_stage.record_failure(rt.extract_context(), job, reason))
        self.apply_async(args=args, task_id=task_id, countdown=_backoff(1))


@app.task(
    name=TASK_EXTRACT,
    base=ExtractTask,
    bind=True,
    max_retries=None,  # bounded by FEEDPIPE_EXTRACT_MAX_ATTEMPTS (and Redis outages by time)
    soft_time_limit=LIMITS.extract_soft,
    time_limit=LIMITS.extract_hard,
)
def extract_article(self: Task, payload: dict[str, Any]) -> str:
    """Extract and publish one article. Every delivery counts as an attempt (in Redis, so a
    killed process counts too); past FEEDPIPE_EXTRACT_MAX_ATTEMPTS it is dead-lettered."""
    rt = app.runtime
    ctx = rt.extract_context()
    try:
        job = extract_stage.read_job(payload, ctx.keys)
    except MalformedJob as malformed:
        try:
            return rt.run(extract_stage.set_aside(ctx, payload, malformed)).reason
        except REDIS_TRANSIENT as exc:
            raise _retry_later(self, exc, _backoff(self.request.retries)) from exc
    attempt_number = 1
    try:
        attempt = rt.run(extract_stage.begin_attempt(ctx, job))
        attempt_number = attempt.number
        if attempt.number > app.settings.extract_max_attempts:
            return rt.run(extract_stage.dead_letter(ctx, job, attempt.number - 1)).reason
        outcome = rt.run(extract_stage.ingest_article(ctx, job, attempt))
    except REDIS_TRANSIENT as exc:
        # Redis away is not the article's fault: retried until it is back (capped backoff).
        countdown = _backoff(self.request.retries)
        log.warning(
            "extract attempt retried: Redis unreachable",
            extra={
                "stage": "extract",
                "feed_url": job.feed.url,
                "entry_url": job.entry.url,
                "reason": f"{type(exc).__name__}: {exc} (again in {countdown} s)",
            },
        )
        raise _retry_later(self, exc, countdown) from exc
    # Anything else is this article's problem (or a bug): recorded as its reason, retried,
    # and dead-lettered once the attempts are spent; the worker log has the traceback.
    except Exception as exc:
        log.exception(
            "extract attempt failed", extra={"stage": "extract", "entry_url": job.entry.url}
        )
        with contextlib.suppress(*REDIS_TRANSIENT):  # the retry matters more than the reason
            rt.run(extract_stage.record_failure(ctx, job, f"{type(exc).__name__}: {exc}"))
        raise _retry_later(self, exc, _backoff(attempt_number)) from exc
    return outcome.stream_id if isinstance(outcome, Published) else outcome.reason


def _retry_later(task: Task, exc: Exception, countdown: int) -> Exception:
    """``task.retry``, except when the retry cannot be published: Celery then rejects the
    message *without* requeue, and with the broker being the Redis that just went away, that
    drops the article for good (its entry is already marked seen). Reject *with* requeue
    instead: the message goes back to its queue, or, while Redis is unreachable, stays in the
    broker's unacked set and comes back after the visibility timeout."""
    try:
        retry: Exception = task.retry(exc=exc, countdown=countdown)  # raises Retry if sent
    except Reject:
        time.sleep(REQUEUE_PAUSE)  # no tight redelivery loop while Redis is flapping
        requeue: Exception = Reject(exc, requeue=True)
        return requeue
    return retry


def _backoff(attempt: int) -> int:
    return int(min(300, 5 * 2**attempt))
