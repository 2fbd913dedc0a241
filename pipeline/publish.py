"""Build the output item and publish it exactly once on the output stream."""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, cast, get_args

import msgspec
from redis.asyncio import Redis

from pipeline.align import AlignRecord, SlotPolicy, align_record, differs_in_slots
from pipeline.dedupe import (
    COPY_MAX_BYTES,
    NUM_PERM,
    RECORD_CHUNK_BYTES,
    RECORD_COUNTS_AT,
    RECORD_ITEM_ID_AT,
    RECORD_NUMBERS_AT,
    SCHEME,
    SIGNATURE_BYTES,
    SLOT_LOAD,
    SLOT_LOAD_MAX,
    STRING_SLACK,
    TABLE_MAX_BYTES,
    TABLE_MIN_BYTES,
    DedupePolicy,
    Fingerprint,
    band_slot,
    doc_record,
    fingerprint,
    window_arg,
)
from pipeline.errors import PublishContention
from pipeline.keys import (
    MARK_BUCKET_CHARS,
    STAT_DUPLICATES,
    STAT_PUBLISHED,
    Keys,
    LuaScript,
    reply_text,
)
from pipeline.language import Language
from pipeline.models import (
    Article,
    Cluster,
    Discarded,
    DiscardReason,
    ExtractJob,
    FeedInfo,
    Item,
    Published,
    PublishOutcome,
    Similarity,
)
from pipeline.normalize import content_hash, normalize_for_matching
from pipeline.redact import without_credentials
from pipeline.routes import Route, Router, RoutingTable

_encode = msgspec.json.Encoder().encode
# Calls of the publish script for one item at most: each "verify" reply lists only candidates
# published since the last call (by other workers, for the same story), so two is the rule.
VERIFY_ROUNDS_MAX = 8
# pipeline/lua/publish_item/, with the record layout (dedupe.doc_record) and the counter
# names it writes filled in from the constants they mirror.
PUBLISH_ITEM = LuaScript(
    "publish_item",
    {
        "NUM_PERM": NUM_PERM,
        "SIGNATURE_BYTES": SIGNATURE_BYTES,
        "RECORD_COUNTS_AT": RECORD_COUNTS_AT,
        "RECORD_ITEM_ID_AT": RECORD_ITEM_ID_AT,
        "RECORD_NUMBERS_AT": RECORD_NUMBERS_AT,
        "STAT_DUPLICATES": STAT_DUPLICATES,
        "STAT_PUBLISHED": STAT_PUBLISHED,
    },
)


@dataclass(frozen=True)
class PublishPolicy:
    maxlen: int  # MAXLEN ~ of the output streams
    dedupe_ttl_seconds: int  # how long "already published" is remembered
    min_text_chars: int  # shorter texts are too generic to dedupe by content hash
    near: DedupePolicy  # near-duplicate detection


def build_item(job: ExtractJob, article: Article, language: Language) -> Item:
    entry = job.entry
    return Item(
        id=job.item_id,
        url=entry.url or job.page_url,
        canonical_url=entry.canonical_url,
        feed=FeedInfo(
            url=without_credentials(job.feed.url), title=job.feed.title, tags=job.feed.tags
        ),
        source=article.site_name or job.feed.title,
        title=article.title,
        author=article.author,
        published_at=article.published_at,
        fetched_at=job.fetched_at,
        language=language.language,
        declared_language=language.declared,
        text=article.text,
        summary=entry.summary or _first_paragraph(article.text),
        categories=entry.categories,
        image=article.image,
        extraction=article.extraction,
        content_hash=content_hash(article.text),
        cluster=Cluster(id=job.item_id, size=1),
    )


def item_json(item: Item) -> bytes:
    return _encode(item)


