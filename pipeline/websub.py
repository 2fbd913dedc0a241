"""WebSub (W3C Recommendation, 2018): feeds that name a hub push their new entries to us.

The flow, and where each step lives:

1. **Discovery** (``pipeline/parse.py``, ``pipeline/fetch.py``): a feed names its hub with
   ``<link rel="hub">`` (Atom, or ``atom:link`` in RSS) or a ``Link: <...>; rel="hub"`` header,
   and its topic (the URL to subscribe to) with ``rel="self"``; the header wins, as the spec
   says. A poll that sees one calls ``note_hub``: the feed is due for a subscription.
2. **Subscribe** (``maintain_subscriptions``, a periodic task): a form POST to the hub with our
   callback (``<FEEDPIPE_WEBSUB_BASE_URL>/websub/<feed id>``), the topic, the lease we ask for
   and a per-subscription secret (32 random bytes, hex). The hub POST goes through the fetcher's
   SSRF guard: the hub URL came from a feed. Renewed at 80 % of the lease; retried hourly while
   the hub does not verify; unsubscribed when the feed is removed.
3. **Verification of intent** (``verify_intent``, served by ``feedpipe websub``): the hub GETs the
   callback with a challenge; it is echoed only for a subscription we asked for, on that topic.
4. **Notification** (``accept_push``): the hub POSTs the feed's new content with
   ``X-Hub-Signature: sha256=<HMAC of the body with the secret>``. A body without a valid
   signature (missing, another secret, sha1) is acknowledged and dropped, as the spec requires,
   and counted. A valid one is stored (claim check) and handed to the fetch worker, which parses
   it and takes its new entries exactly as a poll does (``ingest_push``): the same entry claims,
   item ids, extraction, dedupe and publish, so a pushed entry and a polled one are one item.
5. **Polling goes on** while subscribed, at ``FEEDPIPE_WEBSUB_POLL_SECONDS`` at least (a safety
   net for hubs that drop notifications): ``push_until`` in the feed's hash is the lease's end.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

import msgspec
from redis.asyncio import Redis

from pipeline import registry
from pipeline.errors import FeedError
from pipeline.fetch import Fetcher, FetchLimits
from pipeline.keys import CLAIM_DUE_FEEDS, STAT_PUSHES, STAT_PUSHES_REFUSED, Keys, reply_text
from pipeline.models import FeedState, FetchResult, ParsedFeed
from pipeline.redact import redact_url

log = logging.getLogger(__name__)

# Signature methods we accept: the spec lets hubs use sha1, which we refuse (collisions).
SIGNATURE_METHODS = {"sha256": hashlib.sha256, "sha384": hashlib.sha384, "sha512": hashlib.sha512}
MAX_LINK_CHARS = 2000
CLAIM_LEASE_SECONDS = 300  # a maintenance run that dies leaves its feeds for the next one
MAINTAIN_BATCH = 50
UNVERIFIED_FORGET_SECONDS = 86_400  # a request no hub verified within a day is not pending

SubscriptionState = Literal["wanted", "requested", "active", "denied", "unsubscribing"]


class HubLink(msgspec.Struct, frozen=True):
    hub: str
    topic: str


class Subscription(msgspec.Struct, frozen=True):
    """One feed's subscription, as stored in Redis (``Keys.websub``)."""

    feed_id: str
    hub: str
    topic: str
    secret: str  # hex; the HMAC key of the hub's notifications
    state: SubscriptionState
    changed_at: float
    lease_until: float | None = None  # end of the lease the hub granted (active)


@dataclass(frozen=True)
class WebSubPolicy:
    base_url: str  # FEEDPIPE_WEBSUB_BASE_URL: where hubs reach `feedpipe websub`
    lease_seconds: int  # the lease we ask for (the hub decides)
    poll_seconds: int  # the safety interval of a subscribed feed's polls
    retry_seconds: int = 3600  # a request the hub never verified is sent again
    renew_share: float = 0.8  # renew when this share of the lease has passed

    def callback(self, feed_id: str) -> str:
        return f"{self.base_url.rstrip('/')}/websub/{feed_id}"


def hub_link(parsed: ParsedFeed, result: FetchResult) -> HubLink | None:
    """The hub and topic a feed advertises: the Link header first, then the document."""
    hub = result.hub_link or parsed.hub_link
    topic = result.self_link or parsed.self_link or result.url
    if not hub or not _is_http_url(hub) or not _is_http_url(topic):
        return None
    return HubLink(hub=hub, topic=topic)


