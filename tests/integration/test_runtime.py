"""The per-process Runtime against a real redis-server."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

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


def test_task_threads_share_one_loop_and_its_clients(redis_server: Any, tmp_path: Any) -> None:
    # The fetch worker's thread pool: every task thread hands its coroutine to one loop, so
    # polls waiting on hosts overlap and share one Redis pool and one set of waiting lines.
    runtime = Runtime(Settings(redis_url=redis_server.url, data_dir=tmp_path))
    seen: list[tuple[int, int]] = []

    async def task() -> None:
        client = runtime.redis()
        await client.blpop(["test:runtime:threads"], timeout=0.5)  # a wait on the network
        seen.append((id(asyncio.get_running_loop()), id(client)))

    threads = [threading.Thread(target=runtime.run, args=(task(),)) for _ in range(8)]
    start = time.monotonic()
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        elapsed = time.monotonic() - start
        assert len(seen) == 8 and len(set(seen)) == 1
        assert elapsed < 2.5, f"the waits did not overlap: {elapsed:.1f} s for 8 x 0.5 s"
        with pytest.raises(RuntimeError, match="loop thread"):
            runtime.run(task())  # the main thread may not start a second loop
    finally:
        runtime.close()
    assert not any(t.name == "feedpipe-loop" for t in threading.enumerate())
