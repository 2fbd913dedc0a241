"""Near-duplicate dedupe benchmark: feedpipe's PUBLISH_ITEM script vs datasketch MinHashLSH.

Run from the repository root (about 7 minutes on 2 cores with the defaults)::

    .venv/bin/python -m bench.dedupe_bench            # add --items 100000 for a quick run

It starts its own redis-server on a free loopback port (temporary directory, no persistence),
never the machine's 6379, and measures:

1. ``fingerprint()`` and ``align_record()`` (the slot check's record) cost on the real articles
   of ``--corpus`` (mean, p50, p99 per article), and the slot records' sizes;
2. feedpipe's Redis part: ``--items`` synthetic fingerprints are loaded through the real
   ``PUBLISH_ITEM`` script (EVALSHA, pipelined, spread over the 7 days of the window), each doc
   record carrying the slot record of a real corpus article (round-robin), then ``--measure``
   insert+check operations with real fingerprints of (edited) real articles are timed one at a
   time around the Redis calls: when the script answers "verify" (a candidate the sketches call
   a copy), the candidates' slot records are checked in Python (``differs_in_slots``, as
   ``publish_item`` does) and the script called again, all inside the timing; a second run of
   ``--measure`` operations goes through ``publish.publish_item`` itself (fingerprint, slot
   record, EVALSHA and any verify round);
3. Redis memory per stored item, with a breakdown by key family;
4. the baseline: datasketch ``MinHashLSH`` (b=32, r=4) with Redis storage in DB 1 of the same
   server, preloaded with ``--baseline-items`` and timed on the same check-then-insert
   operations, in blocks alternating with feedpipe's so both see the same machine load.

Prints figures, targets and ratios, and writes a JSON report (``--out``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import random
import re
import struct
import sys
import tempfile
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import numpy as np
import redis
from datasketch import MinHash, MinHashLSH
from redis.asyncio import Redis as AsyncRedis

from pipeline.align import AlignRecord, SlotPolicy, align_record
from pipeline.dedupe import (
    BAND_HASH_BITS,
    FULL_BANDS,
    LEAD_BANDS,
    NUM_PERM,
    SCHEME,
    SHINGLE,
    SLOT_BYTES,
    SLOT_LOAD,
    DedupePolicy,
    Fingerprint,
    doc_record,
    fingerprint,
    table_slots,
    window_arg,
    window_tables,
)
from pipeline.keys import MARK_BUCKET_CHARS, Keys, reply_text
from pipeline.models import Cluster, FeedInfo, Item
from pipeline.normalize import content_hash, normalize_for_matching
from pipeline.publish import (
    PUBLISH_ITEM,
    VERIFY_ROUNDS_MAX,
    CandidateVerdict,
    PublishArgs,
    PublishPolicy,
    _publish_args,
    _slot_verdict,
    band_slots_arg,
    publish_item,
    publish_keys,
    routing_arg,
)
from pipeline.routes import Router
from workers.embedded_redis import EmbeddedRedis

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = ROOT.parent / "shared" / "data" / "syndication" / "arabic-dev"
DEFAULT_OUT = ROOT / "bench" / "reports" / "dedupe_bench.json"

TARGETS = {
    "redis_p50_ms": 0.5,
    "redis_p99_ms": 2.0,
    "fingerprint_mean_ms": 2.0,
    "memory_bytes_per_item": 1024.0,  # everything the script stores, exact-dedupe keys too
    # The same target over the near-duplicate index alone (slot tables, records): what the
    # datasketch baseline stores; the exact-dedupe keys predate near-duplicate detection.
    "index_memory_bytes_per_item": 1024.0,
    "speedup_vs_datasketch_p50": 10.0,
}

FEED_ID = "bench"
DATASKETCH_DB = 1  # feedpipe uses DB 0 of the same server
STREAM_MAXLEN = 1000  # small, so the capped output stream does not dominate memory
NUM_KEYS = len(publish_keys(Keys(), FEED_ID, "0" * 24, "0" * 32))  # KEYS of PUBLISH_ITEM
BANDS = FULL_BANDS + LEAD_BANDS
NO_VERDICTS = b"{}"  # ARGV[6], the slot-check verdicts so far, of a first call (and the loader's)
encode_json = msgspec.json.Encoder().encode  # as publish_item encodes ARGV[6]
NO_ROUTES = routing_arg(Keys(), "0", ())  # ARGV[7]: no route stored on the bench's server
SOURCES = ("sabq", "alriyadh", "okaz", "alyaum", "spa")
BYLINES = ("(واس) - ", "الرياض - ", "متابعات: ", "خاص - ")
SENTENCE_END = re.compile(r"(?<=[.!?؟])\s+")

Args = list[bytes]
T = TypeVar("T")


# --- Redis server -------------------------------------------------------------------------


@contextmanager
def private_redis() -> Iterator[int]:
    """A throwaway redis-server on a free loopback port; yields the port, stops it after."""
    with tempfile.TemporaryDirectory(prefix="dedupe-bench-") as directory:
        server = EmbeddedRedis(Path(directory), persistent=False)
        server.start()
        try:
            yield server.port
        finally:
            server.stop()


# --- Statistics ---------------------------------------------------------------------------


def latency_summary(samples_ns: Sequence[int]) -> dict[str, float]:
    ms = np.asarray(samples_ns, dtype=np.float64) / 1e6
    return {
        "n": float(len(ms)),
        "mean_ms": float(ms.mean()),
        "p50_ms": float(np.percentile(ms, 50)),
        "p90_ms": float(np.percentile(ms, 90)),
        "p99_ms": float(np.percentile(ms, 99)),
        "max_ms": float(ms.max()),
    }


def time_each(call: Callable[[T], object], inputs: Sequence[T]) -> list[int]:
    samples = []
    for value in inputs:
        start = time.perf_counter_ns()
        call(value)
        samples.append(time.perf_counter_ns() - start)
    return samples


def size_summary(sizes: Sequence[int]) -> dict[str, float]:
    values = np.asarray(sizes, dtype=np.float64)
    return {
        "n": float(len(values)),
        "mean": float(values.mean()),
        "p50": float(np.percentile(values, 50)),
        "p99": float(np.percentile(values, 99)),
        "max": float(values.max()),
    }


# --- Corpus and workload ------------------------------------------------------------------


@dataclass(frozen=True)
class Story:
    """A text and its title (the slot check's record holds the title's first words)."""

    text: str
    title: str


def load_corpus(directory: Path) -> list[Story]:
    path = directory / "articles.jsonl"
    if not path.is_file():
        print(f"!! corpus not found at {path}: using synthetic text only", flush=True)
        texts = synthetic_articles(530, random.Random(7))
        return [Story(text, " ".join(text.split()[:8])) for text in texts]
    with path.open(encoding="utf-8") as lines:
        rows = [json.loads(line) for line in lines if line.strip()]
    return [Story(row["text"], row.get("title") or "") for row in rows]


def synthetic_articles(count: int, rng: random.Random) -> list[str]:
    letters = "ابتثجحخدذرزسشصضطظعغفقكلمنهوي"
    words = ["".join(rng.choices(letters, k=rng.randint(2, 8))) for _ in range(5000)]

    def sentence() -> str:
        return " ".join(rng.choices(words, k=rng.randint(8, 20))) + "."

    return [" ".join(sentence() for _ in range(rng.randint(6, 20))) for _ in range(count)]


@dataclass(frozen=True)
class Setup:
    client: redis.Redis  # DB 0: feedpipe's keys
    port: int
    keys: Keys
    policy: PublishPolicy
    days: tuple[str, ...]  # the dedupe window, today first
    sha: str  # of PUBLISH_ITEM


class CommandStats:
    """Sums of INFO commandstats differences over the stretches one system ran in."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.usec: Counter[str] = Counter()

    def add(self, before: dict[str, Any], after: dict[str, Any]) -> None:
        for name, now in after.items():
            if name.startswith(("cmdstat_config", "cmdstat_info")):  # the bench's own
                continue
            then = before.get(name, {"calls": 0, "usec": 0})
            command = name.removeprefix("cmdstat_")
            self.calls[command] += int(now["calls"]) - int(then["calls"])
            self.usec[command] += int(now["usec"]) - int(then["usec"])

    def per_op(self, ops: int) -> dict[str, Any]:
        """Redis CPU per operation (a script's figure includes the commands it calls) and the
        commands run, by name."""
        names = sorted(n for n, c in self.calls.items() if c > 0)
        scripts = [n for n in names if n in {"eval", "evalsha"}]
        return {
            "usec_per_op": sum(self.usec[n] for n in scripts or names) / max(ops, 1),
            "calls_per_op": {n: self.calls[n] / max(ops, 1) for n in names},
            "usec_per_call": {n: self.usec[n] / self.calls[n] for n in names},
        }


