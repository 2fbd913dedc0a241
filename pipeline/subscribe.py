"""Reading the output stream as a consumer group: the helper behind `feedpipe tail`.

Usable from any Python program::

    sub = StreamSubscriber(redis.Redis.from_url(url), "feedpipe:items", "my-app", "worker-1")
    for entry_id, item in sub.items():
        handle(item)
        sub.ack(entry_id)

Entries delivered but never acked are never lost: this consumer's own are read again first on
restart, and those of a consumer that died for good (another name, idle longer than
``claim_idle_ms``) are taken over with XAUTOCLAIM, the pattern Redis documents for it.

What ``items()``/``read()`` yield is always an *item*: a JSON object, decoded. An entry that is
not one (its ``item`` field missing, not UTF-8, not JSON, not an object, ...) is a *bad entry*:
it is copied to ``<stream>:bad`` with the reason and acknowledged in one transaction, reported
(``on_bad_entry``; by default a log line), and never reaches the caller. Without this, one bad
entry would stay pending forever, crash every consumer that reads it again, and through
XAUTOCLAIM every other consumer of the group too.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import msgspec
import redis

from pipeline.errors import ConfigError

log = logging.getLogger(__name__)

ITEM_FIELD = "item"
# Deeper than any item (the schema nests 3 levels), shallow enough for any consumer that
# recurses: json.dumps needs more stack than json.loads, so a ~990-level object that decodes
# would crash the first program that encodes it again.
MAX_DEPTH = 100
BAD_STREAM_MAXLEN = 10_000  # XADD MAXLEN ~ of the bad-entries stream (None: unbounded)
# The fields a copy on the bad stream gets besides the entry's own.
BAD_FIELDS = ("entry_id", "stream", "group", "reason")

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_REASON_CHARS = 240


class NotAnItem(msgspec.Struct, frozen=True):
    """What ``decode_entry`` gives for a stream entry that is not an item, instead of raising."""

    reason: str


class BadEntry(msgspec.Struct, frozen=True):
    """A bad entry the subscriber has copied to ``bad_stream`` and acknowledged."""

    entry_id: str
    reason: str
    stream: str
    group: str
    bad_stream: str

    def describe(self) -> str:
        return (
            f"entry {self.entry_id} is not an item ({self.reason}); "
            f"copied to {self.bad_stream} and acknowledged"
        )


def log_bad_entry(bad: BadEntry) -> None:
    """The default ``on_bad_entry``: one warning with the structured keys."""
    log.warning(
        "stream entry %s is not an item; copied to %s and acknowledged",
        bad.entry_id,
        bad.bad_stream,
        extra={"stage": "subscribe", "reason": bad.reason},
    )


class StreamSubscriber:
    """A consumer of a consumer group that only ever hands out items (JSON objects).

    Needs a client with ``decode_responses=False`` (redis-py's default): with it on, redis-py
    itself fails on an entry that is not UTF-8, before the subscriber could set it aside.

    Bad entries (see ``decode_entry``) go to ``bad_stream`` (default ``<stream>:bad``) with
    their fields as they were plus ``entry_id``, ``stream``, ``group`` and ``reason``, and are
    acked in the same MULTI/EXEC: a crash leaves either both done or neither (the entry is
    still pending and set aside on the next read). A copy can still appear twice if two
    consumers set aside the same entry at once (one took it over with XAUTOCLAIM while the
    other still held it); the ``entry_id`` field tells the copies apart. Entries deleted from
    the stream while pending (XTRIM, XDEL) are acked and skipped without a copy.
    """

    def __init__(
        self,
        client: redis.Redis,
        stream: str,
        group: str,
        consumer: str,
        *,
        from_start: bool = False,
        block_ms: int = 5000,
        claim_idle_ms: int | None = 60_000,
        bad_stream: str | None = None,
        bad_stream_maxlen: int | None = BAD_STREAM_MAXLEN,
        on_bad_entry: Callable[[BadEntry], None] = log_bad_entry,
    ) -> None:
        pool = getattr(client, "connection_pool", None)
        if pool is not None and pool.connection_kwargs.get("decode_responses"):
            raise ConfigError(
                "StreamSubscriber needs a Redis client with decode_responses=False: "
                "with it on, one entry that is not UTF-8 would stop the consumer"
            )
        self.client = client
        self.stream = stream
        self.group = group
        self.consumer = consumer
        self.block_ms = block_ms
        # Longer than any consumer takes to handle an entry, or live consumers get robbed.
        self.claim_idle_ms = claim_idle_ms
        self.bad_stream = bad_stream or f"{stream}:bad"
        self.bad_stream_maxlen = bad_stream_maxlen
        self.on_bad_entry = on_bad_entry
        self._claim_cursor = "0-0"
        self._create_group("0" if from_start else "$")

    def _create_group(self, start_id: str) -> None:
        try:
            self.client.xgroup_create(self.stream, self.group, id=start_id, mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):  # the group exists: keep its position
                raise

    def read(self, count: int = 100) -> list[tuple[str, dict[str, Any]]]:
        """The next items: this consumer's unacked ones first, then those abandoned by dead
        consumers, then new ones (blocking up to ``block_ms``; ``[]`` when none came).

        Bad and deleted entries met on the way are dealt with here and left out."""
        while True:
            entries = self._read("0", count, block=None) or self._claim_abandoned(count)
            if not entries:
                return self._keep_items(self._read(">", count, block=self.block_ms))
            items = self._keep_items(entries)
            if items:
                return items
            # Only bad or deleted entries, now acked: look again before blocking on new ones.

    def items(self, count: int = 100) -> Iterator[tuple[str, dict[str, Any]]]:
        while True:
            yield from self.read(count)

    def ack(self, *entry_ids: str) -> None:
        if entry_ids:
            self.client.xack(self.stream, self.group, *entry_ids)

    def _keep_items(self, entries: list[tuple[Any, Any]]) -> list[tuple[str, dict[str, Any]]]:
        items: list[tuple[str, dict[str, Any]]] = []
        deleted: list[str] = []
        for raw_id, fields in entries:
            if raw_id is None:  # a nil entry in a reply: nothing to ack it by
                continue
            entry_id = _str(raw_id)
            decoded = decode_entry(fields)
            if decoded is None:
                deleted.append(entry_id)
            elif isinstance(decoded, NotAnItem):
                self._set_aside(entry_id, fields, decoded.reason)
            else:
                items.append((entry_id, decoded))
        self.ack(*deleted)
        return items

    def _set_aside(self, entry_id: str, fields: Mapping[Any, Any], reason: str) -> None:
        """Copy a bad entry to the bad stream and ack it, atomically.

        MULTI/EXEC does not roll back a command that fails when run: an XADD refused because
        the bad stream's key holds another type would still let the XACK through and lose the
        entry. So the key's type is checked under WATCH first; the transaction retries if the
        key changes before EXEC."""
        copy = bad_copy(fields, entry_id, self.stream, self.group, reason)

        def move(pipe: Any) -> None:
            kind = _str(pipe.type(self.bad_stream))
            if kind not in ("none", "stream"):
                raise ConfigError(
                    f"{self.bad_stream} holds a {kind}, not a stream: cannot set aside bad "
                    f"entry {entry_id} of {self.stream} ({reason}); it stays pending until "
                    "that key is renamed or deleted"
                )
            pipe.multi()
            pipe.xadd(self.bad_stream, copy, maxlen=self.bad_stream_maxlen, approximate=True)
            pipe.xack(self.stream, self.group, entry_id)

        self.client.transaction(move, self.bad_stream)
        self.on_bad_entry(BadEntry(entry_id, reason, self.stream, self.group, self.bad_stream))

    def _claim_abandoned(self, count: int) -> list[tuple[Any, Any]]:
        """XAUTOCLAIM entries pending for more than ``claim_idle_ms`` with any consumer."""
        if not self.claim_idle_ms:
            return []
        reply: Any = self.client.xautoclaim(
            self.stream,
            self.group,
            self.consumer,
            min_idle_time=self.claim_idle_ms,
            start_id=self._claim_cursor,
            count=count,
        )
        # Redis 7: [next cursor, claimed entries, ids deleted meanwhile (dropped from the PEL)].
        self._claim_cursor = _str(reply[0])
        return list(reply[1])

    def _read(self, start: str, count: int, block: int | None) -> list[tuple[Any, Any]]:
        reply: Any = self.client.xreadgroup(
            self.group, self.consumer, {self.stream: start}, count=count, block=block
        )
        return [entry for _stream, entries in reply or [] for entry in entries]


def decode_entry(fields: Mapping[Any, Any] | None) -> dict[str, Any] | NotAnItem | None:
    """The item of a stream entry, or why it is not one; never raises.

    An item is the entry's ``item`` field holding UTF-8 JSON (RFC 8259: no NaN/Infinity)
    whose top level is an object, nested at most ``MAX_DEPTH`` levels, with no lone surrogate
    (``"\\ud800"``) in its strings. Which fields the object has is not checked here: every
    consumer reads what it needs (``docs/item-schema.json``). ``None`` for an entry without
    fields: one deleted from the stream (XTRIM, XDEL) while it was pending.
    """
    if not fields:
        return None
    text = _item_text(fields)
    return text if isinstance(text, NotAnItem) else _parse_object(text)


def _item_text(fields: Mapping[Any, Any]) -> str | NotAnItem:
    raw = fields.get(ITEM_FIELD.encode(), fields.get(ITEM_FIELD))
    if raw is None:
        names = ", ".join(repr(_text(name))[:40] for name in list(fields)[:5])
        return NotAnItem(_one_line(f'no "{ITEM_FIELD}" field (fields: {names})'))
    if not isinstance(raw, bytes):
        return str(raw)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return NotAnItem(f"not UTF-8: {exc.reason} at byte {exc.start}")


def _parse_object(text: str) -> dict[str, Any] | NotAnItem:
    try:
        value = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        return NotAnItem(_one_line(f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"))
    except ValueError as exc:  # NaN/Infinity, an integer over Python's digit limit
        return NotAnItem(_one_line(f"not JSON: {exc}"))
    except RecursionError:
        return NotAnItem(f"nested deeper than {MAX_DEPTH} levels")
    if not isinstance(value, dict):
        return NotAnItem(f"not an object: JSON {_json_kind(value)}")
    problem = _check_tree(value)
    return NotAnItem(problem) if problem else value


def bad_copy(
    fields: Mapping[Any, Any], entry_id: str, stream: str, group: str, reason: str
) -> dict[bytes, bytes]:
    """The fields of a bad entry's copy: its own as they were, then ``BAD_FIELDS``. An own
    field named like one of those is kept as ``original:<name>``."""
    ours = {
        "entry_id": entry_id,
        "stream": stream,
        "group": group,
        "reason": reason,
    }
    copy: dict[bytes, bytes] = {}
    for name, value in fields.items():
        key = _bytes(name)
        while key in copy or key.decode("utf-8", "replace") in ours:
            key = b"original:" + key
        copy[key] = _bytes(value)
    for name, text in ours.items():
        copy[name.encode()] = text.encode("utf-8", "backslashreplace")
    return copy


def _check_tree(value: dict[str, Any]) -> str | None:
    """Depth and lone surrogates, without recursion (the value may be deep)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            return f"nested deeper than {MAX_DEPTH} levels"
        children = node.items() if isinstance(node, dict) else enumerate(node)
        for key, child in children:
            for text in (key, child):
                if isinstance(text, str) and _LONE_SURROGATE.search(text):
                    return "not Unicode: a string holds a lone surrogate (\\ud800-\\udfff)"
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
    return None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    return "null" if value is None else "number"


def _one_line(text: str) -> str:
    """A reason safe for one log or terminal line: no control characters, bounded."""
    clean = "".join(c if c.isprintable() else "?" for c in text)
    return clean if len(clean) <= _REASON_CHARS else clean[: _REASON_CHARS - 1] + "…"


def _bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8", "surrogatepass")


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
