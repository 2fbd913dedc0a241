"""Polite cold start: how close `feedpipe run` comes to the politeness bound.

With default politeness (FEEDPIPE_HOST_MIN_GAP_SECONDS=1, FEEDPIPE_HOST_MAX_IN_FLIGHT=2) a host
gets at most one request start per second, so a cold start cannot end before its busiest host
has been asked for everything it serves: the **bound** is the largest number of requests one
host must serve (its feeds and their pages) times the gap. The ratio bound / time taken says
how much of that the pipeline achieves (1.0: the busiest host was never left idle).

A cold start is also bound by CPU (extraction: ~4,000 articles take the 2-core machine most
of a minute whatever the politeness), so each farm is also run with politeness off in the same
run, and the **effective bound** is the larger of the two bounds: ``ratio_end_to_end`` = effective
bound / polite time says how much politeness costs beyond the work itself; ``ratio_fetching``
= politeness bound / time until the farm saw its last request isolates the fetching.

Two farms (bench/feedfarm.py), each measured in fresh deployments:

- ``uniform``: 200 feeds x 20 entries on 200 hosts (a feed and its 20 pages per host: the
  ingest benchmark's farm; bound 21 s);
- ``skewed``: 60 feeds x 10 entries, 18 of them on 3 big hosts (6 feeds each: 66 requests,
  bound 66 s) and the other 42 on 42 hosts of their own.

Target (issue 21): >= 0.7 of the bound on both. Writes bench/reports/polite.json.

    .venv/bin/python -m bench.polite_bench      # ~5 min
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path
from typing import Any

from bench.feedfarm import Farm, FarmConfig, FarmServer, load_stories, shared_dir
from bench.harness import decided, deployment, register_feeds, wait_until, write_report

TARGET = 0.7
GAP_SECONDS = 1.0  # FEEDPIPE_HOST_MIN_GAP_SECONDS's default, which the runs use
FARMS = {
    "uniform": FarmConfig(feeds=200, entries=20, hosts=200),
    "skewed": FarmConfig(feeds=60, entries=10, hosts=45, big_hosts=3, big_feeds=18),
}


def bound_seconds(config: FarmConfig) -> tuple[float, int]:
    """(the politeness bound, the busiest host's requests): one feed request and ``entries``
    page requests per feed, at most one request start per gap per host."""
    per_host: dict[int, int] = {}
    for n in range(config.feeds):
        host = config.host_of(n)
        per_host[host] = per_host.get(host, 0) + 1 + config.entries
    busiest = max(per_host.values())
    return (busiest - 1) * GAP_SECONDS, busiest


def measure(name: str, config: FarmConfig) -> dict[str, Any]:
    polite = cold_start(config, {"FEEDPIPE_HOST_MIN_GAP_SECONDS": str(GAP_SECONDS)})
    unthrottled = cold_start(config, {"FEEDPIPE_HOST_MIN_GAP_SECONDS": "0"})
    bound, busiest = bound_seconds(config)
    effective = max(bound, unthrottled["seconds"])
    result = {
        "farm": vars(config) | {"page_kb": list(config.page_kb)},
        "bound_seconds": bound,
        "busiest_host_requests_needed": busiest,
        "requests_needed": config.feeds * (1 + config.entries),
        "polite": polite,
        "unthrottled": unthrottled,
        "effective_bound_seconds": effective,
        "ratio_end_to_end": round(effective / polite["seconds"], 3),
        "ratio_fetching": round(bound / polite["fetched_seconds"], 3),
    }
    print(
        f"{name}: polite {polite['decided']}/{polite['expected']} articles in "
        f"{polite['seconds']:.1f} s (fetching done at {polite['fetched_seconds']:.1f} s), "
        f"politeness off {unthrottled['seconds']:.1f} s; politeness bound {bound:.0f} s "
        f"(busiest host: {busiest} requests): {result['ratio_end_to_end']:.2f} of the "
        f"effective bound, fetching {result['ratio_fetching']:.2f} of the politeness bound "
        f"(target {TARGET}); {polite['requests_made']} requests for "
        f"{result['requests_needed']} needed",
        flush=True,
    )
    return result


def cold_start(config: FarmConfig, settings: dict[str, str]) -> dict[str, Any]:
    farm = Farm(config, load_stories(shared_dir()))
    with FarmServer(farm):
        expected = farm.prerender()
        with deployment(settings) as running:
            start = time.monotonic()
            register_feeds(running.redis_url, farm.feed_urls())
            done, last = wait_until(lambda: decided(running.client), expected, stall=180)
            elapsed = last - start
            if done < expected:
                running.log_tails()
        served = dict(farm.served)
        requests = sorted((len(times) for times in farm.host_requests.values()), reverse=True)
        busiest_times = max(farm.host_requests.values(), key=len, default=[])
        last_request = max((max(t) for t in farm.host_requests.values() if t), default=start)
    return {
        "settings": settings,
        "expected": expected,
        "decided": done,
        "seconds": round(elapsed, 2),
        # when the farm saw its last request: fetching done, extraction may still run
        "fetched_seconds": round(last_request - start, 2),
        "busiest_host_requests_made": requests[0] if requests else 0,
        "requests_made": sum(requests),
        "served": served,
        "busiest_host": _timeline(sorted(busiest_times), start),
    }


def _timeline(times: list[float], start: float) -> dict[str, float]:
    """When the busiest host was asked first and last, and its longest silence."""
    if not times:
        return {}
    gaps = [b - a for a, b in itertools.pairwise(times)]
    return {
        "first_s": round(times[0] - start, 2),
        "last_s": round(times[-1] - start, 2),
        "longest_idle_s": round(max(gaps, default=0.0), 2),
        "idle_over_gap_s": round(sum(g - GAP_SECONDS for g in gaps if g > GAP_SECONDS), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=sorted(FARMS), help="run one farm")
    parser.add_argument("--out", type=Path, default=Path("bench/reports/polite.json"))
    args = parser.parse_args()
    runs = {
        name: measure(name, config) for name, config in FARMS.items() if args.only in (None, name)
    }
    verdicts = {
        name: run["ratio_end_to_end"] >= TARGET and run["ratio_fetching"] >= TARGET
        for name, run in runs.items()
    }
    write_report(args.out, {"runs": runs, "target": TARGET, "met": verdicts})


if __name__ == "__main__":
    main()