def _is_http_url(url: str) -> bool:
    if len(url) > MAX_LINK_CHARS:
        return False
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def check_signature(secret: str, body: bytes, header: str | None) -> str | None:
    """None when ``header`` ("sha256=<hex>") is the body's HMAC under ``secret``; else why not."""
    if not header:
        return "no X-Hub-Signature"
    method, _, given = header.strip().partition("=")
    digest = SIGNATURE_METHODS.get(method.strip().lower())
    if digest is None:
        return f"signature method {method.strip()[:20]!r} not accepted"
    expected = hmac.new(secret.encode(), body, digest).hexdigest()
    if not hmac.compare_digest(expected, given.strip().lower()):
        return "signature does not match"
    return None


async def load_subscription(redis: Redis, keys: Keys, feed_id: str) -> Subscription | None:
    raw = await redis.get(keys.websub(feed_id))
    if raw is None:
        return None
    try:
        return msgspec.json.decode(raw, type=Subscription)
    except (msgspec.DecodeError, msgspec.ValidationError):
        log.error("unreadable subscription, dropped", extra={"stage": "websub", "reason": feed_id})
        await redis.delete(keys.websub(feed_id))
        return None


async def _save(redis: Redis, keys: Keys, sub: Subscription, due: float | None) -> None:
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(keys.websub(sub.feed_id), msgspec.json.encode(sub))
        if due is not None:
            pipe.zadd(keys.websub_due, {sub.feed_id: due})
        await pipe.execute()


async def note_hub(redis: Redis, keys: Keys, feed_id: str, link: HubLink, now: float) -> None:
    """A poll saw the feed's hub: subscribe, unless subscribed (or asking) there already."""
    sub = await load_subscription(redis, keys, feed_id)
    if sub is not None and (sub.hub, sub.topic) == (link.hub, link.topic):
        return
    wanted = Subscription(
        feed_id=feed_id,
        hub=link.hub,
        topic=link.topic,
        secret=secrets.token_hex(32),
        state="wanted",
        changed_at=now,
    )
    await _save(redis, keys, wanted, now)


@dataclass(frozen=True)
class WebSubContext:
    redis: Redis
    keys: Keys
    fetcher: Fetcher
    limits: FetchLimits
    policy: WebSubPolicy


async def maintain_subscriptions(ctx: WebSubContext, now: float | None = None) -> int:
    """Subscribe, renew, retry and unsubscribe what is due; returns how many were handled."""
    now = time.time() if now is None else now
    ids = await CLAIM_DUE_FEEDS(
        ctx.redis, [ctx.keys.websub_due], [repr(now), CLAIM_LEASE_SECONDS, MAINTAIN_BATCH]
    )
    for raw_id in ids:
        await _maintain_one(ctx, reply_text(raw_id), now)
    return len(ids)


async def _maintain_one(ctx: WebSubContext, feed_id: str, now: float) -> None:
    sub = await load_subscription(ctx.redis, ctx.keys, feed_id)
    if sub is None:
        await ctx.redis.zrem(ctx.keys.websub_due, feed_id)
        return
    feed = await registry.load_feed(ctx.redis, ctx.keys, feed_id)
    if feed is not None:
        await _request(ctx, sub, "subscribe", now)
    elif _may_still_push(sub, now):  # the feed was removed: stop the pushes
        await _request(ctx, sub, "unsubscribe", now)
    else:  # never confirmed, lapsed, or the hub never confirmed our unsubscribe: forget it
        async with ctx.redis.pipeline(transaction=True) as pipe:
            pipe.delete(ctx.keys.websub(feed_id))
            pipe.zrem(ctx.keys.websub_due, feed_id)
            await pipe.execute()


def _may_still_push(sub: Subscription, now: float) -> bool:
    """Whether the hub may still push to us: a lease not over yet, or a request made within a
    day that it may still verify. Otherwise an unsubscription has nothing to stop."""
    if sub.state not in ("requested", "active"):
        return False
    if sub.lease_until is not None and sub.lease_until > now:
        return True
    return sub.state == "requested" and now - sub.changed_at < UNVERIFIED_FORGET_SECONDS


async def _request(
    ctx: WebSubContext, sub: Subscription, mode: Literal["subscribe", "unsubscribe"], now: float
) -> None:
    """POST the (un)subscription request; the hub confirms by calling back (verify_intent)."""
    form = {
        "hub.callback": ctx.policy.callback(sub.feed_id),
        "hub.mode": mode,
        "hub.topic": sub.topic,
    }
    if mode == "subscribe":
        form |= {"hub.secret": sub.secret, "hub.lease_seconds": str(ctx.policy.lease_seconds)}
    state: SubscriptionState = "requested" if mode == "subscribe" else "unsubscribing"
    try:
        status = await ctx.fetcher.post_form(sub.hub, form, feed_url=sub.topic, limits=ctx.limits)
        reason = None if 200 <= status < 300 else f"hub answered HTTP {status}"
    except FeedError as err:
        reason = str(err)
    if reason:
        log.warning(
            "websub request failed",
            extra={"stage": "websub", "feed_url": sub.topic, "reason": f"{mode}: {reason}"},
        )
    kept = msgspec.structs.replace(sub, state=state, changed_at=now) if not reason else sub
    await _save(ctx.redis, ctx.keys, kept, now + ctx.policy.retry_seconds)


