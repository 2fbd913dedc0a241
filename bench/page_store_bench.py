"""A/B of how an article page is stored for its extract task, in one run (issue 21, part 1).

    .venv/bin/python -m bench.page_store_bench      # ~1 min: 400 farm pages x 3 rounds each way

"inflate + zlib" is what the fetch worker did until 2026-12-03: aiohttp inflates the gzipped page,
the worker compresses it again with zlib (level 1) for Redis, and the extract child inflates that.
"as sent" is what it does now (pipeline/page_store.py): the body is kept as the server sent it,
behind a one-byte tag, and inflated once in the extract child, capped at the page size limit.
Both fetch the same farm pages (bench/feedfarm.py: news pages of 50-200 KB, served gzipped) with
the real ``Fetcher`` from a loopback server, in alternating rounds. The fetch side's cost is the
CPU time of the client's thread (the farm runs in another thread of this process), from the
request to the blob; the extract side's is the decode of every blob. Also the blob sizes (Redis
memory for a page waiting to be extracted). Writes ``bench/reports/page_store.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import zlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench.feedfarm import Farm, FarmConfig, FarmServer, load_stories, shared_dir
from bench.harness import ratio, write_report
from pipeline import page_store
from pipeline.fetch import Fetcher, FetchLimits, new_session
from pipeline.netguard import NetworkPolicy

CAP = page_store.DEFAULT_MAX_PAGE_BYTES
LIMITS = FetchLimits(10.0, 30.0, CAP)
WHERE = {"feed_url": "http://farm.invalid/feed.xml", "url": "http://farm.invalid/page"}


async def inflate_then_zlib(fetcher: Fetcher, url: str) -> bytes:
    page = await fetcher.fetch_page(url, feed_url=url, limits=LIMITS, deadline=_deadline())
    return zlib.compress(page.body, 1)


async def as_sent(fetcher: Fetcher, url: str) -> bytes:
    page = await fetcher.fetch_page(
        url, feed_url=url, limits=LIMITS, deadline=_deadline(), encoded=True
    )
    return page_store.encode(page.body, page.content_encoding, **WHERE)


def _deadline() -> float:
    return time.monotonic() + 60


Store = Callable[[Fetcher, str], Awaitable[bytes]]
Decode = Callable[[bytes], bytes]
WAYS: dict[str, tuple[Store, Decode]] = {
    "inflate + zlib": (inflate_then_zlib, zlib.decompress),
    "as sent": (as_sent, lambda blob: page_store.decode(blob, CAP, **WHERE)),
}


async def one_round(fetcher: Fetcher, urls: list[str], store: Store) -> tuple[float, list[bytes]]:
    """CPU seconds of this thread to fetch and store every page (8 in flight), and the blobs."""
    gate = asyncio.Semaphore(8)

    async def fetch(url: str) -> bytes:
        async with gate:
            return await store(fetcher, url)

    start = time.thread_time()
    blobs = await asyncio.gather(*(fetch(url) for url in urls))
    return time.thread_time() - start, list(blobs)


def decode_seconds(blobs: list[bytes], decode: Decode) -> float:
    start = time.thread_time()
    for blob in blobs:
        decode(blob)
    return time.thread_time() - start


async def measure(urls: list[str], rounds: int) -> dict[str, Any]:
    fetch_ms: dict[str, list[float]] = {way: [] for way in WAYS}
    decode_ms: dict[str, list[float]] = {way: [] for way in WAYS}
    sizes: dict[str, float] = {}
    async with new_session("feedpipe-bench", NetworkPolicy(allow_private=True)) as session:
        fetcher = Fetcher(
            session, NetworkPolicy(allow_private=True), None, 5, asyncio.Semaphore(100)
        )
        await one_round(fetcher, urls[:20], as_sent)  # warm-up: connections, caches
        for r in range(rounds):
            order = list(WAYS) if r % 2 == 0 else list(reversed(WAYS))
            for way in order:
                store, decode = WAYS[way]
                seconds, blobs = await one_round(fetcher, urls, store)
                fetch_ms[way].append(seconds * 1000 / len(urls))
                decode_ms[way].append(decode_seconds(blobs, decode) * 1000 / len(urls))
                sizes[way] = statistics.mean(len(blob) for blob in blobs)
    return {
        way: {
            "fetch_cpu_ms_per_page": round(statistics.median(fetch_ms[way]), 3),
            "fetch_cpu_ms_rounds": [round(v, 3) for v in fetch_ms[way]],
            "decode_cpu_ms_per_page": round(statistics.median(decode_ms[way]), 3),
            "blob_bytes_mean": round(sizes[way]),
        }
        for way in WAYS
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("bench/reports/page_store.json"))
    args = parser.parse_args(argv)
    shared = shared_dir()
    feeds = max(1, args.pages // 20)
    farm = Farm(FarmConfig(feeds=feeds, entries=20, hosts=4), load_stories(shared))
    with FarmServer(farm):
        urls = [farm.page_url(n, k) for n in range(feeds) for k in range(20)][: args.pages]
        ways = asyncio.run(measure(urls, args.rounds))
    before, after = ways["inflate + zlib"], ways["as sent"]
    saved = {
        "fetch_cpu_ms_per_page": round(
            before["fetch_cpu_ms_per_page"] - after["fetch_cpu_ms_per_page"], 3
        ),
        "decode_cpu_ms_per_page": round(
            before["decode_cpu_ms_per_page"] - after["decode_cpu_ms_per_page"], 3
        ),
        "fetch_cpu_ratio_after_to_before": ratio(
            after["fetch_cpu_ms_per_page"], before["fetch_cpu_ms_per_page"]
        ),
    }
    print(f"{'way':<16}{'fetch CPU ms/page':>20}{'decode CPU ms/page':>20}{'blob bytes':>12}")
    for way, figures in ways.items():
        print(
            f"{way:<16}{figures['fetch_cpu_ms_per_page']:>20.3f}"
            f"{figures['decode_cpu_ms_per_page']:>20.3f}{figures['blob_bytes_mean']:>12,}"
        )
    print(f"saved per page: {saved}")
    corpus = "../shared corpus" if shared else "English only (../shared absent)"
    report = {"pages": len(urls), "rounds": args.rounds, "corpus": corpus, "ways": ways}
    write_report(args.out, report | {"saved": saved})


if __name__ == "__main__":
    main()
