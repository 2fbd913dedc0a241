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

``arabic-dev-templates`` (template stories: cables, bulletins, ...) is scored pairwise the same
way, overall and per ``family``. Both Arabic sets are then scored "as a user sees it" (cluster):
on one fresh index every article of the set that is in some pair is published in date order,
with the publish clock at the article's date (so the window's day buckets are the real ones;
the pairwise passes publish at the wall clock, where the gap between A and B never counts);
an article's cluster is its own id if published, else the id it was withheld as a copy of
(followed transitively), and a pair is predicted "dup" iff both ended in the same cluster.
A compact table (set, method, P, R, F1, n) ends the output; the JSON report holds it too.

Without the data folder the run is skipped (and says so); under CI=true that is a failure, as
for the other benchmarks (bench/feedfarm.py: shared_dir).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
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
from pipeline.models import Cluster, Discarded, FeedInfo, Item, PublishOutcome
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
    family: str = ""  # arabic-dev-templates' template family


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
    (pipeline/lua/publish_item/); the other slots do not matter to ``first``'s copy."""
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


@dataclass(frozen=True)
class LabelledSet:
    """A folder of ``articles.jsonl`` + ``pairs.jsonl`` (arabic-dev's format)."""

    items: dict[str, Item]  # by article id
    dates: dict[str, datetime]  # by article id
    pairs: list[dict[str, Any]]


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def article_date(row: dict[str, Any]) -> datetime:
    """The article's date as the publish clock. SaudiNewsNet dates carry no zone: read as UTC,
    the zone of the index's day buckets (a few hours off at most, on one day bucket)."""
    when = datetime.fromisoformat(row["date"])
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def read_set(folder: Path) -> LabelledSet:
    rows = read_jsonl(folder / "articles.jsonl")
    return LabelledSet(
        items={r["id"]: make_item(r["id"], r["title"], r["text"], r["source"]) for r in rows},
        dates={r["id"]: article_date(r) for r in rows},
        pairs=read_jsonl(folder / "pairs.jsonl"),
    )


async def arabic_pairs(
    redis: Redis, policy: PublishPolicy, folder: Path, load: Load | None = None
) -> list[Case]:
    """Each labelled pair on an empty index: A published, then B (``decide``)."""
    labelled, cases = read_set(folder), []
    for pair in labelled.pairs:
        a, b = labelled.items[pair["a"]], labelled.items[pair["b"]]
        discarded = await decide(redis, policy, a, b, load)
        cases.append(
            Case(
                pair["id"],
                pair["label"],
                discarded is not None,
                discarded.reason if discarded else "published",
                *reference(a, b, policy.near),
                why=pair.get("why", ""),
                family=pair.get("family", ""),
            )
        )
    return cases


async def publish_in_order(
    redis: Redis, policy: PublishPolicy, labelled: LabelledSet
) -> dict[str, PublishOutcome]:
    """Every article of some pair published once on a fresh index, in date order (ties by id),
    the clock at its date: the order and day buckets the pipeline would have seen."""
    await redis.flushdb()
    ids = {pair[side] for pair in labelled.pairs for side in ("a", "b")}
    outcomes: dict[str, PublishOutcome] = {}
    for article in sorted(ids, key=lambda i: (labelled.dates[i], i)):
        item, now = labelled.items[article], labelled.dates[article]
        outcomes[article] = await publish_item(redis, KEYS, "eval", item, policy, now=now)
    return outcomes


def kept_article(outcome: PublishOutcome, article_of: dict[str, str]) -> str | None:
    """The article a withheld item was kept as a copy of (by article id when known)."""
    if not isinstance(outcome, Discarded) or not outcome.duplicate_of:
        return None
    return article_of.get(outcome.duplicate_of, outcome.duplicate_of)


def clusters(outcomes: dict[str, PublishOutcome], items: dict[str, Item]) -> dict[str, str]:
    """Article id -> its cluster: its own id if published (or withheld for another reason),
    else the kept article's cluster. Kept items are published ones, so chains should not occur;
    they are followed anyway (with a cycle guard) so that a change there cannot skew the figures."""
    article_of = {items[a].id: a for a in outcomes}
    parent = {a: kept_article(o, article_of) or a for a, o in outcomes.items()}
    return {a: cluster_root(parent, a) for a in parent}


