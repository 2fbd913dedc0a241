"""Routes: named output streams, each taking the published items that match its condition.

A route's condition is on the item's fields: languages, feed tags, feed URLs or ids, sources,
and a regular expression on title and text. Every condition given must hold; within one, any
listed value does. A route with no condition takes every item.

Routes live in Redis (``Keys.routes``, ``Keys.routes_version``), written by ``feedpipe feeds
import`` / ``feedpipe run --feeds`` from the feeds file's ``routes:`` section. A publish passes
the version its routes were matched with; the publish script refuses a stale version and the
caller reloads (``Router``), so a route change reaches every worker without a restart and no
item is routed by an old table once the new one is saved.

Patterns are RE2 (google-re2): matched against hostile page text, a backtracking engine could
be stalled by a pattern such as ``(a+)+$`` for minutes; RE2 runs in time linear in the text.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import re2  # type: ignore[import-untyped]
from redis.asyncio import Redis

from pipeline.errors import ConfigError
from pipeline.keys import Keys
from pipeline.models import Item
from pipeline.normalize import primary_subtag
from pipeline.redact import without_credentials

log = logging.getLogger(__name__)

ROUTES_MAX = 64  # each matching route is one more XADD in the publish script
PATTERN_MAX_CHARS = 1000
ROUTE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,47}$")
LANGUAGE_TAG = re.compile(r"^[a-z]{2,3}$")
_FIELDS = ("name", "languages", "tags", "feeds", "sources", "match")


class Route(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One route as written in the feeds file and stored in Redis."""

    name: str
    languages: tuple[str, ...] = ()  # primary subtags: "fa", "ar"
    tags: tuple[str, ...] = ()  # any of the feed's tags
    feeds: tuple[str, ...] = ()  # feed URLs (credentials stripped) or feed ids
    sources: tuple[str, ...] = ()  # the item's source (site name or feed title), exact
    match: str | None = None  # RE2 pattern searched in the title, then the text

    def describe(self) -> str:
        parts = [
            f"{label} {', '.join(values)}"
            for label, values in (
                ("languages", self.languages),
                ("tags", self.tags),
                ("feeds", tuple(without_credentials(f) for f in self.feeds)),
                ("sources", self.sources),
            )
            if values
        ]
        if self.match:
            parts.append(f"match /{self.match}/")
        return "; ".join(parts) or "every item"


class RouteTable(msgspec.Struct, frozen=True):
    """The routes as one Redis value; ``version`` comes from ``Keys.routes_version``."""

    routes: tuple[Route, ...] = ()
    version: str = "0"


