"""Near-duplicate dedupe benchmark: feedpipe's PUBLISH_ITEM script vs datasketch MinHashLSH.

Run from the repository root (about 5 minutes on 2 cores with the defaults)::

    .venv/bin/python -m bench.dedupe_bench            # add --items 100000 for a quick run

It starts its own redis-server on a free loopback port (temporary directory, no persistence),
never the machine's 6379, and measures:

1. ``fingerprint()`` cost on the real articles of ``--corpus`` (mean, p50, p99 per article);
2. feedpipe's Redis part: ``--items`` synthetic fingerprints are loaded through the real
   ``PUBLISH_ITEM`` script (EVALSHA, pipelined, spread over the 7 days of the window), then
   ``--measure`` insert+check operations with real fingerprints of (edited) real articles are
   timed one at a time around the Redis call; a second run of ``--measure`` operations goes
   through ``publish.publish_item`` itself (fingerprint + EVAL of the script text);
3. Redis memory per stored item, with a breakdown by key family;
4. the baseline: datasketch ``MinHashLSH`` (b=32, r=4) with Redis storage on the same server,
   preloaded with ``--baseline-items`` and timed on the same check-then-insert workload.

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
import sys
import tempfile
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import redis
from datasketch import MinHash, MinHashLSH
from redis.asyncio import Redis as AsyncRedis

from pipeline.dedupe import (
    FULL_BANDS,
    LEAD_BANDS,
    NUM_PERM,
    SCHEME,
    SHINGLE,
    DedupePolicy,
    Fingerprint,
    doc_record,
    fingerprint,
)
from pipeline.keys import PUBLISH_ITEM, Keys
from pipeline.models import Cluster, FeedInfo, Item
from pipeline.normalize import content_hash, normalize_for_matching
from pipeline.publish import PublishPolicy, _publish_args, publish_item
from workers.embedded_redis import EmbeddedRedis

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = ROOT.parent / "shared" / "data" / "syndication" / "arabic-dev"
DEFAULT_OUT = ROOT / "bench" / "reports" / "dedupe_bench.json"

TARGETS = {
    "redis_p50_ms": 0.5,
    "redis_p99_ms": 2.0,
    "fingerprint_mean_ms": 2.0,
    "memory_bytes_per_item": 1024.0,
    "speedup_vs_datasketch_p50": 10.0,
}

FEED_ID = "bench"
STREAM_MAXLEN = 1000  # small, so the capped output stream does not dominate memory
NUM_KEYS = 8  # KEYS of PUBLISH_ITEM
BANDS = FULL_BANDS + LEAD_BANDS
# 0-based positions in _publish_args' ARGV (keys.PUBLISH_ITEM documents them 1-based).
ARG_ID, ARG_ITEM_JSON, ARG_DAYS, ARG_SIG, ARG_LEAD = 0, 3, 8, 10, 11
ARG_SHINGLES, ARG_LEAD_SHINGLES, ARG_DOC, ARG_SLOTS = 12, 13, 15, 19
SOURCES = ("sabq", "alriyadh", "okaz", "alyaum", "spa")
BYLINES = ("(واس) - ", "الرياض - ", "متابعات: ", "خاص - ")
SENTENCE_END = re.compile(r"(?<=[.!?؟])\s+")

Args = list[bytes | str | int]


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


def time_each(call: Callable[[str], object], texts: Sequence[str]) -> list[int]:
    samples = []
    for text in texts:
        start = time.perf_counter_ns()
        call(text)
        samples.append(time.perf_counter_ns() - start)
    return samples


# --- Corpus and workload ------------------------------------------------------------------


def load_corpus(directory: Path) -> list[str]:
    path = directory / "articles.jsonl"
    if not path.is_file():
        print(f"!! corpus not found at {path}: using synthetic text only", flush=True)
        return synthetic_articles(530, random.Random(7))
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line)["text"] for line in lines if line.strip()]


def synthetic_articles(count: int, rng: random.Random) -> list[str]:
    letters = "ابتثجحخدذرزسشصضطظعغفقكلمنهوي"
    words = ["".join(rng.choices(letters, k=rng.randint(2, 8))) for _ in range(5000)]

    def sentence() -> str:
        return " ".join(rng.choices(words, k=rng.randint(8, 20))) + "."

    return [" ".join(sentence() for _ in range(rng.randint(6, 20))) for _ in range(count)]


@dataclass(frozen=True)
class TimedRun:
    samples: list[int]  # ns per operation
    outcomes: Counter[str]  # "<intended kind>-><script outcome>"
    server: dict[str, Any]  # see server_side()

    def report(self) -> dict[str, Any]:
        return {
            "latency": latency_summary(self.samples),
            "outcomes": dict(sorted(self.outcomes.items())),
            "redis_server": self.server,
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
    copies of earlier stories, as syndication produces them."""

    NEAR_COPY_SHARE = 0.15
    EXACT_COPY_SHARE = 0.05

    def __init__(self, articles: list[str], seed: int) -> None:
        self.rng = random.Random(seed)
        self.originals = [a for a in articles if fingerprint(a, DedupePolicy()) is not None]
        self.rng.shuffle(self.originals)
        self.sources = list(self.originals)
        self.words = [w for a in self.originals[:200] for w in a.split()]
        self.published_texts: list[str] = []

    def ops(self, count: int) -> list[Op]:
        return [self._next() for _ in range(count)]

    def _next(self) -> Op:
        roll = self.rng.random()
        if self.published_texts and roll < self.EXACT_COPY_SHARE:
            return self._op("exact_copy", self.rng.choice(self.published_texts))
        if self.published_texts and roll < self.EXACT_COPY_SHARE + self.NEAR_COPY_SHARE:
            return self._op("near_copy", self._edit(self.rng.choice(self.published_texts)))
        kind, text = ("original", self.originals.pop()) if self.originals else ("new", "")
        if not text:
            words = self.rng.choice(self.sources).split()
            self.rng.shuffle(words)
            text = " ".join(words)
        self.published_texts.append(text)
        return self._op(kind, text)

    def _edit(self, text: str) -> str:
        """A syndicated copy: a byline, one sentence dropped, a few words changed."""
        sentences = SENTENCE_END.split(text)
        if len(sentences) > 4:
            del sentences[self.rng.randrange(1, len(sentences))]
        words = " ".join(sentences).split()
        for _ in range(3):
            words[self.rng.randrange(len(words))] = self.rng.choice(self.words)
        return self.rng.choice(BYLINES) + " ".join(words)

    def _op(self, kind: str, text: str) -> Op:
        item_id = f"{self.rng.getrandbits(96):024x}"
        return Op(kind=kind, text=text, item=make_item(item_id, text, self.rng.choice(SOURCES)))


