"""What Celery costs per task in feedpipe's configuration, A/B in one run (issue 21, part 1).

    .venv/bin/python -m bench.task_overhead_bench    # ~5 min: 3 rounds x (3 + 2) ways x 4,000 tasks

The extract worker's main process (prefork, 2 pool processes, late acks, prefetch 1, a pool
process replaced every ``EXTRACT_TASKS_PER_CHILD`` tasks, as `feedpipe run` starts it: 200
before 2026-12-04, 1,000 since) receives each task, hands it to a pool process, acks it and
sends its task events for Flower. This runs that worker over a backlog of tasks
that each burn ~1 ms of CPU (``bench/task_overhead_app.py``), three ways in alternating rounds:

- ``celery``: Celery's own consumer, which flushes buffered task events on every loop turn;
- ``batched``: feedpipe's (workers/consumer.py), flushing them every 0.1 s;
- ``off``: no task events at all (what Flower could not show).

Per task: the main process's CPU (its own, not its pool's), the pool processes' CPU (live and
recycled), and the wall time of the backlog. These run at log level WARNING, as the other
benchmarks do; then the batched worker at INFO (feedpipe's default; the task logs a line as the
extract stage does), with Celery's per-task lines ("Task ... received", "... succeeded in") as
before and without them, as workers/celery_config.py now sets its loggers. Then the producer's
side (the fetch worker sending an extract task), ``apply_async`` CPU per send with and without
the ``task-sent`` event.
Everything against a private redis-server.

Last, what a pool process pays for its first article (once per process: the extract worker
replaces them every ``EXTRACT_TASKS_PER_CHILD`` tasks): a parent process that has imported the
extract stage as the worker's main process does forks pool processes, each of which times the CPU of extracting one
page and detecting its language, twice; ``cold``: the parent did nothing more; ``warm``: it
called ``extract_stage.warm_up`` first, as the extract worker now does (workers/app.py).
Writes ``bench/reports/task_overhead.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import redis

from bench.harness import CLOCK_TICKS, process_tree, ratio, write_report
from workers.embedded_redis import EmbeddedRedis
from workers.supervisor import EXTRACT_TASKS_PER_CHILD

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "reports" / "task_overhead.json"
WAYS = ("celery", "batched", "off")
# At INFO (feedpipe's default), the batched worker with Celery's per-task log lines ("Task ...
# received", "... succeeded in"), as before, and without them (workers/celery_config.py).
LOG_WAYS = {"info_with_celery_lines": True, "info_feedpipe_lines_only": False}
WARMUP = 200  # tasks done before the measurement starts
JOB = {"item_id": "0" * 16, "url": "https://news.example/2026/12/03/" + "a" * 60}


def own_cpu(pid: int) -> tuple[float, float]:
    """(the process's own CPU, its reaped children's) in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
    return (utime + stime) / CLOCK_TICKS, (cutime + cstime) / CLOCK_TICKS


def pool_cpu(main: int) -> float:
    """CPU of a worker's pool processes: the live ones and those recycled (reaped by ``main``).
    One that exits between the listing and the read is missed until it is reaped."""
    total = own_cpu(main)[1]
    for pid in process_tree(main)[1:]:
        with contextlib.suppress(OSError):
            total += own_cpu(pid)[0]
    return total


