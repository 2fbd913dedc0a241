"""Secrets never printed, logged or published: a feed URL with credentials is fetched with
them, while items, duplicates, worker logs and every CLI screen show it without them."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from tests.integration.conftest import Workers, add_feeds, wait_for_items
from tests.integration.test_cli import cli_env, feedpipe
from tests.integration.test_pipeline import english_feed, serve, story, url
from workers.embedded_redis import free_port

SECRET = "s3cretPW"
TOKEN = "t0k3nVALUE"


async def test_feed_credentials_are_used_but_never_shown(
    aiohttp_server: Any, redis: Redis, workers: Workers, redis_server: Any
) -> None:
    feed = english_feed(story("credentials", "Credentials stay private", 7), path="/private.xml")
    _site, server = await serve(aiohttp_server, [feed])
    plain = url(server, feed.path)
    secret_url = plain.replace("http://", f"http://reader:{SECRET}@") + f"?token={TOKEN}"
    await add_feeds(redis, secret_url)

    [item] = await wait_for_items(redis, 1, url(server, "/"))
    assert item["feed"]["url"] == f"{plain}?token=***"

    env = cli_env(redis_server.url)
    screens = [
        feedpipe("feeds", "ls", env=env).stdout,
        feedpipe("feeds", "ls", "--json", env=env).stdout,
        feedpipe("status", env=env).stdout,
        feedpipe("status", "--json", env=env).stdout,
    ]
    logs = [workers.logs[name].read_text(errors="replace") for name in workers.logs]
    for shown in [*screens, *logs]:
        assert SECRET not in shown and TOKEN not in shown
    assert "http://***@127.0.0.1" in screens[0]


def test_an_unreachable_redis_is_named_without_its_password() -> None:
    env = cli_env(f"redis://:{SECRET}@127.0.0.1:{free_port()}/0")
    for command in (["feeds", "ls"], ["status"], ["clusters"]):
        done = feedpipe(*command, env=env, check=False)
        assert done.returncode != 0
        assert SECRET not in done.stdout + done.stderr
        assert "redis://***@127.0.0.1" in done.stderr, done.stderr
