"""Polling capacity: feed polls per second when every feed answers 304, the steady state of a
large deployment, against raw conditional GETs of the same feeds in the same run.

    .venv/bin/python -m bench.poll_bench                       # 10,000 feeds, 3 rounds
    .venv/bin/python -m bench.poll_bench --feeds 2000 --rounds 2

Every feed starts as a previous poll left it (its ETag stored, polled a moment ago); a round
makes them all due, the feeds of one host 1.1 s apart (as the scheduler's jitter spreads them
in a running deployment), and ends when every feed has been polled once more by the fetch
worker and beat of `feedpipe run` (dispatch, per-host politeness, conditional GET, schedule
update). By default every feed has its own host, so a round measures capacity; with
``--hosts`` below ``--feeds`` it also measures the politeness floor (feeds per host x 1.1 s).

- baseline: one process sending the same conditional GETs with aiohttp, as many in flight as
  the fetch worker allows (FEEDPIPE_REQUESTS_IN_FLIGHT): the HTTP part alone;
- feedpipe: polls/s over the whole round (dispatch latency included) and over its middle
  80 % (the steady rate), CPU per poll of each process, Redis memory per feed.

Target (issue 6): >= 500 polls/s on 2 cores. Writes bench/reports/poll.json.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
import redis
from redis.asyncio import Redis as AsyncRedis

from bench.feedfarm import Farm, FarmConfig, FarmServer, load_stories
from bench.harness import (
    KEYS,
    cpu_by_role,
    deployment,
    ratio,
    redis_pid,
    register_feeds,
    write_report,
)
from pipeline import registry
from pipeline.keys import STAT_NOT_MODIFIED
from pipeline.models import PollRecord
from pipeline.normalize import feed_id

TARGET = 500.0
HOST_SPACING = 1.1  # seconds between due times of one host's feeds (politeness gap: 1 s)


async def raw_conditional_gets(farm: Farm, in_flight: int) -> dict[str, Any]:
    """The same conditional GETs from one asyncio process: what HTTP alone costs."""
    now = time.time()
    requests = [(url, farm.feed_body(n, now)[1]) for n, url in enumerate(farm.feed_urls())]
    gate = asyncio.Semaphore(in_flight)
    statuses: dict[int, int] = {}

    async def get(session: aiohttp.ClientSession, url: str, etag: str) -> None:
        async with gate, session.get(url, headers={"If-None-Match": f'"{etag}"'}) as response:
            await response.read()
            statuses[response.status] = statuses.get(response.status, 0) + 1

    start = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(get(session, url, etag) for url, etag in requests))
    elapsed = time.perf_counter() - start
    return {
        "requests": len(requests),
        "in_flight": in_flight,
        "seconds": round(elapsed, 2),
        "requests_per_s": round(len(requests) / elapsed, 1),
        "statuses": statuses,
    }


SEED_AT_ONCE = 50  # concurrent writes: under redis-py's default pool of 100 connections


async def seed_polled_state(redis_url: str, farm: Farm, due: Sequence[float]) -> None:
    """What a first, full poll of each feed leaves behind: its validators and a recent full
    fetch (so no daily unconditional fetch is due), and feed ``n`` due at ``due[n]``."""
    client = AsyncRedis.from_url(redis_url)
    urls = farm.feed_urls()
    try:
        for start in range(0, len(urls), SEED_AT_ONCE):
            batch = range(start, min(start + SEED_AT_ONCE, len(urls)))
            await asyncio.gather(*(_seed_one(client, farm, n, urls[n], due[n]) for n in batch))
    finally:
        await client.aclose()


async def _seed_one(client: AsyncRedis, farm: Farm, n: int, url: str, due: float) -> None:
    _body, etag, modified = farm.feed_body(n, time.time())
    record = PollRecord(
        etag=f'"{etag}"',
        last_modified=modified.strftime("%a, %d %b %Y %H:%M:%S GMT"),
        last_poll=due - 600,
        last_full_fetch=due - 600,
        last_status="200",
        errors=0,
    )
    await registry.save_poll(client, KEYS, feed_id(url), record, due)


def not_modified(client: redis.Redis) -> int:
    return int(client.hget(KEYS.stats, STAT_NOT_MODIFIED) or 0)


def one_round(client: redis.Redis, farm: Farm, timeout: float) -> dict[str, Any]:
    """Make every feed due, then time until each has been polled (answered 304) again.

    The feeds of one host are due ``HOST_SPACING`` seconds apart, as the scheduler's jitter
    spreads them in a running deployment (all due at the same instant, they would measure
    the politeness limit: one request start per second per host)."""
    feeds, hosts = farm.config.feeds, farm.config.hosts
    base = not_modified(client)
    start, now = time.monotonic(), time.time()
    due = {
        feed_id(url): now + (n // hosts) * HOST_SPACING for n, url in enumerate(farm.feed_urls())
    }
    client.zadd(KEYS.feeds_due, due)
    marks: list[tuple[float, int]] = []
    while time.monotonic() - start < timeout:
        done = not_modified(client) - base
        marks.append((time.monotonic() - start, done))
        if done >= feeds:
            break
        time.sleep(0.2)
    elapsed, done = marks[-1]
    t10 = next(t for t, d in marks if d >= feeds * 0.1) if done >= feeds * 0.1 else elapsed
    t90 = next(t for t, d in marks if d >= feeds * 0.9) if done >= feeds * 0.9 else elapsed
    steady = feeds * 0.8 / (t90 - t10) if t90 > t10 else float("nan")
    return {
        "polls": done,
        "seconds": round(elapsed, 2),
        "polls_per_s": round(done / elapsed, 1),
        "steady_polls_per_s": round(steady, 1),
    }


def feedpipe_rounds(farm: Farm, rounds: int, settings: dict[str, str]) -> dict[str, Any]:
    feeds = farm.config.feeds

    def prepare(redis_url: str) -> None:
        register_feeds(redis_url, farm.feed_urls())
        # Not due until a round.
        asyncio.run(seed_polled_state(redis_url, farm, due=[4e9] * farm.config.feeds))

    with deployment(settings, roles=("fetch", "beat"), before_workers=prepare) as running:
        client = running.client
        memory_per_feed = client.info("memory")["used_memory"] / feeds
        cpu_before = cpu_by_role(running.supervisor, redis_pid(client))
        results = [one_round(client, farm, timeout=300) for _ in range(rounds)]
        cpu_after = cpu_by_role(running.supervisor, redis_pid(client))
        if any(r["polls"] < feeds for r in results):
            running.log_tails()
    polls = sum(r["polls"] for r in results)
    cpu = {k: round(cpu_after[k] - cpu_before.get(k, 0.0), 1) for k in cpu_after}
    return {
        "rounds": results,
        "polls_per_s": round(polls / sum(r["seconds"] for r in results), 1),
        "steady_polls_per_s": round(
            sum(r["steady_polls_per_s"] for r in results) / len(results), 1
        ),
        "cpu_seconds": cpu,
        "cpu_ms_per_poll": {k: round(v * 1000 / max(polls, 1), 3) for k, v in cpu.items()},
        "redis_bytes_per_feed": round(memory_per_feed),
        "settings": settings,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=10_000)
    parser.add_argument("--hosts", type=int, help="distinct origins (default: one per feed)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--fetch-concurrency", type=int, default=8, help="poll tasks at once")
    parser.add_argument("--requests-in-flight", type=int, default=64)
    parser.add_argument("--dispatch-interval", type=float, default=None, help="seconds")
    parser.add_argument("--out", type=Path, default=Path("bench/reports/poll.json"))
    args = parser.parse_args()

    config = FarmConfig(feeds=args.feeds, entries=5, hosts=args.hosts or args.feeds)
    farm = Farm(config, load_stories(None))  # 304s only: no page is ever served
    settings = {
        "FEEDPIPE_FETCH_CONCURRENCY": str(args.fetch_concurrency),
        "FEEDPIPE_REQUESTS_IN_FLIGHT": str(args.requests_in_flight),
    }
    if args.dispatch_interval is not None:
        settings["FEEDPIPE_DISPATCH_INTERVAL_SECONDS"] = str(args.dispatch_interval)
    in_flight = args.requests_in_flight
    with FarmServer(farm):
        print(f"baseline: {args.feeds} conditional GETs from one process ...", flush=True)
        raw = asyncio.run(raw_conditional_gets(farm, in_flight))
        print(
            f"  {raw['requests_per_s']} requests/s; feedpipe, {args.rounds} rounds ...", flush=True
        )
        pipeline = feedpipe_rounds(farm, args.rounds, settings)
        served = dict(farm.served)
    rate = pipeline["polls_per_s"]
    verdict = "met" if rate >= TARGET else "missed"
    print(
        f"feedpipe {rate} polls/s (steady {pipeline['steady_polls_per_s']}/s; target "
        f"{TARGET:g}: {verdict}) = {ratio(rate, raw['requests_per_s'])} of raw conditional GETs "
        f"({raw['requests_per_s']}/s); CPU per poll {pipeline['cpu_ms_per_poll']} ms"
    )
    write_report(
        args.out,
        {
            "farm": vars(config) | {"page_kb": list(config.page_kb)},
            "raw_conditional_gets": raw,
            "feedpipe": pipeline,
            "ratios": {"feedpipe_vs_raw": ratio(rate, raw["requests_per_s"])},
            "target": {"polls_per_s": TARGET, "verdict": verdict},
            "farm_served": served,
        },
    )


if __name__ == "__main__":
    main()
