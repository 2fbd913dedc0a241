"""The feed farm: N feeds x M entries on H loopback hosts, with news pages the size of real ones.

    .venv/bin/python -m bench.feedfarm --feeds 200 --entries 20 --hosts 50 --write-feeds farm.yaml
    FEEDPIPE_ALLOW_PRIVATE_NETWORKS=true .venv/bin/feedpipe run --feeds farm.yaml

The benchmarks (bench/*_bench.py) and tests/integration/test_feedfarm.py use it in-process.

- Feeds are RSS 2.0 and Atom 1.0 (alternately), one outlet per feed, spread over ``hosts``
  origins (one port each on 127.0.0.1): feedpipe's politeness is per host, so a farm on one
  origin would measure the politeness limit, not the pipeline.
- Stories are real texts read at run time from ``../shared/`` (the SaudiNewsNet Arabic corpus,
  the Persian fixture and its syndicated copies) plus English stories composed here; without
  ``../shared/`` the farm serves English only (and says so). 8 feeds in 10 are Arabic, one
  Persian, one English. The Persian pool is a handful of copies of one story: dedupe catches
  them, as it would on real syndicated feeds.
- Article pages put the story in a news-site template: navigation, a mega-menu, breadcrumb,
  related and most-read boxes, share buttons, comments, newsletter form, footer, inline
  scripts (ad and analytics configuration), 50-200 KB each (``page_kb``), served gzipped.
- Feeds answer ETag/Last-Modified and 304; ``latency_ms`` delays every response and
  ``error_rate`` turns that share of requests into 503s. With ``new_entry_every`` each feed
  gets a new entry on a fixed random schedule (``appeared_at`` tells when, for freshness).
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import random
import signal
import threading
import time
import zipfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any, Self

import yaml
from aiohttp import web

from workers.demo_server import LoopbackServer
from workers.demo_site import (
    CONTENT_TYPES,
    FEED_RENDERERS,
    DemoArticle,
    DemoFeed,
    FeedFormat,
    article_page_html,
    not_modified,
    read_fixture,
    summarize,
)

SHARED = Path(__file__).resolve().parents[2] / "shared"
CORPUS = Path("data", "syndication", "saudinewsnet-dev-raw")
PERSIAN_SET = Path("data", "syndication", "persian-set-a")
FIXTURE = Path("fixtures", "seed-ilna.txt")
LANGUAGE_MIX = ("ar",) * 8 + ("fa", "en")  # by feed number, modulo 10
FORMATS: tuple[FeedFormat, ...] = ("rss2", "atom")
PAST_SPACING = 900.0  # seconds between a feed's initial entries (all in the past)


@dataclass(frozen=True)
class Story:
    language: str
    title: str
    paragraphs: tuple[str, ...]


@dataclass(frozen=True)
class FarmConfig:
    feeds: int = 200
    entries: int = 20  # entries each feed starts with; a feed shows its `entries` newest
    hosts: int = 50
    latency_ms: float = 0.0
    error_rate: float = 0.0
    new_entry_every: float = 0.0  # mean seconds between a feed's new entries; 0: none
    page_kb: tuple[int, int] = (50, 200)
    seed: int = 1
    # A skewed farm: the first ``big_feeds`` feeds are spread over the first ``big_hosts``
    # hosts (an agency or a CMS provider serving many feeds), the rest over the other hosts.
    big_hosts: int = 0
    big_feeds: int = 0

    def __post_init__(self) -> None:
        if self.feeds < 1 or self.entries < 1 or self.hosts < 1:
            raise ValueError("feeds, entries and hosts must be at least 1")
        small = self.hosts - self.big_hosts
        if self.big_hosts and not (0 < self.big_feeds < self.feeds and small > 0):
            raise ValueError("a skewed farm needs big_feeds < feeds and big_hosts < hosts")

    def host_of(self, n: int) -> int:
        """The index of feed ``n``'s host (its port among the farm's)."""
        if n < self.big_feeds and self.big_hosts:
            return n % self.big_hosts
        if self.big_hosts:
            return self.big_hosts + (n - self.big_feeds) % (self.hosts - self.big_hosts)
        return n % self.hosts
        if not 0 <= self.error_rate < 1:
            raise ValueError(f"error_rate must be in [0, 1), got {self.error_rate}")


# --- stories -------------------------------------------------------------------------------


def load_stories(shared: Path | None = SHARED) -> dict[str, list[Story]]:
    """Story pools by language; Arabic and Persian only when ``shared`` holds them."""
    pools = {"en": english_stories(400)}
    if shared is not None and (shared / CORPUS).is_dir():
        pools["ar"] = _arabic_corpus(shared / CORPUS)
    if shared is not None and (shared / FIXTURE).is_file():
        files = [shared / FIXTURE, *sorted((shared / PERSIAN_SET).glob("*.txt"))]
        pools["fa"] = [_persian(path) for path in files]
    return pools


def _arabic_corpus(folder: Path) -> list[Story]:
    stories, seen = [], set()
    for archive in sorted(folder.glob("*.zip")):
        with zipfile.ZipFile(archive) as zf:
            for name in zf.namelist():
                for record in json.loads(zf.read(name)):
                    text, title = record.get("content") or "", record.get("title") or ""
                    if len(text) < 400 or not title or record.get("url") in seen:
                        continue
                    seen.add(record.get("url"))
                    stories.append(Story("ar", title.strip(), _paragraphs(text)))
    return stories


def _paragraphs(text: str) -> tuple[str, ...]:
    # The corpus keeps line breaks for some outlets only; long blobs are cut at sentence ends
    # so pages have paragraphs, as the originals did.
    out = []
    for line in text.split("\n"):
        rest = line.strip()
        while len(rest) > 700 and ". " in rest[300:]:
            cut = rest.index(". ", 300) + 1
            out.append(rest[:cut])
            rest = rest[cut:].strip()
        if rest:
            out.append(rest)
    return tuple(out)


def _persian(path: Path) -> Story:
    article = read_fixture(path)
    return Story("fa", article.title, article.paragraphs)


EN_PLACES = ("Harbourside", "Kelmont", "the northern valley", "Easton", "the river delta",
             "Marlow Bay", "the old port district", "Ridgefield", "the coastal highway", "Westmere")
EN_GROUPS = ("the regional council", "the transport authority", "a coalition of farmers",
             "the city's largest hospital", "the national weather service", "local fishermen",
             "the university's engineering school", "a group of small retailers",
             "the teachers' union", "the water utility")
EN_TOPICS = ("a new ferry timetable", "flood defences", "a bus fare freeze", "a library expansion",
             "solar panels on school roofs", "a hospital car park", "a ban on night freight",
             "a youth football league", "bridge repairs", "a tree-planting drive")
EN_SENTENCES = (
    "{group} said on {day} that work on {topic} in {place} would begin within {n} weeks.",
    "The plan, costed at {n} million, was approved after {m} hours of debate.",
    "Residents of {place} had asked for {topic} since at least {year}.",
    "\"We have waited long enough,\" said one member of {group}, who asked not to be named.",
    "Opponents argued that {topic} would cost {place} more than {n} jobs over {m} years.",
    "A survey of {m} hundred households found that most supported the change.",
    "The first phase is due to finish in {month}, weather permitting.",
    "Officials in {place} said {n} roads would close for part of the work.",
    "{group} will publish the full figures at a public meeting on {day}.",
    "Similar schemes in {place} cut waiting times by {n} percent, according to {group}.",
    "Critics said the consultation on {topic} had lasted only {m} days.",
    "The decision follows a report that found {n} faults in the existing arrangements.",
)
EN_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
EN_MONTHS = ("March", "April", "June", "September", "October", "December")


def english_stories(count: int, seed: int = 11) -> list[Story]:
    """Local-news stories composed from sentence templates (written for this farm)."""
    rng = random.Random(seed)
    stories = []
    for _ in range(count):
        slots = {
            "place": rng.choice(EN_PLACES),
            "group": rng.choice(EN_GROUPS),
            "topic": rng.choice(EN_TOPICS),
        }
        paragraphs = []
        for _ in range(rng.randint(5, 8)):
            sentences = rng.sample(EN_SENTENCES, 3)
            paragraphs.append(" ".join(_fill(s, slots, rng) for s in sentences))
        title = f"{slots['group'].capitalize()} backs {slots['topic']} in {slots['place']}"
        stories.append(Story("en", title, tuple(p[0].upper() + p[1:] for p in paragraphs)))
    return stories


def _fill(template: str, slots: dict[str, str], rng: random.Random) -> str:
    return template.format(
        **slots,
        n=rng.randint(2, 95),
        m=rng.randint(2, 40),
        year=rng.randint(2009, 2024),
        day=rng.choice(EN_DAYS),
        month=rng.choice(EN_MONTHS),
    )


# --- the farm ------------------------------------------------------------------------------


@dataclass
class Farm:
    """What every feed shows at any moment; pages and feeds rendered once and cached."""

    config: FarmConfig
    stories: dict[str, list[Story]]
    started: float = field(default_factory=time.time)
    ports: list[int] = field(default_factory=list)  # set by FarmServer
    served: Counter[str] = field(default_factory=Counter)
    feed_requests: dict[int, list[float]] = field(default_factory=dict)  # n -> request times
    # port -> monotonic start of every request it received (feeds and pages)
    host_requests: defaultdict[int, list[float]] = field(default_factory=lambda: defaultdict(list))

    def __post_init__(self) -> None:
        rng = random.Random(self.config.seed)
        self.languages = [lang for lang in LANGUAGE_MIX if lang in self.stories] or ["en"]
        every = self.config.new_entry_every
        self.period = [every * rng.uniform(0.5, 1.5) for _ in range(self.config.feeds)]
        self.offset = [rng.uniform(0, p) for p in self.period]
        self._rank = self._ranks()
        self._feeds: dict[tuple[int, int], tuple[bytes, str]] = {}
        self._pages: dict[tuple[int, int], bytes] = {}

    # which feed is what
    def language(self, n: int) -> str:
        return self.languages[n % len(self.languages)]

    def feed_format(self, n: int) -> FeedFormat:
        # Alternating, and shifted every cycle of the language mix so every language gets both
        # formats (the cycle is the mix's, not the languages found: English alone alternates).
        return FORMATS[(n + n // len(LANGUAGE_MIX)) % len(FORMATS)]

    def origin(self, n: int) -> str:
        return f"http://127.0.0.1:{self.ports[self.config.host_of(n)]}"

    def feed_url(self, n: int) -> str:
        return f"{self.origin(n)}/feed/{n}.xml"

    def page_url(self, n: int, k: int) -> str:
        return f"{self.origin(n)}/news/{n}/{k}.html"

    def feed_urls(self) -> list[str]:
        return [self.feed_url(n) for n in range(self.config.feeds)]

    # when entries appear
    def appeared_at(self, n: int, k: int) -> float:
        """When entry ``k`` of feed ``n`` appears (the first ``entries`` are already there)."""
        first = self.config.entries
        if k < first:
            return self.started - (first - k) * PAST_SPACING
        return self.started + self.offset[n] + (k - first) * self.period[n]

    def visible(self, n: int, now: float) -> int:
        """How many entries feed ``n`` has published by ``now``."""
        first = self.config.entries
        if not self.period[n] or now < self.started + self.offset[n]:
            return first
        return first + 1 + int((now - self.started - self.offset[n]) // self.period[n])

    def entries_until(self, now: float) -> list[tuple[int, int]]:
        return [(n, k) for n in range(self.config.feeds) for k in range(self.visible(n, now))]

    # what they say
    def story(self, n: int, k: int) -> Story:
        # Interleaved so the first entries of every feed use distinct stories: the pool is
        # only reused once it is exhausted.
        pool = self.stories[self.language(n)]
        rank, per_language = self._rank[n]
        return pool[(k * per_language + rank) % len(pool)]

    def feed_body(self, n: int, now: float) -> tuple[bytes, str, datetime]:
        """The feed document, its ETag and its Last-Modified."""
        count = self.visible(n, now)
        cached = self._feeds.get((n, count))
        if cached is None:
            first = max(0, count - self.config.entries)
            items = [(self._article(n, k), self.page_url(n, k)) for k in range(first, count)]
            items.reverse()  # newest first
            body = FEED_RENDERERS[self.feed_format(n)](self._demo_feed(n), self.origin(n), items)
            cached = (body.encode("utf-8"), f"{n}-{count}")
            self._feeds[(n, count)] = cached
        newest = datetime.fromtimestamp(int(self.appeared_at(n, count - 1)), UTC)
        return cached[0], cached[1], newest

    def page(self, n: int, k: int) -> bytes:
        """The article page, gzip-compressed."""
        cached = self._pages.get((n, k))
        if cached is None:
            cached = gzip.compress(self.page_html(n, k).encode("utf-8"), compresslevel=1)
            self._pages[(n, k)] = cached
        return cached

    def page_html(self, n: int, k: int) -> str:
        rng = random.Random(self.config.seed * 1_000_003 + n * 10_007 + k)
        article, feed = self._article(n, k), self._demo_feed(n)
        pool = self.stories[self.language(n)]
        headlines = [pool[rng.randrange(len(pool))].title for _ in range(rng.randint(150, 400))]
        related = {h: f"/news/{n}/{k - 1 - i}.html" for i, h in enumerate(headlines[:6]) if k > i}
        html = article_page_html(feed, article, self.page_url(n, k), related)
        html = html.replace("</header>", _mega_menu(headlines) + "</header>", 1)
        html = html.replace("</article>", "</article>\n" + _comments(pool, rng), 1)
        low, high = self.config.page_kb
        target = rng.randint(low * 1024, high * 1024)
        return html.replace("</body>", _inline_scripts(target - len(html.encode()), rng) + "</body>")

    def prerender(self) -> int:
        """Render every page that exists now (a benchmark does this before it starts timing)."""
        entries = self.entries_until(time.time())
        for n, k in entries:
            self.page(n, k)
        return len(entries)

    def _article(self, n: int, k: int) -> DemoArticle:
        story = self.story(n, k)
        published = datetime.fromtimestamp(self.appeared_at(n, k), UTC)
        return DemoArticle(
            slug=f"{n}-{k}",
            title=story.title,
            paragraphs=story.paragraphs,
            author=None,
            published=published,
            summary=summarize(story.paragraphs[0]),
        )

    def _demo_feed(self, n: int) -> DemoFeed:
        lang = self.language(n)
        return DemoFeed(f"/feed/{n}.xml", self.feed_format(n), f"Outlet {n}", f"Outlet {n}", lang, [])

    def _ranks(self) -> list[tuple[int, int]]:
        counts: Counter[str] = Counter()
        ranks = []
        for n in range(self.config.feeds):
            ranks.append((counts[self.language(n)], 0))
            counts[self.language(n)] += 1
        return [(rank, counts[self.language(n)]) for n, (rank, _) in enumerate(ranks)]


def _mega_menu(headlines: list[str]) -> str:
    links = "".join(
        f'<li class="menu-item"><a href="/topics/{i}.html">{escape(h)}</a></li>'
        for i, h in enumerate(headlines)
    )
    return f'<div class="mega-menu" role="menu"><ul class="menu-list">{links}</ul></div>\n'


def _comments(pool: list[Story], rng: random.Random) -> str:
    picks = [pool[rng.randrange(len(pool))] for _ in range(rng.randint(0, 12))]
    items = "".join(
        f'<li class="comment"><span class="comment-author">reader{rng.randint(1, 9999)}</span>'
        f'<p class="comment-text">{escape(summarize(story.paragraphs[-1], 240))}</p></li>'
        for story in picks
    )
    return f'<section class="comments" id="comments"><h2>Comments</h2><ol>{items}</ol></section>\n'


def _inline_scripts(size: int, rng: random.Random) -> str:
    """Ad-slot and tracking configuration, as news sites inline it: padding to ``size`` bytes."""
    slots, used = [], 0
    while used < size:
        slot = {
            "id": f"div-gpt-ad-{rng.getrandbits(40):x}",
            "sizes": [[300, 250], [728, 90], [320, 50]],
            "targeting": {"pos": rng.choice(("top", "mid", "btf", "sticky")), "seg": rng.random()},
        }
        text = json.dumps(slot)
        slots.append(text)
        used += len(text) + 1
    return f"<script>window.__adSlots = [{','.join(slots)}];</script>\n"


# --- HTTP ----------------------------------------------------------------------------------

FARM = web.AppKey("farm", Farm)


def make_app(farm: Farm) -> web.Application:
    app = web.Application(middlewares=[_latency_and_errors])
    app[FARM] = farm
    app.router.add_get("/feed/{n:\\d+}.xml", _feed)
    app.router.add_get("/news/{n:\\d+}/{k:\\d+}.html", _page)
    return app


@web.middleware
async def _latency_and_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    farm = request.app[FARM]
    farm.host_requests[request.url.port or 0].append(time.monotonic())
    if farm.config.latency_ms:
        await asyncio.sleep(farm.config.latency_ms / 1000)
    if farm.config.error_rate and random.random() < farm.config.error_rate:
        farm.served["error"] += 1
        return web.Response(status=503, text="busy")
    response: web.StreamResponse = await handler(request)
    return response


async def _feed(request: web.Request) -> web.Response:
    farm, n = request.app[FARM], int(request.match_info["n"])
    if n >= farm.config.feeds:
        raise web.HTTPNotFound()
    now = time.time()
    farm.feed_requests.setdefault(n, []).append(now)
    body, etag, modified = farm.feed_body(n, now)
    if not_modified(request, etag, modified):
        farm.served["feed_304"] += 1
        response = web.Response(status=304)
    else:
        farm.served["feed_200"] += 1
        response = web.Response(body=body, content_type=CONTENT_TYPES[farm.feed_format(n)])
        response.charset = "utf-8"
    response.etag = etag
    response.last_modified = modified
    return response


async def _page(request: web.Request) -> web.Response:
    farm = request.app[FARM]
    n, k = int(request.match_info["n"]), int(request.match_info["k"])
    if n >= farm.config.feeds or k >= farm.visible(n, time.time()):
        raise web.HTTPNotFound()
    farm.served["page_200"] += 1
    headers = {"Content-Encoding": "gzip", "Content-Type": "text/html; charset=utf-8"}
    if "gzip" not in request.headers.get("Accept-Encoding", ""):
        return web.Response(body=gzip.decompress(farm.page(n, k)), headers=headers | {
            "Content-Encoding": "identity"})
    return web.Response(body=farm.page(n, k), headers=headers)


class FarmServer(LoopbackServer):
    """The farm on ``config.hosts`` ports of 127.0.0.1 (``farm.ports`` is set on entry)."""

    def __init__(self, farm: Farm) -> None:
        # A short keep-alive: with thousands of hosts, idle connections kept for aiohttp's
        # default 75 s would exhaust file descriptors (listeners + one socket per client).
        super().__init__(make_app(farm), ports=farm.config.hosts, keepalive_timeout=3)
        self.farm = farm

    def __enter__(self) -> Self:
        super().__enter__()
        self.farm.ports[:] = self.ports
        return self


def write_feeds_file(farm: Farm, path: Path) -> None:
    feeds = [{"url": url, "title": f"Outlet {n}"} for n, url in enumerate(farm.feed_urls())]
    path.write_text(yaml.safe_dump({"feeds": feeds}, allow_unicode=True))


def shared_dir() -> Path | None:
    """../shared beside the project root, or None (benchmarks then say what they skip).

    Under CI=true a missing ../shared is an error, not a skip: SystemExit with the reason.
    """
    if SHARED.is_dir():
        return SHARED
    if os.environ.get("CI") == "true":
        raise SystemExit(
            f"feedfarm: {SHARED} not found under CI=true: the shared data (Arabic and Persian"
            " stories) must be beside the project root; benchmarks do not skip it in CI"
        )
    return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--entries", type=int, default=20)
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument("--new-entry-every", type=float, default=600.0, help="seconds per feed")
    parser.add_argument("--write-feeds", type=Path, help="write a feeds file for `feedpipe run`")
    args = parser.parse_args(argv)
    config = FarmConfig(
        feeds=args.feeds,
        entries=args.entries,
        hosts=args.hosts,
        latency_ms=args.latency_ms,
        error_rate=args.error_rate,
        new_entry_every=args.new_entry_every,
    )
    stories = load_stories(shared_dir())
    if "ar" not in stories:
        print(f"feedfarm: {SHARED} not found: serving English stories only")
    farm = Farm(config, stories)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with FarmServer(farm):
        if args.write_feeds:
            write_feeds_file(farm, args.write_feeds)
            print(f"feedfarm: {config.feeds} feeds written to {args.write_feeds}")
        print(f"feedfarm: serving on ports {farm.ports[0]}..{farm.ports[-1]}; Ctrl-C stops")
        try:
            while not stop.wait(60):
                print(f"feedfarm: served {dict(farm.served)}", flush=True)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
