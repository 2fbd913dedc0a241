"""Poll feeds: fetch, parse, claim new entries, fetch their pages, hand them to extraction."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, TypedDict

import msgspec
from redis.asyncio import Redis
from redis.exceptions import RedisError

from pipeline import page_store, redeliver, registry
from pipeline.article_text import is_html
from pipeline.errors import (
    DisallowedByRobots,
    FeedError,
    HostBusy,
    HTTPStatusError,
    NotAFeed,
    QueueUnavailable,
    ResponseTooLarge,
    ServerError,
    UnexpectedError,
)
from pipeline.fetch import Fetcher, FetchLimits, HopCheck
from pipeline.fulltext import FulltextPolicy, page_needed
from pipeline.keys import (
    CLAIM_ENTRY,
    FETCH_LATENCY_BUCKETS_MS,
    STAT_DEFERRED,
    STAT_NEW_ENTRIES,
    STAT_NOT_MODIFIED,
    STAT_PAGES_DISALLOWED,
    STAT_PAGES_SKIPPED,
    STAT_POLL_ERRORS,
    STAT_POLLS,
    STAT_POLLS_BY_CLASS,
    STAT_UNCHANGED,
    Keys,
)
from pipeline.logs import elapsed_ms
from pipeline.models import (
    Entry,
    ExtractJob,
    FeedState,
    FetchResult,
    ParsedFeed,
    PollOutcome,
    PollRecord,
)
from pipeline.normalize import item_id
from pipeline.parse import parse_feed
from pipeline.politeness import HostQueues, NoSlot, host_key
from pipeline.redeliver import ExtractQueue
from pipeline.robots import RobotsCache
from pipeline.schedule import SchedulePolicy, estimate_rate, hint_seconds
from pipeline.websub import WebSubPolicy, hub_link, load_push_body, note_hub, pushed_result

log = logging.getLogger(__name__)

CLAIM_NEW, CLAIM_SEEN, CLAIM_PUBLISHED, CLAIM_IN_PROGRESS = 1, 0, 2, 3
LATE_TURN_SHARE = 0.25  # of the budget: a poll starts only with at least this much of it left


@dataclass(frozen=True)
class PollPolicy:
    """What a poll takes from the settings beyond its stages' own policies."""

    budget_seconds: float  # FEEDPIPE_POLL_BUDGET_SECONDS: a poll's pages, politeness included
    max_entries: int  # FEEDPIPE_MAX_ENTRIES_PER_POLL
    unconditional_fetch_seconds: float  # a full GET now and then, whatever the validators say
    claim_ttl_seconds: int  # an entry claimed by a poll that died is free again after this
    seen_ttl_seconds: int  # an entry done is remembered this long
    html_ttl_seconds: int  # a stored page waits this long for its extract task
    permanent_redirect_after: int  # polls in a row that see one before the feed moves


@dataclass(frozen=True)
class PollContext:
    policy: PollPolicy
    keys: Keys
    redis: Redis
    fetcher: Fetcher
    queue: ExtractQueue
    schedule: SchedulePolicy
    feed_limits: FetchLimits
    page_limits: FetchLimits
    host_polls: HostQueues  # polls of one host's feeds take turns (``_host_turn``)
    fulltext: FulltextPolicy
    websub: WebSubPolicy | None  # None: FEEDPIPE_WEBSUB_BASE_URL unset, polling only
    robots: RobotsCache | None = None  # None: FEEDPIPE_OBEY_ROBOTS_TXT=false
    rng: random.Random = field(default_factory=random.Random)


async def poll_feeds(ctx: PollContext, feed_ids: Iterable[str]) -> list[PollOutcome]:
    """Poll a batch concurrently; one feed's failure is recorded on it and never stops the rest.

    Every feed of the batch starts at once: a poll waiting for its host's turn costs nothing
    (the fetcher caps requests in flight, FEEDPIPE_REQUESTS_IN_FLIGHT, only once a host's slot
    is granted). The batch shares one budget (FEEDPIPE_POLL_BUDGET_SECONDS): what cannot
    start before it ends (a busy host) is left for a poll soon after, never dropped."""
    deadline = time.monotonic() + ctx.policy.budget_seconds
    return list(await asyncio.gather(*(poll_feed(ctx, fid, deadline) for fid in feed_ids)))


