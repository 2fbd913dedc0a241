"""What kombu's Redis transport holds of the extract queue (pipeline.redeliver.BrokerView).

kombu keeps a queue as Redis lists (one per priority step: ``extract``, ``extract\\x06\\x163``,
...; Celery sends without a priority, so only the first is used) and every message delivered
to a worker and not yet acked, eta tasks included, in one hash (``unacked``: delivery tag ->
``[message, exchange, routing key]``). A message carries its task id in its headers, and an
extract task's id is ``extract-<item id>``. kombu has no API to list a queue's messages, so
its layout is read directly; the names come from kombu's own constants.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from kombu.transport.redis import PRIORITY_STEPS, Channel
from redis.asyncio import Redis

from workers.celery_config import EXTRACT_TASK_ID_PREFIX, QUEUE_EXTRACT


class KombuRedisView:
    def __init__(self, redis: Redis, queue: str = QUEUE_EXTRACT) -> None:
        self.redis = redis
        self.lists = [queue] + [f"{queue}{Channel.sep}{step}" for step in PRIORITY_STEPS if step]
        self.unacked = Channel.unacked_key

    async def held_item_ids(self, next_in_line: int) -> frozenset[str]:
        # kombu pushes on the left and pops on the right: the right end is next in line. One
        # transaction: a message being requeued (a reject, kombu's restore of a dead worker's
        # messages) moves from the hash to a list atomically, and is seen once.
        async with self.redis.pipeline(transaction=True) as pipe:
            for name in self.lists:
                pipe.lrange(name, -next_in_line, -1)
            pipe.hvals(self.unacked)
            *queued, delivered = await pipe.execute()
        messages = [json.loads(raw) for raws in queued for raw in raws]
        messages += [json.loads(raw)[0] for raw in delivered]  # [message, exchange, key]
        return frozenset(_item_ids(messages))


def _item_ids(messages: Iterable[dict[str, Any]]) -> Iterable[str]:
    for message in messages:
        task_id = message.get("headers", {}).get("id") or ""
        if task_id.startswith(EXTRACT_TASK_ID_PREFIX):
            yield task_id.removeprefix(EXTRACT_TASK_ID_PREFIX)