def worker_round(
    url: str, way: str, tasks: int, level: str = "", celery_lines: bool = False
) -> dict[str, float]:
    os.environ["FEEDPIPE_REDIS_URL"] = url
    from bench.task_overhead_app import QUEUE, spin  # noqa: PLC0415 (the URL is read at import)

    client = redis.Redis.from_url(url)
    client.flushall()
    for n in range(tasks):
        spin.apply_async((JOB,), task_id=f"{way}-{n}")
    # As the other benchmarks run workers: WARNING, a log line per task would be part of the
    # cost (measured apart: LOG_WAYS).
    level = level or os.environ.get("BENCH_LOG_LEVEL", "WARNING")
    env = os.environ | {
        "BENCH_EVENTS": way,
        "FEEDPIPE_LOG_LEVEL": level,
        "BENCH_CELERY_LINES": "on" if celery_lines else "off",
    }
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "bench.task_overhead_app",
        "worker",
        "-Q",
        QUEUE,
        "-c",
        "2",
        "--prefetch-multiplier=1",
        f"--max-tasks-per-child={EXTRACT_TASKS_PER_CHILD}",
        "-l",
        level,
        "--without-gossip",
        "--without-mingle",
    ]
    command += [] if way == "off" else ["-E"]
    log = Path(tempfile.gettempdir()) / f"task_overhead_{way}.log"  # as `feedpipe run` keeps logs
    with log.open("wb") as sink:
        worker = subprocess.Popen(command, cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT)
    start: tuple[float, float, float, int] | None = None  # wall, main, pool CPU, tasks done
    while client.llen(QUEUE) or client.hlen("unacked"):
        done = tasks - client.llen(QUEUE) - client.hlen("unacked")
        if start is None and done >= WARMUP:  # the worker's start-up (imports) is not per task
            start = (time.monotonic(), own_cpu(worker.pid)[0], pool_cpu(worker.pid), done)
        time.sleep(0.05)
    assert start is not None
    wall_end, main_end, pool_end = time.monotonic(), own_cpu(worker.pid)[0], pool_cpu(worker.pid)
    measured = tasks - start[3]
    worker.terminate()
    worker.wait(60)
    client.close()
    return {
        "main_ms": round(1000 * (main_end - start[1]) / measured, 3),
        "pool_ms": round(1000 * (pool_end - start[2]) / measured, 3),
        "wall_ms": round(1000 * (wall_end - start[0]) / measured, 3),
    }


def send_round(sent_event: bool, sends: int) -> float:
    from bench.task_overhead_app import app, spin  # noqa: PLC0415

    app.conf.task_send_sent_event = sent_event
    started = time.process_time()
    for n in range(sends):
        spin.apply_async((JOB,), task_id=f"send-{sent_event}-{n}")
    return round(1000 * (time.process_time() - started) / sends, 3)


def farm_page(folder: Path) -> Path:
    """One farm news page (50-200 KB), written to a file: the probe's parent must not hold the
    farm's texts (a worker's main process does not), or its children's collections would walk
    them."""
    from bench.feedfarm import Farm, FarmConfig, load_stories, shared_dir  # noqa: PLC0415

    farm = Farm(FarmConfig(feeds=1, entries=1, hosts=1), load_stories(shared_dir()))
    farm.ports.append(8)  # pages name their own URL; nothing is served
    path = folder / "page.html"
    path.write_text(farm.page_html(0, 0), encoding="utf-8")
    return path


def first_articles(page: Path, warm: bool, children: int) -> list[dict[str, float]]:
    """In a fresh interpreter (a parent in the state the worker's main process is in), fork
    ``children`` processes one after another; each returns the CPU ms of its first and second
    article."""
    way = "warm" if warm else "cold"
    command = [sys.executable, "-m", "bench.task_overhead_bench", "--probe", way, str(page)]
    out = subprocess.run(
        [*command, "--children", str(children)], cwd=ROOT, check=True, capture_output=True
    )
    result: list[dict[str, float]] = json.loads(out.stdout)
    return result


def probe(page_file: Path, warm: bool, children: int) -> None:
    """The parent of ``first_articles``: prints a JSON list, one entry per child."""
    from pipeline import extract_stage  # noqa: PLC0415
    from pipeline.article_text import ExtractionPolicy, extract_article  # noqa: PLC0415
    from pipeline.language import LanguagePolicy, detect_language  # noqa: PLC0415
    from pipeline.models import Entry  # noqa: PLC0415

    extraction, language = ExtractionPolicy.create(200), LanguagePolicy()
    if warm:
        extract_stage.warm_up(extraction, language)
    page = page_file.read_bytes()
    entry = Entry(identity="probe", title="probe")

    def one_article() -> float:
        started = time.process_time()
        article = extract_article(page, "utf-8", entry, extraction)
        detect_language(article.title, article.text, None, language)
        return round(1000 * (time.process_time() - started), 2)

    results = []
    for _ in range(children):
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the pool process
            os.close(read)
            os.write(write, json.dumps([one_article(), one_article()]).encode())
            os._exit(0)
        os.close(write)
        with os.fdopen(read) as pipe:
            first, second = json.loads(pipe.read())
        os.waitpid(pid, 0)
        results.append({"first_ms": first, "second_ms": second})
    print(json.dumps(results))


