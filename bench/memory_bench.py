"""Memory: RSS of every worker process over a 20,000-article run; flat after warm-up?

    .venv/bin/python -m bench.memory_bench                     # 1,000 feeds x 20 entries
    .venv/bin/python -m bench.memory_bench --feeds 250         # 5,000 articles

`feedpipe run`'s processes on their own redis-server ingest the whole farm from a cold start
(per-host politeness off, as in the unthrottled ingest run: memory is the question here).
Every few seconds the RSS of each process is read from /proc: the fetch and extract workers'
main processes, their pool processes (recycled by --max-tasks-per-child, so reported per
role: the largest live one), beat, and redis-server. Warm-up ends when a quarter of the
articles are decided; growth is the last sample over the warm-up sample (and the peak over
it). The baseline is each process's own RSS at the end of warm-up.

Target (issue 6): no process grows more than 10 % after warm-up. Writes
bench/reports/memory.json.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from bench.feedfarm import Farm, FarmConfig, FarmServer, load_stories, shared_dir
from bench.harness import (
    Deployment,
    decided,
    deployment,
    process_tree,
    redis_pid,
    register_feeds,
    rss_mb,
    write_report,
)
from workers.supervisor import Supervisor

TARGET_GROWTH = 0.10
WARMUP_SHARE = 0.25


def sample(supervisor: Supervisor, redis_process: int) -> dict[str, float]:
    """RSS (MB) by role: main processes, and the largest live pool process of each worker."""
    found = {"redis": rss_mb(redis_process)}
    for name, proc in supervisor.procs.items():
        main, *children = process_tree(proc.pid)
        found[name] = rss_mb(main)
        if children:
            found[f"{name}-pool (largest)"] = max(rss_mb(c) for c in children)
    return found


def watch_memory(
    running: Deployment, expected: int, start: float, every: float
) -> tuple[list[dict[str, Any]], int]:
    """Sample every ``every`` seconds until all articles are decided (or 90 s without one)."""
    series: list[dict[str, Any]] = []
    pid, stalled_since, last = redis_pid(running.client), time.monotonic(), -1
    while True:
        count = decided(running.client)
        series.append(
            {
                "at_s": round(time.monotonic() - start, 1),
                "decided": count,
                "rss_mb": sample(running.supervisor, pid),
            }
        )
        if count != last:
            stalled_since, last = time.monotonic(), count
        if count >= expected or time.monotonic() - stalled_since > 90:
            return series, count
        if len(series) % 12 == 0:
            print(f"{series[-1]['at_s']:>6} s  {count}/{expected} decided", flush=True)
        time.sleep(every)


def growth(series: list[dict[str, Any]], warm_index: int) -> dict[str, dict[str, float]]:
    out = {}
    for role in series[-1]["rss_mb"]:
        values = [s["rss_mb"].get(role, 0.0) for s in series]
        warm = values[warm_index] or max(values)
        out[role] = {
            "warm_mb": round(warm, 1),
            "last_mb": round(values[-1], 1),
            "peak_mb": round(max(values[warm_index:]), 1),
            "growth": round(values[-1] / warm - 1, 3) if warm else 0.0,
            "peak_growth": round(max(values[warm_index:]) / warm - 1, 3) if warm else 0.0,
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--entries", type=int, default=20)
    parser.add_argument("--every", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("--out", type=Path, default=Path("bench/reports/memory.json"))
    args = parser.parse_args()

    config = FarmConfig(feeds=args.feeds, entries=args.entries, hosts=args.feeds)
    farm = Farm(config, load_stories(shared_dir()))
    expected = args.feeds * args.entries
    # Politeness off: memory is the question here, and 20,000 pages from a cold start at one
    # request per second per host would take longer than the 10 minutes a benchmark gets.
    with FarmServer(farm), deployment({"FEEDPIPE_HOST_MIN_GAP_SECONDS": "0"}) as running:
        client = running.client
        start = time.monotonic()
        register_feeds(running.redis_url, farm.feed_urls())
        series, count = watch_memory(running, expected, start, args.every)
        redis_memory = client.info("memory")["used_memory"]
        if count < expected:
            running.log_tails()
    warm_index = next(i for i, s in enumerate(series) if s["decided"] >= expected * WARMUP_SHARE)
    result = growth(series, warm_index)
    worst = max(result.items(), key=lambda kv: kv[1]["growth"])
    verdict = "met" if worst[1]["growth"] <= TARGET_GROWTH else "missed"
    for role, figures in result.items():
        print(f"{role:>24}: warm {figures['warm_mb']} MB, last {figures['last_mb']} MB, "
              f"peak {figures['peak_mb']} MB, growth {figures['growth']:+.1%}")
    print(
        f"{series[-1]['decided']}/{expected} articles in {series[-1]['at_s']} s; largest growth "
        f"after warm-up {worst[1]['growth']:+.1%} ({worst[0]}; target <= {TARGET_GROWTH:.0%}: "
        f"{verdict}); Redis {redis_memory / 2**20:.0f} MB"
    )
    write_report(
        args.out,
        {
            "farm": vars(config) | {"page_kb": list(config.page_kb)},
            "articles": {"expected": expected, "decided": series[-1]["decided"]},
            "seconds": series[-1]["at_s"],
            "warmup_ends_at_s": series[warm_index]["at_s"],
            "processes": result,
            "redis_used_memory_bytes": redis_memory,
            "target": {"max_growth": TARGET_GROWTH, "verdict": verdict, "worst": worst[0]},
            "series": series,
        },
    )


if __name__ == "__main__":
    main()
