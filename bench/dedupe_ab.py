"""A/B of the near-duplicate index against an earlier revision, in one run.

    .venv/bin/python -m bench.dedupe_ab --base faddd9c     # ~7 minutes with the defaults

Two runs of ``bench.dedupe_bench`` a few minutes apart on a shared machine differ by more than a
design change does (its round-trip floor moved from 0.13 to 0.26 ms between two runs here). So
this loads two private redis-servers with ``--items`` items each, one through the loader of the
``--base`` revision (a temporary git worktree of it) and one through this tree's, then times the
same insert+check calls (EVALSHA of each side's PUBLISH_ITEM, one awaited call at a time) on
both in alternating blocks of 50, the order swapped every round, each block followed by the same
calls to a script returning at once (the floor). Only each operation's first script call is
timed: a "verify" reply of the slot check ends it (bench.dedupe_bench times the verify round). Prints p50/p90/p99, the floor, Redis CPU per
call and memory per item of each side, and writes a JSON report (``--out``).

The base revision must have ``bench/dedupe_bench.py`` with ``load_items`` and
``prepare_evalsha`` (2026-11-25 on). Each side is loaded by ``python bench/dedupe_ab.py load``
run with that side's tree first on ``PYTHONPATH``; the prepared calls come back as msgpack.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import redis
from redis.asyncio import Redis

# Under ``load`` these are the side's own tree (first on PYTHONPATH), else this one's.
from bench import dedupe_bench as bench
from bench.harness import machine, write_report
from pipeline.dedupe import DedupePolicy
from pipeline.keys import Keys
from pipeline.publish import PUBLISH_ITEM, PublishPolicy

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "bench" / "reports" / "dedupe_ab.json"
BLOCK = 50
FLOOR_SCRIPT = "return 1"

Call = tuple[list[str], list[Any]]


def load_side(port: int, out: Path, items: int, measure: int, corpus: Path) -> None:
    """Runs in a subprocess under one side's tree: loads ``items`` through that tree's bench
    loader and writes the timed calls it prepares (as ``bench.dedupe_bench`` does) to ``out``.

    The policy and setup repeat ``bench.dedupe_bench.run``'s on purpose: only what a base
    revision's bench already has can be called here, so a helper added now would not be there."""
    client = redis.Redis(port=port)
    policy = PublishPolicy(
        maxlen=bench.STREAM_MAXLEN,
        dedupe_ttl_seconds=30 * 86_400,
        min_text_chars=250,
        near=DedupePolicy(),
    )
    days = tuple(policy.near.days(datetime.now(UTC)))
    setup = bench.Setup(client, port, Keys(), policy, days, client.script_load(PUBLISH_ITEM.text))
    articles = bench.load_corpus(corpus)
    ops = bench.Workload(articles, seed=11).ops(BLOCK + measure)  # the first block warms up
    stats = bench.bench_fingerprint(articles)
    loaded = bench.load_items(setup, argparse.Namespace(items=items, batch=2000), stats)
    memory = (loaded["used_memory_after"] - loaded["used_memory_before"]) / items
    calls = [first_call(prepared) for prepared in bench.prepare_evalsha(setup, ops)]
    result = {"sha": setup.sha, "calls": calls, "memory": memory}
    out.write_bytes(msgspec.msgpack.encode(result))


def first_call(prepared: Any) -> Any:
    """(KEYS, ARGV) of an operation's first script call. Since the slot check (2026-12-03) a
    prepared operation is a ``Prepared`` and its first call adds no verdicts yet and no routes; a
    "verify" reply then ends the timed call here (bench.dedupe_bench times the verify round).
    Earlier revisions give (KEYS, ARGV) pairs as they are."""
    if hasattr(prepared, "mine"):
        return (prepared.names, [*prepared.argv, "{}", bench.NO_ROUTES])
    return prepared


@contextmanager
def worktree(revision: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="dedupe-ab-") as directory:
        path = Path(directory) / "tree"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), revision],
            check=True,
            capture_output=True,
        )
        try:
            yield path
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)],
                check=True,
                capture_output=True,
            )


def load(tree: Path, port: int, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="dedupe-ab-") as directory:
        out = Path(directory) / "calls.msgpack"
        env = {**os.environ, "PYTHONPATH": str(tree)}
        sizes = [str(args.items), str(args.measure)]
        command = [sys.executable, __file__, "load", str(port), str(out), *sizes, str(args.corpus)]
        subprocess.run(command, env=env, cwd=tree, check=True)
        data: dict[str, Any] = msgspec.msgpack.decode(out.read_bytes())
        return data


