"""The `feedpipe` command as a user runs it: subprocesses, real Redis, loopback feeds."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import redis as sync_redis

from pipeline.models import PollRecord
from pipeline.subscribe import StreamSubscriber
from tests.integration.conftest import KEYS

FEEDPIPE = [sys.executable, "-m", "workers.cli"]


def cli_env(redis_url: str | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDPIPE_")}
    if redis_url:
        env["FEEDPIPE_REDIS_URL"] = redis_url
    return env | extra


def run_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """`feedpipe run` with its own Redis in ``tmp_path``, quick to dispatch, on loopback feeds."""
    return cli_env(
        None,
        FEEDPIPE_DATA_DIR=str(tmp_path / "data"),
        FEEDPIPE_DISPATCH_INTERVAL_SECONDS="0.5",
        FEEDPIPE_EXTRACT_CONCURRENCY="1",
        FEEDPIPE_FETCH_CONCURRENCY="1",
        FEEDPIPE_ALLOW_PRIVATE_NETWORKS="true",  # the feeds are on 127.0.0.1
        **extra,
    )


def feedpipe(
    *args: str, env: dict[str, str], check: bool = True
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [*FEEDPIPE, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    if check:
        assert done.returncode == 0, done.stderr
    return done


@pytest.fixture
def clean_redis(redis_server: Any) -> sync_redis.Redis:
    client = sync_redis.Redis.from_url(redis_server.url)
    for key in client.scan_iter("feedpipe:*"):
        client.delete(key)
    return client


def test_feeds_import_add_ls_rm(
    redis_server: Any, clean_redis: sync_redis.Redis, tmp_path: Path
) -> None:
    # A database no worker consumes: the session's workers (started by other test modules)
    # would poll these feeds and make them "erroring" before `feeds ls` reads them as "new".
    url = redis_server.url.rsplit("/", 1)[0] + "/9"
    sync_redis.Redis.from_url(url).flushdb()
    env = cli_env(url)
    yaml_file = tmp_path / "feeds.yaml"
    yaml_file.write_text(
        "feeds:\n  - url: https://a.example/rss\n    title: A\n    tags: [fa]\n"
        "  - url: https://b.example/atom\n    interval: 300\n"
    )
    opml = tmp_path / "subs.opml"
    opml.write_text(
        '<opml version="2.0"><body><outline text="News">'
        '<outline text="C" xmlUrl="https://c.example/feed"/></outline></body></opml>'
    )
    assert "2 new" in feedpipe("feeds", "import", str(yaml_file), env=env).stdout
    assert "1 new" in feedpipe("feeds", "import", str(opml), env=env).stdout
    assert "0 new, 2 updated" in feedpipe("feeds", "import", str(yaml_file), env=env).stdout
    feedpipe(
        "feeds",
        "add",
        "https://d.example/rss",
        "--no-discover",
        "--tag",
        "ar",
        "--tag",
        "agency",
        env=env,
    )

    rows = [
        json.loads(line) for line in feedpipe("feeds", "ls", "--json", env=env).stdout.splitlines()
    ]
    by_url = {r["url"]: r for r in rows}
    assert sorted(by_url) == [
        "https://a.example/rss",
        "https://b.example/atom",
        "https://c.example/feed",
        "https://d.example/rss",
    ]
    assert by_url["https://a.example/rss"]["tags"] == ["fa"]
    assert by_url["https://b.example/atom"]["interval"] == 300
    assert by_url["https://c.example/feed"]["tags"] == ["News"]
    assert by_url["https://d.example/rss"]["tags"] == ["ar", "agency"]
    assert {"last_poll", "last_status", "errors", "last_error", "next_poll", "items"} <= set(
        rows[0]
    )
    assert {r["health"] for r in rows} == {"new"}
    table = feedpipe("feeds", "ls", env=env).stdout
    assert "https://a.example/rss  [new]" in table and "4 feed(s), 0 failing" in table

    feedpipe("feeds", "rm", "https://a.example/rss", env=env)
    assert "https://a.example/rss" not in feedpipe("feeds", "ls", env=env).stdout
    missing = feedpipe("feeds", "rm", "https://nope.example/", env=env, check=False)
    assert missing.returncode != 0 and "no such feed" in missing.stderr


def test_bad_input_gets_clear_errors(redis_server: Any, tmp_path: Path) -> None:
    env = cli_env(redis_server.url)
    bad = tmp_path / "bad.yaml"
    bad.write_text("feeds:\n  - url: not-a-url\n")
    done = feedpipe("feeds", "import", str(bad), env=env, check=False)
    assert done.returncode != 0 and "bad.yaml: feeds[0]" in done.stderr
    done = feedpipe("feeds", "add", "ftp://x.example/", env=env, check=False)
    assert done.returncode != 0 and "absolute http(s) URL" in done.stderr
    done = feedpipe("feeds", "ls", env=cli_env("http://wrong"), check=False)
    assert done.returncode != 0 and "FEEDPIPE_REDIS_URL" in done.stderr
    done = feedpipe("feeds", "ls", env=cli_env(None, FEEDPIPE_DATA_DIR=str(tmp_path)), check=False)
    assert done.returncode != 0 and "FEEDPIPE_REDIS_URL is not set" in done.stderr


async def feedpipe_async(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    """`feedpipe` without blocking the loop that serves the test's own HTTP server."""
    proc = await asyncio.create_subprocess_exec(
        *FEEDPIPE, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_feeds_add_discovers_the_feed_of_a_site(
    aiohttp_server: Any, redis_server: Any, clean_redis: sync_redis.Redis
) -> None:
    from aiohttp import web

    from tests.integration.hostile import one_item_feed

    async def home(_r: web.Request) -> web.Response:
        page = '<html><head><link rel="alternate" type="application/rss+xml" href="/news/rss">'
        return web.Response(text=page + "</head><body>News</body></html>", content_type="text/html")

    async def blog(_r: web.Request) -> web.Response:
        return web.Response(
            text="<html><body>A blog, no link</body></html>", content_type="text/html"
        )

    async def feed(_r: web.Request) -> web.Response:
        return web.Response(text=one_item_feed("found"), content_type="application/rss+xml")

    sites = []
    for page, feed_path in ((home, "/news/rss"), (blog, "/rss.xml")):
        app = web.Application()
        app.router.add_get("/", page)
        app.router.add_get(feed_path, feed)
        sites.append(await aiohttp_server(app, host="127.0.0.1"))
    env = cli_env(redis_server.url, FEEDPIPE_ALLOW_PRIVATE_NETWORKS="true")
    for server, feed_path in zip(sites, ("/news/rss", "/rss.xml"), strict=True):
        code, out, err = await feedpipe_async("feeds", "add", str(server.make_url("/")), env=env)
        assert code == 0, err
        assert f"added {server.make_url(feed_path)}" in out
    # A feed URL is added as it is; nothing at all is an error that says what was tried.
    direct = str(sites[0].make_url("/news/rss"))
    code, out, _ = await feedpipe_async("feeds", "add", direct, env=env)
    assert code == 0 and f"updated {direct}" in out
    empty = web.Application()
    nothing = await aiohttp_server(empty, host="127.0.0.1")
    code, _, err = await feedpipe_async("feeds", "add", str(nothing.make_url("/")), env=env)
    assert code != 0 and "HTTP 404" in err and "--no-discover" in err
    # The SSRF guard applies to the CLI too.
    strict = cli_env(redis_server.url)
    code, _, err = await feedpipe_async("feeds", "add", str(sites[0].make_url("/")), env=strict)
    assert code != 0 and "loopback" in err and "FEEDPIPE_ALLOW_PRIVATE_NETWORKS" in err


def publish_raw(client: sync_redis.Redis, title: str) -> None:
    item = {
        "schema": 1,
        "title": title,
        "text": f"Body of {title}.",
        "source": "Agency",
        "published_at": "2025-12-13T06:00:00Z",
        "fetched_at": "2025-12-13T07:00:00Z",
    }
    client.xadd(KEYS.output_stream, {"item": json.dumps(item, ensure_ascii=False)})


def test_tail_consumer_group_acks_and_resumes(
    redis_server: Any, clean_redis: sync_redis.Redis
) -> None:
    env = cli_env(redis_server.url)
    for n in range(1, 4):
        publish_raw(clean_redis, f"Story {n}")
    first = feedpipe(
        "tail", "--group", "app", "--from-start", "--count", "1", "--format", "text", env=env
    ).stdout
    assert first == "date 2025-12-13 Agency\nStory 1\n\nBody of Story 1.\n\n"
    # A restarted consumer of the same group resumes after what it acked.
    second = feedpipe("tail", "--group", "app", "--count", "2", env=env).stdout.splitlines()
    assert [json.loads(line)["title"] for line in second] == ["Story 2", "Story 3"]
    assert clean_redis.xpending(KEYS.output_stream, "app")["pending"] == 0


def test_routes_come_from_the_feeds_file_and_can_be_listed_and_tailed(
    redis_server: Any, clean_redis: sync_redis.Redis, tmp_path: Path
) -> None:
    url = redis_server.url.rsplit("/", 1)[0] + "/9"  # no worker consumes this database
    client = sync_redis.Redis.from_url(url)
    client.flushdb()
    env = cli_env(url)
    feeds_file = tmp_path / "feeds.yaml"
    feeds_file.write_text(
        "feeds:\n  - url: https://a.example/rss\n"
        "routes:\n  - name: persian\n    languages: [fa]\n"
        "  - name: oil\n    match: '(?i)oil|نفت'\n    tags: [energy]\n"
    )
    done = feedpipe("feeds", "import", str(feeds_file), env=env)
    assert "2 route(s) (version " in done.stdout
    listed = feedpipe("routes", "ls", env=env).stdout.splitlines()
    assert listed[0].split()[:3] == ["persian", "feedpipe:items:route:persian", "0"]
    assert "tags energy; match /(?i)oil|نفت/" in listed[1]
    client.xadd(KEYS.route_stream("persian"), {"item": json.dumps({"title": "خبر"})})
    tailed = feedpipe("tail", "--stream", "persian", "--from-start", "--count", "1", env=env)
    assert json.loads(tailed.stdout)["title"] == "خبر"
    [row, _] = [
        json.loads(line) for line in feedpipe("routes", "ls", "--json", env=env).stdout.splitlines()
    ]
    assert row["length"] == 1 and row["groups"][0]["group"] == "feedpipe-tail"
    assert row["groups"][0]["lag"] == 0
    done = feedpipe("tail", "--stream", "nope", env=env, check=False)
    assert (
        done.returncode != 0
        and "--stream 'nope': no such route (routes: persian, oil)" in done.stderr
    )

    feeds_file.write_text("feeds: []\nroutes:\n  - name: x\n    match: '(a)\\1'\n")
    done = feedpipe("feeds", "import", str(feeds_file), env=env, check=False)
    assert done.returncode != 0 and "routes[0].match: not a valid RE2 pattern" in done.stderr
    assert "oil " in feedpipe("routes", "ls", env=env).stdout  # nothing written
    feeds_file.write_text("feeds: []\nroutes: []\n")
    feedpipe("feeds", "import", str(feeds_file), env=env)
    assert feedpipe("routes", "ls", env=env).stdout.startswith("no routes")


def test_subscriber_gets_unacked_items_again_after_a_crash(
    redis_server: Any, clean_redis: sync_redis.Redis
) -> None:
    publish_raw(clean_redis, "Unacked")
    crashed = StreamSubscriber(
        clean_redis, KEYS.output_stream, "svc", "c1", from_start=True, block_ms=10
    )
    [(entry_id, item)] = crashed.read()
    assert item["title"] == "Unacked"  # ... and the consumer dies before XACK
    restarted = StreamSubscriber(clean_redis, KEYS.output_stream, "svc", "c1", block_ms=10)
    assert [i["title"] for _id, i in restarted.read()] == ["Unacked"]
    restarted.ack(entry_id)
    assert restarted.read() == []


def test_items_of_a_dead_consumer_are_taken_over_after_the_idle_time(
    redis_server: Any, clean_redis: sync_redis.Redis
) -> None:
    for n in range(3):
        publish_raw(clean_redis, f"Orphan {n}")
    dead = StreamSubscriber(clean_redis, KEYS.output_stream, "svc", "dies", from_start=True)
    assert len(dead.read(count=2)) == 2  # ... and this consumer never comes back
    other = StreamSubscriber(
        clean_redis, KEYS.output_stream, "svc", "lives", block_ms=10, claim_idle_ms=300
    )
    # Too early: the dead one's entries are left alone; the undelivered one is read.
    first = other.read()
    assert [i["title"] for _id, i in first] == ["Orphan 2"]
    other.ack(*(entry_id for entry_id, _ in first))
    time.sleep(0.4)
    taken = other.read()
    assert [i["title"] for _id, i in taken] == ["Orphan 0", "Orphan 1"]
    other.ack(*(entry_id for entry_id, _ in taken))
    assert clean_redis.xpending(KEYS.output_stream, "svc")["pending"] == 0
    # The same through `feedpipe tail --claim-idle`.
    publish_raw(clean_redis, "Orphan 3")
    dead.read()
    time.sleep(0.3)
    env = cli_env(redis_server.url)
    out = feedpipe(
        "tail", "--group", "svc", "--consumer", "cli", "--claim-idle", "0.2", "--count", "1",
        env=env,
    ).stdout  # fmt: skip
    assert json.loads(out)["title"] == "Orphan 3"


def test_run_without_redis_server_binary_says_what_to_do(tmp_path: Path) -> None:
    env = cli_env(None, FEEDPIPE_DATA_DIR=str(tmp_path), PATH=str(Path(sys.executable).parent))
    done = feedpipe("run", env=env, check=False)
    assert done.returncode != 0
    assert "redis-server was not found" in done.stderr and "FEEDPIPE_REDIS_URL" in done.stderr


async def test_run_starts_its_own_redis_and_stops_everything(
    aiohttp_server: Any, tmp_path: Path
) -> None:
    from tests.integration.test_pipeline import english_feed, serve, story, url

    feed = english_feed(story("embedded", "Embedded Redis works", 6))
    _site, server = await serve(aiohttp_server, [feed])
    feeds_file = tmp_path / "feeds.yaml"
    feeds_file.write_text(
        f"feeds:\n  - url: {url(server, feed.path)}\n"
        "routes:\n  - name: english\n    languages: [en]\n  - name: other\n    languages: [fa]\n"
    )
    env = run_env(tmp_path)
    proc = await asyncio.create_subprocess_exec(
        *FEEDPIPE,
        "run",
        "--feeds",
        str(feeds_file),
        "--summary-interval",
        "1",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    banner = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
    redis_url = banner.split("Redis ")[1].split(";")[0]
    client = sync_redis.Redis.from_url(redis_url)
    summary = ""
    deadline = time.monotonic() + 60
    while client.xlen(KEYS.output_stream) < 1:
        assert time.monotonic() < deadline, "no item from `feedpipe run`"
        summary = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
    item = json.loads(client.xrange(KEYS.output_stream)[0][1][b"item"])
    assert item["title"] == "Embedded Redis works"
    assert "2 route(s)" in banner
    [(_, routed)] = client.xrange(KEYS.route_stream("english"))
    assert json.loads(routed[b"item"])["id"] == item["id"]  # in the same script run
    assert client.xlen(KEYS.route_stream("other")) == 0
    while "published" not in summary:
        summary = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
    assert "feeds 1" in summary

    # A worker killed outright (OOM killer, kombu giving up on a lost Redis) is restarted.
    extract = subprocess.run(
        ["pgrep", "-f", f"extract-{proc.pid}@"], capture_output=True, text=True, check=True
    ).stdout.split()[0]
    os.killpg(os.getpgid(int(extract)), signal.SIGKILL)
    assert proc.stderr is not None
    restarted = ""
    while "restarted" not in restarted:
        restarted = (await asyncio.wait_for(proc.stderr.readline(), 30)).decode()
    assert "extract exited unexpectedly; restarted it" in restarted

    proc.send_signal(signal.SIGINT)  # Ctrl-C
    assert await asyncio.wait_for(proc.wait(), 90) == 0
    with pytest.raises(sync_redis.ConnectionError):
        client.ping()
    for pattern in (str(tmp_path), f"-{proc.pid}@"):  # beat's schedule path, worker node names
        leftovers = subprocess.run(["pgrep", "-f", pattern], capture_output=True, check=False)
        assert leftovers.stdout == b"", f"processes left running: {pattern}"
    assert not (tmp_path / "data" / "redis" / "redis.url").exists()


def test_demo_once_prints_every_item(tmp_path: Path) -> None:
    env = cli_env(None, FEEDPIPE_EXTRACT_CONCURRENCY="1", FEEDPIPE_FETCH_CONCURRENCY="1")
    done = subprocess.run(
        [*FEEDPIPE, "demo", "--once", "--timeout", "120"],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=200,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("date 20") == 6
    assert "Loopback Daily" in done.stdout


async def test_status_shows_workers_queues_feeds_and_consumers(
    redis_server: Any, redis: Any
) -> None:
    from pipeline import registry
    from tests.integration.conftest import add_feeds

    ids = await add_feeds(
        redis, "https://ok.example/rss", "https://bad.example/rss", "https://worse.example/rss"
    )
    # Out of the session workers' way; states written as polls would leave them.
    await redis.zadd(KEYS.feeds_due, dict.fromkeys(ids, time.time() + 3600))
    ok, bad, worse = ids
    await registry.save_poll(
        redis,
        KEYS,
        ok,
        PollRecord(errors=0, last_status="200", last_poll=time.time()),
        time.time() + 600,
    )
    await registry.save_poll(
        redis,
        KEYS,
        bad,
        PollRecord(errors=2, last_error="ServerError: HTTP 503"),
        time.time() + 600,
    )
    await registry.save_poll(
        redis,
        KEYS,
        worse,
        PollRecord(errors=7, last_error="ClientError: HTTP 410 Gone"),
        time.time() + 600,
    )
    for n in range(3):
        await redis.xadd(KEYS.output_stream, {"item": json.dumps({"title": f"t{n}"})})
    await redis.xgroup_create(KEYS.output_stream, "indexer", id="0")
    await redis.xreadgroup("indexer", "c1", {KEYS.output_stream: ">"}, count=1)

    env = cli_env(redis_server.url)
    code, out, err = await feedpipe_async("status", env=env)
    assert code == 0, err
    assert "fetch-test@" in out and "extract-test@" in out  # the session's workers answered
    assert "3 feeds" in out and "1 ok, 0 new, 1 erroring, 1 failing" in out
    assert "last hour  3 items, 0 duplicates" in out
    assert "group indexer on feedpipe:items: lag 2, pending 1" in out
    worst = out.index("https://worse.example/rss")
    assert worst < out.index("https://bad.example/rss") and "HTTP 410 Gone" in out
    code, out, err = await feedpipe_async("status", "--json", env=env)
    snapshot = json.loads(out)
    assert code == 0 and snapshot["feeds_failing"] == 1 and snapshot["last_hour"]["items"] == 3
    assert snapshot["queues"].keys() == {"dispatch", "fetch", "push", "extract"}
