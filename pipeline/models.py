"""Frozen, typed values that cross stage boundaries (and Celery messages, as plain JSON).

msgspec Structs: immutable, cheap, and ``msgspec.convert`` validates a JSON payload back into
the model in one call, which is all the Celery glue needs to do.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

import msgspec
from msgspec import UNSET, UnsetType

SCHEMA_VERSION = 2  # 2: declared_language (language is detected from the text)


# Where an item's text comes from (pipeline/fulltext.py): the article page, the feed's own
# content, or "auto": the page until the feed's content has been seen to be the article.
Fulltext = Literal["auto", "page", "feed"]
FULLTEXT_MODES: tuple[Fulltext, ...] = get_args(Fulltext)


class FeedSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One feed as a user lists it (feeds file, OPML or `feedpipe feeds add`)."""

    url: str
    title: str | None = None
    tags: tuple[str, ...] = ()
    interval: int | None = None  # seconds; overrides FEEDPIPE_POLL_INTERVAL_SECONDS
    fulltext: Fulltext = "auto"


class FeedRef(msgspec.Struct, frozen=True):
    """What an item carries about the feed it came from."""

    id: str
    url: str
    title: str | None
    tags: tuple[str, ...] = ()
    fulltext: Fulltext = "auto"


class PollRecord(msgspec.Struct, frozen=True, kw_only=True):
    """What one poll writes about its feed (``registry.save_poll``), as ``FeedState`` reads it
    back. A field left ``UNSET`` keeps what the feed's hash holds; ``None`` clears it. A
    deferred poll (its host busy) is ``PollRecord()``: only the next poll time moves, and its
    error count stays as it was."""

    last_poll: float | UnsetType = UNSET
    last_status: str | UnsetType = UNSET  # "200", "304", "error"
    errors: int | UnsetType = UNSET  # consecutive failed polls: 0 after a success
    last_error: str | UnsetType | None = UNSET
    last_full_fetch: float | UnsetType = UNSET
    etag: str | UnsetType | None = UNSET
    last_modified: str | UnsetType | None = UNSET
    body_hash: str | UnsetType | None = UNSET
    title: str | UnsetType = UNSET  # learned from the feed when the user gave none
    fetch_url: str | UnsetType = UNSET
    redirect_target: str | UnsetType | None = UNSET
    redirect_seen: int | UnsetType = UNSET
    rate: float | UnsetType | None = UNSET
    hint: float | UnsetType | None = UNSET


class FeedState(msgspec.Struct, frozen=True):
    """A feed as stored in Redis (``feedpipe:feed:<id>`` hash)."""

    id: str
    url: str
    title: str | None = None
    tags: tuple[str, ...] = ()
    interval: int | None = None
    etag: str | None = None
    last_modified: str | None = None
    last_poll: float | None = None
    last_status: str | None = None  # "200", "304", "error"
    errors: int = 0  # consecutive failed polls
    last_error: str | None = None
    next_poll: float | None = None
    items: int = 0  # items published from this feed so far
    added_at: float | None = None
    # Where it is fetched from, once permanent redirects have moved it (``url`` stays its id).
    fetch_url: str | None = None
    redirect_target: str | None = None  # a permanent redirect seen on recent polls...
    redirect_seen: int = 0  # ...this many polls in a row
    body_hash: str | None = None  # of the last body parsed: catches servers whose 304s lie
    last_full_fetch: float | None = None  # last 200 response (a body, not a 304)
    rate: float | None = None  # estimated new entries per hour (pipeline.schedule)
    hint: float | None = None  # the feed's own minimum interval (ttl, sy:, max-age), seconds
    fulltext: Fulltext = "auto"
    # Page checks in a row in which the feed's content was the article (pipeline/fulltext.py)
    fulltext_streak: int = 0
    # End of the WebSub lease its hub granted (pipeline/websub.py): polled at the safety
    # interval until then.
    push_until: float | None = None

    @property
    def ref(self) -> FeedRef:
        return FeedRef(
            id=self.id, url=self.url, title=self.title, tags=self.tags, fulltext=self.fulltext
        )

    @property
    def fetch_target(self) -> str:
        return self.fetch_url or self.url


class FetchResult(msgspec.Struct, frozen=True):
    """One HTTP response, body already read (and capped)."""

    url: str
    final_url: str
    status: int
    body: bytes = b""
    etag: str | None = None
    last_modified: str | None = None
    content_type: str | None = None
    charset: str | None = None
    # Where the leading run of permanent redirects (301/308) pointed, if the request had one.
    permanent_url: str | None = None
    # Seconds the server says the response stays fresh (Cache-Control max-age / Expires).
    fresh_for: float | None = None
    # WebSub discovery from the Link header: rel="hub" and rel="self" (pipeline/websub.py).
    hub_link: str | None = None
    self_link: str | None = None
    # Set when ``body`` is as the server sent it, its Content-Encoding not undone (``encoded``
    # requests: pages stored for extraction, decoded where they are used: pipeline/page_store.py).
    content_encoding: str | None = None

    @property
    def not_modified(self) -> bool:
        return self.status == 304