@dataclass(frozen=True)
class Fetched:
    """What one poll got: the response, and the parse when the body was new."""

    result: FetchResult
    parsed: ParsedFeed | None
    body_hash: str | None
    fetch_ms: int  # the feed request alone (the latency histogram)
    queued: int = 0
    left_over: int = 0  # new entries whose pages could not be fetched within the budget
    held_elsewhere: int = 0  # new entries another poll holds (it may have died: claims expire)

    @property
    def incomplete(self) -> bool:
        """Entries were left for a later poll: it must see the whole feed again."""
        return bool(self.left_over or self.held_elsewhere)


async def poll_feed(ctx: PollContext, fid: str, deadline: float) -> PollOutcome:
    start = time.monotonic()
    state = await registry.load_feed(ctx.redis, ctx.keys, fid)
    if state is None:  # removed after it was dispatched
        return PollOutcome(feed_id=fid, feed_url="", status="gone")
    now = time.time()
    try:
        async with _host_turn(ctx, state, deadline):
            fetched = await _fetch_and_take(ctx, state, now, deadline)
    except HostBusy as busy:
        return await _record_deferral(ctx, state, busy, now, start)
    except FeedError as err:
        return await _record_failure(ctx, state, err, now, start)
    except (RedisError, QueueUnavailable):
        raise  # Redis itself is gone: the whole batch is retried when its lease runs out
    # One feed's surprise (a parser crash, a bug) is recorded on that feed, with its traceback
    # in the log, and never stops the other feeds of the batch.
    except Exception as exc:
        log.exception("poll crashed", extra={"stage": "poll", "feed_url": state.url})
        unexpected = UnexpectedError(state.url, f"{type(exc).__name__}: {exc}")
        return await _record_failure(ctx, state, unexpected, now, start)
    return await _record_success(ctx, state, fetched, now, start)


@asynccontextmanager
async def _host_turn(ctx: PollContext, state: FeedState, deadline: float) -> AsyncIterator[None]:
    """One of the feed's host's poll turns in this process (as many as a host may have
    requests in flight): polls of one host's feeds take turns, each fetching its feed and
    pages back to back, instead of every feed's request coming first and the pages after.
    A feed still waiting when the budget ends made no request: deferred, not failed."""
    # A poll admitted later than this could hardly fetch its pages before the budget ends: it
    # is deferred (no request made) and resumed with a fresh budget instead.
    latest = deadline - ctx.policy.budget_seconds * LATE_TURN_SHARE
    try:
        async with ctx.host_polls.turn(host_key(state.fetch_target), latest):
            yield
    except NoSlot as exc:
        raise HostBusy(state.url, str(exc)) from exc


async def _fetch_and_take(
    ctx: PollContext, state: FeedState, now: float, deadline: float
) -> Fetched:
    start = time.monotonic()
    result = await ctx.fetcher.fetch_feed(
        state, ctx.feed_limits, deadline, conditional=_use_validators(ctx, state, now)
    )
    fetch_ms = elapsed_ms(start)
    if result.not_modified:
        return Fetched(result, None, None, fetch_ms)
    body_hash = hashlib.sha256(result.body).hexdigest()[:32]
    if body_hash == state.body_hash:  # validators missing or lying, but the body is the same
        return Fetched(result, None, body_hash, fetch_ms)
    parsed = await _parse_off_loop(result, state.url, ctx.policy.max_entries)
    queued, left_over, held = await take_new_entries(ctx, state, parsed, deadline)
    return Fetched(result, parsed, body_hash, fetch_ms, queued, left_over, held)


async def _parse_off_loop(result: FetchResult, feed_url: str, max_entries: int) -> ParsedFeed:
    """Parse in a thread: a large feed takes feedparser a second or more of CPU, and on the
    event loop that second would stall every other fetch of the batch, whose timeouts would
    then fire on time that was never theirs."""
    return await asyncio.to_thread(parse_feed, result, feed_url, max_entries)


def _use_validators(ctx: PollContext, state: FeedState, now: float) -> bool:
    """Conditional GET, except now and then: some servers answer 304 to everything."""
    every = ctx.policy.unconditional_fetch_seconds
    if every == 0 or state.last_full_fetch is None:
        return True
    return now - state.last_full_fetch < every


