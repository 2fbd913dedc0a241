"""Every Redis key name and Lua script feedpipe uses, in one place.

Keys whose value format may change carry a version (``v1``): a new format gets new keys, and
old ones simply expire, so no code ever reads a value written in a format it does not know.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.resources
import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import NoScriptError

PREFIX = "feedpipe"
# 65,536 buckets of exact-dedupe marks of each kind: at up to ~220,000 items a day (30 days
# remembered, 37 at most) each stays under Redis's default hash-max-listpack-entries (128), the
# compact encoding.
MARK_BUCKET_CHARS = 4


@dataclass(frozen=True)
class Keys:
    output_stream: str = f"{PREFIX}:items"
    duplicates_stream: str = f"{PREFIX}:duplicates"
    # Articles given up after FEEDPIPE_EXTRACT_MAX_ATTEMPTS: {"dead": JSON with the reason}.
    dead_letter_stream: str = f"{PREFIX}:dead-letter"

    feeds_due: str = f"{PREFIX}:feeds:due"  # ZSET feed id -> next poll (unix seconds)
    # ZSET feed id -> consecutive failed polls, only for feeds whose last poll failed
    # (so "how many feeds are failing" is one ZCOUNT, not a scan of every feed).
    feeds_erroring: str = f"{PREFIX}:feeds:erroring"
    stats: str = f"{PREFIX}:stats"  # HASH of monotonically increasing counters
    # HASH of feed request durations: "le:<ms>" -> requests that took at most that long and
    # more than the bucket below (plain counts; the exporter makes them cumulative), "sum_ms",
    # "count". A failed poll counts the time until it failed.
    fetch_latency: str = f"{PREFIX}:stats:fetch_ms"

    # The ledger of extract jobs queued and not yet decided (pipeline/redeliver.py):
    # ZSET item id -> last sign of life (queued or an attempt started, unix seconds), and
    # HASH item id -> the ExtractJob as JSON, to send it again if the broker lost it.
    extract_pending: str = f"{PREFIX}:v1:extract:pending"
    extract_jobs: str = f"{PREFIX}:v1:extract:jobs"

    def feed(self, feed_id: str) -> str:
        """HASH: a feed's configuration and state (see models.FeedState)."""
        return f"{PREFIX}:feed:{feed_id}"

    def entry_seen(self, feed_id: str, identity_hash: str) -> str:
        """STRING "claimed" (short TTL while being processed) or "done" (seen TTL)."""
        return f"{PREFIX}:v1:entry:{feed_id}:{identity_hash}"

    def entry_seen_of(self, feed_id: str, identity: str) -> str:
        """``entry_seen`` of the entry whose feed gives it this identity."""
        digest = hashlib.sha256(identity.encode("utf-8")).hexdigest()[:32]
        return self.entry_seen(feed_id, digest)

    # Exact-dedupe marks: what was published (or discarded as a copy), by item id and by
    # text hash, for FEEDPIPE_SEEN_TTL_DAYS. Entries share HASH buckets chosen by the id's first
    # MARK_BUCKET_CHARS hex digits (the field is the rest): a key per entry cost ~165 B with
    # its TTL, a listpack entry ~35-70 B (docs/dedupe.md). Values start with the unix day they
    # were written, which PUBLISH_ITEM prunes by, since a hash field has no TTL of its own.
    def item_mark(self, item_id: str) -> tuple[str, str]:
        """(HASH, field): "<day>" when the item was published, "<day>:<kept item id>" when it
        was a copy of that item."""
        return self._mark_bucket("items", item_id)

    def content_mark(self, content_hash: str) -> tuple[str, str]:
        """(HASH, field): "<day>:<id of the item first published with this exact text>"."""
        return self._mark_bucket("texts", content_hash)

    # The same as one STRING key per entry, as releases before the hash buckets wrote them: read
    # (never written) until they expire, FEEDPIPE_SEEN_TTL_DAYS after the upgrade
    # (docs/operations.md).
    def legacy_item(self, item_id: str) -> str:
        """STRING: the stream id an item was published under, or "dup:<kept item id>"."""
        return f"{PREFIX}:v1:item:{item_id}"

    def legacy_content(self, content_hash: str) -> str:
        """STRING: the id of the item first published with this exact text."""
        return f"{PREFIX}:v1:content:{content_hash}"

    @staticmethod
    def _mark_bucket(kind: str, digest: str) -> tuple[str, str]:
        bucket, field = digest[:MARK_BUCKET_CHARS], digest[MARK_BUCKET_CHARS:]
        return f"{PREFIX}:v2:{kind}:{bucket}", field

    # Routes (pipeline/routes.py): STRING the RouteTable as JSON, and STRING its version (a
    # hash of it; the publish script refuses a publish matched with another version).
    routes: str = f"{PREFIX}:v1:routes"
    routes_version: str = f"{PREFIX}:v1:routes:version"

    def route_stream(self, name: str) -> str:
        """STREAM of one route: the output stream's name and the route's."""
        return f"{self.output_stream}:route:{name}"

    def routed_mark(self, item_id: str) -> tuple[str, str]:
        """(HASH, field): "<day>:<route>,<route>" the routes a published story reached (by
        its kept item's id), so a copy from a routed source still reaches a route the kept
        item did not (PUBLISH_ITEM builds the same names from ``routed_marks_prefix``)."""
        return self._mark_bucket("routed", item_id)

    routed_marks_prefix: str = f"{PREFIX}:v2:routed:"

    # WebSub (pipeline/websub.py): ZSET feed id -> when its subscription needs a request
    # (subscribe, renew, retry, unsubscribe).
    websub_due: str = f"{PREFIX}:v1:websub:due"

    def websub(self, feed_id: str) -> str:
        """STRING: a feed's WebSub subscription (websub.Subscription as JSON)."""
        return f"{PREFIX}:v1:websub:sub:{feed_id}"

    def push_body(self, token: str) -> str:
        """STRING: zlib body of a hub's notification, waiting for the fetch worker (1 h TTL)."""
        return f"{PREFIX}:v1:push:{token}"

    clusters: str = f"{PREFIX}:clusters"  # ZSET kept item id -> cluster size

    def cluster(self, item_id: str) -> str:
        """HASH {title} of a story cluster."""
        return f"{PREFIX}:cluster:{item_id}"

    def cluster_sources(self, item_id: str) -> str:
        """SET of a story cluster's outlets (PUBLISH_ITEM builds the same name)."""
        return self.cluster(item_id) + ":sources"

    def cluster_copies(self, item_id: str) -> str:
        """LIST of a story cluster's copies, JSON each: id, source, title, similarity and the
        slot check's finding (PUBLISH_ITEM builds the same name; the last 100 copies)."""
        return self.cluster(item_id) + ":copies"

    def dedupe_index(self, scheme: str) -> str:
        """Prefix of the near-duplicate index of one fingerprint scheme (named by a short hash
        of it: millions of keys carry the prefix):
        ``<prefix>tables`` STRING the window's slot tables, oldest first (dedupe.window_tables),
        ``<prefix>slots:<number>`` STRING a slot table: 40-bit slots (dedupe.slot_value: a band
        hash's check byte, the item's day code and its number that day), and for a table of the
        largest size ``<prefix>slots:<number>:items`` the items written into it,
        ``<prefix><YYYYMMDD>:docs:<chunk>`` STRING the day's fingerprint records, packed,
        ``<prefix><YYYYMMDD>:where`` STRING per item of the day, in order: where its record is
        (chunk, offset, length; 2 bytes each). All expire one day after the window (a slot
        table one day after the last day it took entries)."""
        scheme_id = hashlib.sha256(scheme.encode()).hexdigest()[:8]
        return f"{PREFIX}:dd:{scheme_id}:"

    def host_slots(self, host: str) -> str:
        """ZSET request token -> lease end (ms): requests in flight to one host."""
        return f"{PREFIX}:host:{host}:slots"

    def host_next_start(self, host: str) -> str:
        """STRING: the earliest time (ms) the next request to this host may start."""
        return f"{PREFIX}:host:{host}:next"

    def attempts(self, item_id: str) -> str:
        """HASH {count, reason, reason_attempt}: deliveries of one article so far, and the
        last recorded failure with the attempt it belongs to (RECORD_FAILURE)."""
        return f"{PREFIX}:v1:attempts:{item_id}"

    def html(self, item_id: str) -> str:
        """STRING: zlib-compressed article HTML (claim check for the extract task)."""
        return f"{PREFIX}:v1:html:{item_id}"


