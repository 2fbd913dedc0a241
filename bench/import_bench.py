"""Big feed imports: `feedpipe feeds import` of a 100,000-feed YAML and OPML file, as a user
runs it (a subprocess), against a private redis-server this bench starts.

    .venv/bin/python -m bench.import_bench                       # 100,000 feeds, YAML and OPML
    .venv/bin/python -m bench.import_bench --feeds 20000 --formats yaml --label quick

For each format: a first import into an empty Redis (every feed new), then the same file again
(every feed known: 0 new, state kept). Reported per run: wall time, peak RSS of the import
process (``os.wait4``'s rusage of that one child: ``ru_maxrss``, the figure
``resource.getrusage(RUSAGE_CHILDREN)`` gives, without the maximum over earlier children), the
CLI's summary line and the feeds then in Redis. Also, in this process: peak Python memory
(tracemalloc) of ``registry.load_feeds_file`` alone, which holds every parsed spec before
anything is written (the import is all-or-nothing); and the time `feedpipe status` takes to
count the never-polled feeds among them.

``--baseline COMMIT`` also runs the import as it was at COMMIT, on the same files and Redis:
that commit's ``pipeline/registry.py`` (read with ``git show``, the tree is left alone) driven
the way its `feeds import` drove it (``load_feeds_file`` then ``add_feeds``), in a process
that first imports ``workers.cli`` like the real command. Reported under ``baseline``.

Runs are kept in bench/reports/import_bench.json under ``--label`` (default ``current``), so a
run of older code under another label stays beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import redis
from redis.asyncio import Redis as AsyncRedis

from bench.harness import write_report
from pipeline.keys import Keys
from pipeline.monitor import count_new_feeds
from pipeline.registry import load_feeds_file
from workers.embedded_redis import EmbeddedRedis

REPORT = Path(__file__).resolve().parent / "reports" / "import_bench.json"
KEYS = Keys()


def feed_url(i: int) -> str:
    return f"https://news{i % 2000}.example/section/{i}/rss"


def write_yaml(path: Path, count: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        out.write("feeds:\n")
        for i in range(count):
            out.write(f"  - url: {feed_url(i)}\n    title: خبرگزاری نمونه {i}\n")
            out.write(f"    tags: [fa, agency-{i % 50}]\n")
            if i % 7 == 0:
                out.write("    interval: 900\n")


def write_opml(path: Path, count: int) -> None:
    """Feeds in two levels of folders (20 x 10), every tenth one at the outer level."""
    per_inner = max(1, count // 200)
    with path.open("w", encoding="utf-8") as out:
        out.write('<?xml version="1.0" encoding="utf-8"?>\n<opml version="2.0"><head>')
        out.write("<title>bench</title></head><body>\n")
        i = 0
        for outer in range(20):
            out.write(f'<outline text="Region {outer}">\n')
            for inner in range(10):
                out.write(f'  <outline text="Desk {inner}">\n')
                for _ in range(per_inner):
                    if i < count:
                        out.write(_opml_feed(i))
                        i += 1
                out.write("  </outline>\n")
            out.write("</outline>\n")
        while i < count:
            out.write(_opml_feed(i))
            i += 1
        out.write("</body></opml>\n")


def _opml_feed(i: int) -> str:
    return f'    <outline type="rss" text="خبرگزاری نمونه {i}" xmlUrl="{feed_url(i)}"/>\n'


def feedpipe_command() -> list[str]:
    script = Path(sys.executable).with_name("feedpipe")
    return [str(script)] if script.exists() else [sys.executable, "-m", "workers.cli"]


# `feedpipe feeds import FILE` of an older registry module (argv: module file, feeds file).
BASELINE_DRIVER = """
import asyncio, importlib.util, os, sys, time
import workers.cli  # the same start-up imports as the command
from pathlib import Path
from redis.asyncio import Redis
from pipeline.keys import Keys
spec = importlib.util.spec_from_file_location("baseline_registry", sys.argv[1])
old = importlib.util.module_from_spec(spec)
spec.loader.exec_module(old)
specs = old.load_feeds_file(Path(sys.argv[2]))
async def write():
    client = Redis.from_url(os.environ["FEEDPIPE_REDIS_URL"])
    try:
        return await old.add_feeds(client, Keys(), specs, time.time())
    finally:
        await client.aclose()