async def take_new_entries(
    ctx: PollContext, state: FeedState, parsed: ParsedFeed, deadline: float
) -> tuple[int, int, int]:
    """Claim the entries not seen before, fetch their pages and queue them for extraction.

    Returns (queued, left over, held elsewhere): entries whose page could not be fetched
    before the deadline (their host was busy) are released, for the next poll to take;
    entries another poll holds are counted apart (that poll may be running still)."""
    # Oldest first, so the output stream follows publication order within a feed.
    new, elsewhere = await _claim_entries(ctx, state, reversed(parsed.entries))
    if not new:
        return 0, 0, elsewhere
    fetched_at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    fetching = {  # each page's task -> its entry's place in claim order (oldest first)
        asyncio.ensure_future(_prepare_job(ctx, state, entry, iid, fetched_at, deadline)): k
        for k, (entry, iid) in enumerate(new)
    }
    left: list[Entry] = []
    try:
        # Jobs are queued as their pages come in, all those in at that moment together: a
        # polite host serves a poll's pages a second apart, and extraction must not wait for
        # the last one (docs/performance.md, 1b); an unthrottled one serves them at once.
        while fetching:
            done, _ = await asyncio.wait(fetching, return_when=asyncio.FIRST_COMPLETED)
            places = sorted((fetching.pop(task), task) for task in done)
            # Every finished task's exception is retrieved, not only the first one raised:
            # each unretrieved one would log "Task exception was never retrieved" (Redis gone
            # fails all the pages of the moment together).
            failures = [e for _, t in places if not t.cancelled() and (e := t.exception())]
            if failures:
                raise failures[0]
            ready = [(new[k][0], task.result()) for k, task in places]
            left += [entry for entry, job in ready if job is None]
            await _queue_jobs(ctx, state, [(entry, job) for entry, job in ready if job])
    finally:
        for task in fetching:  # a failure above: the pages still coming are not waited for
            task.cancel()
        # ...but their endings are collected: a task that failed as it was cancelled (Redis
        # gone) would otherwise log "Task exception was never retrieved" once per page.
        await asyncio.gather(*fetching, return_exceptions=True)
    if left:
        await ctx.redis.delete(*(_seen_key(ctx, state, entry) for entry in left))
    return len(new) - len(left), len(left), elsewhere


async def _queue_jobs(
    ctx: PollContext, state: FeedState, ready: list[tuple[Entry, ExtractJob]]
) -> None:
    """Into the ledger, the entries' claims turned into lasting "seen" marks, then sent: one
    round trip. The ledger comes first because a job that finishes at once must find itself
    there to leave it (pipeline/redeliver.py), and it makes the marks safe before the send: a
    job never sent because this poll dies is sent by the ledger's sweep."""
    if not ready:
        return
    async with ctx.redis.pipeline(transaction=True) as pipe:
        redeliver.track(pipe, ctx.keys, [job for _, job in ready], time.time())
        for entry, _ in ready:
            pipe.set(_seen_key(ctx, state, entry), "done", ex=_seen_ttl(ctx))
        pipe.hincrby(ctx.keys.stats, STAT_NEW_ENTRIES, len(ready))
        await pipe.execute()
    for _, job in ready:
        ctx.queue.send(job)


async def _claim_entries(
    ctx: PollContext, state: FeedState, entries: Iterable[Entry]
) -> tuple[list[tuple[Entry, str]], int]:
    """The entries this poll claimed, and how many are claimed by another poll: those count
    as left over, so this poll stores no validators and the feed is polled again soon (if
    that other poll died, its claims expire and a later poll takes the entries)."""
    pending = [(e, item_id(e.canonical_url, f"{state.id}:{e.identity}")) for e in entries]
    async with ctx.redis.pipeline(transaction=False) as pipe:
        for entry, iid in pending:
            bucket, field = ctx.keys.item_mark(iid)
            CLAIM_ENTRY.queue(
                pipe,
                [_seen_key(ctx, state, entry), bucket, ctx.keys.legacy_item(iid)],
                [ctx.policy.claim_ttl_seconds, _seen_ttl(ctx), field],
            )
        claims = await pipe.execute()
    claimed = [pair for pair, claim in zip(pending, claims, strict=True) if claim == CLAIM_NEW]
    return claimed, sum(claim == CLAIM_IN_PROGRESS for claim in claims)