@dataclass(frozen=True)
class Call:
    """One operation through EVALSHA, timed whole: every script call and the slot checks."""

    ns: int
    outcome: str  # the last reply's kind
    script_calls: int  # 1, plus one per "verify" reply
    checks_ns: tuple[int, ...]  # the Python slot check of each candidate a "verify" listed
    distinct: int  # candidates the slot check called another story of one template


class Side:
    """One system's figures over the timed operations."""

    def __init__(self) -> None:
        self.samples: list[int] = []  # ns per operation
        self.parts: dict[str, list[int]] = {"query": [], "insert": []}  # datasketch only
        self.outcomes: Counter[str] = Counter()  # "<intended kind>-><outcome>"
        self.stats = CommandStats()
        # feedpipe's direct EVALSHA run only: the slot check's verify rounds.
        self.first_call: list[int] = []  # ns of operations the first call decided
        self.verified: list[int] = []  # ns of operations that needed a verify round
        self.checks: list[int] = []  # ns of the Python slot check, per candidate
        self.checks_per_op: list[int] = []  # ns of the Python slot checks of one operation
        self.script_calls = 0
        self.verdicts: Counter[str] = Counter()  # per candidate checked: distinct | copy
        self.verify_outcomes: Counter[str] = Counter()  # outcomes of the verified operations

    def add_call(self, op: Op, call: Call) -> None:
        self.samples.append(call.ns)
        self.outcomes[f"{op.kind}->{call.outcome}"] += 1
        self.script_calls += call.script_calls
        if call.script_calls == 1:
            self.first_call.append(call.ns)
            return
        self.verified.append(call.ns)
        self.checks += call.checks_ns
        self.checks_per_op.append(sum(call.checks_ns))
        self.verdicts["distinct"] += call.distinct
        self.verdicts["copy"] += len(call.checks_ns) - call.distinct
        self.verify_outcomes[f"{op.kind}->{call.outcome}"] += 1

    def report(self) -> dict[str, Any]:
        result: dict[str, Any] = {"latency": latency_summary(self.samples)}
        for part, samples in self.parts.items():
            if samples:
                result[part] = latency_summary(samples)
        result["outcomes"] = dict(sorted(self.outcomes.items()))
        if self.script_calls:
            result["verify"] = self._verify_report()
        result["redis_server"] = self.stats.per_op(len(self.samples))
        return result

    def _verify_report(self) -> dict[str, Any]:
        ops = len(self.samples)

        def summary(samples: list[int]) -> dict[str, float] | None:
            return latency_summary(samples) if samples else None

        return {
            "ops": ops,
            "ops_with_verify_round": len(self.verified),
            "share": len(self.verified) / ops,
            "script_calls_per_op": self.script_calls / ops,
            "candidates_checked": len(self.checks),
            "candidates_per_verified_op": len(self.checks) / max(1, len(self.verified)),
            "verdicts": dict(self.verdicts),
            "outcomes": dict(sorted(self.verify_outcomes.items())),
            "latency_with_verify_round": summary(self.verified),
            "latency_first_call_decides": summary(self.first_call),
            "python_check_per_candidate": summary(self.checks),
            "python_check_per_verified_op": summary(self.checks_per_op),
        }


@dataclass(frozen=True)
class Op:
    kind: str  # "original" | "new" | "near_copy" | "exact_copy": what the workload intends
    text: str
    item: Item


class Workload:
    """Insert+check operations over real texts. Stories: the corpus articles first ("original";
    the corpus holds real syndicated copies, so some of these are duplicates), then new texts
    made by shuffling an article's words ("new": real vocabulary and length, few shared
    8-grams). Mixed in: edited copies (byline, a sentence dropped, words changed) and verbatim
    copies of earlier stories, as syndication produces them. Titles: the corpus's own; a copy
    keeps its story's title, a shuffled text gets its source's title words shuffled."""

    NEAR_COPY_SHARE = 0.15
    EXACT_COPY_SHARE = 0.05

    def __init__(self, articles: list[Story], seed: int) -> None:
        self.rng = random.Random(seed)
        policy = DedupePolicy()
        self.originals = [a for a in articles if fingerprint(a.text, policy) is not None]
        self.rng.shuffle(self.originals)
        self.sources = list(self.originals)
        self.words = [w for a in self.originals[:200] for w in a.text.split()]
        self.published: list[Story] = []

    def ops(self, count: int) -> list[Op]:
        return [self._next() for _ in range(count)]

    def _next(self) -> Op:
        roll = self.rng.random()
        if self.published and roll < self.EXACT_COPY_SHARE:
            return self._op("exact_copy", self.rng.choice(self.published))
        if self.published and roll < self.EXACT_COPY_SHARE + self.NEAR_COPY_SHARE:
            story = self.rng.choice(self.published)
            return self._op("near_copy", Story(self._edit(story.text), story.title))
        if self.originals:
            kind, story = "original", self.originals.pop()
        else:
            source = self.rng.choice(self.sources)
            words, title = source.text.split(), source.title.split()
            self.rng.shuffle(words)
            self.rng.shuffle(title)
            kind, story = "new", Story(" ".join(words), " ".join(title))
        self.published.append(story)
        return self._op(kind, story)

    def _edit(self, text: str) -> str:
        """A syndicated copy: a byline, one sentence dropped, a few words changed."""
        sentences = SENTENCE_END.split(text)
        if len(sentences) > 4:
            del sentences[self.rng.randrange(1, len(sentences))]
        words = " ".join(sentences).split()
        for _ in range(3):
            words[self.rng.randrange(len(words))] = self.rng.choice(self.words)
        return self.rng.choice(BYLINES) + " ".join(words)

    def _op(self, kind: str, story: Story) -> Op:
        item_id = f"{self.rng.getrandbits(96):024x}"
        source = self.rng.choice(SOURCES)
        return Op(kind=kind, text=story.text, item=make_item(item_id, story, source))


