"""Feeds: read from a YAML or OPML file, kept in Redis (a hash per feed + the due ZSET)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import msgspec
import yaml
from lxml import etree
from redis.asyncio import Redis

from pipeline.errors import ConfigError
from pipeline.keys import CLAIM_DUE_FEEDS, Keys, reply_text
from pipeline.models import FeedSpec, FeedState
from pipeline.normalize import absolute_url, feed_id


def load_feeds_file(path: Path) -> list[FeedSpec]:
    """Feeds from ``feeds: [{url, title?, tags?, interval?}]`` YAML, or an OPML outline."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read feeds file {path}: {exc.strerror or exc}") from exc
    if path.suffix.lower() in (".opml", ".xml") or raw.lstrip().startswith(b"<"):
        return parse_opml(raw, source=str(path))
    return parse_feeds_yaml(raw, source=str(path))


def parse_feeds_yaml(raw: bytes | str, source: str) -> list[FeedSpec]:
    try:
        document = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(document, Mapping) or not isinstance(document.get("feeds"), list):
        raise ConfigError(f"{source}: expected a top-level 'feeds:' list")
    return [_feed_spec(entry, f"{source}: feeds[{i}]") for i, entry in enumerate(document["feeds"])]


def parse_opml(raw: bytes, source: str) -> list[FeedSpec]:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    try:
        root = etree.fromstring(raw, parser)
    except etree.XMLSyntaxError as exc:
        raise ConfigError(f"{source}: not valid OPML: {exc}") from exc
    specs = []
    for outline in root.iter("outline"):
        url = outline.get("xmlUrl")
        if not url:
            continue  # a folder; its children are visited by iter()
        parent = outline.getparent()
        folder = parent.get("title") or parent.get("text") if parent is not None else None
        entry = {"url": url, "title": outline.get("title") or outline.get("text")}
        if folder and parent is not None and parent.tag == "outline":
            entry["tags"] = [folder]
        specs.append(_feed_spec(entry, f"{source}: outline {url!r}"))
    return specs


def _feed_spec(entry: Any, where: str) -> FeedSpec:
    if isinstance(entry, str):
        entry = {"url": entry}
    try:
        spec = msgspec.convert(entry, FeedSpec)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    return validate_feed_spec(spec, where)


def validate_feed_spec(spec: FeedSpec, where: str) -> FeedSpec:
    url = absolute_url(spec.url)
    if url is None:
        raise ConfigError(f"{where}: feed url must be an absolute http(s) URL, got {spec.url!r}")
    if spec.interval is not None and spec.interval <= 0:
        raise ConfigError(f"{where}: interval must be a positive number of seconds")
    return msgspec.structs.replace(spec, url=url)


async def add_feeds(redis: Redis, keys: Keys, specs: Iterable[FeedSpec], now: float) -> int:
    """Add or update feeds. New feeds are due at once; known ones keep their state and schedule.

    Returns how many feeds were new.
    """
    added = 0
    for spec in specs:
        fid = feed_id(spec.url)
        async with redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.feed(fid), mapping=_spec_fields(fid, spec))
            pipe.hsetnx(keys.feed(fid), "added_at", repr(now))
            pipe.zadd(keys.feeds_due, {fid: now}, nx=True)
            results = await pipe.execute()
        added += int(results[-1])
    return added


def _spec_fields(fid: str, spec: FeedSpec) -> dict[Any, str]:
    fields: dict[Any, str] = {
        "id": fid,
        "url": spec.url,
        "tags": json.dumps(list(spec.tags), ensure_ascii=False),
        "interval": str(spec.interval or ""),
    }
    if spec.title:  # else keep the title learned from the feed itself
        fields["title"] = spec.title
    return fields


async def remove_feed(redis: Redis, keys: Keys, url_or_id: str) -> FeedState | None:
    """Forget a feed (by URL or id). Its published items stay on the stream."""
    state = await find_feed(redis, keys, url_or_id)
    if state is not None:
        async with redis.pipeline(transaction=True) as pipe:
            pipe.zrem(keys.feeds_due, state.id)
            pipe.zrem(keys.feeds_erroring, state.id)
            pipe.delete(keys.feed(state.id))
            await pipe.execute()
    return state


