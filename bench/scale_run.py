"""Scale run: a steady deployment of many feeds on many hosts, measured for scheduling lag.

    .venv/bin/python -m bench.scale_run                                # 100,000 feeds, 1,000 hosts
    .venv/bin/python -m bench.scale_run --feeds 10000 --hosts 100 --minutes 3

Every feed starts as a running deployment has it: its validators stored by an earlier poll
(so it answers 304) and its next poll due at a moment spread uniformly over its own interval.
Intervals are user-set per feed, log-normal around a median of 15 minutes (5 to 60 minutes),
so ~100,000 / 1,000 s = ~100 polls a second arrive on 1,000 loopback origins (100 feeds each,
one request a second at most per origin: the default politeness). `feedpipe run`'s fetch
workers and beat poll them for ``--minutes``.

**Scheduling lag** of a poll: from the moment its feed was due to the moment its request
reached the feed's origin (dispatch, the fetch queue, the wait for the origin's turn). Each
feed's first due time is the one this benchmark seeded, so the lag of every feed's first poll
within the run is known exactly; later polls of the same feed (short intervals) add load but
are not counted. Target (issue 21): p99 <= 5 s. Also written: Redis memory per feed (after the
seeding, with nothing else stored), polls per second, CPU per poll of each process.

The baseline is the schedule itself: the polls due in the run, against the polls made.
Writes bench/reports/scale_run.json.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import time
from pathlib import Path
from typing import Any

from bench.feedfarm import Farm, FarmConfig, FarmServer, load_stories
from bench.harness import cpu_by_role, deployment, redis_pid, register_feeds, write_report
from bench.poll_bench import seed_polled_state

TARGET_P99_S = 5.0
MEDIAN_INTERVAL_S = 900
INTERVAL_RANGE_S = (300, 3600)


def intervals(feeds: int, seed: int) -> list[int]:
    """Log-normal around MEDIAN_INTERVAL_S (sigma 0.6), clipped to INTERVAL_RANGE_S."""
    rng = random.Random(seed)
    low, high = INTERVAL_RANGE_S
    return [
        int(min(high, max(low, MEDIAN_INTERVAL_S * math.exp(rng.gauss(0, 0.6)))))
        for _ in range(feeds)
    ]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3) if ordered else math.nan


def _requests(farm: Farm) -> int:
    # list(): one step under the GIL, while the farm's thread keeps adding feeds to the dict.
    return sum(len(times) for times in list(farm.feed_requests.values()))


def lags(farm: Farm, due: list[float], start: float, end: float) -> list[float]:
    """Each feed due within [start, end]: from its due time to its first request after it."""
    seen = dict(farm.feed_requests)  # a copy: the farm's thread may still be serving
    found = []
    for n, at in enumerate(due):
        if not start <= at <= end:
            continue
        requests = [t for t in list(seen.get(n, [])) if t >= at - 1]
        found.append(requests[0] - at if requests else math.inf)
    return found


def run(args: argparse.Namespace) -> dict[str, Any]:
    config = FarmConfig(feeds=args.feeds, entries=1, hosts=args.hosts)
    farm = Farm(config, load_stories(None))  # 304s only: no page is ever served
    every = intervals(args.feeds, seed=7)
    with FarmServer(farm):
        rng = random.Random(11)
        ready_by: list[float] = []

        def prepare(redis_url: str) -> None:
            # Due times start after the workers are up (~30 s from here; then measured).
            begin = time.time() + args.startup_seconds
            ready_by.append(begin)
            due[:] = [begin + rng.uniform(0, every[n]) for n in range(args.feeds)]
            started = time.monotonic()
            register_feeds(redis_url, farm.feed_urls(), interval=every)
            asyncio.run(seed_polled_state(redis_url, farm, due))
            print(f"  seeded {args.feeds} feeds in {time.monotonic() - started:.0f} s", flush=True)

        due: list[float] = []
        settings = {"FEEDPIPE_FETCH_CONCURRENCY": str(args.fetch_concurrency)}
        with deployment(settings, roles=("fetch", "beat"), before_workers=prepare) as running:
            client = running.client
            memory = client.info("memory")["used_memory"]
            begin = ready_by[0]
            if time.time() > begin:
                raise SystemExit(
                    f"scale_run: seeding and startup took longer than --startup-seconds "
                    f"({args.startup_seconds}); the first due feeds would count as late"
                )
            time.sleep(begin - time.time())
            cpu_before = cpu_by_role(running.supervisor, redis_pid(client))
            requests_before = _requests(farm)
            time.sleep(args.minutes * 60)
            end = time.time()
            cpu_after = cpu_by_role(running.supervisor, redis_pid(client))
            polls = _requests(farm) - requests_before
            # Feeds due in the last 30 s may still be on their way: not counted.
            measured = lags(farm, due, begin, end - 30)
    cpu = {k: round(cpu_after[k] - cpu_before.get(k, 0.0), 1) for k in cpu_after}
    late = [x for x in measured if x > TARGET_P99_S]
    p99 = percentile(measured, 0.99)
    return {
        "feeds": args.feeds,
        "hosts": args.hosts,
        "minutes": args.minutes,
        "interval_s": {
            "median": sorted(every)[len(every) // 2],
            "min": min(every),
            "max": max(every),
        },
        "due_in_run": len(measured),
        "polls_in_run": polls,
        "polls_per_s": round(polls / (args.minutes * 60), 1),
        "scheduled_polls_per_s": round(sum(1 / i for i in every), 1),
        "lag_s": {
            "p50": percentile(measured, 0.5),
            "p95": percentile(measured, 0.95),
            "p99": p99,
            "max": round(max(measured), 3) if measured else math.nan,
            "over_target": len(late),
            "never_polled": sum(1 for x in measured if x == math.inf),
        },
        "redis_bytes_per_feed": round(memory / args.feeds),
        "cpu_seconds": cpu,
        "cpu_ms_per_poll": {k: round(v * 1000 / max(polls, 1), 3) for k, v in cpu.items()},
        "target": {
            "lag_p99_max_s": TARGET_P99_S,
            "verdict": "met" if p99 <= TARGET_P99_S else "missed",
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=100_000)
    parser.add_argument("--hosts", type=int, default=1_000)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--fetch-concurrency", type=int, default=8, help="poll tasks at once")
    parser.add_argument(
        "--startup-seconds", type=float, default=240, help="seeding and worker start, seconds"
    )
    parser.add_argument("--out", type=Path, default=Path("bench/reports/scale_run.json"))
    args = parser.parse_args()
    print(
        f"scale run: {args.feeds} feeds on {args.hosts} hosts, {args.minutes} min ...", flush=True
    )
    report = run(args)
    lag = report["lag_s"]
    print(
        f"{report['due_in_run']} feeds due in the run: scheduling lag p50 {lag['p50']} s, "
        f"p95 {lag['p95']} s, p99 {lag['p99']} s (target <= {TARGET_P99_S:g} s: "
        f"{report['target']['verdict']}); {report['polls_per_s']} polls/s "
        f"(scheduled {report['scheduled_polls_per_s']}/s); Redis "
        f"{report['redis_bytes_per_feed']} B per feed; CPU per poll {report['cpu_ms_per_poll']} ms"
    )
    write_report(args.out, report)


if __name__ == "__main__":
    main()
