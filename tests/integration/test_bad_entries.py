"""Hostile entries on the output stream: every consumer sets them aside and keeps going.

A bad entry (not an item) in front of good ones must not stop `feedpipe tail`, a
StreamSubscriber program, or a consumer that takes over a dead one's entries: each good item
is delivered, each bad entry is reported, copied to ``<stream>:bad`` and acknowledged."""

from __future__ import annotations

import json
import logging
import time
from itertools import islice
from typing import Any

import pytest
import redis as sync_redis

from pipeline.errors import ConfigError
from pipeline.subscribe import BadEntry, StreamSubscriber
from tests.integration.test_cli import cli_env, feedpipe

STREAM = "feedpipe:test-bad-entries:items"  # out of the way of the session's workers
BAD_STREAM = f"{STREAM}:bad"

# (fields, what the reason must say): in front of the good items on the stream.
BAD: list[tuple[dict[bytes, bytes], str]] = [
    ({b"item": b"<html><body>502 Bad Gateway</body></html>"}, "not JSON"),
    ({b"item": b'\xff\xfe{"title": "Latin-1 \xe9"}'}, "not UTF-8"),
    ({b"item": b'[{"title": "an array"}]'}, "not an object: JSON array"),
    ({b"item": b'"just a string"'}, "not an object: JSON string"),
    ({b"item": b"null"}, "not an object: JSON null"),
    ({b"title": b"no item field", b"\x00\xff": b"\x80"}, 'no "item" field'),
    # An own field named like one the copy adds: kept, under another name.
    ({b"reason": b"mine", b"entry_id": b"0-1"}, 'no "item" field'),
    ({b"item": b'{"title": NaN}'}, "not JSON: NaN"),
    ({b"item": b'{"title": "\\ud800 lone surrogate"}'}, "lone surrogate"),
    ({b"item": b'{"a": ' * 995 + b"1" + b"}" * 995}, "nested deeper than 100 levels"),
]


def story(title: str) -> dict[str, Any]:
    return {
        "schema": 1,
        "title": title,
        "text": f"Body of {title}.",
        "source": "Agency",
        "feed": {"url": "https://agency.example/rss", "title": "Agency feed"},
        "published_at": "2025-12-13T06:00:00Z",
        "fetched_at": "2025-12-13T07:00:00Z",
    }


# JSON objects, so items, though not what the pipeline publishes: consumers get them, and
# `--format text` shows a missing field as empty and one of the wrong type as "?".
ODD: list[tuple[dict[str, Any], str]] = [
    ({"schema": 1}, "date  \n\n\n"),
    (
        {"title": 42, "feed": "agency", "published_at": 20251213, "text": ["a"], "source": None},
        "date ? ?\n?\n\n?",
    ),
    ({"title": "Feed title only", "feed": {"title": 7}, "fetched_at": "2025-12-14"}, None),
]
GOOD: list[dict[str, Any]] = [*(obj for obj, _ in ODD), *(story(f"Good {n}") for n in range(3))]
TEXT = [
    *(text or "date 2025-12-14 ?\nFeed title only\n\n" for _, text in ODD),
    *(f"date 2025-12-13 Agency\nGood {n}\n\nBody of Good {n}." for n in range(3)),
]


@pytest.fixture
def client(redis_server: Any) -> sync_redis.Redis:
    client = sync_redis.Redis.from_url(redis_server.url)
    client.delete(STREAM, BAD_STREAM)
    return client


def fill(client: sync_redis.Redis) -> tuple[list[str], list[str]]:
    """Every bad entry, then the good ones: their entry ids."""
    bad_ids = [client.xadd(STREAM, fields).decode() for fields, _ in BAD]
    good_ids = [
        client.xadd(STREAM, {"item": json.dumps(obj, ensure_ascii=False)}).decode() for obj in GOOD
    ]
    return bad_ids, good_ids


def bad_copies(client: sync_redis.Redis, group: str) -> dict[str, dict[bytes, bytes]]:
    """The copies of one group on the bad stream, by original entry id."""
    copies = {}
    for _id, fields in client.xrange(BAD_STREAM):
        if fields[b"group"] == group.encode():
            copies[fields[b"entry_id"].decode()] = fields
    return copies


def assert_set_aside(client: sync_redis.Redis, group: str, bad_ids: list[str]) -> None:
    copies = bad_copies(client, group)
    assert sorted(copies) == sorted(bad_ids)
    for entry_id, (fields, why) in zip(bad_ids, BAD, strict=True):
        copy = copies[entry_id]
        assert copy[b"stream"] == STREAM.encode()
        assert why in copy[b"reason"].decode()
        own = {k: v for k, v in copy.items() if k not in {b"entry_id", b"stream", b"group"}}
        own.pop(b"reason")
        renamed = {k.removeprefix(b"original:"): v for k, v in own.items()}
        assert renamed == fields  # the entry as it was, nothing lost
    assert client.xpending(STREAM, group)["pending"] == 0