def make_item(item_id: str, story: Story, source: str) -> Item:
    text = story.text
    return Item(
        id=item_id,
        url=f"https://{source}.example/news/{item_id}",
        canonical_url=None,
        feed=FeedInfo(url=f"https://{source}.example/rss", title=source, tags=("ar",)),
        source=source,
        title=story.title,
        author=None,
        published_at=None,
        fetched_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        language="ar",
        text=text,
        summary=text[:200],
        categories=(),
        image=None,
        extraction="trafilatura",
        content_hash=content_hash(text),
        cluster=Cluster(id=item_id),
    )


# --- 1. Fingerprint cost -------------------------------------------------------------------


def bench_fingerprint(stories: Sequence[Story]) -> dict[str, Any]:
    articles = [story.text for story in stories]
    policy = DedupePolicy()

    def run(text: str) -> Fingerprint | None:
        return fingerprint(text, policy)

    time_each(run, articles[:20])  # warm-up
    gc.collect()
    result: dict[str, Any] = latency_summary(time_each(run, articles))
    fps = [fp for fp in map(run, articles) if fp is not None]
    result["mean_chars"] = float(np.mean([len(t) for t in articles]))
    result["too_short"] = len(articles) - len(fps)
    result["mean_shingles"] = float(np.mean([fp.shingles for fp in fps]))
    result["mean_lead_shingles"] = float(np.mean([fp.lead_shingles for fp in fps]))
    result["datasketch_minhash"] = latency_summary(time_each(datasketch_minhash, articles))
    return result


def bench_slot_records(articles: list[Story], slots: SlotPolicy) -> dict[str, Any]:
    """``align_record()`` per article (publish_item computes it beside the fingerprint, for
    texts long enough to fingerprint) and the size of the slot records the index stores."""
    policy = DedupePolicy()
    stories = [a for a in articles if fingerprint(a.text, policy) is not None]

    def run(story: Story) -> AlignRecord:
        return align_record(story.text, story.title, slots)

    time_each(run, stories[:20])  # warm-up
    gc.collect()
    result: dict[str, Any] = latency_summary(time_each(run, stories))
    sizes = [len(run(story).to_bytes()) for story in stories]
    result["record_bytes"] = size_summary(sizes)
    result["record_bytes_max_by_policy"] = slots.record_bytes_max
    result["length_prefix_bytes"] = 2  # before the record in a doc record (dedupe.doc_record)
    return result


def slot_record_pool(
    articles: list[Story], slots: SlotPolicy
) -> list[tuple[bytes, tuple[int, ...]]]:
    """(slot record, lead numbers) of each corpus article long enough to fingerprint: the
    loader gives them to the synthetic items, round-robin, so their doc records are as long
    as real ones."""
    policy = DedupePolicy()
    pool = []
    for story in articles:
        fp = fingerprint(story.text, policy)
        if fp is not None:
            record = align_record(story.text, story.title, slots).to_bytes()
            pool.append((record, fp.lead_numbers))
    if not pool:
        raise RuntimeError("no corpus article is long enough to fingerprint")
    return pool


def matching_shingles(text: str) -> set[str]:
    """The shingles fingerprint() hashes: char 8-grams of the normalized, space-free text."""
    joined = normalize_for_matching(text).replace(" ", "")
    return {joined[i : i + SHINGLE] for i in range(max(1, len(joined) - SHINGLE + 1))}


def datasketch_minhash(text: str) -> MinHash:
    minhash = MinHash(num_perm=NUM_PERM)
    minhash.update_batch([s.encode("utf-8") for s in matching_shingles(text)])
    return minhash


# --- 2. feedpipe: loading ------------------------------------------------------------------


def bench_ids(n: int) -> tuple[str, str]:
    """The n-th loaded item's id and text hash: spread like real ones (sha256 digests) over the
    exact-dedupe marks' buckets, which take their first hex digits, at a multiplication's cost."""
    item_id = (n * 0x9E3779B97F4A7C15F39CC061) % (1 << 96)
    text_hash = (n * 0xD1B54A32D192ED03ABA1A4DBC5E4A35) % (1 << 128)
    return f"{item_id:024x}", f"{text_hash:032x}"