async def find_feed(redis: Redis, keys: Keys, url_or_id: str) -> FeedState | None:
    state = await load_feed(redis, keys, url_or_id)
    if state is None:
        url = absolute_url(url_or_id)
        state = await load_feed(redis, keys, feed_id(url)) if url else None
    return state


async def load_feed(redis: Redis, keys: Keys, fid: str) -> FeedState | None:
    fields = await redis.hgetall(keys.feed(fid))
    return feed_state_from_hash(fields) if fields else None


async def list_feeds(redis: Redis, keys: Keys) -> list[FeedState]:
    ids = await redis.zrange(keys.feeds_due, 0, -1)
    async with redis.pipeline(transaction=False) as pipe:
        for fid in ids:
            pipe.hgetall(keys.feed(reply_text(fid)))
        rows = await pipe.execute()
    return sorted((feed_state_from_hash(r) for r in rows if r), key=lambda f: f.url)


async def claim_due_feeds(
    redis: Redis, keys: Keys, now: float, lease_seconds: int, limit: int
) -> list[str]:
    ids = await redis.eval(CLAIM_DUE_FEEDS, 1, keys.feeds_due, repr(now), lease_seconds, limit)
    return [reply_text(i) for i in ids]


async def mark_due(redis: Redis, keys: Keys, fid: str, at: float) -> bool:
    """Poll a feed at ``at`` (e.g. now), whatever its schedule says."""
    return bool(await redis.zadd(keys.feeds_due, {fid: at}, xx=True, ch=True))


async def save_poll(
    redis: Redis, keys: Keys, fid: str, fields: Mapping[str, str], next_poll: float
) -> None:
    """Store a poll's outcome and the next poll time, unless the feed was removed meanwhile."""
    if not await redis.exists(keys.feed(fid)):
        return
    mapping: dict[Any, str] = {**fields, "next_poll": repr(next_poll)}
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(keys.feed(fid), mapping=mapping)
        pipe.zadd(keys.feeds_due, {fid: next_poll}, xx=True)
        if "errors" in fields:  # a poll that ended (a deferred one leaves the count as it was)
            errors = int(fields["errors"])
            if errors:
                pipe.zadd(keys.feeds_erroring, {fid: errors})
            else:
                pipe.zrem(keys.feeds_erroring, fid)
        await pipe.execute()


FeedHealth = Literal["new", "ok", "erroring", "failing"]


def feed_health(state: FeedState, failing_after: int) -> FeedHealth:
    """ "failing" after FEEDPIPE_FAILING_AFTER_ERRORS consecutive failed polls (it is still
    polled, at the backoff cap); "erroring" before that; "new" until its first poll."""
    if state.errors >= failing_after:
        return "failing"
    if state.errors:
        return "erroring"
    return "ok" if state.last_poll is not None else "new"


def feed_state_from_hash(raw: Mapping[Any, Any]) -> FeedState:
    fields = {reply_text(k): reply_text(v) for k, v in raw.items()}
    return FeedState(
        id=fields["id"],
        url=fields["url"],
        title=fields.get("title") or None,
        tags=tuple(json.loads(fields.get("tags") or "[]")),
        interval=int(fields["interval"]) if fields.get("interval") else None,
        etag=fields.get("etag") or None,
        last_modified=fields.get("last_modified") or None,
        last_poll=_float(fields.get("last_poll")),
        last_status=fields.get("last_status") or None,
        errors=int(fields.get("errors") or 0),
        last_error=fields.get("last_error") or None,
        next_poll=_float(fields.get("next_poll")),
        items=int(fields.get("items") or 0),
        added_at=_float(fields.get("added_at")),
        fetch_url=fields.get("fetch_url") or None,
        redirect_target=fields.get("redirect_target") or None,
        redirect_seen=int(fields.get("redirect_seen") or 0),
        body_hash=fields.get("body_hash") or None,
        last_full_fetch=_float(fields.get("last_full_fetch")),
        rate=_float(fields.get("rate")),
        hint=_float(fields.get("hint")),
    )


def _float(value: str | None) -> float | None:
    return float(value) if value else None
