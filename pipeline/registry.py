"""Feeds: read from a YAML or OPML file, kept in Redis (a hash per feed + the due ZSET)."""

from __future__ import annotations

import io
import itertools
import json
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal
from urllib.parse import urlsplit

import msgspec
import yaml
from lxml import etree
from msgspec import UNSET
from redis.asyncio import Redis
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.resolver import Resolver

from pipeline.errors import ConfigError
from pipeline.keys import ADD_FEEDS, CLAIM_DUE_FEEDS, SAVE_POLL, SET_FEED_FIELDS, Keys, reply_text
from pipeline.models import FULLTEXT_MODES, FeedSpec, FeedState, Fulltext, PollRecord
from pipeline.netguard import DestinationRefused, NetworkPolicy
from pipeline.normalize import absolute_url, feed_id
from pipeline.redact import MASK, redact_text, redact_url
from pipeline.routes import Route, parse_routes
from pipeline.settings import MAX_INTERVAL_SECONDS

# Feeds written per Redis round trip (one ADD_FEEDS script) by add_feeds.
IMPORT_BATCH = 1000
# Feeds read between two calls of a progress callback.
PROGRESS_EVERY = 1000
# Bytes looked at to tell OPML from YAML.
_HEAD_BYTES = 65536

Progress = Callable[[int], None]


class FeedsDocument(msgspec.Struct, frozen=True):
    """What a feeds file holds: its feeds, and its routes when it has a ``routes:`` section
    (None: the file says nothing about routes, the stored ones stay)."""

    specs: list[FeedSpec]
    routes: tuple[Route, ...] | None = None


def load_feeds_document(
    path: Path, *, policy: FeedPolicy | None = None, progress: Progress | None = None
) -> FeedsDocument:
    """``load_feeds_file`` with the file's ``routes:`` section (pipeline/routes.py)."""
    collected = _read_feeds_file(path, policy, progress)
    return FeedsDocument(collected.specs, collected.routes)


def load_feeds_file(
    path: Path, *, policy: FeedPolicy | None = None, progress: Progress | None = None
) -> list[FeedSpec]:
    """Feeds from ``feeds: [{url, title?, tags?, interval?}]`` YAML, or an OPML outline.

    The file is streamed: a 100,000-feed file costs its specs, not its whole parse tree
    (docs/operations.md, "Big imports"). Every entry is validated as it is read and the first
    bad one raises ConfigError naming it, before the caller writes anything: an import is all
    of the file or nothing. ``progress(n)``: called with the feeds read so far, every
    PROGRESS_EVERY feeds. ``policy``: see FeedPolicy (commands pass
    ``workers.runtime.feed_policy(settings)``)."""
    return _read_feeds_file(path, policy, progress).specs


def _read_feeds_file(
    path: Path, policy: FeedPolicy | None, progress: Progress | None
) -> _Collected:
    try:
        with io.BufferedReader(io.FileIO(path, "rb"), buffer_size=_HEAD_BYTES) as stream:
            head = stream.peek(_HEAD_BYTES)[:_HEAD_BYTES].removeprefix(b"\xef\xbb\xbf")
            collected = _Collected(progress)
            if path.suffix.lower() in (".opml", ".xml") or head.lstrip().startswith(b"<"):
                _read_opml(stream, str(path), policy, collected)
            else:
                _read_feeds_yaml(stream, str(path), policy, collected)
    except OSError as exc:
        raise ConfigError(f"cannot read feeds file {path}: {exc.strerror or exc}") from exc
    return collected


def parse_feeds_yaml(
    raw: bytes | str, source: str, *, policy: FeedPolicy | None = None
) -> list[FeedSpec]:
    collected = _Collected(None)
    _read_feeds_yaml(raw, source, policy, collected)
    return collected.specs


def parse_opml(raw: bytes, source: str, *, policy: FeedPolicy | None = None) -> list[FeedSpec]:
    collected = _Collected(None)
    _read_opml(io.BytesIO(raw), source, policy, collected)
    return collected.specs