def make_item(item_id: str, text: str, source: str) -> Item:
    return Item(
        id=item_id,
        url=f"https://{source}.example/news/{item_id}",
        canonical_url=None,
        feed=FeedInfo(url=f"https://{source}.example/rss", title=source, tags=("ar",)),
        source=source,
        title=text[:80],
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


def bench_fingerprint(articles: list[str]) -> dict[str, Any]:
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


def matching_shingles(text: str) -> set[str]:
    """The shingles fingerprint() hashes: char 8-grams of the normalized, space-free text."""
    joined = normalize_for_matching(text).replace(" ", "")
    return {joined[i : i + SHINGLE] for i in range(max(1, len(joined) - SHINGLE + 1))}


def datasketch_minhash(text: str) -> MinHash:
    minhash = MinHash(num_perm=NUM_PERM)
    minhash.update_batch([s.encode("utf-8") for s in matching_shingles(text)])
    return minhash


# --- 2. feedpipe: loading ------------------------------------------------------------------


def script_keys(keys: Keys, item_id: str, text_hash: str) -> list[str]:
    """KEYS of PUBLISH_ITEM, in the order publish.publish_item passes them."""
    return [
        keys.item(item_id),
        keys.content(text_hash),
        keys.output_stream,
        keys.duplicates_stream,
        keys.stats,
        keys.feed(FEED_ID),
        keys.dedupe_index(SCHEME) + "seq",
        keys.clusters,
    ]


@dataclass(frozen=True)
class Loader:
    """Loads synthetic fingerprints through the real script, pipelined, over the window's days.

    Each item gets random 128 x uint16 signature bytes, random lead bytes and 40 random uint32
    band hashes (real band hashes are uniform uint32 too), so it lands in the same structures a
    real one does: 40 fields of ``<prefix><day>:<shard>`` hashes and one ``<prefix>doc:<seq>``
    record, plus the exact-dedupe ``item`` and ``content`` keys. ARGV[9] (days) holds only the
    day to insert into, so loading checks that one day's shards rather than all seven.
    """

    client: redis.Redis
    sha: str
    keys: Keys
    days: tuple[str, ...]
    template: tuple[bytes | str | int, ...]
    shingles: int
    lead_shingles: int
    shards: int
    seed: int = 1

    def load(self, count: int, batch: int, progress: Callable[[int], None]) -> None:
        """Streams batches over one connection, two in flight, while a builder thread packs the
        next one, so Redis never waits for Python. (Two threads each running whole pipelines
        fall into lockstep, building at the same time and leaving Redis idle ~25%.)"""
        pool = self.client.connection_pool
        conn = pool.get_connection()
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
        signatures = rng.bytes(count * 2 * NUM_PERM)
        leads = rng.bytes(count * NUM_PERM)
        bands = rng.integers(0, 2**32, size=(count, BANDS), dtype=np.uint64)
        slots = np.stack((bands % self.shards, bands), axis=2).reshape(count, -1).tolist()
        commands = []
        for k in range(count):
            n = start + k
            item_id = f"{n:024x}"
            sig = signatures[k * 2 * NUM_PERM : (k + 1) * 2 * NUM_PERM]
            lead = leads[k * NUM_PERM : (k + 1) * NUM_PERM]
            fp = Fingerprint(sig, lead, self.shingles, self.lead_shingles, ())
            argv = list(self.template[:ARG_SLOTS])
            argv[ARG_ID] = item_id
            argv[ARG_ITEM_JSON] = f'{{"id":"{item_id}","bench":true}}'
            argv[ARG_DAYS] = self.days[n % len(self.days)]
            argv[ARG_SIG], argv[ARG_LEAD] = sig, lead
            argv[ARG_SHINGLES], argv[ARG_LEAD_SHINGLES] = self.shingles, self.lead_shingles
            argv[ARG_DOC] = doc_record(fp, item_id, "bench")
            names = script_keys(self.keys, item_id, f"{n:032x}")
            commands.append(("EVALSHA", self.sha, NUM_KEYS, *names, *argv, *slots[k]))
        return conn.pack_commands(commands), count


def publish_template(keys: Keys, policy: PublishPolicy, fp: Fingerprint) -> Args:
    """ARGV for a representative item from the real _publish_args, checked against the
    positions the loader overwrites (fails loudly if the script's ARGV layout changes)."""
    item = make_item("0" * 24, synthetic_articles(1, random.Random(1))[0], "bench")
    argv = _publish_args(keys, item, fp, policy)
    expected = {ARG_ID: item.id, ARG_SIG: fp.signature, ARG_LEAD: fp.lead_signature}
    if any(argv[i] != v for i, v in expected.items()) or len(argv) != ARG_SLOTS + 2 * BANDS:
        raise RuntimeError("PUBLISH_ITEM ARGV layout changed: update bench/dedupe_bench.py")
    if argv[5] != "1" or argv[6] != "1":
        raise RuntimeError("template item must use both content and near-duplicate dedupe")
    return argv


# --- 2. feedpipe: timed operations ---------------------------------------------------------


async def time_evalsha(
    client: AsyncRedis, sha: str, keys: Keys, policy: PublishPolicy, ops: list[Op], days: str
) -> tuple[list[int], Counter[str]]:
    """Insert+check through EVALSHA, one at a time; only the Redis call is timed."""
    prepared = []
    for op in ops:
        argv = _publish_args(keys, op.item, fingerprint(op.text, policy.near), policy)
        argv[ARG_DAYS] = days  # the window the loader filled, even across a UTC midnight
        prepared.append((script_keys(keys, op.item.id, op.item.content_hash), argv))
    gc.collect()
    samples: list[int] = []
    outcomes: Counter[str] = Counter()
    for op, (script_key_names, argv) in zip(ops, prepared, strict=True):
        start = time.perf_counter_ns()
        reply = await client.evalsha(sha, NUM_KEYS, *script_key_names, *argv)  # type: ignore[misc]
        samples.append(time.perf_counter_ns() - start)
        outcomes[f"{op.kind}->{reply[0].decode()}"] += 1
    return samples, outcomes


async def time_publish_item(
    client: AsyncRedis, keys: Keys, policy: PublishPolicy, ops: list[Op]
) -> tuple[list[int], Counter[str]]:
    """The production call end to end: fingerprint + EVAL (script text sent) + reply parsing."""
    gc.collect()
    samples: list[int] = []
    outcomes: Counter[str] = Counter()
    for op in ops:
        start = time.perf_counter_ns()
        outcome = await publish_item(client, keys, FEED_ID, op.item, policy)
        samples.append(time.perf_counter_ns() - start)
        outcomes[f"{op.kind}->{getattr(outcome, 'reason', 'published')}"] += 1
    return samples, outcomes


def server_side(commandstats: dict[str, Any], ops: int) -> dict[str, Any]:
    """Per operation, from INFO commandstats since CONFIG RESETSTAT: Redis CPU time (a script's
    figure includes the commands it calls) and the commands run, by name."""
    stats = {
        name.removeprefix("cmdstat_"): v
        for name, v in commandstats.items()
        if not name.startswith(("cmdstat_config", "cmdstat_info"))  # the bench's own
    }
    scripts = {n: v for n, v in stats.items() if n in {"eval", "evalsha"}}
    top = scripts or stats  # a script's usec already includes the commands it calls
    return {
        "usec_per_op": sum(int(v["usec"]) for v in top.values()) / ops,
        "calls_per_op": {n: int(v["calls"]) / ops for n, v in sorted(stats.items())},
        "usec_per_call": {n: float(v["usec_per_call"]) for n, v in sorted(stats.items())},
    }


# --- 3. Memory ----------------------------------------------------------------------------


def used_memory(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


def memory_usage(client: redis.Redis, names: Sequence[str]) -> list[int]:
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.memory_usage(name, samples=0)
    return [int(v or 0) for v in pipe.execute()]


def shard_lengths(client: redis.Redis, prefix: str, days: Sequence[str], shards: int) -> Any:
    """HLEN of every day shard (0: absent), as a (days, shards) array."""
    lengths = np.zeros((len(days), shards), dtype=np.int64)
    for d, day in enumerate(days):
        pipe = client.pipeline(transaction=False)
        for shard in range(shards):
            pipe.hlen(f"{prefix}{day}:{shard}")
        lengths[d] = pipe.execute()
    return lengths


def memory_breakdown(
    client: redis.Redis, keys: Keys, days: Sequence[str], shards: int, items: int, delta: int
) -> dict[str, Any]:
    """Where the bytes are: MEMORY USAGE (value + key name + main-dict entry) of samples of
    each key family, scaled by the family's key count, plus the dicts' own overhead."""
    rng = random.Random(3)
    prefix = keys.dedupe_index(SCHEME)
    lengths = shard_lengths(client, prefix, days, shards)
    existing = np.argwhere(lengths > 0)
    picks = [tuple(existing[i]) for i in rng.sample(range(len(existing)), min(2000, len(existing)))]
    shard_names = [f"{prefix}{days[d]}:{s}" for d, s in picks]
    big = [f"{prefix}{days[d]}:{s}" for d, s in np.argwhere(lengths > _listpack_limit(client))]
    seqs = rng.sample(range(items), min(2000, items))
    families = {
        "index_shards": (shard_names, len(existing)),
        "doc_records": ([f"{prefix}doc:{i + 1}" for i in seqs], items),
        "item_keys": ([keys.item(f"{i:024x}") for i in seqs], items),
        "content_keys": ([keys.content(f"{i:032x}") for i in seqs], items),
    }
    result: dict[str, Any] = {}
    accounted = 0
    for family, (names, count) in families.items():
        mean = float(np.mean(memory_usage(client, names)))
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
    encodings = Counter(_str(client.object("encoding", n)) for n in shard_names[:500] + big)
    result["shards"] = {
        "per_day": shards,
        "existing": len(existing),
        "fields_total": int(lengths.sum()),
        "fields_mean": float(lengths[lengths > 0].mean()),
        "fields_max": int(lengths.max()),
        "over_listpack_limit": len(big),
        "listpack_limit": _listpack_limit(client),
        "over_128_fields": int((lengths > 128).sum()),  # the limit pipeline/dedupe.py assumes
        "encodings_sampled": dict(encodings),
        "fields_per_day_mean": [float(row.mean()) for row in lengths],
    }
    result["dbsize"] = int(client.dbsize())
    result["keyspace"] = client.info("keyspace").get("db0", {})
    return result


def _str(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _listpack_limit(client: redis.Redis) -> int:
    return int(client.config_get("hash-max-listpack-entries")["hash-max-listpack-entries"])


# --- 4. Baseline: datasketch --------------------------------------------------------------


def datasketch_lsh(port: int) -> MinHashLSH:
    config = {"type": "redis", "basename": b"bench", "redis": {"host": "127.0.0.1", "port": port}}
    return MinHashLSH(threshold=0.5, num_perm=NUM_PERM, params=(32, 4), storage_config=config)


def bench_baseline(
    client: redis.Redis, port: int, preload: int, ops: list[Op], publish: list[bool], warmup: int
) -> dict[str, Any]:
    """Preload ``preload`` random MinHashes, then time query + insert of the same operations
    (inserting exactly those feedpipe published: the same check-then-insert work)."""
    lsh = datasketch_lsh(port)
    rng = np.random.default_rng(5)
    before = used_memory(client)
    started = time.perf_counter()
    with lsh.insertion_session(buffer_size=20_000) as session:
        for i in range(preload):
            values = rng.integers(0, 2**32 - 1, size=NUM_PERM, dtype=np.uint64)
            session.insert(f"pre{i}", MinHash(hashvalues=values, scheme="affine32"))
    load_seconds = time.perf_counter() - started
    after = used_memory(client)
    minhashes = [datasketch_minhash(op.text) for op in ops]
    work = list(zip(ops, minhashes, publish, strict=True))
    check_then_insert(lsh, work[:warmup])
    gc.collect()
    client.config_resetstat()
    samples, queries, inserts = check_then_insert(lsh, work[warmup:])
    server = server_side(client.info("commandstats"), len(samples))
    return {
        "preloaded_items": preload,
        "preload_seconds": load_seconds,
        "memory_bytes_per_item": (after - before) / preload,
        "query_plus_insert": latency_summary(samples),
        "query": latency_summary(queries),
        "insert": latency_summary(inserts or [0]),
        "inserted": len(inserts),
        "warmup_ops": warmup,
        "redis_server": server,
        "commands_per_op": sum(server["calls_per_op"].values()),
    }


def check_then_insert(
    lsh: MinHashLSH, work: Sequence[tuple[Op, MinHash, bool]]
) -> tuple[list[int], list[int], list[int]]:
    """Times of query + insert, of the queries, of the inserts (ns)."""
    samples, queries, inserts = [], [], []
    for op, minhash, insert in work:
        start = time.perf_counter_ns()
        lsh.query(minhash)
        queried = time.perf_counter_ns()
        if insert:
            lsh.insert(op.item.id, minhash)
        end = time.perf_counter_ns()
        samples.append(end - start)
        queries.append(queried - start)
        if insert:
            inserts.append(end - queried)
    return samples, queries, inserts


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
    }


def verdicts(
    fp: dict[str, Any], redis_part: dict[str, Any], memory_per_item: float, speedup: float
) -> dict[str, dict[str, Any]]:
    reached = {
        "redis_p50_ms": redis_part["p50_ms"],
        "redis_p99_ms": redis_part["p99_ms"],
        "fingerprint_mean_ms": fp["mean_ms"],
        "memory_bytes_per_item": memory_per_item,
    }
    result = {
        name: {"target": TARGETS[name], "reached": value, "met": value <= TARGETS[name]}
        for name, value in reached.items()
    }
    target = TARGETS["speedup_vs_datasketch_p50"]
    result["speedup_vs_datasketch_p50"] = {
        "target": target,
        "reached": speedup,
        "met": speedup >= target,
    }
    return result


def print_summary(report: dict[str, Any]) -> None:
    fig = report["results"]
    fp, ev, pi = fig["fingerprint"], fig["feedpipe_evalsha"], fig["feedpipe_publish_item"]
    base, mem = fig["datasketch"], fig["memory"]
    print("\n=== dedupe benchmark ===")
    print(
        f"stored items: {report['parameters']['items']:,} (feedpipe), "
        f"{base['preloaded_items']:,} (datasketch)"
    )
    load = fig["feedpipe_load"]
    print(
        f"loaded through PUBLISH_ITEM in {load['seconds']:.0f} s "
        f"({load['items_per_second']:,.0f} items/s, Redis {load['usec_per_op']:.0f} us/item)"
    )
    print(f"{'':38}{'mean':>9}{'p50':>9}{'p90':>9}{'p99':>9}{'max':>9}  (ms)")
    rows = [
        ("fingerprint() per article", fp),
        ("  datasketch MinHash per article", fp["datasketch_minhash"]),
        ("feedpipe insert+check (EVALSHA)", ev["latency"]),
        ("feedpipe publish_item (fp+EVAL)", pi["latency"]),
        ("datasketch query+insert", base["query_plus_insert"]),
        ("  datasketch query", base["query"]),
        ("  datasketch insert", base["insert"]),
    ]
    for label, s in rows:
        print(
            f"{label:38}"
            + "".join(f"{s[k]:9.3f}" for k in ("mean_ms", "p50_ms", "p90_ms", "p99_ms", "max_ms"))
        )
    print(f"\nfingerprinted {fp['n']:.0f} articles, mean {fp['mean_chars']:.0f} chars")
    print_server_side(ev["redis_server"], pi["redis_server"], base["redis_server"])
    print(
        f"memory per stored item: feedpipe {mem['bytes_per_item']:.0f} B "
        f"(index only {mem['index_bytes_per_item']:.0f} B), "
        f"datasketch {base['memory_bytes_per_item']:.0f} B"
    )
    for family, entry in mem["breakdown"].items():
        if isinstance(entry, dict) and "bytes_per_item" in entry:
            print(f"  {family:16}{entry['bytes_per_item']:9.1f} B/item")
    shards = mem["breakdown"]["shards"]
    print(
        f"  shards: {shards['existing']:,} keys, {shards['fields_mean']:.1f} fields mean, "
        f"max {shards['fields_max']}, {shards['over_listpack_limit']} over this server's "
        f"listpack limit ({shards['listpack_limit']}), {shards['over_128_fields']} over 128; "
        f"sampled encodings {shards['encodings_sampled']}"
    )
    print(f"outcomes (EVALSHA run, intended->actual): {ev['outcomes']}")
    print(f"outcomes (publish_item run): {pi['outcomes']}")
    print(
        f"speedup vs datasketch: p50 {fig['ratios']['speedup_p50']:.1f}x, "
        f"p99 {fig['ratios']['speedup_p99']:.1f}x; memory ratio "
        f"{fig['ratios']['memory_datasketch_over_feedpipe']:.1f}x less"
    )
    print("\ntarget                          target    reached   verdict")
    for name, v in report["targets"].items():
        verdict = "MET" if v["met"] else "MISSED"
        print(f"{name:30}{v['target']:9.2f}{v['reached']:11.3f}   {verdict}")
    print(f"\nphase seconds: {report['phase_seconds']}")


def print_server_side(
    evalsha: dict[str, Any], publish: dict[str, Any], base: dict[str, Any]
) -> None:
    calls = evalsha["calls_per_op"]
    inner = ", ".join(f"{n} {c:.1f}" for n, c in calls.items() if n != "evalsha")
    print(
        f"Redis CPU per op: feedpipe EVALSHA {evalsha['usec_per_op']:.0f} us "
        f"(commands per op inside the script: {inner}); "
        f"publish_item's EVAL {publish['usec_per_op']:.0f} us; "
        f"datasketch {base['usec_per_op']:.0f} us over "
        f"{sum(base['calls_per_op'].values()):.1f} commands"
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


@dataclass(frozen=True)
class Setup:
    client: redis.Redis
    port: int
    keys: Keys
    policy: PublishPolicy
    days: tuple[str, ...]
    sha: str


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
    setup = Setup(client, port, Keys(), policy, days, client.script_load(PUBLISH_ITEM))
    articles = load_corpus(args.corpus)

    with phases.phase("fingerprint"):
        fp_stats = bench_fingerprint(articles)
    workload = Workload(articles, seed=11)
    warmup = min(50, args.measure)
    ops_sha, ops_pub = workload.ops(warmup + args.measure), workload.ops(args.measure)

    mem_before = used_memory(client)
    client.config_resetstat()
    with phases.phase(f"load {args.items:,} items"):
        load_items(setup, args, fp_stats)
    load = server_side(client.info("commandstats"), args.items)
    load["seconds"] = phases.seconds[f"load {args.items:,} items"]
    load["items_per_second"] = args.items / load["seconds"]
    memory: dict[str, Any] = {"used_memory_before": mem_before}
    memory["used_memory_after_load"] = mem_loaded = used_memory(client)
    memory["bytes_per_item"] = (mem_loaded - mem_before) / args.items
    with phases.phase("memory breakdown"):
        breakdown = memory_breakdown(
            client, setup.keys, days, policy.near.index_shards, args.items, mem_loaded - mem_before
        )
    memory["index_bytes_per_item"] = sum(
        breakdown[f]["bytes_per_item"] for f in ("index_shards", "doc_records")
    )
    memory["breakdown"] = breakdown

    with phases.phase("timed feedpipe ops"):
        sha_run, published, pub_run = asyncio.run(_timed_feedpipe(setup, ops_sha, warmup, ops_pub))
    info = machine(client)
    client.flushall()
    with phases.phase("datasketch baseline"):
        base = bench_baseline(client, port, args.baseline_items, ops_sha, published, warmup)

    results = {
        "fingerprint": fp_stats,
        "feedpipe_load": load,
        "feedpipe_evalsha": sha_run.report(),
        "feedpipe_publish_item": pub_run.report(),
        "memory": memory,
        "datasketch": base,
    }
    results["ratios"] = ratios(results)
    return {
        "benchmark": "dedupe",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": info,
        "parameters": _parameters(args, policy, days, warmup),
        "results": results,
        "targets": verdicts(
            fp_stats,
            results["feedpipe_evalsha"]["latency"],
            memory["bytes_per_item"],
            results["ratios"]["speedup_p50"],
        ),
        "notes": NOTES,
        "phase_seconds": phases.seconds,
        "total_seconds": phases.total(),
    }


def load_items(setup: Setup, args: argparse.Namespace, fp_stats: dict[str, Any]) -> None:
    some_fp = fingerprint("خبر " * 100, setup.policy.near)
    assert some_fp is not None
    loader = Loader(
        setup.client,
        setup.sha,
        setup.keys,
        setup.days,
        tuple(publish_template(setup.keys, setup.policy, some_fp)),
        shingles=round(fp_stats["mean_shingles"]),
        lead_shingles=round(fp_stats["mean_lead_shingles"]),
        shards=setup.policy.near.index_shards,
    )
    step = max(1, args.items // 10)
    done = [0]
    started = time.perf_counter()

    def progress(n: int) -> None:
        done[0] += n
        if done[0] % step < n or done[0] == args.items:
            rate = done[0] / (time.perf_counter() - started)
            print(f"   loaded {done[0]:,} ({rate:,.0f} items/s)", flush=True)

    loader.load(args.items, args.batch, progress)


def ratios(results: dict[str, Any]) -> dict[str, float]:
    feedpipe = results["feedpipe_evalsha"]["latency"]
    base = results["datasketch"]
    theirs = base["query_plus_insert"]
    return {
        "speedup_p50": theirs["p50_ms"] / feedpipe["p50_ms"],
        "speedup_p99": theirs["p99_ms"] / feedpipe["p99_ms"],
        "speedup_mean": theirs["mean_ms"] / feedpipe["mean_ms"],
        "memory_datasketch_over_feedpipe": (
            base["memory_bytes_per_item"] / results["memory"]["bytes_per_item"]
        ),
        "publish_item_over_evalsha_p50": (
            results["feedpipe_publish_item"]["latency"]["p50_ms"] / feedpipe["p50_ms"]
        ),
    }


async def _timed_feedpipe(
    setup: Setup,
    ops_sha: list[Op],
    warmup: int,
    ops_pub: list[Op],
) -> tuple[TimedRun, list[bool], TimedRun]:
    """EVALSHA run (after ``warmup`` untimed ops), then the publish_item run; which of the
    EVALSHA ops were published (the baseline inserts those)."""
    client = AsyncRedis(port=setup.port)
    keys, policy, sha, window = setup.keys, setup.policy, setup.sha, ",".join(setup.days)
    try:
        await time_evalsha(client, sha, keys, policy, ops_sha[:warmup], window)
        await client.config_resetstat()
        samples, outcomes = await time_evalsha(client, sha, keys, policy, ops_sha[warmup:], window)
        stats = await client.info("commandstats")
        sha_run = TimedRun(samples, outcomes, server_side(stats, len(samples)))
        published = [await _was_published(client, keys, op) for op in ops_sha]
        await client.config_resetstat()
        samples, outcomes = await time_publish_item(client, keys, policy, ops_pub)
        stats = await client.info("commandstats")
        pub_run = TimedRun(samples, outcomes, server_side(stats, len(samples)))
    finally:
        await client.aclose()
    return sha_run, published, pub_run


async def _was_published(client: AsyncRedis, keys: Keys, op: Op) -> bool:
    value = await client.get(keys.item(op.item.id))
    return value is not None and not value.startswith(b"dup:")


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
        "index_shards_per_day": policy.near.index_shards,
        "bands": BANDS,
        "stream_maxlen": policy.maxlen,
        "workload_shares": {
            "exact_copy": Workload.EXACT_COPY_SHARE,
            "near_copy": Workload.NEAR_COPY_SHARE,
        },
        "datasketch": {"threshold": 0.5, "num_perm": NUM_PERM, "params": [32, 4]},
    }


NOTES = [
    "Redis latency: wall time of one awaited EVALSHA of PUBLISH_ITEM (redis.asyncio client, "
    "no hiredis, loopback) with all 7 days in ARGV[9]; fingerprints and ARGV are precomputed.",
    "publish_item: the production call (fingerprint + EVAL with the script text + parsing).",
    "Stored items are synthetic fingerprints loaded through the same script, spread evenly "
    "over the 7 window days; timed operations use real fingerprints of real/edited articles.",
    "Memory per item: (used_memory after loading - before) / items; counts index shards, doc "
    "records, the exact-dedupe item and content keys, their expire entries and the output "
    "stream capped at MAXLEN ~1000. index_bytes_per_item: shards + doc records only.",
    "datasketch: query + insert of the same operations (insert only where feedpipe published), "
    "on a Redis holding only the preloaded datasketch items (FLUSHALL before), because loading "
    "it is ~100x slower than feedpipe; its MinHashes are computed outside the timing.",
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
