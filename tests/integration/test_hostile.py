"""Hostile and broken servers, through the real pipeline: every case is polled by real Celery
workers against a private redis-server, in one batch with healthy feeds. For each case the
error recorded on the feed (or the items still published) is checked, and the workers must
still be alive. The SSRF guard runs as in production, with only 127.0.0.1/32 allowed."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis as sync_redis

from pipeline.models import FeedState
from pipeline.normalize import feed_id
from pipeline.registry import feed_state_from_hash
from tests.conftest import RedisServer
from tests.integration import hostile
from tests.integration.conftest import KEYS, Workers
from tests.integration.servers import ServerThread

pytestmark = pytest.mark.slow

HOSTILE_ENV = {
    "FEEDPIPE_ALLOW_PRIVATE_NETWORKS": "false",
    "FEEDPIPE_ALLOWED_NETWORKS": "127.0.0.1/32",
    "FEEDPIPE_CONNECT_TIMEOUT_SECONDS": "1",
    "FEEDPIPE_READ_TIMEOUT_SECONDS": "2",
    "FEEDPIPE_MAX_FEED_BYTES": str(hostile.MAX_FEED_BYTES),
    "FEEDPIPE_MAX_ENTRIES_PER_POLL": str(hostile.MAX_ENTRIES),
    "FEEDPIPE_MAX_REDIRECTS": "5",
}
HEALTHY = ("healthy-1", "healthy-2")


@dataclass
class Servers:
    http_port: int
    https_port: int
    raw_port: int

    def url(self, case: hostile.Case) -> str:
        if case.server == "https":
            return f"https://127.0.0.1:{self.https_port}{case.path}"
        port = self.raw_port if case.server == "raw" else self.http_port
        return f"http://127.0.0.1:{port}{case.path}"


@dataclass
class Outcome:
    servers: Servers
    states: dict[str, FeedState]
    items: dict[str, list[dict[str, Any]]]  # by feed URL
    workers: Workers
    polled_at: float


def all_cases() -> list[hostile.Case]:
    return [
        *hostile.cases(),
        *(
            hostile.Case(name, hostile.xml(hostile.one_item_feed(name)), titles=(f"{name} story",))
            for name in HEALTHY
        ),
    ]


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outcome]:
    cases = all_cases()
    thread = ServerThread(hostile.make_app(cases), tls=True, raw=hostile.garbage_http)
    servers = Servers(thread.http_port, thread.https_port, thread.raw_port)
    redis_server = RedisServer(tmp_path_factory.mktemp("hostile-redis"))
    workers = Workers(
        redis_server.url, tmp_path_factory.mktemp("hostile"), HOSTILE_ENV, node="hostile"
    )
    client = sync_redis.Redis.from_url(redis_server.url)
    try:
        urls = {case.name: servers.url(case) for case in cases}
        add_feeds(client, list(urls.values()))
        started = time.time()
        wait_until_polled(client, urls, cases, workers)
        yield Outcome(
            servers,
            {name: load_state(client, u) for name, u in urls.items()},
            items_by_feed(client),
            workers,
            started,
        )
    finally:
        workers.stop()
        client.close()
        redis_server.stop()
        thread.stop()


def add_feeds(client: sync_redis.Redis, urls: list[str]) -> None:
    """As registry.add_feeds does (sync here, the module runs no event loop of its own)."""
    now = time.time()
    for url in urls:
        fid = feed_id(url)
        client.hset(KEYS.feed(fid), mapping={"id": fid, "url": url, "tags": "[]", "interval": ""})
        client.zadd(KEYS.feeds_due, {fid: now})


def load_state(client: sync_redis.Redis, url: str) -> FeedState:
    return feed_state_from_hash(client.hgetall(KEYS.feed(feed_id(url))))


def items_by_feed(client: sync_redis.Redis) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for _id, fields in client.xrange(KEYS.output_stream):
        item = json.loads(fields[b"item"])
        found.setdefault(item["feed"]["url"], []).append(item)
    return found


def wait_until_polled(
    client: sync_redis.Redis, urls: dict[str, str], cases: list[hostile.Case], workers: Workers
) -> None:
    """Every feed polled once and the items settled (all expected, or none new for 5 s)."""
    expected_items = sum(len(c.titles) for c in cases)
    deadline = time.monotonic() + 120
    last, settled_at = -1, time.monotonic()
    while time.monotonic() < deadline:
        unpolled = [n for n, u in urls.items() if load_state(client, u).last_poll is None]
        published = client.xlen(KEYS.output_stream) + client.xlen(KEYS.duplicates_stream)
        if published != last:
            last, settled_at = published, time.monotonic()
        if not unpolled and (published >= expected_items or time.monotonic() - settled_at > 5):
            return
        time.sleep(0.5)
    pytest.fail(f"not polled: {unpolled}\n{workers.log('fetch')}\n{workers.log('extract')}")


@pytest.mark.parametrize("case", all_cases(), ids=lambda c: c.name)
def test_case_is_recorded_and_healthy_feeds_still_publish(
    case: hostile.Case, outcome: Outcome
) -> None:
    state = outcome.states[case.name]
    for part in case.error:
        assert part in (state.last_error or ""), f"{case.name}: {state.last_error!r}"
    if case.error and not case.titles:
        assert state.last_status == "error" and state.errors >= 1
        assert state.next_poll is not None and state.next_poll > outcome.polled_at
    titles = {i["title"] for i in outcome.items.get(outcome.servers.url(case), [])}
    assert set(case.titles) <= titles, f"{case.name}: published {sorted(titles)}"
    for name in HEALTHY:
        assert outcome.states[name].last_status == "200"
    assert outcome.workers.alive(), outcome.workers.log("fetch")


def items_of(outcome: Outcome, name: str) -> list[dict[str, Any]]:
    case = next(c for c in all_cases() if c.name == name)
    return outcome.items.get(outcome.servers.url(case), [])


def test_retry_after_is_honoured_per_feed_and_capped(outcome: Outcome) -> None:
    limited = outcome.states["rate-limited"]
    assert limited.next_poll is not None and limited.last_poll is not None
    assert limited.next_poll - limited.last_poll >= 7200 * 0.9
    # Retry-After in the year 2100: capped at FEEDPIPE_RETRY_AFTER_MAX_SECONDS (24 h).
    unavailable = outcome.states["unavailable"]
    assert unavailable.next_poll is not None and unavailable.last_poll is not None
    assert 86_400 * 0.85 <= unavailable.next_poll - unavailable.last_poll <= 86_400 * 1.15


def test_permanent_redirect_is_noted_not_yet_applied(outcome: Outcome) -> None:
    moved = outcome.states["moved"]
    assert moved.redirect_target == f"http://127.0.0.1:{outcome.servers.http_port}/moved-here"
    assert moved.redirect_seen == 1 and moved.fetch_url is None


def test_entity_tricks_expand_nothing(outcome: Outcome) -> None:
    for name in ("xxe", "laughs"):
        for item in items_of(outcome, name):
            assert "root:" not in item["text"] and "aaaaaaaaaa" not in item["text"]
            assert len(item["text"]) < 2000


def test_links_are_resolved_or_dropped(outcome: Outcome) -> None:
    (relative,) = items_of(outcome, "relative")
    assert relative["url"] == f"http://127.0.0.1:{outcome.servers.http_port}/relative-story?id=1"
    assert {i["url"] for i in items_of(outcome, "script-links")} == {None}
    assert {i["url"] for i in items_of(outcome, "no-links")} == {None}


def test_thousands_of_entries_are_capped_per_poll(outcome: Outcome) -> None:
    assert len(items_of(outcome, "bulk")) == hostile.MAX_ENTRIES


def test_charsets_decode_to_the_right_letters(outcome: Outcome) -> None:
    for name in ("cp1256-undeclared", "utf8-bom", "utf8-as-latin1"):
        (item,) = items_of(outcome, name)
        assert "می‌شود" in item["text"] or "پژوهش" in item["text"] or "تهران" in item["text"]
    (russian,) = items_of(outcome, "cp1251-prolog")
    assert "Городской совет" in russian["text"]
