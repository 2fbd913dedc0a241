"""The extract stage's own cost per article, beyond trafilatura, in one process (issue 21, part 1).

    .venv/bin/python -m bench.extract_stage_bench    # ~1 min: 400 farm pages, 3 rounds each way

An extract pool process runs, per article, ``begin_attempt`` (the attempt counted and the stored
page read: one round trip) and ``ingest_article`` (the page inflated, trafilatura, the language,
the item built, the fingerprint and slot record, the publish script, the bookkeeping). This runs
exactly those, in this process, against a private redis-server, over farm pages stored as the
fetch worker stores them (gzip as sent); and, in alternating rounds over the same pages,
trafilatura alone with the pipeline's options (the work of ``bench.ingest_bench``'s raw limit).
The difference is what the stage costs beyond extraction, without Celery's per-task work
(``bench.task_overhead_bench``) and without an end-to-end run's noise. Also the redis-server's
CPU per article, and the parts: language detection, fingerprint and slot record, timed apart
over the same texts. Each round starts from an empty Redis (the farm's copies are found as
copies, ~20 %). Writes ``bench/reports/extract_stage.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import logging
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import trafilatura
from redis.asyncio import Redis

from bench.feedfarm import Farm, FarmConfig, load_stories, shared_dir
from bench.harness import KEYS, cpu_seconds, write_report
from pipeline import page_store
from pipeline.align import align_record
from pipeline.dedupe import DedupePolicy, fingerprint
from pipeline.extract_stage import ExtractContext, begin_attempt, ingest_article
from pipeline.language import LanguagePolicy, detect_language
from pipeline.models import Entry, ExtractJob, FeedRef, Published
from pipeline.normalize import normalize_for_matching, short_hash
from pipeline.settings import Settings
from workers.embedded_redis import EmbeddedRedis
from workers.runtime import extract_context

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "reports" / "extract_stage.json"


def farm_articles(pages: int) -> list[tuple[ExtractJob, str, bytes]]:
    """(job, page HTML, blob as stored) for the first ``pages`` pages of a 20-entry farm."""
    farm = Farm(FarmConfig(feeds=max(1, pages // 20), entries=20), load_stories(shared_dir()))
    farm.ports = list(range(20_000, 20_000 + farm.config.hosts))  # URLs only; nothing served
    articles = []
    for n, k in farm.entries_until(farm.started)[:pages]:
        url = farm.page_url(n, k)
        html = farm.page_html(n, k)
        item_id = short_hash(url)
        feed = FeedRef(id=f"feed-{n}", url=farm.feed_url(n), title=None)
        entry = Entry(identity=f"url:{url}", title=farm.story(n, k).title, url=url)
        job = ExtractJob(item_id, feed, entry, fetched_at="-", html_key=KEYS.html(item_id))
        blob = page_store.encode(gzip.compress(html.encode()), "gzip", feed_url="", url=url)
        articles.append((job, html, blob))
    return articles


async def stage_round(
    ctx: ExtractContext, articles: list[tuple[ExtractJob, str, bytes]], redis_pid: int
) -> dict[str, float]:
    """CPU of this process and of redis-server per article, through the stage's two calls."""
    await ctx.redis.flushall()
    async with ctx.redis.pipeline(transaction=False) as pipe:
        for job, _, blob in articles:
            pipe.set(job.html_key or "", blob)
        await pipe.execute()
    published = 0
    redis_start, start = cpu_seconds(redis_pid), time.process_time()
    for job, _, _ in articles:
        attempt = await begin_attempt(ctx, job)
        published += isinstance(await ingest_article(ctx, job, attempt), Published)
    own, server = time.process_time() - start, cpu_seconds(redis_pid) - redis_start
    return {
        "stage_ms": 1000 * own / len(articles),
        "redis_ms": 1000 * server / len(articles),
        "published": published,
    }


def raw_round(articles: list[tuple[ExtractJob, str, bytes]], options: Any) -> float:
    start = time.process_time()
    for _, html, _ in articles:
        trafilatura.bare_extraction(html, options=options)
    return 1000 * (time.process_time() - start) / len(articles)


def parts(texts: list[tuple[str, str]]) -> dict[str, float]:
    """Language detection, and fingerprint with slot record, per article (ms of CPU)."""
    language, near = LanguagePolicy(), DedupePolicy()
    start = time.process_time()
    for title, text in texts:
        detect_language(title, text, None, language)
    language_ms = 1000 * (time.process_time() - start) / len(texts)
    start = time.process_time()
    for title, text in texts:
        normalized = normalize_for_matching(text)
        if fingerprint(text, near, normalized=normalized):
            align_record(text, title, normalized=normalized)
    return {
        "language_ms": round(language_ms, 3),
        "fingerprint_and_slot_record_ms": round(
            1000 * (time.process_time() - start) / len(texts), 3
        ),
    }


async def measure(pages: int, rounds: int) -> dict[str, Any]:
    articles = farm_articles(pages)
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedRedis(Path(tmp) / "redis", persistent=False)
        server.start()
        assert server.process is not None
        client = Redis.from_url(server.url)
        ctx = extract_context(Settings(redis_url=server.url), KEYS, client)
        try:
            await stage_round(ctx, articles[:20], server.process.pid)  # imports, the model
            raw_round(articles[:20], ctx.extraction.options)
            stage, raw = [], []
            for k in range(rounds):
                raw.append(raw_round(articles, ctx.extraction.options))
                stage.append(await stage_round(ctx, articles, server.process.pid))
                print(f"round {k + 1}: raw {raw[-1]:.3f} ms, stage {stage[-1]}", flush=True)
            texts = []
            for _, html, _ in articles:
                document = trafilatura.bare_extraction(html, options=ctx.extraction.options)
                texts.append((document.title or "", document.text or "") if document else ("", ""))
        finally:
            await client.aclose()
            server.stop()
    raw_ms = statistics.median(raw)
    stage_ms = statistics.median(r["stage_ms"] for r in stage)
    return {
        "pages": len(articles),
        "rounds": rounds,
        "raw_trafilatura_ms": round(raw_ms, 3),
        "stage_ms": round(stage_ms, 3),
        "beyond_trafilatura_ms": round(stage_ms - raw_ms, 3),
        "redis_server_ms": round(statistics.median(r["redis_ms"] for r in stage), 3),
        "published_per_round": stage[-1]["published"],
        "parts": parts(texts),
        "rounds_detail": {"raw_ms": raw, "stage": stage},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)  # as the benchmarks run the workers
    report = asyncio.run(measure(args.pages, args.rounds))
    print(
        f"per article: trafilatura alone {report['raw_trafilatura_ms']} ms, the stage "
        f"{report['stage_ms']} ms, beyond trafilatura {report['beyond_trafilatura_ms']} ms "
        f"(parts: {report['parts']}), redis-server {report['redis_server_ms']} ms"
    )
    write_report(OUT, report)


if __name__ == "__main__":
    main()