async def publish_item(
    redis: Redis,
    keys: Keys,
    feed_id: str,
    item: Item,
    policy: PublishPolicy,
    now: datetime | None = None,
    router: Router | None = None,
) -> PublishOutcome:
    """Publish the item unless it was already published: same URL, same text, or (for texts
    long enough to fingerprint) a syndicated copy of a story published in the dedupe window.

    Idempotent: a retried or redelivered task gets ``Discarded(duplicate_url)`` the second time.
    ``now`` (the index's day buckets, the marks' day) is the clock unless given. ``router``:
    the process's routes (read from Redis for this call alone when not given); the item goes
    to each matching route's stream in the same script run.
    """
    if not item.title and not item.text:
        return Discarded(item_id=item.id, reason="too_short")
    normalized = normalize_for_matching(item.text)  # once, for the sketches and the slot check
    fp = fingerprint(item.text, policy.near, normalized=normalized)
    slots = policy.near.slots
    mine = (
        align_record(item.text, item.title, slots, normalized=normalized) if fp and slots else None
    )
    keys_arg = publish_keys(keys, feed_id, item.id, item.content_hash)
    argv = _publish_args(keys, item, fp, mine, policy, now or datetime.now(UTC)).argv()
    router = router or Router()
    streams, routed = _routed(keys, await router.current(redis, keys), item, feed_id)
    verdicts: dict[str, CandidateVerdict] = {}
    for _ in range(VERIFY_ROUNDS_MAX):
        raw = await PUBLISH_ITEM(redis, [*keys_arg, *streams], [*argv, _encode(verdicts), routed])
        reply = ScriptReply.read(raw)
        if reply.kind == "routes_changed":
            streams, routed = _routed(keys, await router.reload(redis, keys), item, feed_id)
            continue
        if reply.kind != "verify":
            return reply.outcome(item.id)
        for where, record in reply.to_verify:
            verdicts[where] = _slot_verdict(mine, record, slots)
    raise PublishContention(
        f"item {item.id}: candidates kept changing for {VERIFY_ROUNDS_MAX} calls"
    )


class CandidateVerdict(msgspec.Struct, frozen=True):
    """The slot check's verdict on one candidate the script asked about (ARGV[6])."""

    distinct: bool  # another story of one template: not a copy of it
    why: str  # what the check found: kept with the copy when it is merged


ReplyKind = Literal[
    "published", "duplicate_url", "duplicate_content", "duplicate_near", "verify", "routes_changed"
]
_REPLY_KINDS: frozenset[str] = frozenset(get_args(ReplyKind))


@dataclass(frozen=True)
class ScriptReply:
    """PUBLISH_ITEM's reply, read once (pipeline/lua/publish_item/00_arguments.lua lists its
    shapes)."""

    kind: ReplyKind
    values: tuple[str, ...] = ()  # published: stream id; duplicate_*: kept id, then figures
    to_verify: tuple[tuple[str, bytes], ...] = ()  # verify: ("YYYYMMDD:number", slot record)

    @classmethod
    def read(cls, raw: Sequence[Any]) -> ScriptReply:
        kind = reply_text(raw[0])
        if kind not in _REPLY_KINDS:
            raise ValueError(f"PUBLISH_ITEM replied {kind!r}")
        rest = raw[1:]
        if kind == "verify":
            pairs = zip(rest[::2], rest[1::2], strict=True)
            return cls("verify", to_verify=tuple((reply_text(w), bytes(r)) for w, r in pairs))
        return cls(cast(ReplyKind, kind), values=tuple(reply_text(v) for v in rest))

    def outcome(self, item_id: str) -> PublishOutcome:
        """What publishing the item came to (a published or a withheld item)."""
        if self.kind == "published":
            return Published(item_id=item_id, stream_id=self.values[0])
        kept, *figures = self.values
        if self.kind == "duplicate_near":
            jaccard, containment, lead = (round(float(v), 3) for v in figures)
            similarity = Similarity(jaccard=jaccard, containment=containment, lead=lead)
            return Discarded(item_id, "duplicate_near", duplicate_of=kept, similarity=similarity)
        reason: DiscardReason = (
            "duplicate_url" if self.kind == "duplicate_url" else "duplicate_content"
        )
        return Discarded(item_id=item_id, reason=reason, duplicate_of=kept)


def _slot_verdict(
    mine: AlignRecord | None, stored: bytes, slots: SlotPolicy | None
) -> CandidateVerdict:
    """ARGV[6]'s entry for one candidate: whether it is another story of one template, and
    what the check found (kept on the duplicates stream and in the cluster when merged). With
    the check off here (another worker's index has records) or a record that cannot be read,
    the sketches' verdict stands."""
    if mine is None or slots is None:
        return CandidateVerdict(distinct=False, why="slot check off")
    try:
        theirs = AlignRecord.from_bytes(stored)
    except (struct.error, IndexError):  # written by another version, or damaged in Redis
        return CandidateVerdict(distinct=False, why="the candidate's slot record is unreadable")
    found = differs_in_slots(mine, theirs, slots)
    if found.distinct:
        return CandidateVerdict(distinct=True, why=f"differs in {found.reason}")
    kinds = sorted({slot.kind for slot in found.slots})
    why = f"no template slot differs ({len(found.slots)} substitution(s) below the rule"
    return CandidateVerdict(distinct=False, why=why + (f": {', '.join(kinds)})" if kinds else ")"))


