"""The extract worker over a backlog of real articles, A/B in one run (issue 21).

    .venv/bin/python -m bench.extract_worker_bench    # ~6 min: 2 rounds x 4 ways x 2,000 articles

The extract worker as `feedpipe run` starts it (workers/supervisor.py: prefork, 2 pool
processes, late acks, prefetch 1, a pool process replaced every 1,000 tasks, task events),
against a private redis-server, over a backlog of extract tasks for farm pages stored as the
fetch worker stores them (gzip as sent; ~20 % of them copies of another). Four ways, in
alternating rounds:

- ``recycle_200``: pool processes replaced every 200 tasks, as before 2026-12-04;
- ``now``: that command;
- ``prefetch_4``: ``--prefetch-multiplier=4``, four messages per pool process held by the main
  process, so that a pool process that finishes an article need not wait for the next message
  to come from Redis;
- ``recycle_200_reaping_pool``: every 200 tasks, with a prefork pool that reaps and replaces a
  recycled pool process at once (bench/reaping_pool.py), where Celery's may leave it unreaped
  for up to 5 s.

Each round starts from a Redis holding nothing of feedpipe's; its first 100 articles are the
worker's start-up and are not counted. Per article: wall time (the backlog's rate), the main
process's and the pool processes' CPU; and, sampled every 5 ms, the share of time with both pool
processes running and with a pool process exited but not yet reaped. Writes
``bench/reports/extract_worker.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import msgspec
import redis

from bench.extract_stage_bench import farm_articles
from bench.harness import pipeline_env, process_tree, ratio, write_report
from bench.task_overhead_bench import own_cpu, pool_cpu
from pipeline.keys import PREFIX
from pipeline.models import ExtractJob
from pipeline.settings import Settings
from workers.celery_config import EXTRACT_TASK_ID_PREFIX, QUEUE_EXTRACT, TASK_EXTRACT, create_app
from workers.embedded_redis import EmbeddedRedis
from workers.supervisor import celery_commands

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "reports" / "extract_worker.json"
REAPING_POOL = {"CELERY_CUSTOM_WORKER_POOL": "bench.reaping_pool:ReapingTaskPool"}
WAYS: dict[str, tuple[dict[str, str], list[str], dict[str, str]]] = {
    # options changed, options added, environment
    "recycle_200": ({"--max-tasks-per-child": "200"}, [], {}),
    "now": ({}, [], {}),
    "prefetch_4": ({"--prefetch-multiplier": "4"}, [], {}),
    "recycle_200_reaping_pool": ({"--max-tasks-per-child": "200"}, ["-P", "custom"], REAPING_POOL),
}
WARMUP = 100


def extract_command(settings: Settings, way: str) -> list[str]:
    """`feedpipe run`'s extract worker command, changed as ``way`` says."""
    changed, added, _ = WAYS[way]
    command = []
    for arg in celery_commands(settings, "bench")["extract"]:
        name = arg.split("=")[0]
        command.append(f"{name}={changed[name]}" if name in changed else arg)
    return command + added


def queue_backlog(url: str, jobs: list[tuple[ExtractJob, bytes]], round_number: int) -> None:
    client = redis.Redis.from_url(url)
    for key in client.scan_iter(f"{PREFIX}:*"):  # the broker's own keys stay
        client.delete(key)
    with client.pipeline(transaction=False) as pipe:
        for job, blob in jobs:
            pipe.set(job.html_key or "", blob)
        pipe.execute()
    producer = create_app(Settings(redis_url=url))
    for job, _ in jobs:
        producer.send_task(
            TASK_EXTRACT,
            args=[msgspec.to_builtins(job)],
            task_id=f"{EXTRACT_TASK_ID_PREFIX}{job.item_id}-{round_number}",
        )
    producer.close()
    client.close()