# Counters in Keys.stats (the live summary of `feedpipe run` reads their deltas).
STAT_POLLS = "polls"
STAT_NOT_MODIFIED = "not_modified"
STAT_UNCHANGED = "unchanged"  # 200 with the same body as last time
STAT_DEFERRED = "deferred"  # host busy: polled again soon
STAT_EXTRACT_FAILURES = "extract_failures"  # extract attempts that raised, crashed or timed out
STAT_DEAD_LETTERED = "dead_lettered"  # articles given up (Keys.dead_letter_stream)
STAT_REDELIVERED = "redelivered"  # extract jobs the broker lost, sent again
# Polls by outcome class: "polls:2xx", "polls:304", "polls:4xx", "polls:5xx", "polls:network"
# (no HTTP answer: timeout, TLS, refused...), "polls:invalid" (answered, but not a feed or too
# large), "polls:unexpected" (a bug: see the worker log).
STAT_POLLS_BY_CLASS = "polls:"
FETCH_LATENCY_BUCKETS_MS = (50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000)
STAT_POLL_ERRORS = "poll_errors"
STAT_PUSHES = "pushes"  # WebSub notifications accepted (signed by the subscription's secret)
STAT_PUSHES_REFUSED = "pushes_refused"  # notifications ignored: bad or missing signature
STAT_NEW_ENTRIES = "new_entries"
STAT_PUBLISHED = "published"
STAT_DUPLICATES = "duplicates"
STAT_FALLBACKS = "extract_fallbacks"
STAT_PAGES_DISALLOWED = "pages_disallowed"  # article pages robots.txt refused (not fetched)
STAT_PAGES_SKIPPED = "pages_skipped"  # entries of full-content feeds taken from the feed alone