def cli(*args: str, redis_server: Any) -> Any:
    env = cli_env(redis_server.url, FEEDPIPE_OUTPUT_STREAM=STREAM)
    return feedpipe("tail", *args, env=env)


def assert_reported(stderr: str, bad_ids: list[str]) -> None:
    lines = stderr.splitlines()
    assert len(lines) == len(BAD), stderr
    for line, entry_id, (_fields, why) in zip(lines, bad_ids, BAD, strict=True):
        assert line.startswith(f"feedpipe tail: entry {entry_id} is not an item (")
        assert why in line
        assert line.endswith(f"); copied to {BAD_STREAM} and acknowledged")


def test_tail_text_prints_every_good_item_after_bad_entries(
    redis_server: Any, client: sync_redis.Redis
) -> None:
    bad_ids, _ = fill(client)
    done = cli(
        "--group", "text", "--from-start", "--format", "text", "--count", str(len(GOOD)),
        redis_server=redis_server,
    )  # fmt: skip
    assert done.stdout == "".join(f"{text}\n\n" for text in TEXT)
    assert_reported(done.stderr, bad_ids)
    assert_set_aside(client, "text", bad_ids)
    # A rerun finds nothing left of them: no report, no copy again.
    client.xadd(STREAM, {"item": json.dumps(story("Later"))})
    again = cli("--group", "text", "--format", "text", "--count", "1", redis_server=redis_server)
    assert "Later" in again.stdout and again.stderr == ""
    assert len(bad_copies(client, "text")) == len(BAD)


def test_tail_json_prints_every_good_item_after_bad_entries(
    redis_server: Any, client: sync_redis.Redis
) -> None:
    bad_ids, _ = fill(client)
    done = cli(
        "--group", "json", "--from-start", "--count", str(len(GOOD)), redis_server=redis_server
    )
    assert [json.loads(line) for line in done.stdout.splitlines()] == GOOD
    assert_reported(done.stderr, bad_ids)
    assert_set_aside(client, "json", bad_ids)