@dataclass(frozen=True)
class Loader:
    """Loads synthetic fingerprints through the real script, pipelined, over the window's days.

    Each item gets random 128 signature bytes, random lead bytes and 40 random band hashes
    (real band hashes are uniform too), so it lands in the same structures a real one does: 40
    slots of the window's slot table and a record in the day's ``docs`` chunks and ``where``, plus
    its exact-dedupe marks. Its doc record carries the slot record and the lead's numbers of a
    real corpus article (``records``, round-robin), so records are as long as real ones.
    ``days`` holds only the day to insert into, so that its record and slot values belong
    to that day; ARGV[6] (verdicts) is "{}", as on any first call.
    """

    client: redis.Redis
    sha: str
    keys: Keys
    days: tuple[str, ...]
    template: PublishArgs
    shingles: int
    lead_shingles: int
    records: tuple[tuple[bytes, tuple[int, ...]], ...]  # (slot record, lead numbers)
    seed: int = 1

    def load(self, count: int, batch: int, progress: Callable[[int], None]) -> None:
        """Streams batches over one connection, two in flight, while a builder thread packs the
        next one, so Redis never waits for Python. (Two threads each running whole pipelines
        fall into lockstep, building at the same time and leaving Redis idle ~25%.)"""
        pool = self.client.connection_pool
        conn: Any = pool.get_connection()  # redis-py's low-level calls are untyped
        in_flight: deque[int] = deque()
        try:
            with ThreadPoolExecutor(max_workers=1) as builder:
                starts = range(0, count, batch)
                future = builder.submit(self._pack, conn, 0, min(batch, count))
                for start in starts:
                    packed, size = future.result()
                    if start + batch < count:
                        rest = min(batch, count - start - batch)
                        future = builder.submit(self._pack, conn, start + batch, rest)
                    conn.send_packed_command(packed)
                    in_flight.append(size)
                    if len(in_flight) > 1:
                        progress(self._replies(conn, in_flight.popleft()))
                while in_flight:
                    progress(self._replies(conn, in_flight.popleft()))
        finally:
            pool.release(conn)

    @staticmethod
    def _replies(conn: Any, count: int) -> int:
        replies = [conn.read_response() for _ in range(count)]
        bad = [r for r in replies if r[0] != b"published"]
        if bad:
            raise RuntimeError(f"loader: {len(bad)} items not published, e.g. {bad[0]!r}")
        return count

    def _pack(self, conn: Any, start: int, count: int) -> tuple[list[bytes], int]:
        """``count`` EVALSHA commands as RESP bytes (packing only uses the connection's
        encoder, never its socket, so it is safe beside the sending thread)."""
        rng = np.random.default_rng([self.seed, start])
        signatures = rng.bytes(count * NUM_PERM)
        leads = rng.bytes(count * NUM_PERM)
        bands = rng.integers(0, 1 << BAND_HASH_BITS, size=(count, BANDS), dtype=np.uint64)
        bands_of = bands.tolist()
        commands = []
        for k in range(count):
            n = start + k
            item_id, text_hash = bench_ids(n)
            sig = signatures[k * NUM_PERM : (k + 1) * NUM_PERM]
            lead = leads[k * NUM_PERM : (k + 1) * NUM_PERM]
            aligned, numbers = self.records[n % len(self.records)]
            fp = Fingerprint(sig, lead, self.shingles, self.lead_shingles, (), numbers)
            args = msgspec.structs.replace(
                self.template,
                id=item_id,
                item=f'{{"id":"{item_id}","bench":true}}',
                days=window_arg([self.days[n % len(self.days)]]),
                shingles=self.shingles,
                lead_shingles=self.lead_shingles,
                item_field=self.keys.item_mark(item_id)[1],
                content_field=self.keys.content_mark(text_hash)[1],
                signature=sig,
                lead_signature=lead,
                record=doc_record(fp, item_id, "bench", aligned),
                bands=band_slots_arg(bands_of[k]),
            )
            names = publish_keys(self.keys, FEED_ID, item_id, text_hash)
            commands.append(
                ("EVALSHA", self.sha, NUM_KEYS, *names, *args.argv(), NO_VERDICTS, NO_ROUTES)
            )
        return conn.pack_commands(commands), count


def publish_template(keys: Keys, policy: PublishPolicy, fp: Fingerprint) -> PublishArgs:
    """The arguments of a representative item from the real _publish_args; the loader
    replaces the item's own fields by name and adds ARGV 6-7 itself, as publish_item does."""
    text = synthetic_articles(1, random.Random(1))[0]
    item = make_item("0" * 24, Story(text, " ".join(text.split()[:8])), "bench")
    assert policy.near.slots is not None
    mine = align_record(item.text, item.title, policy.near.slots)
    args = _publish_args(keys, item, fp, mine, policy, datetime.now(UTC))
    if not (args.dedupe_content and args.near):
        raise RuntimeError("template item must use both content and near-duplicate dedupe")
    return args


# --- 2. feedpipe: timed operations ---------------------------------------------------------


@dataclass(frozen=True)
class Prepared:
    """One operation's script arguments, as publish_item builds them."""

    names: list[str]  # KEYS
    argv: Args  # ARGV 1-5 (6, the verdicts, and 7, the routes, are added per call)
    mine: AlignRecord | None  # the item's slot record; None when it has no fingerprint


def prepare_evalsha(setup: Setup, ops: Sequence[Op]) -> list[Prepared]:
    """KEYS, ARGV and slot record of each operation, as publish_item builds them (fingerprint
    and align_record included)."""
    window = window_arg(setup.days)  # the window the loader filled, even across a UTC midnight
    slots = setup.policy.near.slots
    prepared = []
    for op in ops:
        fp = fingerprint(op.text, setup.policy.near)
        mine = align_record(op.item.text, op.item.title, slots) if fp and slots else None
        args = _publish_args(setup.keys, op.item, fp, mine, setup.policy, datetime.now(UTC))
        names = publish_keys(setup.keys, FEED_ID, op.item.id, op.item.content_hash)
        prepared.append(Prepared(names, msgspec.structs.replace(args, days=window).argv(), mine))
    return prepared


async def evalsha_each(
    client: AsyncRedis, sha: str, prepared: Sequence[Prepared], slots: SlotPolicy | None
) -> list[Call]:
    """One operation at a time, as publish_item runs it once the fingerprint and slot record
    are made: EVALSHA with no verdicts ("{}"); on a "verify" reply, each listed candidate's slot
    record checked in Python (publish._slot_verdict, differs_in_slots) and EVALSHA again with
    the verdicts. Everything from the first call's send to the last reply is timed."""
    calls = []
    for p in prepared:
        verdicts: dict[str, CandidateVerdict] = {}
        checks: list[int] = []
        script_calls = 0
        start = time.perf_counter_ns()
        for _ in range(VERIFY_ROUNDS_MAX):
            reply = await client.evalsha(
                sha, NUM_KEYS, *p.names, *p.argv, encode_json(verdicts), NO_ROUTES
            )
            script_calls += 1
            kind = reply_text(reply[0])
            if kind != "verify":
                break
            if p.mine is None or slots is None:
                raise RuntimeError("'verify' for an item without a slot record")
            for kept, record in zip(reply[1::2], reply[2::2], strict=True):
                checked = time.perf_counter_ns()
                verdicts[reply_text(kept)] = _slot_verdict(p.mine, record, slots)
                checks.append(time.perf_counter_ns() - checked)
        else:
            raise RuntimeError(f"candidates kept changing for {VERIFY_ROUNDS_MAX} calls")
        elapsed = time.perf_counter_ns() - start
        distinct = sum(1 for v in verdicts.values() if v.distinct)
        calls.append(Call(elapsed, kind, script_calls, tuple(checks), distinct))
    return calls


def check_then_insert(
    lsh: MinHashLSH, work: Sequence[tuple[Op, MinHash, bool]], side: Side
) -> None:
    """datasketch's version of one operation: query, then insert when it is new."""
    for op, minhash, insert in work:
        start = time.perf_counter_ns()
        lsh.query(minhash)
        queried = time.perf_counter_ns()
        if insert:
            lsh.insert(op.item.id, minhash)
        end = time.perf_counter_ns()
        side.samples.append(end - start)
        side.parts["query"].append(queried - start)
        if insert:
            side.parts["insert"].append(end - queried)
        side.outcomes["query+insert" if insert else "query only"] += 1