async def time_block(client: Redis, sha: str, calls: Sequence[Call]) -> list[int]:
    samples = []
    for names, argv in calls:
        start = time.perf_counter_ns()
        await client.evalsha(sha, len(names), *names, *argv)
        samples.append(time.perf_counter_ns() - start)
    return samples


async def script_usec(client: Redis) -> int:
    stats: dict[str, Any] = await client.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("usec", 0))


async def alternate(sides: dict[str, dict[str, Any]]) -> None:
    """Times every side's calls in alternating blocks (module docstring); adds ``samples``,
    ``floor`` and ``usec`` (Redis CPU of the timed and floor calls) to each side."""
    for side in sides.values():
        side["client"] = Redis(port=side["port"])
        side["floor_sha"] = await side["client"].script_load(FLOOR_SCRIPT)
        await time_block(side["client"], side["sha"], side["calls"][:BLOCK])  # warm-up
        side["samples"], side["floor"] = [], []
        side["usec_before"] = await script_usec(side["client"])
    names = list(sides)
    count = min(len(side["calls"]) for side in sides.values())
    for round_, start in enumerate(range(BLOCK, count, BLOCK)):
        for name in names if round_ % 2 == 0 else names[::-1]:
            side = sides[name]
            calls = side["calls"][start : start + BLOCK]
            side["samples"] += await time_block(side["client"], side["sha"], calls)
            side["floor"] += await time_block(side["client"], side["floor_sha"], calls)
    for side in sides.values():
        side["usec"] = await script_usec(side["client"]) - side["usec_before"]
        await side["client"].aclose()


def summary(side: dict[str, Any]) -> dict[str, Any]:
    samples, floor = np.array(side["samples"]) / 1e6, np.array(side["floor"]) / 1e6
    return {
        "calls": len(samples),
        "p50_ms": float(np.percentile(samples, 50)),
        "p90_ms": float(np.percentile(samples, 90)),
        "p99_ms": float(np.percentile(samples, 99)),
        "floor_p50_ms": float(np.percentile(floor, 50)),
        "redis_usec_per_call": side["usec"] / len(samples),  # the floor calls' ~1 us included
        "memory_bytes_per_item": side["memory"],
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    with (
        bench.private_redis() as base_port,
        bench.private_redis() as head_port,
        worktree(args.base) as tree,
    ):
        sides = {
            f"base {args.base}": {
                "port": base_port,
                **load(tree, base_port, args),
            },
            "this tree": {"port": head_port, **load(ROOT, head_port, args)},
        }
        asyncio.run(alternate(sides))
    results = {name: summary(side) for name, side in sides.items()}
    base, head = results.values()
    return {
        "benchmark": "dedupe_ab",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "parameters": {
            "base": args.base,
            "items": args.items,
            "measure": args.measure,
            "block": BLOCK,
        },
        "results": results,
        "ratios": {
            "p50_base_over_this": base["p50_ms"] / head["p50_ms"],
            "redis_usec_base_over_this": base["redis_usec_per_call"] / head["redis_usec_per_call"],
        },
    }


def print_report(report: dict[str, Any]) -> None:
    print(f"\n=== near-duplicate index A/B, {report['parameters']['items']:,} items each ===")
    for name, fig in report["results"].items():
        print(
            f"{name:22} p50 {fig['p50_ms']:.3f}  p90 {fig['p90_ms']:.3f}  p99 {fig['p99_ms']:.3f}"
            f" ms  (floor {fig['floor_p50_ms']:.3f})  Redis CPU {fig['redis_usec_per_call']:.0f}"
            f" us/call  memory {fig['memory_bytes_per_item']:.0f} B/item"
        )
    ratios = report["ratios"]
    print(
        f"base / this tree: p50 {ratios['p50_base_over_this']:.2f}x, "
        f"Redis CPU {ratios['redis_usec_base_over_this']:.2f}x"
    )


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["load"]:
        port, out, items, measure, corpus = argv[1:6]
        load_side(int(port), Path(out), int(items), int(measure), Path(corpus))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--base", required=True, help="git revision to compare against")
    parser.add_argument("--items", type=int, default=1_000_000, help="items stored on each side")
    parser.add_argument("--measure", type=int, default=4000, help="timed calls on each side")
    parser.add_argument("--corpus", type=Path, default=bench.DEFAULT_CORPUS)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    report = run(args)
    print_report(report)
    write_report(args.out, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
