"""Reading the output stream as a consumer group: the helper behind `feedpipe tail`.

Usable from any Python program::

    sub = StreamSubscriber(redis.Redis.from_url(url), "feedpipe:items", "my-app", "worker-1")
    for entry_id, item in sub.items():
        handle(item)
        sub.ack(entry_id)

Entries delivered but never acked are never lost: this consumer's own are read again first on
restart, and those of a consumer that died for good (another name, idle longer than
``claim_idle_ms``) are taken over with XAUTOCLAIM, the pattern Redis documents for it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import redis


class StreamSubscriber:
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
    ) -> None:
        self.client = client
        self.stream = stream
        self.group = group
        self.consumer = consumer
        self.block_ms = block_ms
        # Longer than any consumer takes to handle an entry, or live consumers get robbed.
        self.claim_idle_ms = claim_idle_ms
        self._claim_cursor = "0-0"
        self._create_group("0" if from_start else "$")

    def _create_group(self, start_id: str) -> None:
        try:
            self.client.xgroup_create(self.stream, self.group, id=start_id, mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):  # the group exists: keep its position
                raise

    def read(self, count: int = 100) -> list[tuple[str, dict[str, Any]]]:
        """The next entries: this consumer's unacked ones first, then those abandoned by dead
        consumers, then new ones (blocking up to ``block_ms``)."""
        return (
            self._read("0", count, block=None)
            or self._claim_abandoned(count)
            or self._read(">", count, block=self.block_ms)
        )

    def items(self, count: int = 100) -> Iterator[tuple[str, dict[str, Any]]]:
        while True:
            yield from self.read(count)

    def ack(self, *entry_ids: str) -> None:
        if entry_ids:
            self.client.xack(self.stream, self.group, *entry_ids)

    def _claim_abandoned(self, count: int) -> list[tuple[str, dict[str, Any]]]:
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
        return [(_str(entry_id), decode_entry(fields or {})) for entry_id, fields in reply[1]]

    def _read(self, start: str, count: int, block: int | None) -> list[tuple[str, dict[str, Any]]]:
        reply: Any = self.client.xreadgroup(
            self.group, self.consumer, {self.stream: start}, count=count, block=block
        )
        out = []
        for _stream, entries in reply or []:
            for entry_id, fields in entries:
                out.append((_str(entry_id), decode_entry(fields)))
        return out


def decode_entry(fields: dict[Any, Any]) -> dict[str, Any]:
    """The item of a stream entry (field ``item``, JSON)."""
    raw = fields.get(b"item", fields.get("item"))
    if raw is None:  # deleted by XTRIM/XDEL while pending: acked and skipped by callers
        return {}
    return dict(json.loads(raw))


def _str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