def cluster_root(parent: dict[str, str], start: str) -> str:
    path = [start]
    while (following := parent.get(path[-1], path[-1])) not in path:
        path.append(following)
    # ``following`` is path[-1] (a root) or an earlier node: a cycle, named by its smallest id
    # so that every member gets the same cluster.
    return min(path[path.index(following) :])


def outcome_text(outcome: PublishOutcome, article_of: dict[str, str]) -> str:
    kept = kept_article(outcome, article_of)
    return "published" if kept is None else f"{outcome_reason(outcome)} of {kept}"


def outcome_reason(outcome: PublishOutcome) -> str:
    return outcome.reason if isinstance(outcome, Discarded) else "published"


async def cluster_cases(redis: Redis, policy: PublishPolicy, folder: Path) -> list[Case]:
    """The set "as a user sees it" (module docstring): a pair is "dup" iff both articles ended
    in the same cluster. ``reason`` says what became of A and B, and how far apart they are."""
    labelled = read_set(folder)
    outcomes = await publish_in_order(redis, policy, labelled)
    cluster_of = clusters(outcomes, labelled.items)
    article_of = {labelled.items[a].id: a for a in outcomes}
    cases = []
    for pair in labelled.pairs:
        a, b = pair["a"], pair["b"]
        days = abs(labelled.dates[b] - labelled.dates[a]).total_seconds() / 86_400
        reason = (
            f"A {outcome_text(outcomes[a], article_of)}; B {outcome_text(outcomes[b], article_of)};"
            f" {days:.1f} days apart"
        )
        cases.append(
            Case(
                pair["id"],
                pair["label"],
                cluster_of[a] == cluster_of[b],
                reason,
                *reference(labelled.items[a], labelled.items[b], policy.near),
                why=pair.get("why", ""),
                family=pair.get("family", ""),
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


def report(name: str, cases: list[Case], detail: bool = False) -> dict[str, Any]:
    """Prints the set's figures and mistakes (``detail``: with each case's ``reason``)."""
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
        print(mistake_line(case) + (f"\n{'':25}{case.reason}" if detail else ""))
    families = family_scores(cases)
    return {
        **result,
        **({"families": families} if families else {}),
        "mistakes": [asdict(c) for c in mistakes],
        "cases": [asdict(c) for c in cases],
    }


def mistake_line(case: Case) -> str:
    kind = "false merge" if case.predicted_dup else "missed copy"
    family = f"[{case.family}] " if case.family else ""
    return (
        f"  {kind:11} {case.id:10} J={case.jaccard:.2f} C={case.containment:.2f} "
        f"lead={case.lead:.2f}  {family}{case.why[:90]}"
    )


def family_scores(cases: list[Case]) -> dict[str, dict[str, Any]]:
    """Scores per template family (none for sets without families)."""
    families = sorted({c.family for c in cases if c.family})
    return {f: scores([c for c in cases if c.family == f]) for f in families}


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


PAIR_SETS = ("arabic-dev", "arabic-dev-templates")  # articles.jsonl + pairs.jsonl
PERSIAN_SET = "persian-set-a"


def seed_fixture(data: Path) -> Path:
    return data.parent.parent / "fixtures" / "seed-ilna.txt"


def check_data(data: Path) -> bool:
    """Whether to run: False (said why) when ``data`` is not there. Under CI=true anything
    missing is SystemExit instead: CI must not pass while the evaluation quietly did not run
    (the convention of bench/feedfarm.py: shared_dir)."""
    wanted = [*(data / name for name in (*PAIR_SETS, PERSIAN_SET)), seed_fixture(data)]
    missing = [str(path) for path in wanted if not path.exists()]
    if missing and os.environ.get("CI") == "true":
        raise SystemExit(
            f"dedupe_eval: not found under CI=true: {', '.join(missing)} (the shared data must be"
            " beside the project root; the evaluation does not skip it in CI)"
        )
    if not data.is_dir():
        print(f"dedupe_eval: skipped: {data} not found (the shared data lives beside the project)")
        return False
    for path in missing:
        print(f"dedupe_eval: skipping {path}: not found")
    return True


async def evaluate(redis: Redis, policy: PublishPolicy, data: Path, runs: int) -> dict[str, Any]:
    """Every set found under ``data``: pairwise ("sets"), cluster, loaded runs."""
    results: dict[str, Any] = {"sets": {}, "cluster": {}}
    for name in (n for n in PAIR_SETS if (data / n).exists()):
        cases = await arabic_pairs(redis, policy, data / name)
        results["sets"][name] = report(f"{name} (pairwise)", cases)
        cases = await cluster_cases(redis, policy, data / name)
        title = f"{name} (cluster: all articles on one index, in date order)"
        results["cluster"][name] = report(title, cases, detail=True)
    for name, load in LOADS.items() if runs and (data / "arabic-dev").exists() else ():
        results[f"arabic-dev {name}"] = await loaded_runs(
            redis, policy, data / "arabic-dev", name, load, runs
        )
    seed = seed_fixture(data)
    if (data / PERSIAN_SET).exists() and seed.exists():
        cases = await persian_set(redis, policy, data / PERSIAN_SET, seed)
        results["sets"][PERSIAN_SET] = report(f"{PERSIAN_SET} (seed first)", cases)
    return results


def table_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per set and method, then one per family of that set and method."""
    rows = []
    for name in (*PAIR_SETS, PERSIAN_SET):
        for section, method in (("sets", "pairwise"), ("cluster", "cluster")):
            result = results[section].get(name)
            if result is None:
                continue
            shown = "seed first" if name == PERSIAN_SET else method
            rows.append(table_row(name, shown, "", result))
            rows += [table_row(name, shown, f, r) for f, r in result.get("families", {}).items()]
    return rows


def table_row(name: str, method: str, family: str, result: dict[str, Any]) -> dict[str, Any]:
    figures = ("precision", "recall", "f1", "dup", "distinct", "updates", "updates_merged")
    row = {"set": name, "method": method, "family": family}
    return row | {key: result[key] for key in figures} | {"n": result["dup"] + result["distinct"]}


def print_table(rows: list[dict[str, Any]]) -> None:
    """n = the pairs P/R/F1 are computed on (dup + distinct); updates are apart."""
    print(f"\n{'set / family':24} {'method':10}  P      R      F1      n  dup dist  upd merged")
    for row in rows:
        label = f"  {row['family']}" if row["family"] else row["set"]
        print(
            f"{label:24} {row['method']:10} {row['precision']:.3f}  {row['recall']:.3f}  "
            f"{row['f1']:.3f} {row['n']:4} {row['dup']:4} {row['distinct']:4}  "
            f"{row['updates_merged']}/{row['updates']}"
        )


async def run(data: Path, out: Path, runs: int) -> int:
    if not check_data(data):
        return 0
    near = DedupePolicy()
    policy = PublishPolicy(maxlen=10_000, dedupe_ttl_seconds=3600, min_text_chars=250, near=near)
    results: dict[str, Any] = {"scheme": SCHEME, "policy": asdict(near)}
    with tempfile.TemporaryDirectory(prefix="feedpipe-eval-") as tmp:
        server = EmbeddedRedis(Path(tmp), persistent=False)
        redis = Redis.from_url(server.start())
        try:
            started = time.perf_counter()
            results |= await evaluate(redis, policy, data, runs)
            results["seconds"] = round(time.perf_counter() - started, 1)
        finally:
            await redis.aclose()
            server.stop()
    if not results["sets"]:
        print(f"no evaluation sets under {data}: expected {', '.join(PAIR_SETS)}, {PERSIAN_SET}")
        return 2
    # When it ran: the decision code (publish_item) changes under this script.
    results["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    results["table"] = table_rows(results)
    print_table(results["table"])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, ensure_ascii=False, indent=1), encoding="utf-8")
    print(
        f"\n{results['seconds']} s of evaluation, finished {results['finished_at']}\nreport: {out}"
    )
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
