"""`feedpipe websub`: the callback WebSub hubs call (pipeline/websub.py has the protocol).

GET  /websub/<feed id>   verification of intent: the challenge echoed, or 404
POST /websub/<feed id>   a notification: 202 (stored and handed to the fetch workers, or
                         ignored for a bad signature, as the spec wants a 2xx either way),
                         410 when we hold no subscription, 413 past the size cap
GET  /healthz            200 when Redis answers

It listens on FEEDPIPE_WEBSUB_HOST:FEEDPIPE_WEBSUB_PORT; hubs reach it at
FEEDPIPE_WEBSUB_BASE_URL (a reverse proxy with TLS in front of it, docs/operations.md).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable

from aiohttp import web
from redis.asyncio import Redis

from pipeline.errors import ConfigError
from pipeline.keys import Keys
from pipeline.settings import Settings
from pipeline.websub import WebSubPolicy, accept_push, verify_intent
from workers.runtime import websub_policy

log = logging.getLogger(__name__)

FEED_ID = re.compile(r"^[0-9a-f]{16}$")
PUSH_BODY_TTL_SECONDS = 3600  # a notification not ingested within an hour is left to polling

SendPush = Callable[[str, str], None]  # (feed id, body key): queue the fetch worker's task

REDIS: web.AppKey[Redis] = web.AppKey("redis", Redis)
KEYS: web.AppKey[Keys] = web.AppKey("keys", Keys)
POLICY: web.AppKey[WebSubPolicy] = web.AppKey("policy", WebSubPolicy)
SEND: web.AppKey[SendPush] = web.AppKey("send", object)  # type: ignore[arg-type]
MAX_BYTES: web.AppKey[int] = web.AppKey("max_bytes", int)


def make_app(
    redis: Redis, keys: Keys, policy: WebSubPolicy, send: SendPush, max_bytes: int
) -> web.Application:
    app = web.Application(client_max_size=max_bytes + 1)
    app[REDIS], app[KEYS], app[POLICY], app[SEND], app[MAX_BYTES] = (
        redis,
        keys,
        policy,
        send,
        max_bytes,
    )
    app.router.add_get("/websub/{feed_id}", verify)
    app.router.add_post("/websub/{feed_id}", notify)
    app.router.add_get("/healthz", health)
    return app


def _feed_id(request: web.Request) -> str:
    feed_id = request.match_info["feed_id"]
    if not FEED_ID.match(feed_id):
        raise web.HTTPNotFound()
    return feed_id


async def verify(request: web.Request) -> web.Response:
    app = request.app
    query = {k: v for k, v in request.query.items() if isinstance(v, str)}
    challenge = await verify_intent(app[REDIS], app[KEYS], app[POLICY], _feed_id(request), query)
    if challenge is None:
        raise web.HTTPNotFound()
    return web.Response(text=challenge, content_type="text/plain")


async def notify(request: web.Request) -> web.Response:
    app = request.app
    feed_id = _feed_id(request)
    if (request.content_length or 0) > app[MAX_BYTES]:
        raise web.HTTPRequestEntityTooLarge(app[MAX_BYTES], request.content_length or 0)
    body = await request.content.read(app[MAX_BYTES] + 1)
    if len(body) > app[MAX_BYTES]:
        raise web.HTTPRequestEntityTooLarge(app[MAX_BYTES], len(body))
    signature = request.headers.get("X-Hub-Signature")
    push = await accept_push(app[REDIS], app[KEYS], feed_id, body, signature, PUSH_BODY_TTL_SECONDS)
    if push.verdict == "gone":
        raise web.HTTPGone()
    if push.body_key is not None:
        # kombu's send is blocking I/O: off the loop.
        await asyncio.to_thread(app[SEND], feed_id, push.body_key)
    return web.Response(status=202)


async def health(request: web.Request) -> web.Response:
    await request.app[REDIS].ping()
    return web.Response(text="ok")


def serve(settings: Settings, redis_url: str, keys: Keys, send: SendPush) -> None:
    """Run the service until SIGINT/SIGTERM."""
    policy = websub_policy(settings)
    if policy is None:
        raise ConfigError(
            "FEEDPIPE_WEBSUB_BASE_URL is not set: the public URL hubs reach this service at"
        )

    async def build() -> web.Application:
        redis = Redis.from_url(redis_url)
        app = make_app(redis, keys, policy, send, settings.max_feed_bytes)

        async def close(_: web.Application) -> None:
            await redis.aclose()

        app.on_cleanup.append(close)
        return app

    web.run_app(
        build(), host=settings.websub_host, port=settings.websub_port, print=None, access_log=None
    )