class Entry(msgspec.Struct, frozen=True):
    """One feed entry, converted from feedparser's dict by ``pipeline.parse`` only."""

    identity: str  # "guid:...", "url:..." or "hash:..."; see entries.entry_identity
    title: str
    url: str | None = None
    canonical_url: str | None = None
    guid: str | None = None
    author: str | None = None
    published_at: str | None = None  # ISO 8601 UTC
    summary: str = ""  # plain text
    content: str = ""  # plain text of the feed's full content, when it has one
    categories: tuple[str, ...] = ()
    image: str | None = None
    language: str | None = None  # the feed's declared language


class ParsedFeed(msgspec.Struct, frozen=True):
    title: str | None
    link: str | None
    language: str | None
    entries: tuple[Entry, ...]
    problem: str | None = None  # feedparser "bozo" message when the XML was not well-formed
    # The feed's own polling hint in seconds: RSS <ttl>, sy:updatePeriod/updateFrequency.
    min_interval: float | None = None
    total_entries: int = 0  # entries in the document, before the per-poll cap
    # WebSub discovery from the document: <link rel="hub"> and rel="self" (pipeline/websub.py).
    hub_link: str | None = None
    self_link: str | None = None


class ExtractJob(msgspec.Struct, frozen=True):
    """The message of one ``extract_article`` task. The page HTML travels by claim check."""

    item_id: str
    feed: FeedRef
    entry: Entry
    fetched_at: str
    html_key: str | None = None
    page_url: str | None = None
    charset: str | None = None
    page_error: str | None = None


class Article(msgspec.Struct, frozen=True):
    """What extraction made of a page (or of the feed entry, when the page gave too little)."""

    title: str
    text: str
    extraction: Literal["trafilatura", "feed"]
    author: str | None = None
    published_at: str | None = None
    language: str | None = None
    site_name: str | None = None
    image: str | None = None


class FeedInfo(msgspec.Struct, frozen=True):
    url: str
    title: str | None
    tags: tuple[str, ...]


class Cluster(msgspec.Struct, frozen=True):
    id: str
    size: int = 1


class Item(msgspec.Struct, frozen=True):
    """The published item; ``docs/item-schema.json`` is its contract."""

    id: str
    url: str | None
    canonical_url: str | None
    feed: FeedInfo
    source: str | None
    title: str
    author: str | None
    published_at: str | None
    fetched_at: str
    language: str | None
    text: str
    summary: str
    categories: tuple[str, ...]
    image: str | None
    extraction: Literal["trafilatura", "feed"]
    content_hash: str
    cluster: Cluster
    # What the page (<html lang>) or the feed declared; ``language`` is detected from the text
    # (pipeline/language.py) and differs when the declaration was wrong or missing.
    declared_language: str | None = None
    schema: int = SCHEMA_VERSION


class Published(msgspec.Struct, frozen=True):
    item_id: str
    stream_id: str


DiscardReason = Literal[
    "duplicate_url", "duplicate_content", "duplicate_near", "too_short", "dead_letter"
]


class Similarity(msgspec.Struct, frozen=True):
    """How alike two texts are (pipeline/dedupe.py computes it; the publish script mirrors it)."""

    jaccard: float  # resemblance of the two texts
    containment: float  # share of the shorter text found in the longer
    lead: float  # the smaller of "A's lead found in B" and "B's lead found in A"
    numbers_differ: bool = False  # a number word of the lead changed between the same words


class Discarded(msgspec.Struct, frozen=True):
    """An item deliberately not published: a value with a reason, not an exception."""

    item_id: str
    reason: DiscardReason
    duplicate_of: str | None = None
    similarity: Similarity | None = None  # near-duplicates: the figures of the match


PublishOutcome = Published | Discarded


class DeadLetter(msgspec.Struct, frozen=True):
    """A record of ``feedpipe:dead-letter`` (field ``dead``, JSON): an article given up after
    its attempts (the job's fields, ``message`` null), or an extract message no job of this
    version reads (``message`` as it came, ``attempts`` 0, the job's fields null).
    ``feed_id`` and ``identity`` (the entry's, as its feed gives it) let ``feedpipe dead-letters
    retry`` have the entry taken again; letters written before they existed have neither."""

    item_id: str | None
    attempts: int
    reason: str
    feed_url: str | None = None
    entry_url: str | None = None
    title: str | None = None
    fetched_at: str | None = None
    message: Any = None
    feed_id: str | None = None
    identity: str | None = None


class PollOutcome(msgspec.Struct, frozen=True):
    feed_id: str
    feed_url: str
    status: Literal["ok", "not_modified", "unchanged", "deferred", "error", "gone"]
    new_entries: int = 0
    error: str | None = None
    duration_ms: int = 0
