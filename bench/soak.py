"""Soak: the whole pipeline for a long while over a loopback farm with faulty feeds, with a
worker killed every few minutes; then: were all the stories published, once?

    .venv/bin/python -m bench.soak                      # 30 minutes, 1,000 feeds
    .venv/bin/python -m bench.soak --minutes 5 --feeds 300

Starts its own redis-server (AOF, temporary directory, free loopback port), the fetch worker,
the extract worker and beat as `feedpipe run` does, and a farm on 127.0.0.1:

- healthy feeds publish a new entry every 2-20 minutes each (a schedule fixed at start, so
  the expected set is known), with an article page per entry;
- ``--faulty`` of the feeds (10 %) are broken in rotating ways: 500, 404, a hang past the read
  timeout, garbage instead of XML, a redirect loop;
- every ``--kill-every`` seconds one worker (fetch or extract, alternately) gets SIGKILL and is
  restarted at once by `feedpipe run`'s supervisor (its running tasks come back after the
  visibility timeout, 60 s here). Keep it at 60 s or more: five exits of one worker within
  five minutes is a crash loop to the supervisor, and it stops the run.

New entries stop appearing ``--drain`` seconds before the end, so everything announced has time
to come through. Reports entries expected vs items published vs published twice, missing
ones, feeds stuck (never polled, or overdue by more than 10 minutes), and the memory (RSS) of
every worker process over time. Writes a JSON report (``--out``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import signal
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
from aiohttp import web

from bench.harness import process_tree, rss_mb, start_pipeline
from pipeline.keys import STAT_REDELIVERED, Keys
from pipeline.normalize import feed_id
from tests.integration.hostile import rss, rss_item, text
from tests.integration.servers import ServerThread
from workers.embedded_redis import EmbeddedRedis
from workers.supervisor import Supervisor

KEYS = Keys()
FAULTS = ("500", "404", "hang", "garbage", "loop")


@dataclass
class Farm:
    """Which feed publishes what, when: fixed at start, so the expected items are known."""

    feeds: int
    faulty: float
    started: float
    stop_new_at: float
    rng: random.Random = field(default_factory=lambda: random.Random(7))

    def __post_init__(self) -> None:
        self.period = [self.rng.uniform(120, 1200) for _ in range(self.feeds)]
        self.offset = [self.rng.uniform(0, p) for p in self.period]
        broken = set(self.rng.sample(range(self.feeds), int(self.feeds * self.faulty)))
        self.fault = {n: FAULTS[i % len(FAULTS)] for i, n in enumerate(sorted(broken))}

    def entries(self, n: int, now: float) -> list[int]:
        """Entry numbers of feed ``n`` that exist at ``now`` (never after stop_new_at)."""
        until = min(now, self.stop_new_at) - self.started
        count = 1 + max(0, int((until - self.offset[n]) // self.period[n]))
        return list(range(count))

    def expected_urls(self, base: str) -> set[str]:
        return {
            f"{base}/page/{n}/{k}"
            for n in range(self.feeds)
            if n not in self.fault
            for k in self.entries(n, self.stop_new_at)
        }

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/feed/{n}", self._feed)
        app.router.add_get("/page/{n}/{k}", self._page)
        return app

    async def _feed(self, request: web.Request) -> web.StreamResponse:
        n = int(request.match_info["n"])
        fault = self.fault.get(n)
        if fault is not None:
            return await _broken(fault, request)
        now = time.time()
        entries = self.entries(n, now)[-20:]  # a feed shows its 20 newest
        items = [
            rss_item(f"soak {n}-{k}", text(f"soak summary {n}-{k}", 12), link=f"/page/{n}/{k}")
            for k in reversed(entries)
        ]
        return web.Response(text=rss(f"soak {n}", items), content_type="application/rss+xml")

    async def _page(self, request: web.Request) -> web.Response:
        slug = f"{request.match_info['n']}-{request.match_info['k']}"
        body = "".join(f"<p>{text(f'soak page {slug} {i}', 40)}</p>" for i in range(4))
        html = f"<html><head><title>{slug}</title></head><body><article>{body}</article>"
        return web.Response(text=html + "</body></html>", content_type="text/html")


async def _broken(fault: str, request: web.Request) -> web.StreamResponse:
    if fault == "hang":
        await asyncio.sleep(60)
    if fault == "garbage":
        return web.Response(body=os.urandom(2048), content_type="application/octet-stream")
    if fault == "loop":
        raise web.HTTPFound(str(request.url))
    return web.Response(status=int(fault) if fault.isdigit() else 500)


SOAK_SETTINGS = {
    "FEEDPIPE_HOST_MIN_GAP_SECONDS": "0",  # one host serves every feed of this farm
    "FEEDPIPE_HOST_MAX_IN_FLIGHT": "16",
    "FEEDPIPE_MIN_POLL_INTERVAL_SECONDS": "60",
    # Every feed polled at least every 3 minutes, so the drain period sees the end.
    "FEEDPIPE_MAX_POLL_INTERVAL_SECONDS": "180",
    "FEEDPIPE_READ_TIMEOUT_SECONDS": "10",
    "FEEDPIPE_VISIBILITY_TIMEOUT_SECONDS": "60",
    "FEEDPIPE_REDELIVER_AFTER_SECONDS": "60",  # lost jobs come back within the drain period
    "FEEDPIPE_MIN_TEXT_CHARS": "200",
    "FEEDPIPE_LOG_LEVEL": "INFO",
}


def kill(supervisor: Supervisor, name: str) -> None:
    """SIGKILL a worker's whole process group; the supervisor's next round restarts it."""
    os.killpg(supervisor.procs[name].pid, signal.SIGKILL)
    supervisor.procs[name].wait()


def memory_mb(supervisor: Supervisor) -> dict[str, float]:
    """RSS of each worker process (main and pool children), in MB."""
    return {
        f"{name}:{pid}": rss_mb(pid)
        for name, proc in supervisor.procs.items()
        for pid in process_tree(proc.pid)
    }


def register_feeds(client: redis.Redis, farm: ServerThread, feeds: int) -> None:
    now = time.time()
    for n in range(feeds):
        url = farm.url(f"/feed/{n}")
        fid = feed_id(url)
        client.hset(KEYS.feed(fid), mapping={"id": fid, "url": url, "tags": "[]", "interval": ""})
        client.zadd(KEYS.feeds_due, {fid: now + n * 0.05})  # an import spread over a minute


def outcome(client: redis.Redis, expected: set[str], faulty_urls: set[str]) -> dict[str, Any]:
    urls = [json.loads(f[b"item"])["url"] for _id, f in client.xrange(KEYS.output_stream)]
    twice = [url for url, n in Counter(urls).items() if n > 1]
    now = time.time()
    stuck = []
    for fid in client.zrange(KEYS.feeds_due, 0, -1):
        state = client.hgetall(KEYS.feed(fid.decode()))
        url = state[b"url"].decode()
        next_poll = float(state.get(b"next_poll", b"0") or 0)
        if url not in faulty_urls and (b"last_poll" not in state or next_poll < now - 600):
            stuck.append(url)
    return {
        "expected": len(expected),
        "published": len(set(urls) & expected),
        "published_twice": len(twice),
        "missing": sorted(expected - set(urls))[:20],
        "missing_count": len(expected - set(urls)),
        "unexpected": len(set(urls) - expected),
        "dead_lettered": client.xlen(KEYS.dead_letter_stream),
        # Extract jobs the broker lost and the ledger sent again; jobs still undecided.
        "redelivered": int(client.hget(KEYS.stats, STAT_REDELIVERED) or 0),
        "ledger_pending": client.zcard(KEYS.extract_pending),
        "feeds_stuck": stuck[:20],
        "feeds_stuck_count": len(stuck),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--faulty", type=float, default=0.1)
    parser.add_argument("--kill-every", type=float, default=180, help="seconds")
    parser.add_argument("--drain", type=float, default=240, help="seconds without new entries")
    parser.add_argument("--out", type=Path, default=Path("bench/reports/soak.json"))
    args = parser.parse_args()

    started = time.time()
    end = started + args.minutes * 60
    farm = Farm(args.feeds, args.faulty, started, stop_new_at=end - args.drain)
    server = ServerThread(farm.app())
    with tempfile.TemporaryDirectory(prefix="feedpipe-soak-") as tmp:
        store = EmbeddedRedis(Path(tmp) / "redis", persistent=True)
        store.start()
        client = redis.Redis.from_url(store.url)
        register_feeds(client, server, args.feeds)
        # `feedpipe run`'s processes under its supervisor (restarts exited workers, gives up on
        # a crash loop).
        pipeline = start_pipeline(store.url, Path(tmp), SOAK_SETTINGS)
        samples: list[dict[str, Any]] = []
        kills: list[dict[str, Any]] = []
        exits: list[dict[str, Any]] = []
        next_kill, victim = started + args.kill_every, "extract"
        try:
            while time.time() < end:
                time.sleep(min(30.0, max(0.0, end - time.time())))
                now = time.time()
                for name in pipeline.restart_dead():
                    exits.append({"at_s": round(now - started), "worker": name})
                if now >= next_kill and now < farm.stop_new_at:
                    kill(pipeline, victim)
                    pipeline.restart_dead()
                    kills.append({"at_s": round(now - started), "worker": victim})
                    victim = "fetch" if victim == "extract" else "extract"
                    next_kill = now + args.kill_every
                samples.append(
                    {
                        "at_s": round(now - started),
                        "published": client.xlen(KEYS.output_stream),
                        "memory_mb": memory_mb(pipeline),
                    }
                )
                print(
                    f"{samples[-1]['at_s']:>6} s  published {samples[-1]['published']}", flush=True
                )
            faulty_urls = {server.url(f"/feed/{n}") for n in farm.fault}
            result = outcome(
                client, farm.expected_urls(f"http://127.0.0.1:{server.http_port}"), faulty_urls
            )
        finally:
            pipeline.stop()
            store.stop()
            server.stop()
    report = {
        "command": " ".join(sys.argv),
        "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
        "finished": datetime.now(UTC).isoformat(),
        "settings": vars(args) | {"out": str(args.out)},
        "kills": kills,
        "unexpected_exits": exits,
        "result": result,
        "memory": _memory_summary(samples),
        "samples": samples,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(json.dumps({"result": result, "memory": report["memory"], "kills": len(kills)}, indent=1))


def _memory_summary(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Per process: RSS at its first and last sample and the peak (MB)."""
    series: dict[str, list[float]] = {}
    for sample in samples:
        for proc, mb in sample["memory_mb"].items():
            series.setdefault(proc, []).append(mb)
    return {
        proc: {
            "first": round(v[0], 1),
            "last": round(v[-1], 1),
            "peak": round(max(v), 1),
            "samples": len(v),
        }
        for proc, v in series.items()
    }


if __name__ == "__main__":
    main()