class _Collected:
    """The specs of one file as they are read: equal tag tuples shared (a file's feeds mostly
    repeat a few), progress reported."""

    def __init__(self, progress: Progress | None) -> None:
        self.specs: list[FeedSpec] = []
        self.routes: tuple[Route, ...] | None = None  # the file's routes: section, if any
        self._tags: dict[tuple[str, ...], tuple[str, ...]] = {}
        self._progress = progress

    def add(self, spec: FeedSpec) -> None:
        if spec.tags:
            shared = self._tags.setdefault(spec.tags, spec.tags)
            if shared is not spec.tags:
                spec = msgspec.structs.replace(spec, tags=shared)
        self.specs.append(spec)
        if self._progress is not None and len(self.specs) % PROGRESS_EVERY == 0:
            self._progress(len(self.specs))


# What PyYAML's constructors raise besides YAMLError on hostile scalars: ``!!int x``
# (ValueError), ``!!timestamp x`` (AttributeError), ``!!bool maybe`` (KeyError), ...; and
# nesting deeper than Python's recursion limit.
_YAML_ERRORS = (
    yaml.YAMLError,
    ValueError,
    TypeError,
    AttributeError,
    KeyError,
    IndexError,
    OverflowError,
    RecursionError,
)
_MAP_TAGS = (None, "!", "tag:yaml.org,2002:map")
_SEQ_TAGS = (None, "!", "tag:yaml.org,2002:seq")


if yaml.__with_libyaml__:
    from yaml._yaml import CParser

    class _FeedsLoader(CParser, Composer, SafeConstructor, Resolver):
        """libyaml's event parser under PyYAML's own composer and safe constructor, so the
        feeds list can be composed and constructed one entry at a time (yaml.CSafeLoader
        composes the whole document first: hundreds of MB of nodes for 100,000 feeds)."""

        def __init__(self, stream: Any) -> None:
            CParser.__init__(self, stream)
            Composer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)

else:  # PyYAML without libyaml: the same events from the pure-Python parser, slower
    _FeedsLoader = yaml.SafeLoader  # type: ignore[misc,assignment]


def _read_feeds_yaml(
    stream: IO[bytes] | bytes | str, source: str, policy: FeedPolicy | None, into: _Collected
) -> None:
    entries = _yaml_feed_entries(stream, source, into)
    for index in itertools.count():
        try:
            entry = next(entries, _END)
        except _YAML_ERRORS as exc:
            raise ConfigError(f"{source}: not valid YAML: {_yaml_problem(exc)}") from exc
        if entry is _END:
            return
        into.add(_feed_spec(entry, f"{source}: feeds[{index}]", policy))


_END = object()


def _yaml_feed_entries(
    stream: IO[bytes] | bytes | str, source: str, into: _Collected
) -> Iterator[Any]:
    """Each entry of the top-level ``feeds:`` list, as plain Python values, one at a time.

    A ``routes:`` section is validated into ``into.routes``. Other top-level keys are composed
    (their anchors stay usable) and dropped. The whole stream is read, so a syntax error after
    the list, or a second document, is still found."""
    loader: Any = _FeedsLoader(stream)
    no_feeds = ConfigError(f"{source}: expected a top-level 'feeds:' list")
    loader.get_event()  # StreamStartEvent
    if not loader.check_event(yaml.DocumentStartEvent):
        raise no_feeds  # an empty file
    loader.get_event()
    top = loader.peek_event()
    if not isinstance(top, yaml.MappingStartEvent) or top.tag not in _MAP_TAGS:
        raise no_feeds
    loader.get_event()
    found = False
    while not loader.check_event(yaml.MappingEndEvent):
        key = loader.construct_document(loader.compose_node(None, None))
        if key == "routes":
            _read_routes(loader, source, into)
            continue
        if key != "feeds":
            loader.compose_node(None, None)
            continue
        if found:
            raise ConfigError(f"{source}: 'feeds:' is given twice")
        found = True
        value = loader.peek_event()
        streamed = isinstance(value, yaml.SequenceStartEvent) and value.anchor is None
        if streamed and value.tag in _SEQ_TAGS:
            loader.get_event()
            while not loader.check_event(yaml.SequenceEndEvent):
                yield loader.construct_document(loader.compose_node(None, None))
            loader.get_event()
        else:  # an alias, a tagged or anchored list (kept whole), or no list at all
            feeds = loader.construct_document(loader.compose_node(None, None))
            if not isinstance(feeds, list):
                raise no_feeds
            yield from feeds
    loader.get_event()  # MappingEndEvent
    loader.get_event()  # DocumentEndEvent
    if not loader.check_event(yaml.StreamEndEvent):
        raise yaml.YAMLError("more than one document (a second '---')")
    if not found:
        raise no_feeds