def parse_routes(raw: Any, source: str) -> tuple[Route, ...]:
    """The ``routes:`` section of a feeds file, validated; ConfigError names the bad entry."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(f"{source}: 'routes:' must be a list of routes")
    if len(raw) > ROUTES_MAX:
        raise ConfigError(f"{source}: {len(raw)} routes, at most {ROUTES_MAX}")
    routes = tuple(_route(entry, f"{source}: routes[{i}]") for i, entry in enumerate(raw))
    names = [r.name for r in routes]
    for name in names:
        if names.count(name) > 1:
            raise ConfigError(f"{source}: route name {name!r} is given twice")
    return routes


def _route(entry: Any, where: str) -> Route:
    if not isinstance(entry, Mapping):
        raise ConfigError(f"{where}: expected a mapping with 'name' and conditions")
    # A name that is not printable (a newline would split the one-line error) shown escaped.
    unknown = sorted(k if k.isprintable() else repr(k) for k in map(str, entry) if k not in _FIELDS)
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(unknown)}; known: {_FIELDS}")
    name = entry.get("name")
    if not isinstance(name, str) or not ROUTE_NAME.match(name):
        raise ConfigError(
            f"{where}.name: {name!r} is not a route name (a-z, 0-9, '_', '-', at most 48)"
        )
    languages = tuple(v.lower() for v in _strings(entry.get("languages"), f"{where}.languages"))
    for language in languages:
        if not LANGUAGE_TAG.match(language):
            raise ConfigError(f"{where}.languages: {language!r} is not a language code (fa, ar)")
    feeds = tuple(without_credentials(f) for f in _strings(entry.get("feeds"), f"{where}.feeds"))
    match = entry.get("match")
    if match is not None:
        compile_pattern(match, f"{where}.match")
    return Route(
        name=name,
        languages=languages,
        tags=_strings(entry.get("tags"), f"{where}.tags"),
        feeds=feeds,
        sources=_strings(entry.get("sources"), f"{where}.sources"),
        match=match,
    )


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{where}: expected a list of non-empty strings")
    return tuple(value)


def compile_pattern(pattern: Any, where: str) -> Any:
    if not isinstance(pattern, str) or not pattern or len(pattern) > PATTERN_MAX_CHARS:
        raise ConfigError(f"{where}: expected a pattern of 1 to {PATTERN_MAX_CHARS} characters")
    options = re2.Options()
    options.log_errors = False  # the error is raised, and reported once, here
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        problem = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        # RE2 quotes the pattern, newlines and all: escaped, the error stays one line.
        shown = problem if problem.isprintable() else repr(problem)
        raise ConfigError(f"{where}: not a valid RE2 pattern: {shown}") from exc


@dataclass(frozen=True)
class _Compiled:
    route: Route
    pattern: Any  # re2 pattern or None


class RoutingTable:
    """Routes ready to match items, with the version they were read at."""

    def __init__(self, table: RouteTable) -> None:
        self.version = table.version
        self.routes = table.routes
        self._compiled = tuple(self._compile(r) for r in table.routes)

    @staticmethod
    def _compile(route: Route) -> _Compiled:
        pattern = compile_pattern(route.match, route.name) if route.match else None
        return _Compiled(route, pattern)

    def matching(self, item: Item, feed_id: str) -> tuple[Route, ...]:
        return tuple(c.route for c in self._compiled if _matches(c, item, feed_id))


def _matches(compiled: _Compiled, item: Item, feed_id: str) -> bool:
    route = compiled.route
    if route.languages and primary_subtag(item.language) not in route.languages:
        return False
    if route.tags and not set(route.tags) & set(item.feed.tags):
        return False
    if route.feeds and item.feed.url not in route.feeds and feed_id not in route.feeds:
        return False
    if route.sources and item.source not in route.sources:
        return False
    pattern = compiled.pattern
    return pattern is None or bool(pattern.search(item.title) or pattern.search(item.text))


async def save_routes(redis: Redis, keys: Keys, routes: Sequence[Route]) -> str:
    """Replace the stored routes; returns their version. Workers pick them up at their next
    publish (the script refuses another version)."""
    encoded = msgspec.json.encode(RouteTable(routes=tuple(routes)))
    # The version names the content, not a count: a worker holding an older table never sees
    # its version again, even after the keys were deleted and other routes saved.
    version = hashlib.sha256(encoded).hexdigest()[:12]
    async with redis.pipeline(transaction=True) as pipe:
        pipe.set(keys.routes, encoded)
        pipe.set(keys.routes_version, version)
        await pipe.execute()
    return version


async def stored_routes(redis: Redis, keys: Keys) -> RouteTable:
    """The stored routes as written (none when never saved), for listing them: nothing is
    compiled. A stored value this version cannot read lists nothing, logged."""
    raw, version = await redis.mget(keys.routes, keys.routes_version)
    version_text = version.decode() if isinstance(version, bytes) else str(version or "0")
    if raw is None:
        return RouteTable(version=version_text)
    try:
        table = msgspec.json.decode(raw, type=RouteTable)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        return _unreadable(exc, version_text)
    return msgspec.structs.replace(table, version=version_text)


async def load_routes(redis: Redis, keys: Keys) -> RoutingTable:
    """The stored routes, ready to match. Routes this version cannot read or compile route
    nothing, logged once per load: the main stream goes on."""
    table = await stored_routes(redis, keys)
    try:
        return RoutingTable(table)
    except ConfigError as exc:
        return RoutingTable(_unreadable(exc, table.version))


def _unreadable(exc: Exception, version: str) -> RouteTable:
    log.error(
        "stored routes unreadable, routing nothing until they are saved again",
        extra={"stage": "routes", "reason": str(exc)[:200]},
    )
    return RouteTable(version=version)


class Router:
    """This process's routes as last read; ``reload`` when the publish script reports a newer
    version. Shared by the coroutines of one event loop."""

    def __init__(self) -> None:
        self._table: RoutingTable | None = None

    async def current(self, redis: Redis, keys: Keys) -> RoutingTable:
        if self._table is None:
            self._table = await load_routes(redis, keys)
        return self._table

    async def reload(self, redis: Redis, keys: Keys) -> RoutingTable:
        self._table = await load_routes(redis, keys)
        return self._table
