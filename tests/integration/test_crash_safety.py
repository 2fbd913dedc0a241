"""Crash safety, proven by injecting faults into a real run: a loopback farm of 12 feeds x 25
entries, real worker subprocesses, a redis-server with AOF that the test can kill and restart.
At a random moment of the ingest (seeded, printed on failure) one fault strikes; afterwards
every entry served must be on the output stream exactly once: same URLs, no repeats, nothing
dead-lettered or withheld.

The workers run with short recovery times so a run takes seconds, not the production half
hour: visibility timeout 15 s (a task of a killed worker is redelivered), poll lease 30 s and
entry claim 30 s (a killed poll's feeds and entries are taken again), lost extract jobs sent
again after 10 s (pipeline/redeliver.py). FEEDPIPE_FAULT_REPEATS
repeats every fault with new random moments (default 1; `.ci/run` keeps the default).
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis as sync_redis
from aiohttp import web

from pipeline.normalize import feed_id
from tests.integration.conftest import KEYS, Workers
from tests.integration.hostile import rss, rss_item, text
from tests.integration.servers import ServerThread
from workers.embedded_redis import EmbeddedRedis

pytestmark = pytest.mark.slow

FEEDS, ENTRIES = 12, 25
TOTAL = FEEDS * ENTRIES
REPEATS = int(os.environ.get("FEEDPIPE_FAULT_REPEATS", "1"))
CRASH_ENV = {
    "FEEDPIPE_VISIBILITY_TIMEOUT_SECONDS": "15",
    "FEEDPIPE_POLL_LEASE_SECONDS": "30",
    "FEEDPIPE_CLAIM_TTL_SECONDS": "30",
    "FEEDPIPE_REDELIVER_AFTER_SECONDS": "10",
    "FEEDPIPE_MIN_POLL_INTERVAL_SECONDS": "2",
    "FEEDPIPE_POLL_INTERVAL_SECONDS": "3",
    "FEEDPIPE_MAX_POLL_INTERVAL_SECONDS": "5",
    "FEEDPIPE_DISPATCH_BATCH_SIZE": "3",
}


def farm_app(entries: int = ENTRIES) -> web.Application:
    """Feeds /feed/<n> of ``entries`` entries each, linking to pages /page/<n>/<j>."""
    now = datetime.now(UTC)

    async def feed(request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        items = [
            rss_item(
                f"farm {n}-{j}",
                text(f"summary {n}-{j}", 12),
                link=f"/page/{n}/{j}",
                extra=f"<pubDate>{(now - timedelta(minutes=j)):%a, %d %b %Y %H:%M:%S} +0000</pubDate>",
            )
            for j in range(entries)
        ]
        return web.Response(text=rss(f"farm {n}", items), content_type="application/rss+xml")

    async def page(request: web.Request) -> web.Response:
        slug = f"{request.match_info['n']}-{request.match_info['j']}"
        body = "".join(f"<p>{text(f'page {slug} {i}', 30)}</p>" for i in range(3))
        html = f"<html><head><title>farm {slug}</title></head><body><article>{body}</article>"
        return web.Response(text=html + "</body></html>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/feed/{n}", feed)
    app.router.add_get("/page/{n}/{j}", page)
    return app


@dataclass
class Run:
    redis: EmbeddedRedis
    workers: Workers
    client: sync_redis.Redis
    farm: ServerThread
    restarted: list[str] = field(default_factory=list)

    def published(self) -> int:
        return int(self.client.xlen(KEYS.output_stream))

    def wait_published(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self._safe_published() < count:
            self._restart_dead_workers()
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{self._safe_published()} of {count} published\n"
                    f"{self.workers.log('fetch')}\n{self.workers.log('extract')}"
                )
            time.sleep(0.25)

    def _restart_dead_workers(self) -> None:
        """What compose's restart policy and `feedpipe run` do: a worker that exited (kombu
        sometimes gives up with "Unrecoverable error" when Redis goes away) is started again."""
        for name, proc in self.workers.procs.items():
            if proc.poll() is not None:
                self.workers.restart(name)
                self.restarted.append(name)

    def _safe_published(self) -> int:
        try:
            return self.published()
        except sync_redis.ConnectionError:
            return -1  # Redis is being restarted by the test


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Run]:
    farm = ServerThread(farm_app())
    server = EmbeddedRedis(tmp_path / "redis", persistent=True)  # AOF, as in compose
    server.start()
    workers = Workers(server.url, tmp_path, CRASH_ENV, node="crash")
    client = sync_redis.Redis.from_url(server.url)
    now = time.time()
    for n in range(FEEDS):
        url = farm.url(f"/feed/{n}")
        fid = feed_id(url)
        client.hset(KEYS.feed(fid), mapping={"id": fid, "url": url, "tags": "[]", "interval": ""})
        client.zadd(KEYS.feeds_due, {fid: now})
    try:
        yield Run(server, workers, client, farm)
    finally:
        workers.stop()
        client.close()
        server.stop()
        farm.stop()


def kill_extract_worker(run: Run) -> None:
    run.workers.kill("extract")
    run.workers.restart("extract")


def kill_one_extract_child(run: Run) -> None:
    run.workers.kill_one_child("extract")


def kill_fetch_worker(run: Run) -> None:
    run.workers.kill("fetch")
    run.workers.restart("fetch")


def sigterm_extract_worker(run: Run) -> None:
    run.workers.kill("extract", signal.SIGTERM)  # warm shutdown, as `docker stop`
    run.workers.restart("extract")


def restart_redis(run: Run) -> None:
    run.redis.stop()  # SIGTERM: redis-server writes its AOF out
    run.redis.start()


def redis_outage(run: Run) -> None:
    run.redis.stop()
    time.sleep(60)  # unreachable for a minute: workers must wait, not crash-loop
    run.redis.start()


FAULTS: dict[str, Callable[[Run], None]] = {
    "extract-worker-sigkill": kill_extract_worker,
    "extract-child-sigkill": kill_one_extract_child,
    "fetch-worker-sigkill": kill_fetch_worker,
    "extract-worker-sigterm": sigterm_extract_worker,
    "redis-restart": restart_redis,
    "redis-outage": redis_outage,
}


@pytest.mark.parametrize("repeat", range(REPEATS))
@pytest.mark.parametrize("fault", FAULTS)
def test_every_entry_is_published_exactly_once_through_the_fault(
    run: Run, fault: str, repeat: int
) -> None:
    seed = random.randrange(10**6)
    moment = random.Random(seed).randint(TOTAL // 10, TOTAL // 2)
    context = f"fault {fault}, repeat {repeat}, struck after {moment} items (seed {seed})"
    run.wait_published(moment, 90)
    FAULTS[fault](run)
    run.wait_published(TOTAL, 180)
    context += f"; workers restarted after exiting: {run.restarted or 'none'}"
    time.sleep(3)  # anything published twice would arrive late: give it the chance
    items = [json.loads(f[b"item"]) for _id, f in run.client.xrange(KEYS.output_stream)]
    urls = [item["url"] for item in items]
    expected = {run.farm.url(f"/page/{n}/{j}") for n in range(FEEDS) for j in range(ENTRIES)}
    assert len(urls) == len(set(urls)) == TOTAL, context
    assert set(urls) == expected, context
    assert run.client.xlen(KEYS.duplicates_stream) == 0, context
    assert run.client.xlen(KEYS.dead_letter_stream) == 0, context
    assert run.workers.alive(), context + run.workers.log("extract")
    _assert_quiet_logs(run, fault)


def _assert_quiet_logs(run: Run, fault: str) -> None:
    """A Redis outage is logged once per interval per kind of error, not once per task or
    per beat tick (pipeline.logs.RepeatedErrorFilter): a few lines per process."""
    if fault != "redis-outage":
        return
    for name in ("fetch", "extract", "beat"):
        log = run.workers.logs[name].read_text(errors="replace")
        errors = sum(" ERROR " in line for line in log.splitlines())
        assert errors < 15, f"{name}: {errors} error lines logged for a one-minute outage"