class BothRunning(threading.Thread):
    """Samples, every 5 ms, how many of the worker's pool processes are running on a core."""

    def __init__(self, main_pid: int) -> None:
        super().__init__(daemon=True)
        self.main_pid, self.samples, self.both, self.zombie = main_pid, 0, 0, 0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.005):
            states = []
            for pid in process_tree(self.main_pid)[1:]:
                with contextlib.suppress(OSError):
                    stat = Path(f"/proc/{pid}/stat").read_text()
                    states.append(stat.rsplit(")", 1)[1].split()[0])
            self.samples += 1
            self.both += states.count("R") >= 2
            self.zombie += "Z" in states


def worker_round(url: str, data_dir: Path, way: str, articles: int) -> dict[str, float]:
    settings = Settings(redis_url=url, data_dir=data_dir)
    env = pipeline_env(url, data_dir, WAYS[way][2])
    client = redis.Redis.from_url(url)
    log = data_dir / f"extract-{way}.log"
    with log.open("wb") as sink:
        worker = subprocess.Popen(
            extract_command(settings, way), cwd=ROOT, env=env, stdout=sink, stderr=sink
        )
    start: tuple[float, float, float, int] | None = None  # wall, main, pool CPU, articles done
    sampler = BothRunning(worker.pid)
    try:
        while client.llen(QUEUE_EXTRACT) or client.hlen("unacked"):
            done = articles - client.llen(QUEUE_EXTRACT) - client.hlen("unacked")
            if start is None and done >= WARMUP:
                start = (time.monotonic(), own_cpu(worker.pid)[0], pool_cpu(worker.pid), done)
                sampler.start()
            time.sleep(0.02)
        assert start is not None, log.read_text()[-2000:]
        wall, main, pool = time.monotonic(), own_cpu(worker.pid)[0], pool_cpu(worker.pid)
    finally:
        sampler.stopped.set()
        worker.terminate()
        worker.wait(60)
        client.close()
    measured = articles - start[3]
    return {
        "articles_per_s": round(measured / (wall - start[0]), 1),
        "wall_ms": round(1000 * (wall - start[0]) / measured, 3),
        "main_ms": round(1000 * (main - start[1]) / measured, 3),
        "pool_ms": round(1000 * (pool - start[2]) / measured, 3),
        "both_pool_processes_running": round(sampler.both / max(1, sampler.samples), 3),
        "a_pool_process_exited_not_reaped": round(sampler.zombie / max(1, sampler.samples), 3),
    }


def measure(articles: int, rounds: int) -> dict[str, Any]:
    jobs = [(job, blob) for job, _, blob in farm_articles(articles)]
    runs: dict[str, list[dict[str, float]]] = {way: [] for way in WAYS}
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedRedis(Path(tmp) / "redis", persistent=False)
        server.start()
        try:
            for k in range(rounds):
                for way in WAYS:
                    queue_backlog(server.url, jobs, k)
                    runs[way].append(worker_round(server.url, Path(tmp), way, len(jobs)))
                    print(f"round {k + 1} {way}: {runs[way][-1]}", flush=True)
        finally:
            server.stop()
    medians = {
        way: {key: statistics.median(r[key] for r in runs[way]) for key in runs[way][0]}
        for way in WAYS
    }
    base = medians["recycle_200"]["articles_per_s"]
    return {
        "articles_per_round": len(jobs),
        "rounds": rounds,
        "ways": {way: medians[way] | {"rounds": runs[way]} for way in WAYS},
        "rate_ratio_to_recycle_200": {
            way: ratio(medians[way]["articles_per_s"], base) for way in WAYS
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--articles", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    report = measure(args.articles, args.rounds)
    for way, figures in report["ways"].items():
        print(
            f"{way}: {figures['articles_per_s']} articles/s, "
            f"main {figures['main_ms']} ms, pool {figures['pool_ms']} ms, both pool processes "
            f"running {figures['both_pool_processes_running']:.0%}, one exited and not reaped "
            f"{figures['a_pool_process_exited_not_reaped']:.0%}"
        )
    write_report(OUT, report)
    print(f"report: {OUT}")


if __name__ == "__main__":
    main()
