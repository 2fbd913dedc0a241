"""Precision and recall of feedpipe's near-duplicate decision on labelled data.

    python -m bench.dedupe_eval --data ../shared/data/syndication

Runs the real decision code (the publish Lua script via ``pipeline.publish.publish_item``) on a
private redis-server: for every labelled pair of ``arabic-dev`` the index is emptied, article A is
published, then B: B withheld as a duplicate means "dup". The Persian set is published in order
(the seed fixture first, then every labelled file), as the pipeline would see syndicated copies
arrive. Prints precision/recall/F1 of dup vs distinct (``update`` reported apart: either decision
is acceptable), every mistake with its similarity figures, and writes a JSON report.

``arabic-dev`` is then run again on a *loaded* index, since a later band entry landing on a slot
of the window's slot table replaces the earlier one: between A and B, other items' entries are
written at random slots of the table, L per slot, so each of A's entries is lost with
probability 1 - e^-L (the run overwrites each of A's slots with that probability). A table at
its planned load takes SLOT_LOAD entries per slot in a window (7 days), so L is what was
published between A and B. Three loads: "within a day", L drawn per
pair from 0 to SLOT_LOAD / 7 (B up to a day after A); "a week later", L = SLOT_LOAD (B as A
leaves the window); and "worst case", L = SLOT_LOAD_MAX (B a week later, on a table that
filled up to the point where a larger one is started). The other items' entries point past the
day's records, so a check that matches one reads nothing. ``--loaded-runs`` seeds each.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from pipeline.dedupe import (
    SCHEME,
    SLOT_ITEM_BITS,
    SLOT_LOAD,
    SLOT_LOAD_MAX,
    DedupePolicy,
    band_slot,
    day_code,
    fingerprint,
    similarity,
    slot_value,
    window_tables,
)
from pipeline.keys import Keys
from pipeline.models import Cluster, Discarded, FeedInfo, Item
from pipeline.normalize import clean_text, content_hash, short_hash
from pipeline.publish import PublishPolicy, publish_item
from workers.embedded_redis import EmbeddedRedis

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "syndication"
KEYS = Keys()


@dataclass
class Case:
    id: str
    label: str
    predicted_dup: bool
    reason: str
    jaccard: float
    containment: float
    lead: float
    why: str = ""


def make_item(key: str, title: str, text: str, source: str) -> Item:
    text = clean_text(text)
    return Item(
        id=short_hash(key),
        url=f"https://eval.invalid/{key}",
        canonical_url=None,
        feed=FeedInfo(url="https://eval.invalid/feed", title=source, tags=()),
        source=source,
        title=title,
        author=None,
        published_at=None,
        fetched_at="2025-01-01T00:00:00Z",
        language=None,
        text=text,
        summary="",
        categories=(),
        image=None,
        extraction="feed",
        content_hash=content_hash(text),
        cluster=Cluster(id=short_hash(key)),
    )


def reference(a: Item, b: Item, policy: DedupePolicy) -> tuple[float, float, float]:
    fa, fb = fingerprint(a.text, policy), fingerprint(b.text, policy)
    if fa is None or fb is None:
        return 0.0, 0.0, 0.0
    sim = similarity(fa, fb)
    return round(sim.jaccard, 3), round(sim.containment, 3), round(sim.lead, 3)


async def decide(
    redis: Redis, policy: PublishPolicy, first: Item, second: Item, load: Load | None
) -> Discarded | None:
    await redis.flushdb()
    await publish_item(redis, KEYS, "eval", first, policy)
    if load:
        rng = random.Random(f"{load.seed}:{first.id}")
        per_slot = rng.uniform(0, load.per_slot) if load.spread else load.per_slot
        await overwrite_slots(redis, policy.near, first, per_slot, rng)
    outcome = await publish_item(redis, KEYS, "eval", second, policy)
    return outcome if isinstance(outcome, Discarded) else None


@dataclass(frozen=True)
class Load:
    per_slot: float  # other items' entries written into the table, per slot
    seed: int
    spread: bool = False  # per_slot is the top of a uniform draw per pair


async def overwrite_slots(
    redis: Redis, near: DedupePolicy, first: Item, per_slot: float, rng: random.Random
) -> None:
    """Overwrites each slot of the window table holding one of ``first``'s band entries with
    probability 1 - e^-per_slot, as ``per_slot`` later entries per slot landing at random would
    (pipeline/keys.py: PUBLISH_ITEM); the other slots do not matter to ``first``'s copy."""
    prefix, today = KEYS.dedupe_index(SCHEME), near.days()[0]
    tables = window_tables(await redis.get(f"{prefix}tables"))
    fp = fingerprint(first.text, near)
    if not tables or fp is None:  # A was not fingerprinted: nothing indexed
        return
    slots, code = tables[-1].slots, day_code(today)
    nowhere = (1 << SLOT_ITEM_BITS) - 1  # an item number past the day's records
    ops: list[str | int] = []
    for position in sorted({band_slot(band)[0] % slots for band in fp.bands}):
        if rng.random() < 1 - math.exp(-per_slot):
            ops += ["SET", "u40", f"#{position}", slot_value(rng.randrange(256), code, nowhere)]
    if ops:
        await redis.execute_command("BITFIELD", f"{prefix}slots:{tables[-1].number}", *ops)


