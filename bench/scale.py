"""Scale on paper: worker processes and Redis memory for 10k / 100k / 1M feeds, from the costs
the other benchmarks measured (their JSON reports) and stated assumptions about the feeds.

    .venv/bin/python -m bench.scale                      # reads bench/reports/*.json
    .venv/bin/python -m bench.scale --articles-per-feed-day 20 --interval 300

Per-poll CPU (fetch worker, beat, Redis) and Redis bytes per feed come from bench/scale_run.py
(100,000 feeds on 1,000 hosts, steady state) when its report exists, else from
bench/poll_bench.py (rounds of 304 polls); per-article CPU (fetch worker: page download and
storage; extract worker; Redis) from bench/ingest_bench.py's unthrottled run; Redis bytes per
article from bench/memory_bench.py's 20,000 articles (else the ingest run). A process is counted
busy at most ``--utilization`` of a core (headroom for bursts and cold starts). Writes
bench/reports/scale.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from bench.harness import write_report

# Per published item in the window: bench/dedupe_bench.py's 824 B less the exact-dedupe marks.
DEDUPE_INDEX_BYTES = 720
# Per entry for FEEDPIPE_SEEN_TTL_DAYS: the seen mark (~150 B) and the URL and text marks (~105 B,
# kept up to a quarter longer): docs/operations.md.
SEEN_BYTES = 270


def load(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise SystemExit(f"{path} not found: run its benchmark first (docs/performance.md)")
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def plan(feeds: int, costs: dict[str, float], args: argparse.Namespace) -> dict[str, Any]:
    polls_s = feeds / args.interval
    articles_s = feeds * args.articles_per_feed_day / 86_400
    fetch_cores = (polls_s * costs["poll_fetch_ms"] + articles_s * costs["article_fetch_ms"]) / 1000
    extract_cores = articles_s * costs["article_extract_ms"] / 1000
    redis_cores = (polls_s * costs["poll_redis_ms"] + articles_s * costs["article_redis_ms"]) / 1000
    per_day = feeds * args.articles_per_feed_day
    stream_items = min(args.stream_maxlen, per_day * args.window_days)
    memory = (
        feeds * costs["feed_bytes"]
        + stream_items * costs["item_bytes"]
        + per_day * args.window_days * DEDUPE_INDEX_BYTES
        + per_day * args.seen_days * SEEN_BYTES
    )
    return {
        "feeds": feeds,
        "polls_per_s": round(polls_s, 1),
        "articles_per_s": round(articles_s, 2),
        "fetch_processes": math.ceil(fetch_cores / args.utilization),
        "extract_processes": math.ceil(extract_cores / args.utilization),
        "redis_cores": round(redis_cores, 2),
        "redis_gib": round(memory / 2**30, 1),
    }


def _bytes_per_article(reports: Path, ingest: dict[str, Any]) -> float:
    memory = reports / "memory.json"
    if memory.exists():
        data = json.loads(memory.read_text())
        return float(data["redis_used_memory_bytes"]) / max(data["articles"]["decided"], 1)
    return float(ingest["redis_used_memory_bytes"]) / max(ingest["decided"], 1)


def _poll_costs(reports: Path) -> dict[str, Any]:
    """Per-poll CPU and Redis bytes per feed: from bench/scale_run.py's steady run of many
    feeds on many hosts when it was run (realistic intervals, a full registry), else from
    bench/poll_bench.py's rounds of 304s."""
    steady = reports / "scale_run.json"
    if steady.exists():
        data: dict[str, Any] = json.loads(steady.read_text())
        return data
    return load(reports / "poll.json")["feedpipe"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reports", type=Path, default=Path("bench/reports"))
    parser.add_argument("--interval", type=float, default=600, help="mean seconds between polls")
    parser.add_argument("--articles-per-feed-day", type=float, default=10)
    parser.add_argument("--window-days", type=int, default=7, help="FEEDPIPE_DEDUPE_WINDOW_DAYS")
    parser.add_argument("--seen-days", type=int, default=30, help="FEEDPIPE_SEEN_TTL_DAYS")
    parser.add_argument("--stream-maxlen", type=int, default=100_000)
    parser.add_argument("--utilization", type=float, default=0.7)
    parser.add_argument("--out", type=Path, default=Path("bench/reports/scale.json"))
    args = parser.parse_args()

    poll = _poll_costs(args.reports)
    ingest = load(args.reports / "ingest.json")["feedpipe"]
    per_poll, per_article = poll["cpu_ms_per_poll"], ingest["cpu_ms_per_article"]
    costs = {
        "poll_fetch_ms": per_poll["fetch"] + per_poll.get("beat", 0.0),
        "poll_redis_ms": per_poll["redis"],
        "article_fetch_ms": per_article["fetch"],
        "article_extract_ms": per_article["extract"],
        "article_redis_ms": per_article["redis"],
        "feed_bytes": poll["redis_bytes_per_feed"],
        # Stream items and everything else an article leaves in Redis, from the largest run
        # (fixed overheads, like the marks' buckets, weigh less the more items there are).
        "item_bytes": _bytes_per_article(args.reports, ingest),
    }
    rows = [plan(feeds, costs, args) for feeds in (10_000, 100_000, 1_000_000)]
    print(
        f"assumptions: a poll every {args.interval:g} s per feed, {args.articles_per_feed_day:g} "
        f"new articles per feed per day, {args.utilization:.0%} busy per process"
    )
    print("| feeds | polls/s | articles/s | fetch processes | extract processes | Redis cores | Redis memory |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['feeds']:,} | {r['polls_per_s']:,} | {r['articles_per_s']:,} | "
            f"{r['fetch_processes']} | {r['extract_processes']} | {r['redis_cores']} | "
            f"{r['redis_gib']} GiB |"
        )
    assumptions = {k: v for k, v in vars(args).items() if k not in ("reports", "out")}
    write_report(args.out, {"assumptions": assumptions, "costs": costs, "plans": rows})


if __name__ == "__main__":
    main()