_PLACEHOLDER = re.compile(r"\{\{([A-Z][A-Z0-9_]*)\}\}")


@functools.cache
def _lua_file(name: str) -> str:
    """``lua/<name>.lua``, or the files of ``lua/<name>/`` in name order (a long script in
    parts, one step each), joined into one script."""
    folder = importlib.resources.files("pipeline") / "lua"
    if (folder / name).is_dir():
        parts = sorted(
            (p for p in (folder / name).iterdir() if p.name.endswith(".lua")), key=lambda p: p.name
        )
        return "\n".join(part.read_text("utf-8") for part in parts)
    return (folder / f"{name}.lua").read_text("utf-8")


def lua_source(name: str, constants: Mapping[str, str | int] | None = None) -> str:
    """The text of the script ``pipeline/lua/<name>.lua`` or ``pipeline/lua/<name>/``
    (package data, installed with the code), each ``{{NAME}}`` in it replaced by
    ``constants[NAME]``: sizes, positions and counter names come from the Python constants they
    mirror. Each script opens with what it does, its KEYS and its ARGV."""
    given = dict(constants or {})
    text = _lua_file(name)
    wanted = set(_PLACEHOLDER.findall(text))
    if wanted != set(given):
        raise ValueError(
            f"pipeline/lua/{name}: placeholders {sorted(wanted)}, given {sorted(given)}"
        )
    return _PLACEHOLDER.sub(lambda m: str(given[m.group(1)]), text)


class LuaScript:
    """A script of pipeline/lua/, called one way everywhere.

    ``await script(redis, keys, args)`` runs it with EVALSHA: the text reaches a server once,
    and again only where the server lost it (a restart, SCRIPT FLUSH). ``script.queue(pipe,
    keys, args)`` adds it to a pipeline as EVAL of the text without its header comments: a
    pipeline cannot reload a missing script halfway, and redis-py's way (SCRIPT EXISTS before
    every pipeline) costs a round trip each time. Not redis-py's ``AsyncScript`` for the
    EVALSHA side: it binds to one client when it is made, where these module-level scripts
    serve every client of every process; the fallback it would give is the four lines below."""

    def __init__(self, name: str, constants: Mapping[str, str | int] | None = None) -> None:
        self.name = name
        self.text = lua_source(name, constants)
        self.sha = hashlib.sha1(self.text.encode()).hexdigest()
        self.body = "\n".join(
            itertools.dropwhile(lambda line: line.startswith("--"), self.text.splitlines())
        )

    async def __call__(self, redis: Redis, keys: Sequence[str], args: Sequence[Any] = ()) -> Any:
        try:
            return await redis.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            await redis.script_load(self.text)
            return await redis.evalsha(self.sha, len(keys), *keys, *args)

    def queue(self, pipe: Pipeline, keys: Sequence[str], args: Sequence[Any] = ()) -> None:
        pipe.eval(self.body, len(keys), *keys, *args)


# The scripts, by the names the code calls them with.
CLAIM_DUE_FEEDS = LuaScript("claim_due_feeds")
CLAIM_ENTRY = LuaScript("claim_entry")
RECORD_FAILURE = LuaScript("record_failure")
RECORD_FULLTEXT_CHECK = LuaScript("record_fulltext_check")
ACQUIRE_HOST_SLOT = LuaScript("acquire_host_slot")
SAVE_POLL = LuaScript("save_poll")
SET_FEED_FIELDS = LuaScript("set_feed_fields")
ADD_FEEDS = LuaScript("add_feeds")
COUNT_NEW_FEEDS = LuaScript("count_new_feeds")


def reply_text(value: object) -> str:
    """A Redis reply as text (feedpipe's clients return bytes)."""
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def keys_for(output_stream: str, duplicates_stream: str) -> Keys:
    """Keys with the configured stream names (FEEDPIPE_OUTPUT_STREAM, ..._DUPLICATES_STREAM)."""
    return Keys(output_stream=output_stream, duplicates_stream=duplicates_stream)