async def arabic_pairs(
    redis: Redis, policy: PublishPolicy, folder: Path, load: Load | None = None
) -> list[Case]:
    articles = {}
    for line in (folder / "articles.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        articles[row["id"]] = make_item(row["id"], row["title"], row["text"], row["source"])
    cases = []
    for line in (folder / "pairs.jsonl").read_text(encoding="utf-8").splitlines():
        pair = json.loads(line)
        a, b = articles[pair["a"]], articles[pair["b"]]
        discarded = await decide(redis, policy, a, b, load)
        cases.append(
            Case(
                pair["id"],
                pair["label"],
                discarded is not None,
                discarded.reason if discarded else "published",
                *reference(a, b, policy.near),
                why=pair.get("why", ""),
            )
        )
    return cases


def read_layout(path: Path) -> tuple[str, str, str]:
    """(source, title, body) of a file in the fixture's layout."""
    lines = path.read_text(encoding="utf-8").lstrip("\ufeff ").splitlines()
    source = lines[0].split(" ", 2)[2] if lines[0].startswith("date") else path.stem
    return source, lines[1].strip(), "\n".join(lines[3:])


async def persian_set(redis: Redis, policy: PublishPolicy, folder: Path, seed: Path) -> list[Case]:
    await redis.flushdb()
    seed_item = make_item("seed", *_title_body(seed))
    await publish_item(redis, KEYS, "eval", seed_item, policy)
    labels = json.loads((folder / "labels.json").read_text(encoding="utf-8"))["items"]
    cases = []
    for entry in labels:
        item = make_item(entry["file"], *_title_body(folder / entry["file"]))
        outcome = await publish_item(redis, KEYS, "eval", item, policy)
        dup = isinstance(outcome, Discarded)
        cases.append(
            Case(
                entry["file"],
                entry["label"],
                dup,
                outcome.reason if isinstance(outcome, Discarded) else "published",
                *reference(seed_item, item, policy.near),
                why=entry.get("edits", ""),
            )
        )
    return cases


def _title_body(path: Path) -> tuple[str, str, str]:
    source, title, body = read_layout(path)
    return title, body, source


def scores(cases: list[Case]) -> dict[str, Any]:
    judged = [c for c in cases if c.label in ("dup", "distinct")]
    tp = sum(c.predicted_dup and c.label == "dup" for c in judged)
    fp = sum(c.predicted_dup and c.label == "distinct" for c in judged)
    fn = sum(not c.predicted_dup and c.label == "dup" for c in judged)
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    updates = [c for c in cases if c.label == "update"]
    return {
        "pairs": len(cases),
        "dup": tp + fn,
        "distinct": len(judged) - tp - fn,
        "true_positives": tp,
        "false_positives": fp,
        "false_negatives": fn,
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "updates": len(updates),
        "updates_merged": sum(c.predicted_dup for c in updates),
    }


def report(name: str, cases: list[Case]) -> dict[str, Any]:
    result = scores(cases)
    print(
        f"\n== {name}: {result['pairs']} pairs ({result['dup']} dup, {result['distinct']} "
        f"distinct, {result['updates']} update)"
    )
    print(
        f"precision {result['precision']:.3f}  recall {result['recall']:.3f}  "
        f"F1 {result['f1']:.3f}  (updates merged: {result['updates_merged']}/{result['updates']})"
    )
    mistakes = [c for c in cases if c.label != "update" and c.predicted_dup != (c.label == "dup")]
    for case in mistakes:
        kind = "false merge" if case.predicted_dup else "missed copy"
        print(
            f"  {kind:11} {case.id:10} J={case.jaccard:.2f} C={case.containment:.2f} "
            f"lead={case.lead:.2f}  {case.why[:90]}"
        )
    return {
        **result,
        "mistakes": [asdict(c) for c in mistakes],
        "cases": [asdict(c) for c in cases],
    }


LOADS = {
    "within a day": Load(SLOT_LOAD / DedupePolicy().window_days, seed=0, spread=True),
    "a week later": Load(SLOT_LOAD, seed=0),
    "worst case": Load(SLOT_LOAD_MAX, seed=0),
}


async def loaded_runs(
    redis: Redis, policy: PublishPolicy, folder: Path, name: str, load: Load, runs: int
) -> dict[str, Any]:
    """``arabic-dev`` on a loaded index (module docstring), ``runs`` seeds."""
    per_run, missed = [], Counter[str]()
    for seed in range(runs):
        cases = await arabic_pairs(redis, policy, folder, replace(load, seed=seed))
        per_run.append(scores(cases))
        missed.update(c.id for c in cases if c.label == "dup" and not c.predicted_dup)
    recalls = [r["recall"] for r in per_run]
    precisions = [r["precision"] for r in per_run]
    entries = f"0-{load.per_slot:.3g}" if load.spread else f"{load.per_slot:.3g}"
    print(
        f"\n== arabic-dev, loaded index, {name} ({entries} entries per slot written between A "
        f"and B), {runs} seeds\nprecision {min(precisions):.3f}-{max(precisions):.3f}  "
        f"recall {min(recalls):.3f}-{max(recalls):.3f} (mean {sum(recalls) / runs:.3f})"
    )
    print("  copies missed (runs): " + ", ".join(f"{k} ({v})" for k, v in sorted(missed.items())))
    return {"load": asdict(load), "runs": per_run, "copies_missed": dict(missed)}


async def run(data: Path, out: Path, runs: int) -> int:
    near = DedupePolicy()
    policy = PublishPolicy(maxlen=10_000, dedupe_ttl_seconds=3600, min_text_chars=250, near=near)
    results: dict[str, Any] = {"scheme": SCHEME, "policy": asdict(near), "sets": {}}
    with tempfile.TemporaryDirectory(prefix="feedpipe-eval-") as tmp:
        server = EmbeddedRedis(Path(tmp), persistent=False)
        redis = Redis.from_url(server.start())
        try:
            started = time.perf_counter()
            if (data / "arabic-dev").exists():
                cases = await arabic_pairs(redis, policy, data / "arabic-dev")
                results["sets"]["arabic-dev"] = report("arabic-dev", cases)
                for name, load in LOADS.items() if runs else ():
                    results[f"arabic-dev {name}"] = await loaded_runs(
                        redis, policy, data / "arabic-dev", name, load, runs
                    )
            seed = data.parent.parent / "fixtures" / "seed-ilna.txt"
            if (data / "persian-set-a").exists() and seed.exists():
                cases = await persian_set(redis, policy, data / "persian-set-a", seed)
                results["sets"]["persian-set-a"] = report("persian-set-a (seed first)", cases)
            results["seconds"] = round(time.perf_counter() - started, 1)
        finally:
            await redis.aclose()
            server.stop()
    if not results["sets"]:
        print(f"no evaluation sets under {data}: expected arabic-dev/ and persian-set-a/")
        return 2
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"\nreport: {out}")
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "reports" / "dedupe_eval.json")
    parser.add_argument(
        "--loaded-runs", type=int, default=5, help="seeds of the loaded-index pass (0: none)"
    )
    args = parser.parse_args()
    sys.exit(asyncio.run(run(args.data, args.out, args.loaded_runs)))


if __name__ == "__main__":
    main()
