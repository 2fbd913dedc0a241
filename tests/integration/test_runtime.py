"""The per-process Runtime against a real redis-server."""

from __future__ import annotations

import asyncio
from typing import Any

from pipeline.settings import Settings
from workers.runtime import REDIS_POOL_SIZE, Runtime


def test_more_concurrent_redis_commands_than_pool_connections_wait_instead_of_failing(
    redis_server: Any, tmp_path: Any
) -> None:
    # A poll of many feeds on many hosts runs hundreds of coroutines that each talk to Redis;
    # redis-py's default pool raised MaxConnectionsError past 100 of them.
    runtime = Runtime(Settings(redis_url=redis_server.url, data_dir=tmp_path))

    async def many() -> list[Any]:
        client = runtime.redis()
        # BLPOP holds its connection for the whole timeout, so they really overlap.
        return await asyncio.gather(
            *(client.blpop([f"test:runtime:none:{i}"], timeout=0.2) for i in range(4 * REDIS_POOL_SIZE))
        )

    try:
        assert runtime.run(many()) == [None] * (4 * REDIS_POOL_SIZE)
    finally:
        runtime.close()