added = asyncio.run(write())
print(f"{len(specs)} feed(s) in {sys.argv[2]}: {added} new, {len(specs) - added} updated")
"""


def baseline_command(commit: str, directory: Path) -> list[str]:
    source = subprocess.run(
        ["git", "show", f"{commit}:pipeline/registry.py"],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    module = directory / "baseline_registry.py"
    module.write_text(source)
    return [sys.executable, "-c", BASELINE_DRIVER, str(module)]


def timed_import(path: Path, redis_url: str, command: list[str] | None = None) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDPIPE_")}
    env["FEEDPIPE_REDIS_URL"] = redis_url
    start = time.perf_counter()
    proc = subprocess.Popen(
        [*command, str(path)] if command else [*feedpipe_command(), "feeds", "import", str(path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = proc.stdout.read(), proc.stderr.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"feedpipe feeds import {path} failed: {err.strip()}")
    with redis.Redis.from_url(redis_url) as client:
        in_redis = int(client.zcard(KEYS.feeds_due))
    return {
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # Linux: KiB
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
        "summary": out.strip().splitlines()[-1] if out.strip() else "",
        "feeds_in_redis": in_redis,
    }


def parse_memory(path: Path) -> dict[str, Any]:
    tracemalloc.start()
    start = time.perf_counter()
    specs = load_feeds_file(path)
    seconds = time.perf_counter() - start
    held, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "specs": len(specs),
        "parse_seconds_traced": round(seconds, 2),  # slower than untraced
        "specs_held_mb": round(held / 2**20, 1),
        "parse_peak_mb": round(peak / 2**20, 1),
    }


def time_count_new(redis_url: str) -> dict[str, Any]:
    """`feedpipe status`'s count of never-polled feeds (pipeline.monitor.count_new_feeds)
    over the feeds just imported: client wall time, and Redis' own time in its scripts."""

    async def count() -> dict[str, Any]:
        client = AsyncRedis.from_url(redis_url)
        try:
            await client.config_resetstat()
            start = time.perf_counter()
            new = await count_new_feeds(client, KEYS)
            seconds = time.perf_counter() - start
            stats = await client.info("commandstats")
        finally:
            await client.aclose()
        evals = stats.get("cmdstat_eval", {})
        return {
            "new": new,
            "seconds": round(seconds, 3),
            "redis_busy_seconds": round(evals.get("usec", 0) / 1e6, 3),
            "mean_script_ms": round(evals.get("usec_per_call", 0) / 1000, 2),
        }

    return asyncio.run(count())


def flush(redis_url: str) -> None:
    with redis.Redis.from_url(redis_url) as client:
        client.flushdb()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--feeds", type=int, default=100_000)
    parser.add_argument("--formats", default="yaml,opml")
    parser.add_argument("--label", default="current", help="key of this run in the report")
    parser.add_argument("--report", type=Path, default=REPORT)
    parser.add_argument("--no-parse-memory", action="store_true", help="skip tracemalloc step")
    parser.add_argument("--baseline", metavar="COMMIT", help="also run the import of COMMIT")
    args = parser.parse_args()

    runs: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="feedpipe-import-bench-") as tmp:
        root = Path(tmp)
        baseline = baseline_command(args.baseline, root) if args.baseline else None
        store = EmbeddedRedis(root / "redis", persistent=False)
        store.start()
        try:
            for fmt in args.formats.split(","):
                path = root / f"feeds.{fmt}"
                (write_yaml if fmt == "yaml" else write_opml)(path, args.feeds)
                run: dict[str, Any] = {"file_mb": round(path.stat().st_size / 2**20, 1)}
                if baseline:
                    flush(store.url)
                    run["baseline"] = {"commit": args.baseline}
                    run["baseline"]["first"] = timed_import(path, store.url, baseline)
                    print(fmt, "baseline first", run["baseline"]["first"], flush=True)
                    run["baseline"]["again"] = timed_import(path, store.url, baseline)
                    print(fmt, "baseline again", run["baseline"]["again"], flush=True)
                flush(store.url)
                run["first"] = timed_import(path, store.url)
                print(fmt, "first", run["first"], flush=True)
                run["again"] = timed_import(path, store.url)
                print(fmt, "again", run["again"], flush=True)
                run["count_new_feeds"] = time_count_new(store.url)
                print(fmt, "count_new_feeds", run["count_new_feeds"], flush=True)
                if not args.no_parse_memory:
                    run["load_feeds_file"] = parse_memory(path)
                    print(fmt, "load_feeds_file", run["load_feeds_file"], flush=True)
                runs[fmt] = run
        finally:
            store.stop()
            shutil.rmtree(root / "redis", ignore_errors=True)

    earlier: dict[str, Any] = {}
    if args.report.exists():
        try:
            earlier = json.loads(args.report.read_text()).get("runs", {})
        except ValueError:
            earlier = {}
    earlier[args.label] = {"feeds": args.feeds, "formats": runs}
    write_report(
        args.report,
        {
            "what": "feedpipe feeds import of generated feeds files, subprocess, private Redis",
            "issue_figures": {"feeds": 92_000, "format": "yaml", "seconds": 55, "peak_rss_mb": 770},
            "runs": earlier,
        },
    )


if __name__ == "__main__":
    main()