def publish_keys(keys: Keys, feed_id: str, item_id: str, text_hash: str) -> list[str]:
    """KEYS 1-10 of PUBLISH_ITEM (the matched routes' streams follow)."""
    return [
        keys.item_mark(item_id)[0],
        keys.content_mark(text_hash)[0],
        keys.output_stream,
        keys.duplicates_stream,
        keys.stats,
        keys.feed(feed_id),
        keys.clusters,
        keys.legacy_item(item_id),
        keys.legacy_content(text_hash),
        keys.routes_version,
    ]


def _routed(keys: Keys, routing: RoutingTable, item: Item, feed_id: str) -> tuple[list[str], bytes]:
    """The streams of the routes the item matches (KEYS 11..) and ARGV[7]: matched once per
    routing table, not once per script call."""
    routes = routing.matching(item, feed_id)
    return [keys.route_stream(r.name) for r in routes], routing_arg(keys, routing.version, routes)


def routing_arg(keys: Keys, version: str, routes: Sequence[Route]) -> bytes:
    """PUBLISH_ITEM ARGV[7]: the routes matched (their streams follow KEYS[10])."""
    return _encode(
        {
            "version": version,
            "names": [r.name for r in routes],
            "marks": keys.routed_marks_prefix,
            "bucket": MARK_BUCKET_CHARS,
        }
    )


class PublishArgs(msgspec.Struct, frozen=True, omit_defaults=True):
    """PUBLISH_ITEM's arguments by name: its ARGV[1], one msgpack map the script reads with
    the same names, but for the four byte strings (Redis's cmsgpack reads no msgpack bin),
    which follow as ARGV 2-5 (``argv``). Numbers the script only hands to Redis commands travel
    as text: converting a Lua number to text costs more than the command."""

    id: str  # the item's id
    today: str  # unix day: the exact-dedupe marks' day (_marks_days)
    keep_days: str  # days a mark is kept (the TTL rounded up)
    prune_days: str  # a bucket is pruned this often
    maxlen: str  # of the output, duplicates and route streams (approximate trimming)
    item: str  # the item, JSON
    duplicate: str  # the duplicate record's start, JSON (the script adds why)
    dedupe_content: bool  # long enough for the same-text check
    near: bool  # fingerprinted: near-duplicate check and index
    index_prefix: str  # the near-duplicate index's keys (Keys.dedupe_index)
    days: str  # the window, "YYYYMMDD:code,..." today first (dedupe.window_arg)
    index_ttl: str  # seconds the index keys live
    shingles: int
    lead_shingles: int
    jaccard: float  # DedupePolicy's operating point and candidates checked
    containment: float
    lead: float
    max_candidates: int
    slot_load: float  # slot tables: entries per slot planned, and past which a larger one starts
    slot_load_max: float
    table_min_bytes: int
    table_max_bytes: int
    string_slack: int  # bytes left for a string's header (a table or chunk fills its class)
    chunk_bytes: int  # a day's records are packed into strings this long
    copy_max_bytes: int  # tables up to this size grow in place, larger ones are replaced
    source: str
    title: str
    cluster_prefix: str  # Keys.cluster("")
    item_field: str  # the item's exact-dedupe mark fields (Keys.item_mark, Keys.content_mark)
    content_field: str
    # ARGV 2-5, in this order (b"" when not fingerprinted):
    signature: bytes = b""
    lead_signature: bytes = b""
    record: bytes = b""  # dedupe.doc_record, with the slot check's record
    bands: bytes = b""  # each band's position (4 bytes, big-endian) and check: band_slots_arg

    def argv(self) -> list[bytes]:
        """ARGV 1-5: the map (the byte strings left out at their defaults), then those."""
        named = msgspec.structs.replace(
            self, signature=b"", lead_signature=b"", record=b"", bands=b""
        )
        return [_pack_args(named), self.signature, self.lead_signature, self.record, self.bands]


_pack_args = msgspec.msgpack.Encoder().encode


