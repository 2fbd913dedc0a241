"""Every form of FEEDPIPE_REDIS_URL that Settings accepts runs the workers: a unix socket, a
database in the query, connection options (workers/broker_connection.py turns them into what
kombu takes). Real redis-servers, real workers, a loopback feed."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis as sync_redis
from redis.asyncio import Redis

from pipeline.settings import Settings
from tests.integration.conftest import KEYS, Workers, add_feeds
from tests.integration.servers import ServerThread
from tests.integration.test_crash_safety import farm_app
from tests.integration.test_redeliver import wait
from workers.celery_config import create_app
from workers.embedded_redis import EmbeddedRedis, find_redis_server

ENTRIES = 4
OPTIONS = "socket_timeout=20&socket_connect_timeout=5&health_check_interval=30"


@pytest.fixture
def socket_redis(tmp_path: Path) -> Iterator[Path]:
    # A short path: a unix socket's path is limited to ~100 bytes, pytest's tmp_path can be longer.
    socket = Path(f"/tmp/feedpipe-test-{time.monotonic_ns()}.sock")
    process = subprocess.Popen(
        [
            find_redis_server(),
            *("--port", "0", "--unixsocket", str(socket), "--unixsocketperm", "700"),
            *("--dir", str(tmp_path), "--save", "", "--appendonly", "no"),
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        wait(socket.exists, 15, "redis-server's socket")
        yield socket
    finally:
        process.terminate()
        process.wait(15)
        socket.unlink(missing_ok=True)


def test_the_broker_takes_the_urls_options(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "redis", persistent=False)
    server.start()
    url = f"redis://127.0.0.1:{server.port}?db=2&client_name=feedpipe-broker&{OPTIONS}"
    try:
        with create_app(Settings(redis_url=url)).connection_for_write() as broker:
            broker.ensure_connection(max_retries=1)
            with broker.default_channel.conn_or_acquire() as client:
                client.set("written-by-the-broker-connection", 1)
                named = [c["name"] for c in client.client_list()]
        with sync_redis.Redis.from_url(server.url.replace("/0", "/2")) as db2:
            assert db2.exists("written-by-the-broker-connection")
        assert "feedpipe-broker" in named
    finally:
        server.stop()


@pytest.mark.slow
def test_a_run_on_a_unix_socket_with_options_publishes_every_story(
    socket_redis: Path, tmp_path: Path
) -> None:
    url = f"unix://{socket_redis}?db=3&{OPTIONS}"
    publish_one_feed(url, tmp_path, node="socket")
    with sync_redis.Redis(unix_socket_path=str(socket_redis), db=0) as db0:
        assert db0.dbsize() == 0  # the broker's queues are in db 3 too


def publish_one_feed(redis_url: str, data_dir: Path, node: str) -> None:
    """A loopback feed of ENTRIES articles through real fetch, extract and beat workers on
    ``redis_url``: every story is published, once."""
    farm = ServerThread(farm_app(ENTRIES))
    asyncio.run(_register(redis_url, farm.url("/feed/0")))
    workers = Workers(redis_url, data_dir, node=node)
    try:
        with sync_redis.Redis.from_url(redis_url) as client:
            wait(lambda: client.xlen(KEYS.output_stream) >= ENTRIES, 60, "every story published")
            assert client.xlen(KEYS.output_stream) == ENTRIES
    finally:
        workers.stop()
        farm.stop()


async def _register(redis_url: str, feed_url: str) -> None:
    async with Redis.from_url(redis_url) as client:
        await add_feeds(client, feed_url)