def worker_ways(ways: dict[str, Callable[[], dict[str, float]]], rounds: int) -> dict[str, Any]:
    """Each way's worker round, ``rounds`` times in alternation; medians per task, and rounds."""
    runs: dict[str, list[dict[str, float]]] = {way: [] for way in ways}
    for k in range(rounds):
        for way, run in ways.items():
            runs[way].append(run())
            print(f"round {k + 1} {way:8} {runs[way][-1]}", flush=True)
    return {
        way: {key: median_of(runs[way], key) for key in ("main_ms", "pool_ms", "wall_ms")}
        | {"rounds": runs[way]}
        for way in ways
    }


def print_summary(report: dict[str, Any]) -> None:
    for ways in (report["worker_per_task"], report["worker_per_task_at_info"]):
        for way, figures in ways.items():
            print(
                f"{way:8} main {figures['main_ms']} ms/task, pool {figures['pool_ms']}, "
                f"wall {figures['wall_ms']}"
            )
    sends = report["send_cpu_ms"]
    print(
        f"send: {sends['with_task_sent']} ms with task-sent, {sends['without_task_sent']} without"
    )
    for way, first in report["pool_process_first_article_cpu_ms"].items():
        print(
            f"pool process forked {way}: first article {first['first']} ms, second {first['second']}"
        )


def median_of(rounds: list[dict[str, float]], key: str) -> float:
    return round(statistics.median(r[key] for r in rounds), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--children", type=int, default=10)
    parser.add_argument("--probe", nargs=2, help=argparse.SUPPRESS)  # way, page file
    args = parser.parse_args()
    if args.probe:
        way, page = args.probe
        probe(Path(page), way == "warm", args.children)
        return
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedRedis(Path(tmp) / "redis", persistent=False)
        server.start()
        try:
            worker = worker_ways(
                {way: partial(worker_round, server.url, way, args.tasks) for way in WAYS},
                args.rounds,
            )
            at_info = worker_ways(
                {
                    way: partial(worker_round, server.url, "batched", args.tasks, "INFO", lines)
                    for way, lines in LOG_WAYS.items()
                },
                args.rounds,
            )
            sends: dict[bool, list[float]] = {True: [], False: []}
            for _ in range(args.rounds):
                for sent_event in (True, False):
                    sends[sent_event].append(send_round(sent_event, args.tasks))
                redis.Redis.from_url(server.url).flushall()
        finally:
            server.stop()
    starts: dict[str, list[dict[str, float]]] = {"cold": [], "warm": []}
    with tempfile.TemporaryDirectory() as tmp:
        page = farm_page(Path(tmp))
        for _ in range(args.rounds):
            for way in starts:
                starts[way] += first_articles(page, way == "warm", args.children)
    base = worker["celery"]["main_ms"]
    report = {
        "tasks_per_round": args.tasks,
        "worker_per_task": worker,
        "main_process_ratio_to_celery": {w: ratio(worker[w]["main_ms"], base) for w in WAYS},
        "events_cost_ms": {
            w: round(worker[w]["main_ms"] - worker["off"]["main_ms"], 3)
            for w in ("celery", "batched")
        },
        "worker_per_task_at_info": at_info,
        "celery_lines_cost_ms": {
            key: round(
                at_info["info_with_celery_lines"][key] - at_info["info_feedpipe_lines_only"][key], 3
            )
            for key in ("main_ms", "pool_ms")
        },
        "send_cpu_ms": {
            "with_task_sent": round(statistics.median(sends[True]), 3),
            "without_task_sent": round(statistics.median(sends[False]), 3),
            "rounds": {"with_task_sent": sends[True], "without_task_sent": sends[False]},
        },
        "pool_process_first_article_cpu_ms": {
            way: {
                "first": round(statistics.median(c["first_ms"] for c in starts[way]), 2),
                "second": round(statistics.median(c["second_ms"] for c in starts[way]), 2),
                "children": starts[way],
            }
            for way in starts
        },
    }
    print_summary(report)
    write_report(OUT, report)


if __name__ == "__main__":
    main()