async def compare(
    setup: Setup, lsh: MinHashLSH, ops: Sequence[Op], warmup: int
) -> tuple[Side, Side]:
    """feedpipe and datasketch on the same operations, alternating in blocks of ``warmup``
    (the first block untimed), so both see the same machine: other load on a 2-core box moves
    loopback round-trip times by 2x between runs. datasketch inserts where feedpipe published."""
    prepared = prepare_evalsha(setup, ops)
    slots = setup.policy.near.slots
    minhashes = [datasketch_minhash(op.text) for op in ops]
    feedpipe, datasketch, scratch = Side(), Side(), Side()
    client = AsyncRedis(port=setup.port)
    info = setup.client.info
    gc.collect()
    try:
        for start in range(0, len(ops), warmup):
            ours, theirs = (feedpipe, datasketch) if start >= warmup else (scratch, scratch)
            block = slice(start, start + warmup)
            before = info("commandstats")
            calls = await evalsha_each(client, setup.sha, prepared[block], slots)
            middle = info("commandstats")
            ours.stats.add(before, middle)
            for op, call in zip(ops[block], calls, strict=True):
                ours.add_call(op, call)
            published = [call.outcome == "published" for call in calls]
            work = list(zip(ops[block], minhashes[block], published, strict=True))
            check_then_insert(lsh, work, theirs)
            theirs.stats.add(middle, info("commandstats"))
    finally:
        await client.aclose()
    return feedpipe, datasketch


# A script that returns at once: its EVALSHA with the real arguments is what the client, the
# loopback and Redis's script call cost before the script does any work (machine-dependent).
RETURN_AT_ONCE = "return {'published', '0-0'}"


async def time_round_trip_floor(setup: Setup, ops: Sequence[Op]) -> dict[str, float]:
    """The timed calls' floor: each operation's KEYS and ARGV sent to RETURN_AT_ONCE."""
    sha = setup.client.script_load(RETURN_AT_ONCE)
    client = AsyncRedis(port=setup.port)
    gc.collect()
    try:
        prepared = prepare_evalsha(setup, ops)
        calls = await evalsha_each(client, sha, prepared, setup.policy.near.slots)
    finally:
        await client.aclose()
    return latency_summary([call.ns for call in calls])


async def time_publish_item(setup: Setup, ops: Sequence[Op]) -> Side:
    """The production call end to end: fingerprint, slot record, EVALSHA (the script object
    reloads the script if the server lost it), any verify round and reply parsing."""
    side = Side()
    client = AsyncRedis(port=setup.port)
    router = Router()  # a worker's: the routes are read once, not per call
    before = setup.client.info("commandstats")
    gc.collect()
    try:
        for op in ops:
            start = time.perf_counter_ns()
            outcome = await publish_item(
                client, setup.keys, FEED_ID, op.item, setup.policy, router=router
            )
            side.samples.append(time.perf_counter_ns() - start)
            side.outcomes[f"{op.kind}->{getattr(outcome, 'reason', 'published')}"] += 1
    finally:
        await client.aclose()
    side.stats.add(before, setup.client.info("commandstats"))
    return side


# --- 3. Memory ----------------------------------------------------------------------------


def chunk_count(client: redis.Redis, prefix: str, day: str) -> int:
    """How many ``docs`` chunks a day has: the chunk of its last record, plus one."""
    last = client.getrange(f"{prefix}{day}:where", -6, -1)
    return struct.unpack(">HHH", last)[0] + 1 if len(last) == 6 else 0


def used_memory(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


def memory_usage(client: redis.Redis, names: Sequence[str]) -> list[int]:
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.memory_usage(name, samples=0)
    return [int(v or 0) for v in pipe.execute()]


def slot_tables(client: redis.Redis, prefix: str) -> list[str]:
    """Every slot table of the window (``<prefix>tables`` lists them)."""
    listed = window_tables(client.get(f"{prefix}tables"))
    return [f"{prefix}slots:{table.number}" for table in listed]


def memory_breakdown(
    client: redis.Redis, keys: Keys, days: Sequence[str], items: int, delta: int
) -> dict[str, Any]:
    """Where the bytes are: MEMORY USAGE (value + key name + main-dict entry) of samples of
    each key family, scaled by the family's key count, plus the dicts' own overhead."""
    rng = random.Random(3)
    prefix = keys.dedupe_index(SCHEME)
    seqs = rng.sample(range(items), min(2000, items))
    buckets = mark_buckets(client, keys)
    chunks = [
        f"{prefix}{day}:docs:{c}" for day in days for c in range(chunk_count(client, prefix, day))
    ]
    families = {
        "slot_tables": ([*slot_tables(client, prefix), f"{prefix}tables"], None),
        "doc_records": (chunks + [f"{prefix}{day}:where" for day in days], None),
        "url_marks": ([keys.item_mark(bench_ids(i)[0])[0] for i in seqs], buckets[0]),
        "text_marks": ([keys.content_mark(bench_ids(i)[1])[0] for i in seqs], buckets[1]),
    }
    result: dict[str, Any] = {}
    accounted = 0
    for family, (names, sampled_from) in families.items():
        sizes = memory_usage(client, names)  # every key of the family when sampled_from is None
        count = len(names) if sampled_from is None else sampled_from
        mean = float(np.mean(sizes))
        accounted += int(mean * count)
        result[family] = {
            "keys": int(count),
            "mean_bytes_per_key": mean,
            "bytes_per_item": mean * count / items,
        }
    stream = memory_usage(client, [keys.output_stream])[0]
    stats = client.memory_stats()
    db0 = stats.get("db.0", {})
    expires = int(db0.get("overhead.hashtable.expires", 0))
    result["output_stream"] = {"bytes": stream, "bytes_per_item": stream / items}
    result["expires_dict"] = {"bytes": expires, "bytes_per_item": expires / items}
    accounted += stream + expires
    result["unattributed"] = {
        "bytes": delta - accounted,
        "bytes_per_item": (delta - accounted) / items,
        "note": "main-dict bucket array, allocator rounding/fragmentation, estimate error",
    }
    result["dbsize"] = int(client.dbsize())
    result["keyspace"] = client.info("keyspace").get("db0", {})
    return result


def mark_buckets(client: redis.Redis, keys: Keys) -> tuple[int, int]:
    """How many of the exact-dedupe marks' URL and text buckets exist."""
    digits = [f"{b:0{MARK_BUCKET_CHARS}x}" for b in range(16**MARK_BUCKET_CHARS)]
    items = [keys.item_mark(d)[0] for d in digits]
    texts = [keys.content_mark(d)[0] for d in digits]
    return int(client.exists(*items)), int(client.exists(*texts))


# --- 4. Baseline: datasketch --------------------------------------------------------------


def preload_datasketch(
    client: redis.Redis, port: int, count: int
) -> tuple[MinHashLSH, dict[str, Any]]:
    """MinHashLSH (b=32, r=4) with Redis storage in DB 1 of the same server, preloaded with
    ``count`` random MinHashes through an insertion session (pipelined)."""
    config = {
        "type": "redis",
        "basename": b"bench",
        "redis": {"host": "127.0.0.1", "port": port, "db": DATASKETCH_DB},
    }
    lsh = MinHashLSH(threshold=0.5, num_perm=NUM_PERM, params=(32, 4), storage_config=config)
    rng = np.random.default_rng(5)
    before = used_memory(client)
    started = time.perf_counter()
    with lsh.insertion_session(buffer_size=20_000) as session:
        for i in range(count):
            values = rng.integers(0, 2**32 - 1, size=NUM_PERM, dtype=np.uint64)
            session.insert(f"pre{i}", MinHash(hashvalues=values, scheme="affine32"))
    seconds = time.perf_counter() - started
    return lsh, {
        "preloaded_items": count,
        "preload_seconds": seconds,
        "preload_items_per_second": count / seconds,
        "memory_bytes_per_item": (used_memory(client) - before) / count,
    }


# --- Report --------------------------------------------------------------------------------


def machine(client: redis.Redis) -> dict[str, Any]:
    meminfo = Path("/proc/meminfo")
    ram_kb = 0
    if meminfo.is_file():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_kb = int(line.split()[1])
    cpu = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        cpu = next(
            (
                ln.split(":", 1)[1].strip()
                for ln in cpuinfo.read_text().splitlines()
                if ln.startswith("model name")
            ),
            "",
        )
    versions = {p: metadata.version(p) for p in ("redis", "rensa", "datasketch", "numpy")}
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "ram_gb": round(ram_kb / 1024**2, 1),
        "python": platform.python_version(),
        "redis_server": client.info("server")["redis_version"],
        "packages": versions,
        "platform": platform.platform(),
        "load_average_1_5_15": os.getloadavg(),  # other work on the machine adds noise
    }


