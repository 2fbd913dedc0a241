"""`feedpipe feeds import` of big files, as a user runs it: 20,000-feed YAML and OPML files
into the private redis-server, again (state kept), with one bad entry (nothing written), and
the count of never-polled feeds in `feedpipe status`. Timing is bench/import_bench.py's job."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as sync_redis

from pipeline.normalize import feed_id
from tests.integration.conftest import KEYS
from tests.integration.test_cli import FEEDPIPE, cli_env, feedpipe

FEEDS = 20_000


@pytest.fixture
def db(redis_server: Any) -> Iterator[tuple[str, sync_redis.Redis]]:
    """A database of the private server no session worker polls (they use db 0)."""
    url = redis_server.url.rsplit("/", 1)[0] + "/11"
    client = sync_redis.Redis.from_url(url, decode_responses=True)
    client.flushdb()
    yield url, client
    client.flushdb()
    client.close()


def yaml_url(i: int) -> str:
    return f"https://y{i % 500}.example/feeds/{i}/rss"


def opml_url(i: int) -> str:
    return f"https://o{i % 500}.example/feeds/{i}/atom"


def write_yaml(path: Path, bad: int | None = None, first_tags: str = "[fa, agency]") -> None:
    lines = ["feeds:"]
    for i in range(FEEDS):
        url = "ftp://bad.example/rss" if i == bad else yaml_url(i)
        tags = first_tags if i == 0 else "[fa]"
        lines.append(f"  - url: {url}\n    title: خبر {i}\n    tags: {tags}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_opml(path: Path, bad: int | None = None) -> None:
    """Feeds in Region/Desk folders (10 x 10), 200 per desk."""
    parts = ['<?xml version="1.0" encoding="utf-8"?>\n<opml version="2.0"><body>']
    i = 0
    for region in range(10):
        parts.append(f'<outline text="Region {region}">')
        for desk in range(10):
            parts.append(f'<outline title="Desk {desk}">')
            for _ in range(FEEDS // 100):
                url = "javascript:alert(1)" if i == bad else opml_url(i)
                parts.append(f'<outline text="خبر {i}" xmlUrl="{url}"/>')
                i += 1
            parts.append("</outline>")
        parts.append("</outline>")
    parts.append("</body></opml>\n")
    path.write_text("\n".join(parts), encoding="utf-8")


def summary(done: subprocess.CompletedProcess[str]) -> tuple[int, int, int]:
    found = re.search(r"(\d+) feed\(s\) in .*: (\d+) new, (\d+) updated \(\d+\.\d s\)", done.stdout)
    assert found, done.stdout
    total, new, updated = (int(n) for n in found.groups())
    return total, new, updated


def test_big_yaml_and_opml_imports_keep_state_and_count_new_feeds(
    db: tuple[str, sync_redis.Redis], tmp_path: Path
) -> None:
    url, client = db
    env = cli_env(url)
    feeds_yaml, subs_opml = tmp_path / "feeds.yaml", tmp_path / "subs.opml"
    write_yaml(feeds_yaml)
    write_opml(subs_opml)

    done = feedpipe("feeds", "import", str(feeds_yaml), env=env)
    assert summary(done) == (FEEDS, FEEDS, 0)
    assert done.stderr == ""  # no progress output when stderr is not a terminal
    assert client.zcard(KEYS.feeds_due) == FEEDS

    # One feed was polled meanwhile: its state and schedule must survive a re-import.
    polled = feed_id(yaml_url(0))
    client.hset(
        KEYS.feed(polled),
        mapping={"last_poll": "1700000000.5", "last_status": "200", "items": "7", "title": "T"},
    )
    client.zadd(KEYS.feeds_due, {polled: 1900000000})
    write_yaml(feeds_yaml, first_tags="[fa, moved]")  # and its tags changed in the file
    assert summary(feedpipe("feeds", "import", str(feeds_yaml), env=env)) == (FEEDS, 0, FEEDS)
    state = client.hgetall(KEYS.feed(polled))
    assert state["last_poll"] == "1700000000.5" and state["items"] == "7"
    assert state["title"] == "خبر 0" and json.loads(state["tags"]) == ["fa", "moved"]
    assert client.zscore(KEYS.feeds_due, polled) == 1900000000

    assert summary(feedpipe("feeds", "import", str(subs_opml), env=env)) == (FEEDS, FEEDS, 0)
    assert summary(feedpipe("feeds", "import", str(subs_opml), env=env)) == (FEEDS, 0, FEEDS)
    nested = client.hgetall(KEYS.feed(feed_id(opml_url(FEEDS - 1))))
    assert json.loads(nested["tags"]) == ["Region 9", "Desk 9"]
    assert client.zcard(KEYS.feeds_due) == 2 * FEEDS

    status = json.loads(feedpipe("status", "--json", env=env).stdout)
    assert status["feeds"] == 2 * FEEDS and status["feeds_new"] == 2 * FEEDS - 1
    line = next(
        s for s in feedpipe("status", env=env).stdout.splitlines() if s.startswith("feeds ")
    )
    assert f"1 ok, {2 * FEEDS - 1} new, 0 erroring, 0 failing" in line


@pytest.mark.parametrize(
    ("kind", "bad", "named"),
    [("yaml", 12_345, "feeds[12345]: "), ("opml", 15_432, ": outline javascript:alert(1): ")],
)
def test_one_bad_entry_writes_nothing_and_is_named(
    db: tuple[str, sync_redis.Redis], tmp_path: Path, kind: str, bad: int, named: str
) -> None:
    url, client = db
    path = tmp_path / f"feeds.{kind}"
    (write_yaml if kind == "yaml" else write_opml)(path, bad=bad)
    done = feedpipe("feeds", "import", str(path), env=cli_env(url), check=False)
    assert done.returncode != 0
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith(f"Error: {path}: ") and named in error, done.stderr
    assert client.dbsize() == 0


def test_progress_is_shown_on_a_terminal(db: tuple[str, sync_redis.Redis], tmp_path: Path) -> None:
    url, client = db
    path = tmp_path / "feeds.yaml"
    write_yaml(path)
    controller, terminal = pty.openpty()
    try:
        proc = subprocess.Popen(
            [*FEEDPIPE, "feeds", "import", str(path)],
            env=cli_env(url),
            stdout=subprocess.PIPE,
            stderr=terminal,
            text=True,
        )
        os.close(terminal)
        shown = b""
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the command exited, the terminal closed
                break
            if not chunk:
                break
            shown += chunk
        out, _ = proc.communicate(timeout=120)
    finally:
        os.close(controller)
    assert proc.returncode == 0 and f"{FEEDS} new" in out
    text = shown.decode("utf-8", "replace")
    assert f"reading {path}: {FEEDS} feeds" in text and "writing feeds" in text
    assert client.zcard(KEYS.feeds_due) == FEEDS