def _publish_args(
    keys: Keys,
    item: Item,
    fp: Fingerprint | None,
    mine: AlignRecord | None,
    policy: PublishPolicy,
    now: datetime,
) -> PublishArgs:
    """PUBLISH_ITEM's arguments but the two that change per call (the verdicts so far, the
    routes)."""
    near = policy.near
    today, keep_days, prune_days = _marks_days(policy, now)
    return PublishArgs(
        id=item.id,
        today=today,
        keep_days=keep_days,
        prune_days=prune_days,
        maxlen=str(policy.maxlen),
        item=item_json(item).decode(),
        duplicate=_encode(_duplicate_record(item)).decode(),
        dedupe_content=len(item.text) >= policy.min_text_chars,
        near=fp is not None,
        index_prefix=keys.dedupe_index(SCHEME),
        days=window_arg(near.days(now)),
        index_ttl=str((near.window_days + 1) * 86_400),
        signature=fp.signature if fp else b"",
        lead_signature=fp.lead_signature if fp else b"",
        shingles=fp.shingles if fp else 0,
        lead_shingles=fp.lead_shingles if fp else 0,
        jaccard=near.jaccard,
        containment=near.containment,
        lead=near.lead,
        max_candidates=near.max_candidates,
        slot_load=SLOT_LOAD,
        slot_load_max=SLOT_LOAD_MAX,
        table_min_bytes=TABLE_MIN_BYTES,
        table_max_bytes=TABLE_MAX_BYTES,
        string_slack=STRING_SLACK,
        chunk_bytes=RECORD_CHUNK_BYTES,
        copy_max_bytes=COPY_MAX_BYTES,
        record=doc_record(fp, item.id, item.source, mine.to_bytes() if mine else b"")
        if fp
        else b"",
        source=item.source or "",
        title=item.title,
        cluster_prefix=keys.cluster(""),
        bands=band_slots_arg(fp.bands if fp else ()),
        item_field=keys.item_mark(item.id)[1],
        content_field=keys.content_mark(item.content_hash)[1],
    )


def _marks_days(policy: PublishPolicy, now: datetime) -> tuple[str, str, str]:
    """The exact-dedupe marks' days: today's unix day, the days a mark is kept (the TTL rounded
    up) and how often a bucket is pruned (a quarter of that: entries live at most that much
    longer, and a bucket is read whole about once per quarter)."""
    keep_days = -(-policy.dedupe_ttl_seconds // 86_400)
    return str(int(now.timestamp() // 86_400)), str(keep_days), str(max(1, keep_days // 4))


def band_slots_arg(bands: Sequence[int]) -> bytes:
    """Band hashes as one argument of 5 bytes each, position (big-endian) then check
    (PublishArgs.bands): one string.byte call reads them all, where 40 "position:check" pairs
    took a Lua pattern match each."""
    return b"".join(struct.pack(">IB", *band_slot(band)) for band in bands)


def _duplicate_record(item: Item) -> dict[str, object]:
    return {
        "id": item.id,
        "url": item.url,
        "feed": {"url": item.feed.url, "title": item.feed.title},
        "source": item.source,
        "title": item.title,
        "fetched_at": item.fetched_at,
    }


def _first_paragraph(text: str) -> str:
    return text.partition("\n\n")[0]


class ClusterCopy(msgspec.Struct, frozen=True):
    """A copy withheld into a cluster, and why it joined (PUBLISH_ITEM writes it)."""

    id: str
    source: str = ""
    title: str = ""
    similarity: dict[str, float] = {}
    alignment: str | None = None  # the slot check's finding; None when it did not run


class ClusterInfo(msgspec.Struct, frozen=True):
    id: str  # the kept item's id
    size: int  # items of the story seen, the kept one included
    title: str | None
    sources: tuple[str, ...]
    copies: tuple[ClusterCopy, ...] = ()  # the last 100, oldest first


_decode_copy = msgspec.json.Decoder(ClusterCopy).decode


async def biggest_clusters(redis: Redis, keys: Keys, limit: int) -> list[ClusterInfo]:
    """The largest story clusters of the dedupe window (clusters expire with the window)."""
    ranked: list[Any] = await redis.zrevrange(keys.clusters, 0, limit - 1, withscores=True)
    async with redis.pipeline(transaction=False) as pipe:
        for member, _score in ranked:
            pipe.hget(keys.cluster(reply_text(member)), "title")
            pipe.smembers(keys.cluster_sources(reply_text(member)))
            pipe.lrange(keys.cluster_copies(reply_text(member)), 0, -1)
        details = await pipe.execute()
    clusters = []
    for index, (member, score) in enumerate(ranked):
        title, sources, copies = details[3 * index : 3 * index + 3]
        clusters.append(
            ClusterInfo(
                id=reply_text(member),
                size=int(score),
                title=reply_text(title) if title else None,
                sources=tuple(sorted(reply_text(s) for s in sources)),
                copies=tuple(_copies(copies)),
            )
        )
    return clusters


def _copies(raw: list[bytes]) -> Iterator[ClusterCopy]:
    for entry in raw:
        try:
            yield _decode_copy(entry)
        except msgspec.DecodeError:  # written by an older version: the copy is still counted
            continue