def verdicts(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    redis_part = results["feedpipe_evalsha"]["latency"]
    reached = {
        "redis_p50_ms": redis_part["p50_ms"],
        "redis_p99_ms": redis_part["p99_ms"],
        "fingerprint_mean_ms": results["fingerprint"]["mean_ms"],
        "memory_bytes_per_item": results["memory"]["bytes_per_item"],
        "index_memory_bytes_per_item": results["memory"]["index_bytes_per_item"],
        "speedup_vs_datasketch_p50": results["ratios"]["speedup_p50"],
    }
    verdict = {}
    for name, value in reached.items():
        target = TARGETS[name]
        met = value >= target if name.startswith("speedup") else value <= target
        verdict[name] = {"target": target, "reached": value, "met": met}
    return verdict


def print_summary(report: dict[str, Any]) -> None:
    fig = report["results"]
    load, pre = fig["feedpipe_load"], fig["datasketch_preload"]
    print("\n=== dedupe benchmark ===")
    print(
        f"stored: {report['parameters']['items']:,} items in feedpipe (loaded through "
        f"PUBLISH_ITEM in {load['seconds']:.0f} s, {load['items_per_second']:,.0f}/s, Redis "
        f"{load['redis_server']['usec_per_op']:.0f} us/item), {pre['preloaded_items']:,} in "
        f"datasketch ({pre['preload_seconds']:.0f} s)"
    )
    print_latencies(fig)
    print_verify(fig)
    print_server_side(fig)
    print_memory(fig)
    print(f"outcomes, alternating run (intended->actual): {fig['feedpipe_evalsha']['outcomes']}")
    print(f"outcomes, publish_item run: {fig['feedpipe_publish_item']['outcomes']}")
    r = fig["ratios"]
    print(
        f"feedpipe vs datasketch: {r['speedup_p50']:.1f}x faster at p50, "
        f"{r['speedup_p99']:.1f}x at p99, {r['speedup_mean']:.1f}x in mean; "
        f"{r['memory_datasketch_over_feedpipe']:.1f}x less memory per item"
    )
    print(f"\n{'target':30}{'target':>9}{'reached':>11}   verdict")
    for name, v in report["targets"].items():
        verdict = "MET" if v["met"] else "MISSED"
        print(f"{name:30}{v['target']:9.2f}{v['reached']:11.3f}   {verdict}")
    print(f"\nphase seconds: {report['phase_seconds']}")


def print_latencies(fig: dict[str, Any]) -> None:
    fp, base = fig["fingerprint"], fig["datasketch"]
    verify = fig["feedpipe_evalsha"]["verify"]
    print(f"{'':44}{'mean':>8}{'p50':>8}{'p90':>8}{'p99':>8}{'max':>8}  ms")
    rows = [
        (f"fingerprint() ({fp['n']:.0f} articles, {fp['mean_chars']:.0f} chars)", fp),
        ("  datasketch MinHash, same shingles", fp["datasketch_minhash"]),
        ("align_record() (slot record)", fig["slot_record"]),
        ("feedpipe insert+check (EVALSHA, all ops)", fig["feedpipe_evalsha"]["latency"]),
        ("  decided by the first call", verify["latency_first_call_decides"]),
        ("  with a verify round (2 calls + check)", verify["latency_with_verify_round"]),
        ("  Python slot check, per candidate", verify["python_check_per_candidate"]),
        ("  floor: a script returning at once", fig["round_trip_floor"]),
        ("datasketch query+insert", base["latency"]),
        ("  datasketch query", base["query"]),
        ("  datasketch insert (when new)", base["insert"]),
        ("feedpipe publish_item (end to end)", fig["feedpipe_publish_item"]["latency"]),
    ]
    keys = ("mean_ms", "p50_ms", "p90_ms", "p99_ms", "max_ms")
    for label, stats in rows:
        if stats is None:
            print(f"{label:44}   (none)")
            continue
        print(f"{label:44}" + "".join(f"{stats[k]:8.3f}" for k in keys))


def print_verify(fig: dict[str, Any]) -> None:
    verify = fig["feedpipe_evalsha"]["verify"]
    calls = fig["feedpipe_publish_item"]["redis_server"]["calls_per_op"].get("evalsha", 0.0)
    print(
        f"verify rounds (EVALSHA run): {verify['ops_with_verify_round']} of {verify['ops']} ops "
        f"({verify['share']:.1%}), {verify['script_calls_per_op']:.3f} script calls per op, "
        f"{verify['candidates_per_verified_op']:.2f} candidates checked per verified op; "
        f"verdicts {verify['verdicts']}; verified ops' outcomes {verify['outcomes']}"
    )
    print(f"publish_item run: {calls:.3f} EVALSHA per op (1 + share of verify rounds)")


def print_server_side(fig: dict[str, Any]) -> None:
    ours, base = fig["feedpipe_evalsha"]["redis_server"], fig["datasketch"]["redis_server"]
    inner = ", ".join(
        f"{n} {c:.1f}x{ours['usec_per_call'][n]:.1f}us"
        for n, c in ours["calls_per_op"].items()
        if n != "evalsha" and c * ours["usec_per_call"][n] >= 2  # what costs 2 us per op or more
    )
    print(
        f"Redis CPU per op: feedpipe EVALSHA {ours['usec_per_op']:.0f} us, all calls (inside: "
        f"{inner}); publish_item's "
        f"{fig['feedpipe_publish_item']['redis_server']['usec_per_op']:.0f}"
        f" us; datasketch {base['usec_per_op']:.0f} us in "
        f"{sum(base['calls_per_op'].values()):.1f} commands (round trips)"
    )


def print_memory(fig: dict[str, Any]) -> None:
    mem, loaded = fig["memory"], fig["feedpipe_load"]["doc_records"]
    print(
        f"memory per stored item: feedpipe {mem['bytes_per_item']:.0f} B "
        f"(slot tables and doc records {mem['index_bytes_per_item']:.0f} B), "
        f"datasketch {fig['datasketch_preload']['memory_bytes_per_item']:.0f} B"
    )
    print(
        f"  doc record {loaded['doc_record_mean_bytes']:.1f} B mean, of which slot record "
        f"{loaded['slot_record_mean_bytes']:.1f} B + 2 B length (from "
        f"{loaded['corpus_records']} corpus articles, round-robin; corpus: "
        f"{fig['slot_record']['record_bytes']['mean']:.1f} B mean, "
        f"{fig['slot_record']['record_bytes']['max']:.0f} max, "
        f"{fig['slot_record']['record_bytes_max_by_policy']} B at most by policy)"
    )
    breakdown = mem["breakdown"]
    print(
        "  "
        + ", ".join(
            f"{family} {entry['bytes_per_item']:.0f}"
            for family, entry in breakdown.items()
            if isinstance(entry, dict) and "bytes_per_item" in entry
        )
    )


# --- Main ----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--items", type=int, default=1_000_000, help="items stored before timing")
    parser.add_argument("--measure", type=int, default=2000, help="timed insert+check operations")
    parser.add_argument(
        "--baseline-items",
        type=int,
        default=20_000,
        help="items preloaded into datasketch (it loads ~100x slower)",
    )
    parser.add_argument("--batch", type=int, default=2000, help="EVALSHA per loader pipeline")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    return parser.parse_args(argv)


class Phases:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._started = time.perf_counter()

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        print(f"-- {name} ...", flush=True)
        start = time.perf_counter()
        yield
        self.seconds[name] = round(time.perf_counter() - start, 1)
        print(f"   {name}: {self.seconds[name]:.1f} s", flush=True)

    def total(self) -> float:
        return round(time.perf_counter() - self._started, 1)


def run(args: argparse.Namespace, port: int) -> dict[str, Any]:
    phases = Phases()
    client = redis.Redis(port=port)
    policy = PublishPolicy(
        maxlen=STREAM_MAXLEN,
        dedupe_ttl_seconds=30 * 86_400,  # FEEDPIPE_SEEN_TTL_DAYS default
        min_text_chars=250,
        near=DedupePolicy(),
    )
    days = tuple(policy.near.days(datetime.now(UTC)))
    setup = Setup(client, port, Keys(), policy, days, client.script_load(PUBLISH_ITEM.text))
    articles = load_corpus(args.corpus)
    assert policy.near.slots is not None  # the slot check is on by default
    results: dict[str, Any] = {}

    with phases.phase("fingerprint and slot records"):
        results["fingerprint"] = fp_stats = bench_fingerprint(articles)
        results["slot_record"] = bench_slot_records(articles, policy.near.slots)
        records = slot_record_pool(articles, policy.near.slots)
    workload = Workload(articles, seed=11)
    warmup = max(1, min(50, args.measure))  # also the block size of the alternating run
    ops_compare, ops_publish = workload.ops(warmup + args.measure), workload.ops(args.measure)

    with phases.phase(f"load {args.items:,} items"):
        results["feedpipe_load"] = load_items(setup, args, fp_stats, records)
    with phases.phase("memory breakdown"):
        results["memory"] = memory_report(setup, args.items, results["feedpipe_load"])
    with phases.phase(f"datasketch preload {args.baseline_items:,} items"):
        lsh, results["datasketch_preload"] = preload_datasketch(client, port, args.baseline_items)
    with phases.phase("timed: feedpipe and datasketch, alternating"):
        feedpipe, datasketch = asyncio.run(compare(setup, lsh, ops_compare, warmup))
    results["feedpipe_evalsha"], results["datasketch"] = feedpipe.report(), datasketch.report()
    with phases.phase("timed: round-trip floor"):
        results["round_trip_floor"] = asyncio.run(time_round_trip_floor(setup, ops_publish))
    with phases.phase("timed: publish_item"):
        results["feedpipe_publish_item"] = asyncio.run(
            time_publish_item(setup, ops_publish)
        ).report()
    results["ratios"] = ratios(results)
    return {
        "benchmark": "dedupe",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(client),
        "parameters": _parameters(args, policy, days, warmup),
        "results": results,
        "targets": verdicts(results),
        "notes": NOTES,
        "phase_seconds": phases.seconds,
        "total_seconds": phases.total(),
    }


def memory_report(setup: Setup, items: int, load: dict[str, Any]) -> dict[str, Any]:
    delta = load["used_memory_after"] - load["used_memory_before"]
    breakdown = memory_breakdown(setup.client, setup.keys, setup.days, items, delta)
    index = sum(breakdown[f]["bytes_per_item"] for f in ("slot_tables", "doc_records"))
    return {
        "used_memory_before": load["used_memory_before"],
        "used_memory_after_load": load["used_memory_after"],
        "bytes_per_item": delta / items,
        "index_bytes_per_item": index,
        # Of doc_records: the slot check's records (2-byte length + record), packed in chunks.
        "slot_record_bytes_per_item": load["doc_records"]["slot_record_with_length_mean_bytes"],
        "doc_record_mean_bytes": load["doc_records"]["doc_record_mean_bytes"],
        "breakdown": breakdown,
    }


def load_items(
    setup: Setup,
    args: argparse.Namespace,
    fp_stats: dict[str, Any],
    records: Sequence[tuple[bytes, tuple[int, ...]]] | None = None,
) -> dict[str, Any]:
    """Loads ``args.items`` synthetic items, their doc records carrying ``records`` (slot
    record, lead numbers; by default those of ``args.corpus``'s articles) round-robin; returns
    memory before/after and load figures."""
    if records is None:
        assert setup.policy.near.slots is not None
        corpus = load_corpus(getattr(args, "corpus", DEFAULT_CORPUS))
        records = slot_record_pool(corpus, setup.policy.near.slots)
    some_fp = fingerprint("خبر " * 100, setup.policy.near)
    assert some_fp is not None
    loader = Loader(
        setup.client,
        setup.sha,
        setup.keys,
        setup.days,
        publish_template(setup.keys, setup.policy, some_fp),
        shingles=round(fp_stats["mean_shingles"]),
        lead_shingles=round(fp_stats["mean_lead_shingles"]),
        records=tuple(records),
    )
    step = max(1, args.items // 10)
    done = [0]
    started = time.perf_counter()

    def progress(n: int) -> None:
        done[0] += n
        if done[0] % step < n or done[0] == args.items:
            rate = done[0] / (time.perf_counter() - started)
            print(f"   loaded {done[0]:,} ({rate:,.0f} items/s)", flush=True)

    info = setup.client.info
    before_memory, before_stats = used_memory(setup.client), info("commandstats")
    size_slot_tables(setup, args.items)
    loader.load(args.items, args.batch, progress)
    stats = CommandStats()
    stats.add(before_stats, info("commandstats"))
    seconds = time.perf_counter() - started
    return {
        "used_memory_before": before_memory,
        "used_memory_after": used_memory(setup.client),
        "seconds": seconds,
        "items_per_second": args.items / seconds,
        "redis_server": stats.per_op(args.items),
        "doc_records": loaded_records(some_fp, records, args.items),
    }


def loaded_records(
    fp: Fingerprint, records: Sequence[tuple[bytes, tuple[int, ...]]], items: int
) -> dict[str, Any]:
    """Mean sizes of what the loader stored per item (record i goes to items i, i + len, ...)."""
    cycles, rest = divmod(items, len(records))
    weights = [cycles + (1 if i < rest else 0) for i in range(len(records))]
    item_id = bench_ids(0)[0]

    def mean(sizes: Sequence[int]) -> float:
        return sum(w * size for w, size in zip(weights, sizes, strict=True)) / items

    slot_sizes = [len(aligned) for aligned, _ in records]
    doc_sizes = [
        len(
            doc_record(msgspec.structs.replace(fp, lead_numbers=numbers), item_id, "bench", aligned)
        )
        for aligned, numbers in records
    ]
    return {
        "corpus_records": len(records),
        "slot_record_mean_bytes": mean(slot_sizes),
        "slot_record_bytes": size_summary(slot_sizes),
        "slot_record_with_length_mean_bytes": mean(slot_sizes) + 2,
        "lead_numbers_mean": mean([len(numbers) for _, numbers in records]),
        "doc_record_mean_bytes": mean(doc_sizes),
    }


def size_slot_tables(setup: Setup, items: int) -> None:
    """The window's slot table as the script sizes it after a day at this volume (the loader
    passes one day in its days argument, so the script alone would size it for a one-day window and
    grow it as it fills, as on a deployment's first busy day)."""
    prefix = setup.keys.dedupe_index(SCHEME)
    days = len(setup.days)
    slots = table_slots(-(-items // days) * days * BANDS / SLOT_LOAD)
    ttl = (setup.policy.near.window_days + 1) * 86_400
    setup.client.setrange(f"{prefix}slots:0", slots * SLOT_BYTES - 1, b"\0")
    setup.client.expire(f"{prefix}slots:0", ttl)
    setup.client.set(f"{prefix}tables", f"0:{slots}:-", ex=ttl)


def ratios(results: dict[str, Any]) -> dict[str, float]:
    ours = results["feedpipe_evalsha"]["latency"]
    theirs = results["datasketch"]["latency"]
    return {
        "speedup_p50": theirs["p50_ms"] / ours["p50_ms"],
        "speedup_p99": theirs["p99_ms"] / ours["p99_ms"],
        "speedup_mean": theirs["mean_ms"] / ours["mean_ms"],
        "memory_datasketch_over_feedpipe": (
            results["datasketch_preload"]["memory_bytes_per_item"]
            / results["memory"]["bytes_per_item"]
        ),
        "publish_item_over_evalsha_p50": (
            results["feedpipe_publish_item"]["latency"]["p50_ms"] / ours["p50_ms"]
        ),
    }


def _parameters(
    args: argparse.Namespace, policy: PublishPolicy, days: Sequence[str], warmup: int
) -> dict[str, Any]:
    return {
        "items": args.items,
        "measure": args.measure,
        "warmup_ops": warmup,
        "baseline_items": args.baseline_items,
        "loader_batch": args.batch,
        "corpus": str(args.corpus),
        "scheme": SCHEME,
        "days": list(days),
        "slot_load": SLOT_LOAD,
        "bands": BANDS,
        "stream_maxlen": policy.maxlen,
        "workload_shares": {
            "exact_copy": Workload.EXACT_COPY_SHARE,
            "near_copy": Workload.NEAR_COPY_SHARE,
        },
        "datasketch": {"threshold": 0.5, "num_perm": NUM_PERM, "params": [32, 4]},
        "slot_policy": asdict(policy.near.slots) if policy.near.slots else None,
    }


NOTES = [
    "Redis latency (feedpipe_evalsha): wall time of one operation as publish_item runs it "
    "after the fingerprint: an awaited EVALSHA of PUBLISH_ITEM (redis.asyncio client, no "
    "hiredis, loopback) with all 7 window days and no verdicts ('{}'); when the script "
    "answers 'verify', the listed candidates' slot records are checked in Python "
    "(publish._slot_verdict: differs_in_slots) and EVALSHA is called again with the verdicts, "
    "all inside the timing. Fingerprints, slot records (align_record) and ARGV 1-22 are "
    "precomputed. verify: the share of operations that needed a verify round, latency of "
    "those and of the others, and the Python check's own time per candidate (AlignRecord."
    "from_bytes + _slot_verdict). redis_server: Redis CPU from INFO commandstats deltas (a "
    "script's time includes the commands it calls), summed over all calls of an operation.",
    "round_trip_floor: the same EVALSHA calls (KEYS, ARGV 1-23) to a script that returns at "
    "once: what the client, loopback and the script call cost on this machine before any work.",
    "publish_item: the production call end to end (fingerprint, align_record, EVALSHA through "
    "redis-py's Script, any verify round, reply parsing), on further operations after the "
    "alternating run; its EVALSHA calls per op (redis_server) give its verify rounds.",
    "Stored items: synthetic fingerprints (random signature, lead and uniform band "
    "hashes) loaded through the same script, spread evenly over the 7 window days; loading "
    "passes only the insert day and no verdicts. Their doc records carry the "
    "slot record (align_record(text, title).to_bytes()) and the lead's numbers of a real corpus "
    "article, round-robin, so they are as long as real ones; random signatures never pass the "
    "sketch check, so stored items never cause a verify round themselves. Timed operations use "
    "real fingerprints and slot records of real, word-shuffled and edited articles, with the "
    "corpus's titles (a copy keeps its story's title).",
    "Slot table: the window's is created before loading at the size the script gives it "
    "after a day at this volume (dedupe.table_slots of items / 7 * 7 * 40 / SLOT_LOAD).",
    "Memory per item: (used_memory after loading - before) / items: slot tables, doc records, "
    "the exact-dedupe marks' URL and text buckets, the expires dict, and the output stream "
    "capped at MAXLEN ~1000. index_bytes_per_item: slot tables + doc records (MEMORY USAGE); "
    "slot_record_bytes_per_item: the slot records' share of the doc records (2 + mean bytes).",
    "datasketch: MinHashLSH b=32 r=4, Redis storage in DB 1 of the same server, preloaded "
    "with --baseline-items random MinHashes (it loads far slower than feedpipe, so not 1M); "
    "its per-op cost is round trips, which hardly depend on the stored count. Each operation "
    "is query, then insert when feedpipe published it; blocks of operations alternate with "
    "feedpipe's so both see the same machine load. MinHashes are computed outside the timing.",
]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with private_redis() as port:
        print(f"private redis-server on 127.0.0.1:{port}", flush=True)
        report = run(args, port)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print_summary(report)
    print(f"report: {args.out} ({report['total_seconds']:.0f} s total)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