async def verify_intent(
    redis: Redis, keys: Keys, policy: WebSubPolicy, feed_id: str, query: Mapping[str, str]
) -> str | None:
    """The hub's verification GET: the challenge to echo, or None (answer 404) when we did not
    ask for this. ``denied`` is acknowledged with an empty body."""
    sub = await load_subscription(redis, keys, feed_id)
    mode, topic = query.get("hub.mode", ""), query.get("hub.topic", "")
    if sub is None or topic != sub.topic:
        return None
    now = time.time()
    challenge = query.get("hub.challenge", "")
    if mode == "subscribe" and sub.state in ("requested", "active") and challenge:
        if not await redis.exists(keys.feed(feed_id)):  # removed since: no pushes wanted
            return None
        lease = _lease(query.get("hub.lease_seconds"), policy.lease_seconds)
        until = now + lease
        active = msgspec.structs.replace(sub, state="active", changed_at=now, lease_until=until)
        await _save(redis, keys, active, now + lease * policy.renew_share)
        await registry.set_push_until(redis, keys, feed_id, until)
        log.info("websub subscribed", extra={"stage": "websub", "feed_url": sub.topic})
        return challenge
    if mode == "unsubscribe" and sub.state == "unsubscribing" and challenge:
        async with redis.pipeline(transaction=True) as pipe:
            pipe.delete(keys.websub(feed_id))
            pipe.zrem(keys.websub_due, feed_id)
            await pipe.execute()
        return challenge
    if mode == "denied":
        reason = query.get("hub.reason", "")[:200]
        denied = msgspec.structs.replace(sub, state="denied", changed_at=now, lease_until=None)
        await _save(redis, keys, denied, now + policy.retry_seconds * 24)
        await registry.set_push_until(redis, keys, feed_id, None)
        log.warning(
            "websub denied", extra={"stage": "websub", "feed_url": sub.topic, "reason": reason}
        )
        return ""
    return None


def _lease(value: str | None, asked: int) -> int:
    """The hub's lease in seconds (it may grant less or more than asked), within 1 min-1 year."""
    try:
        granted = int(value) if value else asked
    except ValueError:
        granted = asked
    return max(60, min(granted, 365 * 86_400))


PushVerdict = Literal["accepted", "ignored", "gone"]


@dataclass(frozen=True)
class Push:
    verdict: PushVerdict
    body_key: str | None = None
    reason: str | None = None


async def accept_push(
    redis: Redis,
    keys: Keys,
    feed_id: str,
    body: bytes,
    signature: str | None,
    ttl_seconds: int,
) -> Push:
    """A hub's notification: stored for the fetch worker when signed by the subscription's
    secret; ``ignored`` (still acknowledged) when not; ``gone`` when we hold no subscription
    (the hub may drop it: answer 410)."""
    sub = await load_subscription(redis, keys, feed_id)
    if sub is None or sub.state not in ("requested", "active"):
        return Push("gone", reason="no subscription")
    problem = check_signature(sub.secret, body, signature)
    if problem:
        await redis.hincrby(keys.stats, STAT_PUSHES_REFUSED, 1)
        log.warning(
            "websub notification ignored",
            extra={"stage": "websub", "feed_url": redact_url(sub.topic), "reason": problem},
        )
        return Push("ignored", reason=problem)
    key = keys.push_body(secrets.token_hex(12))
    await redis.set(key, zlib.compress(body), ex=ttl_seconds)
    await redis.hincrby(keys.stats, STAT_PUSHES, 1)
    return Push("accepted", body_key=key)


async def load_push_body(redis: Redis, keys: Keys, body_key: str) -> bytes | None:
    """The stored notification (consumed: deleted once read); None when it expired."""
    if not body_key.startswith(keys.push_body("")):
        return None  # a task naming another key: never read what is not a push body
    async with redis.pipeline(transaction=True) as pipe:
        pipe.get(body_key)
        pipe.delete(body_key)
        blob, _ = await pipe.execute()
    if blob is None:
        return None
    try:
        return zlib.decompress(blob)
    except zlib.error:
        return None


def pushed_result(state: FeedState, body: bytes) -> FetchResult:
    """A pushed document as if fetched from the feed's own URL (the parser's base URL)."""
    return FetchResult(url=state.url, final_url=state.fetch_target, status=200, body=body)