async def _prepare_job(
    ctx: PollContext,
    state: FeedState,
    entry: Entry,
    iid: str,
    fetched_at: str,
    deadline: float,
) -> ExtractJob | None:
    """The extract job of one new entry, with its page stored; None to leave it for later."""
    job = ExtractJob(item_id=iid, feed=state.ref, entry=entry, fetched_at=fetched_at)
    if not entry.url:
        return job
    if not page_needed(state, entry, ctx.fulltext):  # the feed's text is the article
        await ctx.redis.hincrby(ctx.keys.stats, STAT_PAGES_SKIPPED, 1)
        return job
    try:
        page = await _allowed_page(ctx, state, entry.url, deadline)
        if not is_html(page.content_type):
            reason = f"not an HTML page ({page.content_type})"
            log.info("article page skipped", extra=_fields(state, entry, "fetch", reason))
            return msgspec.structs.replace(job, page_url=page.final_url, page_error=reason)
        blob = page_store.encode(
            page.body, page.content_encoding, feed_url=state.url, url=page.final_url
        )
    except HostBusy:
        return None
    except FeedError as err:
        log.info("article page failed", extra=_fields(state, entry, "fetch", str(err)))
        return msgspec.structs.replace(job, page_url=entry.url, page_error=str(err))
    key = ctx.keys.html(iid)
    await ctx.redis.set(key, blob, ex=ctx.policy.html_ttl_seconds)
    return msgspec.structs.replace(job, html_key=key, page_url=page.final_url, charset=page.charset)


async def _allowed_page(
    ctx: PollContext, state: FeedState, url: str, deadline: float
) -> FetchResult:
    """The article page, kept as sent, if robots.txt lets us fetch it: the robots.txt of every
    hop's site (a feed's link through a redirector ends on another site), at the pace each asks
    (Crawl-delay)."""
    robots = ctx.robots
    return await ctx.fetcher.fetch_page(
        url,
        feed_url=state.url,
        limits=ctx.page_limits,
        deadline=deadline,
        encoded=True,
        before_hop=None if robots is None else _robots_check(ctx, robots, state, deadline),
    )


def _robots_check(
    ctx: PollContext, robots: RobotsCache, state: FeedState, deadline: float
) -> HopCheck:
    """The hop check of an article page's fetch: refuses what robots.txt disallows, and gives
    the hop's host's Crawl-delay."""

    async def allowed_hop(hop: str) -> float:
        verdict = await robots.check(
            ctx.fetcher, hop, feed_url=state.url, limits=ctx.page_limits, deadline=deadline
        )
        if verdict.refusal is not None:
            await ctx.redis.hincrby(ctx.keys.stats, STAT_PAGES_DISALLOWED, 1)
            raise DisallowedByRobots(state.url, verdict.refusal, url=hop)
        return verdict.crawl_delay

    return allowed_hop


async def _record_success(
    ctx: PollContext, state: FeedState, fetched: Fetched, now: float, start: float
) -> PollOutcome:
    result = fetched.result
    learned = _learned(state, fetched, now)
    record = msgspec.structs.replace(
        _success_record(ctx, state, fetched, now), rate=learned.rate, hint=learned.hint
    )
    if fetched.left_over:
        next_poll = ctx.schedule.next_poll_to_resume(now, ctx.rng)
    elif fetched.held_elsewhere:  # not this host's doing: no reason to come back within the floor
        next_poll = ctx.schedule.next_poll_soon(now, ctx.rng)
    else:
        next_poll = _pushed_or(
            ctx, state, ctx.schedule.next_poll_after_success(learned, now, ctx.rng), now
        )
    await registry.save_poll(ctx.redis, ctx.keys, state.id, record, next_poll)
    link = hub_link(fetched.parsed, result) if ctx.websub and fetched.parsed else None
    if link is not None:
        await note_hub(ctx.redis, ctx.keys, state.id, link, now)
    status = _success_status(fetched)
    stat = {"not_modified": STAT_NOT_MODIFIED, "unchanged": STAT_UNCHANGED}.get(status)
    duration = elapsed_ms(start)
    await _count(ctx, "304" if result.not_modified else "2xx", fetched.fetch_ms, stat)
    log.info(
        "polled",
        extra={
            "stage": "poll",
            "feed_url": state.url,
            "status": result.status,
            "items": fetched.queued,
            "reason": _left_reason(fetched),
            "duration_ms": duration,
        },
    )
    return PollOutcome(
        feed_id=state.id,
        feed_url=state.url,
        status=status,
        new_entries=fetched.queued,
        duration_ms=duration,
    )