def _read_routes(loader: Any, source: str, into: _Collected) -> None:
    """The ``routes:`` section (an empty one clears the stored routes)."""
    if into.routes is not None:
        raise ConfigError(f"{source}: 'routes:' is given twice")
    raw = loader.construct_document(loader.compose_node(None, None))
    into.routes = parse_routes([] if raw is None else raw, source)


def _yaml_problem(exc: BaseException) -> str:
    """One line: what is wrong, and where (PyYAML's message spans several lines)."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        context = f"{exc.context}, " if exc.context else ""
        return f"line {mark.line + 1}, column {mark.column + 1}: {context}{exc.problem}"
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    text = str(exc) if isinstance(exc, yaml.YAMLError) else f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())[:300]


def _read_opml(stream: IO[bytes], source: str, policy: FeedPolicy | None, into: _Collected) -> None:
    """Outlines with an ``xmlUrl`` are feeds; the titles of the outlines without one (folders)
    around a feed are its tags, outermost first. Read as a stream of events, each element
    freed once closed; hardened as before: no entities resolved, no network, libxml2's
    default limits (depth 256, no huge text nodes)."""
    events = etree.iterparse(
        stream,
        events=("start", "end"),
        resolve_entities=False,
        no_network=True,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )
    # Per open outline: the tags of a feed inside it.
    tags_within: list[tuple[str, ...]] = []
    try:
        for event, element in events:
            if event == "start" and element.getparent() is None:
                _check_opml_root(element, source)
            outline = element.tag == "outline"
            if event == "end":
                if outline:
                    tags_within.pop()
                _free(element)
                continue
            if not outline:
                continue
            tags = tags_within[-1] if tags_within else ()
            url = element.get("xmlUrl")
            title = element.get("title") or element.get("text")
            if url:
                entry = {"url": url, "title": title, "tags": list(tags)}
                where = f"{source}: line {element.sourceline}: outline {shown_url(url)}"
                into.add(_feed_spec(entry, where, policy))
                tags_within.append(tags)  # a feed is no folder: its title tags nothing
            else:
                tags_within.append((*tags, title) if title and title not in tags else tags)
    except etree.LxmlError as exc:
        raise ConfigError(f"{source}: not valid OPML: {' '.join(str(exc).split())}") from exc


def _check_opml_root(root: etree._Element, source: str) -> None:
    """An HTML page or an RSS feed saved as .opml would otherwise import as zero feeds."""
    name = etree.QName(root).localname if isinstance(root.tag, str) else "?"
    if name != "opml":
        shown = _escaped(name, url=False)[:40]
        raise ConfigError(f"{source}: not an OPML file (its root element is <{shown}>, not <opml>)")


def _free(element: etree._Element) -> None:
    """Drop a closed element's content and the closed siblings before it: what iterparse
    built so far stays as small as the path to the current element."""
    element.clear()
    parent = element.getparent()
    if parent is not None:
        while element.getprevious() is not None:
            del parent[0]


def _feed_spec(entry: Any, where: str, policy: FeedPolicy | None = None) -> FeedSpec:
    if isinstance(entry, str):
        entry = {"url": entry}
    try:
        spec = msgspec.convert(entry, FeedSpec)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    except UnicodeEncodeError as exc:  # a lone surrogate in a key (\ud800 in YAML or JSON)
        raise ConfigError(f"{where}: a key is not valid text (a lone surrogate)") from exc
    return validate_feed_spec(spec, where, policy or FeedPolicy())


# Longest feed URL accepted. Real feed URLs stay well under 300 characters; 2048 is the
# limit browsers, CDNs and sitemaps.org keep to, and a bound keeps a pasted megabyte out of
# Redis, the logs and `feeds ls`.
MAX_FEED_URL_LENGTH = 2048
# Shown of a refused URL at most (the rest is elided).
SHOWN_URL_CHARS = 200
# Characters that may forge or reorder lines on a terminal: bidirectional controls.
BIDI_CONTROLS = frozenset("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Control (incl. CR, LF, TAB, NUL, DEL, C1), lone surrogate (undecodable bytes on the
# command line), line and paragraph separators: in no input at all.
UNSAFE_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})
# Nor, in a URL, spaces, private-use and unassigned code points (they must be %-encoded).
UNSAFE_IN_URL_CATEGORIES = UNSAFE_CATEGORIES | {"Zs", "Co", "Cn"}


@dataclass(frozen=True)
class FeedPolicy:
    """What a feed given by a user must satisfy beyond well-formedness.

    Commands pass ``workers.runtime.feed_policy(settings)``: the SSRF guard's verdict on the URL
    and the interval within FEEDPIPE_MIN/MAX_POLL_INTERVAL_SECONDS. The default checks what
    any settings would refuse (malformed hosts, intervals outside what any setting allows)
    and leaves the guard to fetch time, where it runs on every request anyway."""

    network: NetworkPolicy | None = None
    min_interval: int = 1
    max_interval: int = MAX_INTERVAL_SECONDS


def validate_feed_spec(spec: FeedSpec, where: str, policy: FeedPolicy) -> FeedSpec:
    """``spec`` if it may be stored as it is; else a ConfigError naming ``where`` (the input:
    ``feeds add``, ``feeds.yaml: feeds[3]``) and showing the URL redacted and escaped."""
    url = check_feed_url(spec.url, where, policy.network)
    low, high = policy.min_interval, policy.max_interval
    if spec.interval is not None and not low <= spec.interval <= high:
        raise ConfigError(
            f"{where}: interval must be from {low} to {high} seconds (FEEDPIPE_MIN_POLL_"
            f"INTERVAL_SECONDS to FEEDPIPE_MAX_POLL_INTERVAL_SECONDS), got "
            f"{_shown_number(spec.interval)}"
        )
    for label, text in (("title", spec.title or ""), *(("tag", tag) for tag in spec.tags)):
        if _unsafe_at(text, url=False) is not None:
            raise ConfigError(
                f"{where}: {label} holds a control character: "
                f"{_escaped(text, url=False)[:SHOWN_URL_CHARS]}"
            )
    return msgspec.structs.replace(spec, url=url)


def check_feed_url(url: str, where: str, network: NetworkPolicy | None) -> str:
    """``url`` if it is an http(s) URL with a host, bounded, free of control characters and
    spaces, and (with a ``network`` policy) allowed by the SSRF guard; else ConfigError."""

    def refused(problem: str) -> ConfigError:
        return ConfigError(f"{where}: feed url {problem}: {shown_url(url)}")

    if len(url) > MAX_FEED_URL_LENGTH:
        raise refused(f"is {len(url)} characters long, more than {MAX_FEED_URL_LENGTH}")
    at = _unsafe_at(url, url=True)
    if at is not None:
        raise refused(
            f"holds {_escaped(url[at])} at character {at + 1} (control characters and spaces "
            "must be percent-encoded)"
        )
    if _spilled_userinfo(url):
        raise refused(
            "has '@' after its host: a user name or password must be percent-encoded "
            "('/' as %2F, '?' as %3F, '#' as %23, '@' as %40)"
        )
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        raise refused(
            "is malformed (a host in [...] must be an IPv6 address, a port a number up to 65535)"
        ) from None
    if parts.scheme not in ("http", "https"):
        raise refused("must be an absolute http(s) URL")
    if not host:
        raise refused("has no host")
    if port == 0:
        raise refused("has port 0")
    try:  # without a policy still refuses what no policy allows (a malformed numeric host)
        (network or NetworkPolicy(allow_private=True)).check_url(url)
    except DestinationRefused as exc:
        reason = str(exc)
        if reason.startswith("malformed URL") or "@" in reason:  # it quotes the URL's parts
            raise refused("is malformed (yarl cannot read it)") from None
        reason = _escaped(redact_text(reason), url=False)
        raise ConfigError(f"{where}: {reason}: {shown_url(url)}") from None
    return url


def shown_url(url: str) -> str:
    """``url`` as an error message may show it: control characters escaped, credentials
    masked (``pipeline.redact.redact_url``), cut at SHOWN_URL_CHARS."""
    shown = _escaped(url)
    scheme, _, rest = shown.partition("://")
    authority = rest[: min((i for i in map(rest.find, "/?#") if i >= 0), default=len(rest))]
    if "@" in rest and (
        "@" in authority or _spilled_userinfo(shown) or redact_url(shown) == MASK
    ):  # credentials by any reading: mask up to the last '@', all that may be the password
        shown = f"{scheme}://{MASK}@{rest.rpartition('@')[2]}"
    redacted = redact_url(shown)
    # A URL urlsplit cannot read is masked whole by redact_url: shown as it is when it holds
    # nothing to mask (no credentials, no query), so the user sees what is wrong with it.
    shown = shown if redacted == MASK and not {"@", "?"} & set(shown) else redacted
    if len(shown) > SHOWN_URL_CHARS:
        shown = f"{shown[:SHOWN_URL_CHARS]}... ({len(url)} characters)"
    return shown


def _spilled_userinfo(url: str) -> bool:
    """Whether a password holding '/', '?' or '#' unencoded cut the URL's authority short:
    ``https://user:pa/ss@host/`` (urlsplit: host "user", port "pa"). Not a port before an
    '@' in the path (``https://medium.com:443/feed/@name``), nor an IPv6 host."""
    _, sep, rest = url.partition("://")
    end = min((i for i in map(rest.find, "/?#") if i >= 0), default=len(rest))
    authority = rest[:end]
    if not sep or "@" not in rest[end:] or "@" in authority or authority.startswith("["):
        return False
    _, colon, port = authority.rpartition(":")
    return bool(colon) and not (port.isascii() and port.isdigit())


def _unsafe_at(text: str, *, url: bool) -> int | None:
    """Index of the first character that may not appear in ``text`` (a ``url``), or None."""
    unsafe = UNSAFE_IN_URL_CATEGORIES if url else UNSAFE_CATEGORIES
    for index, char in enumerate(text):
        if (
            unicodedata.category(char) in unsafe
            or char in BIDI_CONTROLS
            or (url and char.isspace())
        ):
            return index
    return None


def _escaped(text: str, *, url: bool = True) -> str:
    """``text`` with every character that may not appear in it (as a ``url``) escaped."""
    return "".join(
        char if _unsafe_at(char, url=url) is None else _escape(ord(char)) for char in text
    )


def _escape(code: int) -> str:
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _shown_number(number: int) -> str:
    if abs(number) < 10**20:
        return str(number)
    return f"a number of {int(number.bit_length() * 0.30103) + 1} digits or so"


async def add_feeds(
    redis: Redis,
    keys: Keys,
    specs: Iterable[FeedSpec],
    now: float,
    *,
    progress: Progress | None = None,
) -> int:
    """Add or update feeds. New feeds are due at once; known ones keep their state and schedule
    (only the fields a feeds file sets are written).

    IMPORT_BATCH feeds per round trip, each batch one atomic script (ADD_FEEDS: a feed is never
    seen half written). ``progress(n)``: called with the feeds written so far after each batch.
    Returns how many feeds were new.
    """
    added = written = 0
    batch: list[FeedSpec] = []
    for spec in specs:
        batch.append(spec)
        if len(batch) < IMPORT_BATCH:
            continue
        added += await _add_batch(redis, keys, batch, now)
        written += len(batch)
        batch = []
        if progress is not None:
            progress(written)
    if batch:
        added += await _add_batch(redis, keys, batch, now)
        if progress is not None:
            progress(written + len(batch))
    return added


async def _add_batch(redis: Redis, keys: Keys, specs: list[FeedSpec], now: float) -> int:
    feed_keys = [keys.feeds_due]
    args: list[Any] = [repr(now)]
    for spec in specs:
        fid = feed_id(spec.url)
        fields = _spec_fields(fid, spec)
        feed_keys.append(keys.feed(fid))
        args += [fid, len(fields), *itertools.chain.from_iterable(fields.items())]
    return int(await ADD_FEEDS(redis, feed_keys, args))


def _spec_fields(fid: str, spec: FeedSpec) -> dict[Any, str]:
    fields: dict[Any, str] = {
        "id": fid,
        "url": spec.url,
        "tags": json.dumps(list(spec.tags), ensure_ascii=False),
        "interval": str(spec.interval or ""),
        "fulltext": spec.fulltext,
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
            # A WebSub subscription is due now: with its feed gone, it is unsubscribed.
            pipe.zadd(keys.websub_due, {state.id: time.time()}, xx=True)
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
    ids = await CLAIM_DUE_FEEDS(redis, [keys.feeds_due], [repr(now), lease_seconds, limit])
    return [reply_text(i) for i in ids]


async def mark_due(redis: Redis, keys: Keys, fid: str, at: float) -> bool:
    """Poll a feed at ``at`` (e.g. now), whatever its schedule says."""
    return bool(await redis.zadd(keys.feeds_due, {fid: at}, xx=True, ch=True))


async def save_poll(
    redis: Redis, keys: Keys, fid: str, record: PollRecord, next_poll: float
) -> bool:
    """Store a poll's outcome and the next poll time, unless the feed was removed meanwhile
    (one script, pipeline/lua/save_poll.lua). False when the feed is gone."""
    errors = "" if record.errors is UNSET else str(record.errors)
    fields = itertools.chain.from_iterable(poll_record_fields(record).items())
    saved = await SAVE_POLL(
        redis,
        [keys.feed(fid), keys.feeds_due, keys.feeds_erroring],
        [fid, repr(next_poll), errors, *fields],
    )
    return bool(saved)


async def set_push_until(redis: Redis, keys: Keys, fid: str, until: float | None) -> None:
    """The end of the WebSub lease a feed's hub granted (``FeedState.push_until``); None when
    it has none. Written only while the feed exists."""
    if until is None:
        await redis.hdel(keys.feed(fid), "push_until")
    else:
        await SET_FEED_FIELDS(redis, [keys.feed(fid)], ["push_until", _field_text(until)])


def poll_record_fields(record: PollRecord) -> dict[str, str]:
    """A poll's record as the feed hash's fields, as ``feed_state_from_hash`` reads them."""
    fields: dict[str, str] = {}
    for name in record.__struct_fields__:
        value = getattr(record, name)
        if value is not UNSET:
            fields[name] = _field_text(value)
    return fields


def _field_text(value: str | float | None) -> str:
    if value is None:
        return ""
    return repr(value) if isinstance(value, float) else str(value)


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
        tags=_tags(fields.get("tags")),
        interval=_int(fields.get("interval")),
        etag=fields.get("etag") or None,
        last_modified=fields.get("last_modified") or None,
        last_poll=_float(fields.get("last_poll")),
        last_status=fields.get("last_status") or None,
        errors=_int(fields.get("errors")) or 0,
        last_error=fields.get("last_error") or None,
        next_poll=_float(fields.get("next_poll")),
        items=_int(fields.get("items")) or 0,
        added_at=_float(fields.get("added_at")),
        fetch_url=fields.get("fetch_url") or None,
        redirect_target=fields.get("redirect_target") or None,
        redirect_seen=_int(fields.get("redirect_seen")) or 0,
        body_hash=fields.get("body_hash") or None,
        last_full_fetch=_float(fields.get("last_full_fetch")),
        rate=_float(fields.get("rate")),
        hint=_float(fields.get("hint")),
        push_until=_float(fields.get("push_until")),
        fulltext=_fulltext(fields.get("fulltext")),
        fulltext_streak=_int(fields.get("fulltext_streak")) or 0,
    )


# Numeric fields are state feedpipe derives and rewrites on every poll (times, counters, rates)
# or a user interval checked when it was set. One that does not parse (a hand edit, a hash from
# another program) reads as unknown rather than making the feed unloadable for good.
def _float(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _fulltext(value: str | None) -> Fulltext:
    # A hash written before the setting existed, or edited by hand, reads as the default.
    return next((mode for mode in FULLTEXT_MODES if mode == value), "auto")


def _tags(value: str | None) -> tuple[str, ...]:
    try:
        tags = json.loads(value or "[]")
    except ValueError:
        return ()
    return tuple(t for t in tags if isinstance(t, str)) if isinstance(tags, list) else ()


def _int(value: str | None) -> int | None:
    if not value or len(value) > 20:  # no counter or interval has more digits; int() is quadratic
        return None
    try:
        return int(value)
    except ValueError:
        return None