def test_subscriber_yields_only_items_and_sets_bad_entries_aside(
    client: sync_redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    bad_ids, good_ids = fill(client)
    reported: list[BadEntry] = []
    sub = StreamSubscriber(
        client, STREAM, "svc", "c1", from_start=True, block_ms=10, on_bad_entry=reported.append
    )
    received = []
    for entry_id, item in islice(sub.items(count=4), len(GOOD)):
        received.append((entry_id, item))
        sub.ack(entry_id)
    assert received == list(zip(good_ids, GOOD, strict=True))
    assert [bad.entry_id for bad in reported] == bad_ids
    assert all(bad.bad_stream == BAD_STREAM and bad.group == "svc" for bad in reported)
    assert_set_aside(client, "svc", bad_ids)
    assert sub.read() == []

    # Without on_bad_entry, each goes to the log with the structured keys.
    caplog.set_level(logging.WARNING, logger="pipeline.subscribe")
    logged = StreamSubscriber(client, STREAM, "logged", "c1", from_start=True, block_ms=10)
    assert [item for _id, item in logged.read()] == GOOD
    records = [r for r in caplog.records if r.name == "pipeline.subscribe"]
    assert len(records) == len(BAD)
    for record, entry_id, (_fields, why) in zip(records, bad_ids, BAD, strict=True):
        assert record.stage == "subscribe"  # type: ignore[attr-defined]
        assert why in record.reason  # type: ignore[attr-defined]
        assert entry_id in record.getMessage() and BAD_STREAM in record.getMessage()


def read_as_dead_consumer(client: sync_redis.Redis, group: str) -> None:
    """A consumer that read everything (bad entries included) and died before acking."""
    client.xgroup_create(STREAM, group, id="0")
    reply = client.xreadgroup(group, "dead", {STREAM: ">"}, count=100)
    assert len(reply[0][1]) == len(BAD) + len(GOOD)
    assert client.xpending(STREAM, group)["pending"] == len(BAD) + len(GOOD)


def test_a_consumer_taking_over_a_dead_one_moves_past_its_bad_entries(
    redis_server: Any, client: sync_redis.Redis
) -> None:
    bad_ids, good_ids = fill(client)
    read_as_dead_consumer(client, "svc")
    reported: list[BadEntry] = []
    heir = StreamSubscriber(
        client, STREAM, "svc", "heir", block_ms=10, claim_idle_ms=100, on_bad_entry=reported.append
    )
    time.sleep(0.2)
    received = []
    deadline = time.monotonic() + 10
    while len(received) < len(GOOD) and time.monotonic() < deadline:
        for entry_id, item in heir.read(count=3):
            received.append((entry_id, item))
            heir.ack(entry_id)
    assert received == list(zip(good_ids, GOOD, strict=True))
    assert [bad.entry_id for bad in reported] == bad_ids
    assert_set_aside(client, "svc", bad_ids)

    # The same through `feedpipe tail --claim-idle`.
    read_as_dead_consumer(client, "cli")
    time.sleep(0.2)
    done = cli(
        "--group", "cli", "--consumer", "heir", "--claim-idle", "0.1", "--count", str(len(GOOD)),
        redis_server=redis_server,
    )  # fmt: skip
    assert [json.loads(line) for line in done.stdout.splitlines()] == GOOD
    assert_reported(done.stderr, bad_ids)
    assert_set_aside(client, "cli", bad_ids)


def unexpected(bad: BadEntry) -> None:
    pytest.fail(f"reported as bad: {bad.describe()}")


def test_entries_deleted_while_pending_are_acked_without_a_copy(client: sync_redis.Redis) -> None:
    _, good_ids = fill(client)
    read_as_dead_consumer(client, "own")
    read_as_dead_consumer(client, "heir")
    # The stream is trimmed under both groups: every pending entry but the last good one.
    client.xtrim(STREAM, maxlen=1, approximate=False)
    # Read again by the same consumer (XREADGROUP 0: deleted ones come back without fields)...
    same = StreamSubscriber(client, STREAM, "own", "dead", block_ms=10, on_bad_entry=unexpected)
    assert same.read() == [(good_ids[-1], GOOD[-1])]
    same.ack(good_ids[-1])
    assert client.xpending(STREAM, "own")["pending"] == 0
    # ... or taken over by another (XAUTOCLAIM drops deleted ones from the pending list).
    heir = StreamSubscriber(
        client, STREAM, "heir", "c2", block_ms=10, claim_idle_ms=1, on_bad_entry=unexpected
    )
    time.sleep(0.05)
    assert heir.read() == [(good_ids[-1], GOOD[-1])]
    heir.ack(good_ids[-1])
    assert client.xpending(STREAM, "heir")["pending"] == 0
    assert client.xlen(BAD_STREAM) == 0


def test_a_bad_entry_is_never_acked_without_its_copy(
    redis_server: Any, client: sync_redis.Redis
) -> None:
    """The bad stream's key holding another type: XADD would fail inside MULTI while XACK
    went through. The subscriber refuses before the transaction; the entry stays pending."""
    bad_id = client.xadd(STREAM, {"item": b"not json"}).decode()
    client.set(BAD_STREAM, "someone else's string")
    sub = StreamSubscriber(client, STREAM, "svc", "c1", from_start=True, block_ms=10)
    with pytest.raises(ConfigError, match="holds a string, not a stream"):
        sub.read()
    assert client.xpending(STREAM, "svc")["pending"] == 1
    env = cli_env(redis_server.url, FEEDPIPE_OUTPUT_STREAM=STREAM)
    done = feedpipe("tail", "--group", "svc", "--consumer", "c1", env=env, check=False)
    assert done.returncode == 1 and "holds a string, not a stream" in done.stderr
    assert "Traceback" not in done.stderr
    assert client.xpending(STREAM, "svc")["pending"] == 1

    client.delete(BAD_STREAM)
    assert sub.read() == []
    assert client.xpending(STREAM, "svc")["pending"] == 0
    assert [f[b"entry_id"].decode() for _id, f in client.xrange(BAD_STREAM)] == [bad_id]


def test_demo_printer_reports_bad_entries(
    client: sync_redis.Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    from workers.cli import _ItemPrinter

    bad_ids, _ = fill(client)
    printer = _ItemPrinter(client, STREAM, "text")
    printer.print_new()
    out, err = capsys.readouterr()
    assert printer.count == len(GOOD)
    assert out == "".join(f"{text}\n\n" for text in TEXT)
    assert [line.split()[3] for line in err.splitlines()] == bad_ids
    assert all(line.startswith("feedpipe demo: entry ") for line in err.splitlines())


def test_subscriber_refuses_a_client_that_decodes_responses(redis_server: Any) -> None:
    decoding = sync_redis.Redis.from_url(redis_server.url, decode_responses=True)
    with pytest.raises(ConfigError, match="decode_responses=False"):
        StreamSubscriber(decoding, STREAM, "svc", "c1")