def _pushed_or(ctx: PollContext, state: FeedState, next_poll: float, now: float) -> float:
    """A feed its hub pushes is polled at the WebSub safety interval at most often."""
    if ctx.websub is None or state.push_until is None or state.push_until <= now:
        return next_poll
    return max(next_poll, now + ctx.websub.poll_seconds)


async def ingest_push(ctx: PollContext, feed_id: str, body_key: str) -> int:
    """A hub's notification (stored by ``feedpipe websub``): its new entries taken as a poll
    takes them (the same claims and item ids: a pushed entry and a polled one are one item).
    Returns the entries queued; entries left over (a busy host) bring the next poll forward."""
    state = await registry.load_feed(ctx.redis, ctx.keys, feed_id)
    body = await load_push_body(ctx.redis, ctx.keys, body_key)
    if state is None or body is None:
        return 0
    deadline = time.monotonic() + ctx.policy.budget_seconds
    try:
        parsed = await _parse_off_loop(
            pushed_result(state, body), state.url, ctx.policy.max_entries
        )
    except FeedError as err:
        log.warning("pushed document refused", extra=_push_fields(state, str(err)))
        return 0
    queued, left_over, held = await take_new_entries(ctx, state, parsed, deadline)
    if left_over or held:
        await registry.mark_due(
            ctx.redis, ctx.keys, state.id, ctx.schedule.next_poll_to_resume(time.time(), ctx.rng)
        )
    log.info("pushed", extra=_push_fields(state, None) | {"items": queued})
    return queued


def _push_fields(state: FeedState, reason: str | None) -> dict[str, object]:
    return {"stage": "push", "feed_url": state.url, "reason": reason}


def _left_reason(fetched: Fetched) -> str | None:
    if not fetched.incomplete:
        return None
    return (
        f"{fetched.left_over} entries left for later, {fetched.held_elsewhere} held by another poll"
    )


def _success_status(fetched: Fetched) -> Literal["ok", "not_modified", "unchanged"]:
    if fetched.result.not_modified:
        return "not_modified"
    return "unchanged" if fetched.parsed is None else "ok"


def _learned(state: FeedState, fetched: Fetched, now: float) -> FeedState:
    """The feed's pace and hints after this poll (what the scheduler reads)."""
    parsed = fetched.parsed
    times = [] if parsed is None else _entry_times(parsed)
    # Left-over entries are counted when a later poll takes them, not twice.
    rate = estimate_rate(state, fetched.queued, times, now)
    feed_hint = parsed.min_interval if parsed else state.hint
    return msgspec.structs.replace(
        state, rate=rate, hint=hint_seconds(feed_hint, fetched.result.fresh_for)
    )


def _success_record(ctx: PollContext, state: FeedState, fetched: Fetched, now: float) -> PollRecord:
    result, parsed = fetched.result, fetched.parsed
    record = PollRecord(
        last_poll=now,
        last_status=str(result.status),
        errors=0,
        last_error=f"malformed feed (entries kept): {parsed.problem}"
        if parsed and parsed.problem
        else None,
        **_redirect_fields(ctx, state, result.permanent_url),
    )
    if not result.not_modified:
        # With entries left over, the next poll must see the whole feed again, not a 304.
        complete = not fetched.incomplete
        record = msgspec.structs.replace(
            record,
            last_full_fetch=now,
            etag=result.etag if complete else None,
            last_modified=result.last_modified if complete else None,
            body_hash=fetched.body_hash if complete else None,
        )
    if parsed and parsed.title and not state.title:
        record = msgspec.structs.replace(record, title=parsed.title)
    return record


class _Redirect(TypedDict, total=False):
    fetch_url: str
    redirect_target: str | None
    redirect_seen: int


def _redirect_fields(ctx: PollContext, state: FeedState, target: str | None) -> _Redirect:
    """A permanent redirect moves the feed only once seen on several polls in a row
    (FEEDPIPE_PERMANENT_REDIRECT_AFTER): a misconfigured server for an afternoon must not
    lose the feed its real address."""
    if target is None or target == state.fetch_target:
        return {"redirect_target": None, "redirect_seen": 0}
    seen = state.redirect_seen + 1 if target == state.redirect_target else 1
    if seen < ctx.policy.permanent_redirect_after:
        return {"redirect_target": target, "redirect_seen": seen}
    log.warning(
        "feed moved",
        extra={"stage": "poll", "feed_url": state.url, "reason": f"permanent redirect to {target}"},
    )
    return {"fetch_url": target, "redirect_target": None, "redirect_seen": 0}


def _entry_times(parsed: ParsedFeed) -> list[float]:
    times = []
    for entry in parsed.entries:
        if entry.published_at:
            times.append(datetime.fromisoformat(entry.published_at).timestamp())
    return times


async def _record_deferral(
    ctx: PollContext, state: FeedState, busy: HostBusy, now: float, start: float
) -> PollOutcome:
    """The feed's host had no free slot within the budget: poll it soon, not an error."""
    next_poll = ctx.schedule.next_poll_to_resume(now, ctx.rng)
    await registry.save_poll(ctx.redis, ctx.keys, state.id, PollRecord(), next_poll)
    await ctx.redis.hincrby(ctx.keys.stats, STAT_DEFERRED, 1)
    duration = elapsed_ms(start)
    log.info(
        "poll deferred",
        extra={"stage": "poll", "feed_url": state.url, "reason": busy.message},
    )
    return PollOutcome(
        feed_id=state.id, feed_url=state.url, status="deferred", duration_ms=duration
    )


async def _record_failure(
    ctx: PollContext, state: FeedState, err: FeedError, now: float, start: float
) -> PollOutcome:
    errors = state.errors + 1
    record = PollRecord(
        last_poll=now, last_status="error", errors=errors, last_error=f"{err.reason}: {err}"
    )
    retry_after = err.retry_after if isinstance(err, ServerError) else None
    next_poll = ctx.schedule.next_poll_after_error(state, errors, now, ctx.rng, retry_after)
    await registry.save_poll(ctx.redis, ctx.keys, state.id, record, next_poll)
    duration = elapsed_ms(start)
    await _count(ctx, _failure_class(err), duration, STAT_POLL_ERRORS)
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


async def _count(
    ctx: PollContext, outcome_class: str, fetch_ms: int, extra_stat: str | None
) -> None:
    """Counters and the latency histogram the exporter serves (pipeline/monitor.py)."""
    bucket = next((b for b in FETCH_LATENCY_BUCKETS_MS if fetch_ms <= b), None)
    async with ctx.redis.pipeline(transaction=False) as pipe:
        pipe.hincrby(ctx.keys.stats, STAT_POLLS, 1)
        pipe.hincrby(ctx.keys.stats, STAT_POLLS_BY_CLASS + outcome_class, 1)
        if extra_stat:
            pipe.hincrby(ctx.keys.stats, extra_stat, 1)
        pipe.hincrby(ctx.keys.fetch_latency, f"le:{bucket or 'inf'}", 1)
        pipe.hincrby(ctx.keys.fetch_latency, "sum_ms", fetch_ms)
        pipe.hincrby(ctx.keys.fetch_latency, "count", 1)
        await pipe.execute()


def _failure_class(err: FeedError) -> str:
    """The polls:<class> counter of a failed poll."""
    if isinstance(err, HTTPStatusError):
        return "5xx" if err.status >= 500 else "4xx"
    if isinstance(err, UnexpectedError):
        return "unexpected"
    if isinstance(err, NotAFeed | ResponseTooLarge):
        return "invalid"
    return "network"


def _seen_key(ctx: PollContext, state: FeedState, entry: Entry) -> str:
    return ctx.keys.entry_seen_of(state.id, entry.identity)


def _seen_ttl(ctx: PollContext) -> int:
    return ctx.policy.seen_ttl_seconds


def _fields(state: FeedState, entry: Entry, stage: str, reason: str) -> dict[str, object]:
    return {"stage": stage, "feed_url": state.url, "entry_url": entry.url, "reason": reason}
